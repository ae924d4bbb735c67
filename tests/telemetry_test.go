package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berth-dev/berth/tests/harness"
)

// putParameter stores an SSM SecureString in moto with a plain JSON call (moto does not check signatures).
func putParameter(t *testing.T, m *harness.Moto, name, value string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true})
	req, _ := http.NewRequest("POST", m.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.PutParameter")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("moto PutParameter: %s\n%s", resp.Status, b)
	}
}

// secretValue is resolved by berth from moto; it makes berth's output go through the redacting pipe path
// (without a value to redact, raw output without prefix is handed the file descriptors directly).
const secretValue = "pipe-path-secret-9f3a"

func TestOutputByteIdentical(t *testing.T) {
	app := harness.TestApp(t)
	moto := harness.StartMoto(t)
	putParameter(t, moto, "/berth/e2e/token", secretValue)
	env := append(moto.Env(), "E2E_TOKEN=ssm:/berth/e2e/token")
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))

	// 1 MiB single line, no trailing newline
	oneLine := make([]byte, 1<<20)
	for i := range oneLine {
		oneLine[i] = byte('a' + rng.Intn(26))
	}
	// binary-ish: every byte value, invalid UTF-8, NULs, \r, lone newlines
	binary := make([]byte, 256<<10)
	rng.Read(binary)
	for i := 0; i < 256; i++ {
		binary[i] = byte(i)
	}
	// 100k short lines
	var lines bytes.Buffer
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	// 3 MiB of lines ending in a partial one, written right before exit 7
	var last bytes.Buffer
	for last.Len() < 3<<20 {
		fmt.Fprintf(&last, "%d the quick brown fox jumps over the lazy dog\n", last.Len())
	}
	last.WriteString("final partial line")

	cases := []struct {
		name   string
		stdout []byte
		stderr []byte
		code   int
	}{
		{"1MiB line without newline", oneLine, nil, 0},
		{"binary bytes", binary, binary, 0},
		{"100k short lines", lines.Bytes(), nil, 0},
		{"written just before exit", last.Bytes(), last.Bytes()[:1<<20], 7},
	}
	for _, c := range cases {
		for _, m := range modes {
			t.Run(c.name+"/"+m.name, func(t *testing.T) {
				args := []string{"-control-socket", "off", "-log-level", "error", "--", app, "-env", "E2E_TOKEN", "-code", strconv.Itoa(c.code)}
				if c.stdout != nil {
					args = append(args, "-cat", writeFile(t, dir, "out", string(c.stdout)))
				}
				if c.stderr != nil {
					args = append(args, "-cat-err", writeFile(t, dir, "err", string(c.stderr)))
				}
				b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Env: env, Args: args})
				if have := b.Wait(60 * time.Second); have != c.code {
					t.Fatalf("want exit %d, have %d\n%.2000s", c.code, have, b.Stderr.String())
				}
				// the child's first line proves the redacting pipe path is in use
				want := append([]byte("E2E_TOKEN=[REDACTED] set=true\n"), c.stdout...)
				if have := []byte(b.Stdout.String()); !bytes.Equal(have, want) {
					t.Fatalf("stdout differs: %s", firstDiff(have, want))
				}
				if have := []byte(b.Stderr.String()); !bytes.Equal(have, c.stderr) {
					t.Fatalf("stderr differs: %s", firstDiff(have, c.stderr))
				}
			})
		}
	}

	t.Run("interleaved stdout and stderr", func(t *testing.T) {
		const n = 20000
		b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Env: env, Args: []string{"-control-socket", "off",
			"-log-level", "error", "--", app, "-env", "E2E_TOKEN", "-interleave", strconv.Itoa(n)}})
		if have := b.Wait(60 * time.Second); have != 0 {
			t.Fatalf("want exit 0, have %d\n%.2000s", have, b.Stderr.String())
		}
		var wantOut, wantErr strings.Builder
		wantOut.WriteString("E2E_TOKEN=[REDACTED] set=true\n")
		for i := 0; i < n; i++ {
			if i%2 == 0 {
				fmt.Fprintf(&wantOut, "out %d\n", i)
			} else {
				fmt.Fprintf(&wantErr, "err %d\n", i)
			}
		}
		if have := b.Stdout.String(); have != wantOut.String() {
			t.Fatalf("stdout differs: %s", firstDiff([]byte(have), []byte(wantOut.String())))
		}
		if have := b.Stderr.String(); have != wantErr.String() {
			t.Fatalf("stderr differs: %s", firstDiff([]byte(have), []byte(wantErr.String())))
		}
	})

	t.Run("secret value redacted", func(t *testing.T) {
		b := harness.RunBerth(t, harness.BerthOpts{Env: env, Args: []string{"-control-socket", "off", "-log-level", "error",
			"--", "/bin/sh", "-c", `echo "token=$E2E_TOKEN."; echo "x${E2E_TOKEN}y" >&2`}})
		if have := b.Wait(60 * time.Second); have != 0 {
			t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
		}
		if b.Stdout.String() != "token=[REDACTED].\n" || b.Stderr.String() != "x[REDACTED]y\n" {
			t.Fatalf("want the value redacted on both streams, have %q and %q", b.Stdout.String(), b.Stderr.String())
		}
	})
}

// firstDiff describes where two byte slices first differ.
func firstDiff(have, want []byte) string {
	i := 0
	for i < len(have) && i < len(want) && have[i] == want[i] {
		i++
	}
	clip := func(b []byte) []byte {
		if i+40 < len(b) {
			return b[i:min(i+40, len(b))]
		}
		return b[i:]
	}
	return fmt.Sprintf("lengths have %d want %d; first difference at byte %d: have %q want %q", len(have), len(want), i, clip(have), clip(want))
}

type jsonLine struct {
	Time    string `json:"timestamp"`
	Level   string `json:"level"`
	Job     string `json:"job"`
	Stream  string `json:"stream"`
	Message string `json:"message"`
}

func TestOutputJSON(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	bin := make([]byte, 4096)
	rand.New(rand.NewSource(2)).Read(bin)
	bin[len(bin)-1] = '\n' // testapp writes -cat before -interleave
	binFile := writeFile(t, dir, "bin", string(bin))
	cfg := writeFile(t, dir, "json.hcl", `
logs { format = "json" }
main {
  command = `+hclList(app, "-interleave", "200", "-cat", binFile)+`
  after   = ["side"] # else a fast main can end berth before side has printed
}
job "side" {
  type    = "oneshot"
  command = `+hclList(app, "-say", `quote " backslash \ tab	end`)+`
}
`)
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"run", "-control-socket", "off",
		"-log-format", "json", "-config", cfg}})
	if have := b.Wait(30 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	count := map[string]int{}
	var outSeq []string
	check := func(stream, text string) {
		for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			var j jsonLine
			if err := json.Unmarshal([]byte(line), &j); err != nil {
				t.Fatalf("%s line %d is not JSON: %v\n%q", stream, i+1, err, line)
			}
			var own map[string]any
			_ = json.Unmarshal([]byte(line), &own)
			if own["logger"] != nil {
				// berth's own log line (-log-format json)
				if stream != "stderr" || own["level"] == nil || own["message"] == nil {
					t.Fatalf("%s line %d: a berth log object in the wrong place: %q", stream, i+1, line)
				}
				count["berth"]++
				continue
			}
			if j.Job == "" || len(own) != 5 {
				t.Fatalf("%s line %d is not {timestamp, level, job, stream, message}: %q", stream, i+1, line)
			}
			if want := map[string]string{"stdout": "info", "stderr": "error"}[stream]; j.Level != want {
				t.Fatalf("%s line %d: level %q, want %q: %q", stream, i+1, j.Level, want, line)
			}
			if j.Stream != stream {
				t.Fatalf("%s line %d says stream %q: %q", stream, i+1, j.Stream, line)
			}
			if _, err := time.Parse(time.RFC3339Nano, j.Time); err != nil {
				t.Fatalf("%s line %d: bad time %q", stream, i+1, j.Time)
			}
			count[j.Job+"/"+stream]++
			if j.Job == "main" && stream == "stdout" && strings.HasPrefix(j.Message, "out ") {
				outSeq = append(outSeq, j.Message)
			}
			if j.Job == "side" && j.Message != `quote " backslash \ tab	end` {
				t.Errorf("side's message did not survive JSON: %q", j.Message)
			}
		}
	}
	check("stdout", b.Stdout.String())
	check("stderr", b.Stderr.String())
	if count["main/stderr"] != 100 || count["side/stdout"] != 1 || count["berth"] == 0 {
		t.Errorf("unexpected line counts: %v", count)
	}
	for i, m := range outSeq {
		if m != "out "+strconv.Itoa(2*i) {
			t.Fatalf("stdout line %d out of order: %q\n%.600s", i, m, b.Stdout.String())
		}
	}
	if len(outSeq) != 100 {
		t.Errorf("want 100 out lines, have %d", len(outSeq))
	}
}

func TestOwnLogJSON(t *testing.T) {
	app := harness.TestApp(t)
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"-control-socket", "off", "-log-format", "json",
		"-log-level", "debug", "--", app, "-code", "3"}})
	if have := b.Wait(20 * time.Second); have != 3 {
		t.Fatalf("want exit 3, have %d\n%s", have, b.Stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(b.Stderr.String()), "\n")
	for _, l := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatalf("berth log line is not JSON: %q", l)
		}
		if obj["message"] == nil || obj["level"] == nil || obj["timestamp"] == nil || obj["logger"] == nil {
			t.Fatalf("log object lacks message/level/timestamp/logger: %q", l)
		}
	}
	if !strings.Contains(b.Stderr.String(), `"main command exited"`) {
		t.Fatalf("want the exit logged:\n%s", b.Stderr.String())
	}
}

// statsd looks metrics up in what a real DogStatsD listener received.
type statsd struct{ *harness.Statsd }

// find returns the first metric line named name whose tags include every tag.
func (s statsd) find(name string, tags ...string) string {
next:
	for _, m := range s.Lines() {
		if !strings.HasPrefix(m, name+":") {
			continue
		}
		_, tagPart, _ := strings.Cut(m, "|#")
		have := map[string]bool{}
		for _, tg := range strings.Split(tagPart, ",") {
			have[tg] = true
		}
		for _, tg := range tags {
			if !have[tg] {
				continue next
			}
		}
		return m
	}
	return ""
}

func (s statsd) all() string { return strings.Join(s.Lines(), "\n") }

func listenStatsd(t *testing.T, network, addr string) (statsd, net.PacketConn) {
	t.Helper()
	s := harness.ListenStatsd(t, network, addr)
	return statsd{s}, s.Conn
}

func TestDogStatsD(t *testing.T) {
	app := harness.TestApp(t)
	meta := harness.ServeECSMetadata(t)
	udp, udpConn := listenStatsd(t, "udp", "127.0.0.1:0")
	sockDir, err := os.MkdirTemp("", "dsd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	unixgram, _ := listenStatsd(t, "unixgram", filepath.Join(sockDir, "dsd.socket"))
	port := udpConn.LocalAddr().(*net.UDPAddr).Port

	for _, tc := range []struct {
		name string
		env  []string
		sink statsd
	}{
		{"udp", []string{"DD_AGENT_HOST=127.0.0.1", "DD_DOGSTATSD_PORT=" + strconv.Itoa(port)}, udp},
		{"unix socket", []string{"DD_DOGSTATSD_URL=unix://" + filepath.Join(sockDir, "dsd.socket")}, unixgram},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			stamps := filepath.Join(dir, "flaky")
			cfg := writeFile(t, dir, "dd.hcl", `
main { command = `+hclList(app, "-exit-on", "TERM:0")+` }
job "flaky" {
  type    = "service"
  command = `+hclList(app, "-stamp", stamps, "-code", "2")+`
}
`)
			env := append(tc.env, "DD_ENV=staging", "DD_SERVICE=berth-e2e", "DD_VERSION=1.2.3",
				"DD_TAGS=team:infra", "ECS_CONTAINER_METADATA_URI_V4="+meta)
			b := harness.RunBerth(t, harness.BerthOpts{Env: env, Args: []string{"run", "-control-socket", "off", "-config", cfg}})
			waitLines(t, stamps, 2, 20*time.Second) // started, crashed, restarted
			b.Signal(syscall.SIGTERM)
			if have := b.Wait(30 * time.Second); have != 0 {
				t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
			}
			global := []string{"env:staging", "service:berth-e2e", "version:1.2.3", "team:infra",
				"ecs_cluster:prod", "task_family:app", "task_version:42", "container_name:app"}
			deadline := time.Now().Add(5 * time.Second) // flushed on shutdown; datagrams may trail
			for _, want := range []struct {
				name string
				tags []string
			}{
				{"berth.process.starts", []string{"job:flaky"}},
				{"berth.process.starts", []string{"job:main"}},
				{"berth.process.exits", []string{"job:flaky", "exit_code:2"}},
				{"berth.process.restarts", []string{"job:flaky"}},
				{"berth.process.exits", []string{"job:main", "exit_code:0"}},
			} {
				if !harness.Within(time.Until(deadline), func() bool { return tc.sink.find(want.name, append(want.tags, global...)...) != "" }) {
					t.Fatalf("no %s with tags %v; received:\n%s", want.name, append(want.tags, global...), tc.sink.all())
				}
			}
			// the count of starts of flaky is the number of runs
			ts, _ := readStamps(t, stamps)
			var starts int
			for _, line := range strings.Split(tc.sink.all(), "\n") {
				if strings.HasPrefix(line, "berth.process.starts:") && strings.Contains(line, "job:flaky") {
					v, _, _ := strings.Cut(strings.TrimPrefix(line, "berth.process.starts:"), "|")
					n, _ := strconv.Atoi(v)
					starts += n
				}
			}
			if starts != len(ts) {
				t.Errorf("berth.process.starts for flaky sums to %d, the job ran %d times", starts, len(ts))
			}
		})
	}
}

func TestPrometheus(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	sock := sockPath(t)
	stamps := filepath.Join(dir, "flaky")
	cfg := writeFile(t, dir, "prom.hcl", `
job "flaky" {
  type    = "service"
  command = `+hclList(app, "-stamp", stamps, "-code", "2")+`
}
`)
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"run", "-control-socket", sock, "-config", cfg, "-prometheus", addr}})
	waitSocket(t, b, sock)
	waitLines(t, stamps, 2, 20*time.Second)
	if code, _, stderr := ctl(t, sock, "putmetric", "queue.depth=3"); code != 0 {
		t.Fatalf("putmetric: exit %d\n%s", code, stderr)
	}
	if code, _, _ := ctl(t, sock, "putmetric", "berth.uptime=3"); code == 0 {
		t.Errorf("putmetric of a reserved berth.* name succeeded")
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
		return 0, false
	}
	ts, _ := readStamps(t, stamps)
	starts, ok := value("berth_process_starts", map[string]string{"job": "flaky"})
	if !ok || starts < 2 {
		t.Errorf("berth_process_starts{job=flaky} = %v (present %v), the job ran %d times", starts, ok, len(ts))
	}
	if v, ok := value("berth_process_exits", map[string]string{"job": "flaky", "exit_code": "2"}); !ok || v < 1 {
		t.Errorf("berth_process_exits{job=flaky,exit_code=2} = %v (present %v)", v, ok)
	}
	if v, ok := value("queue_depth", nil); !ok || v != 3 {
		t.Errorf("putmetric queue.depth=3: have %v (present %v)", v, ok)
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Errorf("no Go runtime metrics")
	}
	if t.Failed() {
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		t.Logf("families: %v", names)
	}

	// /status is the same document as ctl status
	resp2, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if st := parseStatus(t, string(body)); len(st.Processes) != 1 || st.Processes[0].Name != "flaky" {
		t.Errorf("/status: %s", body)
	}
	b.Signal(syscall.SIGTERM)
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
}
