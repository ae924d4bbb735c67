//go:build linux

package tests

// Fault scenarios that held when issue 10's fault suite ran against berth, kept as end-to-end tests through
// the real binary: AWS misbehaving on the secrets path, a crash loop, an orphan flood, a signal storm under
// the race detector, malformed input, abuse of the control socket and a sweep for leaked secret values.
// Each records its observation with harness.RecordFault, which `make faults` renders into bench/FAULTS.md.
// The helpers here are prefixed "flt" because every tests/*_test.go shares the package.
//
// Secret values never reach the test output: failures name a value by its index and length, and berth's
// output is scrubbed (secScrub) before it goes into a failure message.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/tests/harness"
)

// TestFaultAWSSecrets: Secrets Manager throttles, fails with 500s, resets connections or never answers (a
// proxy in front of moto answers for it). berth retries within secrets.timeout (throttling: within
// secrets.ThrottleFactor × it), then exits 69 with one line naming the reference; the main command never runs, and neither the value of the secret that did resolve
// (an SSM parameter) nor that of the failing one appears in berth's output.
func TestFaultAWSSecrets(t *testing.T) {
	app := harness.TestApp(t)
	harness.Berth(t) // built before the clock starts
	a := secStartAWS(t)
	const value = "aws-fault-sm-value-never-shown"
	const param = "aws-fault-ssm-value-never-shown"
	a.Secret(t, "fault/db", value)
	a.Param(t, "/fault/param", param, true)
	values := []string{value, param}
	const budget = 2 * time.Second
	cfg := secWriteFile(t, filepath.Join(t.TempDir(), "berth.hcl"), "secrets {\n  timeout = \"2s\"\n}\n")

	for _, c := range []struct {
		name, fault string
		status      int
		body        string
		minAttempts int
		budget      time.Duration
	}{
		// throttled answers are retried past secrets.timeout, up to ThrottleFactor × it
		{"throttling", "400 ThrottlingException on every GetSecretValue", 400, secThrottled, 2, secrets.ThrottleFactor * budget},
		{"500s", "500 InternalServiceError on every GetSecretValue", 500, secInternal, 2, budget},
		{"connection resets", "TCP reset on every GetSecretValue", harness.InjectReset, "", 2, budget},
		// one request holds the whole budget: it is the deadline that ends it, not a retry
		{"stall", "GetSecretValue read and never answered", harness.InjectStall, "", 1, budget},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each waits out its budget, mostly asleep; one moto, a proxy each
			proxy := harness.StartAWSProxy(t, a.moto.URL)
			proxy.SetInject(func(target string, _ int) (int, string) {
				if target == secTargetGetSecret {
					return c.status, c.body
				}
				return 0, ""
			})
			log := filepath.Join(t.TempDir(), "main.log")
			start := time.Now()
			b := secBerth(t, false, a.env(proxy.URL, "DB_PASSWORD=secretsmanager:fault/db", "PARAM=ssm:/fault/param"),
				"run", "-config", cfg, "--", app, "-log", log)
			code := b.Wait(60 * time.Second)
			elapsed := time.Since(start)
			stdout, stderr := b.Stdout.String(), b.Stderr.String()
			attempts := proxy.Count(secTargetGetSecret)
			if code != 69 {
				t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(stderr, values...))
			}
			// it kept trying until the budget was spent, and gave up soon after (generous: a loaded CI box)
			if elapsed < c.budget-100*time.Millisecond || elapsed > c.budget+8*time.Second {
				t.Errorf("want berth to give up when its budget (%s) is spent, it took %s", c.budget, elapsed)
			}
			if attempts < c.minAttempts {
				t.Errorf("want at least %d GetSecretValue attempts, the proxy saw %d", c.minAttempts, attempts)
			}
			lines := secBerthLines(stderr)
			if len(lines) != 1 || !strings.Contains(lines[0], "DB_PASSWORD") || !strings.Contains(lines[0], "secretsmanager:fault/db") {
				t.Errorf("want one berth: line naming DB_PASSWORD and its reference, have %q", secScrub(strings.Join(lines, "\n"), values...))
			}
			t.Logf("after %s and %d attempts: %s", elapsed.Round(time.Millisecond), attempts, secScrub(strings.Join(lines, " | "), values...))
			secNoValues(t, "berth's output", stdout+stderr, values...)
			secNotStarted(t, log)
			noStackTrace(t, secScrub(stderr, values...))
			if t.Failed() {
				return
			}
			expected := "retried within secrets.timeout (2s)"
			if c.budget != budget {
				expected = fmt.Sprintf("retried while throttled, up to %d × secrets.timeout (%s)", secrets.ThrottleFactor, c.budget)
			}
			harness.RecordFault(t, harness.Fault{
				Name:     "AWS secrets: " + c.name,
				Expected: expected + ", exit 69, main command never started, no value in output",
				Observed: fmt.Sprintf("%s: exit 69 with one line naming the reference; main never ran; 0 of %d values in %d bytes of output",
					c.fault, len(values), len(stdout)+len(stderr)),
				Figure: fmt.Sprintf("exit after %.2f s; %d attempts", elapsed.Seconds(), attempts),
			})
		})
	}
}

// TestFaultAWSStallOnce: one black-holed request costs one attempt (a third of secrets.timeout, 2-10s), not
// the whole budget: the retry reaches the endpoint, the secret resolves and the main command runs.
func TestFaultAWSStallOnce(t *testing.T) {
	app := harness.TestApp(t)
	harness.Berth(t)
	a := secStartAWS(t)
	const value = "aws-stall-once-value-never-shown"
	a.Secret(t, "stall/db", value)
	cfg := secWriteFile(t, filepath.Join(t.TempDir(), "berth.hcl"), "secrets {\n  timeout = \"9s\"\n}\n")
	proxy := harness.StartAWSProxy(t, a.moto.URL)
	proxy.SetInject(func(target string, n int) (int, string) {
		if target == secTargetGetSecret && n == 0 {
			return harness.InjectStall, ""
		}
		return 0, ""
	})
	log := filepath.Join(t.TempDir(), "main.log")
	start := time.Now()
	b := secBerth(t, false, a.env(proxy.URL, "DB_PASSWORD=secretsmanager:stall/db"), "run", "-config", cfg, "--", app, "-log", log, "-code", "4")
	code := b.Wait(60 * time.Second)
	elapsed := time.Since(start)
	if code != 4 {
		t.Fatalf("want the main command's 4 after the retry, have %d\n%s", code, secScrub(b.Stderr.String(), value))
	}
	if attempts := proxy.Count(secTargetGetSecret); attempts != 2 {
		t.Errorf("want 2 GetSecretValue attempts (the stalled one, then the answered retry), have %d", attempts)
	}
	if elapsed > 8*time.Second {
		t.Errorf("the stalled attempt held berth for %s: its deadline should be a third of the 9s budget", elapsed)
	}
	secNoValues(t, "berth's output", b.Stdout.String()+b.Stderr.String(), value)
	if t.Failed() {
		return
	}
	harness.RecordFault(t, harness.Fault{Name: "AWS secrets: the first request black-holed",
		Expected: "that attempt ends at a third of secrets.timeout (9s), the retry resolves it, the app starts",
		Observed: "2 attempts, resolved, main ran and its exit code came back",
		Figure:   fmt.Sprintf("resolved after %.2f s", elapsed.Seconds())})
}

// TestFaultCrashLoop: a restart = "always" service that exits at once costs berth next to no CPU, because
// the back-off doubles (1s, 2s, 4s, ... to 30s) instead of spinning.
func TestFaultCrashLoop(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	stamps := filepath.Join(dir, "crash")
	cfg := writeFile(t, dir, "loop.hcl", `
job "crash" {
  type    = "service"
  restart = "always"
  command = `+hclList(app, "-stamp", stamps, "-code", "1")+`
}
`)
	b, sock := runConfig(t, cfg)
	waitLines(t, stamps, 1, 20*time.Second)
	pid := b.Pid()
	const window = 20 * time.Second // starts at about 0, 1, 3, 7 and 15 s
	t0, c0 := time.Now(), cpuTicks(t, pid)
	select {
	case <-b.Done():
		t.Fatalf("berth exited during the crash loop\n%s", b.Stderr.String())
	case <-time.After(window):
	}
	ticks := cpuTicks(t, pid) - c0
	elapsed, used := time.Since(t0), time.Duration(ticks)*10*time.Millisecond
	pct := 100 * used.Seconds() / elapsed.Seconds()
	ts, _ := readStamps(t, stamps)
	restarts := status(t, sock).unit(t, "crash").Restarts
	g := gaps(ts)
	if pct >= 1 {
		t.Errorf("a crash loop costs %.2f%% of one core, want < 1%%", pct)
	}
	if len(g) < 4 {
		t.Fatalf("want at least 5 starts in %s, have %d", window, len(ts))
	}
	for i := 1; i < len(g); i++ {
		if g[i] < g[i-1]+g[i-1]/2 && g[i-1] < 15*time.Second {
			t.Errorf("back-off did not grow: delay %d is %s after %s (all: %v)", i+1, g[i], g[i-1], g)
		}
	}
	if restarts != len(ts)-1 && restarts != len(ts) {
		t.Errorf("ctl status says %d restarts, the job started %d times", restarts, len(ts))
	}
	stopCleanly(t, b)
	if t.Failed() {
		return
	}
	delays := make([]string, len(g))
	for i, d := range g {
		delays[i] = fmt.Sprintf("%.1f", d.Seconds())
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "crash loop: restart = always, the job exits at once",
		Expected: "berth's CPU stays ≈0 %, back-off grows (1s doubling to 30s)",
		Observed: fmt.Sprintf("%d starts, back-off %s s; berth used %d clock ticks of 10 ms (utime+stime of /proc/<berth>/stat)", len(ts), strings.Join(delays, ", "), ticks),
		Figure:   fmt.Sprintf("%.2f %% of one core; %d restarts in %.0f s", pct, restarts, elapsed.Seconds()),
	})
}

// fltProc is one line of /proc/PID/stat: the parent and the state (R, S, Z, ...).
type fltProc struct {
	ppid  int
	state byte
}

// fltProcs reads every process of the machine's (the test's) PID namespace.
func fltProcs() map[int]fltProc {
	out := map[int]fltProc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = fltProc{ppid: ppid, state: f[0][0]}
	}
	return out
}

// fltTree returns the descendants of root in procs, and how many of them are zombies.
func fltTree(procs map[int]fltProc, root int) (desc []int, zombies int) {
	children := map[int][]int{}
	for pid, p := range procs {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	queue := slices.Clone(children[root])
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		desc = append(desc, pid)
		if procs[pid].state == 'Z' {
			zombies++
		}
		queue = append(queue, children[pid]...)
	}
	return desc, zombies
}

// fltForker forks n children that exit at once, waits until every one is a zombie (it never reaps them),
// writes the time to marker and exits: n zombies are re-parented to berth in one go.
const fltForker = `use strict; use POSIX (); use Time::HiRes ();
my ($n, $marker) = @ARGV; my @kids;
for (1..$n) { my $p = fork(); die "fork: $!" unless defined $p; POSIX::_exit(0) if $p == 0; push @kids, $p; }
for my $p (@kids) {
  while (1) { open(my $f, "<", "/proc/$p/stat") or last; my $s = <$f>; close $f; last if $s =~ /\) Z /; Time::HiRes::sleep(0.001); }
}
open(my $m, ">", "$marker.tmp") or die; printf $m "%d\n", Time::HiRes::time() * 1e9; close $m; rename("$marker.tmp", $marker);
POSIX::_exit(0);
`

// TestFaultOrphanFlood: a child forks 1,000 grandchildren that exit at once and exits without reaping them;
// berth, as PID 1 and as child subreaper, reaps all 1,000 re-parented zombies and leaves none.
func TestFaultOrphanFlood(t *testing.T) {
	app := harness.TestApp(t)
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Fatalf("perl is needed to fork without reaping: %v", err)
	}
	const n = 1000
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			forker := writeFile(t, dir, "forker.pl", fltForker)
			marker, log := filepath.Join(dir, "forked"), filepath.Join(dir, "main.log")
			// the main command runs the forker, then becomes a long-running testapp
			script := fmt.Sprintf("%s %s %d %s; exec %s -log %s -exit-on TERM:0", perl, forker, n, marker, app, log)
			b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Args: []string{"-control-socket", "off", "--", "sh", "-c", script}})
			pid := b.Pid()
			// watch berth's tree from the first moment: the most zombies berth was parent of at one scan
			peak := 0
			var forkedAt time.Time
			deadline := time.Now().Add(60 * time.Second)
			var scans int
			var scanning time.Duration
			for {
				t0 := time.Now()
				procs := fltProcs()
				scanning += time.Since(t0)
				scans++
				desc, zombies := fltTree(procs, pid)
				direct := 0
				for _, d := range desc {
					if p := procs[d]; p.ppid == pid && p.state == 'Z' {
						direct++
					}
				}
				peak = max(peak, direct)
				if forkedAt.IsZero() {
					if data, err := os.ReadFile(marker); err == nil {
						ns, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
						forkedAt = time.Unix(0, ns)
					}
				}
				// done: the forker is gone (and reaped by the shell), no zombie anywhere below berth
				if !forkedAt.IsZero() && len(desc) == 1 && zombies == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("berth's tree did not settle within 60s: %d descendants, %d zombies\n%s", len(desc), zombies, b.Stderr.String())
				}
				select {
				case <-b.Done():
					t.Fatalf("berth exited early: %d\n%s", b.Wait(0), b.Stderr.String())
				default:
				}
			}
			reaped := time.Since(forkedAt)
			harness.WaitFile(t, log, "ready", 10*time.Second)
			b.Signal(syscall.SIGTERM)
			if code := b.Wait(20 * time.Second); code != 0 {
				t.Fatalf("want exit 0, have %d\n%s", code, b.Stderr.String())
			}
			if reaped > 10*time.Second {
				t.Errorf("reaping %d zombies took %s", n, reaped)
			}
			if t.Failed() {
				return
			}
			harness.RecordFault(t, harness.Fault{
				Name:     "orphan flood (" + m.name + ")",
				Expected: "1,000 re-parented zombies all reaped, none left",
				Observed: fmt.Sprintf("a child forked %d children that exited and exited itself without reaping; up to %d zombies seen under berth at one scan; 0 left", n, peak),
				Figure: fmt.Sprintf("%d ms from the forker's exit to 0 zombies (a /proc scan every %.1f ms)", reaped.Milliseconds(),
					float64(scanning.Microseconds())/1000/float64(scans)),
			})
		})
	}
}

// fltStormSignals are the signals of the storm: forwarded ones the main command traps, and ones berth
// handles itself (SIGCHLD: a reap; SIGURG: the Go runtime's own).
var fltStormSignals = []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP, syscall.SIGALRM, syscall.SIGWINCH,
	syscall.SIGCONT, syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE, syscall.SIGIO, syscall.SIGPWR, syscall.SIGPROF}

// fltStorm sends n signals, cycling through fltStormSignals, to pid, paced to take about d. It stops at the
// first failed kill(2) (the process is gone).
func fltStorm(pid, n int, d time.Duration) (sent int, took time.Duration, err error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := syscall.Kill(pid, fltStormSignals[i%len(fltStormSignals)]); err != nil {
			return i, time.Since(start), err
		}
		if i%50 == 49 {
			if ahead := time.Until(start.Add(d * time.Duration(i+1) / time.Duration(n))); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return n, time.Since(start), nil
}

// fltStormScript is a main command that traps every forwarded signal of the storm, reports ready through
// testapp, forks short-lived children until stop exists, then exits 3.
func fltStormScript(app, log, stop string) string {
	return fmt.Sprintf(`trap 'n=$((n+1))' USR1 USR2 HUP ALRM WINCH CONT PIPE IO PWR PROF; %s -log %s; while [ ! -e %s ]; do /bin/true; done; exit 3`, app, log, stop)
}

// TestFaultSignalStorm: 5,000 mixed signals in about a second to the race-enabled berth while its main
// command's children exit: no deadlock (the control socket answers during and after), the main command's
// exit code comes out, and the race detector reports nothing. As PID 1 the release build takes the same storm.
func TestFaultSignalStorm(t *testing.T) {
	app := harness.TestApp(t)
	const n, over = 5000, time.Second
	t.Run("race subreaper", func(t *testing.T) {
		dir := t.TempDir()
		log, stop := filepath.Join(dir, "main.log"), filepath.Join(dir, "stop")
		sock := sockPath(t)
		r := startRaceBerth(t, "-control-socket", sock, "--", "sh", "-c", fltStormScript(app, log, stop))
		harness.WaitFile(t, log, "ready", 30*time.Second)
		waitRaceSocket(t, r, sock)
		sent, took, err := fltStorm(r.cmd.Process.Pid, n, over)
		if err != nil {
			t.Fatalf("kill(2) failed after %d signals: %v\n%s", sent, err, r.stderr.String())
		}
		// no deadlock: berth still answers its socket right after the storm
		answered := time.Now()
		if code, _, stderr := ctl(t, sock, "status"); code != 0 {
			t.Fatalf("ctl status after the storm: exit %d\n%s\nberth:\n%s", code, stderr, r.stderr.String())
		}
		latency := time.Since(answered)
		if err := os.WriteFile(stop, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("berth did not exit within 60s of the main command being told to stop (deadlock?)\n%s", r.stderr.String())
		}
		stderr := r.stderr.String()
		if strings.Contains(stderr, "DATA RACE") || strings.Contains(stderr, "WARNING: DATA RACE") {
			t.Fatalf("the race detector reported:\n%s", stderr)
		}
		if r.code != 3 {
			t.Fatalf("want the main command's exit code 3, have %d\n%s", r.code, stderr)
		}
		noStackTrace(t, stderr)
		if t.Failed() {
			return
		}
		harness.RecordFault(t, harness.Fault{
			Name:     "signal storm (race-enabled berth, subreaper)",
			Expected: "no deadlock, exit code kept, no race report",
			Observed: fmt.Sprintf("%d signals of %d kinds while the main command forked children; ctl status answered after it; main exited 3, berth exited 3; no race report", sent, len(fltStormSignals)),
			Figure:   fmt.Sprintf("%d signals in %.2f s; ctl status %d ms after", sent, took.Seconds(), latency.Milliseconds()),
		})
	})
	t.Run("pid1", func(t *testing.T) {
		dir := t.TempDir()
		log, stop := filepath.Join(dir, "main.log"), filepath.Join(dir, "stop")
		b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"-control-socket", "off", "--", "sh", "-c", fltStormScript(app, log, stop)}})
		harness.WaitFile(t, log, "ready", 30*time.Second)
		sent, took, err := fltStorm(b.Pid(), n, over)
		if err != nil {
			t.Fatalf("kill(2) failed after %d signals: %v\n%s", sent, err, b.Stderr.String())
		}
		if err := os.WriteFile(stop, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if code := b.Wait(60 * time.Second); code != 3 {
			t.Fatalf("want the main command's exit code 3, have %d\n%s", code, b.Stderr.String())
		}
		noStackTrace(t, b.Stderr.String())
		if t.Failed() {
			return
		}
		harness.RecordFault(t, harness.Fault{
			Name:     "signal storm (PID 1)",
			Expected: "no deadlock, exit code kept",
			Observed: fmt.Sprintf("%d signals of %d kinds while the main command forked children; main exited 3, berth exited 3", sent, len(fltStormSignals)),
			Figure:   fmt.Sprintf("%d signals in %.2f s", sent, took.Seconds()),
		})
	})
}

// fltPosRE is how a config problem starts: berth: FILE:LINE:COL:
func fltPosRE(path string) *regexp.Regexp {
	return regexp.MustCompile(`^berth: ` + regexp.QuoteMeta(path) + `:\d+:\d+: \S`)
}

// TestFaultBadInput: malformed flags are exit 64 with one line, malformed config files exit 78 with
// file:line:col on every line (`run` says it in one line and starts nothing), and nothing prints a Go stack.
func TestFaultBadInput(t *testing.T) {
	app := harness.TestApp(t)
	flags := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-no-such-flag", app}},
		{"flag without its value", []string{"-control-socket"}},
		{"bad duration", []string{"-stop-timeout", "abc", app}},
		{"negative duration", []string{"-kill-grace", "-1s", app}},
		{"bad log level", []string{"-log-level", "loud", app}},
		{"unknown signal in a rewrite", []string{"-signal-rewrite", "TERM:NOPE", app}},
		{"rewrite of an uncatchable signal", []string{"-signal-rewrite", "KILL:TERM", app}},
		{"signal number out of range", []string{"-stop-signal", "99", app}},
		{"ctl: unknown command", []string{"ctl", "nosuchcmd"}},
		{"health: unknown flag", []string{"health", "-x"}},
		{"validate without -config", []string{"validate"}},
	}
	configs := []struct{ name, file, content string }{
		{"NUL bytes", "nul.hcl", "log_level = \"info\"\x00\x01\x02\n"},
		{"invalid UTF-8", "utf8.hcl", "log_level = \"\xff\xfe\"\n"},
		{"unclosed block", "unclosed.hcl", "main {\n  command = [\"true\"]\n"},
		{"unterminated heredoc", "heredoc.hcl", "log_level = <<EOF\ninfo\n"},
		{"string for a list", "type.hcl", "main {\n  command = \"true\"\n}\n"},
		{"duplicate main block", "dup.hcl", "main {\n  command = [\"true\"]\n}\nmain {\n  command = [\"false\"]\n}\n"},
		{"unknown function", "fn.hcl", "log_level = \"${nosuchfn(1)}\"\n"},
		{"malformed secret() reference", "ref.hcl", "main {\n  command = [\"true\"]\n  env = { A = \"${secret(\"nope:x\")}\" }\n}\n"},
		{"truncated JSON", "trunc.json", `{"main": {"command": ["true"]`},
		{"JSON root array", "array.json", "[1, 2, 3]\n"},
	}
	var stderrBytes atomic.Int64
	for _, c := range flags {
		t.Run("flags/"+c.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			args := slices.Clone(c.args)
			if len(args) > 0 && args[len(args)-1] == app {
				args = append(args, "-log", marker)
			}
			code, stdout, stderr := berthCmd(t, nil, args...)
			stderrBytes.Add(int64(len(stderr) + len(stdout)))
			if code != 64 {
				t.Fatalf("want exit 64, have %d\nstderr:\n%s", code, stderr)
			}
			if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "berth: ") {
				t.Errorf("want one line \"berth: ...\" on stderr, have:\n%s", stderr)
			}
			noStackTrace(t, stderr)
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the main command ran despite the usage error")
			}
		})
	}
	for _, c := range configs {
		t.Run("config/"+c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, c.file, c.content)
			pos := fltPosRE(path)
			code, stdout, stderr := berthCmd(t, nil, "validate", "-config", path)
			stderrBytes.Add(int64(len(stderr) + len(stdout)))
			if code != 78 {
				t.Fatalf("validate: want exit 78, have %d\nstderr:\n%s", code, stderr)
			}
			for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
				if !pos.MatchString(l) {
					t.Errorf("validate: a line without %s:LINE:COL: %q", path, l)
				}
			}
			noStackTrace(t, stderr)

			marker := filepath.Join(dir, "started")
			code, stdout, stderr = berthCmd(t, nil, "run", "-control-socket", "off", "-config", path, "--", app, "-log", marker)
			stderrBytes.Add(int64(len(stderr) + len(stdout)))
			if code != 78 {
				t.Fatalf("run: want exit 78, have %d\nstderr:\n%s", code, stderr)
			}
			if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || !pos.MatchString(lines[0]) {
				t.Errorf("run: want one line berth: %s:LINE:COL: ..., have:\n%s", path, stderr)
			}
			noStackTrace(t, stderr)
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("run with a bad config started the main command")
			}
		})
	}
	if t.Failed() {
		return
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "bad input: malformed flags and config files",
		Expected: "bad flags → 64 in one line; bad config → 78 with file:line:col, nothing started; never a Go stack trace",
		Observed: fmt.Sprintf("%d flag errors (unknown, missing value, bad duration/level/signal/rewrite, ctl/health/validate usage) → 64, one line each; %d configs (NUL, invalid UTF-8, unclosed block, heredoc, wrong type, duplicate block, unknown function, bad secret(), truncated JSON, JSON array) → 78 from validate and run, every line FILE:LINE:COL, main never started",
			len(flags), len(configs)),
		Figure: fmt.Sprintf("%d inputs, 0 stack traces in %d bytes of output", len(flags)+len(configs), stderrBytes.Load()),
	})
}

// fltUnixClient is an HTTP client for berth's control socket.
func fltUnixClient(sock string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
}

// fltRepeat is an endless reader of one byte.
type fltRepeat byte

func (r fltRepeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestFaultControlSocketAbuse: 1,000 `berth ctl status` processes and 1,000 connections open at once, a
// 100 MB request body (413 after the 64 KiB limit) and a client that is not root (the 0600 socket refuses
// it); the race-enabled berth answers all of them right and keeps serving.
func TestFaultControlSocketAbuse(t *testing.T) {
	app := harness.TestApp(t)
	bin := harness.Berth(t)
	sock := sockPath(t)
	r := startRaceBerth(t, "-control-socket", sock, "--", app, "-exit-on", "TERM:0")
	waitRaceSocket(t, r, sock)
	const clients = 1000

	// 1,000 ctl processes, at most 200 alive at a time (each is a Go runtime of ~20 MB)
	var failed atomic.Int64
	var firstErr atomic.Value
	var lat []time.Duration
	var latMu sync.Mutex
	sem := make(chan struct{}, 200)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t0 := time.Now()
			out, err := exec.CommandContext(ctx, bin, "ctl", "-socket", sock, "status").CombinedOutput()
			d := time.Since(t0)
			if err != nil || !strings.Contains(string(out), `"processes"`) {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%v: %s", err, out))
				return
			}
			latMu.Lock()
			lat = append(lat, d)
			latMu.Unlock()
		}()
	}
	wg.Wait()
	procsWall := time.Since(start)
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d ctl status clients failed; first: %v\nberth:\n%s", n, clients, firstErr.Load(), r.stderr.String())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[len(lat)*99/100]

	// 1,000 connections open at the same time, each with a status request in flight
	conns := make([]net.Conn, 0, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < clients; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	start = time.Now()
	errs := make(chan error, clients)
	for _, c := range conns {
		go func() {
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n"); err != nil {
				errs <- err
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || !json.Valid(body)) {
				err = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
			}
			errs <- err
		}()
	}
	bad := 0
	var badErr error
	for range conns {
		if err := <-errs; err != nil {
			bad++
			badErr = err
		}
	}
	connsWall := time.Since(start)
	if bad > 0 {
		t.Fatalf("%d of %d simultaneous connections got no status: %v", bad, clients, badErr)
	}

	// a 100 MB body: refused with 413 once the 64 KiB limit is read, not buffered
	const size = 100 << 20
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	var written atomic.Int64
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		head := fmt.Sprintf("POST /v1/env HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
		body := io.MultiReader(strings.NewReader(head+`{"key":"K","value":"`), io.LimitReader(fltRepeat('x'), size-22), strings.NewReader(`"}`))
		n, _ := io.Copy(c, body) // the server stops reading: the copy ends with EPIPE
		written.Store(n)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("100 MB body: no answer: %v", err)
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("100 MB body: want 413, have %d %s", resp.StatusCode, answer)
	}
	c.Close()
	<-copied

	// a client that is not berth's user: the 0600 socket refuses it (its directory is opened up for this)
	nonRoot := "not run (the test is not root: cannot switch to nobody)"
	if os.Getuid() == 0 {
		if err := os.Chmod(filepath.Dir(sock), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", bin, "ctl", "-socket", sock, "status").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 69 || !strings.Contains(string(out), "permission denied") {
			t.Fatalf("ctl status as nobody: want exit 69 and permission denied, have %v:\n%s", err, out)
		}
		if strings.Contains(string(out), `"processes"`) {
			t.Fatalf("nobody got the status document:\n%s", out)
		}
		nonRoot = "uid 65534 → connect: permission denied, exit 69"
	}

	// and berth still serves
	st := status(t, sock)
	if st.Pid != r.cmd.Process.Pid || len(st.Processes) != 1 {
		t.Fatalf("status after the abuse: %+v", st)
	}
	r.stop(t)
	if t.Failed() {
		return
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "control-socket abuse (race-enabled berth)",
		Expected: "1,000 concurrent ctl clients answered; 100 MB body → 413; non-root client → permission denied; berth keeps serving",
		Observed: fmt.Sprintf("%d `berth ctl status` processes (200 at a time) and %d simultaneous connections all got the status; 100 MB POST → 413 after %d KiB were sent; %s; status still served, exit 0, no race report",
			clients, clients, written.Load()>>10, nonRoot),
		Figure: fmt.Sprintf("%d processes in %.1f s (p99 %d ms); %d connections in %d ms", clients, procsWall.Seconds(), p99.Milliseconds(), clients, connsWall.Milliseconds()),
	})
}

// fltSweep collects what a leak sweep scanned: each named text is searched for every value.
type fltSweep struct {
	t      *testing.T
	values []string
	bytes  int
	places []string
	leaks  int
}

func (s *fltSweep) scan(what, text string) {
	s.t.Helper()
	s.bytes += len(text)
	s.places = append(s.places, what)
	for i, v := range s.values {
		if strings.Contains(text, v) {
			s.leaks++
			s.t.Errorf("%s holds secret value #%d (%d bytes)", what, i, len(v))
		}
	}
}

// TestFaultLeakSweep: 13 distinct secret values seeded in moto (Secrets Manager strings and JSON keys, SSM
// SecureString and String parameters, an ssm_path, a kms: ciphertext, a kms_file) reach berth through env
// references, ${secret()} in the config and secret blocks. With berth as PID 1 at trace level, DogStatsD and
// Prometheus on, none of them appears in berth's stdout or stderr, `ctl status`, /metrics, /status, the
// DogStatsD datagrams, or /proc/<berth>/environ and cmdline — nor in the output of a run whose resolution
// fails, or whose main command fails after printing them.
func TestFaultLeakSweep(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	dir := t.TempDir()
	v := make([]string, 13)
	for i := range v {
		v[i] = fmt.Sprintf("sweep-%02d-%x-never-leak", i+1, time.Now().UnixNano()+int64(i)*7919)
	}
	a.Secret(t, "sweep/token", v[0])
	dbARN, _ := a.Secret(t, "sweep/db", fmt.Sprintf(`{"username":%q,"password":%q,"apikey":%q}`, v[1], v[2], v[3]))
	a.Param(t, "/sweep/arnparam", v[4], true)
	a.Param(t, "/sweep/plain", v[5], false)
	key := a.Key(t)
	kmsPlain := secWriteFile(t, filepath.Join(dir, "kms.plain"), v[6])
	kmsRef := strings.TrimSpace(secEncrypt(t, a, "-key", key, "-ref", "-in", kmsPlain))
	a.Secret(t, "sweep/cfg", v[7])
	a.Param(t, "/sweep/path/a", v[8], true)
	a.Param(t, "/sweep/path/b", v[9], true)
	a.Secret(t, "sweep/file", v[10])
	bakedPlain, bakedEnc := secWriteFile(t, filepath.Join(dir, "baked.plain"), v[11]), filepath.Join(dir, "baked.enc")
	secEncrypt(t, a, "-key", key, "-in", bakedPlain, "-out", bakedEnc)
	for _, p := range []string{kmsPlain, bakedPlain} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	a.Param(t, "/sweep/jobparam", v[12], true)

	refs := []string{
		"API_TOKEN=secretsmanager:sweep/token",
		"ARN_KEY=" + dbARN + ":apikey::",
		"ARN_PARAM=arn:aws:ssm:us-east-1:" + secAccount + ":parameter/sweep/arnparam",
		"PLAIN_PARAM=ssm:/sweep/plain",
		"KMS_VALUE=" + kmsRef,
	}
	mainVars := []string{"API_TOKEN", "ARN_KEY", "ARN_PARAM", "PLAIN_PARAM", "KMS_VALUE", "DB_USER", "DB_PASSWORD", "CFG_URL", "P_A", "P_B"}
	want := map[string]string{"API_TOKEN": v[0], "DB_USER": v[1], "DB_PASSWORD": v[2], "ARN_KEY": v[3], "ARN_PARAM": v[4],
		"PLAIN_PARAM": v[5], "KMS_VALUE": v[6], "CFG_URL": "https://app:" + v[7] + "@db/", "P_A": v[8], "P_B": v[9]}
	fileOut, bakedOut := filepath.Join(dir, "out", "file"), filepath.Join(dir, "out", "baked")
	config := func(mainArgs ...string) string {
		return secWriteFile(t, filepath.Join(t.TempDir(), "berth.hcl"), fmt.Sprintf(`
main {
  command = %s
  env     = { CFG_URL = "https://app:${secret("secretsmanager:sweep/cfg")}@db/" }
}
job "side" {
  type    = "service"
  command = %s
  env     = { JOB_SECRET = "${secret("ssm:/sweep/jobparam")}" }
}
secret "db" {
  secretsmanager = "sweep/db"
  env            = { DB_USER = "username", DB_PASSWORD = "password" }
}
secret "params" {
  ssm_path   = "/sweep/path/"
  env_prefix = "P_"
}
secret "file" {
  secretsmanager = "sweep/file"
  file           = %q
}
secret "baked" {
  kms_file = %q
  file     = %q
}
`, hclList(append([]string{app, "-env", strings.Join(mainVars, ",")}, mainArgs...)...),
			hclList(app, "-env", "JOB_SECRET", "-exit-on", "TERM:0"), fileOut, bakedEnc, bakedOut))
	}
	sw := &fltSweep{t: t, values: v}

	t.Run("running", func(t *testing.T) {
		sw.t = t
		log, envOut := filepath.Join(dir, "main.log"), filepath.Join(dir, "env.json")
		dsd := harness.ListenStatsd(t, "udp", "127.0.0.1:0")
		prom := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		sock := sockPath(t)
		env := a.env("", append(refs, "DD_AGENT_HOST=127.0.0.1",
			"DD_DOGSTATSD_PORT="+strconv.Itoa(dsd.Conn.LocalAddr().(*net.UDPAddr).Port))...)
		b := secBerth(t, true, env, "run", "-config", config("-env-json", envOut, "-log", log, "-exit-on", "TERM:0"),
			"-log-level", "trace", "-control-socket", sock, "-prometheus", prom)
		harness.WaitFile(t, log, "ready", 60*time.Second)
		waitSocket(t, b, sock)
		secCompare(t, secChildEnv(t, envOut), want)
		for path, value := range map[string]string{fileOut: v[10], bakedOut: v[11]} {
			if data, err := os.ReadFile(path); err != nil || string(data) != value {
				t.Errorf("want the secret block's file %s written (%d bytes, %v)", path, len(data), err)
			}
		}

		pid := b.Pid()
		for _, f := range []string{"environ", "cmdline"} {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			sw.scan("/proc/<berth>/"+f, string(data))
			if f == "environ" && !strings.Contains(string(data), "API_TOKEN=secretsmanager:sweep/token") {
				t.Errorf("/proc/<berth>/environ lacks the reference API_TOKEN (it should hold references, not values)")
			}
		}
		code, out, stderr := ctl(t, sock, "status")
		if code != 0 || !strings.Contains(out, "secretsmanager:sweep/token") {
			t.Errorf("ctl status: exit %d, want the references listed:\n%s", code, secScrub(out+stderr, v...))
		}
		sw.scan("ctl status", out+stderr)
		for _, path := range []string{"/metrics", "/status"} {
			resp, err := http.Get("http://" + prom + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("prometheus %s: %d", path, resp.StatusCode)
			}
			sw.scan("prometheus "+path, string(body))
		}

		b.Signal(syscall.SIGTERM)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), v...))
		}
		stdout, stderr := b.Stdout.String(), b.Stderr.String()
		if !strings.Contains(stderr, "[TRACE]") && !strings.Contains(stderr, "[DEBUG]") {
			t.Errorf("want berth's trace log on stderr (the sweep would prove nothing), have:\n%s", secScrub(stderr, v...))
		}
		for _, l := range []string{"API_TOKEN=[REDACTED] set=true", "JOB_SECRET=[REDACTED] set=true", "CFG_URL=https://app:[REDACTED]@db/ set=true"} {
			if !strings.Contains(stdout, l) {
				t.Errorf("the children's output lacks %q (printed, then redacted)", l)
			}
		}
		sw.scan("berth's stdout (the children's output)", stdout)
		sw.scan("berth's trace-level stderr", stderr)
		// DogStatsD datagrams are flushed at shutdown and may trail the exit
		if !harness.Within(5*time.Second, func() bool {
			return slices.ContainsFunc(dsd.Lines(), func(l string) bool { return strings.HasPrefix(l, "berth.process.exits:") })
		}) {
			t.Errorf("no berth.process.exits datagram; received %d lines", len(dsd.Lines()))
		}
		sw.scan("DogStatsD datagrams", strings.Join(dsd.Lines(), "\n"))
	})

	t.Run("resolution fails", func(t *testing.T) {
		sw.t = t
		log := filepath.Join(t.TempDir(), "main.log")
		b := secBerth(t, true, a.env("", append(refs, "MISSING=secretsmanager:sweep/missing")...),
			"run", "-config", config("-log", log), "-log-level", "trace")
		if code := b.Wait(60 * time.Second); code != 69 {
			t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), v...))
		}
		secNotStarted(t, log)
		sw.scan("stdout of a failed resolution", b.Stdout.String())
		sw.scan("trace-level stderr of a failed resolution", b.Stderr.String())
	})

	t.Run("main command fails", func(t *testing.T) {
		sw.t = t
		b := secBerth(t, true, a.env("", refs...), "run", "-config", config("-code", "3"), "-log-level", "trace")
		if code := b.Wait(60 * time.Second); code != 3 {
			t.Fatalf("want exit 3, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), v...))
		}
		if !strings.Contains(b.Stdout.String(), "DB_PASSWORD=[REDACTED] set=true") {
			t.Errorf("the failing main command's output lacks DB_PASSWORD=[REDACTED]")
		}
		sw.scan("stdout of a failing main command", b.Stdout.String())
		sw.scan("trace-level stderr of a failing main command", b.Stderr.String())
	})
	sw.t = t
	if t.Failed() {
		return
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "leak sweep: 13 seeded secret values",
		Expected: "no value in berth's stdout/stderr (trace), ctl status, metrics, /proc/<berth>/environ",
		Observed: fmt.Sprintf("values from Secrets Manager (string, JSON keys, by ARN), SSM (SecureString, String, ARN, ssm_path), KMS (kms: ref, kms_file) via env references, ${secret()} in main and job env, and secret blocks (env and files); berth as PID 1 at trace level, DogStatsD + Prometheus on, plus a failed resolution and a failing main command; %d places scanned: %s",
			len(sw.places), strings.Join(sw.places, "; ")),
		Figure: fmt.Sprintf("%d bytes scanned, %d leaks", sw.bytes, sw.leaks),
	})
}
