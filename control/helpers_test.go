package control

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// fakeBackend records every call. Its fields configure the answers.
type fakeBackend struct {
	healthy   bool
	detail    any
	reloadErr error
	maintErr  error
	envErr    error
	// reloadDelay makes Reload slow so that overlapping calls would be seen.
	reloadDelay time.Duration
	// reloadBlock, when set, makes Reload wait for it or for ctx.
	reloadBlock chan struct{}

	reloading    atomic.Int32
	overlapped   atomic.Bool
	reloadsStart chan struct{} // receives when a Reload starts, if set

	mu      sync.Mutex
	calls   []string
	env     map[string]string
	metrics map[string]float64
}

func (b *fakeBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *fakeBackend) Status() any {
	b.record("status")
	return map[string]any{"processes": []map[string]any{{"name": "main", "pid": 42, "restarts": 0}}}
}

func (b *fakeBackend) Health() (bool, any) {
	b.record("health")
	return b.healthy, b.detail
}

func (b *fakeBackend) Reload(ctx context.Context) error {
	b.record("reload")
	if b.reloading.Add(1) > 1 {
		b.overlapped.Store(true)
	}
	defer b.reloading.Add(-1)
	if b.reloadsStart != nil {
		b.reloadsStart <- struct{}{}
	}
	if b.reloadBlock != nil {
		select {
		case <-b.reloadBlock:
		case <-ctx.Done():
			return fmt.Errorf("reload interrupted: %w", ctx.Err())
		}
	}
	time.Sleep(b.reloadDelay)
	return b.reloadErr
}

func (b *fakeBackend) Maintenance(_ context.Context, on bool, reason string) error {
	b.record(fmt.Sprintf("maintenance %v %q", on, reason))
	return b.maintErr
}

func (b *fakeBackend) PutEnv(key, value string) error {
	b.record("putenv " + key)
	if b.envErr != nil {
		return b.envErr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.env == nil {
		b.env = map[string]string{}
	}
	b.env[key] = value
	return nil
}

func (b *fakeBackend) PutMetric(name string, value float64) error {
	b.record(fmt.Sprintf("putmetric %s %v", name, value))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.metrics == nil {
		b.metrics = map[string]float64{}
	}
	b.metrics[name] = value
	return nil
}

// socketPath returns a fresh socket path in a test directory.
func socketPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "b.sock")
}

// startServer runs a server for b on a fresh socket until the test ends and returns the socket path.
func startServer(t *testing.T, b Backend) string {
	t.Helper()
	path := socketPath(t)
	s, err := New(Config{Socket: path, ShutdownTimeout: time.Second}, b, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	return path
}

// runServer runs s in a goroutine that the test's cleanup stops and waits for.
func runServer(t *testing.T, s *Server) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}
