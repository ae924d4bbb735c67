package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// Catalog mode (issue 13): berth registers its task as a catalog node, agentless, writes check status only
// on change, keeps a TTL'd session alive, and every berth of a service reaps the entries of dead instances.

// catalogNode is one element of GET /v1/catalog/service/NAME (the fields the tests read).
type catalogNode struct {
	Node           string
	Address        string // the node's
	NodeMeta       map[string]string
	ServiceID      string
	ServiceAddress string
	ServicePort    int
}

func catalogService(t testing.TB, addr, name string) []catalogNode {
	t.Helper()
	var out []catalogNode
	getJSON(t, "http://"+addr+"/v1/catalog/service/"+name, &out)
	return out
}

func getJSON(t testing.TB, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// catalogBerth starts a catalog-mode berth for service name with an exec check that fails while failFile
// exists, through proxy (nil: straight to Consul). It returns the run, the file the app's SIGTERM handler
// writes Consul's answer to, and the control socket.
func catalogBerth(t *testing.T, c *harness.Consul, proxy *harness.ConsulProxy, name, node string, interval time.Duration, failFile string, pid1 bool) (b *harness.BerthRun, termOut, socket string) {
	t.Helper()
	dir := t.TempDir()
	addr := c.Addr
	if proxy != nil {
		addr = proxy.Addr()
	}
	cfg := filepath.Join(dir, "berth.hcl")
	hcl := fmt.Sprintf(`consul {
  address     = %q
  mode        = "catalog"
  node        = %q
  session_ttl = "10s"
}
service %q {
  port = %d
  check {
    exec     = ["/bin/sh", "-c", "[ ! -e %s ] || { echo failing; exit 2; }"]
    interval = %q
  }
}
`, addr, node, name, harness.FreePort(t), failFile, interval)
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	termOut, socket = filepath.Join(dir, "term.json"), filepath.Join(dir, "berth.sock")
	b = harness.RunBerth(t, harness.BerthOpts{PID1: pid1,
		Args: []string{"-config", cfg, "-control-socket", socket, "--",
			harness.TestApp(t), "-on-term-get", "http://" + c.Addr + "/v1/health/service/" + name, "-on-term-out", termOut}})
	return b, termOut, socket
}

// TestCatalogRegister: catalog mode through the flag and the file; the agent's local services stay empty, the
// check goes passing → critical → passing in the health endpoint, nothing is written while it is stable, and
// SIGTERM removes the node before the app hears the signal. Runs in `make test`.
func TestCatalogRegister(t *testing.T) {
	c := harness.StartConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	name := uniqueName(t, "cat")
	fail := filepath.Join(t.TempDir(), "fail")
	b, termOut, socket := catalogBerth(t, c, proxy, name, "task-"+name, 300*time.Millisecond, fail, false)

	es, took := waitConsul(t, c.Addr, name, 15*time.Second, "registered and passing", oneWithStatus("passing"), b)
	t.Logf("passing in the catalog %s after the test started looking", took.Round(time.Millisecond))
	var local map[string]any
	getJSON(t, "http://"+c.Addr+"/v1/agent/services", &local)
	if len(local) != 0 {
		t.Fatalf("catalog mode put services into the agent's local state: %v", local)
	}
	nodes := catalogService(t, c.Addr, name)
	if len(nodes) != 1 || nodes[0].Node != "task-"+name || nodes[0].NodeMeta["berth_session"] == "" || nodes[0].ServiceID != es[0].Service.ID {
		t.Fatalf("catalog entry %+v: want node task-%s with meta berth_session", nodes, name)
	}
	if n, _ := proxy.Count("/v1/agent/service/register", time.Time{}); n != 0 {
		t.Fatalf("catalog mode called the agent's register endpoint %d times", n)
	}

	// Stable: 20 check runs, zero catalog writes.
	since := time.Now()
	time.Sleep(6 * time.Second)
	writes, _ := proxy.Count("/v1/catalog/register", since)
	renewals, _ := proxy.Count("/v1/session/renew", since)
	if writes != 0 {
		t.Fatalf("%d catalog writes in 6s of stable status (want 0): %+v", writes, proxy.Requests("/v1/catalog/", since))
	}
	t.Logf("6s stable: %d catalog writes, %d session renewals", writes, renewals)

	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitConsul(t, c.Addr, name, 10*time.Second, "critical", oneWithStatus("critical"), b)
	since = time.Now()
	time.Sleep(2 * time.Second) // still critical: no writes
	if writes, _ := proxy.Count("/v1/catalog/register", since); writes != 0 {
		t.Fatalf("%d catalog writes while critical and stable", writes)
	}
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	waitConsul(t, c.Addr, name, 10*time.Second, "passing again", oneWithStatus("passing"), b)

	// Maintenance in catalog mode: a critical _service_maintenance check with the reason as notes; off removes it.
	if code, out := berthCLI(t, socket, "ctl", "maintenance", "on"); code != 0 {
		t.Fatalf("berth ctl maintenance on: exit %d: %s", code, out)
	}
	waitConsul(t, c.Addr, name, 10*time.Second, "in maintenance", func(es []healthEntry) bool {
		st, _, ok := es[0].check("_service_maintenance:")
		return len(es) == 1 && ok && st == "critical"
	}, b)
	if code, out := berthCLI(t, socket, "ctl", "maintenance", "off"); code != 0 {
		t.Fatalf("berth ctl maintenance off: exit %d: %s", code, out)
	}
	waitConsul(t, c.Addr, name, 10*time.Second, "out of maintenance and passing", func(es []healthEntry) bool {
		_, _, inMaint := es[0].check("_service_maintenance:")
		return len(es) == 1 && !inMaint && es[0].status() == "passing"
	}, b)

	// SIGTERM: gone from the catalog before the app's handler runs.
	b.Signal(syscall.SIGTERM)
	if code := b.Wait(30 * time.Second); code != 0 {
		t.Fatalf("berth exit %d, want 0\n%s", code, b.Stderr.String())
	}
	data, err := os.ReadFile(termOut)
	if err != nil {
		t.Fatalf("the app's TERM handler left nothing: %v\n%s", err, b.Stderr.String())
	}
	var seen []healthEntry
	if err := json.Unmarshal(data, &seen); err != nil || len(seen) != 0 {
		t.Fatalf("when the app got SIGTERM the health endpoint listed %s (%v)", data, err)
	}
	var node any
	getJSON(t, "http://"+c.Addr+"/v1/catalog/node/task-"+name, &node)
	if node != nil {
		t.Fatalf("the node is still in the catalog after exit: %v", node)
	}
	var sessions []any
	getJSON(t, "http://"+c.Addr+"/v1/session/list", &sessions)
	if len(sessions) != 0 {
		t.Fatalf("sessions left after exit: %v", sessions)
	}
}

// TestFaultCatalogReapSIGKILL: of two instances, the SIGKILLed one (its PID namespace killed, so nothing
// deregisters) is reaped by the other within 2×session_ttl plus the sweep, while the survivor stays passing.
func TestFaultCatalogReapSIGKILL(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	name := uniqueName(t, "reap")
	noFail := filepath.Join(t.TempDir(), "never")
	victim, _, _ := catalogBerth(t, c, nil, name, "task-a-"+name, time.Second, noFail, true)
	survivor, _, _ := catalogBerth(t, c, nil, name, "task-b-"+name, time.Second, noFail, true)
	waitConsul(t, c.Addr, name, 20*time.Second, "two passing", func(es []healthEntry) bool {
		return len(es) == 2 && es[0].status() == "passing" && es[1].status() == "passing"
	}, survivor)

	var survivorID string
	for _, n := range catalogService(t, c.Addr, name) {
		if n.Node == "task-b-"+name {
			survivorID = n.ServiceID
		}
	}
	killed := time.Now()
	if err := syscall.Kill(victim.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.Wait(10 * time.Second)
	const bound = 2*10*time.Second + 5*time.Second // 2×session_ttl, the sweep floor, Consul's timer, slack
	var es []healthEntry
	if !harness.WithinEvery(time.Until(killed.Add(bound+10*time.Second)), 100*time.Millisecond, func() bool {
		var err error
		if es, err = consulHealth(t, c.Addr, name); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Service.ID == survivorID && e.status() != "passing" {
				t.Fatalf("the survivor is %s", e.status())
			}
		}
		ns := catalogService(t, c.Addr, name)
		return len(ns) == 1 && ns[0].Node == "task-b-"+name
	}) {
		t.Fatalf("not reaped within %s: %+v\nsurvivor:\n%s", bound+10*time.Second, es, survivor.Stderr.String())
	}
	reaped := time.Since(killed)
	if reaped > bound {
		t.Fatalf("reaped after %s, beyond the stated bound %s", reaped, bound)
	}
	if !strings.Contains(survivor.Stderr.String(), "reaped a dead instance") {
		t.Fatalf("the survivor's log lacks the reap:\n%s", survivor.Stderr.String())
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "catalog mode: one of two instances SIGKILLed (PID namespace killed)",
		Expected: "the other instance's berth deregisters the dead node within 2×session_ttl + sweep; the survivor stays passing",
		Observed: "dead instance gone from /v1/health/service, survivor passing throughout",
		Figure:   fmt.Sprintf("time-to-reap %s (session_ttl 10s, bound %s)", reaped.Round(10*time.Millisecond), bound),
	})

	// The last instance dies: nobody sweeps, the entry stays until the next instance starts and sweeps.
	if err := syscall.Kill(survivor.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	survivor.Wait(10 * time.Second)
	time.Sleep(25 * time.Second)
	if ns := catalogService(t, c.Addr, name); len(ns) != 1 || ns[0].Node != "task-b-"+name {
		t.Fatalf("with no instance alive the entry should stay (nobody sweeps): %+v", ns)
	}
	started := time.Now()
	next, _, _ := catalogBerth(t, c, nil, name, "task-c-"+name, time.Second, noFail, true)
	var took time.Duration
	harness.Eventually(t, 15*time.Second, "the new instance alone in the catalog", func() bool {
		ns := catalogService(t, c.Addr, name)
		took = time.Since(started)
		return len(ns) == 1 && ns[0].Node == "task-c-"+name
	})
	_ = next
	harness.RecordFault(t, harness.Fault{
		Name:     "catalog mode: the last instance of a service SIGKILLed",
		Expected: "nobody sweeps; the entry stays until the next instance starts, whose start-up sweep removes it",
		Observed: "entry still listed 25s after the kill; gone once a new instance started",
		Figure:   fmt.Sprintf("new instance alone %s after its start", took.Round(time.Millisecond)),
	})
}

// TestFaultCatalogConsulRestart: a Consul restart with dev mode's empty state loses node, services and
// session; the failed session renewal re-registers within one renewal interval (session_ttl/2).
func TestFaultCatalogConsulRestart(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	name := uniqueName(t, "catrestart")
	b, _, _ := catalogBerth(t, c, nil, name, "task-"+name, time.Second, filepath.Join(t.TempDir(), "never"), false)
	waitConsul(t, c.Addr, name, 15*time.Second, "passing", oneWithStatus("passing"), b)
	c.Restart()
	restarted := time.Now()
	_, took := waitConsul(t, c.Addr, name, 15*time.Second, "re-registered and passing", oneWithStatus("passing"), b)
	if took > 5*time.Second+2*time.Second {
		t.Fatalf("re-registered after %s, want within session_ttl/2 = 5s (+ slack)", took)
	}
	harness.RecordFault(t, harness.Fault{
		Name:     "catalog mode: Consul SIGKILLed, restarted empty",
		Expected: "the next session renewal finds the session gone; berth re-registers node, session, services",
		Observed: "re-registered and passing",
		Figure:   fmt.Sprintf("%s after Consul answered again (renewal every 5s)", time.Since(restarted).Round(100*time.Millisecond)),
	})
}

// TestFaultSteadyStateWrites is the bench of issue 13: Consul requests per task-minute with a stable check
// (interval 10s, the default), agent mode and catalog mode side by side, counted at the proxy.
func TestFaultSteadyStateWrites(t *testing.T) {
	harness.SlowFault(t)
	c := harness.StartConsul(t)
	app := harness.TestApp(t)
	type result struct{ ttl, catalog, renew, other int }
	results := map[string]*result{}
	for _, mode := range []string{"agent", "catalog"} {
		results[mode] = &result{}
	}
	t.Run("group", func(t *testing.T) {
		for _, mode := range []string{"agent", "catalog"} {
			t.Run(mode, func(t *testing.T) {
				t.Parallel()
				proxy := harness.StartConsulProxy(t, c.Addr)
				name := uniqueName(t, "steady-"+mode)
				port := harness.FreePort(t)
				hostPort := "127.0.0.1:" + strconv.Itoa(port)
				b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + proxy.Addr(), "BERTH_CONSUL_MODE=" + mode},
					Args: []string{"-control-socket", filepath.Join(t.TempDir(), "s.sock"), "-service", name, "-port", strconv.Itoa(port),
						"-check-http", "http://" + hostPort + "/health", "--", app, "-http", hostPort}})
				waitConsul(t, c.Addr, name, 20*time.Second, "passing", oneWithStatus("passing"), b)
				// Start-up is over once berth only waits: in agent mode that is once the check passes; in
				// catalog mode the start-up sweep has run and the session list is watched at the current index.
				if mode == "catalog" {
					harness.Eventually(t, 20*time.Second, "the sweep's blocking query open", func() bool { return proxy.Waiting("/v1/session/list") >= 1 })
				}
				since := time.Now()
				time.Sleep(60 * time.Second)
				r := results[mode]
				r.ttl, _ = proxy.Count("/v1/agent/check/update", since)
				r.catalog, _ = proxy.Count("/v1/catalog/register", since)
				r.renew, _ = proxy.Count("/v1/session/renew", since)
				all, _ := proxy.Count("/v1/", since)
				r.other = all - r.ttl - r.catalog - r.renew
			})
		}
	})
	a, k := results["agent"], results["catalog"]
	if k.catalog != 0 {
		t.Fatalf("catalog mode wrote %d catalog registrations in a stable minute", k.catalog)
	}
	t.Logf("agent: %+v catalog: %+v", *a, *k)
	harness.RecordFault(t, harness.Fault{
		Name:     "steady state, one HTTP check every 10s, one task-minute",
		Expected: "agent mode: one TTL update per interval; catalog mode: zero catalog writes, session renewals only",
		Observed: fmt.Sprintf("agent: %d TTL updates, %d other; catalog: %d catalog writes, %d session renewals (no Raft writes), %d other (blocking queries, sweeps)",
			a.ttl, a.other, k.catalog, k.renew, k.other),
		Figure: fmt.Sprintf("writes/task-minute: agent %d (to the local agent), catalog %d (+%d renewals)", a.ttl, k.catalog, k.renew),
	})
}
