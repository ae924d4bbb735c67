package harness

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ConsulProxy is a reverse proxy between one berth and a Consul agent. It records every request, so a test
// can count what berth asks and whether its peer lookups are blocking queries; it can answer a request itself
// (an injected error); and it can hang: from SetHang(true) on it accepts connections and reads requests but
// never answers them, nor the answers of requests it forwarded before — as a wedged agent or a black-holed
// network does. After SetHang(false) new requests are forwarded again; the ones caught in the hang stay
// unanswered until their client gives up.
type ConsulProxy struct {
	srv    *httptest.Server
	target *url.URL
	stop   chan struct{} // closed at cleanup: releases what the hang holds

	mu     sync.Mutex
	reqs   []ProxiedRequest
	hung   bool
	inject func(r *http.Request) (status int, body string)
}

// ProxiedRequest is one request the proxy received.
type ProxiedRequest struct {
	Method, Path string
	Index        string // the blocking query's index ("" or "0" for a plain query)
	Filter       string // the query's filter expression, if any
	Bytes        int64  // the answer's body as sent to the client (compressed when Consul compressed it)
	Remote       string // the client's address: one connection, so one berth
	At           time.Time
	Hung         bool // received during a hang: never answered
}

// StartConsulProxy starts a proxy in front of the agent at consulAddr (host:port); t.Cleanup stops it.
func StartConsulProxy(t testing.TB, consulAddr string) *ConsulProxy {
	t.Helper()
	target, err := url.Parse("http://" + consulAddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &ConsulProxy{target: target, stop: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	// Keep connections to the agent as each berth keeps its own (http.DefaultTransport keeps 2 idle per host,
	// and would open and close one per request behind a fleet of berths).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, 1024
	rp.Transport = tr
	rp.ModifyResponse = func(resp *http.Response) error {
		if p.Hung() {
			p.hold(resp.Request)
			return errHung
		}
		return nil
	}
	// A client that gave up, or an answer swallowed by the hang, is not worth a log line.
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hung, inject := p.hung, p.inject
		p.reqs = append(p.reqs, ProxiedRequest{Method: r.Method, Path: r.URL.Path, Index: r.URL.Query().Get("index"),
			Filter: r.URL.Query().Get("filter"), Remote: r.RemoteAddr, At: time.Now(), Hung: hung})
		at := len(p.reqs) - 1
		p.mu.Unlock()
		if hung {
			p.hold(r)
			return
		}
		if inject != nil {
			if status, body := inject(r); status != 0 {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(body))
				return
			}
		}
		cw := &countingWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		p.mu.Lock()
		p.reqs[at].Bytes = cw.n
		p.mu.Unlock()
	}))
	t.Cleanup(func() {
		close(p.stop)
		p.srv.CloseClientConnections() // blocking queries would otherwise keep Close waiting for minutes
		p.srv.Close()
		tr.CloseIdleConnections()
	})
	return p
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Flush passes flushes on (the reverse proxy flushes every write).
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var errHung = errors.New("consul proxy: answer swallowed by a hang")

// hold blocks until r's client gives up or the proxy is stopped.
func (p *ConsulProxy) hold(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.stop:
	}
}

// Addr is the proxy's host:port, for CONSUL_HTTP_ADDR.
func (p *ConsulProxy) Addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// SetHang starts (true) or ends (false) a hang.
func (p *ConsulProxy) SetHang(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hung = on
}

// Hung reports whether the proxy hangs.
func (p *ConsulProxy) Hung() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hung
}

// SetInject makes the proxy answer a request itself when f returns a status other than 0 (with body as the
// answer). nil forwards every request to the agent.
func (p *ConsulProxy) SetInject(f func(r *http.Request) (status int, body string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inject = f
}

// Count returns the number of requests since `since` whose path starts with prefix, and how many of those
// were plain (non-blocking) queries.
func (p *ConsulProxy) Count(prefix string, since time.Time) (n, plain int) {
	for _, r := range p.Requests(prefix, since) {
		n++
		if r.Index == "" || r.Index == "0" {
			plain++
		}
	}
	return n, plain
}

// Waiting counts the blocking queries for path (a health list, a KV key, the session list) that wait on the
// index the agent is at now: each came after its client had every earlier answer, and the next change answers
// it. Filtered queries do not count (a peers watch's probes, which list nothing), and each client (connection)
// counts once. One berth behind the proxy is settled on path when it is 1 or more; a fleet of n, when it
// reaches n.
// The agent is asked directly, not through the proxy, so the question itself is not counted.
func (p *ConsulProxy) Waiting(path string) int {
	resp, err := http.Get(p.target.String() + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	now, err := strconv.ParseUint(resp.Header.Get("X-Consul-Index"), 10, 64)
	if err != nil {
		return 0
	}
	clients := map[string]bool{} // a query that timed out and was sent again at the same index counts once
	for _, r := range p.Requests(path, time.Time{}) {
		if r.Path != path || r.Filter != "" {
			continue
		}
		if idx, _ := strconv.ParseUint(r.Index, 10, 64); idx > 0 && idx >= now {
			clients[r.Remote] = true
		}
	}
	return len(clients)
}

// Requests returns the requests since `since` whose path starts with prefix.
func (p *ConsulProxy) Requests(prefix string, since time.Time) []ProxiedRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ProxiedRequest
	for _, r := range p.reqs {
		if !r.At.Before(since) && strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}
