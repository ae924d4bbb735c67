package secrets

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDotenv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []DotenvEntry
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# c\n\n   # indented\nA=1\n", want: []DotenvEntry{{"A", "1"}}},
		{name: "crlf and bom", in: "\uFEFFA=1\r\nB=2\r\n", want: []DotenvEntry{{"A", "1"}, {"B", "2"}}},
		{name: "export and spaces", in: "export A = x y \n", want: []DotenvEntry{{"A", "x y"}}},
		{name: "inline comment", in: "A=x #c\nB=x#y\n", want: []DotenvEntry{{"A", "x"}, {"B", "x#y"}}},
		{name: "equals and quotes kept", in: "A=a=b'c\"d\n", want: []DotenvEntry{{"A", "a=b'c\"d"}}},
		{name: "single quotes literal", in: `A='x\n $y # z'` + "\n", want: []DotenvEntry{{"A", `x\n $y # z`}}},
		{name: "double quote escapes", in: `A="l1\nl2\t\"q\" \\ \$x \z"`, want: []DotenvEntry{{"A", "l1\nl2\t\"q\" \\ $x \\z"}}},
		{name: "multi-line", in: "A=\"one\ntwo\"\nB='x\ny' # c\n", want: []DotenvEntry{{"A", "one\ntwo"}, {"B", "x\ny"}}},
		{name: "empty value", in: "A=\nB=\"\"\n", want: []DotenvEntry{{"A", ""}, {"B", ""}}},
		{name: "duplicate kept in order", in: "A=1\nA=2\n", want: []DotenvEntry{{"A", "1"}, {"A", "2"}}},
		{name: "dotted key", in: "app.key-1=v\n", want: []DotenvEntry{{"app.key-1", "v"}}},
		{name: "no equals", in: "A=1\nsecretvalue\n", wantErr: "dotenv line 2: want KEY=VALUE"},
		{name: "bad key", in: "1A=x\n", wantErr: "dotenv line 1: bad variable name"},
		{name: "unterminated", in: "A=1\nB=\"abc\n", wantErr: "dotenv line 2: unterminated \" quote"},
		{name: "junk after quote", in: "A='x' y\n", wantErr: "dotenv line 1: unexpected text after closing quote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, err := ParseDotenv([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("want error %q, have %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.want, have) {
				t.Errorf("want %q, have %q", tc.want, have)
			}
		})
	}
}

func TestParseDotenvErrorHidesContent(t *testing.T) {
	_, err := ParseDotenv([]byte("A=1\nsup3r-s3cret-line\n"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("want an error without the line's content, have %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"password": "PASSWORD", "db/password": "DB_PASSWORD", "/x/y": "X_Y", "api-key.v2": "API_KEY_V2", "A_1": "A_1",
	} {
		if have := EnvName(in); have != want {
			t.Errorf("EnvName(%q): want %q, have %q", in, want, have)
		}
	}
}

// quoteDotenv writes v so that ParseDotenv reads it back unchanged.
func quoteDotenv(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(v) + `"`
}

func FuzzParseDotenv(f *testing.F) {
	f.Add("A=1\nB='x'\nC=\"y\\n\"\n# c\n", "KEY", "va\"l\\ue\n")
	f.Add("export X = y # z", "K_1", "")
	f.Fuzz(func(t *testing.T, doc, key, value string) {
		entries, err := ParseDotenv([]byte(doc))
		if err == nil {
			for _, e := range entries {
				if !validDotenvKey(e.Key) {
					t.Fatalf("ParseDotenv(%q) returned the bad key %q", doc, e.Key)
				}
			}
		}
		if !validDotenvKey(key) {
			return
		}
		// Round trip: a quoted value comes back byte for byte.
		have, err := ParseDotenv([]byte("# x\n" + key + "=" + quoteDotenv(value) + "\n"))
		if err != nil {
			t.Fatalf("round trip of %q=%q: %v", key, value, err)
		}
		if len(have) != 1 || have[0].Key != key || have[0].Value != value {
			t.Fatalf("round trip of %q=%q: have %q", key, value, have)
		}
	})
}

// TestParseEnvFile: docker's --env-file, as ECS reads environmentFiles. A value is everything after the first
// '=', literally; only a line that starts with '#' (after white space) is a comment.
func TestParseEnvFile(t *testing.T) {
	in := "\uFEFF# comment\r\n   # indented comment\n\nPASSWORD=pa ss #not-a-comment \"q\" \r\n  LEAD=x\nURL=a=b=c\nEMPTY=\nNOEQ\nQ='kept'\n"
	have, err := ParseEnvFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []DotenvEntry{{"PASSWORD", "pa ss #not-a-comment \"q\" "}, {"LEAD", "x"}, {"URL", "a=b=c"}, {"EMPTY", ""}, {"Q", "'kept'"}}
	if len(have) != len(want) {
		t.Fatalf("have %q, want %q", have, want)
	}
	for i := range want {
		if have[i] != want[i] {
			t.Errorf("entry %d: have %q, want %q", i, have[i], want[i])
		}
	}
	for _, bad := range []string{"=novar\n", "export X=1\n", "A B=1\n"} {
		if _, err := ParseEnvFile([]byte(bad)); err == nil || strings.Contains(err.Error(), "1\n") {
			t.Errorf("ParseEnvFile(%q): want an error naming the line only, have %v", bad, err)
		}
	}
}

// FuzzParseEnvFile: any line VAR=VALUE with VALUE free of newlines comes back literally, whatever the value
// holds; errors never quote the content.
func FuzzParseEnvFile(f *testing.F) {
	f.Add("A=1\n# c\n  B=x #y\n", "PASSWORD", "pa ss #x \"q\" 'r' = ")
	f.Fuzz(func(t *testing.T, doc, key, value string) {
		if _, err := ParseEnvFile([]byte(doc)); err != nil && strings.ContainsAny(err.Error(), "\n") {
			t.Fatalf("a multi-line error for %q: %v", doc, err)
		}
		if !validDotenvKey(key) || strings.ContainsAny(value, "\r\n") {
			return
		}
		have, err := ParseEnvFile([]byte("# x\n" + key + "=" + value + "\n"))
		if err != nil || len(have) != 1 || have[0].Key != key || have[0].Value != value {
			t.Fatalf("%q=%q came back as %q (%v)", key, value, have, err)
		}
	})
}
