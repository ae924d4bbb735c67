package telemetry

import (
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/ecsmeta"
)

// The JSON log schema, shared by berth's own lines and the process lines (README "Logging"):
//
//	berth:   {"timestamp":…,"level":…,"logger":"berth.consul","message":…, key-value fields…, ECS fields…}
//	process: {"timestamp":…,"level":"info"|"error","job":…,"stream":"stdout"|"stderr","message":…, ECS fields…}
//
// timestamp, level and message are the names Datadog's JSON preprocessing and CloudWatch Logs Insights read
// without a remapper; hclog's "@"-prefixed names are not (Insights reserves @timestamp and @message for its
// own fields). A key-value field of a berth line whose name the schema or Datadog reserves is renamed "arg_"
// + name, so that a check's "status" or a Consul "service" never becomes the line's level or service.
func reservedKey(k string) bool {
	switch k {
	case "timestamp", "level", "logger", "message",
		"status", "severity", "service", "host", "hostname", "source", "date", "trace_id", "ddsource", "ddtags":
		return true
	}
	return false
}

// LogFields are the fields appended to every JSON line, berth's and the processes': the ECS task's, once
// known. The zero value (and nil) adds nothing. Safe for concurrent use.
type LogFields struct {
	suffix atomic.Pointer[[]byte] // `,"ecs_cluster":"prod",…`, pre-encoded
}

// SetECS adds the task's ecs_cluster, ecs_task_arn, ecs_family, ecs_revision and ecs_container_name
// (each only when not empty) to every line written from now on. A nil task changes nothing.
func (f *LogFields) SetECS(t *ecsmeta.Task) {
	if f == nil || t == nil {
		return
	}
	var b []byte
	for _, kv := range [][2]string{
		{"ecs_cluster", t.ClusterName()}, {"ecs_task_arn", t.TaskARN}, {"ecs_family", t.Family},
		{"ecs_revision", t.Revision}, {"ecs_container_name", t.ContainerName},
	} {
		if kv[1] == "" {
			continue
		}
		b = append(b, ',')
		b = appendJSONString(b, []byte(kv[0]))
		b = append(b, ':')
		b = appendJSONString(b, []byte(kv[1]))
	}
	f.suffix.Store(&b)
}

// load returns the encoded fields, each preceded by a comma, or nil.
func (f *LogFields) load() []byte {
	if f == nil {
		return nil
	}
	if p := f.suffix.Load(); p != nil {
		return *p
	}
	return nil
}

// schemaWriter re-encodes the lines of hclog's JSON format into the schema: hclog has no option to name its
// fields, and it encodes a map (keys sorted), so the line is decoded into raw values and written again with
// the fixed fields first. berth writes few lines of its own; BenchmarkOwnLogJSON measures the cost. A write
// that is not one JSON object passes through unchanged.
type schemaWriter struct {
	w      io.Writer
	fields *LogFields

	mu  sync.Mutex
	buf []byte
}

var renamed = [...][2]string{{"@timestamp", "timestamp"}, {"@level", "level"}, {"@module", "logger"}, {"@message", "message"}}

func (s *schemaWriter) Write(p []byte) (int, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil || m == nil {
		return s.w.Write(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := append(s.buf[:0], '{')
	for _, r := range renamed {
		if v, ok := m[r[0]]; ok {
			b = appendField(b, r[1], v)
			delete(m, r[0])
		}
	}
	for k, v := range m {
		if reservedKey(k) {
			delete(m, k)
			m["arg_"+k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendField(b, k, m[k])
	}
	b = append(b, s.fields.load()...)
	b = append(b, '}', '\n')
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendField appends `,"key":value` (no comma after the opening brace).
func appendField(b []byte, key string, v json.RawMessage) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = appendJSONString(b, []byte(key))
	b = append(b, ':')
	return append(b, v...)
}
