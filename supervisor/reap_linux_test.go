package supervisor

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A second Reaper in one process is refused: two wait4(-1) loops would take each other's exit statuses. The
// first one goes on collecting them, and once it is closed a new one may start.
func TestSecondReaperRefused(t *testing.T) {
	first := newReaper(t)
	second, err := NewReaper(hclog.NewNullLogger())
	if err == nil {
		second.Close()
		t.Fatal("a second Reaper started while the first runs")
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Fatalf("want an error saying a Reaper is already running, have %q", err)
	}
	exits := make(chan Exit, 1)
	if _, err := first.Start(exec.Command("sh", "-c", "exit 3"), func(e Exit) { exits <- e }); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exits:
		if e.Code != 3 {
			t.Fatalf("the first Reaper after the refusal: want exit 3, have %d", e.Code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first Reaper lost the exit status after a second one was refused")
	}
	first.Close()
	again, err := NewReaper(hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("a Reaper after the first was closed: %v", err)
	}
	again.Close()
}
