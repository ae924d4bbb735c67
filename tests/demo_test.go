package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestDemo runs `make demo`'s script (examples/demo/run.sh) as a newcomer does, non-interactively: Consul,
// moto_server and three nats-servers under berth that find each other through Consul, with their auth token
// from Secrets Manager. The script checks its own claims (passing in Consul, a full mesh of routes, each
// node's rendered routes, the token accepted and absent from berth's output) and exits non-zero on any;
// the test asserts the exit code and the lines a reader of the README sees.
func TestDemo(t *testing.T) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Skipf("SKIPPING the demo: moto_server is not installed (%v); run `make deps`", err)
	}
	harness.Tool(t, "consul")
	harness.Tool(t, "nats-server")
	cmd := exec.Command(filepath.Join(harness.RepoRoot(t), "examples", "demo", "run.sh"))
	cmd.Env = append(os.Environ(), "BERTH="+harness.Berth(t), "DEMO_NONINTERACTIVE=1", "TMPDIR="+t.TempDir())
	cmd.Stdin = nil
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the demo did not finish within 4 minutes\n%s", out)
	}
	if err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"n1: 2 routes", "n2: 2 routes", "n3: 2 routes", "nats-route://127.0.0.1:",
		"with the token:  PONG", "with a bad one:  -ERR 'Authorization Violation'", "the token appears in no berth output", "berth health of n1: healthy",
		"== done (non-interactive)", "demo: cleaning up",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q\n%s", want, text)
		}
	}
	if n := strings.Count(text, "passing"); n < 3 {
		t.Errorf("want the 3 instances passing in Consul's table, have %d\n%s", n, text)
	}
}
