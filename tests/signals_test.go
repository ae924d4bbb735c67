package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/tests/harness"
)

// TestFaultSignalsWithEntryPoint runs supervisor's TestFaultSignals in a test binary linked like the release
// (-E=berth_rt0): a kill(2) or sigqueue(3) of a fault signal is forwarded, a real fault still panics.
func TestFaultSignalsWithEntryPoint(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "supervisor.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "-ldflags=-E=berth_rt0", "./supervisor")
	build.Dir = harness.RepoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-test.run", "^TestFaultSignals$", "-test.v").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFaultSignals") {
		t.Fatalf("TestFaultSignals with the entry point: %v\n%s", err, out)
	}
	harness.RecordFault(t, harness.Fault{Name: "SIGSEGV by kill(2), SIGBUS by sigqueue(3), SIGPROF sent to berth",
		Expected: "forwarded, berth does not crash; a real fault still panics",
		Observed: "all three delivered for forwarding; nil dereference recovered as a panic", Figure: "3/3 signals"})
}
