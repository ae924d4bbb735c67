package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
)

// Metric names (README). Prometheus uses the same names with '.' replaced by '_'.
const (
	MetricProcessStarts   = "berth.process.starts"         // counter, tag job
	MetricProcessExits    = "berth.process.exits"          // counter, tags job, exit_code
	MetricProcessRestarts = "berth.process.restarts"       // counter, tag job
	MetricProcessCPU      = "berth.process.cpu"            // gauge, tag job: percent of one core (100 = one core busy)
	MetricProcessRSS      = "berth.process.rss"            // gauge, tag job: bytes, summed over the process tree
	MetricCheckStatus     = "berth.check.status"           // gauge, tags check, service: 0 passing, 1 warning, 2 critical, 3 unknown
	MetricSecretsFetch    = "berth.secrets.fetch.duration" // histogram, seconds
	MetricSecretsErrors   = "berth.secrets.errors"         // counter
	MetricConsulErrors    = "berth.consul.errors"          // counter
	MetricLockAcquired    = "berth.lock.acquisitions"      // counter, tag job: a singleton's lock taken
	MetricLockLost        = "berth.lock.losses"            // counter, tag job: a singleton's lock lost (fenced)
	MetricUptime          = "berth.uptime"                 // gauge, seconds since berth started
	ServiceCheckName      = "berth.check"                  // Datadog service check per berth check, tags check, service
)

// dogstatsdBuffers is the size of datadog-go's buffer pool and send queue: enough for a flush of every berth
// metric at once.
const dogstatsdBuffers = 32

// MetricsConfig configures DogStatsD and Prometheus.
type MetricsConfig struct {
	// DogStatsD is the agent address (telemetry.dogstatsd): udp://HOST:PORT, unix:///PATH, HOST:PORT or HOST.
	// Empty means from Env: DD_DOGSTATSD_URL, else DD_AGENT_HOST[:DD_DOGSTATSD_PORT, default 8125]; empty
	// everywhere means DogStatsD is off.
	DogStatsD string
	// Prometheus is the listen address of /metrics and /status (telemetry.prometheus, -prometheus), e.g.
	// "127.0.0.1:9102"; empty means off. NewMetrics listens, so a busy port fails early.
	Prometheus string
	// Tags are telemetry.tags: global tags added to those of DD_TAGS (after them, split as DD_TAGS is).
	Tags []string
	// Env looks up environment variables (os.Getenv in production; tests inject). Only DD_* variables are
	// read. nil means os.Getenv.
	Env func(string) string
	// MetadataURI is ECS_CONTAINER_METADATA_URI_V4; when set (and ECSTask is nil) NewMetrics fetches the task
	// metadata for the tags ecs_cluster, task_family, task_version, container_name. A failed fetch is logged
	// and the tags are left out: telemetry never stops berth from starting.
	MetadataURI string
	// ECSTask is task metadata the caller already fetched (discovery does); it is used instead of fetching
	// MetadataURI again.
	ECSTask *ecsmeta.Task
	// Status returns the body of GET /status, encoded as JSON; nil serves {}.
	Status func() any
	// SampleInterval is how often the process trees are sampled from /proc and the uptime gauge is sent;
	// 0 means 10s.
	SampleInterval time.Duration
	// Processes returns, for each running job, the pid of its process (the root of its tree); nil disables
	// CPU/RSS sampling.
	Processes func() map[string]int
}

// Metrics sends berth's metrics to DogStatsD and serves them to Prometheus. All methods are safe for
// concurrent use, and are no-ops on the sinks that are off.
type Metrics struct {
	log      hclog.Logger
	cfg      MetricsConfig
	started  time.Time
	dd       *statsd.Client // nil: DogStatsD off
	ddAddr   string
	tags     []string
	reg      *promRegistry
	ln       net.Listener // nil: Prometheus off
	srv      *http.Server
	starts   *promFamily // counter, job
	exits    *promFamily // counter, job, exit_code
	restarts *promFamily // counter, job
	cpu      *promFamily // gauge, job
	rss      *promFamily // gauge, job
	checks   *promFamily // gauge, check, service
	fetch    *promFamily // histogram
	secErrs  *promFamily // counter
	conErrs  *promFamily // counter
	lockAcq  *promFamily // counter, job
	lockLost *promFamily // counter, job

	mu   sync.Mutex
	user map[string]*promFamily // Put gauges by Prometheus name

	closeOnce sync.Once
	closeErr  error
}

// withTags is env with tags appended to DD_TAGS: one place where global tags come from.
func withTags(env func(string) string, tags []string) func(string) string {
	if len(tags) == 0 {
		return env
	}
	joined := strings.Join(tags, ",")
	return func(k string) string {
		if k == "DD_TAGS" {
			if v := env(k); v != "" {
				return v + "," + joined
			}
			return joined
		}
		return env(k)
	}
}

// CheckListenAddr checks a Prometheus listen address (telemetry.prometheus) the way NewMetrics will use it:
// HOST:PORT, such as "127.0.0.1:9102".
func CheckListenAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not a listen address such as \"127.0.0.1:9102\"", addr)
	}
	return nil
}

// NewMetrics resolves the DogStatsD address and global tags, builds the Prometheus registry and opens the
// Prometheus listener. Close (or Run returning) releases them.
func NewMetrics(cfg MetricsConfig, log hclog.Logger) (*Metrics, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Env == nil {
		cfg.Env = os.Getenv
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = 10 * time.Second
	}
	m := &Metrics{log: log, cfg: cfg, started: time.Now(), user: make(map[string]*promFamily)}

	addr, err := ResolveDogStatsD(cfg.DogStatsD, cfg.Env)
	if err != nil {
		return nil, fmt.Errorf("dogstatsd: %w", err)
	}
	task := cfg.ECSTask
	if task == nil && cfg.MetadataURI != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		task, err = ecsmeta.Client{URI: cfg.MetadataURI}.Fetch(ctx)
		cancel()
		if err != nil {
			log.Warn("ECS task metadata unavailable; metrics go without ECS tags", "error", err)
		}
	}
	m.tags = GlobalTags(withTags(cfg.Env, cfg.Tags), task)

	m.reg = newPromRegistry()
	m.starts = newPromFamily(promName(MetricProcessStarts), "Processes started, by job.", promCounter, "job")
	m.exits = newPromFamily(promName(MetricProcessExits), "Processes exited, by job and exit code (128+N for signal N).",
		promCounter, "job", "exit_code")
	m.restarts = newPromFamily(promName(MetricProcessRestarts), "Processes restarted after they exited, by job.", promCounter, "job")
	m.cpu = newPromFamily(promName(MetricProcessCPU),
		"CPU use of the job's process tree over the last sample interval, in percent of one core.", promGauge, "job")
	m.rss = newPromFamily(promName(MetricProcessRSS),
		"Resident memory of the job's process tree in bytes (sum over processes).", promGauge, "job")
	m.checks = newPromFamily(promName(MetricCheckStatus),
		"Status of a berth check: 0 passing, 1 warning, 2 critical, 3 unknown.", promGauge, "check", "service")
	m.fetch = newPromHistogram(promName(MetricSecretsFetch), "Time to resolve all secrets, in seconds.",
		[]float64{0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6})
	m.secErrs = newPromFamily(promName(MetricSecretsErrors), "Failed secret resolutions or refreshes.", promCounter)
	m.conErrs = newPromFamily(promName(MetricConsulErrors), "Failed Consul requests.", promCounter)
	m.lockAcq = newPromFamily(promName(MetricLockAcquired), "Singleton locks acquired, by job.", promCounter, "job")
	m.lockLost = newPromFamily(promName(MetricLockLost), "Singleton locks lost while held (the process was stopped), by job.",
		promCounter, "job")
	uptime := newPromFamily(promName(MetricUptime), "Seconds since berth started.", promGauge)
	uptime.fn = func() float64 { return time.Since(m.started).Seconds() }
	if err := m.reg.register(m.starts, m.exits, m.restarts, m.cpu, m.rss, m.checks, m.fetch, m.secErrs, m.conErrs,
		m.lockAcq, m.lockLost, uptime); err != nil {
		return nil, err
	}

	if cfg.Prometheus != "" {
		ln, err := net.Listen("tcp", cfg.Prometheus)
		if err != nil {
			return nil, fmt.Errorf("prometheus listen %s: %w", cfg.Prometheus, err)
		}
		m.ln = ln
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.reg)
		mux.HandleFunc("GET /status", m.serveStatus)
		m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}

	if addr != "" {
		// Client-side aggregation (the datadog-go default) folds counts between flushes; Close flushes.
		// The client's own telemetry metrics are noise on a per-task agent. datadog-go sizes itself for an
		// application sending thousands of metrics a second (32 workers, 2,048 pooled buffers and a 2,048-buffer
		// send queue for UDP: 2 MB of berth's resident set); berth sends a few a minute, so one worker and small
		// queues (an empty pool allocates a buffer, it never blocks).
		dd, err := statsd.New(addr, statsd.WithTags(dedupLibTags(m.tags)), statsd.WithoutTelemetry(),
			statsd.WithWorkersCount(1), statsd.WithBufferPoolSize(dogstatsdBuffers), statsd.WithSenderQueueSize(dogstatsdBuffers),
			statsd.WithErrorHandler(func(err error) { log.Debug("dogstatsd send failed", "error", err) }))
		if err != nil {
			if m.ln != nil {
				_ = m.ln.Close()
			}
			return nil, fmt.Errorf("dogstatsd %s: %w", addr, err)
		}
		m.dd, m.ddAddr = dd, addr
	}
	log.Debug("metrics configured", "dogstatsd", addr, "prometheus", m.Addr(), "tags", strings.Join(m.tags, ","))
	return m, nil
}

// dedupLibTags drops the env:, service:, version: tags that datadog-go adds on its own: it reads DD_ENV,
// DD_SERVICE, DD_VERSION (and DD_ENTITY_ID) from the process environment in statsd.New, so passing them
// again would send each twice. Tags from an injected Env that differ from the process environment stay.
func dedupLibTags(tags []string) []string {
	libAdds := make(map[string]bool)
	for _, env := range []string{"DD_ENV", "DD_SERVICE", "DD_VERSION"} {
		if v := os.Getenv(env); v != "" {
			libAdds[strings.ToLower(strings.TrimPrefix(env, "DD_"))+":"+v] = true
		}
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if !libAdds[t] {
			out = append(out, t)
		}
	}
	return out
}

// promName maps a DogStatsD metric name to its Prometheus name.
func promName(ddName string) string { return strings.NewReplacer(".", "_", "-", "_").Replace(ddName) }

// Addr is the address the Prometheus endpoint listens on ("" when off); useful with port 0.
func (m *Metrics) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Tags returns the global DogStatsD tags.
func (m *Metrics) Tags() []string { return append([]string(nil), m.tags...) }

func (m *Metrics) serveStatus(w http.ResponseWriter, _ *http.Request) {
	var body any = struct{}{}
	if m.cfg.Status != nil {
		body = m.cfg.Status()
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// Run serves Prometheus, samples the process trees and sends the uptime gauge every SampleInterval until
// ctx is cancelled; then it stops the server and flushes DogStatsD (Close). It is an oklog/run actor.
func (m *Metrics) Run(ctx context.Context) error {
	defer m.Close()
	serveErr := make(chan error, 1)
	if m.srv != nil {
		go func() { serveErr <- m.srv.Serve(m.ln) }()
	}
	s := newProcSampler()
	tick := time.NewTicker(m.cfg.SampleInterval)
	defer tick.Stop()
	for {
		m.sample(s)
		select {
		case <-ctx.Done():
			if m.srv != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = m.srv.Shutdown(sctx)
				cancel()
			}
			return nil
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("prometheus server: %w", err)
		case <-tick.C:
		}
	}
}

// sample reads CPU and RSS of every job's process tree and sends uptime.
func (m *Metrics) sample(s *procSampler) {
	if m.dd != nil {
		_ = m.dd.Gauge(MetricUptime, time.Since(m.started).Seconds(), nil, 1)
	}
	if m.cfg.Processes == nil {
		return
	}
	jobs := m.cfg.Processes()
	usage, err := s.sample(jobs, time.Now())
	if err != nil {
		m.log.Debug("process sampling failed", "error", err)
		return
	}
	for job, u := range usage {
		m.rss.set(float64(u.rss), job)
		if m.dd != nil {
			_ = m.dd.Gauge(MetricProcessRSS, float64(u.rss), []string{"job:" + job}, 1)
		}
		if u.cpuValid {
			m.cpu.set(u.cpuPercent, job)
			if m.dd != nil {
				_ = m.dd.Gauge(MetricProcessCPU, u.cpuPercent, []string{"job:" + job}, 1)
			}
		}
	}
}

// ProcessStarted counts a start of job's process.
func (m *Metrics) ProcessStarted(job string) {
	m.starts.add(1, job)
	if m.dd != nil {
		_ = m.dd.Incr(MetricProcessStarts, []string{"job:" + job}, 1)
	}
}

// ProcessExited counts an exit of job's process with code (128+N for signal N), and a restart when the
// supervisor is going to start it again. A non-zero exit or a restart also sends a Datadog event.
func (m *Metrics) ProcessExited(job string, code int, restarting bool) {
	c := strconv.Itoa(code)
	m.exits.add(1, job, c)
	if restarting {
		m.restarts.add(1, job)
	}
	if m.dd == nil {
		return
	}
	tags := []string{"job:" + job, "exit_code:" + c}
	_ = m.dd.Incr(MetricProcessExits, tags, 1)
	if restarting {
		_ = m.dd.Incr(MetricProcessRestarts, tags[:1], 1)
	}
	if code == 0 && !restarting {
		return
	}
	e := &statsd.Event{
		Title:          fmt.Sprintf("berth: %s exited with code %d", job, code),
		Text:           fmt.Sprintf("Job %s exited with code %d.", job, code),
		AlertType:      statsd.Error,
		SourceTypeName: "berth",
		AggregationKey: "berth-" + job,
		Tags:           tags,
	}
	if restarting {
		e.Title += ", restarting"
		e.Text += " berth restarts it."
		if code == 0 {
			e.AlertType = statsd.Warning
		}
	}
	_ = m.dd.Event(e)
}

// CheckStatus records the status of a berth check ("passing", "warning", "critical"; anything else is
// unknown) as the berth.check.status gauge and a Datadog service check.
func (m *Metrics) CheckStatus(check, service, status string) {
	code := statsd.Unknown
	switch status {
	case "passing":
		code = statsd.Ok
	case "warning":
		code = statsd.Warn
	case "critical":
		code = statsd.Critical
	}
	m.checks.set(float64(code), check, service)
	if m.dd == nil {
		return
	}
	tags := []string{"check:" + check, "service:" + service}
	_ = m.dd.Gauge(MetricCheckStatus, float64(code), tags, 1)
	_ = m.dd.ServiceCheck(&statsd.ServiceCheck{Name: ServiceCheckName, Status: code, Tags: tags, Message: status})
}

// SecretsFetched records how long resolving the secrets took, and counts an error when err is not nil.
func (m *Metrics) SecretsFetched(d time.Duration, err error) {
	m.fetch.observe(d.Seconds())
	if err != nil {
		m.secErrs.add(1)
	}
	if m.dd == nil {
		return
	}
	_ = m.dd.Histogram(MetricSecretsFetch, d.Seconds(), nil, 1)
	if err != nil {
		_ = m.dd.Incr(MetricSecretsErrors, nil, 1)
	}
}

// ConsulError counts a failed Consul request.
func (m *Metrics) ConsulError() {
	m.conErrs.add(1)
	if m.dd != nil {
		_ = m.dd.Incr(MetricConsulErrors, nil, 1)
	}
}

// LockChanged counts a singleton's lock taken (held) or lost.
func (m *Metrics) LockChanged(job string, held bool) {
	c, name := m.lockLost, MetricLockLost
	if held {
		c, name = m.lockAcq, MetricLockAcquired
	}
	c.add(1, job)
	if m.dd != nil {
		_ = m.dd.Incr(name, []string{"job:" + job}, 1)
	}
}

// validUserMetricName reports whether `berth ctl putmetric NAME=VALUE` accepts name: a DogStatsD name that
// also maps to a valid Prometheus name.
func validUserMetricName(name string) bool {
	if len(name) == 0 || len(name) > 200 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_' || c == '.')) {
			return false
		}
	}
	return true
}

// Put sets the user gauge name to value (`berth ctl putmetric NAME=VALUE`). Names are letters, digits, '_'
// and '.', starting with a letter; the berth. prefix is reserved. The gauge appears in Prometheus with '.'
// replaced by '_'.
func (m *Metrics) Put(name string, value float64) error {
	if !validUserMetricName(name) {
		return fmt.Errorf("metric name %q: want letters, digits, '_' and '.', starting with a letter", name)
	}
	if strings.HasPrefix(name, "berth.") || strings.HasPrefix(name, "berth_") {
		return fmt.Errorf("metric name %q: the berth prefix is reserved for berth's own metrics", name)
	}
	pn := promName(name)
	m.mu.Lock()
	g, ok := m.user[pn]
	if !ok {
		g = newPromFamily(pn, "Set by berth ctl putmetric.", promGauge)
		if err := m.reg.register(g); err != nil {
			m.mu.Unlock()
			return fmt.Errorf("metric name %q: %w", name, err)
		}
		m.user[pn] = g
	}
	m.mu.Unlock()
	g.set(value)
	if m.dd != nil {
		if err := m.dd.Gauge(name, value, nil, 1); err != nil {
			return fmt.Errorf("metric %s: %w", name, err)
		}
	}
	return nil
}

// Close flushes and closes the DogStatsD client and closes the Prometheus listener. Safe to call more than
// once and after Run returned.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.srv != nil {
			if err := m.srv.Close(); err != nil {
				errs = append(errs, fmt.Errorf("prometheus server: %w", err))
			}
		}
		if m.ln != nil {
			if err := m.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("prometheus listener: %w", err))
			}
		}
		if m.dd != nil {
			if err := m.dd.Close(); err != nil {
				errs = append(errs, fmt.Errorf("dogstatsd flush: %w", err))
			}
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}
