//go:build linux

package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berth-dev/berth/tests/harness"
)

// statsdLine is one parsed DogStatsD datagram line.
type statsdLine struct {
	raw, name, value, kind string
	tags                   []string
}

func parseStatsdLine(l string) statsdLine {
	s := statsdLine{raw: l}
	parts := strings.Split(l, "|")
	switch {
	case strings.HasPrefix(l, "_e{"):
		s.kind = "event"
		s.name = parts[0]
	case strings.HasPrefix(l, "_sc|"):
		s.kind = "service_check"
		s.name = parts[1]
		s.value = parts[2]
	default:
		s.name, s.value, _ = strings.Cut(parts[0], ":")
		if len(parts) > 1 {
			s.kind = parts[1]
		}
	}
	for _, p := range parts {
		if t, ok := strings.CutPrefix(p, "#"); ok {
			s.tags = strings.Split(t, ",")
		}
	}
	return s
}

// collector parses what a real DogStatsD listener (harness.Statsd) received.
type collector struct{ s *harness.Statsd }

func collect(t *testing.T, conn net.PacketConn) *collector {
	return &collector{harness.CollectStatsd(t, conn)}
}

func (c *collector) lines() []statsdLine {
	var out []statsdLine
	for _, l := range c.s.Lines() {
		out = append(out, parseStatsdLine(l))
	}
	return out
}

// waitFor returns the first line matching pred, waiting up to a generous bound.
func (c *collector) waitFor(t *testing.T, what string, pred func(statsdLine) bool) statsdLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := c.lines()
		var all []string
		for _, l := range lines {
			if pred(l) {
				return l
			}
			all = append(all, l.raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s among %d lines:\n%s", what, len(lines), strings.Join(all, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func hasTags(l statsdLine, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(l.tags, w) {
			return false
		}
	}
	return true
}

func TestDogStatsDUDP(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, conn)
	port := conn.LocalAddr().(*net.UDPAddr).Port
	m, err := NewMetrics(MetricsConfig{
		Env: envMap(map[string]string{
			"DD_AGENT_HOST": "127.0.0.1", "DD_DOGSTATSD_PORT": fmt.Sprint(port),
			"DD_ENV": "staging", "DD_SERVICE": "shop", "DD_VERSION": "1.2.3", "DD_TAGS": "team:core, tier:web",
			"DB_PASSWORD": "never-a-tag",
		}),
		Tags:        []string{"owner:payments"}, // telemetry.tags, after DD_TAGS's
		MetadataURI: harness.ServeECSMetadata(t),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	m.ProcessStarted("main")
	m.ProcessStarted("main")
	m.ProcessExited("main", 1, true)
	m.ProcessExited("main", 137, true)
	m.ProcessExited("main", 0, false)
	m.CheckStatus("http", "web", "critical")
	m.SecretsFetched(1500*time.Millisecond, errors.New("throttled"))
	m.ConsulError()
	if err := m.Put("app.queue.depth", 42); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // flushes the client-side aggregation
		t.Fatal(err)
	}

	global := []string{"env:staging", "service:shop", "version:1.2.3", "team:core", "tier:web", "owner:payments",
		"ecs_cluster:prod", "task_family:app", "task_version:42", "container_name:app"}
	tests := []struct {
		name string
		pred func(statsdLine) bool
	}{
		{"starts", func(l statsdLine) bool {
			return l.name == MetricProcessStarts && l.value == "2" && hasTags(l, "job:main")
		}},
		{"exit 1", func(l statsdLine) bool {
			return l.name == MetricProcessExits && l.value == "1" && hasTags(l, "job:main", "exit_code:1")
		}},
		{"exit 137", func(l statsdLine) bool {
			return l.name == MetricProcessExits && hasTags(l, "job:main", "exit_code:137")
		}},
		{"exit 0", func(l statsdLine) bool { return l.name == MetricProcessExits && hasTags(l, "job:main", "exit_code:0") }},
		{"restarts", func(l statsdLine) bool {
			return l.name == MetricProcessRestarts && l.value == "2" && hasTags(l, "job:main")
		}},
		{"check gauge", func(l statsdLine) bool {
			return l.name == MetricCheckStatus && l.value == "2" && hasTags(l, "check:http", "service:web")
		}},
		{"service check", func(l statsdLine) bool {
			return l.kind == "service_check" && l.name == ServiceCheckName && l.value == "2" && hasTags(l, "check:http")
		}},
		{"crash event", func(l statsdLine) bool {
			return l.kind == "event" && strings.Contains(l.raw, "main exited with code 137") && hasTags(l, "exit_code:137")
		}},
		{"fetch duration", func(l statsdLine) bool { return l.name == MetricSecretsFetch && l.value == "1.5" && l.kind == "h" }},
		{"secret errors", func(l statsdLine) bool { return l.name == MetricSecretsErrors && l.value == "1" }},
		{"consul errors", func(l statsdLine) bool { return l.name == MetricConsulErrors && l.value == "1" }},
		{"user metric", func(l statsdLine) bool { return l.name == "app.queue.depth" && l.value == "42" && l.kind == "g" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := c.waitFor(t, tt.name, tt.pred)
			if !hasTags(l, global...) {
				t.Errorf("want global tags %v, have %v", global, l.tags)
			}
			if strings.Contains(l.raw, "never-a-tag") {
				t.Errorf("an environment value leaked into %q", l.raw)
			}
		})
	}
	for _, l := range c.lines() {
		if l.kind == "event" && strings.Contains(l.raw, "code 0") && !strings.Contains(l.raw, "restarting") {
			t.Errorf("a clean exit without restart sent an event: %s", l.raw)
		}
	}
}

func TestDogStatsDUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "dsd") // short: sun_path holds 108 bytes, t.TempDir() can be longer
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "dsd.socket")
	conn, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, conn)
	m, err := NewMetrics(MetricsConfig{Env: envMap(map[string]string{"DD_DOGSTATSD_URL": "unix://" + path, "DD_ENV": "prod"})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ProcessStarted("worker")
	m.ProcessExited("worker", 2, true)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "exits over unix socket", func(l statsdLine) bool {
		return l.name == MetricProcessExits && hasTags(l, "job:worker", "exit_code:2", "env:prod")
	})
	c.waitFor(t, "restarts over unix socket", func(l statsdLine) bool {
		return l.name == MetricProcessRestarts && hasTags(l, "job:worker", "env:prod")
	})
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text format: %v", err)
	}
	return fams
}

// value returns the value of the metric of family name whose labels include labels, or -1.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func startMetrics(t *testing.T, cfg MetricsConfig) *Metrics {
	t.Helper()
	m, err := NewMetrics(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return m
}

func TestPrometheus(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, udp)
	m := startMetrics(t, MetricsConfig{
		Prometheus: "127.0.0.1:0",
		DogStatsD:  "udp://" + udp.LocalAddr().String(),
		Env:        envMap(nil),
		Status:     func() any { return map[string]any{"main": map[string]any{"pid": 42, "restarts": 1}} },
	})
	m.ProcessStarted("main")
	m.ProcessExited("main", 3, true)
	m.ProcessStarted("main")
	m.CheckStatus("tcp", "db", "passing")
	m.SecretsFetched(200*time.Millisecond, nil)
	m.ConsulError()
	if err := m.Put("orders.pending", 7.5); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m.Addr())
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"berth_process_starts", map[string]string{"job": "main"}, 2},
		{"berth_process_exits", map[string]string{"job": "main", "exit_code": "3"}, 1},
		{"berth_process_restarts", map[string]string{"job": "main"}, 1},
		{"berth_check_status", map[string]string{"check": "tcp", "service": "db"}, 0},
		{"berth_secrets_fetch_duration", nil, 1},
		{"berth_secrets_errors", nil, 0},
		{"berth_consul_errors", nil, 1},
		{"orders_pending", nil, 7.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if have := value(fams, tt.name, tt.labels); have != tt.want {
				t.Fatalf("%s%v: want %v, have %v", tt.name, tt.labels, tt.want, have)
			}
		})
	}
	if value(fams, "berth_uptime", nil) < 0 || fams["go_goroutines"] == nil {
		t.Errorf("want berth_uptime and the Go runtime collector; families: %d", len(fams))
	}
	// The same counters reach DogStatsD.
	c.waitFor(t, "the same exit counter on DogStatsD", func(l statsdLine) bool {
		return l.name == MetricProcessExits && hasTags(l, "job:main", "exit_code:3")
	})

	resp, err := http.Get("http://" + m.Addr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var status map[string]map[string]int
	if err := json.Unmarshal(body, &status); err != nil || status["main"]["pid"] != 42 {
		t.Fatalf("/status: %s (%v)", body, err)
	}
}

func TestPut(t *testing.T) {
	m, err := NewMetrics(MetricsConfig{Env: envMap(nil)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"app.requests", false},
		{"app.requests", false}, // again: same gauge
		{"Queue_depth2", false},
		{"", true},
		{"1abc", true},
		{"app-requests", true},
		{"app requests", true},
		{"berth.process.starts", true},
		{"go_goroutines", true}, // taken by the Go collector
		{strings.Repeat("a", 201), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.Put(tt.name, 1); (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, have %v", tt.wantErr, err)
			}
		})
	}
}

func TestNewMetricsErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		cfg  MetricsConfig
		want string
	}{
		{"bad dogstatsd url", MetricsConfig{Env: envMap(map[string]string{"DD_DOGSTATSD_URL": "tcp://x:1"})}, "DD_DOGSTATSD_URL"},
		{"bad port", MetricsConfig{Env: envMap(map[string]string{"DD_AGENT_HOST": "h", "DD_DOGSTATSD_PORT": "eighty"})}, "DD_DOGSTATSD_PORT"},
		{"busy prometheus port", MetricsConfig{Env: envMap(nil), Prometheus: busy.Addr().String()}, "prometheus listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMetrics(tt.cfg, nil)
			if err == nil {
				m.Close()
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error naming %s, have %v", tt.want, err)
			}
		})
	}
}

func TestMetricsOff(t *testing.T) {
	m := startMetrics(t, MetricsConfig{Env: envMap(nil), SampleInterval: 10 * time.Millisecond})
	if m.dd != nil || m.Addr() != "" {
		t.Fatalf("want everything off, have dogstatsd %q prometheus %q", m.ddAddr, m.Addr())
	}
	m.ProcessStarted("main")
	m.ProcessExited("main", 1, true)
	m.CheckStatus("c", "s", "warning")
	if err := m.Put("x.y", 1); err != nil {
		t.Fatal(err)
	}
}

// TestProcessTreeSampling samples a real tree: a busy sh with two sleeping children.
func TestProcessTreeSampling(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60 & while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // the group of the tree this test started
		_ = cmd.Wait()
	})
	m := startMetrics(t, MetricsConfig{
		Prometheus:     "127.0.0.1:0",
		Env:            envMap(nil),
		SampleInterval: 50 * time.Millisecond,
		Processes:      func() map[string]int { return map[string]int{"main": pid} },
	})
	s := newProcSampler()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := s.sample(map[string]int{"main": pid, "gone": 1 << 30}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := u["gone"]; ok {
			t.Fatal("a job whose pid does not exist has usage")
		}
		have := u["main"]
		// Once both sleeps run, the tree holds more resident memory than sh alone.
		if childCount(pid) == 2 && have.rss > rootRSS(t, pid) && have.cpuValid && have.cpuPercent > 0 &&
			value(scrape(t, m.Addr()), "berth_process_rss", map[string]string{"job": "main"}) > 0 {
			if have.cpuPercent > 250 {
				t.Fatalf("one busy shell cannot use %.0f%% of a core", have.cpuPercent)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage of the tree within 10s: %+v, children %d", have, childCount(pid))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func childCount(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return len(strings.Fields(string(b)))
}

func rootRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStat(b)
	if err != nil {
		t.Fatal(err)
	}
	return st.rss * int64(os.Getpagesize())
}
