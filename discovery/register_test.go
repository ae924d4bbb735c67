package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/tests/harness"
)

// app is a local HTTP "application" whose health endpoint the test can break.
type app struct {
	srv     *httptest.Server
	healthy atomic.Bool
	hits    atomic.Int64
}

func newApp(t testing.TB) *app {
	a := &app{}
	a.healthy.Store(true)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		if !a.healthy.Load() {
			http.Error(w, "database down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func TestChecks(t *testing.T) {
	c, ins := startConsul(t)
	const interval = time.Second

	t.Run("http passing then critical", func(t *testing.T) {
		web := newApp(t)
		a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "web", ID: "web-1", Port: 8080,
			Checks: []CheckConfig{{HTTP: web.srv.URL + "/health", Interval: interval}}}}})
		if a.Healthy() {
			t.Fatal("Healthy before Register: want false while a check is configured")
		}
		if err := a.Register(harness.Context(t)); err != nil {
			t.Fatal(err)
		}
		if have, _ := checkStatus(t, ins, "web-1:http"); have != api.HealthCritical {
			t.Fatalf("before the first run: want initial status critical, have %q", have)
		}
		began := time.Now()
		start(t, a.Run)
		eventually(t, 10*time.Second, wantStatus(t, ins, "web-1:http", api.HealthPassing))
		took := time.Since(began)
		t.Logf("registered passing %s after Run started (interval %s)", took, interval)
		if took > interval+time.Second {
			t.Errorf("want passing within one interval (%s), took %s", interval, took)
		}
		if _, out := checkStatus(t, ins, "web-1:http"); !strings.Contains(out, "200 OK") {
			t.Errorf("want the check output as TTL note, have %q", out)
		}
		if !a.Healthy() {
			t.Errorf("Healthy: want true, have false (%+v)", a.Checks())
		}
		web.healthy.Store(false)
		eventually(t, 10*time.Second, wantStatus(t, ins, "web-1:http", api.HealthCritical))
		if _, out := checkStatus(t, ins, "web-1:http"); !strings.Contains(out, "503") || !strings.Contains(out, "database down") {
			t.Errorf("want 503 and body in the note, have %q", out)
		}
		if a.Healthy() {
			t.Errorf("Healthy: want false after the app broke")
		}
	})

	t.Run("tcp", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
		t.Cleanup(func() { l.Close() })
		a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "db", ID: "db-1", Port: 5432,
			Checks: []CheckConfig{{TCP: l.Addr().String(), Interval: interval}}}}})
		if err := a.Register(harness.Context(t)); err != nil {
			t.Fatal(err)
		}
		start(t, a.Run)
		eventually(t, 10*time.Second, wantStatus(t, ins, "db-1:tcp", api.HealthPassing))
		l.Close()
		eventually(t, 10*time.Second, wantStatus(t, ins, "db-1:tcp", api.HealthCritical))
	})

	for _, tc := range []struct {
		name string
		argv []string
		want string
		note string
	}{
		{"exec exit 0", []string{"sh", "-c", "echo all good"}, api.HealthPassing, "all good"},
		{"exec exit 1", []string{"sh", "-c", "echo degraded; exit 1"}, api.HealthWarning, "degraded"},
		{"exec exit 2", []string{"sh", "-c", "echo broken; exit 2"}, api.HealthCritical, "exit status 2"},
		{"exec not found", []string{"/nonexistent/check"}, api.HealthCritical, "exec /nonexistent/check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			var changes []CheckState
			var mu sync.Mutex
			a, _ := newTestAgent(t, c.Addr, Config{Exec: osExec,
				OnCheck: func(s CheckState) { mu.Lock(); changes = append(changes, s); mu.Unlock() },
				Services: []ServiceConfig{{Name: "worker", ID: id, Checks: []CheckConfig{{Exec: tc.argv,
					Interval: interval, InitialStatus: api.HealthWarning}}}}})
			if err := a.Register(harness.Context(t)); err != nil {
				t.Fatal(err)
			}
			start(t, a.Run)
			eventually(t, 10*time.Second, func() string {
				have, out := checkStatus(t, ins, id+":exec")
				if have != tc.want || !strings.Contains(out, tc.note) {
					return fmt.Sprintf("want %s with %q, have %s with %q", tc.want, tc.note, have, out)
				}
				return ""
			})
			mu.Lock()
			defer mu.Unlock()
			if len(changes) == 0 || changes[0].Status != api.HealthWarning {
				t.Fatalf("OnCheck: want the initial status warning first, have %+v", changes)
			}
		})
	}

	t.Run("thresholds", func(t *testing.T) {
		web := newApp(t)
		var mu sync.Mutex
		var statuses []string
		a, _ := newTestAgent(t, c.Addr, Config{
			OnCheck: func(s CheckState) { mu.Lock(); statuses = append(statuses, s.Status); mu.Unlock() },
			Services: []ServiceConfig{{Name: "thr", ID: "thr-1", Checks: []CheckConfig{{HTTP: web.srv.URL,
				Interval: 200 * time.Millisecond, SuccessBeforePassing: 3, FailuresBeforeCritical: 3}}}}})
		start(t, a.Run)
		eventually(t, 10*time.Second, wantStatus(t, ins, "thr-1:http", api.HealthPassing))
		if hits := web.hits.Load(); hits < 3 {
			t.Fatalf("success_before_passing=3: passing after %d runs", hits)
		}
		web.healthy.Store(false)
		before := web.hits.Load()
		eventually(t, 10*time.Second, wantStatus(t, ins, "thr-1:http", api.HealthCritical))
		if runs := web.hits.Load() - before; runs < 3 {
			t.Fatalf("failures_before_critical=3: critical after %d failing runs", runs)
		}
		mu.Lock()
		defer mu.Unlock()
		if want, have := "critical passing critical", strings.Join(statuses, " "); have != want {
			t.Fatalf("OnCheck statuses: want %q, have %q", want, have)
		}
	})
}

func TestECSMetadata(t *testing.T) {
	c, ins := startConsul(t)
	uri := harness.ServeECSMetadata(t)
	a, _ := newTestAgent(t, c.Addr, Config{MetadataURI: uri, Services: []ServiceConfig{{Port: 8080, Meta: map[string]string{"version": "1.2"}}}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	svcs, err := ins.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	const id = "app-cd189a933e5849daa93386466019ab50-8080"
	have, ok := svcs[id]
	if !ok {
		t.Fatalf("want service %s, have %v", id, svcs)
	}
	if have.Service != "app" || have.Address != "127.0.2.106" || have.Port != 8080 {
		t.Errorf("want app at 127.0.2.106:8080, have %s at %s:%d", have.Service, have.Address, have.Port)
	}
	wantMeta := map[string]string{"ecs_cluster": "prod", "ecs_family": "app", "ecs_revision": "42",
		"availability_zone": "us-east-1a", "version": "1.2",
		"ecs_task_arn": "arn:aws:ecs:us-east-1:111122223333:task/prod/cd189a933e5849daa93386466019ab50"}
	for k, v := range wantMeta {
		if have.Meta[k] != v {
			t.Errorf("meta %s: want %q, have %q", k, v, have.Meta[k])
		}
	}
	// No checks configured: berth's own keep-alive TTL, passing, so an OOM-killed task still disappears.
	checks, err := ins.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	ka, ok := checks[id+":berth"]
	if !ok || ka.Status != api.HealthPassing {
		t.Fatalf("want a passing keep-alive check %s:berth, have %+v", id, checks)
	}
	regs := a.Registrations()
	if len(regs) != 1 || regs[0].ID != id || !regs[0].Registered {
		t.Fatalf("Registrations: have %+v", regs)
	}
}

func TestECSMetadataUnavailable(t *testing.T) {
	uri := fmt.Sprintf("http://127.0.0.1:%d/v4/meta", harness.FreePort(t))
	a, _ := newTestAgent(t, "127.0.0.1:1", Config{MetadataURI: uri, Services: []ServiceConfig{{Port: 8080}}})
	err := a.Register(harness.Context(t))
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 69 {
		t.Fatalf("want an error with exit code 69 (no name without task metadata), have %v", err)
	}
}

func TestAutoAddressOffECS(t *testing.T) {
	c, ins := startConsul(t)
	a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "plain", Port: 9000}}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	svcs, err := ins.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	regs := a.Registrations()
	if len(regs) != 1 {
		t.Fatalf("have %+v", regs)
	}
	have := svcs[regs[0].ID]
	if have == nil {
		t.Fatalf("service %s not in consul: %v", regs[0].ID, svcs)
	}
	if ip := net.ParseIP(have.Address); have.Address == "" || (ip != nil && ip.IsLoopback()) {
		t.Fatalf("want a non-loopback address or the hostname, have %q", have.Address)
	}
	if !strings.HasPrefix(have.ID, "plain-") || !strings.HasSuffix(have.ID, "-9000") {
		t.Fatalf("want ID plain-<hostname>-9000, have %q", have.ID)
	}
}

func TestConsulDown(t *testing.T) {
	t.Run("required fails with 69", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		a, _ := newTestAgent(t, addr, Config{Consul: ConsulConfig{Required: true, Timeout: 2 * time.Second},
			Services: []ServiceConfig{{Name: "req", Port: 1}}})
		began := time.Now()
		err := a.Register(harness.Context(t))
		var coded interface{ ExitCode() int }
		if !errors.As(err, &coded) || coded.ExitCode() != 69 {
			t.Fatalf("want an error with exit code 69, have %v", err)
		}
		if took := time.Since(began); took > 10*time.Second {
			t.Fatalf("want Register bounded by timeout 2s, took %s", took)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("want a one-line message, have %q", err)
		}
	})

	t.Run("not required registers when consul comes up", func(t *testing.T) {
		c, ins := startConsul(t)
		c.Stop() // same port later: Restart
		web := newApp(t)
		a, cnt := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "late", ID: "late-1",
			Checks: []CheckConfig{{HTTP: web.srv.URL, Interval: time.Second}}}}})
		began := time.Now()
		if err := a.Register(harness.Context(t)); err != nil {
			t.Fatalf("want nil while consul is down (not required), have %v", err)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("want Register to return at once, took %s", took)
		}
		start(t, a.Run)
		time.Sleep(3 * time.Second) // let the back-off grow a few steps
		attempts := cnt.since(0, "PUT /v1/agent/service/register")
		if attempts > 10 {
			t.Errorf("want back-off while consul is down, have %d attempts in 3s", attempts)
		}
		c.Restart()
		up := time.Now()
		eventually(t, 15*time.Second, wantStatus(t, ins, "late-1:http", api.HealthPassing))
		t.Logf("registered and passing %s after consul answered (back-off max 1s in this test)", time.Since(up))
	})
}

func TestConsulRestart(t *testing.T) {
	c, ins := startConsul(t)
	web := newApp(t)
	const interval = 2 * time.Second
	a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "phoenix", ID: "phoenix-1", Port: 80,
		Tags: []string{"v1"}, Checks: []CheckConfig{{HTTP: web.srv.URL, Interval: interval}}}}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	start(t, a.Run)
	eventually(t, 10*time.Second, wantStatus(t, ins, "phoenix-1:http", api.HealthPassing))
	if err := a.Maintenance(harness.Context(t), true, "testing"); err != nil {
		t.Fatal(err)
	}

	c.Restart() // dev mode: the new agent knows nothing
	up := time.Now()
	took := eventually(t, 20*time.Second, wantStatus(t, ins, "phoenix-1:http", api.HealthPassing))
	t.Logf("re-registered (passing) %s after the restarted agent answered; interval %s", took, interval)
	if took > interval+2*time.Second {
		t.Errorf("want re-registration within one interval (%s), took %s", interval, time.Since(up))
	}
	svcs, err := ins.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if s := svcs["phoenix-1"]; s == nil || len(s.Tags) != 1 || s.Tags[0] != "v1" || s.Port != 80 {
		t.Fatalf("want phoenix-1 with its tags and port again, have %+v", s)
	}
	if have, _ := checkStatus(t, ins, "_service_maintenance:phoenix-1"); have != api.HealthCritical {
		t.Fatalf("want maintenance mode re-applied after re-registration, have %q", have)
	}
}

func TestDeregister(t *testing.T) {
	c, ins := startConsul(t)
	web := newApp(t)
	const interval = 300 * time.Millisecond
	a, cnt := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{
		{Name: "drain", ID: "drain-1", Checks: []CheckConfig{{HTTP: web.srv.URL, Interval: interval}}},
		{Name: "drain-admin", ID: "drain-2"},
	}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	start(t, a.Run)
	eventually(t, 10*time.Second, wantStatus(t, ins, "drain-1:http", api.HealthPassing))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := a.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Deregister of 2 services took %s", time.Since(began))
	mark := cnt.mark()
	hits := web.hits.Load()
	svcs, err := ins.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 0 {
		t.Fatalf("want no services right after Deregister returned, have %v", svcs)
	}
	// Checks keep finishing (Run is still running) and the agent-lost path is provoked: nothing may re-register.
	time.Sleep(5 * interval)
	if web.hits.Load() <= hits {
		t.Fatalf("want checks to keep running after Deregister (the test would prove nothing otherwise)")
	}
	if err := a.Maintenance(harness.Context(t), true, "late"); err != nil {
		t.Fatal(err)
	}
	if n := cnt.since(mark, ""); n != 0 {
		t.Fatalf("want no requests to consul after Deregister, have %s", cnt.summary(mark))
	}
	if svcs, _ = ins.Agent().Services(); len(svcs) != 0 {
		t.Fatalf("want no services after Deregister, have %v", svcs)
	}
	for _, r := range a.Registrations() {
		if r.Registered {
			t.Fatalf("Registrations: want none registered, have %+v", r)
		}
	}
}

func TestDeregisterDeadConsul(t *testing.T) {
	c, _ := startConsul(t)
	a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "dead", ID: "dead-1"}}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	if err := a.Deregister(ctx); err == nil {
		t.Fatal("want an error from a dead consul")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("want Deregister bounded by its context, took %s", took)
	}
}

func TestMaintenance(t *testing.T) {
	c, ins := startConsul(t)
	a, _ := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "m1", ID: "m1-1"}, {Name: "m2", ID: "m2-1"}}})
	ctx := harness.Context(t)
	if err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		on   bool
		want string
	}{{true, api.HealthCritical}, {false, ""}, {true, api.HealthCritical}} {
		t.Run(fmt.Sprint("on=", tc.on), func(t *testing.T) {
			if err := a.Maintenance(ctx, tc.on, "deploy"); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"m1-1", "m2-1"} {
				checks, err := ins.Agent().Checks()
				if err != nil {
					t.Fatal(err)
				}
				have, notes := "", ""
				if ch := checks["_service_maintenance:"+id]; ch != nil {
					have, notes = ch.Status, ch.Notes
				}
				if have != tc.want {
					t.Fatalf("%s: want maintenance check %q, have %q", id, tc.want, have)
				}
				if tc.on && notes != "deploy" {
					t.Fatalf("%s: want the reason as notes, have %q", id, notes)
				}
			}
			if regs := a.Registrations(); regs[0].Maintenance != tc.on {
				t.Fatalf("Registrations: want maintenance %v, have %+v", tc.on, regs)
			}
		})
	}
}
