package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestSignalsBlockedAtStartForwarded: signals berth was started with blocked (a parent's sigprocmask, as in
// tini's sigconf test) still reach the main command, and berth still stops on SIGTERM. The Go runtime gives
// every thread of berth the mask it started with, so berth keeps one thread that unblocks what it catches.
func TestSignalsBlockedAtStartForwarded(t *testing.T) {
	sigconf := buildC(t, "sigconf")
	app := harness.TestApp(t)
	log := filepath.Join(t.TempDir(), "main.log")
	// blocked: SIGUSR1 (10), SIGUSR2 (12), SIGTERM (15), SIGWINCH (28)
	cmd := exec.Command(sigconf, "-", "10,12,15,28", harness.Berth(t), "-control-socket", "off", "--",
		app, "-log", log, "-trap", "USR1,USR2,WINCH")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second // a leftover child holding stderr must not hang the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // berth and the main command
		<-done
	})
	harness.WaitFile(t, log, "ready", 10*time.Second)
	for _, s := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}, {syscall.SIGWINCH, "WINCH"}} {
		if err := cmd.Process.Signal(s.sig); err != nil {
			t.Fatal(err)
		}
		harness.WaitFile(t, log, "signal "+s.name, 5*time.Second)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatalf("berth did not stop on SIGTERM\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("want exit 143 (the main command killed by SIGTERM), have %d\n%s", code, stderr.String())
	}
}
