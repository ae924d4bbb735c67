package supervisor

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/tests/harness"
)

// A Stop while another is under way (the shutdown reaching a job a reload is stopping) continues it: the
// process hears its stop signal once, and both end with the SIGKILL at the first stop's deadline.
func TestStopJoinsTheStopUnderWay(t *testing.T) {
	r := newReaper(t)
	s, err := New(Config{}, r, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := dir + "/log"
	const timeout = 2 * time.Second
	p, err := s.Start(Spec{Name: "stubborn", Env: os.Environ(), Umask: -1, StopTimeout: timeout,
		Argv: []string{"sh", "-c", "trap 'echo TERM >> " + log + "' TERM; echo ready >> " + log + "; while :; do sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	harness.WaitFile(t, log, "ready", 10*time.Second)
	began := time.Now()
	first := make(chan Exit, 1)
	go func() { first <- p.Stop(context.Background(), 0) }()
	harness.WaitFile(t, log, "TERM", 10*time.Second)
	second := p.Stop(context.Background(), 0)
	took := time.Since(began)
	if second.Code != 137 || (<-first).Code != 137 {
		t.Fatalf("want both stops to end with the SIGKILL (137), have %d", second.Code)
	}
	if took < timeout-500*time.Millisecond || took > timeout+2*time.Second {
		t.Fatalf("want the joined stop to end at the first one's deadline (%s), it took %s", timeout, took)
	}
	if data, _ := os.ReadFile(log); strings.Count(string(data), "TERM") != 1 {
		t.Fatalf("want one stop signal, the second Stop continuing the first; the process logged:\n%s", data)
	}
}
