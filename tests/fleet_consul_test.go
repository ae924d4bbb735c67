package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// fleetClass sorts a request to Consul: what it is, and whether it would be a poll (a plain read of the
// catalog or health API, which a watcher only makes when it does not use blocking queries).
func fleetClass(r harness.ProxiedRequest) (kind string, poll bool) {
	blocking := r.Index != "" && r.Index != "0"
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v1/agent/check/update/"):
		return "TTL update (PUT /v1/agent/check/update)", false
	case r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v1/agent/service/register"):
		return "register (PUT /v1/agent/service/register)", false
	case r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v1/agent/service/deregister/"):
		return "deregister (PUT /v1/agent/service/deregister)", false
	case r.Method == http.MethodGet && blocking && r.Filter != "":
		return "probe (GET " + fleetRoute(r.Path) + ", index>0, a filter matching nothing)", false
	case r.Method == http.MethodGet && blocking:
		return "blocking query (GET " + fleetRoute(r.Path) + ", index>0)", false
	case r.Method == http.MethodGet && (strings.HasPrefix(r.Path, "/v1/health/") || strings.HasPrefix(r.Path, "/v1/catalog/")):
		return "plain read (GET " + fleetRoute(r.Path) + ", no index)", true
	}
	return r.Method + " " + fleetRoute(r.Path), false
}

// fleetRoute is a path without its last segment when that is a name or id (/v1/health/service/NAME →
// /v1/health/service).
func fleetRoute(p string) string {
	if strings.Count(p, "/") > 3 {
		return p[:strings.LastIndexByte(p, '/')]
	}
	return p
}

// fleetCounts classifies requests; polls is how many were plain catalog/health reads.
func fleetCounts(reqs []harness.ProxiedRequest) (counts map[string]int, polls int) {
	counts = map[string]int{}
	for _, r := range reqs {
		k, poll := fleetClass(r)
		counts[k]++
		if poll {
			polls++
		}
	}
	return counts, polls
}

func fleetCountRows(b *strings.Builder, counts map[string]int, window time.Duration) {
	total := 0
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(b, "| %s | %d | %.0f |\n", k, counts[k], float64(counts[k])/window.Minutes())
		total += counts[k]
	}
	fmt.Fprintf(b, "| **total** | **%d** | **%.0f** |\n", total, float64(total)/window.Minutes())
}

// fleetPeersFile reads a peers file as a set of host:port ("" → empty set).
func fleetPeersFile(path string) map[string]bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	set := map[string]bool{}
	for _, hp := range strings.Split(strings.TrimSpace(string(data)), ",") {
		if hp != "" {
			set[hp] = true
		}
	}
	return set
}

// fleetPeersConverged reports whether the peers file of each of members lists exactly the other instances
// of set, and how many do not.
func fleetPeersConverged(members, set []*fleetProc) (bool, int) {
	all := map[string]bool{}
	for _, m := range set {
		all["127.0.0.1:"+strconv.Itoa(m.port)] = true
	}
	behind := 0
	for _, m := range members {
		have := fleetPeersFile(m.peers)
		self := "127.0.0.1:" + strconv.Itoa(m.port)
		ok := have != nil && len(have) == len(all)-1 && !have[self]
		if ok {
			for hp := range have {
				if !all[hp] {
					ok = false
					break
				}
			}
		}
		if !ok {
			behind++
		}
	}
	return behind == 0, behind
}

// fleetPassing is how many instances of service are passing in Consul's health API (read directly from the
// agent, not through the counting proxy).
func fleetPassing(consulAddr, service string) (map[string]bool, error) {
	resp, err := http.Get("http://" + consulAddr + "/v1/health/service/" + service + "?passing")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var entries []struct {
		Service struct {
			Address string
			Port    int
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, e := range entries {
		set[net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port))] = true
	}
	return set, nil
}

// TestFleetConsul: 200 berths, each registering one instance of service "fleet" with an HTTP check berth
// runs (every 10s, the default) against one small HTTP server, and following the same service with a peers
// block rendered to a file, all through one counting proxy in front of one `consul agent -dev`. Measured:
// registration and peers convergence, the requests Consul receives and its CPU in a steady-state minute,
// the berths' memory, and peers convergence after 20% churn (40 stopped with SIGTERM, 40 new started).
func TestFleetConsul(t *testing.T) {
	fleetBench(t)
	n, window := 200, 60*time.Second
	if v, err := strconv.Atoi(os.Getenv("BERTH_FLEET_N")); err == nil && v >= 10 { // a quick run while working on it
		n, window = v, 15*time.Second
	}
	churn := n / 5
	const interval = 10 * time.Second
	bin := harness.Berth(t)
	// Every berth connects from 127.0.0.1; Consul's default is 200 connections per client address.
	consul := harness.StartConsulHCL(t, `limits { http_max_conns_per_client = 5000 }`)
	proxy := harness.StartConsulProxy(t, consul.Addr)
	consulPid := consul.Cmd.Process.Pid

	var healthHits sync.Map
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		healthHits.Store(r.URL.Path, true)
		_, _ = w.Write([]byte("ok\n"))
	})}
	go func() { _ = hsrv.Serve(hl) }()
	t.Cleanup(func() { _ = hsrv.Close() })
	healthURL := "http://" + hl.Addr().String()

	dir := t.TempDir()
	if os.Getenv("BERTH_FLEET_KEEP") != "" { // the berths' logs and peers files, to look at afterwards
		dir = os.Getenv("BERTH_FLEET_KEEP")
		_ = os.MkdirAll(dir, 0o755)
	}
	env := []string{"CONSUL_HTTP_ADDR=" + proxy.Addr()}
	var all []*fleetProc
	t.Cleanup(func() { fleetStopAll(all) })
	start := func(port int) *fleetProc {
		t.Helper()
		name := "b" + strconv.Itoa(port)
		peers := filepath.Join(dir, name+".peers")
		cfg := filepath.Join(dir, name+".hcl")
		hcl := fmt.Sprintf(`service "fleet" {
  port    = %d
  address = "127.0.0.1"
  check {
    http     = "%s/health/%d"
    interval = %q
  }
}

peers "fleet" {
  service = "fleet"
  file    = %q
}
`, port, healthURL, port, interval.String(), peers)
		if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := fleetStart(t, env, filepath.Join(dir, name+".log"), bin, "run", "-control-socket", "off", "-config", cfg)
		if err != nil {
			t.Fatalf("start berth %d: %v", port, err)
		}
		p.port, p.peers = port, peers
		all = append(all, p)
		return p
	}
	expect := func(members []*fleetProc) map[string]bool {
		s := map[string]bool{}
		for _, m := range members {
			s["127.0.0.1:"+strconv.Itoa(m.port)] = true
		}
		return s
	}
	alive := func(members []*fleetProc) error {
		for _, m := range members {
			if m.exited() {
				out, _ := os.ReadFile(m.log)
				return fmt.Errorf("berth %d exited with %d:\n%s", m.port, m.code, out)
			}
		}
		return nil
	}
	passingIs := func(want map[string]bool) func() (bool, string) {
		return func() (bool, string) {
			have, err := fleetPassing(consul.Addr, "fleet")
			if err != nil {
				return false, err.Error()
			}
			return maps.Equal(have, want), fmt.Sprintf("%d of %d passing", len(have), len(want))
		}
	}
	peersOf := func(members, set []*fleetProc) func() (bool, string) {
		return func() (bool, string) {
			ok, behind := fleetPeersConverged(members, set)
			return ok, fmt.Sprintf("%d of %d peers files not yet right", behind, len(members))
		}
	}

	// 1. Start-up: 200 berths at once.
	cpu0 := fleetCPU(t, consulPid)
	t0 := time.Now()
	var members []*fleetProc
	for i := range n {
		members = append(members, start(31000+i))
	}
	spawned := time.Since(t0)
	regConv := spawned + waitUntil(t, 3*time.Minute, "all 200 passing in Consul", passingIs(expect(members)), nil)
	peersConv := time.Since(t0)
	peersConv = waitUntil(t, 3*time.Minute, "every peers file lists the other 199", peersOf(members, members), nil) + peersConv
	startupCPU := fleetCPU(t, consulPid) - cpu0
	startupReqs := proxy.Requests("/", t0)
	if err := alive(members); err != nil {
		t.Fatal(err)
	}

	// 2. Steady state: the start-up has settled once every berth's peers query waits on the current index
	// (the last start-up change went through all of them); then count a minute. Checked every second: each
	// check lists the whole service.
	settled := time.Now()
	if !harness.WithinEvery(3*time.Minute, time.Second, func() bool { return proxy.Waiting("/v1/health/service/fleet") >= n }) {
		t.Fatalf("steady state: fewer than %d peers queries wait on Consul's current index after 3m", n)
	}
	t.Logf("start-up settled %s after the peers files converged", time.Since(settled).Round(100*time.Millisecond))
	pids := make([]int, len(members))
	for i, m := range members {
		pids[i] = m.cmd.Process.Pid
	}
	rss, pss := fleetMem(pids)
	listBytes := fleetBodySize(t, "http://"+consul.Addr+"/v1/health/service/fleet?passing")
	w0 := time.Now()
	c0 := fleetCPU(t, consulPid)
	time.Sleep(window)
	steadyCPU := fleetCPU(t, consulPid) - c0
	steady := proxy.Requests("/", w0)
	w1 := time.Now()
	steady = slices.DeleteFunc(steady, func(r harness.ProxiedRequest) bool { return r.At.After(w1) })
	steadyCounts, polls := fleetCounts(steady)
	if err := alive(members); err != nil {
		t.Fatal(err)
	}
	if polls != 0 {
		t.Errorf("steady state: %d plain catalog/health reads in %s; want 0 (blocking queries only)", polls, window)
	}
	for k := range steadyCounts {
		if !strings.HasPrefix(k, "TTL update") && !strings.HasPrefix(k, "blocking query") {
			t.Errorf("steady state: unexpected request kind %q (%d)", k, steadyCounts[k])
		}
	}
	// one per berth per interval: within one update per berth of window/interval each (the phases differ)
	per := window.Seconds() / interval.Seconds()
	lo, hi := float64(n)*(per-1), float64(n)*math.Ceil(per+0.01)
	if got := float64(steadyCounts["TTL update (PUT /v1/agent/check/update)"]); got < lo || got > hi {
		t.Errorf("steady state: %.0f TTL updates in %s, want %.0f..%.0f (one per berth per interval)", got, window, lo, hi)
	}

	// 3. Churn: SIGTERM 40 (every fifth), start 40 new at the same moment.
	var victims, survivors []*fleetProc
	for i, m := range members {
		if i%(n/churn) == 0 {
			victims = append(victims, m)
		} else {
			survivors = append(survivors, m)
		}
	}
	c1 := fleetCPU(t, consulPid)
	t1 := time.Now()
	for _, v := range victims {
		_ = syscall.Kill(v.cmd.Process.Pid, syscall.SIGTERM)
	}
	var fresh []*fleetProc
	for i := range churn {
		fresh = append(fresh, start(32000+i))
	}
	next := append(slices.Clone(survivors), fresh...)
	churnPass := waitUntil(t, 3*time.Minute, "the new 200 passing after churn", passingIs(expect(next)), nil)
	churnSurvivors := waitUntil(t, 3*time.Minute, "every survivor's peers file reflects the churn",
		peersOf(survivors, next), nil) + churnPass
	churnAll := time.Since(t1)
	churnAll = waitUntil(t, 3*time.Minute, "every member's peers file (new ones too)", peersOf(next, next), nil) + churnAll
	churnCPU := fleetCPU(t, consulPid) - c1
	churnWindow := time.Since(t1)
	churnReqs := proxy.Requests("/", t1)
	for _, v := range victims {
		select {
		case <-v.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("berth %d did not exit within 30s of SIGTERM", v.port)
		}
		if v.code != 0 {
			t.Errorf("berth %d exited %d after SIGTERM, want 0", v.port, v.code)
		}
	}
	if err := alive(next); err != nil {
		t.Fatal(err)
	}
	// When berth's side of the churn was done: the victims gone, the new ones registered and reporting.
	lastExit, lastReg, lastFirstTTL := fleetTimeline(victims, fresh, churnReqs, t1)
	hits := 0
	healthHits.Range(func(any, any) bool { hits++; return true })
	if hits != n+churn {
		t.Errorf("health server saw %d distinct check URLs, want %d", hits, n+churn)
	}

	cc, _ := fleetCounts(churnReqs)
	var b strings.Builder
	fmt.Fprintf(&b, "## %d berths against one Consul agent\n\n", n)
	fmt.Fprintf(&b, "One `consul agent -dev` (%s), %d berths in sidecar mode (`berth run -config`, no main command), each "+
		"registering one instance of service `fleet` with an HTTP check berth runs every %s against one local HTTP "+
		"server, and following the same service with a `peers` block rendered to a file. All Consul traffic goes through "+
		"one counting proxy (every request recorded with its path and `index=`); the test reads Consul's health API "+
		"directly, outside the count.\n\n", fleetConsulVersion(t, consul), n, interval)
	b.WriteString("| measurement | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| spawn %d berths | %.2f s |\n", n, spawned.Seconds())
	fmt.Fprintf(&b, "| first spawn → all %d passing in `/v1/health/service/fleet?passing` | %.2f s |\n", n, regConv.Seconds())
	fmt.Fprintf(&b, "| first spawn → every peers file lists the other %d | %.2f s |\n", n-1, peersConv.Seconds())
	fmt.Fprintf(&b, "| Consul CPU during that start-up | %.2f s (%d requests) |\n", startupCPU.Seconds(), len(startupReqs))
	fmt.Fprintf(&b, "| berths' memory at steady state, summed | RSS %.0f MiB (%.1f MiB each), PSS %.0f MiB (%.1f MiB each: the binary's pages are shared) |\n",
		float64(rss)/1024, float64(rss)/1024/float64(n), float64(pss)/1024, float64(pss)/1024/float64(n))
	fmt.Fprintf(&b, "| Consul CPU in the steady-state minute | %.2f s per minute (%.1f %% of one core) |\n",
		steadyCPU.Seconds()*time.Minute.Seconds()/w1.Sub(w0).Seconds(), 100*steadyCPU.Seconds()/w1.Sub(w0).Seconds())
	fmt.Fprintf(&b, "| plain (non-blocking) catalog/health reads in that minute (\"polls\") | %d |\n", polls)
	fmt.Fprintf(&b, "| churn: SIGTERM %d, start %d new → the new set passing | %.2f s |\n", churn, churn, churnPass.Seconds())
	fmt.Fprintf(&b, "| churn → every survivor's (%d) peers file is the new set | %.2f s |\n", len(survivors), churnSurvivors.Seconds())
	fmt.Fprintf(&b, "| churn → every member's (%d, the new ones too) peers file is right | %.2f s |\n", len(next), churnAll.Seconds())
	fmt.Fprintf(&b, "| churn: berth's side done — last victim exited / last registration sent / last new berth's first TTL update sent | %.2f s / %.2f s / %.2f s |\n",
		lastExit.Seconds(), lastReg.Seconds(), lastFirstTTL.Seconds())
	fmt.Fprintf(&b, "| Consul CPU during the churn (%.1f s) | %.2f s (%d requests) |\n", churnWindow.Seconds(), churnCPU.Seconds(), len(churnReqs))
	lists, listSent, probes, probeSent := fleetAnswers(churnReqs)
	fmt.Fprintf(&b, "\nEach answer to a peers query is the whole list: %.0f KiB of JSON for %d instances (node, service and checks of each). "+
		"A change wakes every watcher. A watcher renders that answer at once, then waits for the service to be quiet for 1 s (±25 %%, "+
		"at most 4 s) before it asks for the list again, watching with probes (a blocking query whose filter matches nothing: "+
		"its answer is `[]` and the index). During the churn Consul answered %d list queries (%.1f per watcher), %.1f MiB as sent, gzip-compressed "+
		"(%.0f MiB of JSON to encode), and %d probes (%.0f KiB); berth's own work was done %.1f s after the churn began. In steady "+
		"state nothing changes and nobody is woken.\n",
		float64(listBytes)/1024, n, lists, float64(lists)/float64(len(next)), float64(listSent)/(1<<20),
		float64(lists)*float64(listBytes)/(1<<20), probes, float64(probeSent)/1024, max(lastExit, lastReg, lastFirstTTL).Seconds())
	fmt.Fprintf(&b, "\nRequests reaching Consul in the steady-state minute (%s):\n\n| request | count | per minute |\n|---|---|---|\n", w1.Sub(w0).Round(time.Millisecond))
	fleetCountRows(&b, steadyCounts, w1.Sub(w0))
	fmt.Fprintf(&b, "\nRequests during the churn (%.1f s, until every peers file was right):\n\n| request | count | per minute |\n|---|---|---|\n", churnWindow.Seconds())
	fleetCountRows(&b, cc, churnWindow)
	sc, _ := fleetCounts(startupReqs)
	fmt.Fprintf(&b, "\nRequests during the start-up (%.1f s, until every peers file was right):\n\n| request | count | per minute |\n|---|---|---|\n", peersConv.Seconds())
	fleetCountRows(&b, sc, peersConv)
	b.WriteString("\n")
	fleetReport(t, b.String())
}

// fleetAnswers counts the peers lists (health queries without a filter) and probes among reqs that were
// answered (a query still open when reqs was taken is not), with the bytes the proxy sent back for each kind.
func fleetAnswers(reqs []harness.ProxiedRequest) (lists int, listBytes int64, probes int, probeBytes int64) {
	for _, r := range reqs {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/v1/health/service/") || r.Bytes == 0 {
			continue
		}
		if r.Filter != "" {
			probes, probeBytes = probes+1, probeBytes+r.Bytes
		} else {
			lists, listBytes = lists+1, listBytes+r.Bytes
		}
	}
	return lists, listBytes, probes, probeBytes
}

// fleetTimeline is when, after t1, the last of victims exited, the last registration arrived at the proxy,
// and the last of fresh sent its first TTL update (check IDs hold the service ID, which ends in the port).
func fleetTimeline(victims, fresh []*fleetProc, reqs []harness.ProxiedRequest, t1 time.Time) (exit, reg, ttl time.Duration) {
	for _, v := range victims {
		exit = max(exit, v.exitedAt().Sub(t1))
	}
	first := map[int]time.Duration{}
	for _, r := range reqs {
		switch k, _ := fleetClass(r); {
		case strings.HasPrefix(k, "register"):
			reg = max(reg, r.At.Sub(t1))
		case strings.HasPrefix(k, "TTL update"):
			for _, f := range fresh {
				if _, seen := first[f.port]; !seen && strings.Contains(r.Path, "-"+strconv.Itoa(f.port)) {
					first[f.port] = r.At.Sub(t1)
				}
			}
		}
	}
	for _, d := range first {
		ttl = max(ttl, d)
	}
	return exit, reg, ttl
}

// fleetBodySize is the size of the answer to a GET of url.
func fleetBodySize(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return len(body)
}

func fleetConsulVersion(t *testing.T, c *harness.Consul) string {
	out, err := exec.Command(harness.Tool(t, "consul"), "version").Output()
	if err != nil {
		return "consul"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}
