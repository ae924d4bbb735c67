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
	// nesting bombs at and past MaxDepth (testdata/fuzz/FuzzParse holds more)
	f.Add([]byte("x = "+strings.Repeat("[", 60_000)+strings.Repeat("]", 60_000)+"\n"), false)
	f.Add([]byte(`{"x": `+strings.Repeat("[", 60_000)+strings.Repeat("]", 60_000)+"}"), true)
	f.Add([]byte("log_level = "+strings.Repeat("!", config.MaxDepth)+"true\n"), false)
	f.Add([]byte("log_level = 1"+strings.Repeat("+1", config.MaxDepth)+"\n"), false)
	f.Add([]byte(`log_level = "`+strings.Repeat("%{if true}${", 40)+"x"+strings.Repeat("}%{endif}", 40)+"\"\n"), false)
	f.Add([]byte(`{"log_level": "`+strings.Repeat(`\u0024{[`, 40)+strings.Repeat("]}", 40)+`"}`), true)
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

// FuzzNesting wraps a value in the constructs of HCL's native syntax that nest (one byte of shape picks
// each) and checks that the file is refused for its depth exactly when the wrappers add up to more than
// MaxDepth, that nothing panics or overflows the stack at any depth, and that a refusal is one line.
func FuzzNesting(f *testing.F) {
	f.Add([]byte("[({!-+?.i\"%h"), uint16(1))
	f.Add([]byte("["), uint16(config.MaxDepth))
	f.Add([]byte("["), uint16(config.MaxDepth+1))
	f.Add([]byte("!-"), uint16(40))
	f.Add([]byte("\"%"), uint16(30))
	f.Add([]byte("h"), uint16(5000))
	type wrapper struct {
		open, close string
		depth       int
	}
	wrappers := map[byte]wrapper{
		'[':  {"[", "]", 1},
		'(':  {"(", ")", 1},
		'{':  {"{a = ", "}", 1},
		'e':  {"env(", ")", 1},
		'!':  {"!", "", 1},
		'-':  {"-", "", 1},
		'+':  {"1 + ", "", 1},
		'?':  {"true ? 1 : ", "", 1},
		'.':  {"{a = ", "}.a", 1}, // the object's brace; .a comes after it is closed
		'i':  {"[", "][0]", 1},
		'"':  {`"${`, `}"`, 2},
		'%':  {`"%{if true}${`, `}%{endif}"`, 3},
		'h':  {"<<EOT\n${", "}\nEOT\n", 2},
		'\n': {"[\n", "\n]", 1},
	}
	f.Fuzz(func(t *testing.T, shape []byte, count uint16) {
		if len(shape) == 0 || len(shape) > 64 || count > 20_000 {
			return
		}
		var open, close []string
		depth := 0
		for i := range int(count) {
			w, ok := wrappers[shape[i%len(shape)]]
			if !ok {
				return
			}
			open = append(open, w.open)
			close = append(close, w.close)
			depth += w.depth
		}
		var b strings.Builder
		b.WriteString("log_level = ")
		for _, o := range open {
			b.WriteString(o)
		}
		b.WriteString("1")
		for i := len(close) - 1; i >= 0; i-- {
			b.WriteString(close[i])
		}
		b.WriteString("\n")
		src := []byte(b.String())
		if len(src) > config.MaxFileSize {
			return
		}
		_, err := config.Parse(src, "n.hcl", config.Funcs{Env: func(string) (string, bool) { return "x", true }})
		refused := err != nil && strings.Contains(err.Error(), "nested more than")
		if refused != (depth > config.MaxDepth) {
			t.Fatalf("depth %d, refused %v: %v\n%.300s", depth, refused, err, src)
		}
		var cerr *config.Error
		if refused && (!errors.As(err, &cerr) || len(cerr.Problems) != 1) {
			t.Fatalf("refusal is not one problem: %#v", err)
		}
	})
}
