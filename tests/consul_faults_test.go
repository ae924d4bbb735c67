package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/tests/harness"
)

// Consul faults (issue 10): the real berth binary against a real `consul agent -dev`, with a
// harness.ConsulProxy in between that can hang (accept connections, never answer) or answer for Consul.
// Each test records its measured figure for bench/FAULTS.md.

// requestTimeout is discovery's default per-request deadline: what a hang may cost one request.
const requestTimeout = 5 * time.Second

// consulAPI is the test's own client of the agent (not through the proxy), for seeding peers and inspecting.
func consulAPI(t testing.TB, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ctlRegistration is one element of the "registrations" of `berth ctl status`.
type ctlRegistration struct {
	ID          string `json:"id"`
	Registered  bool   `json:"registered"`
	State       string `json:"state"`
	Error       string `json:"error"`
	Maintenance bool   `json:"maintenance"`
}

func registrations(t *testing.T, sock string) []ctlRegistration {
	t.Helper()
	code, out, stderr := ctl(t, sock, "status")
	if code != 0 {
		t.Fatalf("ctl status: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Registrations []ctlRegistration `json:"registrations"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("ctl status is not JSON: %v\n%s", err, out)
	}
	return doc.Registrations
}

// waitUntil polls cond (the test's side; berth itself never polls) until it reports done, and returns how
// long that took. It fails with cond's last explanation and berth's stderr after timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, string), b *harness.BerthRun) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	if harness.WithinEvery(timeout, 50*time.Millisecond, func() bool {
		var ok bool
		ok, why = cond()
		return ok
	}) {
		return time.Since(start)
	}
	stderr := ""
	if b != nil {
		stderr = b.Stderr.String()
	}
	t.Fatalf("%s: not within %s (%s)\nberth stderr:\n%s", what, timeout, why, stderr)
	return 0
}

// secs renders a measured duration for a FAULTS.md figure.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// zeroConfigService runs berth with a registered service whose TCP check (every interval) targets testapp,
// Consul reached at consulAddr (the agent or a proxy in front of it), and a control socket; it waits until
// Consul lists the service passing.
func zeroConfigService(t *testing.T, c *harness.Consul, consulAddr string, interval time.Duration) (b *harness.BerthRun, name, sock string) {
	t.Helper()
	name = uniqueName(t, "fault")
	port := harness.FreePort(t)
	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	sock = sockPath(t)
	b = harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + consulAddr},
		Args: []string{"-log-level", "info", "-control-socket", sock, "-service", name, "-port", strconv.Itoa(port),
			"-check-tcp", hostPort, "-check-interval", interval.String(), "--", harness.TestApp(t), "-http", hostPort}})
	waitConsul(t, c.Addr, name, 20*time.Second, "registered and passing", oneWithStatus("passing"), b)
	return b, name, sock
}

// A Consul that accepts connections and never answers used to wedge the peers watch forever: its blocking
// query had no deadline. Now every request has one, and the first answer after the outage re-issues the
// watch's query, so a peer registered after Consul recovers is seen within about a check interval plus a
// request timeout.
func TestFaultConsulHangPeersWatch(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	ins := consulAPI(t, c.Addr)
	dir := t.TempDir()
	peerName := uniqueName(t, "members")
	peer := func(id string, port int) {
		t.Helper()
		if err := ins.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: peerName, Address: "127.0.0.1", Port: port}); err != nil {
			t.Fatal(err)
		}
	}
	p1, p2 := harness.FreePort(t), harness.FreePort(t)
	peer(peerName+"-1", p1)

	port := harness.FreePort(t)
	hostPort := "127.0.0.1:" + strconv.Itoa(port)
	file := filepath.Join(dir, "members")
	cfg := writeFile(t, dir, "berth.hcl", fmt.Sprintf(`
service %q {
  port    = %d
  address = "127.0.0.1"
  check {
    tcp      = %q
    interval = "1s"
  }
}
peers "members" {
  service      = %q
  passing_only = false
  wait         = "1s"
  file         = %q
}
`, uniqueName(t, "watcher"), port, hostPort, peerName, file))
	b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + proxy.Addr()},
		Args: []string{"-log-level", "info", "-control-socket", "off", "-config", cfg, "--", harness.TestApp(t), "-http", hostPort}})
	harness.WaitFile(t, file, "127.0.0.1:"+strconv.Itoa(p1), 20*time.Second)
	rendered := time.Now()
	waitUntil(t, 10*time.Second, "the watch's blocking query is open", func() (bool, string) {
		for _, r := range proxy.Requests("/v1/health/service/"+peerName, rendered.Add(-time.Second)) {
			if r.Index != "" && r.Index != "0" {
				return true, ""
			}
		}
		return false, "only plain queries so far"
	}, b)

	// Consul hangs: the open blocking query and every request after it go unanswered.
	failures := strings.Count(b.Stderr.String(), "consul TTL update failed")
	proxy.SetHang(true)
	noticed := waitUntil(t, requestTimeout+5*time.Second, "berth notices the hang", func() (bool, string) {
		return strings.Count(b.Stderr.String(), "consul TTL update failed") > failures, "no failed TTL update logged"
	}, b)

	// Consul answers again; a peer joins.
	proxy.SetHang(false)
	peer(peerName+"-2", p2)
	bound := requestTimeout + time.Second + 4*time.Second // a TTL update caught in the hang times out, the next one is answered
	took := waitUntil(t, bound, "the peer that joined after the recovery is in the file", func() (bool, string) {
		have := readFile(file)
		return strings.Contains(have, "127.0.0.1:"+strconv.Itoa(p2)), "file has " + have
	}, b)
	if !strings.Contains(readFile(file), "127.0.0.1:"+strconv.Itoa(p1)) {
		t.Fatalf("the first peer fell out of the file: %s", readFile(file))
	}
	select {
	case <-b.Done():
		t.Fatalf("berth exited during the hang:\n%s", b.Stderr.String())
	default:
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "Consul hangs (accepts, never answers), then recovers: peers watch",
		Expected: "every request has a deadline; peers registered after the recovery are seen within about a check interval + the 5 s request timeout",
		Observed: fmt.Sprintf("hang noticed after %s (a TTL update timed out); new peer rendered into the file %s after Consul answered again (the blocking query open across the hang was re-issued)",
			secs(noticed), secs(took)),
		Figure: fmt.Sprintf("%s to a new peer after recovery (was: never, > 90 s)", secs(took)),
	})
}

// `berth ctl maintenance on` during a hang used to take 30 s and then blame the control socket. It now
// fails within the request timeout with an error naming Consul, and berth applies the setting once Consul
// answers again.
func TestFaultConsulHangMaintenance(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	b, name, sock := zeroConfigService(t, c, proxy.Addr(), time.Second)

	proxy.SetHang(true)
	began := time.Now()
	code, stdout, stderr := ctl(t, sock, "maintenance", "on")
	took := time.Since(began)
	if code == 0 {
		t.Fatalf("ctl maintenance on succeeded during a hang: %s", stdout)
	}
	line := strings.TrimSpace(stderr)
	if !strings.HasPrefix(line, "berth: ") || strings.Count(line, "\n") != 0 || !strings.Contains(strings.ToLower(line), "consul") ||
		strings.Contains(line, "cannot reach berth") || strings.Contains(line, "is berth running") {
		t.Fatalf("want one berth: line naming Consul (not the control socket), have %q", stderr)
	}
	if took > requestTimeout+3*time.Second {
		t.Fatalf("ctl maintenance took %s; the request timeout is %s", took, requestTimeout)
	}

	proxy.SetHang(false)
	applied := waitUntil(t, requestTimeout+10*time.Second, "maintenance applied once Consul answers", func() (bool, string) {
		es, err := consulHealth(t, c.Addr, name)
		if err != nil || len(es) != 1 {
			return false, fmt.Sprint(es, err)
		}
		st, _, ok := es[0].check("_service_maintenance:")
		return ok && st == "critical", "no maintenance check"
	}, b)
	harness.RecordFault(t, harness.Fault{
		Name:     "`berth ctl maintenance on` while Consul hangs",
		Expected: "fails within the 5 s request timeout with an error naming Consul (not \"cannot reach berth … is berth running?\")",
		Observed: fmt.Sprintf("exit %d after %s: %s; applied %s after Consul answered again", code, secs(took), line, secs(applied)),
		Figure:   fmt.Sprintf("exit %d after %s (was: 30 s, blamed the control socket)", code, secs(took)),
	})
}

// `berth ctl status` used to report Registered: true during an outage. Now the registration is "unknown"
// while Consul does not answer, and registered again once it does.
func TestFaultConsulHangStatus(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	b, _, sock := zeroConfigService(t, c, proxy.Addr(), time.Second)
	if regs := registrations(t, sock); len(regs) != 1 || !regs[0].Registered || regs[0].State != "registered" {
		t.Fatalf("before the hang: want one registered service, have %+v", regs)
	}

	proxy.SetHang(true)
	var last ctlRegistration
	unknown := waitUntil(t, time.Second+requestTimeout+4*time.Second, "status shows the registration unknown", func() (bool, string) {
		regs := registrations(t, sock)
		if len(regs) != 1 {
			return false, fmt.Sprint(regs)
		}
		last = regs[0]
		return !last.Registered && last.State == "unknown", fmt.Sprintf("%+v", last)
	}, b)
	if !strings.Contains(last.Error, "consul unreachable since") {
		t.Fatalf("want the error to say since when Consul is unreachable, have %+v", last)
	}

	proxy.SetHang(false)
	again := waitUntil(t, requestTimeout+time.Second+4*time.Second, "status shows the registration again", func() (bool, string) {
		regs := registrations(t, sock)
		return len(regs) == 1 && regs[0].Registered && regs[0].State == "registered", fmt.Sprint(regs)
	}, b)
	harness.RecordFault(t, harness.Fault{
		Name:     "`berth ctl status` while Consul hangs",
		Expected: "registration reported as not confirmed while Consul does not answer, registered again after",
		Observed: fmt.Sprintf("Registered=false State=unknown (%q) %s after the hang began (check interval 1 s, request timeout 5 s); registered again %s after it ended",
			last.Error, secs(unknown), secs(again)),
		Figure: fmt.Sprintf("unknown after %s, registered %s after recovery (was: Registered true throughout)", secs(unknown), secs(again)),
	})
}

// required = true, timeout = "5s" and a hanging Consul: exit 69 after about 5 s. berth used to spend another
// 10 s (the drain timeout) deregistering the service it had never registered.
func TestFaultConsulHangRequired(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	proxy.SetHang(true)
	dir := t.TempDir()
	appLog := filepath.Join(dir, "app.log")
	cfg := writeFile(t, dir, "berth.hcl", fmt.Sprintf(`
consul {
  required = true
  timeout  = "5s"
}
service %q {
  port = %d
}
`, uniqueName(t, "required"), harness.FreePort(t)))
	app := harness.TestApp(t)
	harness.Berth(t) // built before the clock starts
	began := time.Now()
	b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + proxy.Addr()},
		Args: []string{"-log-level", "info", "-control-socket", "off", "-config", cfg, "--", app, "-log", appLog, "-sleep", "5m"}})
	code := b.Wait(40 * time.Second)
	took := time.Since(began)
	stderr := b.Stderr.String()
	if code != 69 {
		t.Fatalf("want exit 69, have %d\n%s", code, stderr)
	}
	if took < 5*time.Second || took > 8*time.Second {
		t.Fatalf("want exit after about consul.timeout (5s), took %s\n%s", took, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	final := lines[len(lines)-1]
	if !strings.HasPrefix(final, "berth: ") || !strings.Contains(final, "consul") {
		t.Fatalf("want a last berth: line naming consul, have %q", final)
	}
	noStackTrace(t, stderr)
	if _, err := os.Stat(appLog); err == nil {
		t.Fatalf("the application started although required Consul never answered: %s", readFile(appLog))
	}
	if n, _ := proxy.Count("/v1/agent/service/deregister/", began); n != 0 {
		t.Fatalf("berth sent %d deregistrations for a service it never registered", n)
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "Consul hangs, `required = true`, `timeout = \"5s\"`",
		Expected: "exit 69 after about 5 s, nothing started, no time spent deregistering what was never registered",
		Observed: fmt.Sprintf("exit %d after %s, application not started, 0 deregistration requests; %s", code, secs(took), final),
		Figure:   fmt.Sprintf("exit %d after %s (was: 15 s)", code, secs(took)),
	})
}

// Consul down at start (required = false): the application starts, and the registration lands within the
// back-off cap (the shortest check interval, at most 5 s) of Consul answering. The back-off used to grow to
// 30 s, so registration came up to 25 s late.
func TestFaultConsulDownAtStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		checks   []string
		cap      time.Duration // the back-off cap discovery applies
		failures int           // failed attempts to wait for: by then the back-off has reached its cap
		slow     bool
	}{
		{"check every 1s", []string{"-check-interval", "1s"}, time.Second, 5, false},
		{"no checks", nil, 5 * time.Second, 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.slow {
				harness.SlowFault(t)
			}
			c := harness.StartConsul(t)
			c.Stop() // the port is known; nothing answers on it
			name := uniqueName(t, "late")
			port := harness.FreePort(t)
			hostPort := "127.0.0.1:" + strconv.Itoa(port)
			args := []string{"-log-level", "info", "-control-socket", "off", "-service", name, "-port", strconv.Itoa(port)}
			if tc.checks != nil {
				args = append(args, append([]string{"-check-tcp", hostPort}, tc.checks...)...)
			}
			app := filepath.Join(t.TempDir(), "app.log")
			b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + c.Addr},
				Args: append(args, "--", harness.TestApp(t), "-http", hostPort, "-log", app)})
			harness.WaitFile(t, app, "ready", 15*time.Second) // Consul down never keeps the application from starting
			waitUntil(t, 60*time.Second, fmt.Sprintf("%d failed registration attempts", tc.failures), func() (bool, string) {
				n := strings.Count(b.Stderr.String(), "consul registration failed")
				return n >= tc.failures, fmt.Sprintf("%d so far", n)
			}, b)
			c.Restart() // a fresh agent on the same port; returns once it has a leader
			bound := tc.cap*12/10 + 2*time.Second
			_, took := waitConsul(t, c.Addr, name, bound, "registered after Consul came up", func(es []healthEntry) bool { return len(es) == 1 }, b)
			harness.RecordFault(t, harness.Fault{
				Name:     "Consul down at start (`required = false`), " + tc.name,
				Expected: fmt.Sprintf("application starts; registered within the back-off cap (%s) of Consul answering", tc.cap),
				Observed: fmt.Sprintf("application started with Consul down; after %d failed attempts, registered %s after the new agent had a leader",
					tc.failures, secs(took)),
				Figure: fmt.Sprintf("%s after Consul answered (cap %s; was: up to 25 s)", secs(took), tc.cap),
			})
		})
	}
}

// What held must keep holding: Consul SIGKILLed and restarted empty (dev mode) → berth re-registers within
// about one check interval of the new agent answering.
func TestFaultConsulKilledRestarted(t *testing.T) {
	c := harness.StartConsul(t)
	const interval = 2 * time.Second
	b, name, sock := zeroConfigService(t, c, c.Addr, interval)
	failures := strings.Count(b.Stderr.String(), "consul TTL update failed")
	c.Stop()
	killed := time.Now()
	waitUntil(t, interval+requestTimeout+3*time.Second, "berth notices Consul is gone", func() (bool, string) {
		regs := registrations(t, sock)
		return strings.Count(b.Stderr.String(), "consul TTL update failed") > failures && len(regs) == 1 && regs[0].State == "unknown",
			fmt.Sprint(regs)
	}, b)
	down := time.Since(killed)
	c.Restart()
	_, took := waitConsul(t, c.Addr, name, interval+3*time.Second, "re-registered", func(es []healthEntry) bool { return len(es) == 1 }, b)
	waitConsul(t, c.Addr, name, 10*time.Second, "passing again", oneWithStatus("passing"), b)
	select {
	case <-b.Done():
		t.Fatalf("berth exited during the Consul restart:\n%s", b.Stderr.String())
	default:
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "Consul SIGKILLed, restarted empty",
		Expected: "re-registered within about one check interval of the new agent answering",
		Observed: fmt.Sprintf("status unknown %s after the kill; re-registered %s after the restarted agent had a leader (interval %s)",
			secs(down), secs(took), interval),
		Figure: fmt.Sprintf("%s to re-registration", secs(took)),
	})
}

// '/' in a service name or id used to go unescaped into the agent API's URL path: "x/../y" deregistered
// some other path, the 404 was taken as "already gone", and a ghost stayed while berth logged "deregistered".
// Names are now checked the same way for flags (64) and files (78), and a 404 counts only when the agent
// really no longer lists the service.
func TestFaultConsulPathUnsafeNames(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	began := time.Now()
	env := []string{"CONSUL_HTTP_ADDR=" + proxy.Addr()}

	flagCode, _, flagErr := berthCmd(t, env, "-control-socket", "off", "-service", "x/../y", "-port", "8080", "--", "true")
	if flagCode != 64 || !strings.HasPrefix(flagErr, "berth: -service: ") || strings.Count(flagErr, "\n") != 1 {
		t.Fatalf("-service x/../y: want one berth: line and exit 64, have %d %q", flagCode, flagErr)
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "berth.hcl", `
service "web" {
  id   = "x/../y"
  port = 8080
}
`)
	valCode, _, valErr := berthCmd(t, nil, "validate", "-config", cfg)
	if valCode != 78 || !strings.Contains(valErr, `"x/../y"`) {
		t.Fatalf("validate: want 78 naming the id, have %d %q", valCode, valErr)
	}
	runCode, _, runErr := berthCmd(t, env, "-control-socket", "off", "-config", cfg, "--", "true")
	if runCode != 78 || !strings.Contains(runErr, `"x/../y"`) {
		t.Fatalf("run: want 78 naming the id, have %d %q", runCode, runErr)
	}
	if n, _ := proxy.Count("/", began); n != 0 {
		t.Fatalf("%d requests reached Consul for names berth rejects", n)
	}
	noStackTrace(t, flagErr+valErr+runErr)

	// A 404 while the agent still lists the service is a failure, not "already gone".
	b, name, _ := zeroConfigService(t, c, proxy.Addr(), time.Second)
	es, _ := consulHealth(t, c.Addr, name)
	id := es[0].Service.ID
	proxy.SetInject(func(r *http.Request) (int, string) {
		if strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/") {
			return http.StatusNotFound, "Unknown service ID"
		}
		return 0, ""
	})
	b.Signal(syscall.SIGTERM)
	b.Wait(30 * time.Second)
	stderr := b.Stderr.String()
	if strings.Contains(stderr, "deregistered from consul") {
		t.Fatalf("berth logged a deregistration that did not happen:\n%s", stderr)
	}
	if !strings.Contains(stderr, "deregistration failed") || !strings.Contains(stderr, "still lists") || !strings.Contains(stderr, id) {
		t.Fatalf("berth should say the deregistration of %s failed and the agent still lists it:\n%s", id, stderr)
	}
	if es, _ := consulHealth(t, c.Addr, name); len(es) != 1 {
		t.Fatalf("the test is void: the service should still be in Consul, have %+v", es)
	}
	_ = consulAPI(t, c.Addr).Agent().ServiceDeregister(id)
	harness.RecordFault(t, harness.Fault{
		Name:     "'/' in a service name or id (`-service 'x/../y'`, `service { id = \"x/../y\" }`); 404 on deregister",
		Expected: "rejected the same way from flags and files; a 404 is an error unless the agent no longer lists the service",
		Observed: fmt.Sprintf("flag: exit %d, validate: exit %d, run: exit %d, 0 requests to Consul; a 404 while the agent still lists the service logs \"deregistration failed … still lists\", never \"deregistered\"",
			flagCode, valCode, runCode),
		Figure: fmt.Sprintf("exit %d / %d, 0 ghosts logged as deregistered", flagCode, valCode),
	})
}

// Consul answering 500 to everything, then 2 s late to everything: the application keeps running, berth keeps
// its registration and, once Consul answers normally again, the TTL check is passing within an interval.
func TestFaultConsul500ThenSlow(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	const interval = time.Second
	b, name, _ := zeroConfigService(t, c, proxy.Addr(), interval)
	began := time.Now()
	proxy.SetInject(func(*http.Request) (int, string) { return 500, "injected 500" })
	harness.Eventually(t, 10*time.Second, "berth logs the failed TTL updates", func() bool {
		return strings.Contains(b.Stderr.String(), "consul TTL update failed")
	})
	// no update gets through: the TTL (3 × interval) runs out and Consul itself marks the check critical
	waitConsul(t, c.Addr, name, 15*time.Second, "critical once the TTL ran out", oneWithStatus("critical"), b)
	failing := proxy.Requests("/v1/agent/check/update", began)
	proxy.SetInject(func(*http.Request) (int, string) { time.Sleep(2 * time.Second); return 0, "" })
	slow := time.Now()
	waitConsul(t, c.Addr, name, 15*time.Second, "passing again while Consul answers 2 s late", oneWithStatus("passing"), b)
	proxy.SetInject(nil)
	select {
	case <-b.Done():
		t.Fatalf("berth exited while Consul failed:\n%s", b.Stderr.String())
	default:
	}
	updates, _ := proxy.Count("/v1/agent/check/update", slow)
	if updates == 0 {
		t.Fatalf("no TTL update reached Consul while it was slow")
	}
	harness.RecordFault(t, harness.Fault{Name: "Consul answers 500 to everything, then 2 s late",
		Expected: "the application keeps running; TTL updates retried every interval; passing again once Consul answers",
		Observed: fmt.Sprintf("%d TTL updates answered 500 and retried, app kept running; %d updates through the slow Consul, check passing",
			len(failing), updates),
		Figure: fmt.Sprintf("passing %s after Consul turned slow (2 s per answer)", secs(time.Since(slow)))})
}
