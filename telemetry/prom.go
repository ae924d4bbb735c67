package telemetry

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Prometheus side of Metrics: a registry of counters, gauges and histograms with labels, the Go runtime
// and process families that client_golang's default collectors export (same names, types and help), and the
// text exposition format (version 0.0.4) at /metrics. It replaces client_golang, whose package init
// (client_golang, client_model, protobuf, procfs) and code were 2.5 MB of resident memory of every berth start,
// Prometheus configured or not; berth's metrics need none of its machinery.

// promType is a Prometheus metric family type as the exposition format spells it.
type promType string

const (
	promCounter   promType = "counter"
	promGauge     promType = "gauge"
	promHistogram promType = "histogram"
	promSummary   promType = "summary"
)

// promFamily is a family of one metric name: one child per combination of label values.
type promFamily struct {
	name    string
	help    string
	typ     promType
	labels  []string       // label names
	buckets []float64      // histogram upper bounds, ascending, without +Inf
	fn      func() float64 // a gauge read at scrape time (no labels)

	mu       sync.Mutex
	children map[string]*promChild // by label values joined with \xff
}

type promChild struct {
	values []string
	v      float64  // counter, gauge; histogram: sum
	counts []uint64 // histogram: per bucket (not cumulative), then +Inf
	n      uint64   // histogram: observations
}

func newPromFamily(name, help string, typ promType, labels ...string) *promFamily {
	f := &promFamily{name: name, help: help, typ: typ, labels: labels, children: map[string]*promChild{}}
	if len(labels) == 0 && typ != promHistogram {
		f.child(nil) // a metric without labels is exported from the start, at 0
	}
	return f
}

func newPromHistogram(name, help string, buckets []float64) *promFamily {
	f := newPromFamily(name, help, promHistogram)
	f.buckets = buckets
	f.child(nil)
	return f
}

// child returns the child of values, creating it; f.mu is held or f is not shared yet.
func (f *promFamily) child(values []string) *promChild {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for %d labels", f.name, len(values), len(f.labels)))
	}
	key := strings.Join(values, "\xff")
	c := f.children[key]
	if c == nil {
		c = &promChild{values: slices.Clone(values)}
		if f.typ == promHistogram {
			c.counts = make([]uint64, len(f.buckets)+1)
		}
		f.children[key] = c
	}
	return c
}

// add adds v to the counter or gauge of values.
func (f *promFamily) add(v float64, values ...string) {
	f.mu.Lock()
	f.child(values).v += v
	f.mu.Unlock()
}

// set sets the gauge of values.
func (f *promFamily) set(v float64, values ...string) {
	f.mu.Lock()
	f.child(values).v = v
	f.mu.Unlock()
}

// observe adds an observation to the histogram.
func (f *promFamily) observe(v float64, values ...string) {
	f.mu.Lock()
	c := f.child(values)
	i, _ := slices.BinarySearch(f.buckets, v) // the first bucket with v <= upper bound; len = +Inf
	c.counts[i]++
	c.v += v
	c.n++
	f.mu.Unlock()
}

// promSample is one line of the exposition: the metric name's suffix (_bucket, _sum, _count), its label pairs
// already formatted, and the value.
type promSample struct {
	suffix string
	labels string
	value  string
}

// promSnapshot is a family as written at one scrape.
type promSnapshot struct {
	name, help string
	typ        promType
	samples    []promSample
}

func (f *promFamily) snapshot() promSnapshot {
	s := promSnapshot{name: f.name, help: f.help, typ: f.typ}
	if f.fn != nil {
		s.samples = []promSample{{value: promFloat(f.fn())}}
		return s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	type row struct {
		pairs [][2]string // label name and value, sorted by name
		c     *promChild
	}
	rows := make([]row, 0, len(f.children))
	for _, c := range f.children {
		pairs := make([][2]string, len(f.labels))
		for i, l := range f.labels {
			pairs[i] = [2]string{l, c.values[i]}
		}
		slices.SortFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		rows = append(rows, row{pairs, c})
	}
	// client_golang's order: by label values, labels taken in name order
	slices.SortFunc(rows, func(a, b row) int {
		return slices.CompareFunc(a.pairs, b.pairs, func(x, y [2]string) int { return strings.Compare(x[1], y[1]) })
	})
	for _, r := range rows {
		pairs, c := r.pairs, r.c
		if f.typ != promHistogram {
			s.samples = append(s.samples, promSample{labels: promLabels(pairs), value: promFloat(c.v)})
			continue
		}
		var cum uint64
		for i, n := range c.counts {
			cum += n
			le := "+Inf"
			if i < len(f.buckets) {
				le = promFloat(f.buckets[i])
			}
			s.samples = append(s.samples, promSample{suffix: "_bucket", labels: promLabels(append(pairs, [2]string{"le", le})),
				value: strconv.FormatUint(cum, 10)})
		}
		s.samples = append(s.samples, promSample{suffix: "_sum", labels: promLabels(pairs), value: promFloat(c.v)},
			promSample{suffix: "_count", labels: promLabels(pairs), value: strconv.FormatUint(c.n, 10)})
	}
	return s
}

// promRegistry is the set of families /metrics serves, with the Go runtime and process families.
type promRegistry struct {
	mu   sync.Mutex
	fams map[string]*promFamily
}

func newPromRegistry() *promRegistry { return &promRegistry{fams: map[string]*promFamily{}} }

// register adds families; a name that is taken (by a family or by the runtime and process collectors) is an
// error and registers none of them.
func (r *promRegistry) register(fams ...*promFamily) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range fams {
		if r.fams[f.name] != nil || isCollectorFamily(f.name) {
			return fmt.Errorf("a metric named %s is already registered", f.name)
		}
	}
	for _, f := range fams {
		r.fams[f.name] = f
	}
	return nil
}

// write writes every family in the text exposition format, sorted by name; a family without samples (a
// labelled family nothing was counted in yet) is left out, as client_golang does.
func (r *promRegistry) write(w io.Writer) error {
	r.mu.Lock()
	snaps := make([]promSnapshot, 0, len(r.fams)+len(runtimeFamilies)+len(processFamilies))
	for _, f := range r.fams {
		snaps = append(snaps, f.snapshot())
	}
	r.mu.Unlock()
	snaps = append(snaps, runtimeSnapshots()...)
	snaps = append(snaps, processSnapshots()...)
	slices.SortFunc(snaps, func(a, b promSnapshot) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	for _, s := range snaps {
		if len(s.samples) == 0 {
			continue
		}
		b.WriteString("# HELP " + s.name + " " + promEscape(s.help, false) + "\n# TYPE " + s.name + " " + string(s.typ) + "\n")
		for _, x := range s.samples {
			b.WriteString(s.name + x.suffix + x.labels + " " + x.value + "\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// ServeHTTP serves /metrics: the text format, gzip-compressed when the client accepts it.
func (r *promRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(req.Header.Get("Accept-Encoding")) {
		_ = r.write(w)
		return
	}
	h.Set("Content-Encoding", "gzip")
	gz := gzip.NewWriter(w)
	_ = r.write(gz)
	_ = gz.Close()
}

// acceptsGzip reports whether an Accept-Encoding header offers gzip with a non-zero q.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// promEscape escapes a help text (label is false: backslash, newline) or a label value (also '"').
func promEscape(s string, label bool) string {
	if !strings.ContainsAny(s, "\\\n\"") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '"' && label:
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func promLabels(pairs [][2]string) string {
	if len(pairs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p[0] + `="` + promEscape(p[1], true) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// promFloat formats a sample value as the exposition format (and client_golang) does.
func promFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// promFamilyDesc names a family of the runtime or process collectors.
type promFamilyDesc struct {
	name, help string
	typ        promType
}

// runtimeFamilies are client_golang's default Go collector (NewGoCollector) families, read from
// runtime.ReadMemStats and debug.ReadGCStats as its MemStats-based collector did; the help texts are its own.
var runtimeFamilies = []promFamilyDesc{
	{"go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", promSummary},
	{"go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", promGauge},
	{"go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", promGauge},
	{"go_goroutines", "Number of goroutines that currently exist.", promGauge},
	{"go_info", "Information about the Go environment.", promGauge},
	{"go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", promGauge},
	{"go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", promCounter},
	{"go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", promGauge},
	{"go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", promCounter},
	{"go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", promGauge},
	{"go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", promGauge},
	{"go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", promGauge},
	{"go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", promGauge},
	{"go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", promGauge},
	{"go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", promGauge},
	{"go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", promGauge},
	{"go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", promGauge},
	{"go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", promCounter},
	{"go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", promGauge},
	{"go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", promGauge},
	{"go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", promGauge},
	{"go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", promGauge},
	{"go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", promGauge},
	{"go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", promGauge},
	{"go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", promGauge},
	{"go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", promGauge},
	{"go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", promGauge},
	{"go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", promGauge},
	{"go_threads", "Number of OS threads created.", promGauge},
}

// processFamilies are client_golang's process collector families (Linux; read from /proc/self in proc_linux.go).
var processFamilies = []promFamilyDesc{
	{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", promCounter},
	{"process_max_fds", "Maximum number of open file descriptors.", promGauge},
	{"process_network_receive_bytes_total", "Number of bytes received by the process over the network.", promCounter},
	{"process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", promCounter},
	{"process_open_fds", "Number of open file descriptors.", promGauge},
	{"process_resident_memory_bytes", "Resident memory size in bytes.", promGauge},
	{"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", promGauge},
	{"process_virtual_memory_bytes", "Virtual memory size in bytes.", promGauge},
	{"process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", promGauge},
}

// isCollectorFamily reports whether name is one of the runtime or process families, which a user gauge (berth
// ctl putmetric) cannot take.
func isCollectorFamily(name string) bool {
	has := func(d promFamilyDesc) bool { return d.name == name }
	return slices.ContainsFunc(runtimeFamilies, has) || slices.ContainsFunc(processFamilies, has)
}

// snapshots pairs descs with values (one sample each, unless a desc has its own samples in extra).
func snapshots(descs []promFamilyDesc, values map[string]float64, extra map[string][]promSample) []promSnapshot {
	out := make([]promSnapshot, 0, len(descs))
	for _, d := range descs {
		s := promSnapshot{name: d.name, help: d.help, typ: d.typ, samples: extra[d.name]}
		if v, ok := values[d.name]; ok {
			s.samples = []promSample{{value: promFloat(v)}}
		}
		out = append(out, s)
	}
	return out
}

func runtimeSnapshots() []promSnapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	threads, _ := runtime.ThreadCreateProfile(nil)
	var lastGC float64
	if !gc.LastGC.IsZero() {
		lastGC = float64(gc.LastGC.UnixNano()) / 1e9
	}
	values := map[string]float64{
		"go_gc_gogc_percent":               float64(gcPercent()),
		"go_gc_gomemlimit_bytes":           float64(debug.SetMemoryLimit(-1)), // a negative limit only reads it
		"go_goroutines":                    float64(runtime.NumGoroutine()),
		"go_memstats_alloc_bytes":          float64(ms.HeapAlloc),
		"go_memstats_alloc_bytes_total":    float64(ms.TotalAlloc),
		"go_memstats_buck_hash_sys_bytes":  float64(ms.BuckHashSys),
		"go_memstats_frees_total":          float64(ms.Frees),
		"go_memstats_gc_sys_bytes":         float64(ms.GCSys),
		"go_memstats_heap_alloc_bytes":     float64(ms.HeapAlloc),
		"go_memstats_heap_idle_bytes":      float64(ms.HeapIdle),
		"go_memstats_heap_inuse_bytes":     float64(ms.HeapInuse),
		"go_memstats_heap_objects":         float64(ms.HeapObjects),
		"go_memstats_heap_released_bytes":  float64(ms.HeapReleased),
		"go_memstats_heap_sys_bytes":       float64(ms.HeapSys),
		"go_memstats_last_gc_time_seconds": lastGC,
		"go_memstats_mallocs_total":        float64(ms.Mallocs),
		"go_memstats_mcache_inuse_bytes":   float64(ms.MCacheInuse),
		"go_memstats_mcache_sys_bytes":     float64(ms.MCacheSys),
		"go_memstats_mspan_inuse_bytes":    float64(ms.MSpanInuse),
		"go_memstats_mspan_sys_bytes":      float64(ms.MSpanSys),
		"go_memstats_next_gc_bytes":        float64(ms.NextGC),
		"go_memstats_other_sys_bytes":      float64(ms.OtherSys),
		"go_memstats_stack_inuse_bytes":    float64(ms.StackInuse),
		"go_memstats_stack_sys_bytes":      float64(ms.StackSys),
		"go_memstats_sys_bytes":            float64(ms.Sys),
		"go_sched_gomaxprocs_threads":      float64(runtime.GOMAXPROCS(0)),
		"go_threads":                       float64(threads),
	}
	pauses := []promSample{}
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		pauses = append(pauses, promSample{labels: `{quantile="` + q + `"}`, value: promFloat(gc.PauseQuantiles[i].Seconds())})
	}
	pauses = append(pauses, promSample{suffix: "_sum", value: promFloat(gc.PauseTotal.Seconds())},
		promSample{suffix: "_count", value: strconv.FormatInt(gc.NumGC, 10)})
	extra := map[string][]promSample{
		"go_gc_duration_seconds": pauses,
		"go_info":                {{labels: `{version="` + promEscape(runtime.Version(), true) + `"}`, value: "1"}},
	}
	return snapshots(runtimeFamilies, values, extra)
}

// gcPercent is the GOGC setting as the runtime reads it at start ("off" is -1, default 100); berth never
// changes it afterwards. (runtime/metrics has it too, at the price of that package's init on every start.)
func gcPercent() int {
	v := os.Getenv("GOGC")
	if v == "off" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 32)
	switch {
	case err != nil:
		return 100
	case n < 0:
		return -1
	}
	return int(n)
}
