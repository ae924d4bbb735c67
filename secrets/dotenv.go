package secrets

import (
	"fmt"
	"strings"
)

// Formats of an S3 env file (Block.Format).
const (
	FormatEnvFile = "env-file" // docker --env-file, as ECS environmentFiles: the default
	FormatDotenv  = "dotenv"   // the dotenv dialect below, only when asked for by name
)

// ParseEnvFile reads docker's --env-file format, which ECS uses for environmentFiles: one VAR=VALUE per line,
// the value everything after the first '=' taken literally (quotes, '#', trailing spaces and all), leading
// white space of a line ignored, a line whose first other character is '#' a comment, blank lines skipped. A
// line without '=' takes its value from the environment in docker; berth, reading a secret, skips it. Errors
// name the line number only, never its content.
func ParseEnvFile(data []byte) ([]DotenvEntry, error) {
	s := strings.TrimPrefix(string(data), "\uFEFF")
	var out []DotenvEntry
	for n := 1; len(s) > 0; n++ {
		var line string
		line, s = cutLine(s)
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimLeft(line, " \t\v\f")
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if key == "" {
			return nil, fmt.Errorf("env file line %d: no variable name before '='", n)
		}
		if strings.ContainsAny(key, " \t\v\f") {
			return nil, fmt.Errorf("env file line %d: the variable name contains white space", n)
		}
		out = append(out, DotenvEntry{Key: key, Value: value})
	}
	return out, nil
}

// DotenvEntry is one KEY=VALUE of an env or dotenv file, in file order.
type DotenvEntry struct {
	Key, Value string
}

// ParseDotenv parses the dotenv dialect documented in doc.go. Errors name the line number only, never its
// content (the content is a secret).
func ParseDotenv(data []byte) ([]DotenvEntry, error) {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	s = strings.TrimPrefix(s, "\uFEFF")
	var out []DotenvEntry
	line := 1
	for len(s) > 0 {
		startLine := line
		var cur string
		cur, s = cutLine(s)
		line++
		t := strings.TrimLeft(cur, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "export"); ok && len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			t = strings.TrimLeft(rest, " \t")
		}
		eq := strings.IndexByte(t, '=')
		if eq < 0 {
			return nil, fmt.Errorf("dotenv line %d: want KEY=VALUE", startLine)
		}
		key := strings.TrimRight(t[:eq], " \t")
		if !validDotenvKey(key) {
			return nil, fmt.Errorf("dotenv line %d: bad variable name", startLine)
		}
		v := strings.TrimLeft(t[eq+1:], " \t")
		var value string
		switch {
		case v != "" && (v[0] == '\'' || v[0] == '"'):
			q := v[0]
			body := v[1:]
			// A quoted value may continue over the following lines until its closing quote.
			var b strings.Builder
			closed := false
			for {
				i := indexClosingQuote(body, q)
				if i >= 0 {
					b.WriteString(body[:i])
					body = body[i+1:]
					closed = true
					break
				}
				b.WriteString(body)
				if len(s) == 0 {
					break
				}
				b.WriteByte('\n')
				body, s = cutLine(s)
				line++
			}
			if !closed {
				return nil, fmt.Errorf("dotenv line %d: unterminated %c quote", startLine, q)
			}
			tail := strings.TrimLeft(body, " \t")
			if tail != "" && tail[0] != '#' {
				return nil, fmt.Errorf("dotenv line %d: unexpected text after closing quote", startLine)
			}
			value = b.String()
			if q == '"' {
				value = unescapeDouble(value)
			}
		default:
			if i := strings.Index(v, " #"); i >= 0 {
				v = v[:i]
			}
			if i := strings.Index(v, "\t#"); i >= 0 {
				v = v[:i]
			}
			value = strings.TrimRight(v, " \t")
		}
		out = append(out, DotenvEntry{Key: key, Value: value})
	}
	return out, nil
}

func cutLine(s string) (line, rest string) {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// indexClosingQuote finds the closing quote q in s; inside double quotes a backslash escapes the next byte.
func indexClosingQuote(s string, q byte) int {
	for i := 0; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

func unescapeDouble(s string) string {
	if !strings.ContainsRune(s, '\\') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '"', '\\', '$':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func validDotenvKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'):
		case i > 0 && ((c >= '0' && c <= '9') || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// EnvName turns a key (JSON key, dotenv key, SSM path relative to ssm_path) into the suffix of an env_prefix
// variable: upper-cased, every byte outside [A-Z0-9_] replaced with '_', and a leading '/' dropped
// ("db/password" → "DB_PASSWORD").
func EnvName(key string) string {
	key = strings.TrimPrefix(key, "/")
	b := []byte(strings.ToUpper(key))
	for i, c := range b {
		if !(c == '_' || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			b[i] = '_'
		}
	}
	return string(b)
}
