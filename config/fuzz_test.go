package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

// FuzzParse checks that Parse never panics and that every failure is an *Error whose problems are single
// lines naming the file.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"spec.hcl", "spec.json"} {
		src, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, strings.HasSuffix(name, ".json"))
	}
	f.Add([]byte("check { a = 1, b = [1, 2], c = { x = 1, y = 2 } }\n"), false)
	f.Add([]byte("main {\n  env = { A = env(\"X\", \"y\"), B = secret(\"ssm:/a\") }\n}\n"), false)
	f.Add([]byte(`{"job": {"a": {"command": ["a"], "after": ["a"]}}}`), true)
	fn := config.Funcs{
		Env:    func(string) (string, bool) { return "v", true },
		Secret: func(ref string) (string, error) { return "<" + ref + ">", nil },
	}
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := "f.hcl"
		if json {
			name = "f.json"
		}
		file, err := config.Parse(src, name, fn)
		if err == nil {
			if file == nil {
				t.Fatal("nil File without error")
			}
			if _, err := file.JobOrder(); err != nil {
				t.Fatalf("JobOrder of a valid file: %v", err)
			}
			return
		}
		var cerr *config.Error
		if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
			t.Fatalf("want *config.Error with problems, have %#v", err)
		}
		for _, p := range cerr.Problems {
			if !strings.HasPrefix(p, name+":") || strings.Contains(p, "\n") {
				t.Fatalf("bad problem line %q", p)
			}
		}
	})
}
