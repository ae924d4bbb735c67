package harness

import (
	"encoding/json"
	"strings"
)

// JSONLine is one JSON object of a log: the line as written, its keys in the order written, and its values.
type JSONLine struct {
	Raw  string
	Keys []string
	Obj  map[string]any
}

// ParseJSONLine decodes s as one JSON object, keeping the key order; ok is false for anything else.
func ParseJSONLine(s string) (l JSONLine, ok bool) {
	l.Raw = s
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return l, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return l, false
		}
		l.Keys = append(l.Keys, tok.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			return l, false
		}
	}
	if err := json.Unmarshal([]byte(s), &l.Obj); err != nil {
		return l, false
	}
	return l, true
}
