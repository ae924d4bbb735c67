package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/tests/harness"
)

// counter is an http.RoundTripper that records every request berth makes to Consul.
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string // "METHOD /path" ("PROBE /path" for a filtered GET), plus " (blocking)" for a blocking query (index > 0)
	idx  []uint64 // each request's index (0 for a plain one)
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	req := r.Method + " " + r.URL.Path
	if r.URL.Query().Get("filter") != "" { // a peers watch's probe: an index, not a list
		req = "PROBE " + r.URL.Path
	}
	idx, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if idx > 0 {
		req += " (blocking)"
	}
	c.reqs = append(c.reqs, req)
	c.idx = append(c.idx, idx)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// lastIndex is the index of the newest request whose "METHOD /path" starts with prefix (false: none yet).
func (c *counter) lastIndex(prefix string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.reqs) - 1; i >= 0; i-- {
		if strings.HasPrefix(c.reqs[i], prefix) {
			return c.idx[i], true
		}
	}
	return 0, false
}

// watching is the condition a test waits on before it changes what a peers watch follows, or before it
// counts a steady state: the newest health query for service is a blocking query at the index Consul is at
// now. Everything before it was handled (the watch writes its file and calls onChange before it asks again),
// and the next change to the service answers it.
func watching(ins *api.Client, cnt *counter, service string) func() string {
	return func() string {
		_, meta, err := ins.Health().Service(service, "", false, nil)
		if err != nil {
			return err.Error()
		}
		have, ok := cnt.lastIndex("GET /v1/health/service/" + service)
		if !ok || have < meta.LastIndex {
			return fmt.Sprintf("no blocking query for %s at index %d yet (newest at %d)", service, meta.LastIndex, have)
		}
		return ""
	}
}

func (c *counter) wrap(next http.RoundTripper) http.RoundTripper {
	c.next = next
	return c
}

// mark returns the number of requests so far, to count from there with since.
func (c *counter) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reqs)
}

// since counts requests after mark whose "METHOD /path" starts with prefix ("" = all).
func (c *counter) since(mark int, prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reqs[mark:] {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (c *counter) summary(mark int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, r := range c.reqs[mark:] {
		m[r]++
	}
	return fmt.Sprint(m)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "discovery", Output: testWriter{t}, Level: hclog.Debug})
}

// newTestAgent builds an agent for a Consul at addr with quick retries and a request counter.
func newTestAgent(t testing.TB, addr string, cfg Config) (*Agent, *counter) {
	t.Helper()
	cnt := &counter{}
	cfg.Consul.Address = addr
	if cfg.Consul.RetryMin == 0 {
		cfg.Consul.RetryMin = 200 * time.Millisecond
	}
	if cfg.Consul.RetryMax == 0 {
		cfg.Consul.RetryMax = time.Second
	}
	if cfg.Consul.RequestTimeout == 0 {
		cfg.Consul.RequestTimeout = 2 * time.Second
	}
	cfg.Consul.WrapTransport = cnt.wrap
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return a, cnt
}

// start runs fn(ctx) in a goroutine stopped and awaited in t.Cleanup.
func start(t testing.TB, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("actor returned %v", err)
		}
	})
}

// inspector is a plain Consul client for the test's own view (not counted).
func inspector(t testing.TB, addr string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually waits (harness.Within) until cond returns "", failing with cond's last reason after timeout; it
// returns how long that took.
func eventually(t testing.TB, timeout time.Duration, cond func() string) time.Duration {
	t.Helper()
	begin := time.Now()
	var why string
	if !harness.Within(timeout, func() bool { why = cond(); return why == "" }) {
		t.Fatalf("not within %s: %s", timeout, why)
	}
	return time.Since(begin)
}

// checkStatus returns the agent's view of a check: status and output, or "" when the check is unknown.
func checkStatus(t testing.TB, c *api.Client, id string) (string, string) {
	t.Helper()
	checks, err := c.Agent().Checks()
	if err != nil {
		return "error: " + err.Error(), ""
	}
	if ch, ok := checks[id]; ok {
		return ch.Status, ch.Output
	}
	return "", ""
}

func wantStatus(t testing.TB, c *api.Client, id, want string) func() string {
	return func() string {
		have, out := checkStatus(t, c, id)
		if have != want {
			return fmt.Sprintf("check %s: want %q, have %q (%s)", id, want, have, out)
		}
		return ""
	}
}

// osExec is the test's exec runner; in berth the supervisor backs Config.Exec.
func osExec(ctx context.Context, argv []string) (int, []byte, error) {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out, nil
	}
	if err != nil {
		return -1, out, err
	}
	return 0, out, nil
}

// startConsul starts a real `consul agent -dev` (stoppable and restartable on the same port) and returns an
// uncounted client for the test's own view.
func startConsul(t testing.TB) (*harness.Consul, *api.Client) {
	t.Helper()
	c := harness.StartConsul(t)
	return c, inspector(t, c.Addr)
}
