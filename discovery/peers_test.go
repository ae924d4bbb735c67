package discovery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/onchange"
	"github.com/berth-dev/berth/tests/harness"
)

// instance registers another task's service instance directly in Consul, with a TTL check in status.
func instance(t testing.TB, ins *api.Client, id, name, addr string, port int, status string, tags ...string) {
	t.Helper()
	err := ins.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: id, Name: name, Address: addr, Port: port,
		Tags: tags, Check: &api.AgentServiceCheck{CheckID: id + ":ttl", TTL: "10m", Status: status}})
	if err != nil {
		t.Fatal(err)
	}
}

func boolp(b bool) *bool { return &b }

func TestResolvePeersFilters(t *testing.T) {
	c, ins := startConsul(t)
	self := ServiceConfig{Name: "hz", ID: "hz-self", Address: "127.0.0.1", Port: 5701,
		Checks: []CheckConfig{{TCP: "127.0.0.1:1"}}} // never run here: stays critical (initial status)
	registrant, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{self}})
	if err := registrant.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	instance(t, ins, "hz-a", "hz", "10.0.0.1", 5701, api.HealthPassing, "blue")
	instance(t, ins, "hz-b", "hz", "10.0.0.2", 5701, api.HealthCritical, "blue")
	instance(t, ins, "hz-c", "hz", "10.0.0.3", 5701, api.HealthPassing, "green")

	for _, tc := range []struct {
		name  string
		peers PeersConfig
		want  string
	}{
		{"passing only, without self", PeersConfig{}, "10.0.0.1:5701,10.0.0.3:5701"},
		{"all", PeersConfig{PassingOnly: boolp(false)}, "10.0.0.1:5701,10.0.0.2:5701,10.0.0.3:5701"},
		{"tag", PeersConfig{Tag: "blue"}, "10.0.0.1:5701"},
		{"tag, all", PeersConfig{Tag: "blue", PassingOnly: boolp(false)}, "10.0.0.1:5701,10.0.0.2:5701"},
		{"include self (critical yet)", PeersConfig{IncludeSelf: true}, "10.0.0.1:5701,10.0.0.3:5701,127.0.0.1:5701"},
		{"include self once", PeersConfig{IncludeSelf: true, PassingOnly: boolp(false)}, "10.0.0.1:5701,10.0.0.2:5701,10.0.0.3:5701,127.0.0.1:5701"},
		{"include self, other tag", PeersConfig{IncludeSelf: true, Tag: "green"}, "10.0.0.3:5701"},
		{"template", PeersConfig{Tag: "blue", PassingOnly: boolp(false),
			Template: `{{range $i, $p := .}}{{if $i}} {{end}}{{$p.ID}}@{{$p.HostPort}}{{end}}`}, "hz-a@10.0.0.1:5701 hz-b@10.0.0.2:5701"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.peers
			p.Name, p.Service, p.Env, p.Wait = "cluster", "hz", "HZ_MEMBERS", 5*time.Second
			p.File = filepath.Join(t.TempDir(), "peers")
			a, cnt := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{self}, Peers: []PeersConfig{p}})
			env, err := a.ResolvePeers(harness.Context(t))
			if err != nil {
				t.Fatal(err)
			}
			if have := env["HZ_MEMBERS"]; have != tc.want {
				t.Fatalf("env: want %q, have %q", tc.want, have)
			}
			file, err := os.ReadFile(p.File)
			if err != nil {
				t.Fatal(err)
			}
			if string(file) != tc.want {
				t.Fatalf("file: want %q, have %q", tc.want, file)
			}
			if n := cnt.since(0, ""); n != 1 {
				t.Fatalf("min 0: want one lookup, have %s", cnt.summary(0))
			}
		})
	}
}

func TestResolvePeersMinWait(t *testing.T) {
	c, ins := startConsul(t)
	instance(t, ins, "nats-a", "nats", "10.0.0.1", 6222, api.HealthPassing)

	t.Run("first member starts alone after wait", func(t *testing.T) {
		const wait = 2 * time.Second
		a, cnt := newTestAgent(t, c.Addr, Config{Peers: []PeersConfig{{Name: "routes", Service: "fresh", Min: 1, Wait: wait, Env: "ROUTES"}}})
		began := time.Now()
		env, err := a.ResolvePeers(harness.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		if v, ok := env["ROUTES"]; !ok || v != "" {
			t.Fatalf("want ROUTES set and empty, have %q (set %v)", v, ok)
		}
		if took < wait || took > wait+3*time.Second {
			t.Fatalf("want ResolvePeers to return after wait %s, took %s", wait, took)
		}
		// One immediate lookup and one blocking query covering the wait: no polling. Consul may end a
		// blocking query early when an unrelated raft index moves (its docs say to expect that), so allow a
		// couple of re-issues; polling every 100 ms would be 20.
		if n := cnt.since(0, "GET /v1/health/service/fresh"); n > 4 {
			t.Fatalf("want at most 4 lookups while waiting %s, have %s", wait, cnt.summary(0))
		}
	})

	t.Run("fewer than min after wait", func(t *testing.T) {
		a, _ := newTestAgent(t, c.Addr, Config{Peers: []PeersConfig{{Name: "routes", Service: "nats", Min: 3, Wait: time.Second, Env: "ROUTES"}}})
		env, err := a.ResolvePeers(harness.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if want, have := "10.0.0.1:6222", env["ROUTES"]; have != want {
			t.Fatalf("want %q, have %q", want, have)
		}
	})

	t.Run("returns as soon as min peers are there", func(t *testing.T) {
		a, cnt := newTestAgent(t, c.Addr, Config{Peers: []PeersConfig{{Name: "routes", Service: "nats", Min: 2, Wait: time.Minute, Env: "ROUTES"}}})
		type result struct {
			env map[string]string
			err error
		}
		done := make(chan result, 1)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go func() { env, err := a.ResolvePeers(ctx); done <- result{env, err} }()
		eventually(t, 10*time.Second, watching(ins, cnt, "nats")) // one peer of two: it waits for the next
		instance(t, ins, "nats-b", "nats", "10.0.0.2", 6222, api.HealthPassing)
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			cancel()
			<-done
			t.Fatal("want ResolvePeers to return once the second peer registered, it kept waiting")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if want, have := "10.0.0.1:6222,10.0.0.2:6222", r.env["ROUTES"]; have != want {
			t.Fatalf("want %q, have %q", want, have)
		}
		if n := cnt.since(0, ""); n > 3 {
			t.Fatalf("want a blocking query, not polling; have %s", cnt.summary(0))
		}
	})
}

func TestWatchPeers(t *testing.T) {
	c, ins := startConsul(t)
	instance(t, ins, "nats-a", "nats", "10.0.0.1", 6222, api.HealthPassing)
	file := filepath.Join(t.TempDir(), "conf", "routes")
	a, cnt := newTestAgent(t, c.Addr, Config{Peers: []PeersConfig{{Name: "routes", Service: "nats", Env: "ROUTES", File: file,
		Template: `{{range $i, $p := .}}{{if $i}},{{end}}nats-route://{{$p.HostPort}}{{end}}`, OnChange: onchange.Action{Signal: syscall.SIGHUP}}}})
	env, err := a.ResolvePeers(harness.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := "nats-route://10.0.0.1:6222"; env["ROUTES"] != want {
		t.Fatalf("initial: want %q, have %q", want, env["ROUTES"])
	}
	var mu sync.Mutex
	var changes []string
	start(t, func(ctx context.Context) error {
		return a.WatchPeers(ctx, func(name string, action onchange.Action) {
			mu.Lock()
			changes = append(changes, name+" "+action.String())
			mu.Unlock()
		})
	})
	readFile := func(want string) func() string {
		return func() string {
			b, err := os.ReadFile(file)
			if err != nil {
				return err.Error()
			}
			if string(b) != want {
				return "file: want " + want + ", have " + string(b)
			}
			return ""
		}
	}
	nChanges := func() int { mu.Lock(); defer mu.Unlock(); return len(changes) }
	eventually(t, 10*time.Second, watching(ins, cnt, "nats"))
	mark := cnt.mark()

	steps := []struct {
		name   string
		do     func()
		want   string
		change bool
	}{
		{"unrelated service registers", func() {
			instance(t, ins, "web-1", "web", "10.0.0.9", 80, api.HealthPassing)
			eventually(t, 10*time.Second, func() string { // the agent syncs it to the catalog the watch reads
				if es, _, err := ins.Catalog().Service("web", "", nil); err != nil || len(es) == 0 {
					return fmt.Sprintf("web not in the catalog yet (%v)", err)
				}
				return ""
			})
		}, "nats-route://10.0.0.1:6222", false},
		{"peer joins", func() { instance(t, ins, "nats-b", "nats", "10.0.0.2", 6222, api.HealthPassing) },
			"nats-route://10.0.0.1:6222,nats-route://10.0.0.2:6222", true},
		{"peer turns critical", func() {
			if err := ins.Agent().UpdateTTL("nats-a:ttl", "down", api.HealthCritical); err != nil {
				t.Fatal(err)
			}
		}, "nats-route://10.0.0.2:6222", true},
		{"peer leaves", func() {
			if err := ins.Agent().ServiceDeregister("nats-b"); err != nil {
				t.Fatal(err)
			}
		}, "", true},
	}
	wantChanges := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			if st.change {
				wantChanges++
				eventually(t, 10*time.Second, readFile(st.want))
				eventually(t, 5*time.Second, func() string {
					if nChanges() != wantChanges {
						return "onChange not called"
					}
					return ""
				})
			} else {
				// The watch has handled everything Consul has to say about nats since the registration:
				// whatever it was going to do about it, it has done.
				eventually(t, 10*time.Second, watching(ins, cnt, "nats"))
				if err := readFile(st.want)(); err != "" {
					t.Fatal(err)
				}
				if nChanges() != wantChanges {
					t.Fatalf("want no onChange for an unrelated change")
				}
			}
			if have := a.PeerEnv()["ROUTES"]; have != st.want {
				t.Fatalf("PeerEnv: want %q, have %q", st.want, have)
			}
		})
	}
	mu.Lock()
	for _, ch := range changes {
		if ch != "routes signal:SIGHUP" {
			t.Errorf("onChange: want (routes, signal:SIGHUP), have %q", ch)
		}
	}
	mu.Unlock()
	// Each change wakes the open blocking query once, and a probe or two see the service settle after it;
	// nothing else asks Consul.
	queries, probes := cnt.since(mark, "GET /v1/health/service/nats"), cnt.since(mark, "PROBE /v1/health/service/nats")
	t.Logf("%d health queries and %d probes for %d changes: %s", queries, probes, wantChanges, cnt.summary(mark))
	if other := cnt.since(mark, "") - queries - probes; other != 0 {
		t.Errorf("want only health queries, have %s", cnt.summary(mark))
	}
	if queries > wantChanges+2 {
		t.Errorf("want about one blocking query per change (%d), have %d: polling?", wantChanges, queries)
	}
	if probes > 2*wantChanges+2 {
		t.Errorf("want a probe or two per change (%d), have %d", wantChanges, probes)
	}

	t.Run("consul restarted", func(t *testing.T) {
		c.Restart() // the index goes back to a small number: the watch must reset, not wait for the old index
		instance(t, ins, "nats-z", "nats", "10.0.0.26", 6222, api.HealthPassing)
		eventually(t, 20*time.Second, readFile("nats-route://10.0.0.26:6222"))
	})
}

// TestWatchPeersBurst: changes arriving one after another (a deployment replacing instances) reach the file
// as they come while the watch fetches the list only a few times: the first change at once, the rest once
// the service is quiet, not one list per change.
func TestWatchPeersBurst(t *testing.T) {
	c, ins := startConsul(t)
	instance(t, ins, "nats-0", "nats", "10.0.0.100", 6222, api.HealthPassing)
	file := filepath.Join(t.TempDir(), "routes")
	a, cnt := newTestAgent(t, c.Addr, Config{Peers: []PeersConfig{{Name: "routes", Service: "nats", File: file}}})
	if _, err := a.ResolvePeers(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	start(t, func(ctx context.Context) error { return a.WatchPeers(ctx, nil) })
	eventually(t, 10*time.Second, watching(ins, cnt, "nats"))
	mark := cnt.mark()
	const burst = 8
	want := []string{"10.0.0.100:6222"}
	// 8 instances, one every 300ms: before, the watch asked again after each answer (at most every 500ms),
	// five or six lists for this burst.
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i <= burst; i++ {
		instance(t, ins, fmt.Sprintf("nats-%d", i), "nats", fmt.Sprintf("10.0.0.%d", 100+i), 6222, api.HealthPassing)
		want = append(want, fmt.Sprintf("10.0.0.%d:6222", 100+i))
		if i == 1 {
			// the first change of a quiet service is rendered from the answer that carried it
			eventually(t, 10*time.Second, fileIs(file, strings.Join(want, ",")))
		}
		<-tick.C
	}
	eventually(t, 20*time.Second, fileIs(file, strings.Join(want, ",")))
	eventually(t, 10*time.Second, watching(ins, cnt, "nats"))
	lists := cnt.since(mark, "GET /v1/health/service/nats")
	t.Logf("%d changes: %s", burst, cnt.summary(mark))
	// the answer to the first change, the list after the burst, the query now waiting, and one for a
	// settle cut short by the 4s cap
	if lists > 4 {
		t.Errorf("%d list queries for a burst of %d changes; want at most 4 (coalesced)", lists, burst)
	}
	if other := cnt.since(mark, "") - lists - cnt.since(mark, "PROBE /v1/health/service/nats"); other != 0 {
		t.Errorf("want only health queries and probes, have %s", cnt.summary(mark))
	}
}

func fileIs(path, want string) func() string {
	return func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		if string(b) != want {
			return "file: want " + want + ", have " + string(b)
		}
		return ""
	}
}

// TestSteadyStateRequestRate measures Consul HTTP requests per minute with one service, one check and one peers
// watch, with the interval shortened from 10s to 1s and the count scaled back.
func TestSteadyStateRequestRate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 10s")
	}
	c, ins := startConsul(t)
	instance(t, ins, "hz-a", "hz", "10.0.0.1", 5701, api.HealthPassing)
	web := newApp(t)
	const interval = time.Second
	a, cnt := newTestAgent(t, c.Addr, Config{
		Services: []ServiceConfig{{Name: "web", ID: "web-1", Port: 8080, Checks: []CheckConfig{{HTTP: web.srv.URL, Interval: interval}}}},
		Peers:    []PeersConfig{{Name: "cluster", Service: "hz", Env: "HZ"}}})
	ctx := harness.Context(t)
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ResolvePeers(ctx); err != nil {
		t.Fatal(err)
	}
	start(t, a.Run)
	start(t, func(ctx context.Context) error { return a.WatchPeers(ctx, nil) })
	eventually(t, 10*time.Second, wantStatus(t, ins, "web-1:http", api.HealthPassing))
	eventually(t, 10*time.Second, watching(ins, cnt, "hz")) // start-up done: the peers watch waits on Consul

	const window = 10 * time.Second
	mark := cnt.mark()
	time.Sleep(window)
	total := cnt.since(mark, "")
	ttl := cnt.since(mark, "PUT /v1/agent/check/update/")
	other := total - ttl
	intervals := float64(window / interval)
	// At the default 10s interval a minute has 6 intervals.
	perMinute := float64(ttl) / intervals * 6
	t.Logf("steady state over %s at interval %s: %d TTL updates, %d other requests (%s)", window, interval, ttl, other, cnt.summary(mark))
	t.Logf("scaled to interval 10s: %.1f TTL updates per minute, %d polls per minute (plus one blocking peers query re-issued every %s)",
		perMinute, other, DefaultBlockingWait)
	// At most one per interval (plus slack for the window's edges): more is polling. At least half: a loaded
	// 2-core CI can delay check runs, but updates must go on.
	if ttl < int(intervals)/2 || ttl > int(intervals)+2 {
		t.Errorf("want ≈ one TTL update per interval (%v), have %d", intervals, ttl)
	}
	// Consul ends a blocking query early now and then (a check's output change moves the health index): a
	// re-issued blocking query is tolerated, a non-blocking one (a poll) is not.
	reissued := cnt.since(mark, "GET /v1/health/service/hz (blocking)")
	if other-reissued != 0 || reissued > 2 {
		t.Errorf("want no other requests at steady state than a re-issued blocking query or two, have %s", cnt.summary(mark))
	}
	if !strings.Contains(a.PeerEnv()["HZ"], "10.0.0.1:5701") {
		t.Errorf("peers: have %q", a.PeerEnv()["HZ"])
	}
}
