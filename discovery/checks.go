package discovery

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// keepaliveInterval is how often berth refreshes the passing TTL of a service that has no checks.
const keepaliveInterval = 10 * time.Second

// maxOutput bounds a check's output (Consul's default check_output_max_size is 4 KiB).
const maxOutput = 4096

// CheckState is the latest state of one check.
type CheckState struct {
	Name    string    `json:"name"`     // check name
	Service string    `json:"service"`  // service ID
	CheckID string    `json:"check_id"` // Consul check ID
	Status  string    `json:"status"`   // "passing", "warning" or "critical"
	Output  string    `json:"output"`   // output of the last run (also the TTL note in Consul)
	Updated time.Time `json:"updated"`  // when Status last changed (zero before the first change)
}

type check struct {
	svc       *service
	cfg       CheckConfig
	name, id  string
	notes     string
	interval  time.Duration
	timeout   time.Duration
	keepalive bool          // berth's own always-passing TTL for a service without checks
	rearm     chan struct{} // Restarted: run at once and begin a start window (capacity 1)

	// guarded by Agent.mu
	status, output      string
	updated             time.Time
	successes, failures int
	reportFailing       bool   // the last TTL update failed (log once per outage, not every interval)
	sent                string // catalog mode: the status last written to the catalog
}

func newChecks(s *service, cfgs []CheckConfig) []*check {
	if len(cfgs) == 0 {
		return []*check{{svc: s, name: "berth", id: checkID(s.id, "berth"), keepalive: true,
			notes: "berth is running (service has no checks)", interval: keepaliveInterval,
			status: api.HealthPassing, output: "berth is running"}}
	}
	kinds := map[string]int{}
	for _, c := range cfgs {
		kinds[kindOf(c)]++
	}
	seen := map[string]int{}
	var out []*check
	for _, c := range cfgs {
		k := kindOf(c)
		name := c.Name
		if name == "" {
			name = k
			if seen[k]++; kinds[k] > 1 {
				name = fmt.Sprintf("%s-%d", k, seen[k])
			}
		}
		d := c.WithDefaults()
		ch := &check{svc: s, cfg: c, name: name, id: checkID(s.id, name), interval: d.Interval,
			timeout: min(d.Timeout, d.Interval), status: d.InitialStatus, rearm: make(chan struct{}, 1)}
		switch k {
		case "http":
			ch.notes = "berth runs HTTP GET " + c.HTTP + " every " + ch.interval.String()
		case "tcp":
			ch.notes = "berth connects to " + c.TCP + " every " + ch.interval.String()
		case "exec":
			ch.notes = "berth runs " + strings.Join(c.Exec, " ") + " every " + ch.interval.String()
		}
		out = append(out, ch)
	}
	return out
}

func kindOf(c CheckConfig) string {
	switch {
	case c.HTTP != "":
		return "http"
	case c.TCP != "":
		return "tcp"
	}
	return "exec"
}

// startStep and startWindow are the start schedule: until a check has passed, it runs again startStep after
// the previous run ended (the interval when that is shorter), so an app is seen passing about startStep after
// it is ready, however long it took to start. The step lasts startWindow from berth starting the check (or
// from the application's restart, Restarted); past it, and from the first pass on, the check runs every
// interval. One run is in flight at most: a slow or timing-out check spaces its own retries.
//
// What a failing run costs (bench/checks.sh, BenchmarkProbeFailing; 2 cores, quiet and under a load of 5):
// 9–21 µs of CPU for a TCP check, 21–60 µs for an HTTP check (connection refused), 0.5–1 ms for an exec check
// of /bin/sh -c, 6–10 ms for /bin/sh running curl. At ten a second that is 0.01–0.06 % of a core for TCP and
// HTTP, and up to 10 % for curl: on a quarter-vCPU task, 40 % of what the starting app has. So an exec check
// also waits execSpread times its own run time (busy 5 % of the time at most): sh -c stays at 100 ms,
// curl gets 120–200 ms. Five minutes is ECS's longest container health check startPeriod: a start slower
// than that is not waiting on 100 ms.
const (
	startStep   = 100 * time.Millisecond
	startWindow = 5 * time.Minute
	execSpread  = 20
)

// schedule decides when a check runs next.
type schedule struct {
	interval time.Duration
	exec     bool      // a process per run: spread by execSpread
	since    time.Time // when the current start window began
	passed   bool      // a run passed since then
}

// rearm begins a start window at now: the application was (re)started.
func (s *schedule) rearm(now time.Time) { s.since, s.passed = now, false }

// next is the wait after a run that took took and ended at now; passing: the run passed and left the check
// passing.
func (s *schedule) next(now time.Time, took time.Duration, passing bool) time.Duration {
	s.passed = s.passed || passing
	if s.passed || now.Sub(s.since) >= startWindow {
		return s.interval
	}
	step := startStep
	if s.exec {
		step = max(step, execSpread*took)
	}
	return min(step, s.interval)
}

// runCheck runs c at once, then on its schedule (at the start step until it passes, then every interval),
// and reports each result to its TTL check. A result is sent when the status changed (at once: a deployment
// waits on the first pass) and at least once an interval otherwise, so the start step costs Consul nothing
// while the status stays the same.
func (a *Agent) runCheck(ctx context.Context, c *check) {
	hc := a.checkHTTPClient()
	t := time.NewTimer(0)
	defer t.Stop()
	sched := schedule{interval: c.interval, exec: kindOf(c.cfg) == "exec" && !c.keepalive}
	sched.rearm(time.Now())
	var sent string      // the status last reported
	var sentAt time.Time // when
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.rearm:
			t.Stop()
			sched.rearm(time.Now())
		}
		if c.keepalive {
			a.report(ctx, c)
			t.Reset(c.interval)
			continue
		}
		began := time.Now()
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		raw, output := a.probe(rctx, hc, c)
		took := time.Since(began)
		cancel()
		if ctx.Err() != nil {
			return
		}
		status := a.apply(c, raw, output)
		if now := time.Now(); status != sent || now.Sub(sentAt) >= c.interval {
			a.report(ctx, c)
			sent, sentAt = status, now
		}
		t.Reset(sched.next(time.Now(), took, raw == api.HealthPassing && status == api.HealthPassing))
	}
}

// Restarted tells the agent that the application was started again (not its first start): each check runs
// at once and then at the start step until it passes, as when berth started, so Consul sees the restart
// and the task passing again about 100 ms after the application is ready. It does not block.
func (a *Agent) Restarted() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.services {
		for _, c := range s.checks {
			if c.rearm != nil {
				select {
				case c.rearm <- struct{}{}:
				default: // one pending is enough
				}
			}
		}
	}
}

// apply folds one result into c's state, honouring success_before_passing and failures_before_critical, and
// returns the check's status after it.
func (a *Agent) apply(c *check, status, output string) string {
	a.mu.Lock()
	c.output = output
	changed := false
	if status == api.HealthPassing {
		c.successes++
		c.failures = 0
		if c.successes >= max(c.cfg.SuccessBeforePassing, 1) && c.status != status {
			c.status, changed = status, true
		}
	} else {
		c.failures++
		c.successes = 0
		if c.failures >= max(c.cfg.FailuresBeforeCritical, 1) && c.status != status {
			c.status, changed = status, true
		}
	}
	if changed {
		c.updated = time.Now()
	}
	now := c.status
	a.mu.Unlock()
	if changed {
		a.log.Info("check status changed", "service", c.svc.id, "check", c.name, "status", status, "output", firstLine(output))
		a.notify(c)
	}
	return now
}

func (a *Agent) notify(c *check) {
	if a.cfg.OnCheck != nil {
		a.cfg.OnCheck(a.state(c))
	}
}

func (a *Agent) state(c *check) CheckState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return CheckState{Name: c.name, Service: c.svc.id, CheckID: c.id, Status: c.status, Output: c.output, Updated: c.updated}
}

// report sends c's state to its Consul TTL check, unless the service is not registered (the registration
// carries the status) or shutdown has begun.
func (a *Agent) report(ctx context.Context, c *check) {
	if a.cat != nil {
		a.catalogReport(ctx, c)
		return
	}
	a.mu.Lock()
	skip := a.draining || !c.svc.registered
	status, output := c.status, c.output
	a.mu.Unlock()
	if skip {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
	defer cancel()
	defer context.AfterFunc(a.stopOps, cancel)()
	err := a.client.Agent().UpdateTTLOpts(c.id, output, status, (&api.QueryOptions{}).WithContext(rctx))
	a.observe(ctx, err)
	err = describe(err, a.cfg.Consul.RequestTimeout)
	a.mu.Lock()
	wasFailing := c.reportFailing
	c.reportFailing = err != nil && !isNotFound(err)
	a.mu.Unlock()
	switch {
	case err == nil:
		if wasFailing {
			a.log.Info("consul TTL updates work again", "check", c.id)
		}
	case isNotFound(err):
		a.lost(c.svc)
	case a.tokenGone(err):
		a.resync(c.svc)
	case ctx.Err() != nil || a.stopOps.Err() != nil:
	case wasFailing:
		a.log.Debug("consul TTL update failed", "check", c.id, "error", err)
	default:
		// Consul unreachable: the next result (one interval later) is the retry; the registration stands.
		a.log.Warn("consul TTL update failed; retrying every interval", "check", c.id, "error", err)
	}
}

func (a *Agent) checkHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// Keep-alives would hold a connection open to the application between runs.
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probe runs one check and returns its raw status and output.
func (a *Agent) probe(ctx context.Context, hc *http.Client, c *check) (string, string) {
	switch {
	case c.cfg.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.HTTP, nil)
		if err != nil {
			return api.HealthCritical, fmt.Sprintf("HTTP GET %s: %v", c.cfg.HTTP, err)
		}
		req.Header.Set("User-Agent", "berth health check")
		resp, err := hc.Do(req)
		if err != nil {
			return api.HealthCritical, fmt.Sprintf("HTTP GET %s: %v", c.cfg.HTTP, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
		_ = resp.Body.Close()
		out := fmt.Sprintf("HTTP GET %s: %s Output: %s", c.cfg.HTTP, resp.Status, body)
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return api.HealthPassing, truncate(out)
		}
		return api.HealthCritical, truncate(out)
	case c.cfg.TCP != "":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.cfg.TCP)
		if err != nil {
			return api.HealthCritical, fmt.Sprintf("TCP connect %s: %v", c.cfg.TCP, err)
		}
		_ = conn.Close()
		return api.HealthPassing, fmt.Sprintf("TCP connect %s: Success", c.cfg.TCP)
	default:
		code, out, err := a.cfg.Exec(ctx, slices.Clone(c.cfg.Exec))
		if err != nil {
			return api.HealthCritical, truncate(fmt.Sprintf("exec %s: %v", c.cfg.Exec[0], err))
		}
		switch code {
		case 0:
			return api.HealthPassing, truncate(string(out))
		case 1:
			return api.HealthWarning, truncate(string(out))
		}
		return api.HealthCritical, truncate(fmt.Sprintf("exit status %d: %s", code, out))
	}
}

// Checks returns the state of every check berth runs (not the keep-alive TTL of a service without checks).
func (a *Agent) Checks() []CheckState {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []CheckState
	for _, s := range a.services {
		for _, c := range s.checks {
			if !c.keepalive {
				out = append(out, CheckState{Name: c.name, Service: s.id, CheckID: c.id, Status: c.status,
					Output: c.output, Updated: c.updated})
			}
		}
	}
	return out
}

// Healthy reports whether every check passes (true when there are none): `berth health`. Before the first
// Register, Run or ResolvePeers it is false when any check is configured.
func (a *Agent) Healthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.services == nil {
		for _, s := range a.cfg.Services {
			if len(s.Checks) > 0 {
				return false
			}
		}
	}
	for _, s := range a.services {
		for _, c := range s.checks {
			if c.status != api.HealthPassing {
				return false
			}
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > maxOutput {
		return s[:maxOutput]
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
