package main

// The JSON log schema as documented (README "Logs", docs/telemetry.md, docs/config.md's logs block) against
// the lines berth's own logger and the process-output streamer really write, built as `berth run` builds them
// (run.go: telemetry.NewLogger and telemetry.NewStreamer sharing one LogFields, the ECS task's fields set from
// the metadata endpoint), so that an example line, a field table or a key list cannot drift from the code.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
	"github.com/berth-dev/berth/telemetry"
	"github.com/berth-dev/berth/tests/harness"
)

// jsonLine is one JSON object of a log line (harness.ParseJSONLine).
type jsonLine = harness.JSONLine

// docLogLine is an example log line of a page: a line that is a JSON object with a "message".
type docLogLine struct {
	where string // page:line
	line  jsonLine
}

func docLogLines(t *testing.T, page string) []docLogLine {
	t.Helper()
	var out []docLogLine
	for i, s := range strings.Split(readDoc(t, page), "\n") {
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, "{\"") {
			continue
		}
		l, ok := harness.ParseJSONLine(s)
		if !ok && strings.Contains(s, `"message"`) {
			t.Errorf("%s:%d: an example log line that is not one JSON object: %s", page, i+1, s)
		}
		if !ok {
			continue
		}
		if _, ok := l.Obj["message"]; ok {
			out = append(out, docLogLine{where: page + ":" + strconv.Itoa(i+1), line: l})
		} else if _, ok := l.Obj["time"]; ok {
			t.Errorf("%s:%d: a log line without \"message\" (the old schema?): %s", page, i+1, s)
		}
	}
	return out
}

// logEmitter writes lines the way `berth run` does, to buffers.
type logEmitter struct {
	t   *testing.T
	ecs *ecsmeta.Task // the fixture's task (testdata/ecs-metadata-v4), fetched through the metadata client
}

func newLogEmitter(t *testing.T) *logEmitter {
	t.Helper()
	dir := filepath.Join(repoRoot, "testdata/ecs-metadata-v4")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := map[string]string{"/": "container.json", "/task": "task.json"}[r.URL.Path]
		if name == "" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, name))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task, err := ecsmeta.Client{URI: srv.URL + "/"}.Fetch(ctx)
	if err != nil || task == nil {
		t.Fatalf("ECS metadata fixture: %v", err)
	}
	return &logEmitter{t: t, ecs: task}
}

// fields are the LogFields of one berth: the ECS task's when onECS.
func (e *logEmitter) fields(onECS bool) *telemetry.LogFields {
	f := &telemetry.LogFields{}
	if onECS {
		f.SetECS(e.ecs)
	}
	return f
}

// berthLine is what berth's logger named logger ("berth" or "berth.NAME") writes for one line at level with
// the key-value args.
func (e *logEmitter) berthLine(onECS bool, logger, level, message string, args ...any) jsonLine {
	e.t.Helper()
	var out bytes.Buffer
	log, err := telemetry.NewLogger(telemetry.LogConfig{Level: "trace", Format: "json", Output: &out, Fields: e.fields(onECS)})
	if err != nil {
		e.t.Fatal(err)
	}
	if name, ok := strings.CutPrefix(logger, "berth."); ok {
		log = log.Named(name)
	} else if logger != "berth" {
		e.t.Fatalf("logger %q is not berth's", logger)
	}
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		e.t.Fatalf("level %q is not one of berth's", level)
	}
	log.Log(lvl, message, args...)
	return e.only(out.String())
}

// processLine is what the streamer writes for one line of job's stream.
func (e *logEmitter) processLine(onECS bool, job, stream, message string) jsonLine {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	s, err := telemetry.NewStreamer(telemetry.StreamConfig{Format: "json", Redact: true, Stdout: &stdout, Stderr: &stderr,
		Fields: e.fields(onECS)}, hclog.NewNullLogger())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Stream(job, stream, strings.NewReader(message+"\n")); err != nil {
		e.t.Fatal(err)
	}
	return e.only(stdout.String() + stderr.String())
}

func (e *logEmitter) only(out string) jsonLine {
	e.t.Helper()
	l, ok := harness.ParseJSONLine(strings.TrimSuffix(out, "\n"))
	if !ok || strings.Count(out, "\n") != 1 {
		e.t.Fatalf("not one JSON line: %q", out)
	}
	return l
}

var ecsLogKeys = []string{"ecs_cluster", "ecs_task_arn", "ecs_family", "ecs_revision", "ecs_container_name"}

// emitted is the line berth writes for the documented line d: the same kind (a process line has "stream"),
// logger, level, job, stream, message and fields, with the ECS fields when d has any.
func (e *logEmitter) emitted(d jsonLine) jsonLine {
	e.t.Helper()
	str := func(k string) string { s, _ := d.Obj[k].(string); return s }
	_, onECS := d.Obj["ecs_cluster"]
	if _, ok := d.Obj["stream"]; ok {
		return e.processLine(onECS, str("job"), str("stream"), str("message"))
	}
	var args []any
	for _, k := range d.Keys {
		switch {
		case slices.Contains([]string{"timestamp", "level", "logger", "message"}, k), slices.Contains(ecsLogKeys, k):
		default:
			args = append(args, k, d.Obj[k])
		}
	}
	return e.berthLine(onECS, str("logger"), str("level"), str("message"), args...)
}

// TestDocsLogSchema: every example JSON log line of README.md and docs/ has exactly the keys, in the order,
// and the values (but the time) that berth writes for it; the README's field table names every key of both
// kinds of line and no other; docs/config.md's logs.format row lists the process line's keys.
func TestDocsLogSchema(t *testing.T) {
	e := newLogEmitter(t)
	kinds := map[string]int{}
	for _, page := range []string{"README.md", "docs/telemetry.md", "docs/config.md", "docs/cli.md", "docs/secrets.md"} {
		for _, d := range docLogLines(t, page) {
			have := e.emitted(d.line)
			kind := "berth"
			if _, ok := d.line.Obj["stream"]; ok {
				kind = "process"
			}
			kinds[kind+" "+page]++
			if !slices.Equal(d.line.Keys, have.Keys) {
				t.Errorf("%s: a %s line documented with keys\n  %v\nberth writes\n  %v", d.where, kind, d.line.Keys, have.Keys)
				continue
			}
			for _, k := range d.line.Keys {
				dv, hv := d.line.Obj[k], have.Obj[k]
				if k == "timestamp" {
					ts, _ := dv.(string)
					if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
						t.Errorf("%s: timestamp %q is not RFC 3339 in UTC as berth writes it (%v)", d.where, ts, hv)
					}
					continue
				}
				if !jsonEqual(dv, hv) {
					t.Errorf("%s: %s is %v in the docs, berth writes %v", d.where, k, dv, hv)
				}
			}
		}
	}
	for _, want := range []string{"berth README.md", "process README.md", "process docs/telemetry.md"} {
		if kinds[want] == 0 {
			t.Errorf("no example %s line; have %v", want, kinds)
		}
	}

	// The field table of README "Logs": its first cells name every key of both kinds of line.
	berthKeys := e.berthLine(true, "berth.supervisor", "info", "m").Keys
	procKeys := e.processLine(true, "main", "stdout", "m").Keys
	all := map[string]bool{}
	for _, k := range append(slices.Clone(berthKeys), procKeys...) {
		all[k] = true
	}
	var logs string
	for _, s := range sections(readDoc(t, "README.md")) {
		if s.heading == "Logs" {
			logs = s.body
		}
	}
	documented := map[string]bool{}
	for _, row := range tableRows(logs) {
		for _, m := range regexp.MustCompile("`([a-z_@]+)`").FindAllStringSubmatch(firstCell(row), -1) {
			documented[m[1]] = true
		}
	}
	delete(documented, "field")
	for k := range all {
		if !documented[k] {
			t.Errorf("README Logs: the field table has no row for %q, which berth writes", k)
		}
	}
	for k := range documented {
		if !all[k] {
			t.Errorf("README Logs: the field table documents %q, which berth does not write (it writes %v)", k, slices.Sorted(maps.Keys(all)))
		}
	}

	// docs/config.md, logs.format: `{"timestamp", "level", ...}` is the process line's keys off ECS.
	var row string
	for _, s := range sections(readDoc(t, "docs/config.md")) {
		if strings.HasPrefix(s.heading, "`logs`") {
			for _, r := range tableRows(s.body) {
				if firstCell(r) == "`format`" {
					row = r
				}
			}
		}
	}
	m := regexp.MustCompile("`(\\{\"[^`]*\\})`").FindStringSubmatch(row)
	if m == nil {
		t.Fatalf("docs/config.md: the logs block's format row lists no `{\"key\", ...}`: %q", row)
	}
	var listed []string
	for _, k := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(m[1], -1) {
		listed = append(listed, k[1])
	}
	if off := e.processLine(false, "main", "stdout", "m").Keys; !slices.Equal(listed, off) {
		t.Errorf("docs/config.md: logs.format json lists %v, a process line has %v", listed, off)
	}
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
