package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// logLine is one JSON object of a log line (harness.ParseJSONLine).
type logLine = harness.JSONLine

// jsonLines parses every line of out; a line that is not a JSON object fails the test.
func jsonLines(t *testing.T, what, out string) []logLine {
	t.Helper()
	var lines []logLine
	for i, s := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		l, ok := harness.ParseJSONLine(s)
		if !ok {
			t.Fatalf("%s line %d is not a JSON object: %q\n%s", what, i+1, s, out)
		}
		lines = append(lines, l)
	}
	return lines
}

var ecsKeys = []string{"ecs_cluster", "ecs_task_arn", "ecs_family", "ecs_revision", "ecs_container_name"}

// The values of testdata/ecs-metadata-v4.
var ecsWant = map[string]any{
	"ecs_cluster": "prod", "ecs_task_arn": "arn:aws:ecs:us-east-1:111122223333:task/prod/cd189a933e5849daa93386466019ab50",
	"ecs_family": "app", "ecs_revision": "42", "ecs_container_name": "app",
}

// hasECS reports whether l carries the ECS fields; it fails the test when it carries some of them only, or
// other values than the fixture's.
func hasECS(t *testing.T, l logLine) bool {
	t.Helper()
	n := 0
	for _, k := range ecsKeys {
		if v, ok := l.Obj[k]; ok {
			n++
			if v != ecsWant[k] {
				t.Errorf("%s = %v, want %v: %s", k, v, ecsWant[k], l.Raw)
			}
		}
	}
	if n != 0 && n != len(ecsKeys) {
		t.Errorf("%d of %d ECS fields: %s", n, len(ecsKeys), l.Raw)
	}
	return n == len(ecsKeys)
}

func checkTimestamp(t *testing.T, l logLine) {
	t.Helper()
	ts, _ := l.Obj["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q is not RFC 3339 UTC: %s", ts, l.Raw)
	}
}

// TestLogSchemaOneStream: with -log-format json and logs.format = "json", berth's own lines and a process's
// stderr lines share berth's stderr and one schema; the exact keys of each kind, in order.
func TestLogSchemaOneStream(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	errFile := writeFile(t, dir, "err.txt", "boom <b> & \"q\"\n")
	cfg := writeFile(t, dir, "berth.hcl", `
logs { format = "json" }
main { command = `+hclList(app, "-cat-err", errFile, "-code", "3")+` }
`)
	b := harness.RunBerth(t, harness.BerthOpts{Args: []string{"run", "-control-socket", "off", "-log-format", "json", "-config", cfg}})
	if code := b.Wait(20 * time.Second); code != 3 {
		t.Fatalf("want exit 3, have %d\n%s", code, b.Stderr.String())
	}
	var own, proc *logLine
	for _, l := range jsonLines(t, "stderr", b.Stderr.String()) {
		checkTimestamp(t, l)
		switch {
		case l.Obj["message"] == "main command exited":
			own = &l
		case l.Obj["job"] == "main" && l.Obj["stream"] == "stderr":
			proc = &l
		}
	}
	if own == nil || proc == nil {
		t.Fatalf("want berth's \"main command exited\" and main's stderr line on stderr:\n%s", b.Stderr.String())
	}
	if want := []string{"timestamp", "level", "logger", "message", "code"}; !slices.Equal(own.Keys, want) {
		t.Errorf("berth line keys %v, want %v: %s", own.Keys, want, own.Raw)
	}
	if own.Obj["level"] != "info" || own.Obj["code"] != 3.0 || !strings.HasPrefix(own.Obj["logger"].(string), "berth") {
		t.Errorf("berth line values: %s", own.Raw)
	}
	if want := []string{"timestamp", "level", "job", "stream", "message"}; !slices.Equal(proc.Keys, want) {
		t.Errorf("process line keys %v, want %v: %s", proc.Keys, want, proc.Raw)
	}
	if proc.Obj["level"] != "error" || proc.Obj["message"] != `boom <b> & "q"` {
		t.Errorf("process line values: %s", proc.Raw)
	}
}

// TestLogSchemaECSFields: on ECS (a metadata endpoint serving the recorded task) every JSON line, berth's and
// the processes', gets the task's fields once berth knows them: all five with the task's values, never some.
func TestLogSchemaECSFields(t *testing.T) {
	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	cfg := writeFile(t, dir, "berth.hcl", `
logs { format = "json" }
main { command = ["sh", "-c", `+fmt.Sprintf("%q", "while [ ! -e "+stop+" ]; do echo tick; echo tock >&2; sleep 0.02; done")+`] }
`)
	b := harness.RunBerth(t, harness.BerthOpts{
		Env:  []string{"ECS_CONTAINER_METADATA_URI_V4=" + harness.ServeECSMetadata(t)},
		Args: []string{"run", "-control-socket", "off", "-log-format", "json", "-config", cfg},
	})
	harness.Eventually(t, 20*time.Second, "a process line with the ECS fields", func() bool {
		return strings.Contains(b.Stdout.String(), `"ecs_container_name":"app"}`)
	})
	writeFile(t, dir, "stop", "")
	if code := b.Wait(20 * time.Second); code != 0 {
		t.Fatalf("want exit 0, have %d\n%s", code, b.Stderr.String())
	}
	var ownECS, procECS *logLine
	for _, stream := range []string{"stdout", "stderr"} {
		out := b.Stdout.String()
		if stream == "stderr" {
			out = b.Stderr.String()
		}
		for _, l := range jsonLines(t, stream, out) {
			if hasECS(t, l) {
				switch {
				case l.Obj["logger"] != nil && ownECS == nil:
					ownECS = &l
				case l.Obj["stream"] == stream && procECS == nil:
					procECS = &l
				}
			}
		}
	}
	if ownECS == nil || procECS == nil {
		t.Fatalf("want a berth line and a process line with the ECS fields\nstdout:\n%.2000s\nstderr:\n%s", b.Stdout.String(), b.Stderr.String())
	}
	if want := append([]string{"timestamp", "level", "job", "stream", "message"}, ecsKeys...); !slices.Equal(procECS.Keys, want) {
		t.Errorf("process line keys %v, want %v", procECS.Keys, want)
	}
	if k := ownECS.Keys; len(k) < 4+len(ecsKeys) || !slices.Equal(k[:4], []string{"timestamp", "level", "logger", "message"}) ||
		!slices.Equal(k[len(k)-len(ecsKeys):], ecsKeys) {
		t.Errorf("berth line keys %v: want timestamp, level, logger, message, fields, then %v", k, ecsKeys)
	}
}

// TestLogSchemaECSNeverDelays: a metadata endpoint that never answers does not hold up the main command or
// berth's exit: the lines go without ECS fields, and berth is done before the metadata client's own 2 s
// timeout could have ended the request.
func TestLogSchemaECSNeverDelays(t *testing.T) {
	app := harness.TestApp(t)
	release := make(chan struct{})
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })

	dir := t.TempDir()
	cfg := writeFile(t, dir, "berth.hcl", `
logs { format = "json" }
main { command = `+hclList(app, "-say", "hello")+` }
`)
	start := time.Now()
	b := harness.RunBerth(t, harness.BerthOpts{
		Env:  []string{"ECS_CONTAINER_METADATA_URI_V4=" + srv.URL + "/v4/meta"},
		Args: []string{"run", "-control-socket", "off", "-log-format", "json", "-log-level", "debug", "-config", cfg},
	})
	code := b.Wait(20 * time.Second)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("want exit 0, have %d\n%s", code, b.Stderr.String())
	}
	if took >= 2*time.Second {
		t.Errorf("berth took %s with a metadata endpoint that never answers: something waited for it", took)
	}
	lines := append(jsonLines(t, "stdout", b.Stdout.String()), jsonLines(t, "stderr", b.Stderr.String())...)
	for _, l := range lines {
		if hasECS(t, l) {
			t.Errorf("ECS fields without an answer from the endpoint: %s", l.Raw)
		}
	}
	if !strings.Contains(b.Stdout.String(), `"message":"hello"`) {
		t.Errorf("main's line missing:\n%s", b.Stdout.String())
	}
	t.Logf("berth ran in %s; the metadata endpoint was asked %d time(s) and never answered", took.Round(time.Millisecond), asked.Load())
}

// fakeIMDS is an EC2 instance metadata service on loopback that refuses IMDSv2 (403 on the token PUT, as an
// IMDSv1-only instance or a hop limit of 1 behind a bridge does) and hands out a role's credentials over
// IMDSv1. The AWS SDK then logs "falling back to IMDSv1".
func fakeIMDS(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	})
	mux.HandleFunc("/latest/meta-data/iam/security-credentials/", func(w http.ResponseWriter, r *http.Request) {
		role := strings.TrimPrefix(r.URL.Path, "/latest/meta-data/iam/security-credentials/")
		if role == "" {
			_, _ = w.Write([]byte("berth-test-role"))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "testing",
			"LastUpdated": time.Now().UTC().Format(time.RFC3339), "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAWSSDKLogThroughBerth: the SDK's own warning (IMDSv1 fallback while the credential chain reaches IMDS)
// is a berth line, through berth's logger "berth.secrets.aws" at warn, in text and in JSON; nothing of the
// SDK's own "SDK 2006/01/02 ..." format reaches stderr.
func TestAWSSDKLogThroughBerth(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	arn, _ := a.Secret(t, "logschema/db", "imds-credentials-work")
	// No static credentials: the chain goes to (fake) IMDS.
	env := a.env("", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_EC2_METADATA_DISABLED=",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+fakeIMDS(t), "DB="+arn)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			b := secBerth(t, false, env, "-log-format", format, "--", app, "-env", "DB")
			if code := b.Wait(60 * time.Second); code != 0 {
				t.Fatalf("want exit 0 (the secret fetched with IMDS credentials), have %d\n%s", code, b.Stderr.String())
			}
			if !strings.Contains(b.Stdout.String(), "DB=[REDACTED]") {
				t.Errorf("the child did not get the secret:\n%s", b.Stdout.String())
			}
			stderr := b.Stderr.String()
			var found bool
			for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
				if strings.HasPrefix(line, "SDK ") {
					t.Errorf("an unprefixed SDK line on stderr: %q", line)
				}
				if !strings.Contains(line, "falling back to IMDSv1") {
					continue
				}
				found = true
				switch format {
				case "text":
					if !strings.Contains(line, "[WARN]  berth.secrets.aws: falling back to IMDSv1") {
						t.Errorf("want hclog's text line of berth.secrets.aws at WARN: %q", line)
					}
				case "json":
					l, ok := harness.ParseJSONLine(line)
					if !ok || l.Obj["logger"] != "berth.secrets.aws" || l.Obj["level"] != "warn" ||
						!strings.HasPrefix(l.Obj["message"].(string), "falling back to IMDSv1") {
						t.Errorf("want a schema line of berth.secrets.aws at warn: %q", line)
					}
				}
			}
			if !found {
				t.Errorf("the SDK's IMDSv1 fallback warning is not in berth's log:\n%s", stderr)
			}
			if format == "json" {
				jsonLines(t, "stderr", stderr) // every line, the SDK's included, is a JSON object
			}
		})
	}
}
