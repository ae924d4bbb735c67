package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// heartbeat is a singleton's command: it appends "start <id> <unix ns>" when it starts and "stop <id> <unix ns>"
// when its stop signal arrives.
func heartbeat(id, path string) string {
	return hclList("/bin/sh", "-c", fmt.Sprintf(
		`echo "start %s $(date +%%s%%N)" >> %s; trap 'echo "stop %s $(date +%%s%%N)" >> %s; exit 0' TERM; while :; do sleep 0.1; done`,
		id, path, id, path))
}

type beat struct {
	start bool
	id    string
	at    time.Time
}

func readBeats(t *testing.T, path string) []beat {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []beat
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		ns, _ := strconv.ParseInt(f[2], 10, 64)
		out = append(out, beat{start: f[0] == "start", id: f[1], at: time.Unix(0, ns)})
	}
	return out
}

// checkNoOverlap fails when two instances ran at one moment. killed maps an id to the moment its namespace
// was SIGKILLed (it wrote no stop line).
func checkNoOverlap(t *testing.T, beats []beat, killed map[string]time.Time) {
	t.Helper()
	for id, at := range killed {
		beats = append(beats, beat{id: id, at: at})
	}
	sort.SliceStable(beats, func(i, j int) bool { return beats[i].at.Before(beats[j].at) })
	running := ""
	for _, b := range beats {
		switch {
		case b.start && running != "":
			t.Fatalf("overlap: %s started at %s while %s ran\n%v", b.id, b.at.Format(time.StampMicro), running, beats)
		case b.start:
			running = b.id
		case b.id == running:
			running = ""
		}
	}
}

// metric is the value of one series on berth's Prometheus endpoint ("" when absent).
func metric(t *testing.T, addr, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

func consulBlock(addr string) string { return fmt.Sprintf("consul {\n  address = %q\n}\n", addr) }

func lockOf(t *testing.T, sock, unit string) string {
	t.Helper()
	code, out, _ := ctl(t, sock, "status")
	if code != 0 {
		return ""
	}
	var st struct {
		Processes []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Lock  string `json:"lock"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return ""
	}
	for _, p := range st.Processes {
		if p.Name == unit {
			return p.Lock + "/" + p.State
		}
	}
	return ""
}

// Three berths, each PID 1 of its namespace, share a singleton: it runs on exactly one, with no overlap at
// any moment; SIGKILL of the holder's namespace hands it to another within 2×TTL + lock-delay (+ consul/api's
// 5 s retry after a lock-delay refusal); a graceful stop hands it over at once (a release has no lock-delay).
func TestSingletonFailover(t *testing.T) {
	c := harness.StartConsul(t)
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	const ttl, delay = 10 * time.Second, time.Second
	type inst struct {
		b    *harness.BerthRun
		sock string
		prom string
	}
	var insts []inst
	for i := range 3 {
		id := "b" + strconv.Itoa(i)
		cfg := writeFile(t, dir, id+".hcl", consulBlock(c.Addr)+`
job "scheduler" {
  type         = "service"
  singleton    = true
  lock_key     = "berth/singleton/test/scheduler"
  session_ttl  = "10s"
  lock_delay   = "1s"
  stop_timeout = "1s"
  command      = `+heartbeat(id, hb)+`
}
`)
		prom := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
		b, sock := runConfig(t, cfg, "-log-level", "info", "-prometheus", prom)
		insts = append(insts, inst{b, sock, prom})
	}
	harness.Eventually(t, 20*time.Second, "one heartbeat start", func() bool { return len(readBeats(t, hb)) >= 1 })
	first := readBeats(t, hb)[0].id
	// every berth has a session (the standbys ask for the lock with it) and says what it is
	harness.Eventually(t, 20*time.Second, "three sessions", func() bool { return sessionsNamed(t, c.Addr, "berth singleton scheduler") == 3 })
	holder := -1
	for i, in := range insts {
		want := "standby/standby"
		if "b"+strconv.Itoa(i) == first {
			holder, want = i, "holder/running"
		}
		harness.Eventually(t, 5*time.Second, "status "+want, func() bool { return lockOf(t, in.sock, "scheduler") == want })
	}
	beats := readBeats(t, hb)
	if len(beats) != 1 || !beats[0].start {
		t.Fatalf("want exactly one instance started, have %v", beats)
	}

	// SIGKILL of the holder's namespace: nothing of it writes a stop line
	killedAt := time.Now()
	insts[holder].b.Signal(syscall.SIGKILL)
	bound := 2*ttl + delay + 5*time.Second + 3*time.Second
	harness.Eventually(t, bound, "failover start", func() bool { return len(readBeats(t, hb)) >= 2 })
	beats = readBeats(t, hb)
	failover := beats[1].at.Sub(killedAt)
	killed := map[string]time.Time{beats[0].id: killedAt}
	checkNoOverlap(t, beats, killed)

	// graceful stop of the new holder: the third takes over without a lock-delay
	var next int
	for i := range insts {
		if "b"+strconv.Itoa(i) == beats[1].id {
			next = i
		}
	}
	if m := metric(t, insts[next].prom, `berth_lock_acquisitions{job="scheduler"}`); m != "1" {
		t.Fatalf("new holder: want berth_lock_acquisitions 1, have %q", m)
	}
	stopped := time.Now()
	insts[next].b.Signal(syscall.SIGTERM)
	if code := insts[next].b.Wait(15 * time.Second); code != 0 {
		t.Fatalf("holder stopped by SIGTERM: want exit 0, have %d\n%s", code, insts[next].b.Stderr.String())
	}
	harness.Eventually(t, 10*time.Second, "handover start", func() bool { return len(readBeats(t, hb)) >= 4 })
	beats = readBeats(t, hb)
	handover := beats[len(beats)-1].at.Sub(stopped)
	checkNoOverlap(t, beats, killed)
	for i := range insts {
		if i != holder && i != next {
			stopCleanly(t, insts[i].b)
		}
	}
	checkNoOverlap(t, readBeats(t, hb), killed)
	harness.RecordFault(t, harness.Fault{
		Name:     "singleton holder's namespace SIGKILLed (3 berths, session_ttl 10s, lock_delay 1s)",
		Expected: "another berth runs it within 2×TTL + lock-delay (+5 s consul/api retry); never two at once",
		Observed: fmt.Sprintf("failover after %s; graceful SIGTERM hand-over after %s; heartbeat: no overlap",
			failover.Round(100*time.Millisecond), handover.Round(10*time.Millisecond)),
		Figure: fmt.Sprintf("failover %s (bound %s), hand-over %s", failover.Round(100*time.Millisecond),
			2*ttl+delay+5*time.Second, handover.Round(10*time.Millisecond)),
	})
}

// Five berths start at once with the same once key: the migration runs on one, and every main command
// starts after it finished. The same key again: nothing runs. A failing migration: every berth exits with
// its code and no main command starts.
func TestOnceAcrossBerths(t *testing.T) {
	c := harness.StartConsul(t)
	app := harness.TestApp(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	mains := filepath.Join(dir, "mains")
	var last []*harness.BerthRun
	round := func(key string, code int) []int {
		cfg := writeFile(t, dir, key+".hcl", consulBlock(c.Addr)+fmt.Sprintf(`
main { after = ["migrate"] }
job "migrate" {
  type    = "oneshot"
  once    = %q
  wait    = "1m"
  command = %s
}
`, key, hclList("/bin/sh", "-c", fmt.Sprintf(`echo "start $(date +%%s%%N)" >> %s; sleep 1.5; echo "end $(date +%%s%%N)" >> %s; exit %d`, runs, runs, code))))
		var bs []*harness.BerthRun
		for range 5 {
			b, _ := runConfig(t, cfg, "--", app, "-stamp", mains)
			bs = append(bs, b)
		}
		codes := make([]int, len(bs))
		var wg sync.WaitGroup
		for i, b := range bs {
			wg.Add(1)
			go func() { defer wg.Done(); codes[i] = b.Wait(60 * time.Second) }()
		}
		wg.Wait()
		last = bs
		return codes
	}
	lines := func(path string) []string {
		data, _ := os.ReadFile(path)
		s := strings.TrimSpace(string(data))
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}

	codes := round("v1", 0)
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("berth %d: want exit 0, have %d\n%s", i, code, last[i].Stderr.String())
		}
	}
	r := lines(runs)
	if len(r) != 2 {
		t.Fatalf("want the migration to run once (a start and an end line), have %q", r)
	}
	end, _ := strconv.ParseInt(strings.Fields(r[1])[1], 10, 64)
	stamps, _ := readStamps(t, mains)
	if len(stamps) != 5 {
		t.Fatalf("want 5 main commands, have %d", len(stamps))
	}
	for _, s := range stamps {
		if s.UnixNano() < end {
			t.Fatalf("a main command started at %s, before the migration ended at %s", s, time.Unix(0, end))
		}
	}

	// a later rollout with the same key runs nothing
	codes = round("v1", 0)
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("second round, berth %d: want exit 0, have %d\n%s", i, code, last[i].Stderr.String())
		}
	}
	if r := lines(runs); len(r) != 2 {
		t.Fatalf("second round with the same key: want no run, have %q", r)
	}
	if stamps, _ := readStamps(t, mains); len(stamps) != 10 {
		t.Fatalf("second round: want 10 main commands in all, have %d", len(stamps))
	}

	// a failing migration: every berth exits with its code, no main command starts
	_ = os.Remove(runs)
	codes = round("v2-broken", 3)
	for i, code := range codes {
		if code != 3 {
			t.Fatalf("failing round, berth %d: want the migration's exit code 3, have %d\n%s", i, code, last[i].Stderr.String())
		}
	}
	if stamps, _ := readStamps(t, mains); len(stamps) != 10 {
		t.Fatalf("failing round: no main command may start, have %d in all", len(stamps))
	}
	if r := lines(runs); len(r) < 2 {
		t.Fatalf("failing round: want the migration to have run, have %q", r)
	}
}

// singleton and once are config errors where they cannot work (78 with file:line:col), and need Consul.
func TestCoordinationConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"both", `consul {}
job "x" {
  type      = "oneshot"
  singleton = true
  once      = "k"
  command   = ["true"]
}`, "both.hcl:5:3: once: a job cannot be both singleton and once"},
		{"service", `consul {}
job "x" {
  once    = "k"
  command = ["true"]
}`, "service.hcl:3:3: once: only a oneshot job"},
		{"ttl", `consul {}
job "x" {
  singleton   = true
  session_ttl = "5s"
  command     = ["true"]
}`, "ttl.hcl:4:17: session_ttl: must be between 10s and 24h0m0s"},
		{"noconsul", `job "x" {
  singleton = true
  command   = ["true"]
}`, "needs Consul: add a consul block or set CONSUL_HTTP_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, tc.name+".hcl", tc.cfg)
			code, _, stderr := berthCmd(t, []string{"CONSUL_HTTP_ADDR="}, "run", "-control-socket", "off", "-config", cfg, "--", "true")
			if code != 78 {
				t.Fatalf("want 78, have %d\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("want %q in\n%s", tc.want, stderr)
			}
		})
	}
}

// Consul stops answering for longer than the session TTL: the holder stops its singleton before any other
// berth could start it (no renewal accepted within the TTL), and once Consul answers again exactly one runs it.
func TestFaultSingletonConsulHang(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	const ttl = 10 * time.Second
	var bs []*harness.BerthRun
	var socks []string
	for i := range 2 {
		id := "b" + strconv.Itoa(i)
		cfg := writeFile(t, dir, id+".hcl", consulBlock(proxy.Addr())+`
job "scheduler" {
  type         = "service"
  singleton    = true
  session_ttl  = "10s"
  lock_delay   = "2s"
  stop_timeout = "2s"
  command      = `+heartbeat(id, hb)+`
}
`)
		b, sock := runConfig(t, cfg, "-log-level", "info")
		bs, socks = append(bs, b), append(socks, sock)
	}
	harness.Eventually(t, 20*time.Second, "one heartbeat start", func() bool { return len(readBeats(t, hb)) >= 1 })
	hung := time.Now()
	proxy.SetHang(true)
	harness.Eventually(t, ttl+5*time.Second, "the holder stopping", func() bool { return len(readBeats(t, hb)) >= 2 })
	beats := readBeats(t, hb)
	stoppedAfter := beats[1].at.Sub(hung)
	if beats[1].start || stoppedAfter > ttl {
		t.Fatalf("want the holder stopped within the TTL (%s) of the hang, have %v (%s)", ttl, beats, stoppedAfter)
	}
	time.Sleep(2*ttl + 5*time.Second - time.Since(hung)) // well past any session Consul could still hold
	proxy.SetHang(false)
	recovered := time.Now()
	harness.Eventually(t, 2*ttl+10*time.Second, "a start after Consul answers again", func() bool { return len(readBeats(t, hb)) >= 3 })
	again := time.Since(recovered)
	// both berths are back in Consul, one holding, one a standby asking with its new session
	harness.Eventually(t, 2*ttl, "two sessions after the recovery", func() bool { return sessionsNamed(t, c.Addr, "berth singleton scheduler") == 2 })
	harness.Eventually(t, 10*time.Second, "a holder and a standby", func() bool {
		a, b := lockOf(t, socks[0], "scheduler"), lockOf(t, socks[1], "scheduler")
		return a == "holder/running" && b == "standby/standby" || a == "standby/standby" && b == "holder/running"
	})
	beats = readBeats(t, hb)
	checkNoOverlap(t, beats, nil)
	if n := len(beats); n != 3 {
		t.Fatalf("want exactly one instance running after recovery, have %v", beats)
	}
	for _, b := range bs {
		stopCleanly(t, b)
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "Consul hangs longer than the singleton's session TTL (10s)",
		Expected: "the holder stops its process within the TTL, before any other berth could take the lock; one runs it again after",
		Observed: fmt.Sprintf("holder's process stopped %s after the hang began; one instance again %s after Consul answered; no overlap",
			stoppedAfter.Round(100*time.Millisecond), again.Round(100*time.Millisecond)),
		Figure: fmt.Sprintf("fenced after %s (TTL 10s)", stoppedAfter.Round(100*time.Millisecond)),
	})
}

// A standby costs Consul a session renewal every TTL/3 and one blocking query per blocking_wait, and no
// polling: measured over a minute on a standby whose requests go through a counting proxy.
func TestFaultSingletonStandbyRequests(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	start := func(id, addr string) *harness.BerthRun {
		cfg := writeFile(t, dir, id+".hcl", consulBlock(addr)+`
job "scheduler" {
  type        = "service"
  singleton   = true
  session_ttl = "15s"
  command     = `+heartbeat(id, hb)+`
}
`)
		b, _ := runConfig(t, cfg)
		return b
	}
	holder := start("holder", c.Addr)
	harness.Eventually(t, 20*time.Second, "the holder running", func() bool { return len(readBeats(t, hb)) >= 1 })
	standby := start("standby", proxy.Addr())
	harness.Eventually(t, 20*time.Second, "the standby's first blocking query on the lock", func() bool {
		n, plain := proxy.Count("/v1/kv/", time.Time{})
		return n > plain
	})
	since := time.Now()
	time.Sleep(time.Minute)
	n, plain := proxy.Count("/v1/", since)
	renew, _ := proxy.Count("/v1/session/renew/", since)
	if beats := readBeats(t, hb); len(beats) != 1 {
		t.Fatalf("the standby must not run it: %v", beats)
	}
	if n > 15 {
		t.Fatalf("want at most 15 requests in a standby-minute (12 renewals with TTL 15s + blocking queries), have %d (%d plain)", n, plain)
	}
	stopCleanly(t, standby)
	stopCleanly(t, holder)
	harness.RecordFault(t, harness.Fault{
		Name:     "singleton standby for one minute (session_ttl 15s, blocking_wait 5m)",
		Expected: "session renewals every TTL/3 and blocking queries on the lock key, no polling",
		Observed: fmt.Sprintf("%d requests: %d session renewals, %d blocking KV queries, %d other plain", n, renew, n-plain, plain-renew),
		Figure:   fmt.Sprintf("%d Consul requests per standby-minute", n),
	})
}

// The berth running a once-job dies mid-run (SIGKILL of its namespace): its session lapses, the lock is
// released and the waiting berth runs the job itself, then starts its main command.
func TestFaultOnceHolderDies(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	app := harness.TestApp(t)
	dir := t.TempDir()
	runs, mains := filepath.Join(dir, "runs"), filepath.Join(dir, "mains")
	cfg := writeFile(t, dir, "once.hcl", consulBlock(c.Addr)+fmt.Sprintf(`
main { after = ["migrate"] }
job "migrate" {
  type        = "oneshot"
  once        = "v1"
  session_ttl = "10s"
  command     = %s
}
`, hclList("/bin/sh", "-c", fmt.Sprintf(`echo "start $(date +%%s%%N)" >> %s; sleep 6; echo "end $(date +%%s%%N)" >> %s`, runs, runs))))
	first, _ := runConfig(t, cfg, "--", app, "-stamp", mains)
	harness.Eventually(t, 20*time.Second, "the first run", func() bool { return fileHas(runs, "start") })
	second, _ := runConfig(t, cfg, "--", app, "-stamp", mains)
	// the second berth waits on the lock with a session of its own
	harness.Eventually(t, 20*time.Second, "the waiter's session", func() bool { return sessionsNamed(t, c.Addr, "berth once migrate") == 2 })
	if fileHas(runs, "end") {
		t.Fatalf("the first run ended before the waiter was waiting; the scenario needs it mid-run")
	}
	killed := time.Now()
	first.Signal(syscall.SIGKILL)
	if code := second.Wait(60 * time.Second); code != 0 {
		t.Fatalf("the waiter: want exit 0, have %d\n%s", code, second.Stderr.String())
	}
	data, _ := os.ReadFile(runs)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "start") || !strings.HasPrefix(lines[2], "end") {
		t.Fatalf("want the killed run's start, then a whole run by the waiter, have %q", lines)
	}
	ns, _ := strconv.ParseInt(strings.Fields(lines[1])[1], 10, 64)
	took := time.Unix(0, ns).Sub(killed)
	if stamps, _ := readStamps(t, mains); len(stamps) != 1 {
		t.Fatalf("want one main command (the waiter's), have %d", len(stamps))
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "the berth running a once-job is SIGKILLed mid-run (session_ttl 10s)",
		Expected: "its session lapses (within 2×TTL) and the waiting berth runs the job, then its main command",
		Observed: fmt.Sprintf("the waiter started the job %s after the kill and exited 0", took.Round(100*time.Millisecond)),
		Figure:   fmt.Sprintf("take-over after %s", took.Round(100*time.Millisecond)),
	})
}

// sessionsNamed counts the Consul sessions named name: berth opens one for each lock it asks for.
func sessionsNamed(t *testing.T, addr, name string) int {
	t.Helper()
	var sessions []struct{ Name string }
	getJSON(t, "http://"+addr+"/v1/session/list", &sessions)
	n := 0
	for _, s := range sessions {
		if s.Name == name {
			n++
		}
	}
	return n
}

func fileHas(path, s string) bool {
	data, _ := os.ReadFile(path)
	return strings.Contains(string(data), s)
}

// singleton with consul.required and once (always) end berth with 69 once Consul stayed unreachable for
// consul.timeout; nothing starts.
func TestCoordinationConsulUnavailable(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) // nothing listens
	for _, tc := range []struct{ name, body string }{
		{"singleton", "main { singleton = true }"}, // a hot-standby main command
		{"once", `main { after = ["migrate"] }
job "migrate" {
  type    = "oneshot"
  once    = "v1"
  command = ["true"]
}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mainLog := filepath.Join(dir, tc.name+".main")
			cfg := writeFile(t, dir, tc.name+".hcl", fmt.Sprintf(`
consul {
  address  = %q
  required = %v
  timeout  = "2s"
}
%s
`, addr, tc.name == "singleton", tc.body))
			began := time.Now()
			b, _ := runConfig(t, cfg, "--", app, "-log", mainLog)
			code := b.Wait(30 * time.Second)
			took := time.Since(began)
			if code != 69 {
				t.Fatalf("want 69, have %d\n%s", code, b.Stderr.String())
			}
			if took > 6*time.Second {
				t.Fatalf("want the exit about consul.timeout (2s) after start, took %s", took)
			}
			if _, err := os.Stat(mainLog); err == nil {
				t.Fatalf("the main command must not start")
			}
			if !strings.Contains(b.Stderr.String(), "consul unavailable") {
				t.Fatalf("want a message naming Consul\n%s", b.Stderr.String())
			}
		})
	}
}
