package discovery

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/tests/harness"
)

// A Consul that accepts connections and never answers (harness.ConsulProxy.SetHang) must not wedge a peers
// watch: its blocking query has a deadline of the wait plus a margin, and the watch recovers by itself, without
// any other request of this berth telling it that Consul is back (no services here).
func TestWatchPeersConsulHang(t *testing.T) {
	c, ins := startConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	instance(t, ins, "hz-a", "hz", "10.0.1.1", 5701, api.HealthPassing)
	file := filepath.Join(t.TempDir(), "members")
	const wait, reqTimeout = 2 * time.Second, time.Second
	a, _ := newTestAgent(t, proxy.Addr(), Config{
		Consul: ConsulConfig{BlockingWait: wait, RequestTimeout: reqTimeout},
		Peers:  []PeersConfig{{Name: "hz", Service: "hz", File: file, Wait: time.Second}}})
	if _, err := a.ResolvePeers(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	start(t, func(ctx context.Context) error { return a.WatchPeers(ctx, nil) })
	// the watch's blocking query is open
	eventually(t, 5*time.Second, func() string {
		for _, r := range proxy.Requests("/v1/health/service/hz", time.Time{}) {
			if r.Index != "" && r.Index != "0" {
				return ""
			}
		}
		return "no blocking query yet"
	})

	proxy.SetHang(true)
	hung := time.Now()
	instance(t, ins, "hz-b", "hz", "10.0.1.2", 5701, api.HealthPassing) // Consul's answer is swallowed
	// the open query, then the retries, time out: all of them are bounded
	eventually(t, 2*(wait+reqTimeout)+2*time.Second, func() string {
		if n, _ := proxy.Count("/v1/health/service/hz", hung); n < 2 {
			return "the watch did not give up on its hung query"
		}
		return ""
	})
	proxy.SetHang(false)
	back := time.Now()
	bound := a.cfg.Consul.blockingDeadline(wait) + a.cfg.Consul.RetryMax + 2*time.Second
	took := eventually(t, bound, func() string {
		b, _ := os.ReadFile(file)
		if !strings.Contains(string(b), "10.0.1.2:5701") {
			return "file has " + string(b)
		}
		return ""
	})
	t.Logf("peer that joined during the hang seen %s after Consul answered again (bound %s)", took, bound)
	if regs := proxy.Requests("/v1/health/service/hz", back); len(regs) == 0 {
		t.Fatal("no query after the hang ended")
	}
}

// A 404 on deregistration is believed only when the agent really no longer lists the service: when the
// agent still has it (here a proxy answers the 404), Deregister fails and says so, and nothing is logged as
// deregistered.
func TestDeregister404(t *testing.T) {
	c, ins := startConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)

	t.Run("still listed", func(t *testing.T) {
		a, _ := newTestAgent(t, proxy.Addr(), Config{Services: []ServiceConfig{{Name: "ghost", ID: "ghost-1"}}})
		if err := a.Register(harness.Context(t)); err != nil {
			t.Fatal(err)
		}
		proxy.SetInject(func(r *http.Request) (int, string) {
			if strings.HasPrefix(r.URL.Path, "/v1/agent/service/deregister/") {
				return http.StatusNotFound, "Unknown service ID"
			}
			return 0, ""
		})
		defer proxy.SetInject(nil)
		err := a.Deregister(harness.Context(t))
		if err == nil || !strings.Contains(err.Error(), "still lists") {
			t.Fatalf("want an error saying the agent still lists ghost-1, have %v", err)
		}
		if svcs, _ := ins.Agent().Services(); svcs["ghost-1"] == nil {
			t.Fatalf("the test is void: ghost-1 is not in the agent")
		}
		if r := a.Registrations()[0]; r.State == StateDeregistered {
			t.Fatalf("status says deregistered while the agent lists it: %+v", r)
		}
		_ = ins.Agent().ServiceDeregister("ghost-1")
	})

	t.Run("really gone", func(t *testing.T) {
		a, _ := newTestAgent(t, proxy.Addr(), Config{Services: []ServiceConfig{{Name: "lost", ID: "lost-1"}}})
		if err := a.Register(harness.Context(t)); err != nil {
			t.Fatal(err)
		}
		if err := ins.Agent().ServiceDeregister("lost-1"); err != nil { // as an agent restart would
			t.Fatal(err)
		}
		if err := a.Deregister(harness.Context(t)); err != nil {
			t.Fatalf("want the 404 of a service the agent no longer has to count as done, have %v", err)
		}
		if r := a.Registrations()[0]; r.State != StateDeregistered {
			t.Fatalf("want state deregistered, have %+v", r)
		}
	})
}

// Deregister skips what Consul never confirmed (it hung from the start) instead of spending its context on it,
// and every request of Maintenance and Deregister is bounded by RequestTimeout.
func TestConsulHangBounds(t *testing.T) {
	c, _ := startConsul(t)
	proxy := harness.StartConsulProxy(t, c.Addr)
	proxy.SetHang(true)
	const reqTimeout = 500 * time.Millisecond
	a, _ := newTestAgent(t, proxy.Addr(), Config{Consul: ConsulConfig{RequestTimeout: reqTimeout},
		Services: []ServiceConfig{{Name: "never", ID: "never-1"}, {Name: "never2", ID: "never-2"}}})
	if err := a.Register(harness.Context(t)); err != nil { // not required: logged, not returned
		t.Fatal(err)
	}
	for _, r := range a.Registrations() {
		if r.Registered || r.State != StatePending || !strings.Contains(r.Error, "no answer within") {
			t.Fatalf("want pending with the timeout as error, have %+v", r)
		}
	}
	began := time.Now()
	err := a.Maintenance(harness.Context(t), true, "deploy")
	var un *UnavailableError
	if !errors.As(err, &un) || un.What != "consul" {
		t.Fatalf("want consul unavailable, have %v", err)
	}
	if took := time.Since(began); took > reqTimeout+time.Second {
		t.Fatalf("maintenance took %s with request timeout %s", took, reqTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began = time.Now()
	if err := a.Deregister(ctx); err != nil {
		t.Fatalf("want nothing to deregister, have %v", err)
	}
	if took := time.Since(began); took > 200*time.Millisecond {
		t.Fatalf("Deregister took %s for services that were never registered", took)
	}
	if n, _ := proxy.Count("/v1/agent/service/deregister/", time.Time{}); n != 0 {
		t.Fatalf("want no deregistration requests, have %d", n)
	}
}

func TestUnanswered(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{api.StatusError{Code: 404, Body: "Unknown service ID"}, false},
		{api.StatusError{Code: 500, Body: "No cluster leader"}, false},
		{api.StatusError{Code: 502}, true},
		{api.StatusError{Code: 504}, true},
	} {
		if have := unanswered(tc.err); have != tc.want {
			t.Errorf("unanswered(%v) = %v, want %v", tc.err, have, tc.want)
		}
	}
	if have := short(describe(context.DeadlineExceeded, 5*time.Second)); have != "no answer within 5s" {
		t.Errorf("short(describe(deadline)) = %q", have)
	}
}
