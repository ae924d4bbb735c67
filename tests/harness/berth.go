package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for a writer goroutine and a reading test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BerthOpts says how to run berth.
type BerthOpts struct {
	PID1 bool     // run as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc)
	Env  []string // added to the test's environment
	Args []string // berth's arguments
	Dir  string
}

// Berth is a running berth binary.
type BerthRun struct {
	Cmd    *exec.Cmd
	Stdout SyncBuffer
	Stderr SyncBuffer
	done   chan struct{}
	code   int
	t      testing.TB
	pid1   bool
}

// RunBerth starts berth as a user would. t.Cleanup kills it if the test did not wait for it.
func RunBerth(t testing.TB, o BerthOpts) *BerthRun {
	t.Helper()
	bin := Berth(t)
	argv := append([]string{bin}, o.Args...)
	if o.PID1 {
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)
	}
	b := &BerthRun{t: t, pid1: o.PID1, done: make(chan struct{})}
	b.Cmd = exec.Command(argv[0], argv[1:]...)
	b.Cmd.Env = append(os.Environ(), o.Env...)
	b.Cmd.Dir = o.Dir
	b.Cmd.Stdout = &b.Stdout
	b.Cmd.Stderr = &b.Stderr
	b.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.Cmd.WaitDelay = 5 * time.Second // a leftover process holding berth's stdout must not hang the test
	if err := b.Cmd.Start(); err != nil {
		t.Fatalf("harness: start berth: %v", err)
	}
	go func() {
		_ = b.Cmd.Wait()
		b.code = ExitCode(b.Cmd.ProcessState)
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			// Graceful first: the supervised processes live in their own process groups, so a SIGKILLed
			// non-PID-1 berth would leave them running with its stdout pipe open, and Wait would hang.
			_ = syscall.Kill(b.Cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-b.done:
			case <-time.After(20 * time.Second):
				_ = syscall.Kill(-b.Cmd.Process.Pid, syscall.SIGKILL)
				<-b.done
			}
		}
	})
	return b
}

// Pid is berth's pid as seen from the test (inside unshare: the forked child).
func (b *BerthRun) Pid() int {
	b.t.Helper()
	if !b.pid1 {
		return b.Cmd.Process.Pid
	}
	path := fmt.Sprintf("/proc/%d/task/%d/children", b.Cmd.Process.Pid, b.Cmd.Process.Pid)
	pid := 0
	if !Within(5*time.Second, func() bool {
		data, _ := os.ReadFile(path)
		if f := strings.Fields(string(data)); len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
		}
		return pid > 0
	}) {
		b.t.Fatalf("harness: berth did not start inside unshare\n%s", b.Stderr.String())
	}
	return pid
}

// Signal sends sig to berth.
func (b *BerthRun) Signal(sig syscall.Signal) {
	b.t.Helper()
	if err := syscall.Kill(b.Pid(), sig); err != nil {
		b.t.Fatalf("harness: signal berth: %v", err)
	}
}

// Wait waits up to timeout for berth to exit and returns its exit code.
func (b *BerthRun) Wait(timeout time.Duration) int {
	b.t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-time.After(timeout):
		b.t.Fatalf("berth did not exit within %s\nstdout:\n%s\nstderr:\n%s", timeout, b.Stdout.String(), b.Stderr.String())
		return -1
	}
}

// Done is closed when berth exited.
func (b *BerthRun) Done() <-chan struct{} { return b.done }

// WaitFile waits until path contains substr and returns the content.
func WaitFile(t testing.TB, path, substr string, timeout time.Duration) string {
	t.Helper()
	var data []byte
	if !Within(timeout, func() bool {
		data, _ = os.ReadFile(path)
		return strings.Contains(string(data), substr)
	}) {
		t.Fatalf("%s did not contain %q within %s; it has:\n%s", path, substr, timeout, data)
	}
	return string(data)
}

// Within reports whether cond became true within timeout, checking it every 10 ms: what tests wait on
// instead of sleeping and hoping.
func Within(timeout time.Duration, cond func() bool) bool {
	return WithinEvery(timeout, 10*time.Millisecond, cond)
}

// WithinEvery is Within checking every interval: for a condition that costs something to check (a process
// to run, a Consul query a measurement counts, a large health list) at the cadence the test can afford.
func WithinEvery(timeout, interval time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(interval) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Eventually fails the test unless cond becomes true within timeout; what names the condition.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}

// ExitCode is a finished process's code as a shell reports it: its exit status, or 128+N when signal N
// killed it (ProcessState.ExitCode says -1 then).
func ExitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
