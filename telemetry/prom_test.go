//go:build linux

package telemetry

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// TestPrometheusSameAsClientGolang: /metrics is what client_golang (which berth used before its own writer)
// serves for the same counts, line for line for berth's families, and with the same Go runtime and process
// families (names, types, help; their values differ from one read to the next).
func TestPrometheusSameAsClientGolang(t *testing.T) {
	m := startMetrics(t, MetricsConfig{Prometheus: "127.0.0.1:0", Env: envMap(nil)})
	reg := prometheus.NewRegistry()
	starts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_process_starts", Help: "Processes started, by job."}, []string{"job"})
	exits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_process_exits",
		Help: "Processes exited, by job and exit code (128+N for signal N)."}, []string{"job", "exit_code"})
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_process_restarts",
		Help: "Processes restarted after they exited, by job."}, []string{"job"})
	checks := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "berth_check_status",
		Help: "Status of a berth check: 0 passing, 1 warning, 2 critical, 3 unknown."}, []string{"check", "service"})
	fetch := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "berth_secrets_fetch_duration",
		Help: "Time to resolve all secrets, in seconds.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 10)})
	secErrs := prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_secrets_errors", Help: "Failed secret resolutions or refreshes."})
	conErrs := prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_consul_errors", Help: "Failed Consul requests."})
	lockAcq := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_lock_acquisitions", Help: "Singleton locks acquired, by job."}, []string{"job"})
	lockLost := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "berth_lock_losses",
		Help: "Singleton locks lost while held (the process was stopped), by job."}, []string{"job"})
	user := prometheus.NewGauge(prometheus.GaugeOpts{Name: "orders_pending", Help: "Set by berth ctl putmetric."})
	reg.MustRegister(starts, exits, restarts, checks, fetch, secErrs, conErrs, lockAcq, lockLost, user,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The same events on both; job and check names with the characters the format escapes.
	for _, job := range []string{"web", "main", `odd "job"\n`, "main"} {
		m.ProcessStarted(job)
		starts.WithLabelValues(job).Inc()
	}
	for _, e := range []struct {
		job        string
		code       int
		restarting bool
		codeLabel  string
	}{{"main", 3, true, "3"}, {"web", 143, false, "143"}, {"main", 3, false, "3"}, {"main", 0, true, "0"}} {
		m.ProcessExited(e.job, e.code, e.restarting)
		exits.WithLabelValues(e.job, e.codeLabel).Inc()
		if e.restarting {
			restarts.WithLabelValues(e.job).Inc()
		}
	}
	for _, c := range []struct{ check, service, status string }{
		{"http", "web", "passing"}, {"tcp", "db", "critical"}, {"http", "web", "warning"}, {"exec", "a\nb", "x"},
	} {
		m.CheckStatus(c.check, c.service, c.status)
		code := map[string]float64{"passing": 0, "warning": 1, "critical": 2}[c.status]
		if _, ok := map[string]bool{"passing": true, "warning": true, "critical": true}[c.status]; !ok {
			code = 3
		}
		checks.WithLabelValues(c.check, c.service).Set(code)
	}
	for _, d := range []time.Duration{0, 50 * time.Millisecond, 120 * time.Millisecond, 3 * time.Second, time.Minute} {
		m.SecretsFetched(d, nil)
		fetch.Observe(d.Seconds())
	}
	m.SecretsFetched(time.Second, errTest)
	fetch.Observe(1)
	secErrs.Inc()
	m.ConsulError()
	conErrs.Inc()
	m.LockChanged("leader", true)
	lockAcq.WithLabelValues("leader").Inc()
	m.LockChanged("leader", false)
	lockLost.WithLabelValues("leader").Inc()
	if err := m.Put("orders.pending", 7.25); err != nil {
		t.Fatal(err)
	}
	user.Set(7.25)

	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	have, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	const promhttpType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores" // promhttp's, for text
	if ct := resp.Header.Get("Content-Type"); ct != promhttpType {
		t.Errorf("Content-Type %q, promhttp's is %q", ct, promhttpType)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&want, f); err != nil {
			t.Fatal(err)
		}
	}
	// berth's families and the user gauge: identical lines; the collectors' families: identical but for values.
	// berth_uptime and the process CPU/RSS gauges are berth's only and checked elsewhere.
	strip := func(text string, values bool) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if strings.Contains(l, "berth_uptime") {
				continue
			}
			if values && !strings.HasPrefix(l, "#") && (strings.HasPrefix(l, "go_") || strings.HasPrefix(l, "process_")) {
				l = l[:strings.LastIndexByte(l, ' ')]
			}
			out = append(out, l)
		}
		return out
	}
	haveLines, wantLines := strip(string(have), true), strip(want.String(), true)
	if strings.Join(haveLines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("/metrics differs from client_golang's exposition:\n%s", lineDiff(wantLines, haveLines))
	}

	// gzip when asked for, as promhttp does
	req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Accept-Encoding: gzip answered with Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(unzipped, []byte("# TYPE berth_process_starts counter\n")) {
		t.Fatalf("gzip body (%v):\n%.300s", err, unzipped)
	}
}

var errTest = io.ErrUnexpectedEOF

// lineDiff lists the lines only in want (-) and only in have (+).
func lineDiff(want, have []string) string {
	in := func(l string, set []string) bool {
		for _, s := range set {
			if s == l {
				return true
			}
		}
		return false
	}
	var b strings.Builder
	for _, l := range want {
		if !in(l, have) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range have {
		if !in(l, want) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "deflate, gzip;q=0.5": true, "gzip;q=0": false, "GZIP": true, "br": false,
		"identity, gzip ; q=1.0": true,
	} {
		if have := acceptsGzip(header); have != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, have, want)
		}
	}
}
