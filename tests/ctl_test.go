package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// raceBerth is berth built with the race detector: these tests drive concurrent ctl clients into it.
func raceBerth(t *testing.T) string { return harness.RaceBerth(t) }

// raceRun is a race-enabled berth started by the test (not PID 1: status pids are the test's pids).
type raceRun = bgRun

func startRaceBerth(t *testing.T, args ...string) *raceRun {
	t.Helper()
	return startBackground(t, []string{"GORACE=halt_on_error=1 exitcode=66"}, append([]string{raceBerth(t)}, args...)...)
}

// stop sends SIGTERM and checks a clean exit without a data race report.
func (r *raceRun) stop(t *testing.T) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("berth did not stop within 30s\n%s", r.stderr.String())
	}
	if strings.Contains(r.stderr.String(), "DATA RACE") || r.code != 0 {
		t.Fatalf("want exit 0 without a data race, have %d\n%s", r.code, r.stderr.String())
	}
}

func waitRaceSocket(t *testing.T, r *raceRun, sock string) {
	t.Helper()
	exited := false
	if !harness.WithinEvery(30*time.Second, 50*time.Millisecond, func() bool { // a process per check
		select {
		case <-r.done:
			exited = true
			return true
		default:
		}
		code, _, _ := ctl(t, sock, "status")
		return code == 0
	}) {
		t.Fatalf("control socket %s did not answer\n%s", sock, r.stderr.String())
	}
	if exited {
		t.Fatalf("berth exited (%d) before its control socket answered\n%s", r.code, r.stderr.String())
	}
}

// status runs `berth ctl status` and parses it.
func status(t *testing.T, sock string) ctlStatus {
	t.Helper()
	code, out, stderr := ctl(t, sock, "status")
	if code != 0 {
		t.Fatalf("ctl status: exit %d\n%s", code, stderr)
	}
	return parseStatus(t, out)
}

func (s ctlStatus) unit(t *testing.T, name string) ctlProc {
	t.Helper()
	for _, p := range s.Processes {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("status lacks process %q: %+v", name, s.Processes)
	return ctlProc{}
}

func cmdline(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(data), "\x00", " ")
}

func TestCtlStatus(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	cfg := writeFile(t, dir, "status.hcl", `
main { command = `+hclList(app, "-exit-on", "TERM:0", "-say", "main-proc")+` }
job "steady" {
  type    = "service"
  command = `+hclList(app, "-exit-on", "TERM:0", "-say", "steady-proc")+`
}
job "flaky" {
  type    = "service"
  command = `+hclList(app, "-sleep", "50ms", "-code", "2")+`
}
`)
	r := startRaceBerth(t, "run", "-control-socket", sock, "-config", cfg)
	waitRaceSocket(t, r, sock)
	var st ctlStatus
	if !harness.WithinEvery(20*time.Second, 200*time.Millisecond, func() bool { // a ctl process per check, under -race
		st = status(t, sock)
		return st.unit(t, "flaky").Restarts >= 2
	}) {
		t.Fatalf("flaky was not restarted twice within 20s: %+v", st.Processes)
	}
	if st.Pid != r.cmd.Process.Pid {
		t.Errorf("status pid %d, berth is %d", st.Pid, r.cmd.Process.Pid)
	}
	if len(st.Processes) != 3 {
		t.Errorf("want main, steady and flaky, have %+v", st.Processes)
	}
	for name, say := range map[string]string{"main": "main-proc", "steady": "steady-proc"} {
		u := st.unit(t, name)
		if u.State != "running" || u.Restarts != 0 {
			t.Errorf("%s: want running without restarts, have %+v", name, u)
		}
		// the pid is the real process running that command
		if c := cmdline(u.Pid); !strings.Contains(c, say) {
			t.Errorf("%s: pid %d runs %q", name, u.Pid, c)
		}
	}
	if f := st.unit(t, "flaky"); f.Type != "service" || f.LastExit == nil || *f.LastExit != 2 {
		t.Errorf("flaky: want a service whose last exit is 2, have %+v", f)
	}
	r.stop(t)
}

func TestCtlReload(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	oneLog, twoLog := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	config := func(twoSays string) string {
		return `
job "one" {
  type    = "service"
  command = ` + hclList(app, "-log", oneLog, "-exit-on", "TERM:0") + `
}
job "two" {
  type    = "service"
  command = ` + hclList(app, "-log", twoLog, "-exit-on", "TERM:0", "-say", twoSays) + `
}
`
	}
	cfg := writeFile(t, dir, "reload.hcl", config("v1"))
	r := startRaceBerth(t, "run", "-control-socket", sock, "-config", cfg)
	waitRaceSocket(t, r, sock)
	harness.WaitFile(t, oneLog, "ready", 20*time.Second)
	harness.WaitFile(t, twoLog, "ready", 20*time.Second)
	before := status(t, sock)

	t.Run("changed job only", func(t *testing.T) {
		writeFile(t, dir, "reload.hcl", config("v2"))
		if code, out, stderr := ctl(t, sock, "reload"); code != 0 {
			t.Fatalf("reload: exit %d\n%s%s", code, out, stderr)
		}
		// two was stopped and started again with its new command; one was not touched
		harness.WaitFile(t, twoLog, "signal TERM", 10*time.Second)
		if !harness.Within(10*time.Second, func() bool { return strings.Count(fileText(t, twoLog), "ready") >= 2 }) {
			t.Fatalf("two did not start again:\n%s", fileText(t, twoLog))
		}
		if c := strings.Count(fileText(t, oneLog), "ready"); c != 1 || strings.Contains(fileText(t, oneLog), "signal") {
			t.Fatalf("one was restarted or signalled by a reload that did not change it:\n%s", fileText(t, oneLog))
		}
		after := status(t, sock)
		if after.unit(t, "one").Pid != before.unit(t, "one").Pid {
			t.Errorf("one's pid changed")
		}
		two := after.unit(t, "two")
		if two.Pid == before.unit(t, "two").Pid || !strings.Contains(cmdline(two.Pid), "-say v2") {
			t.Errorf("two does not run the new command: pid %d %q", two.Pid, cmdline(two.Pid))
		}
	})

	t.Run("broken file keeps the old config", func(t *testing.T) {
		mid := status(t, sock)
		bad := writeFile(t, dir, "reload.hcl", "job \"one\" {\n  command = [\"x\"\n}\n")
		code, out, stderr := ctl(t, sock, "reload")
		if code != 1 {
			t.Fatalf("reload of a broken file: want exit 1, have %d\n%s%s", code, out, stderr)
		}
		if !strings.Contains(stderr, bad+":3:1:") || !strings.Contains(stderr, "unchanged") {
			t.Fatalf("the reload error should name %s:3:1 and say nothing changed:\n%s", bad, stderr)
		}
		now := status(t, sock)
		for _, name := range []string{"one", "two"} {
			if u := now.unit(t, name); u.State != "running" || u.Pid != mid.unit(t, name).Pid {
				t.Errorf("%s changed after a rejected reload: %+v, was %+v", name, u, mid.unit(t, name))
			}
		}
		// and the old configuration still reloads fine once the file is fixed
		writeFile(t, dir, "reload.hcl", config("v2"))
		if code, _, stderr := ctl(t, sock, "reload"); code != 0 {
			t.Fatalf("reload of the fixed file: exit %d\n%s", code, stderr)
		}
		if u := status(t, sock).unit(t, "two"); u.Pid != mid.unit(t, "two").Pid {
			t.Errorf("reload of an unchanged file restarted two")
		}
	})

	t.Run("a changed env block applies; a new secret reference in it is refused", func(t *testing.T) {
		envOut := filepath.Join(dir, "two.json")
		withEnv := func(mode string) string {
			return config("v2") + `
job "three" {
  type    = "service"
  command = ` + hclList(app, "-exit-on", "TERM:0", "-env", "MODE", "-env-json", envOut) + `
  env     = { MODE = "` + mode + `" }
}
`
		}
		writeFile(t, dir, "reload.hcl", withEnv("fast"))
		if code, out, stderr := ctl(t, sock, "reload"); code != 0 {
			t.Fatalf("reload: exit %d\n%s%s", code, out, stderr)
		}
		harness.WaitFile(t, envOut, `"MODE":"fast"`, 10*time.Second)
		mid := status(t, sock)
		writeFile(t, dir, "reload.hcl", withEnv("ssm:/prod/db"))
		code, out, stderr := ctl(t, sock, "reload")
		want := "job three: env MODE holds a secret reference, which is resolved at start only: restart berth to apply it"
		if code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("reload adding a reference: want exit 1 and %q, have %d\n%s%s", want, code, out, stderr)
		}
		if u := status(t, sock).unit(t, "three"); u.State != "running" || u.Pid != mid.unit(t, "three").Pid {
			t.Errorf("three changed after a refused reload: %+v, was %+v", u, mid.unit(t, "three"))
		}
		if !strings.Contains(fileText(t, envOut), `"MODE":"fast"`) {
			t.Errorf("three's environment changed: %s", fileText(t, envOut))
		}
	})
	r.stop(t)
}

func TestCtlConcurrentClients(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	log := filepath.Join(dir, "job")
	content := func(n int) string {
		return `
job "worker" {
  type    = "service"
  command = ` + hclList(app, "-log", log, "-exit-on", "TERM:0", "-say", "gen-"+strconv.Itoa(n)) + `
}
`
	}
	cfg := writeFile(t, dir, "c.hcl", content(0))
	r := startRaceBerth(t, "run", "-control-socket", sock, "-config", cfg)
	waitRaceSocket(t, r, sock)

	const rounds = 12
	var wg sync.WaitGroup
	errs := make(chan string, 4*rounds)
	wg.Add(3)
	go func() { // status in a loop
		defer wg.Done()
		for i := 0; i < 2*rounds; i++ {
			if code, out, stderr := ctl(t, sock, "status"); code != 0 || !strings.Contains(out, `"worker"`) {
				errs <- fmt.Sprintf("status %d: exit %d %s%s", i, code, out, stderr)
			}
		}
	}()
	go func() { // health in a loop
		defer wg.Done()
		for i := 0; i < 2*rounds; i++ {
			// 0 or 1 (the worker is restarting) are answers; 69/64 are failures of the client or server
			if code, out, stderr := berthCmd(t, []string{"BERTH_CONTROL_SOCKET=" + sock}, "health"); code != 0 && code != 1 {
				errs <- fmt.Sprintf("health %d: exit %d %s%s", i, code, out, stderr)
			}
		}
	}()
	go func() { // reload with a changed job in a loop
		defer wg.Done()
		for i := 1; i <= rounds; i++ {
			if err := os.WriteFile(cfg, []byte(content(i)), 0o644); err != nil {
				errs <- err.Error()
				return
			}
			if code, out, stderr := ctl(t, sock, "reload"); code != 0 {
				errs <- fmt.Sprintf("reload %d: exit %d %s%s", i, code, out, stderr)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// the last reload won
	w := status(t, sock).unit(t, "worker")
	if !strings.Contains(cmdline(w.Pid), "gen-"+strconv.Itoa(rounds)) {
		t.Errorf("worker runs %q after the last reload", cmdline(w.Pid))
	}
	r.stop(t)
}

func TestCtlPutenv(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	cfg := writeFile(t, dir, "env.hcl", `
job "report" {
  every   = "300ms"
  command = `+hclList(app, "-env", "FEATURE_FLAG")+`
}
`)
	r := startRaceBerth(t, "run", "-control-socket", sock, "-config", cfg)
	waitRaceSocket(t, r, sock)
	if !harness.Within(10*time.Second, func() bool { return strings.Contains(r.stdout.String(), "FEATURE_FLAG= set=false") }) {
		t.Fatalf("the job did not run:\n%s", r.stdout.String())
	}
	value := `on = "yes" $HOME`
	if code, _, stderr := ctl(t, sock, "putenv", "FEATURE_FLAG="+value); code != 0 {
		t.Fatalf("putenv: exit %d\n%s", code, stderr)
	}
	want := "FEATURE_FLAG=" + value + " set=true"
	if !harness.Within(20*time.Second, func() bool { return strings.Contains(r.stdout.String(), want) }) {
		t.Fatalf("the next run does not see %q:\n%s", want, r.stdout.String())
	}
	// putenv values are never logged
	if strings.Contains(r.stderr.String(), value) {
		t.Errorf("berth logged a putenv value:\n%s", r.stderr.String())
	}
	if code, _, _ := ctl(t, sock, "putenv", "1BAD=x"); code != 1 && code != 64 {
		t.Errorf("putenv of an invalid name: want a failure, have exit %d", code)
	}
	r.stop(t)
}

func TestHealthExitCodes(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	marker := filepath.Join(dir, "broken")
	// the service crashes while the marker file exists
	cfg := writeFile(t, dir, "health.hcl", `
job "svc" {
  type    = "service"
  command = ["/bin/sh", "-c", "if [ -e `+marker+` ]; then exit 1; fi; exec `+app+` -exit-on TERM:0"]
}
`)
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"run", "-control-socket", sock, "-config", cfg}})
	waitSocket(t, b, sock)
	env := []string{"BERTH_CONTROL_SOCKET=" + sock}
	healthIs := func(want int) (string, string) {
		t.Helper()
		var code int
		var out, stderr string
		if !harness.WithinEvery(20*time.Second, 100*time.Millisecond, func() bool { // a process per check
			code, out, stderr = berthCmd(t, env, "health")
			return code == want
		}) {
			t.Fatalf("berth health: want exit %d, have %d\n%s%s", want, code, out, stderr)
		}
		return out, stderr
	}
	healthIs(0)
	// -socket overrides the environment
	if code, _, stderr := berthCmd(t, nil, "health", "-socket", sock); code != 0 {
		t.Fatalf("health -socket: exit %d\n%s", code, stderr)
	}

	// crash the service: while it backs off, berth is unhealthy and names it on stdout
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := status(t, sock).unit(t, "svc").Pid
	_ = syscall.Kill(pid, syscall.SIGKILL)
	out, _ := healthIs(1)
	if !strings.Contains(out, "job:svc") {
		t.Errorf("unhealthy output does not name the job: %q", out)
	}
	// recovers when the service runs again
	_ = os.Remove(marker)
	healthIs(0)

	if code, _, stderr := berthCmd(t, nil, "health", "-socket", filepath.Join(dir, "nobody-here.sock")); code != 69 ||
		!strings.Contains(stderr, "nobody-here.sock") {
		t.Errorf("health without berth: want 69 naming the socket, have %d %s", code, stderr)
	}
	if code, _, _ := berthCmd(t, env, "health", "-no-such-flag"); code != 64 {
		t.Errorf("health with a bad flag: want 64, have %d", code)
	}
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
}

// TestCtlReloadEnvAcrossRefresh: a job's environment is its env block as last applied, whatever changes after:
// a reload that changes only the job's command keeps the env block an earlier reload set, and a secret refresh
// (on_change = "restart", which restarts every job when there is no main command) restarts the reloaded job
// and a job a reload added with their current env blocks, not the ones berth started with.
func TestCtlReloadEnvAcrossRefresh(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	a.Secret(t, "rot/token", "token-version-one")
	dir := t.TempDir()
	sock := sockPath(t)
	config := func(mode, keptOut string, added bool) string {
		c := fmt.Sprintf(`
secret "rot" {
  secretsmanager = "rot/token"
  file           = %q
  refresh        = "1s"
  on_change      = "restart"
}
job "kept" {
  type    = "service"
  command = %s
  env     = { MODE = %q }
}
`, filepath.Join(dir, "token"), hclList(app, "-exit-on", "TERM:0", "-env", "MODE", "-env-json", keptOut), mode)
		if added {
			c += `
job "added" {
  type    = "service"
  command = ` + hclList(app, "-exit-on", "TERM:0", "-env", "ADDED", "-env-json", filepath.Join(dir, "added.json")) + `
  env     = { ADDED = "yes" }
}
`
		}
		return c
	}
	reload := func(t *testing.T, src string) {
		t.Helper()
		writeFile(t, dir, "reload.hcl", src)
		if code, out, stderr := ctl(t, sock, "reload"); code != 0 {
			t.Fatalf("reload: exit %d\n%s%s", code, out, stderr)
		}
	}
	// envOf waits for a job to write its -env-json file and returns it.
	envOf := func(t *testing.T, path string) string {
		t.Helper()
		if !harness.Within(20*time.Second, func() bool { _, err := os.Stat(path); return err == nil && fileText(t, path) != "" }) {
			t.Fatalf("%s was not written within 20s", path)
		}
		return fileText(t, path)
	}
	first, second := filepath.Join(dir, "kept-1.json"), filepath.Join(dir, "kept-2.json")
	cfg := writeFile(t, dir, "reload.hcl", config("slow", first, false))
	r := startBackground(t, append([]string{"GORACE=halt_on_error=1 exitcode=66"}, a.env("")...), raceBerth(t), "run", "-control-socket", sock, "-config", cfg)
	waitRaceSocket(t, r, sock)
	if got := envOf(t, first); !strings.Contains(got, `"MODE":"slow"`) {
		t.Fatalf("kept at start: want MODE=slow, have %s", got)
	}

	t.Run("a reload changing only the command keeps the env block an earlier reload set", func(t *testing.T) {
		_ = os.Remove(first)
		reload(t, config("fast", first, true))
		if got := envOf(t, first); !strings.Contains(got, `"MODE":"fast"`) {
			t.Fatalf("kept after the first reload: want MODE=fast, have %s", got)
		}
		reload(t, config("fast", second, true)) // only kept's command changes
		if got := envOf(t, second); !strings.Contains(got, `"MODE":"fast"`) {
			t.Fatalf("kept after a reload changing only its command: want MODE=fast, have %s", got)
		}
		if got := envOf(t, filepath.Join(dir, "added.json")); !strings.Contains(got, `"ADDED":"yes"`) {
			t.Fatalf("added: want ADDED=yes, have %s", got)
		}
	})

	t.Run("a secret refresh restarts reloaded and added jobs with their current env", func(t *testing.T) {
		addedOut := filepath.Join(dir, "added.json")
		before := status(t, sock)
		_ = os.Remove(second)
		_ = os.Remove(addedOut)
		a.PutSecret(t, "rot/token", "token-version-two")
		// both jobs restarted by on_change = "restart": new pids, and each wrote its file again
		if !harness.Within(30*time.Second, func() bool {
			now := status(t, sock)
			return now.unit(t, "kept").Pid != before.unit(t, "kept").Pid && now.unit(t, "added").Pid != before.unit(t, "added").Pid
		}) {
			t.Fatalf("the jobs were not restarted after the secret changed:\n%s", secScrub(r.stderr.String(), "token-version-one", "token-version-two"))
		}
		if got := envOf(t, second); !strings.Contains(got, `"MODE":"fast"`) {
			t.Errorf("kept after the refresh: want MODE=fast, have %s", got)
		}
		if got := envOf(t, addedOut); !strings.Contains(got, `"ADDED":"yes"`) {
			t.Errorf("added after the refresh: want ADDED=yes, have %s", got)
		}
	})
	r.stop(t)
	secNoValues(t, "berth's output", r.stdout.String()+r.stderr.String(), "token-version-one", "token-version-two")
}
