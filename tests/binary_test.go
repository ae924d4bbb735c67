package tests

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/tests/harness"
)

// TestBinaryMethodDeadCode keeps the linker's dead-code elimination of methods on. One reachable call of
// reflect.Value.Method or MethodByName with a computed name (text/template's field evaluation is the usual
// one) makes the Go linker keep every exported method of every type that reaches an interface: berth's binary
// was 30.9 MiB with text/template's, 16.9 MiB without, and its start-up pages in most of the binary. The linker
// marks such functions <ReflectMethod> in -dumpdep; the failure names them and who calls them.
func TestBinaryMethodDeadCode(t *testing.T) {
	cmd := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", os.DevNull, "./cmd/berth")
	cmd.Dir = harness.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build -ldflags=-dumpdep: %v\n%.2000s", err, out)
	}
	callers := map[string][]string{} // callee -> callers, from "caller -> callee" lines
	var marked []string
	for _, line := range strings.Split(string(out), "\n") {
		from, to, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		from, to = strings.TrimSuffix(from, " <ReflectMethod>"), strings.TrimSuffix(to, " <ReflectMethod>")
		callers[to] = append(callers[to], from)
		if strings.HasSuffix(line, " <ReflectMethod>") || strings.Contains(line, " <ReflectMethod> -> ") {
			sym := to
			if strings.Contains(line, " <ReflectMethod> -> ") {
				sym = from
			}
			marked = append(marked, sym)
		}
	}
	seen := map[string]bool{}
	for _, sym := range marked {
		if seen[sym] {
			continue
		}
		seen[sym] = true
		chain := []string{sym}
		for cur := sym; len(chain) < 12; {
			cs := callers[cur]
			if len(cs) == 0 {
				break
			}
			cur = cs[0]
			chain = append(chain, cur)
		}
		t.Errorf("%s calls reflect.Value.Method/MethodByName with a computed name, which turns off the linker's "+
			"method dead-code elimination for the whole binary; reached from:\n\t%s", sym, strings.Join(chain, "\n\t"))
	}
}
