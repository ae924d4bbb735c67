package discovery

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/tests/harness"
)

// TestStartSchedule: until a check has passed it runs again startStep after each run, for startWindow from
// the start or a restart; from its first pass on, and past the window, every interval.
func TestStartSchedule(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	s := schedule{interval: 10 * time.Second}
	s.rearm(t0)
	steps := []struct {
		at      time.Duration // after t0
		passing bool
		want    time.Duration
	}{
		{0, false, startStep},
		{7 * time.Second, false, startStep}, // a slow start: the step does not grow
		{startWindow - time.Millisecond, false, startStep},
		{startWindow, false, 10 * time.Second}, // never healthy: back to the interval
		{startWindow + time.Minute, false, 10 * time.Second},
	}
	for i, st := range steps {
		if have := s.next(t0.Add(st.at), time.Millisecond, st.passing); have != st.want {
			t.Fatalf("step %d (at %s, passing %v): want %s, have %s", i, st.at, st.passing, st.want, have)
		}
	}

	// a restart begins a new window; the first pass ends it, a later failure does not bring it back
	t1 := t0.Add(time.Hour)
	s.rearm(t1)
	for i, st := range []struct {
		at      time.Duration
		passing bool
		want    time.Duration
	}{
		{0, false, startStep},
		{2500 * time.Millisecond, true, 10 * time.Second},
		{12 * time.Second, false, 10 * time.Second},
	} {
		if have := s.next(t1.Add(st.at), time.Millisecond, st.passing); have != st.want {
			t.Fatalf("after the restart, step %d: want %s, have %s", i, st.want, have)
		}
	}

	// an interval shorter than the step is the step
	short := schedule{interval: 100 * time.Millisecond}
	short.rearm(t0)
	if have := short.next(t0, time.Millisecond, false); have != 100*time.Millisecond {
		t.Fatalf("interval 100ms: want 100ms, have %s", have)
	}

	// an exec check waits 20× its own run time when that is longer than the step, up to the interval; a
	// slow HTTP run does not stretch the step
	ex := schedule{interval: 10 * time.Second, exec: true}
	ex.rearm(t0)
	for _, st := range []struct{ took, want time.Duration }{
		{time.Millisecond, startStep},
		{8 * time.Millisecond, 160 * time.Millisecond},
		{2 * time.Second, 10 * time.Second},
	} {
		if have := ex.next(t0, st.took, false); have != st.want {
			t.Fatalf("exec run of %s: want %s, have %s", st.took, st.want, have)
		}
	}
	if have := s.next(t1.Add(time.Minute), 2*time.Second, false); have != 10*time.Second {
		t.Fatalf("passed: want the interval, have %s", have)
	}
	web := schedule{interval: 10 * time.Second}
	web.rearm(t0)
	if have := web.next(t0, 2*time.Second, false); have != startStep {
		t.Fatalf("http run of 2s: want %s, have %s", startStep, have)
	}
}

// TestStartStepConsul, against a real Consul: with a 10 s interval, a failing check runs about ten times a
// second without a TTL update per run; the run after the app is healthy reports passing at once; after that
// the check waits its interval; Restarted runs it at once and quickly again until it passes.
func TestStartStepConsul(t *testing.T) {
	c, ins := startConsul(t)
	web := newApp(t)
	web.healthy.Store(false)
	a, cnt := newTestAgent(t, c.Addr, Config{Services: []ServiceConfig{{Name: "slow", ID: "slow-1", Port: 8080,
		Checks: []CheckConfig{{HTTP: web.srv.URL + "/health", Interval: 10 * time.Second}}}}})
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	mark := cnt.mark()
	began := time.Now()
	start(t, a.Run)
	// 10 runs: about 1 s at the 100 ms step; doubling from 100 ms made 7 in 6.3 s (slack for a loaded CI)
	eventually(t, 5*time.Second, func() string {
		if n := web.hits.Load(); n < 10 {
			return fmt.Sprintf("%d runs in %s, want 10", n, time.Since(began).Round(time.Millisecond))
		}
		return ""
	})
	if n := cnt.since(mark, "PUT /v1/agent/check/update/"); n > 1 {
		t.Errorf("%d TTL updates while the status stayed critical, want at most 1 (requests: %s)", n, cnt.summary(mark))
	}

	ready := time.Now()
	web.healthy.Store(true)
	took := eventually(t, 2*time.Second, wantStatus(t, ins, "slow-1:http", api.HealthPassing))
	t.Logf("healthy → passing in Consul: %s (step %s)", took.Round(time.Millisecond), startStep)
	if took > 1500*time.Millisecond { // the doubling's next gap here would be 1.6 s or more
		t.Errorf("passing %s after the app was healthy, want within about one step", time.Since(ready))
	}
	hits := web.hits.Load()
	time.Sleep(time.Second) // the assertion is that nothing happens: ten steps' worth
	if n := web.hits.Load() - hits; n > 1 {
		t.Errorf("%d runs within a second after the first pass, want the 10 s interval", n)
	}

	// a restart of the application: at once, and quickly again until it passes
	web.healthy.Store(false)
	hits = web.hits.Load()
	a.Restarted()
	eventually(t, 2*time.Second, wantStatus(t, ins, "slow-1:http", api.HealthCritical))
	eventually(t, 5*time.Second, func() string {
		if n := web.hits.Load() - hits; n < 10 {
			return fmt.Sprintf("%d runs after Restarted, want 10", n)
		}
		return ""
	})
	web.healthy.Store(true)
	eventually(t, 2*time.Second, wantStatus(t, ins, "slow-1:http", api.HealthPassing))
}

// BenchmarkProbeFailing is what one run of a check that is not passing yet costs berth (bench/checks.sh):
// the start step runs it about ten times a second. cpu-µs/op counts berth's CPU and its exec children's
// (getrusage), as wall time would also count the wait for a child.
func BenchmarkProbeFailing(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	for _, bc := range []struct {
		name string
		cfg  CheckConfig
	}{
		{"tcp refused", CheckConfig{TCP: refused}},
		{"http refused", CheckConfig{HTTP: "http://" + refused + "/health"}},
		{"exec sh -c 'exit 2'", CheckConfig{Exec: []string{"/bin/sh", "-c", "exit 2"}}},
		{"exec sh -c 'curl -fs URL' refused", CheckConfig{Exec: []string{"/bin/sh", "-c", "curl -fs http://" + refused + "/health"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if len(bc.cfg.Exec) > 0 && strings.Contains(bc.cfg.Exec[2], "curl") {
				if _, err := exec.LookPath("curl"); err != nil {
					b.Skip("no curl")
				}
			}
			a, err := New(Config{Exec: osExec, Services: []ServiceConfig{{Name: "b", Port: 1, Checks: []CheckConfig{bc.cfg}}}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			c := newChecks(&service{id: "b"}, []CheckConfig{bc.cfg})[0]
			hc := a.checkHTTPClient()
			ctx := context.Background()
			before := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if status, out := a.probe(ctx, hc, c); status == api.HealthPassing {
					b.Fatalf("want a failing run, have %s: %s", status, out)
				}
			}
			b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is this process's CPU time plus its waited-for children's.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}
