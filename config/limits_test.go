package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
)

// oneProblem asserts that err is an *Error with exactly one problem that starts with prefix and contains
// want.
func oneProblem(t *testing.T, err error, prefix, want string) {
	t.Helper()
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *config.Error, have %v", err)
	}
	if len(cerr.Problems) != 1 || !strings.HasPrefix(cerr.Problems[0], prefix) || !strings.Contains(cerr.Problems[0], want) {
		t.Fatalf("want one problem %q…%q, have %q", prefix, want, cerr.Problems)
	}
	if cerr.ExitCode() != 78 {
		t.Fatalf("exit code %d", cerr.ExitCode())
	}
}

func TestFileSizeLimit(t *testing.T) {
	big := []byte("# " + strings.Repeat("x", config.MaxFileSize) + "\n")
	_, err := config.Parse(big, "big.hcl", config.Funcs{})
	oneProblem(t, err, "big.hcl: ", "at most 524288 bytes")

	dir := t.TempDir()
	path := filepath.Join(dir, "big.json")
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(path, config.Funcs{})
	oneProblem(t, err, path+": ", fmt.Sprintf("file is %d bytes", len(big)))

	// exactly at the limit is read and parsed
	at := []byte("# " + strings.Repeat("x", config.MaxFileSize-3) + "\n")
	if _, err := config.Parse(at, "at.hcl", config.Funcs{}); err != nil {
		t.Fatalf("a file of exactly MaxFileSize bytes: %v", err)
	}
	// a file that is not regular (no size to stat) is cut off while reading
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err = config.Load("/dev/zero", config.Funcs{})
		oneProblem(t, err, "/dev/zero: ", "larger than 524288 bytes")
	}
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

// nest builds "log_level = " with the value wrapped n times by open and close.
func nest(open, close string, n int) string {
	return "log_level = " + repeat(open, n) + "1" + repeat(close, n) + "\n"
}

func TestNestingLimit(t *testing.T) {
	n := config.MaxDepth + 1
	tests := []struct {
		name, file, src string
	}{
		{"brackets", "f.hcl", nest("[", "]", 60_000)},
		{"brackets just over", "f.hcl", nest("[", "]", n)},
		{"parentheses", "f.hcl", nest("(", ")", n)},
		{"objects", "f.hcl", nest("{a = ", "}", n)},
		{"blocks", "f.hcl", repeat("a {\n", n) + repeat("}\n", n)},
		{"function calls", "f.hcl", nest("env(", ")", n)},
		{"not", "f.hcl", "log_level = " + repeat("!", n) + "true\n"},
		{"minus", "f.hcl", "log_level = " + repeat("-", n) + "1\n"},
		{"sum", "f.hcl", "log_level = 1" + repeat("+1", n) + "\n"},
		{"sum over lines in brackets", "f.hcl", "log_level = [1" + repeat("+\n1", n) + "]\n"},
		{"conditionals", "f.hcl", "log_level = " + repeat("true ? 1 : ", n) + "1\n"},
		{"index", "f.hcl", "log_level = [1]" + repeat("[0]", n) + "\n"},
		{"attributes", "f.hcl", "log_level = {a = 1}" + repeat(".a", n) + "\n"},
		{"template interpolations", "f.hcl", "log_level = " + repeat(`"${`, n) + "1" + repeat(`}"`, n) + "\n"},
		{"template directives", "f.hcl", `log_level = "` + repeat("%{if true}", n) + "x" + repeat("%{endif}", n) + "\"\n"},
		{"heredocs", "f.hcl", "log_level = <<EOT\n" + repeat("${[", n) + "1" + repeat("]}", n) + "\nEOT\n"},
		{"json arrays", "f.json", `{"log_level": ` + repeat("[", n) + "1" + repeat("]", n) + "}"},
		{"json objects", "f.json", repeat(`{"a": `, n) + "1" + repeat("}", n)},
		{"json arrays, 60,000", "f.json", `{"main": {"command": ` + repeat("[", 60_000) + repeat("]", 60_000) + "}}"},
		{"json template", "f.json", `{"log_level": "` + repeat("${[", n) + "1" + repeat("]}", n) + `"}`},
		{"json escaped template", "f.json", `{"log_level": "` + repeat(`\u0024{[`, n) + "1" + repeat("]}", n) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := config.Parse([]byte(tt.src), tt.file, config.Funcs{Env: func(string) (string, bool) { return "", true }})
			oneProblem(t, err, tt.file+":", fmt.Sprintf("nested more than %d levels deep", config.MaxDepth))
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("refusing took %s", d)
			}
		})
	}
}

// TestNestingWithinLimit: MaxDepth levels are parsed (the decoder may reject the value, but not its depth),
// and commas, newlines between arguments and closed brackets end the operators they follow.
func TestNestingWithinLimit(t *testing.T) {
	d := config.MaxDepth
	tests := []struct {
		name, file, src string
	}{
		{"brackets", "f.hcl", nest("[", "]", d)},
		{"not", "f.hcl", "log_level = " + repeat("!", d-0) + "true\n"},
		{"many sums side by side", "f.hcl", "log_level = [" + repeat("1+1+1+1+1+1+1+1+1+1, ", 1000) + "]\n"},
		{"many closed brackets", "f.hcl", "log_level = [" + repeat("[[1]], ", 2000) + "]\n"},
		{"many attribute lines", "f.hcl", "main {\n  env = {\n" + repeat("    A = \"x\"\n", 100) + "  }\n}\n"},
		{"json", "f.json", `{"log_level": ` + repeat("[", d-1) + "1" + repeat("]", d-1) + "}"},
		{"json braces in strings", "f.json", `{"main": {"command": ["` + repeat("[{", 1000) + `", "$${x}"]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.src), tt.file, config.Funcs{})
			if err != nil && strings.Contains(err.Error(), "nested more than") {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	for _, name := range []string{"spec.hcl", "spec.json"} {
		_, err := config.Load(filepath.Join("testdata", name), config.Funcs{
			Env:    func(string) (string, bool) { return "v", true },
			Secret: func(ref string) (string, error) { return ref, nil },
		})
		if err != nil && strings.Contains(err.Error(), "nested more than") {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestBlockLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"job": {`)
	for i := range config.MaxBlocks + 5 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"j%d":{"command":["true"]}`, i)
	}
	b.WriteString("}}")
	_, err := config.Parse([]byte(b.String()), "many.json", config.Funcs{})
	oneProblem(t, err, "many.json:", fmt.Sprintf("more than %d job blocks", config.MaxBlocks))

	f, err := config.Parse([]byte(manyJobs(config.MaxBlocks, 0)), "max.hcl", config.Funcs{})
	if err != nil {
		t.Fatalf("%d jobs: %v", config.MaxBlocks, err)
	}
	if len(f.Jobs) != config.MaxBlocks {
		t.Fatalf("have %d jobs", len(f.Jobs))
	}
}

// manyJobs is n jobs, each after the previous one when chain > 0 (every chain-th job starts a new chain).
func manyJobs(n, chain int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "job \"j%d\" {\n  command = [\"true\"]\n", i)
		if chain > 0 && i%chain != 0 {
			fmt.Fprintf(&b, "  after = [\"j%d\"]\n", i-1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// TestManyJobsOrder: a chain of jobs declared in reverse comes out in dependency order, with file order among
// the ready ones, and a long cycle is reported on one short line.
func TestManyJobsOrder(t *testing.T) {
	var b strings.Builder
	const n = 5000
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "job \"j%d\" {\n  command = [\"true\"]\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "  after = [\"j%d\"]\n", i-1)
		}
		b.WriteString("}\n")
	}
	f, err := config.Parse([]byte(b.String()), "chain.hcl", config.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	order, err := f.JobOrder()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if order[i] != fmt.Sprintf("j%d", i) {
			t.Fatalf("order[%d] = %s", i, order[i])
		}
	}
	if order[n] != config.MainName {
		t.Fatalf("main is not last: %v", order[n-2:])
	}

	// j0 after j4999 after j4998 ... after j0
	b.Reset()
	for i := range n {
		fmt.Fprintf(&b, "job \"j%d\" {\n  command = [\"true\"]\n  after = [\"j%d\"]\n}\n", i, (i+n-1)%n)
	}
	_, err = config.Parse([]byte(b.String()), "cycle.hcl", config.Funcs{})
	want := "after: cycle in after: j0 -> j4999 -> j4998 -> j4997 -> ... (4992 more) -> j4 -> j3 -> j2 -> j1 -> j0"
	oneProblem(t, err, "cycle.hcl:", want)
}

func TestLogsMaxLine(t *testing.T) {
	f, err := config.Parse([]byte("logs {\n  max_line = 64 * 1024\n}\n"), "l.hcl", config.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	if f.Logs.MaxLine != 64<<10 || f.Logs.Format != "raw" {
		t.Fatalf("logs %+v", f.Logs)
	}
	if f, err = config.Parse([]byte("logs {\n  prefix = true\n}\n"), "l.hcl", config.Funcs{}); err != nil || f.Logs.MaxLine != 1<<20 {
		t.Fatalf("max_line left out: %+v, %v", f.Logs, err)
	}
	for _, bad := range []string{"10", "1.5", "\"1MiB\"", "2147483648"} {
		_, err := config.Parse([]byte("logs {\n  max_line = "+bad+"\n}\n"), "l.hcl", config.Funcs{})
		oneProblem(t, err, "l.hcl:2:", "max_line")
	}
}

func BenchmarkParseJobs(b *testing.B) {
	for _, n := range []int{1000, 4000, 10_000} {
		src := []byte(manyJobs(n, 10))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				f, err := config.Parse(src, "jobs.hcl", config.Funcs{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.JobOrder(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
