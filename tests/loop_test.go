package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestFaultSigtermDuringPreStartHook: the loop never waits on a hook. A SIGTERM while the main command's 10-minute
// pre_start hook runs ends berth at once with 143, the hook's process killed and the main command never run.
func TestFaultSigtermDuringPreStartHook(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	hookPid := filepath.Join(dir, "hook.pid")
	mainLog := filepath.Join(dir, "main")
	cfg := writeFile(t, dir, "hook.hcl", `
main {
  command   = `+hclList(app, "-log", mainLog)+`
  pre_start {
    command = ["sh", "-c", "echo $$ > `+hookPid+`; exec sleep 600"]
    timeout = "10m"
  }
}
`)
	// not PID 1: a PID namespace would take the hook down with berth and hide whether berth killed it
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"run", "-control-socket", "off", "-config", cfg}})
	pid := atoiFile(t, harness.WaitFile(t, hookPid, "\n", 20*time.Second))
	start := time.Now()
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(20 * time.Second); have != 143 {
		t.Fatalf("want 143 (SIGTERM before the main command started), have %d\n%s", have, b.Stderr.String())
	}
	took := time.Since(start)
	if took > 5*time.Second {
		t.Fatalf("SIGTERM during a pre_start hook took %s to end berth", took)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Fatalf("the pre_start hook (pid %d) outlived berth", pid)
	}
	if _, err := os.Stat(mainLog); err == nil {
		t.Fatal("the main command ran although berth was stopped during its pre_start hook")
	}
	harness.RecordFault(t, harness.Fault{Name: "SIGTERM during a 10-minute pre_start hook",
		Expected: "shutdown at once, hook killed, main never started, exit 143",
		Observed: "exit 143, hook killed, main not run", Figure: "SIGTERM → exit " + took.Round(time.Millisecond).String()})
}

// TestFaultSigtermDuringReloadStop: a reload stops a changed job that ignores its stop signal (stop_timeout 8s).
// The stop runs beside the loop, so a SIGTERM meanwhile reaches the main command at once instead of after
// the job's stop_timeout. The shutdown then continues the stop under way: no second stop signal, and the job
// is killed at the first stop's deadline, not after a fresh stop_timeout (berth exits about 8 s after the
// reload's stop began, not 8 s after the SIGTERM).
func TestFaultSigtermDuringReloadStop(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	mainLog := filepath.Join(dir, "main")
	jobLog := filepath.Join(dir, "job")
	const stopTimeout = 8 * time.Second
	conf := func(v string) string {
		return `
main { command = ` + hclList(app, "-log", mainLog, "-exit-on", "TERM:7") + ` }
job "stubborn" {
  type         = "service"
  command      = ` + hclList(app, "-log", jobLog, "-trap", "TERM", "-say", v) + `
  stop_timeout = "` + stopTimeout.String() + `"
}
`
	}
	cfg := writeFile(t, dir, "reload.hcl", conf("v1"))
	b, sock := runConfig(t, cfg)
	harness.WaitFile(t, mainLog, "ready", 20*time.Second)
	harness.WaitFile(t, jobLog, "ready", 20*time.Second)
	writeFile(t, dir, "reload.hcl", conf("v2"))
	if code, out, errOut := ctl(t, sock, "reload"); code != 0 {
		t.Fatalf("ctl reload: %d %s %s", code, out, errOut)
	}
	// the job is now being stopped and ignores it; wait until its stop is under way
	harness.WaitFile(t, jobLog, "signal TERM", 10*time.Second)
	stopSeen := time.Now()
	// The scenario: the SIGTERM comes halfway through the job's stop (a deliberate delay, not a wait for a
	// condition), so that the first stop's deadline and one counted from the SIGTERM are 4 s apart.
	time.Sleep(stopTimeout / 2)
	start := time.Now()
	b.Signal(syscall.SIGTERM)
	harness.WaitFile(t, mainLog, "signal TERM", 5*time.Second)
	took := time.Since(start)
	if have := b.Wait(30 * time.Second); have != 7 {
		t.Fatalf("want the main command's 7, have %d\n%s", have, b.Stderr.String())
	}
	exited := time.Now()
	// The job dies by SIGKILL at its first stop's deadline: about stopTimeout after stopSeen (slack for a loaded
	// CI on both sides). This bound is the deadline a user sees; the count of stop signals below is what tells
	// a shutdown that joins the stop under way from one that stops the job a second time (before the fix the
	// reload's own timer still killed the job on time, but the job got SIGTERM twice).
	const slack = 2500 * time.Millisecond
	sinceStop := exited.Sub(stopSeen)
	if sinceStop > stopTimeout+slack {
		t.Fatalf("berth exited %s after the job's stop began (stop_timeout %s): the shutdown restarted the stop instead of continuing it\n%s",
			sinceStop.Round(time.Millisecond), stopTimeout, b.Stderr.String())
	}
	if sinceStop < stopTimeout-slack {
		t.Fatalf("berth exited %s after the job's stop began: its stop_timeout %s was cut short\n%s",
			sinceStop.Round(time.Millisecond), stopTimeout, b.Stderr.String())
	}
	if n := strings.Count(readFile(jobLog), "signal TERM"); n != 1 {
		t.Fatalf("want the job's one stop signal, continued by the shutdown; it got %d", n)
	}
	t.Logf("SIGTERM → main signalled %s; SIGTERM → berth exit %s; job's stop began → berth exit %s (stop_timeout %s)",
		took.Round(time.Millisecond), exited.Sub(start).Round(time.Millisecond), sinceStop.Round(time.Millisecond), stopTimeout)
	harness.RecordFault(t, harness.Fault{Name: "SIGTERM while a reload stops a job that ignores SIGTERM (stop_timeout 8s)",
		Expected: "the main command gets its stop signal at once, not after the job's stop_timeout; the shutdown continues the job's stop, keeping its deadline",
		Observed: "main signalled, berth exited with main's code 7; the job got one SIGTERM and its SIGKILL at the first stop's deadline",
		Figure: "SIGTERM → main signalled " + took.Round(time.Millisecond).String() + "; SIGTERM 4 s into the stop → berth exit " +
			exited.Sub(start).Round(100*time.Millisecond).String() + " (stop began → exit " + sinceStop.Round(100*time.Millisecond).String() + ")"})
}

func atoiFile(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("not a pid: %q", s)
	}
	return n
}

// TestFaultSubreaperGrandchild: as a subreaper (not PID 1), once the main command exited berth terminates
// leftovers until none is left within kill_grace: a TERM-ignoring shell is SIGKILLed, and the TERM-ignoring
// child it leaves behind, re-parented to berth by that kill, is killed too instead of outliving berth.
func TestFaultSubreaperGrandchild(t *testing.T) {
	dir := t.TempDir()
	gc := filepath.Join(dir, "grandchild.pid")
	script := `sh -c 'trap "" TERM; sh -c "trap \"\" TERM; echo \$\$ > ` + gc + `; exec sleep 300" & sleep 300' & ` +
		`until [ -s ` + gc + ` ]; do sleep 0.01; done; exit 0`
	harness.Berth(t) // built before the clock starts
	start := time.Now()
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"-control-socket", "off", "-kill-grace", "1s", "--", "sh", "-c", script}})
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want the main command's 0, have %d\n%s", have, b.Stderr.String())
	}
	took := time.Since(start)
	pid := atoiFile(t, harness.WaitFile(t, gc, "\n", time.Second))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(st), ") Z ") {
		t.Fatalf("the TERM-ignoring grandchild (pid %d) outlived berth: %s", pid, st)
	}
	harness.RecordFault(t, harness.Fault{Name: "subreaper: TERM-ignoring shell and its TERM-ignoring child left after main exits",
		Expected: "both killed within kill_grace (1s) + the SIGKILL round, none outlives berth",
		Observed: "shell and re-parented grandchild killed, berth exited 0", Figure: "berth start → exit " + took.Round(time.Millisecond).String()})
}
