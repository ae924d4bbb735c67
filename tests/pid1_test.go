package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// modes runs a test as PID 1 of a fresh PID namespace and as an ordinary child subreaper.
var modes = []struct {
	name string
	pid1 bool
}{{"pid1", true}, {"subreaper", false}}

func TestExitCodes(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		args    []string
		want    int
		wantErr string // a line berth must print to stderr
	}{
		{"exit 7", []string{"--", app, "-code", "7"}, 7, ""},
		{"exit 0", []string{app}, 0, ""},
		{"killed by SIGKILL", []string{"--", "sh", "-c", "kill -KILL $$"}, 137, ""},
		{"killed by SIGTERM", []string{"--", "sh", "-c", "kill -TERM $$"}, 143, ""},
		{"missing command", []string{"--", "no-such-command-xyz"}, 127, "berth: main: cannot run no-such-command-xyz: command not found"},
		{"not executable", []string{"--", notExec}, 126, "berth: main: cannot run " + notExec + ": not executable"},
		{"bad flag", []string{"-no-such-flag", app}, 64, "berth: flag provided but not defined: -no-such-flag"},
		{"unknown stop signal", []string{"-stop-signal", "SIGNOPE", app}, 64, `berth: -stop-signal: unknown signal "SIGNOPE"`},
		{"bad user", []string{"-user", "no-such-user-xyz", app}, 64, `berth: -user: unknown user "no-such-user-xyz"`},
		{"bad signal rewrite", []string{"-signal-rewrite", "TERM", app}, 64, `berth: -signal-rewrite: signal rewrite "TERM": want FROM:TO`},
		{"no command", nil, 64, "berth: no command to run"},
		{"reserved word after --", []string{"--", "health"}, 127, "berth: main: cannot run health: command not found"},
	}
	for _, m := range modes {
		for _, c := range cases {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: c.args})
				have := b.Wait(20 * time.Second)
				if have != c.want {
					t.Fatalf("want exit %d, have %d\nstderr:\n%s", c.want, have, b.Stderr.String())
				}
				stderr := b.Stderr.String()
				if c.wantErr != "" && !strings.Contains(stderr, c.wantErr) {
					t.Fatalf("stderr lacks %q:\n%s", c.wantErr, stderr)
				}
				for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
					if strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "panic:") {
						t.Fatalf("stack trace on stderr:\n%s", stderr)
					}
				}
			})
		}
	}
}

func TestEnvConfiguresFlags(t *testing.T) {
	app := harness.TestApp(t)
	b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"BERTH_STOP_SIGNAL=NOPE"}, Args: []string{app}})
	if have := b.Wait(10 * time.Second); have != 64 {
		t.Fatalf("want 64 for a bad BERTH_STOP_SIGNAL, have %d: %s", have, b.Stderr.String())
	}
	if !strings.Contains(b.Stderr.String(), "-stop-signal") {
		t.Fatalf("the error should name the flag: %s", b.Stderr.String())
	}
	// flag beats env
	b = harness.RunBerth(t, harness.BerthOpts{Env: []string{"BERTH_STOP_SIGNAL=NOPE"}, Args: []string{"-stop-signal", "TERM", app}})
	if have := b.Wait(10 * time.Second); have != 0 {
		t.Fatalf("flag should win over env: exit %d: %s", have, b.Stderr.String())
	}
}

func TestSignalsReachChildAndGroup(t *testing.T) {
	app := harness.TestApp(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "main.log")
			groupLog := filepath.Join(dir, "group.log")
			// The main command starts a second process in its own process group (sh runs it in the
			// background, same group) so group delivery is visible.
			script := fmt.Sprintf("%s -log %s -trap HUP,USR1,USR2,WINCH,ALRM & exec %s -log %s -trap INT,HUP,USR1,USR2,WINCH,ALRM -exit-on TERM:42",
				app, groupLog, app, log)
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"--", "sh", "-c", script}})
			harness.WaitFile(t, log, "ready", 10*time.Second)
			harness.WaitFile(t, groupLog, "ready", 10*time.Second)
			for _, s := range []struct {
				sig  syscall.Signal
				name string
			}{{syscall.SIGHUP, "HUP"}, {syscall.SIGUSR1, "USR1"}, {syscall.SIGUSR2, "USR2"}, {syscall.SIGWINCH, "WINCH"}, {syscall.SIGALRM, "ALRM"}} {
				b.Signal(s.sig)
				harness.WaitFile(t, log, "signal "+s.name, 5*time.Second)
				harness.WaitFile(t, groupLog, "signal "+s.name, 5*time.Second)
			}
			b.Signal(syscall.SIGTERM)
			if have := b.Wait(15 * time.Second); have != 42 {
				t.Fatalf("child exits 42 on TERM: want berth exit 42, have %d\n%s", have, b.Stderr.String())
			}
		})
	}
}

func TestSIGINTReachesChild(t *testing.T) {
	app := harness.TestApp(t)
	log := filepath.Join(t.TempDir(), "main.log")
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{app, "-log", log, "-exit-on", "INT:3"}})
	harness.WaitFile(t, log, "ready", 10*time.Second)
	b.Signal(syscall.SIGINT)
	if have := b.Wait(10 * time.Second); have != 3 {
		t.Fatalf("want 3, have %d", have)
	}
}

func TestSignalRewrite(t *testing.T) {
	app := harness.TestApp(t)
	for _, args := range [][]string{{"-signal-rewrite", "TERM:QUIT"}, {"-stop-signal", "QUIT"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "main.log")
			b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: append(args, app, "-log", log, "-trap", "TERM", "-exit-on", "QUIT:9")})
			harness.WaitFile(t, log, "ready", 10*time.Second)
			b.Signal(syscall.SIGTERM)
			if have := b.Wait(10 * time.Second); have != 9 {
				t.Fatalf("want 9 (QUIT delivered), have %d\n%s", have, b.Stderr.String())
			}
			if data, _ := os.ReadFile(log); strings.Contains(string(data), "signal TERM") {
				t.Fatalf("TERM was delivered although rewritten:\n%s", data)
			}
		})
	}
}

func TestStopTimeoutKills(t *testing.T) {
	app := harness.TestApp(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "main.log")
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"-stop-timeout", "500ms", app, "-log", log, "-ignore", "TERM", "-sleep", "1h"}})
			harness.WaitFile(t, log, "ready", 10*time.Second)
			start := time.Now()
			b.Signal(syscall.SIGTERM)
			if have := b.Wait(10 * time.Second); have != 137 {
				t.Fatalf("want 137, have %d\n%s", have, b.Stderr.String())
			}
			// generous bound: the point is that berth does not wait for ever, nor the 10s default
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("berth took %s to kill a child ignoring TERM with -stop-timeout 500ms", d)
			}
		})
	}
}

func TestOrphansAreReaped(t *testing.T) {
	app := harness.TestApp(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// 1,000 grandchildren orphaned at once: each ( sleep & ) leaves a sleep whose parent exits.
			script := fmt.Sprintf(`i=0; while [ $i -lt 1000 ]; do (sleep 0.2 &); i=$((i+1)); done; sleep 2; exec %s -count-zombies`, app)
			// Either way the orphans are re-parented to berth (PID 1, or the child subreaper), which is
			// also the parent of the exec'd counter.
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"--", "sh", "-c", script}})
			if have := b.Wait(60 * time.Second); have != 0 {
				t.Fatalf("want 0, have %d\n%s", have, b.Stderr.String())
			}
			if !strings.Contains(b.Stdout.String(), "zombies=0") {
				t.Fatalf("zombies left: %s", b.Stdout.String())
			}
		})
	}
}

func TestLeftoversTerminatedWithinKillGrace(t *testing.T) {
	app := harness.TestApp(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "bg.log")
			// A background process in its own session ignores TERM; another in the main's group traps it.
			// The main command exits 5 right away; berth must end both and still exit 5.
			script := fmt.Sprintf("setsid %s -log %s -ignore TERM -sleep 1h & %s -log %s.2 -sleep 1h & sleep 0.3; exit 5", app, log, app, log)
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"-kill-grace", "700ms", "--", "sh", "-c", script}})
			start := time.Now()
			if have := b.Wait(20 * time.Second); have != 5 {
				t.Fatalf("want 5, have %d\n%s", have, b.Stderr.String())
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Fatalf("leftovers took %s with kill_grace 700ms", d)
			}
			harness.WaitFile(t, log, "ready", time.Second)
		})
	}
}

func TestSignalBurstWhileChildrenExit(t *testing.T) {
	app := harness.TestApp(t)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "main.log")
			// The main command forks short-lived children continuously while berth is flooded with signals.
			script := fmt.Sprintf(`trap 'n=$((n+1))' USR1 HUP; %s -log %s; i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; exit 3`, app, log)
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"--", "sh", "-c", script}})
			harness.WaitFile(t, log, "ready", 10*time.Second)
			pid := b.Pid()
			for i := 0; i < 300; i++ {
				sig := syscall.SIGUSR1
				if i%2 == 1 {
					sig = syscall.SIGHUP
				}
				if err := syscall.Kill(pid, sig); err != nil {
					break // berth already exited
				}
			}
			if have := b.Wait(30 * time.Second); have != 3 {
				t.Fatalf("want 3, have %d\n%s", have, b.Stderr.String())
			}
		})
	}
}

func TestUser(t *testing.T) {
	app := harness.TestApp(t)
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"-user", "nobody", app, "-id", "-env", "HOME"}})
	if have := b.Wait(10 * time.Second); have != 0 {
		t.Fatalf("exit %d: %s", have, b.Stderr.String())
	}
	out := b.Stdout.String()
	if !strings.Contains(out, "uid=65534 gid=65534 groups=[]") {
		t.Fatalf("want nobody with no supplementary groups, have %q", out)
	}
	b = harness.RunBerth(t, harness.BerthOpts{Args: []string{"-user", "1234:5678", app, "-id"}})
	if have := b.Wait(10 * time.Second); have != 0 {
		t.Fatalf("exit %d: %s", have, b.Stderr.String())
	}
	if !strings.Contains(b.Stdout.String(), "uid=1234 gid=5678 groups=[]") {
		t.Fatalf("numeric uid:gid: have %q", b.Stdout.String())
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}} {
		b := harness.RunBerth(t, harness.BerthOpts{Args: args})
		if have := b.Wait(10 * time.Second); have != 0 {
			t.Fatalf("%v: exit %d", args, have)
		}
		if !strings.HasPrefix(b.Stdout.String(), "berth v") || !strings.Contains(b.Stdout.String(), "go1.") {
			t.Fatalf("%v: %q", args, b.Stdout.String())
		}
	}
}

// With a controlling terminal (docker run -it) the main command's process group becomes the foreground group,
// so the shell-like child can read the terminal and gets Ctrl-C. `script` gives berth a real pty.
func TestTTYForeground(t *testing.T) {
	app := harness.TestApp(t)
	berth := harness.Berth(t)
	out := filepath.Join(t.TempDir(), "typescript")
	cmd := exec.Command("script", "-qec", berth+" -control-socket off -- "+app+" -foreground -code 4", out)
	have, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 4 || !strings.Contains(string(have), "foreground=true") {
		t.Fatalf("want exit 4 and foreground=true, have %d:\n%s", code, have)
	}
}

// berth catches SIGTSTP/SIGTTIN/SIGTTOU for itself; an ignored disposition would survive exec and make
// Ctrl-Z do nothing in the application. The child's /proc/self/status must not list them as ignored.
func TestJobControlSignalsNotIgnoredInChild(t *testing.T) {
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"-control-socket", "off", "--", "cat", "/proc/self/status"}})
	if have := b.Wait(10 * time.Second); have != 0 {
		t.Fatalf("exit %d: %s", have, b.Stderr.String())
	}
	for _, line := range strings.Split(b.Stdout.String(), "\n") {
		hex, ok := strings.CutPrefix(line, "SigIgn:")
		if !ok {
			continue
		}
		var mask uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(hex), "%x", &mask); err != nil {
			t.Fatal(err)
		}
		for _, s := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
			if mask&(1<<(uint(s)-1)) != 0 {
				t.Fatalf("the child inherited an ignored %v (SigIgn %s)", s, strings.TrimSpace(hex))
			}
		}
		return
	}
	t.Fatalf("no SigIgn line in:\n%s", b.Stdout.String())
}

// drain_delay gives load balancers time while the application still serves; once the main command has
// exited there is nothing to drain and berth must not sit out the delay.
func TestDrainDelaySkippedWhenMainExited(t *testing.T) {
	app := harness.TestApp(t)
	start := time.Now()
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"-control-socket", "off", "-drain-delay", "20s", app, "-code", "3"}})
	if have := b.Wait(30 * time.Second); have != 3 {
		t.Fatalf("want 3, have %d", have)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("berth waited %s of a 20s drain_delay after its main command had exited", d)
	}
}
