package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "custom", cfg: Config{Socket: "/run/b.sock", Mode: 0o660, ShutdownTimeout: time.Second}},
		{name: "too long", cfg: Config{Socket: "/" + strings.Repeat("x", 120)}, wantErr: "-control-socket"},
		{name: "mode bits", cfg: Config{Mode: os.ModeSetuid | 0o600}, wantErr: "only permission bits"},
		{name: "negative timeout", cfg: Config{ShutdownTimeout: -time.Second}, wantErr: "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if have := errString(err); !strings.Contains(have, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
				t.Fatalf("want error containing %q, have %q", tc.wantErr, have)
			}
		})
	}
}

func TestSocketMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		long bool // a path too long for the bind-beside-and-rename step: bound in place
		want os.FileMode
	}{
		{name: "default", mode: 0, want: 0o600},
		{name: "group", mode: 0o660, want: 0o660},
		{name: "long path", mode: 0, long: true, want: 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t)
			if tc.long {
				dir := filepath.Dir(path)
				if pad := maxSocketPath - len(dir) - len("/b.sock") - 2; pad > 0 {
					dir = filepath.Join(dir, strings.Repeat("d", pad))
				}
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				path = filepath.Join(dir, "b.sock")
				if len(path) > maxSocketPath || len(path)+20 <= maxSocketPath {
					t.Fatalf("test path of %d bytes does not exercise the fallback", len(path))
				}
			}
			s, err := New(Config{Socket: path, Mode: tc.mode}, &fakeBackend{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Listen(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if have := fi.Mode(); have.Type() != fs.ModeSocket || have.Perm() != tc.want {
				t.Fatalf("want socket with mode %v, have %v", tc.want, have)
			}
			// No temporary directory is left beside the socket.
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("want only the socket in its directory, have %v", entries)
			}
		})
	}
}

func TestListenExisting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string // "" means Listen succeeds
	}{
		{name: "absent", prepare: func(*testing.T, string) {}},
		{name: "stale socket replaced", prepare: func(t *testing.T, path string) {
			// A socket file whose listener is gone, as a SIGKILLed berth leaves it.
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			_ = ln.Close()
		}},
		{name: "live berth", prepare: func(t *testing.T, path string) {
			s, err := New(Config{Socket: path}, &fakeBackend{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Listen(); err != nil {
				t.Fatal(err)
			}
			runServer(t, s)
		}, wantErr: "another berth is running"},
		{name: "regular file kept", prepare: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "not a socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t)
			tc.prepare(t, path)
			before, _ := os.Lstat(path)
			s, err := New(Config{Socket: path}, &fakeBackend{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Listen()
			t.Cleanup(func() { _ = s.Close() })
			if have := errString(err); !strings.Contains(have, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
				t.Fatalf("want error containing %q, have %q", tc.wantErr, have)
			}
			after, statErr := os.Lstat(path)
			if statErr != nil {
				t.Fatalf("the path must still exist: %v", statErr)
			}
			if err != nil && !os.SameFile(before, after) {
				t.Fatal("a failed Listen replaced the existing file")
			}
			if err == nil && before != nil && os.SameFile(before, after) {
				t.Fatal("the stale socket was not replaced")
			}
			if tc.name == "live berth" {
				var inUse *InUseError
				if !errors.As(err, &inUse) {
					t.Fatalf("want *InUseError, have %T", err)
				}
			}
		})
	}
}

func TestSocketRemovedAfterRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		listen     bool // call Listen before Run
		replace    bool // another process replaces the socket while Run serves
		wantExists bool
	}{
		{name: "listen then run", listen: true},
		{name: "run listens", listen: false},
		{name: "replaced socket kept", listen: true, replace: true, wantExists: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t)
			s, err := New(Config{Socket: path}, &fakeBackend{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.listen {
				if err := s.Listen(); err != nil {
					t.Fatal(err)
				}
			}
			stop := runServer(t, s)
			waitStatus(t, path)
			if tc.replace {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			_, err = os.Lstat(path)
			if have := err == nil; have != tc.wantExists {
				t.Fatalf("want socket path exists=%v after Run, have %v (%v)", tc.wantExists, have, err)
			}
			if err := s.Run(context.Background()); err == nil {
				t.Fatal("want an error from a second Run")
			}
		})
	}
}

func TestCloseWithoutRun(t *testing.T) {
	path := socketPath(t)
	s, err := New(Config{Socket: path}, &fakeBackend{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err == nil {
		t.Fatal("want an error from a second Listen")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want the socket removed by Close, have %v", err)
	}
}

// waitStatus waits until the server at path answers.
func waitStatus(t *testing.T, path string) {
	t.Helper()
	c := NewClient(path)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Status(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBadRequests(t *testing.T) {
	const secret = "s3cr3t-value"
	path := startServer(t, &fakeBackend{})
	hc := NewClient(path).http
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		body     string
		wantCode int
		wantErr  string
	}{
		{name: "unknown path", method: "GET", path: "/v1/nope", wantCode: 404, wantErr: "no such endpoint"},
		{name: "wrong method", method: "POST", path: "/v1/status", wantCode: 405, wantErr: "use GET"},
		{name: "reload by GET", method: "GET", path: "/v1/reload", wantCode: 405, wantErr: "use POST"},
		{name: "not JSON", method: "POST", path: "/v1/env", body: `{"key":"K","value":"` + secret + `"`, wantCode: 400, wantErr: "truncated"},
		{name: "syntax", method: "POST", path: "/v1/env", body: `{"key":"K","value":"` + secret + "\x01" + `"}`, wantCode: 400, wantErr: "syntax error at byte"},
		{name: "empty body", method: "POST", path: "/v1/metric", wantCode: 400, wantErr: "empty body"},
		{name: "unknown field", method: "POST", path: "/v1/env", body: `{"key":"K","value":"` + secret + `","x":1}`, wantCode: 400, wantErr: `unknown field "x"`},
		{name: "trailing data", method: "POST", path: "/v1/env", body: `{"key":"K","value":"v"} {}`, wantCode: 400, wantErr: "data after the object"},
		{name: "bad env key", method: "POST", path: "/v1/env", body: `{"key":"1BAD","value":"` + secret + `"}`, wantCode: 400, wantErr: "invalid environment variable name"},
		{name: "env key with dash", method: "POST", path: "/v1/env", body: `{"key":"A-B","value":"v"}`, wantCode: 400, wantErr: "invalid environment variable name"},
		{name: "env value missing", method: "POST", path: "/v1/env", body: `{"key":"K"}`, wantCode: 400, wantErr: `missing field "value"`},
		{name: "env value NUL", method: "POST", path: "/v1/env", body: `{"key":"K","value":"a\u0000` + secret + `"}`, wantCode: 400, wantErr: "NUL"},
		{name: "env value wrong type", method: "POST", path: "/v1/env", body: `{"key":"K","value":12345}`, wantCode: 400, wantErr: `field "value" must be a string`},
		{name: "bad metric name", method: "POST", path: "/v1/metric", body: `{"name":"a b","value":1}`, wantCode: 400, wantErr: "invalid metric name"},
		{name: "metric value missing", method: "POST", path: "/v1/metric", body: `{"name":"a"}`, wantCode: 400, wantErr: `missing field "value"`},
		{name: "metric value string", method: "POST", path: "/v1/metric", body: `{"name":"a","value":"1"}`, wantCode: 400, wantErr: `field "value" must be a number`},
		{name: "maintenance without enable", method: "POST", path: "/v1/maintenance", body: `{"reason":"x"}`, wantCode: 400, wantErr: `missing field "enable"`},
		{name: "reload with fields", method: "POST", path: "/v1/reload", body: `{"force":true}`, wantCode: 400, wantErr: `unknown field "force"`},
		{name: "body too large", method: "POST", path: "/v1/env", body: `{"key":"K","value":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, wantCode: 413, wantErr: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://berth"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("want status %d, have %d: %s", tc.wantCode, resp.StatusCode, body)
			}
			if have := resp.Header.Get("Content-Type"); have != "application/json" {
				t.Fatalf("want Content-Type application/json, have %q", have)
			}
			var e errorResponse
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body is not JSON: %v: %s", err, body)
			}
			if !strings.Contains(e.Error, tc.wantErr) {
				t.Fatalf("want error containing %q, have %q", tc.wantErr, e.Error)
			}
			if strings.Contains(string(body), secret) {
				t.Fatalf("the error echoes the secret value: %s", body)
			}
		})
	}
}

func TestBackendErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int
	}{
		{name: "rejected", err: &RejectedError{Err: errors.New("berth.hcl:3:1: unknown key")}, wantCode: 409},
		{name: "rejected wrapped", err: fmtErr(&RejectedError{Err: errors.New("bad")}), wantCode: 409},
		{name: "invalid", err: &InvalidError{Err: errors.New("no")}, wantCode: 400},
		{name: "other", err: errors.New("boom"), wantCode: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := startServer(t, &fakeBackend{reloadErr: tc.err})
			err := NewClient(path).Reload(context.Background())
			var api *APIError
			if !errors.As(err, &api) {
				t.Fatalf("want *APIError, have %T %v", err, err)
			}
			if api.StatusCode != tc.wantCode || api.Message != tc.err.Error() {
				t.Fatalf("want %d %q, have %d %q", tc.wantCode, tc.err.Error(), api.StatusCode, api.Message)
			}
		})
	}
}

func fmtErr(err error) error { return errors.Join(errors.New("reload"), err) }

// TestConcurrentClients runs two clients doing reload+status 50 times each (run with -race): every call
// succeeds and the backend never sees two reloads at once.
func TestConcurrentClients(t *testing.T) {
	b := &fakeBackend{reloadDelay: time.Millisecond}
	path := startServer(t, b)
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*50)
	for range 2 {
		c := NewClient(path)
		wg.Go(func() {
			for range 50 {
				if err := c.Reload(context.Background()); err != nil {
					errs <- err
				}
				if _, err := c.Status(context.Background()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b.overlapped.Load() {
		t.Fatal("two Reload calls overlapped")
	}
	var reloads, statuses int
	for _, c := range b.Calls() {
		switch c {
		case "reload":
			reloads++
		case "status":
			statuses++
		}
	}
	if reloads != 100 || statuses != 100 {
		t.Fatalf("want 100 reloads and 100 statuses, have %d and %d", reloads, statuses)
	}
}

// TestReloadWaitsForRunning shows the documented choice: a second reload waits for the first, then runs.
func TestReloadWaitsForRunning(t *testing.T) {
	b := &fakeBackend{reloadBlock: make(chan struct{}), reloadsStart: make(chan struct{}, 2)}
	path := startServer(t, b)
	c := NewClient(path)
	results := make(chan error, 2)
	go func() { results <- c.Reload(context.Background()) }()
	<-b.reloadsStart
	go func() { results <- c.Reload(context.Background()) }()
	select {
	case <-b.reloadsStart:
		t.Fatal("the second reload started while the first was running")
	case err := <-results:
		t.Fatalf("a reload returned early: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(b.reloadBlock)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if have := len(b.reloadsStart); have != 1 {
		t.Fatalf("want the second reload to have run after the first, have %d pending starts", have)
	}
}

// TestShutdownBounded: a reload that ignores cancellation does not keep Run from returning.
func TestShutdownBounded(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) }) // registered first, so it runs after Run's cleanup: unblocks the handler
	b := &stubbornBackend{fakeBackend: &fakeBackend{}, block: block, started: make(chan struct{}, 1)}
	path := socketPath(t)
	s, err := New(Config{Socket: path, ShutdownTimeout: 100 * time.Millisecond}, b, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, s)
	waitStatus(t, path)
	reloaded := make(chan error, 1)
	go func() { reloaded <- NewClient(path).Reload(context.Background()) }()
	t.Cleanup(func() { <-reloaded })
	<-b.started
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if have := time.Since(begin); have > 2*time.Second {
		t.Fatalf("want Run to return within the shutdown timeout, took %v", have)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want the socket removed, have %v", err)
	}
}

type stubbornBackend struct {
	*fakeBackend
	block   chan struct{}
	started chan struct{}
}

func (b *stubbornBackend) Reload(context.Context) error {
	b.started <- struct{}{}
	<-b.block
	return nil
}

// TestReloadCancelledAtShutdown: a reload in progress sees its context cancelled when Run's context ends.
func TestReloadCancelledAtShutdown(t *testing.T) {
	b := &fakeBackend{reloadBlock: make(chan struct{}), reloadsStart: make(chan struct{}, 1)}
	path := socketPath(t)
	s, err := New(Config{Socket: path}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, s)
	reloaded := make(chan error, 1)
	waitStatus(t, path)
	go func() { reloaded <- NewClient(path).Reload(context.Background()) }()
	<-b.reloadsStart
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	err = <-reloaded
	var api *APIError
	if !errors.As(err, &api) || api.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("want a 503 answer, have %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
