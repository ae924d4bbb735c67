package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
)

// keysOf returns the keys of the JSON object in line, in the order written, and the object.
func keysOf(t *testing.T, line string) ([]string, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		keys = append(keys, tok.(string))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	return keys, obj
}

var testTask = &ecsmeta.Task{
	Cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", Family: "app", Revision: "42",
	TaskARN: "arn:aws:ecs:us-east-1:111122223333:task/prod/cd189a93", ContainerName: "web",
}

func TestOwnLogSchema(t *testing.T) {
	var out bytes.Buffer
	fields := &LogFields{}
	log, err := NewLogger(LogConfig{Format: "json", Output: &out, Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	log.Named("consul").Warn(`check <failing> "x"`, "service", "web", "status", "critical", "error", errors.New("refused"), "job", "w", "n", 3)
	fields.SetECS(testTask)
	log.Info("exited", "job", "main", "code", 0)

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, have %q", out.String())
	}
	keys, obj := keysOf(t, lines[0])
	want := []string{"timestamp", "level", "logger", "message", "arg_service", "arg_status", "error", "job", "n"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys: want %v, have %v\n%s", want, keys, lines[0])
	}
	ts, _ := obj["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q: want RFC 3339 UTC: %v", ts, err)
	}
	if obj["level"] != "warn" || obj["logger"] != "berth.consul" || obj["message"] != `check <failing> "x"` ||
		obj["arg_status"] != "critical" || obj["error"] != "refused" || obj["n"] != 3.0 {
		t.Errorf("values: %s", lines[0])
	}
	if strings.Contains(lines[0], `\u003c`) {
		t.Errorf("HTML-escaped: %s", lines[0])
	}

	keys, obj = keysOf(t, lines[1])
	want = []string{"timestamp", "level", "logger", "message", "code", "job",
		"ecs_cluster", "ecs_task_arn", "ecs_family", "ecs_revision", "ecs_container_name"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys: want %v, have %v\n%s", want, keys, lines[1])
	}
	if obj["ecs_cluster"] != "prod" || obj["ecs_task_arn"] != testTask.TaskARN || obj["ecs_family"] != "app" ||
		obj["ecs_revision"] != "42" || obj["ecs_container_name"] != "web" {
		t.Errorf("ECS fields: %s", lines[1])
	}
}

func TestOwnLogTextUnchanged(t *testing.T) {
	var out bytes.Buffer
	fields := &LogFields{}
	fields.SetECS(testTask)
	log, err := NewLogger(LogConfig{Output: &out, Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	log.Named("consul").Warn("check failing", "status", "critical")
	have := out.String()
	if !strings.Contains(have, "[WARN]  berth.consul: check failing: status=critical\n") || strings.Contains(have, "ecs") {
		t.Fatalf("text line: %q", have)
	}
}

func TestStreamJSONSchema(t *testing.T) {
	fields := &LogFields{}
	s, out, errb := newTestStreamer(t, StreamConfig{Format: "json", Fields: fields})
	if err := pipeStream(t, s, "main", "stdout", []byte("before\n"), 0); err != nil {
		t.Fatal(err)
	}
	fields.SetECS(testTask)
	if err := pipeStream(t, s, "main", "stdout", []byte("after\n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := pipeStream(t, s, "side", "stderr", []byte("oops\n"), 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, have %q", out.String())
	}
	keys, obj := keysOf(t, lines[0])
	if want := []string{"timestamp", "level", "job", "stream", "message"}; !slices.Equal(keys, want) {
		t.Fatalf("keys: want %v, have %v\n%s", want, keys, lines[0])
	}
	if obj["level"] != "info" || obj["job"] != "main" || obj["stream"] != "stdout" || obj["message"] != "before" {
		t.Errorf("values: %s", lines[0])
	}
	keys, obj = keysOf(t, lines[1])
	want := []string{"timestamp", "level", "job", "stream", "message",
		"ecs_cluster", "ecs_task_arn", "ecs_family", "ecs_revision", "ecs_container_name"}
	if !slices.Equal(keys, want) || obj["ecs_cluster"] != "prod" || obj["message"] != "after" {
		t.Fatalf("keys: want %v, have %v\n%s", want, keys, lines[1])
	}
	_, obj = keysOf(t, strings.TrimSuffix(errb.String(), "\n"))
	if obj["level"] != "error" || obj["stream"] != "stderr" {
		t.Errorf("stderr line: %s", errb.String())
	}
}

// BenchmarkOwnLogJSON is the cost of the re-encoding of berth's own JSON lines: hclog's JSON as is ("hclog")
// against the schema ("schema"), one line with three fields each.
func BenchmarkOwnLogJSON(b *testing.B) {
	err := errors.New("connection refused")
	for _, bc := range []struct {
		name string
		log  func() hclog.Logger
	}{
		{"hclog", func() hclog.Logger {
			return hclog.New(&hclog.LoggerOptions{Name: "berth", Output: io.Discard, JSONFormat: true})
		}},
		{"schema", func() hclog.Logger {
			fields := &LogFields{}
			fields.SetECS(testTask)
			l, _ := NewLogger(LogConfig{Format: "json", Output: io.Discard, Fields: fields})
			return l
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			log := bc.log().Named("consul")
			b.ReportAllocs()
			for range b.N {
				log.Warn("registration failed, retrying", "service", "web", "attempt", 3, "error", err)
			}
		})
	}
}
