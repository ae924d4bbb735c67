package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestKeysAreWhatTheDecoderAccepts: Keys names keys of every depth, and each key it names is one Parse
// accepts where Keys says (a file setting only that key has no "unsupported argument" problem), while a
// key Keys does not name is refused there.
func TestKeysAreWhatTheDecoderAccepts(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"log_level", "main.command", "main.pre_start.timeout", "job.once",
		"job.post_stop.command", "secret.ssm_path", "secrets.jitter", "service.check.http", "peers.template",
		"consul.login.method", "telemetry.prometheus", "logs.max_line"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys lacks %q", want)
		}
	}
	if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Errorf("Keys is not sorted and unique: %v", keys)
	}
	for _, k := range append(keys, "main.no_such_key", "service.check.no_such_key") {
		src := nest(k)
		_, err := Parse([]byte(src), "k.hcl", Funcs{})
		refused := err != nil && strings.Contains(err.Error(), "Unsupported argument")
		if known := slices.Contains(keys, k); known == refused {
			t.Errorf("%s: in Keys %v, refused by Parse %v\n%s\n%v", k, known, refused, src, err)
		}
	}
}

// nest writes key a.b.c as a file that sets c = null inside block b inside block a (labelled where the
// schema wants a label).
func nest(key string) string {
	parts := strings.Split(key, ".")
	labelled := map[string]bool{"job": true, "secret": true, "service": true, "peers": true}
	var open, closing string
	for i, p := range parts[:len(parts)-1] {
		if i == 0 && labelled[p] {
			open += fmt.Sprintf("%s \"x\" {\n", p)
		} else {
			open += p + " {\n"
		}
		closing += "}\n"
	}
	return open + parts[len(parts)-1] + " = null\n" + closing
}
