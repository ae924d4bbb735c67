package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClientRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		backend   *fakeBackend
		call      func(context.Context, *Client) (any, error)
		want      any
		wantErr   string
		wantCalls []string
	}{
		{
			name: "status",
			call: func(ctx context.Context, c *Client) (any, error) {
				doc, err := c.Status(ctx)
				return string(doc), err
			},
			want:      `{"processes":[{"name":"main","pid":42,"restarts":0}]}`,
			wantCalls: []string{"status"},
		},
		{
			name:    "health ok",
			backend: &fakeBackend{healthy: true, detail: HealthReport{Healthy: true, Checks: []CheckResult{{Name: "job:proxy", Status: CheckPassing}}}},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, detail, err := c.Health(ctx)
				return []any{ok, string(detail)}, err
			},
			want:      []any{true, `{"healthy":true,"checks":[{"name":"job:proxy","status":"passing"}]}`},
			wantCalls: []string{"health"},
		},
		{
			name:    "health failing",
			backend: &fakeBackend{healthy: false, detail: map[string]string{"why": "db"}},
			call: func(ctx context.Context, c *Client) (any, error) {
				ok, detail, err := c.Health(ctx)
				return []any{ok, string(detail)}, err
			},
			want:      []any{false, `{"why":"db"}`},
			wantCalls: []string{"health"},
		},
		{
			name:      "reload",
			call:      func(ctx context.Context, c *Client) (any, error) { return nil, c.Reload(ctx) },
			wantCalls: []string{"reload"},
		},
		{
			name:      "reload rejected",
			backend:   &fakeBackend{reloadErr: &RejectedError{Err: errors.New("berth.hcl:2:3: unknown key")}},
			call:      func(ctx context.Context, c *Client) (any, error) { return nil, c.Reload(ctx) },
			wantErr:   "berth.hcl:2:3: unknown key",
			wantCalls: []string{"reload"},
		},
		{
			name:      "maintenance on",
			call:      func(ctx context.Context, c *Client) (any, error) { return nil, c.Maintenance(ctx, true, "deploy") },
			wantCalls: []string{`maintenance true "deploy"`},
		},
		{
			name:      "maintenance off",
			call:      func(ctx context.Context, c *Client) (any, error) { return nil, c.Maintenance(ctx, false, "") },
			wantCalls: []string{`maintenance false ""`},
		},
		{
			name:      "putenv",
			call:      func(ctx context.Context, c *Client) (any, error) { return nil, c.PutEnv(ctx, "FEATURE_X", "a=b c") },
			wantCalls: []string{"putenv FEATURE_X"},
		},
		{
			name:    "putenv invalid key",
			call:    func(ctx context.Context, c *Client) (any, error) { return nil, c.PutEnv(ctx, "X=Y", "v") },
			wantErr: "invalid environment variable name",
		},
		{
			name: "putmetric",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.PutMetric(ctx, "queue.depth_max", -1.5)
			},
			wantCalls: []string{"putmetric queue.depth_max -1.5"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backend
			if b == nil {
				b = &fakeBackend{}
			}
			c := NewClient(startServer(t, b))
			have, err := tc.call(context.Background(), c)
			if have := errString(err); !strings.Contains(have, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
				t.Fatalf("want error containing %q, have %q", tc.wantErr, have)
			}
			if tc.want != nil && !reflect.DeepEqual(have, tc.want) {
				t.Fatalf("want %#v, have %#v", tc.want, have)
			}
			if have := b.Calls(); !reflect.DeepEqual(have, tc.wantCalls) {
				t.Fatalf("want backend calls %q, have %q", tc.wantCalls, have)
			}
		})
	}
}

func TestClientPutEnvValue(t *testing.T) {
	b := &fakeBackend{}
	c := NewClient(startServer(t, b))
	const value = "line1\nline2 = \"quoted\" ünïcode"
	if err := c.PutEnv(context.Background(), "MULTI", value); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if have := b.env["MULTI"]; have != value {
		t.Fatalf("want %q, have %q", value, have)
	}
}

func TestClientUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	_, err := NewClient(path).Status(context.Background())
	var u *UnreachableError
	if !errors.As(err, &u) {
		t.Fatalf("want *UnreachableError, have %T %v", err, err)
	}
	if want := "cannot reach berth at control socket " + path + ": connect: no such file or directory"; err.Error() != want {
		t.Fatalf("want %q, have %q", want, err.Error())
	}
}

func TestRunCtl(t *testing.T) {
	for _, tc := range []struct {
		name       string
		backend    *fakeBackend
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring; "" means empty
		wantCalls  []string
	}{
		{name: "status", args: []string{"status"}, wantCode: 0,
			wantStdout: "{\n  \"processes\": [\n    {\n      \"name\": \"main\",", wantCalls: []string{"status"}},
		{name: "reload", args: []string{"reload"}, wantCode: 0, wantStdout: "reloaded\n", wantCalls: []string{"reload"}},
		{name: "reload rejected",
			backend:  &fakeBackend{reloadErr: &RejectedError{Err: errors.New("berth.hcl:2:3: unknown key \"x\"\nberth.hcl:9:1: bad duration")}},
			args:     []string{"reload"},
			wantCode: 1,
			wantStderr: "berth: reload rejected, the running configuration is unchanged: " +
				"berth.hcl:2:3: unknown key \"x\"; berth.hcl:9:1: bad duration\n",
			wantCalls: []string{"reload"}},
		{name: "reload failed", backend: &fakeBackend{reloadErr: errors.New("boom")}, args: []string{"reload"},
			wantCode: 1, wantStderr: "berth: reload: boom\n", wantCalls: []string{"reload"}},
		{name: "maintenance on with reason after", args: []string{"maintenance", "on", "-reason", "deploy 42"},
			wantCode: 0, wantStdout: "maintenance on\n", wantCalls: []string{`maintenance true "deploy 42"`}},
		{name: "maintenance off with reason before", args: []string{"-reason=done", "maintenance", "off"},
			wantCode: 0, wantStdout: "maintenance off\n", wantCalls: []string{`maintenance false "done"`}},
		{name: "maintenance failed", backend: &fakeBackend{maintErr: errors.New("consul: 500")},
			args: []string{"maintenance", "on"}, wantCode: 1, wantStderr: "berth: maintenance: consul: 500\n",
			wantCalls: []string{`maintenance true ""`}},
		{name: "putenv", args: []string{"putenv", "TOKEN=a=b"}, wantCode: 0, wantStdout: "set TOKEN\n",
			wantCalls: []string{"putenv TOKEN"}},
		{name: "putenv empty value", args: []string{"putenv", "EMPTY="}, wantCode: 0, wantStdout: "set EMPTY\n",
			wantCalls: []string{"putenv EMPTY"}},
		{name: "putmetric", args: []string{"putmetric", "jobs.done=3"}, wantCode: 0, wantStdout: "recorded jobs.done\n",
			wantCalls: []string{"putmetric jobs.done 3"}},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStdout: "usage: berth ctl"},
		{name: "no command", args: nil, wantCode: 64, wantStderr: "berth: ctl: missing command"},
		{name: "unknown command", args: []string{"stop"}, wantCode: 64, wantStderr: `berth: ctl: unknown command "stop"`},
		{name: "unknown flag", args: []string{"-x", "status"}, wantCode: 64, wantStderr: "flag provided but not defined: -x"},
		{name: "status extra arg", args: []string{"status", "x"}, wantCode: 64, wantStderr: "usage: berth ctl status"},
		{name: "maintenance bad", args: []string{"maintenance", "maybe"}, wantCode: 64, wantStderr: `want on or off, not "maybe"`},
		{name: "maintenance missing", args: []string{"maintenance"}, wantCode: 64, wantStderr: "usage: berth ctl maintenance"},
		{name: "reason elsewhere", args: []string{"reload", "-reason", "x"}, wantCode: 64, wantStderr: "-reason applies only to maintenance"},
		{name: "putenv no equals", args: []string{"putenv", "SECRETVALUE"}, wantCode: 64, wantStderr: `want KEY=VALUE (the argument has no "=")`},
		{name: "putenv bad key", args: []string{"putenv", "9X=1"}, wantCode: 64, wantStderr: "invalid environment variable name"},
		{name: "putmetric bad value", args: []string{"putmetric", "a=NaN"}, wantCode: 64, wantStderr: "not a finite number"},
		{name: "putmetric bad name", args: []string{"putmetric", "a-b=1"}, wantCode: 64, wantStderr: "invalid metric name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backend
			if b == nil {
				b = &fakeBackend{}
			}
			path := startServer(t, b)
			var stdout, stderr bytes.Buffer
			have := RunCtl(context.Background(), path, tc.args, &stdout, &stderr)
			if have != tc.wantCode {
				t.Fatalf("want exit %d, have %d (stdout %q, stderr %q)", tc.wantCode, have, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Fatalf("want stdout containing %q, have %q", tc.wantStdout, stdout.String())
			}
			if (tc.wantStderr == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("want stderr containing %q, have %q", tc.wantStderr, stderr.String())
			}
			if n := strings.Count(stderr.String(), "\n"); n > 1 {
				t.Fatalf("want at most one line on stderr, have %d: %q", n, stderr.String())
			}
			if have := b.Calls(); !reflect.DeepEqual(have, tc.wantCalls) {
				t.Fatalf("want backend calls %q, have %q", tc.wantCalls, have)
			}
		})
	}
}

func TestRunCtlStatusIsJSON(t *testing.T) {
	path := startServer(t, &fakeBackend{})
	var stdout, stderr bytes.Buffer
	if code := RunCtl(context.Background(), "/nonexistent.sock", []string{"-socket", path, "status"}, &stdout, &stderr); code != 0 {
		t.Fatalf("want exit 0, have %d: %s", code, stderr.String())
	}
	var doc map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v: %s", err, stdout.String())
	}
}

func TestRunHealth(t *testing.T) {
	report := func(healthy bool, checks ...CheckResult) HealthReport {
		return HealthReport{Healthy: healthy, Checks: checks}
	}
	for _, tc := range []struct {
		name       string
		backend    *fakeBackend
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "healthy",
			backend:  &fakeBackend{healthy: true, detail: report(true, CheckResult{Name: "service:web:http", Status: CheckPassing})},
			wantCode: 0, wantStdout: "healthy: 1 of 1 checks passing\n"},
		{name: "unhealthy lists failing checks",
			backend: &fakeBackend{healthy: false, detail: report(false,
				CheckResult{Name: "service:web:http", Status: CheckPassing, Output: "HTTP 200"},
				CheckResult{Name: "service:web:tcp", Status: CheckCritical, Output: "dial tcp 127.0.0.1:8080:\nconnection refused"},
				CheckResult{Name: "job:proxy", Status: CheckWarning})},
			wantCode: 1,
			wantStdout: "unhealthy: 1 of 3 checks passing\n" +
				"  critical service:web:tcp: dial tcp 127.0.0.1:8080:; connection refused\n" +
				"  warning job:proxy\n"},
		{name: "other detail shape", backend: &fakeBackend{healthy: false, detail: map[string]string{"main": "exited"}},
			wantCode: 1, wantStdout: "unhealthy: {\"main\":\"exited\"}\n"},
		{name: "no detail", backend: &fakeBackend{healthy: true}, wantCode: 0, wantStdout: "healthy\n"},
		{name: "json", backend: &fakeBackend{healthy: false, detail: report(false)}, args: []string{"-json"},
			wantCode: 1, wantStdout: "{\n  \"healthy\": false,\n  \"checks\": null\n}\n"},
		{name: "extra argument", args: []string{"now"}, wantCode: 64, wantStderr: `berth: health: unexpected argument "now"`},
		{name: "help", args: []string{"-help"}, wantCode: 0, wantStdout: "usage: berth health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backend
			if b == nil {
				b = &fakeBackend{}
			}
			path := startServer(t, b)
			var stdout, stderr bytes.Buffer
			have := RunHealth(context.Background(), path, tc.args, &stdout, &stderr)
			if have != tc.wantCode {
				t.Fatalf("want exit %d, have %d (stdout %q, stderr %q)", tc.wantCode, have, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Fatalf("want stdout containing %q, have %q", tc.wantStdout, stdout.String())
			}
			if (tc.wantStderr == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("want stderr containing %q, have %q", tc.wantStderr, stderr.String())
			}
		})
	}
}

func TestCLIUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	for _, tc := range []struct {
		name string
		run  func(args []string, stdout, stderr *bytes.Buffer) int
		args []string
	}{
		{name: "ctl status", run: ctl(path), args: []string{"status"}},
		{name: "ctl reload", run: ctl(path), args: []string{"reload"}},
		{name: "health", run: health(path), args: nil},
		{name: "health via flag", run: health("/var/run/other.sock"), args: []string{"-socket", path}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if have := tc.run(tc.args, &stdout, &stderr); have != 69 {
				t.Fatalf("want exit 69, have %d", have)
			}
			if want := "cannot reach berth at control socket " + path; !strings.Contains(stderr.String(), want) ||
				!strings.HasPrefix(stderr.String(), "berth: ") || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("want one line naming %s, have %q", path, stderr.String())
			}
		})
	}
}

func ctl(socket string) func([]string, *bytes.Buffer, *bytes.Buffer) int {
	return func(args []string, stdout, stderr *bytes.Buffer) int {
		return RunCtl(context.Background(), socket, args, stdout, stderr)
	}
}

func health(socket string) func([]string, *bytes.Buffer, *bytes.Buffer) int {
	return func(args []string, stdout, stderr *bytes.Buffer) int {
		return RunHealth(context.Background(), socket, args, stdout, stderr)
	}
}

// A berth that accepts the request and does not answer in time is not "unreachable, is berth running?": the
// error says it did not answer within the client's timeout, and the CLI adds no misleading hint.
func TestClientNoAnswerInTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slow.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn // accepted, never answered
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	_, _, err = NewClient(path).do(context.Background(), 200*time.Millisecond, http.MethodGet, "/v1/status", nil)
	var u *UnreachableError
	if !errors.As(err, &u) || u.After != 200*time.Millisecond {
		t.Fatalf("want *UnreachableError after 200ms, have %T %v", err, err)
	}
	if want := "berth at control socket " + path + " did not answer within 200ms"; err.Error() != want {
		t.Fatalf("want %q, have %q", want, err.Error())
	}
	var stderr bytes.Buffer
	if code := failErr(&stderr, "maintenance", err); code != 69 || strings.Contains(stderr.String(), "is berth running") {
		t.Fatalf("want exit 69 without the is-berth-running hint, have %d %q", code, stderr.String())
	}
}
