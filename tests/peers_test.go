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

	"github.com/berth-dev/berth/tests/harness"
)

// natsNode is one nats-server under its own berth, registered in Consul as service "nats" on its cluster
// port, with its cluster routes rendered from the peers of that service.
type natsNode struct {
	name                     string
	client, cluster, monitor int
	conf, socket             string
	proxy                    *harness.ConsulProxy
	berth                    *harness.BerthRun
	started                  time.Time
}

const natsPeersWait = 3 * time.Second

// natsBerthConfig is the berth config of one node. The peers block renders the whole nats-server config
// (routes included) into the file nats-server reads, and SIGHUP makes nats-server reload it.
func natsBerthConfig(n *natsNode) string {
	natsConf := fmt.Sprintf(`server_name: %s
port: %d
http: "127.0.0.1:%d"
cluster {
  name: berth
  listen: "127.0.0.1:%d"
  pool_size: -1
  routes: [
{{range .}}    "nats-route://{{.Address}}:{{.Port}}"
{{end}}  ]
}
`, n.name, n.client, n.monitor, n.cluster)
	return fmt.Sprintf(`control_socket = %q

service "nats" {
  port    = %d
  address = "127.0.0.1"
  check {
    tcp      = "127.0.0.1:%d"
    interval = "1s"
  }
}

peers "routes" {
  service   = "nats"
  min       = 2
  wait      = %q
  file      = %q
  on_change = "signal:SIGHUP"
  template  = <<EOT
%sEOT
}
`, n.socket, n.cluster, n.cluster, natsPeersWait.String(), n.conf, natsConf)
}

func startNatsNode(t *testing.T, dir, consulAddr string, i int) *natsNode {
	t.Helper()
	n := &natsNode{name: "n" + strconv.Itoa(i), client: harness.FreePort(t), cluster: harness.FreePort(t),
		monitor: harness.FreePort(t)}
	n.conf = filepath.Join(dir, n.name+"-nats.conf")
	n.socket = filepath.Join(dir, n.name+".sock")
	cfg := filepath.Join(dir, n.name+"-berth.hcl")
	if err := os.WriteFile(cfg, []byte(natsBerthConfig(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	n.proxy = harness.StartConsulProxy(t, consulAddr)
	n.started = time.Now()
	n.berth = harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + n.proxy.Addr()},
		Args: []string{"-config", cfg, "--", harness.Tool(t, "nats-server"), "-c", n.conf}})
	return n
}

// routez is nats-server's view of its cluster routes.
type routez struct {
	NumRoutes int `json:"num_routes"`
	Routes    []struct {
		RemoteName string `json:"remote_name"`
		Port       int    `json:"port"`
	} `json:"routes"`
}

func (n *natsNode) routez() (routez, error) {
	var rz routez
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(n.monitor) + "/routez")
	if err != nil {
		return rz, err
	}
	defer resp.Body.Close()
	return rz, json.NewDecoder(resp.Body).Decode(&rz)
}

func (n *natsNode) remotes() []string {
	rz, _ := n.routez()
	var out []string
	for _, r := range rz.Routes {
		out = append(out, r.RemoteName)
	}
	return out
}

// waitRoutes waits until every node reports want routes on /routez.
func waitRoutes(t *testing.T, want int, timeout time.Duration, nodes ...*natsNode) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		var rz routez
		var err error
		if !harness.WithinEvery(time.Until(deadline), 100*time.Millisecond, func() bool {
			rz, err = n.routez()
			return err == nil && rz.NumRoutes == want
		}) {
			t.Fatalf("%s: want %d routes within %s, have %+v (%v)\nits config:\n%s\nberth stderr:\n%s", n.name, want, timeout, rz, err, readFile(n.conf), n.berth.Stderr.String())
		}
	}
}

// routesIn lists the nats-route URLs of a rendered config.
func routesIn(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		if l = strings.Trim(strings.TrimSpace(l), `"`); strings.HasPrefix(l, "nats-route://") {
			out = append(out, l)
		}
	}
	return out
}

func routeTo(n *natsNode) string { return "nats-route://127.0.0.1:" + strconv.Itoa(n.cluster) }

func TestPeersBootstrapNatsCluster(t *testing.T) {
	c := harness.StartConsul(t)
	dir := t.TempDir()

	// The first member starts alone, after `wait`, with no routes.
	n1 := startNatsNode(t, dir, c.Addr, 1)
	harness.WaitHTTP(t, "http://127.0.0.1:"+strconv.Itoa(n1.monitor)+"/varz", 30*time.Second, nil)
	if took := time.Since(n1.started); took < natsPeersWait {
		t.Fatalf("n1's nats-server answered %s after berth started; berth should have waited %s for min peers", took, natsPeersWait)
	}
	if r := routesIn(readFile(n1.conf)); len(r) != 0 {
		t.Fatalf("n1 should start alone, its config has routes %v", r)
	}
	if !strings.Contains(n1.berth.Stderr.String(), "fewer peers than min after wait") {
		t.Fatalf("n1's berth should say it starts alone:\n%s", n1.berth.Stderr.String())
	}
	waitConsul(t, c.Addr, "nats", 15*time.Second, "n1 passing", oneWithStatus("passing"), n1.berth)

	// The others find the first (and each other) in Consul.
	n2 := startNatsNode(t, dir, c.Addr, 2)
	n3 := startNatsNode(t, dir, c.Addr, 3)
	nodes := []*natsNode{n1, n2, n3}
	waitConsul(t, c.Addr, "nats", 30*time.Second, "three instances passing", func(es []healthEntry) bool {
		if len(es) != 3 {
			return false
		}
		for _, e := range es {
			if e.status() != "passing" {
				return false
			}
		}
		return true
	}, n3.berth)
	waitRoutes(t, 2, 60*time.Second, nodes...)
	for _, n := range nodes {
		var want []string
		for _, o := range nodes {
			if o != n {
				want = append(want, routeTo(o))
			}
		}
		harness.WaitFile(t, n.conf, want[0], 10*time.Second)
		harness.WaitFile(t, n.conf, want[1], 10*time.Second)
		if have := routesIn(readFile(n.conf)); len(have) != 2 {
			t.Fatalf("%s's rendered routes %v, want exactly the other two %v", n.name, have, want)
		}
		t.Logf("%s: routes to %v", n.name, n.remotes())
	}
	// n1 learned its routes after it had started: through the blocking query, a re-render and SIGHUP
	if !strings.Contains(n1.berth.Stderr.String(), "peers changed") {
		t.Fatalf("n1's berth should have applied on_change:\n%s", n1.berth.Stderr.String())
	}

	// Steady state: peers are followed with blocking queries, nothing polls. First the start-up's last
	// changes (check-output syncs) must have passed through: each berth's query waits on the current index.
	for _, n := range nodes {
		harness.Eventually(t, 20*time.Second, n.name+"'s peers query open at the current index", func() bool {
			return n.proxy.Waiting("/v1/health/service/nats") >= 1
		})
	}
	quiet := time.Now()
	time.Sleep(6 * time.Second)
	for _, n := range nodes {
		peersQ, plain := n.proxy.Count("/v1/health/service/nats", quiet)
		ttl, _ := n.proxy.Count("/v1/agent/check/update/", quiet)
		t.Logf("%s steady state over 6s: %d peers queries (%d plain), %d TTL updates", n.name, peersQ, plain, ttl)
		// Consul may end a blocking query early now and then (see discovery's steady-state test): a few
		// re-issues are tolerated, a non-blocking query or a poll's cadence is not
		if peersQ > 3 || plain > 0 {
			t.Fatalf("%s: %d peer queries (%d non-blocking) in 6s of steady state: that is polling", n.name, peersQ, plain)
		}
		// Upper bound: no faster than the interval (plus the quick retries of a check that flapped). Lower
		// bound only that updates go on: a loaded 2-core CI delays check runs, it does not add them.
		if ttl < 1 || ttl > 9 {
			t.Fatalf("%s: %d TTL updates in 6s with a 1s interval", n.name, ttl)
		}
	}

	// Kill n3's nats-server: its berth deregisters it; n1 and n2 see the change through their open
	// blocking queries, re-render their files, and nats-server reloads on SIGHUP.
	kill := time.Now()
	pid := childPid(t, n3.berth.Pid())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := n3.berth.Wait(30 * time.Second); code != 137 {
		t.Fatalf("n3's berth exit %d, want 137 (nats-server was SIGKILLed)\n%s", code, n3.berth.Stderr.String())
	}
	for _, n := range []*natsNode{n1, n2} {
		if !harness.Within(15*time.Second, func() bool { return !strings.Contains(readFile(n.conf), routeTo(n3)) }) {
			t.Fatalf("%s's routes still list n3 15s after it died:\n%s\nberth stderr:\n%s", n.name, readFile(n.conf), n.berth.Stderr.String())
		}
		t.Logf("%s's peer file dropped n3 %s after the kill", n.name, time.Since(kill).Round(time.Millisecond))
	}
	waitRoutes(t, 1, 60*time.Second, n1, n2)
	for _, n := range []*natsNode{n1, n2} {
		peersQ, plain := n.proxy.Count("/v1/health/service/nats", kill)
		t.Logf("%s: %d peers queries (%d plain) between the kill and now (%s)", n.name, peersQ, plain, time.Since(kill).Round(time.Millisecond))
		// the open query returns with the change and is re-issued; a flap of n3's check may add one more
		if plain > 0 || peersQ > 6 {
			t.Fatalf("%s: %d peers queries (%d non-blocking) to notice one departure: that is polling", n.name, peersQ, plain)
		}
	}
}

// childPid is the (single) child process of pid: the supervised command. A Go program forks from any of its
// threads, so every thread's children list is read.
func childPid(t *testing.T, pid int) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var f []string
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		f = append(f, strings.Fields(string(data))...)
	}
	if len(f) != 1 {
		t.Fatalf("berth %d has children %v, want exactly the main command", pid, f)
	}
	child, _ := strconv.Atoi(f[0])
	return child
}
