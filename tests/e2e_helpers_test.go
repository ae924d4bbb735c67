package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hclList renders argv as an HCL list of strings.
func hclList(argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// sockPath is a control socket path of its own for one berth (short: sun_path holds 107 bytes).
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "c.sock")
}

// berthCmd runs a short-lived berth subcommand (validate, ctl, health) and returns exit code, stdout, stderr.
func berthCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	b := harness.RunBerth(t, harness.BerthOpts{Env: env, Args: args})
	code := b.Wait(90 * time.Second)
	return code, b.Stdout.String(), b.Stderr.String()
}

// ctl runs `berth ctl ARGS` against sock.
func ctl(t *testing.T, sock string, args ...string) (int, string, string) {
	t.Helper()
	return berthCmd(t, []string{"BERTH_CONTROL_SOCKET=" + sock}, append([]string{"ctl"}, args...)...)
}

// waitSocket waits until berth answers `ctl status` on sock.
func waitSocket(t *testing.T, b *harness.BerthRun, sock string) {
	t.Helper()
	exited := false
	if !harness.WithinEvery(30*time.Second, 50*time.Millisecond, func() bool { // a ctl process per check
		select {
		case <-b.Done():
			exited = true
			return true
		default:
		}
		if _, err := os.Stat(sock); err != nil {
			return false
		}
		code, _, _ := ctl(t, sock, "status")
		return code == 0
	}) {
		t.Fatalf("control socket %s did not answer within 30s\nstderr:\n%s", sock, b.Stderr.String())
	}
	if exited {
		t.Fatalf("berth exited before its control socket answered\nstderr:\n%s", b.Stderr.String())
	}
}

// readStamps reads the "UNIXNANO PID" lines testapp -stamp appends.
func readStamps(t *testing.T, path string) (times []time.Time, pids []int) {
	t.Helper()
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || len(f) != 2 {
			t.Fatalf("bad stamp line %q in %s", line, path)
		}
		pid, _ := strconv.Atoi(f[1])
		times = append(times, time.Unix(0, ns))
		pids = append(pids, pid)
	}
	return times, pids
}

// waitLines waits until path has at least n non-empty lines.
func waitLines(t *testing.T, path string, n int, timeout time.Duration) []string {
	t.Helper()
	var data []byte
	var lines []string
	if !harness.Within(timeout, func() bool {
		data, _ = os.ReadFile(path)
		lines = strings.Fields(strings.ReplaceAll(string(data), " ", "_"))
		return len(lines) >= n
	}) {
		t.Fatalf("%s has %d lines, want %d within %s:\n%s", path, len(lines), n, timeout, data)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// noStackTrace fails when berth printed a Go panic.
func noStackTrace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		t.Fatalf("stack trace on stderr:\n%s", stderr)
	}
}

// bgRun is a process a test starts in its own process group, with its output captured; t.Cleanup kills the
// group if it is still running.
type bgRun struct {
	cmd            *exec.Cmd
	stdout, stderr harness.SyncBuffer
	done           chan struct{}
	code           int
}

// startBackground starts argv with env added to the test's environment.
func startBackground(t *testing.T, env []string, argv ...string) *bgRun {
	t.Helper()
	r := &bgRun{done: make(chan struct{})}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		r.code = harness.ExitCode(r.cmd.ProcessState)
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	return r
}
