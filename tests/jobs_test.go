package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// runConfig starts berth (PID 1 of its own namespace) with a config file and its own control socket.
func runConfig(t *testing.T, cfg string, extra ...string) (*harness.BerthRun, string) {
	t.Helper()
	sock := sockPath(t)
	args := append([]string{"run", "-control-socket", sock, "-config", cfg}, extra...)
	return harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: args}), sock
}

func TestAfterOneshotBeforeMain(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	migrate, mainStamp := filepath.Join(dir, "migrate"), filepath.Join(dir, "main")
	cfg := writeFile(t, dir, "after.hcl", `
main {
  command = `+hclList(app, "-stamp", mainStamp)+`
  after   = ["migrate", "warm"]
}
job "migrate" {
  type    = "oneshot"
  command = `+hclList(app, "-stamp", migrate, "-sleep", "700ms")+`
}
job "warm" {
  type    = "oneshot"
  after   = ["migrate"]
  command = `+hclList(app, "-stamp", migrate, "-sleep", "300ms")+`
}
`)
	b, _ := runConfig(t, cfg)
	if have := b.Wait(30 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	jobs, _ := readStamps(t, migrate)
	mains, _ := readStamps(t, mainStamp)
	if len(jobs) != 2 || len(mains) != 1 {
		t.Fatalf("want 2 oneshot runs and 1 main run, have %d and %d", len(jobs), len(mains))
	}
	// warm waits for migrate (700ms), main waits for warm (300ms)
	if d := jobs[1].Sub(jobs[0]); d < 700*time.Millisecond {
		t.Errorf("warm started %s after migrate, before migrate could have exited (700ms)", d)
	}
	if d := mains[0].Sub(jobs[1]); d < 300*time.Millisecond {
		t.Errorf("main started %s after warm, before warm could have exited (300ms)", d)
	}
}

func TestFailingOneshotStopsStartup(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	marker, side := filepath.Join(dir, "main-started"), filepath.Join(dir, "side-started")
	cfg := writeFile(t, dir, "fail.hcl", `
main { after = ["migrate"] }
job "migrate" {
  type    = "oneshot"
  command = `+hclList(app, "-sleep", "200ms", "-code", "3")+`
}
job "side" {
  type    = "service"
  after   = ["migrate"]
  command = `+hclList(app, "-log", side, "-sleep", "1h")+`
}
`)
	b, _ := runConfig(t, cfg, "--", app, "-log", marker)
	if have := b.Wait(30 * time.Second); have != 3 {
		t.Fatalf("want the oneshot's exit code 3, have %d\n%s", have, b.Stderr.String())
	}
	for _, p := range []string{marker, side} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s started although the oneshot it waits for failed", filepath.Base(p))
		}
	}
	if !strings.Contains(b.Stderr.String(), "berth: job migrate exited 3") {
		t.Errorf("stderr lacks the failure line:\n%s", b.Stderr.String())
	}
}

// gaps returns the differences between consecutive times.
func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

func TestCrashingServiceBacksOffAndGivesUp(t *testing.T) {
	app := harness.TestApp(t)
	t.Run("required", func(t *testing.T) {
		dir := t.TempDir()
		stamps, mainLog := filepath.Join(dir, "crash"), filepath.Join(dir, "main")
		cfg := writeFile(t, dir, "crash.hcl", `
main { command = `+hclList(app, "-log", mainLog, "-exit-on", "TERM:0")+` }
job "crash" {
  type         = "service"
  restart      = "always"
  max_restarts = 3
  command      = `+hclList(app, "-stamp", stamps, "-code", "1")+`
}
`)
		start := time.Now()
		b, _ := runConfig(t, cfg)
		if have := b.Wait(60 * time.Second); have != 70 {
			t.Fatalf("want exit 70 when a required service gives up, have %d\n%s", have, b.Stderr.String())
		}
		ts, _ := readStamps(t, stamps)
		if len(ts) != 4 {
			t.Fatalf("want 1 start + 3 restarts, have %d starts", len(ts))
		}
		g := gaps(ts)
		t.Logf("restart delays: %v (total %s)", g, time.Since(start).Round(time.Millisecond))
		// 1s, 2s, 4s: each delay at least the back-off and longer than the one before
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			if g[i] < want-50*time.Millisecond || g[i] > want+3*time.Second {
				t.Errorf("delay %d is %s, want about %s", i+1, g[i], want)
			}
			if i > 0 && g[i] <= g[i-1] {
				t.Errorf("delay %d (%s) did not grow from %s", i+1, g[i], g[i-1])
			}
		}
		// the main command was stopped gracefully on the way out
		harness.WaitFile(t, mainLog, "signal TERM", time.Second)
	})
	t.Run("optional", func(t *testing.T) {
		dir := t.TempDir()
		stamps := filepath.Join(dir, "crash")
		cfg := writeFile(t, dir, "crash.hcl", `
main { command = `+hclList(app, "-sleep", "4s", "-code", "0")+` }
job "crash" {
  type         = "service"
  restart      = "on-failure"
  max_restarts = 1
  optional     = true
  command      = `+hclList(app, "-stamp", stamps, "-code", "1")+`
}
`)
		b, sock := runConfig(t, cfg)
		waitLines(t, stamps, 2, 20*time.Second)
		// it gave up (the status says failed) and berth keeps running the main command
		var out string
		if !harness.WithinEvery(10*time.Second, 100*time.Millisecond, func() bool { // a ctl process per check
			var code int
			code, out, _ = ctl(t, sock, "status")
			return code == 0 && unitState(t, out, "crash") == "failed"
		}) {
			t.Fatalf("the optional job is not failed after giving up:\n%s", out)
		}
		if have := b.Wait(30 * time.Second); have != 0 {
			t.Fatalf("an optional job giving up must not change the exit code: want 0, have %d\n%s", have, b.Stderr.String())
		}
		if ts, _ := readStamps(t, stamps); len(ts) != 2 {
			t.Fatalf("want 2 starts (max_restarts = 1), have %d", len(ts))
		}
	})
}

// unitState returns the state of the named process in a `berth ctl status` document.
func unitState(t *testing.T, doc, name string) string {
	t.Helper()
	st := parseStatus(t, doc)
	for _, p := range st.Processes {
		if p.Name == name {
			return p.State
		}
	}
	return ""
}

// ctlStatus is the part of `berth ctl status` the tests read.
type ctlStatus struct {
	Pid       int       `json:"pid"`
	Processes []ctlProc `json:"processes"`
}

type ctlProc struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit *int   `json:"last_exit"`
}

func parseStatus(t *testing.T, doc string) ctlStatus {
	t.Helper()
	var st ctlStatus
	dec := json.NewDecoder(strings.NewReader(doc))
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("ctl status is not JSON: %v\n%s", err, doc)
	}
	return st
}

// cpuTicks is utime+stime of pid in clock ticks (USER_HZ, 100 on Linux).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// after the command: state(0) ppid(1) ... utime(11) stime(12)
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func TestPeriodicJob(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	fast, slow := filepath.Join(dir, "fast"), filepath.Join(dir, "slow")
	cfg := writeFile(t, dir, "every.hcl", `
job "fast" {
  every   = "1s"
  command = `+hclList(app, "-stamp", fast)+`
}
job "slow" {
  every   = "500ms"
  command = `+hclList(app, "-stamp", slow, "-sleep", "1200ms")+`
}
`)
	b, _ := runConfig(t, cfg)
	waitLines(t, fast, 5, 30*time.Second)
	waitLines(t, slow, 3, 30*time.Second)
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	ft, _ := readStamps(t, fast)
	for i, g := range gaps(ft) {
		if g < 900*time.Millisecond || g > 3*time.Second {
			t.Errorf("fast run %d came %s after the previous one, want about 1s", i+2, g)
		}
	}
	// slow runs 1.2s but is due every 500ms: the runs never overlap
	st, _ := readStamps(t, slow)
	for i, g := range gaps(st) {
		if g < 1200*time.Millisecond {
			t.Errorf("slow run %d started %s after the previous one, which runs 1.2s: overlap", i+2, g)
		}
	}
	t.Logf("fast gaps %v, slow gaps %v", gaps(ft), gaps(st))
}

// sh returns an HCL argv that appends line to log.
func shAppend(line, log string) string {
	return hclList("/bin/sh", "-c", "echo "+line+" >> "+log)
}

func TestHooksAndStopOrder(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "events")
	cfg := writeFile(t, dir, "hooks.hcl", `
main {
  command = `+hclList(app, "-log", log, "-exit-on", "TERM:0")+`
  after   = ["b"]
  pre_start { command = `+shAppend("main-pre_start", log)+` }
  pre_stop  { command = `+shAppend("main-pre_stop", log)+` }
  post_stop { command = `+shAppend("main-post_stop", log)+` }
}
job "a" {
  type    = "service"
  command = `+hclList(app, "-log", log, "-exit-on", "TERM:0")+`
  pre_stop  { command = `+shAppend("a-pre_stop", log)+` }
  post_stop { command = `+shAppend("a-post_stop", log)+` }
}
job "b" {
  type    = "service"
  after   = ["a"]
  command = `+hclList(app, "-log", log, "-exit-on", "TERM:0")+`
  pre_stop  { command = `+shAppend("b-pre_stop", log)+` }
  post_stop { command = `+shAppend("b-post_stop", log)+` }
}
`)
	b, sock := runConfig(t, cfg)
	waitSocket(t, b, sock)
	if !harness.Within(20*time.Second, func() bool { return strings.Count(fileText(t, log), "ready") >= 3 }) {
		t.Fatalf("not all three processes started:\n%s", fileText(t, log))
	}
	_, out, _ := ctl(t, sock, "status")
	names := map[string]string{} // "ready pid=N" → process name
	for _, p := range parseStatus(t, out).Processes {
		names["pid="+strconv.Itoa(p.Pid)] = p.Name
	}
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(30 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	var start, stop []string
	for _, l := range strings.Split(strings.TrimSpace(fileText(t, log)), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "ready" {
			l = "ready-" + names[f[1]]
		}
		if len(start) < 4 {
			start = append(start, l)
		} else {
			stop = append(stop, l)
		}
	}
	// start-up: a, then b (after a), then main's pre_start, then main (after b). a and b log "ready"
	// asynchronously, so only main's pre_start → main is a strict order in the file.
	idx := func(ev string) int {
		for i, e := range start {
			if e == ev {
				return i
			}
		}
		t.Fatalf("start-up lacks %q: %q", ev, start)
		return -1
	}
	idx("ready-a")
	idx("ready-b")
	if idx("main-pre_start") > idx("ready-main") {
		t.Errorf("main started before its pre_start hook: %q", start)
	}
	// stop: main's pre_stop, main, then the jobs in reverse start order, each between its own hooks, and
	// main's post_stop last. Each step waits for the one before, so this order is strict.
	want := []string{"main-pre_stop", "signal TERM",
		"b-pre_stop", "signal TERM", "b-post_stop",
		"a-pre_stop", "signal TERM", "a-post_stop",
		"main-post_stop"}
	if strings.Join(stop, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stop events out of order:\nhave %q\nwant %q", stop, want)
	}
}

func fileText(t *testing.T, path string) string {
	t.Helper()
	data, _ := os.ReadFile(path)
	return string(data)
}

func TestStuckHookTimesOut(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "main")
	cfg := writeFile(t, dir, "stuck.hcl", `
main {
  command = `+hclList(app, "-log", log, "-exit-on", "TERM:5")+`
  pre_stop  { command = ["sleep", "600"], timeout = "1s" }
  post_stop { command = ["sleep", "600"], timeout = "1s" }
}
`)
	b, _ := runConfig(t, cfg)
	harness.WaitFile(t, log, "ready", 20*time.Second)
	start := time.Now()
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(30 * time.Second); have != 5 {
		t.Fatalf("want the main command's exit code 5, have %d\n%s", have, b.Stderr.String())
	}
	took := time.Since(start)
	t.Logf("shutdown with two stuck 1s hooks took %s", took.Round(time.Millisecond))
	if took < 2*time.Second || took > 15*time.Second {
		t.Fatalf("shutdown took %s, want the two 1s hook timeouts and no more than 15s", took)
	}
	harness.WaitFile(t, log, "signal TERM", time.Second)
	if !strings.Contains(b.Stderr.String(), "pre_stop") || !strings.Contains(b.Stderr.String(), "post_stop") {
		t.Fatalf("berth should log the hooks that timed out:\n%s", b.Stderr.String())
	}
}

func TestResidentSidecar(t *testing.T) {
	app := harness.TestApp(t)
	t.Run("service job", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "svc")
		cfg := writeFile(t, dir, "sidecar.hcl", `
job "shipper" {
  type    = "service"
  command = `+hclList(app, "-log", log, "-exit-on", "TERM:0")+`
}
`)
		b, sock := runConfig(t, cfg)
		harness.WaitFile(t, log, "ready", 20*time.Second)
		stillRunning(t, b)
		code, out, _ := ctl(t, sock, "status")
		if code != 0 || unitState(t, out, "shipper") != "running" {
			t.Fatalf("want the shipper running, have (%d):\n%s", code, out)
		}
		stopCleanly(t, b)
		harness.WaitFile(t, log, "signal TERM", time.Second)
	})
	t.Run("prometheus only", func(t *testing.T) {
		dir := t.TempDir()
		cfg := writeFile(t, dir, "prom.hcl", "log_level = \"info\"\n")
		addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		b, sock := runConfig(t, cfg, "-prometheus", addr)
		waitSocket(t, b, sock)
		stillRunning(t, b)
		harness.WaitHTTP(t, "http://"+addr+"/metrics", 10*time.Second, nil)
		stopCleanly(t, b)
	})
	t.Run("oneshots only exit when done", func(t *testing.T) {
		dir := t.TempDir()
		stamp := filepath.Join(dir, "once")
		cfg := writeFile(t, dir, "once.hcl", `
job "render" {
  type    = "oneshot"
  command = `+hclList(app, "-stamp", stamp, "-sleep", "300ms")+`
}
`)
		b, _ := runConfig(t, cfg)
		if have := b.Wait(20 * time.Second); have != 0 {
			t.Fatalf("want exit 0 once the oneshot is done, have %d\n%s", have, b.Stderr.String())
		}
		if ts, _ := readStamps(t, stamp); len(ts) != 1 {
			t.Fatalf("want one run, have %d", len(ts))
		}
	})
}

// TestSidecarWritesSecretFile: with no main command and no jobs, berth writes the secret file and exits 0
// (ECS dependsOn: COMPLETE gates the application container on it).
func TestSidecarWritesSecretFile(t *testing.T) {
	moto := harness.StartMoto(t)
	putParameter(t, moto, "/berth/e2e/sidecar", "sidecar-value-42")
	dir := t.TempDir()
	out := filepath.Join(dir, "shared", "token")
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "sidecar.hcl", `
secret "token" {
  ssm  = "/berth/e2e/sidecar"
  file = "`+out+`"
}
`)
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Env: moto.Env(), Args: []string{"run", "-control-socket", "off", "-config", cfg}})
	if have := b.Wait(60 * time.Second); have != 0 {
		t.Fatalf("want exit 0 once the secret file is written, have %d\n%s", have, b.Stderr.String())
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatalf("no secret file: %v\n%s", err, b.Stderr.String())
	}
	if got := fileText(t, out); got != "sidecar-value-42" {
		t.Fatalf("secret file holds %q", got)
	}
	if st.Mode().Perm() != 0o400 {
		t.Fatalf("secret file mode %o, want 0400", st.Mode().Perm())
	}
	if strings.Contains(b.Stderr.String()+b.Stdout.String(), "sidecar-value-42") {
		t.Fatalf("berth printed the secret value")
	}
}

// stillRunning asserts that a resident berth has not exited a second after start.
func stillRunning(t *testing.T, b *harness.BerthRun) {
	t.Helper()
	select {
	case <-b.Done():
		t.Fatalf("sidecar berth exited: %s", b.Stderr.String())
	case <-time.After(time.Second):
	}
}

// stopCleanly sends SIGTERM and expects exit 0.
func stopCleanly(t *testing.T, b *harness.BerthRun) {
	t.Helper()
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
}
