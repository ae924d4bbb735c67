//go:build linux

package tests

// The scenarios of the peers' own test suites — tini's test/ (exit codes, signals, pgroup, reaping, sigconf)
// and dumb-init's tests/ (exit status, proxied signals, rewrites, child group, tty, shell background, cwd) —
// written as berth's e2e tests. Each scenario of the shared contract runs against berth and, as controls,
// against tini and dumb-init from Debian (`make deps`): a scenario whose control fails is a broken test, not
// a berth bug. Where a peer documents a different behaviour the table says so, and that peer is left out of
// the scenario or its behaviour is asserted as documented.
//
// The children are two small C programs the tests compile into their temporary directories:
// tests/testdata/peersuite/sigprint (prints every signal it catches, one line each; C because the Go runtime
// keeps SIGPROF and signal 34 to itself) and tests/testdata/peersuite/sigconf (execs a command with signals
// ignored and blocked).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/tests/harness"
)

// peerInit is one init implementation and how it is started in front of a command.
type peerInit struct {
	name string
	argv func(t *testing.T, pid1 bool) []string // the init's argv up to the child's argv
}

var (
	peerBerth = peerInit{"berth", func(t *testing.T, pid1 bool) []string {
		return []string{harness.Berth(t), "-control-socket", "off", "--"}
	}}
	// tini: -g signals the child's process group (tini's pgroup test), -s makes it a child subreaper when
	// it is not PID 1 (tini's reaping test needs it).
	peerTini = peerInit{"tini", func(t *testing.T, pid1 bool) []string {
		if pid1 {
			return []string{peerTool(t, "tini"), "-g", "--"}
		}
		return []string{peerTool(t, "tini"), "-s", "-g", "--"}
	}}
	// dumb-init in its default setsid mode: the child leads a session and group, signals go to the group.
	peerDumbInit = peerInit{"dumb-init", func(t *testing.T, pid1 bool) []string {
		return []string{peerTool(t, "dumb-init")}
	}}
	peerAll = []peerInit{peerBerth, peerTini, peerDumbInit}
)

func peerTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v); run `make deps`", name, err)
	}
	return p
}

// peerEnv is the test's environment without the variables that change a peer's mode (dumb-init's
// conftest clears the same ones).
func peerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DUMB_INIT_") && !strings.HasPrefix(kv, "TINI_") && !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	return env
}

// pid1Prefix makes the init PID 1 of a new PID namespace; --kill-child ends the namespace with the test.
var pid1Prefix = []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}

func initArgv(t *testing.T, in peerInit, pid1 bool, child ...string) []string {
	t.Helper()
	var argv []string
	if pid1 {
		argv = append(argv, pid1Prefix...)
	}
	argv = append(argv, in.argv(t, pid1)...)
	return append(argv, child...)
}

// Signal numbers (Linux x86-64/arm64) and the names berth's flags take.
var peerSigNames = map[int]string{1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS",
	8: "FPE", 9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM", 16: "STKFLT",
	17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU", 23: "URG", 24: "XCPU", 25: "XFSZ",
	26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO", 30: "PWR", 31: "SYS"}

// sigRTMIN is glibc's SIGRTMIN, the base of Docker's "SIGRTMIN+n" (32 and 33 belong to the C library).
const sigRTMIN = 34

func peerSigName(n int) string {
	if s, ok := peerSigNames[n]; ok {
		return s
	}
	if n < sigRTMIN {
		return strconv.Itoa(n) // 32, 33: the C library's
	}
	if n == sigRTMIN {
		return "RTMIN"
	}
	if n == 64 {
		return "RTMAX"
	}
	return fmt.Sprintf("RTMIN+%d", n-sigRTMIN)
}

// buildSigprint compiles tests/testdata/peersuite/sigprint/sigprint.c into the test's temp dir.
func buildSigprint(t *testing.T) string {
	t.Helper()
	return buildC(t, "sigprint")
}

// buildC compiles tests/testdata/peersuite/NAME/NAME.c into the test's temp dir.
func buildC(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	src := filepath.Join(harness.RepoRoot(t), "tests", "testdata", "peersuite", name, name+".c")
	if b, err := exec.Command("gcc", "-O2", "-Wall", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, b)
	}
	return out
}

// outLog collects what a stream (a pipe or a pty's master side) carries, and lets a test wait for it.
type outLog struct {
	mu      sync.Mutex
	data    []byte
	changed chan struct{}
	eof     chan struct{}
}

func newOutLog() *outLog { return &outLog{changed: make(chan struct{}), eof: make(chan struct{})} }

func (l *outLog) copyFrom(f *os.File) {
	defer close(l.eof)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			l.mu.Lock()
			l.data = append(l.data, buf[:n]...)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		if err != nil { // EOF, or EIO on a pty whose slave side is closed everywhere
			return
		}
	}
}

func (l *outLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.data)
}

// lines returns the complete lines so far.
func (l *outLog) lines() []string {
	s := l.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// wait waits until cond holds for the content, the stream ended or the timeout passed; it reports cond.
// Once stop is closed (the init exited) it gives the stream a last half second.
func (l *outLog) wait(timeout time.Duration, stop <-chan struct{}, cond func(string) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		s, ch := string(l.data), l.changed
		l.mu.Unlock()
		if cond(s) {
			return true
		}
		select {
		case <-ch:
		case <-l.eof:
			return cond(l.String())
		case <-stop:
			stop = nil
			deadline.Reset(500 * time.Millisecond)
		case <-deadline.C:
			return false
		}
	}
}

// initRun is an init running in the background; t.Cleanup kills it and everything it started.
type initRun struct {
	t      *testing.T
	name   string
	pid1   bool
	cmd    *exec.Cmd
	out    *outLog // stdout (and stderr, on a tty)
	errLog *outLog // stderr when there is no tty
	master *os.File
	done   chan struct{}
	code   int
	pid    int // the init, as seen from the test (inside unshare: its forked child)
}

type initOpts struct {
	pid1 bool
	tty  bool // stdin, stdout and stderr are a new pty, the init leads a session with it as ctty
}

func startInit(t *testing.T, in peerInit, o initOpts, child ...string) *initRun {
	t.Helper()
	argv := initArgv(t, in, o.pid1, child...)
	r := &initRun{t: t, name: in.name, pid1: o.pid1, out: newOutLog(), errLog: newOutLog(), done: make(chan struct{})}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Env = peerEnv()
	var parentEnds []*os.File
	if o.tty {
		master, slave := openPTY(t)
		r.master = master
		r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = slave, slave, slave
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		parentEnds = append(parentEnds, slave)
		go r.out.copyFrom(master)
		close(r.errLog.eof)
	} else {
		or, ow, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		er, ew, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.cmd.Stdout, r.cmd.Stderr = ow, ew
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		parentEnds = append(parentEnds, ow, ew)
		go r.out.copyFrom(or)
		go r.errLog.copyFrom(er)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", argv[0], err)
	}
	for _, f := range parentEnds {
		f.Close()
	}
	go func() {
		_ = r.cmd.Wait()
		r.code = harness.ExitCode(r.cmd.ProcessState)
		close(r.done)
	}()
	t.Cleanup(r.kill)
	r.pid = r.cmd.Process.Pid
	if o.pid1 {
		r.pid = r.firstChild(r.cmd.Process.Pid, "init inside unshare")
	}
	return r
}

var readyPid = regexp.MustCompile(`(?m)^\S+ ready pid=(\d+) `)

// kill SIGKILLs the init and every descendant (stopped ones too) and waits for the init. Outside a PID
// namespace, the sigprint processes that announced themselves are killed too: an init that crashed left
// them re-parented elsewhere.
func (r *initRun) kill() {
	pids := append(descendants(r.cmd.Process.Pid), r.cmd.Process.Pid)
	if !r.pid1 {
		for _, m := range readyPid.FindAllStringSubmatch(r.out.String(), -1) {
			pid, _ := strconv.Atoi(m[1])
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) == "sigprint" {
				pids = append(pids, pid)
			}
		}
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("%s did not exit after SIGKILL", r.name)
	}
	if r.master != nil {
		select { // the reader ends with EIO once no process holds the slave side
		case <-r.out.eof:
		case <-time.After(5 * time.Second):
		}
	}
}

// descendants lists the children of pid, recursively (every thread's children: a Go init forks from any).
func descendants(pid int) []int {
	var out []int
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

func (r *initRun) firstChild(pid int, what string) int {
	r.t.Helper()
	c := 0
	if !harness.Within(10*time.Second, func() bool {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if fs := strings.Fields(string(data)); len(fs) > 0 {
				c, _ = strconv.Atoi(fs[0])
				return true
			}
		}
		return false
	}) {
		r.t.Fatalf("%s: no %s within 10s\n%s", r.name, what, r.diag())
	}
	return c
}

// child is the init's child (the main command), as seen from the test.
func (r *initRun) child() int { return r.firstChild(r.pid, "child") }

func (r *initRun) signal(sig int) {
	r.t.Helper()
	if err := syscall.Kill(r.pid, syscall.Signal(sig)); err != nil {
		r.t.Fatalf("kill -%s %s: %v\n%s", peerSigName(sig), r.name, err, r.diag())
	}
}

func (r *initRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitExit waits for the init to exit and returns its code.
func (r *initRun) waitExit(timeout time.Duration) int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(timeout):
		r.t.Fatalf("%s did not exit within %s\n%s", r.name, timeout, r.diag())
		return -1
	}
}

// waitEOF waits until every writer closed the init's stdout (the output is complete).
func (r *initRun) waitEOF() {
	r.t.Helper()
	select {
	case <-r.out.eof:
	case <-time.After(5 * time.Second):
		r.t.Fatalf("%s: stdout still open 5s after the end\n%s", r.name, r.diag())
	}
}

// stderr returns the init's stderr once every writer closed it (or after a short grace).
func (r *initRun) stderr() string {
	select {
	case <-r.errLog.eof:
	case <-time.After(5 * time.Second):
	}
	return r.errLog.String()
}

// diag describes the run for a failure message: exit state, output, the first lines of stderr.
func (r *initRun) diag() string {
	state := "running"
	if r.exited() {
		state = fmt.Sprintf("exited with %d", r.code)
	} else if st := procState(r.pid); st != 0 {
		state = fmt.Sprintf("running (state %c)", st)
	}
	errText := r.errLog.String()
	if lines := strings.Split(errText, "\n"); len(lines) > 12 {
		errText = strings.Join(lines[:12], "\n") + fmt.Sprintf("\n... (%d lines)", len(lines))
	}
	return fmt.Sprintf("%s %s\noutput:\n%s\nstderr:\n%s", r.name, state, r.out.String(), errText)
}

// waitLine waits for a complete output line equal to want (or, with a trailing "*", starting with the rest)
// at index from or later, and returns its index.
func (r *initRun) waitLine(from int, want string, timeout time.Duration) int {
	r.t.Helper()
	match := func(l string) bool { return l == want }
	if p, ok := strings.CutSuffix(want, "*"); ok {
		match = func(l string) bool { return strings.HasPrefix(l, p) }
	}
	idx := -1
	r.out.wait(timeout, r.done, func(string) bool {
		lines := r.out.lines()
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				idx = i
				return true
			}
		}
		return false
	})
	if idx < 0 {
		r.t.Fatalf("%s: no line %q within %s\n%s", r.name, want, timeout, r.diag())
	}
	return idx
}

// sigLines returns the signals role reported, in order.
func (r *initRun) sigLines(role string) []int {
	var out []int
	for _, l := range r.out.lines() {
		if s, ok := strings.CutPrefix(l, role+" sig "); ok {
			n, _ := strconv.Atoi(s)
			out = append(out, n)
		}
	}
	return out
}

// procState is the state letter of /proc/PID/stat (R, S, T, Z ...), 0 when the process is gone.
func procState(pid int) byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0
	}
	return data[i+2]
}

func waitState(t *testing.T, pid int, what string, want func(byte) bool, timeout time.Duration) byte {
	t.Helper()
	var st byte
	if !harness.Within(timeout, func() bool { st = procState(pid); return want(st) }) {
		t.Fatalf("%s (pid %d): state %q within %s", what, pid, st, timeout)
	}
	return st
}

func stopped(st byte) bool { return st == 'T' }

// openPTY opens a new pseudo-terminal with output post-processing and echo off (dumb-init's tty tests do
// the same), so what the master reads is exactly what the processes wrote.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	sfd, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(sfd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(mfd), "ptmx"), os.NewFile(uintptr(sfd), "pts")
}

func (r *initRun) write(s string) {
	r.t.Helper()
	if _, err := r.master.WriteString(s); err != nil {
		r.t.Fatalf("write to the pty: %v", err)
	}
}

// waitOutput waits until the output after offset from contains s and returns the offset past it.
func (r *initRun) waitOutput(from int, s string, timeout time.Duration) int {
	r.t.Helper()
	end := -1
	r.out.wait(timeout, r.done, func(all string) bool {
		if from > len(all) {
			return false
		}
		if i := strings.Index(all[from:], s); i >= 0 {
			end = from + i + len(s)
			return true
		}
		return false
	})
	if end < 0 {
		r.t.Fatalf("%s: output lacks %q within %s\n%s", r.name, s, timeout, r.diag())
	}
	return end
}

// runShort runs argv to completion (bounded) and returns its exit code (128+S when killed), stdout, stderr.
func runShort(argv []string, dir string, timeout time.Duration) (int, string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = peerEnv()
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { // the whole tree: an init puts its child in a group (or session) of its own
		for _, p := range descendants(cmd.Process.Pid) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return -1, stdout.String(), stderr.String(), err
	}
	if ctx.Err() != nil {
		return -1, stdout.String(), stderr.String(), fmt.Errorf("did not exit within %s", timeout)
	}
	return harness.ExitCode(cmd.ProcessState), stdout.String(), stderr.String(), nil
}

// tini's run_inner_tests.py (all 256 codes) and dumb-init's exit_status_test.py (regular exit, and 128+S
// for a child killed by a signal).
func TestPeerSuiteExitStatus(t *testing.T) {
	t.Parallel()
	for _, in := range peerAll {
		for _, m := range modes {
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				var jobs []exitJob
				for code := 0; code <= 255; code++ {
					jobs = append(jobs, exitJob{fmt.Sprintf("exit %d", code), initArgv(t, in, m.pid1, "sh", "-c", fmt.Sprintf("exit %d", code)), code})
				}
				for _, sig := range []int{1, 2, 3, 6, 9, 10, 11, 14, 15} {
					jobs = append(jobs, exitJob{"killed by SIG" + peerSigName(sig), initArgv(t, in, m.pid1, "sh", "-c", "kill -"+peerSigName(sig)+" $$"), 128 + sig})
				}
				runExitJobs(t, "exit statuses", jobs)
			})
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// How a signal sent to the init with kill(2) is expected to end up.
type sigFate int

const (
	forwarded sigFate = iota // the child reports it
	dropped                  // the init survives and the child never sees it
)

// sigExpect is each implementation's documented behaviour for signal n sent with kill(2) (INT, QUIT and
// TERM, which end the run, are checked on their own). skip names why a signal is not sent at all.
func sigExpect(impl string, n int, pid1 bool) (fate sigFate, skip string) {
	switch impl {
	case "berth":
		// README "Signals": every catchable signal, 1–31 and the real-time ones, except SIGCHLD (never sent here),
		// the Go runtime's SIGURG, and SIGPIPE (README: berth's own writes to a closed socket raise it).
		if n == 13 || n == 23 {
			return dropped, ""
		}
		return forwarded, ""
	case "tini":
		switch n {
		case 4, 5, 6, 7, 8, 11, 31:
			// tini.c leaves the synchronous signals (signals_for_tini) at their default action.
			if !pid1 {
				return 0, "tini keeps SIG" + peerSigName(n) + " at its default action: kill(2) ends tini itself"
			}
			return dropped, "" // and the kernel drops a default-action signal sent to a namespace's init
		case 21, 22:
			return dropped, "" // tini ignores SIGTTIN and SIGTTOU
		}
		return forwarded, ""
	case "dumb-init":
		if n == 20 || n == 21 || n == 22 {
			return 0, "dumb-init turns SIG" + peerSigName(n) + " into SIGSTOP and suspends itself (TestPeerSuiteJobControl)"
		}
		return forwarded, ""
	}
	panic(impl)
}

// tini's signals test and dumb-init's proxies_signals_test.py, for every signal 1–31 and some real-time
// ones, each in a fresh init so one crash does not hide the next: kill(2) to the init, the child reports
// it, the init was not stopped, and it still ends with the child (SIGKILL → 137).
func TestPeerSuiteSignals(t *testing.T) {
	t.Parallel()
	sp := buildSigprint(t)
	var sigs []int
	for n := 1; n <= 31; n++ {
		if n != 9 && n != 19 && n != 17 && n != 2 && n != 3 && n != 15 {
			sigs = append(sigs, n)
		}
	}
	sigs = append(sigs, sigRTMIN, sigRTMIN+1, sigRTMIN+3, sigRTMIN+16, 64)
	for _, in := range peerAll {
		for _, m := range modes {
			for _, n := range sigs {
				t.Run(in.name+"/"+m.name+"/SIG"+peerSigName(n), func(t *testing.T) {
					t.Parallel()
					fate, skip := sigExpect(in.name, n, m.pid1)
					if skip != "" {
						t.Skip(skip)
					}
					r := startInit(t, in, initOpts{pid1: m.pid1}, sp)
					from := r.waitLine(0, "main ready*", 10*time.Second) + 1
					r.signal(n)
					if fate == forwarded {
						from = r.waitLine(from, fmt.Sprintf("main sig %d", n), 10*time.Second) + 1
						if st := procState(r.pid); st == 'T' {
							t.Fatalf("%s stopped itself on SIG%s", in.name, peerSigName(n))
						}
					}
					// A fence: SIGUSR1 after it shows the init still forwards, and that nothing else came.
					fence := 10
					if n == 10 {
						fence = 12
					}
					r.signal(fence)
					r.waitLine(from, fmt.Sprintf("main sig %d", fence), 10*time.Second)
					have := r.sigLines("main")
					want := []int{fence}
					if fate == forwarded {
						want = []int{n, fence}
					}
					if !slices.Equal(have, want) {
						t.Fatalf("child got signals %v, want %v\n%s", have, want, r.diag())
					}
					endWithChildKilled(t, r)
				})
			}
			for _, n := range []int{2, 3, 15} {
				// INT, QUIT and TERM also start berth's shutdown; the child exits on them with 100+n.
				t.Run(in.name+"/"+m.name+"/SIG"+peerSigName(n), func(t *testing.T) {
					t.Parallel()
					r := startInit(t, in, initOpts{pid1: m.pid1}, sp, "-e", fmt.Sprintf("%d:%d", n, 100+n))
					r.waitLine(0, "main ready*", 10*time.Second)
					r.signal(n)
					if code := r.waitExit(10 * time.Second); code != 100+n {
						t.Fatalf("want exit %d (the child's, on SIG%s), have %d\n%s", 100+n, peerSigName(n), code, r.diag())
					}
					r.waitEOF()
					if have := r.sigLines("main"); !slices.Equal(have, []int{n}) {
						t.Fatalf("child got signals %v, want [%d]", have, n)
					}
					if in.name == "berth" {
						noStackTrace(t, r.stderr())
					}
				})
			}
		}
	}
}

// endWithChildKilled SIGKILLs the init's child: the init must exit 137 (128+9), without a crash dump.
func endWithChildKilled(t *testing.T, r *initRun) {
	t.Helper()
	if r.exited() {
		t.Fatalf("the init exited early\n%s", r.diag())
	}
	child := r.child()
	pgid, err := syscall.Getpgid(child)
	if err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // the child's whole group: members too
	if code := r.waitExit(10 * time.Second); code != 137 {
		t.Fatalf("child killed by SIGKILL: want the init to exit 137, have %d\n%s", code, r.diag())
	}
	if r.name == "berth" {
		noStackTrace(t, r.stderr())
	}
}

// startGroup starts sigprint under in with two more members in its process group, waits until all three are
// ready, and returns the signals to send it (tini leaves SIGSEGV and SIGABRT at their default action,
// TestPeerSuiteSignals) and the output line from which the answers come.
func startGroup(t *testing.T, in peerInit, pid1 bool, sp string) (sigs []int, r *initRun, from int) {
	t.Helper()
	sigs = []int{1, 10, 12, 14, 24, 28, 30, sigRTMIN + 3}
	if in.name != "tini" {
		sigs = append(sigs, 11, 6)
	}
	r = startInit(t, in, initOpts{pid1: pid1}, sp, "-m", "2")
	r.waitLine(0, "m1 ready*", 10*time.Second)
	r.waitLine(0, "m2 ready*", 10*time.Second)
	return sigs, r, r.waitLine(0, "main ready*", 10*time.Second) + 1
}

// tini's pgroup test and dumb-init's child_processes_test.py: a signal sent to the init reaches every
// process of the child's process group, not just the child.
func TestPeerSuiteProcessGroup(t *testing.T) {
	t.Parallel()
	sp := buildSigprint(t)
	for _, in := range peerAll {
		for _, m := range modes {
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				sigs, r, from := startGroup(t, in, m.pid1, sp)
				for _, n := range sigs {
					r.signal(n)
					for _, role := range []string{"main", "m1", "m2"} {
						r.waitLine(from, fmt.Sprintf("%s sig %d", role, n), 10*time.Second)
					}
					from = len(r.out.lines())
				}
				for _, role := range []string{"main", "m1", "m2"} {
					if have := r.sigLines(role); !slices.Equal(have, sigs) {
						t.Errorf("%s got %v, want %v", role, have, sigs)
					}
				}
				endWithChildKilled(t, r)
			})
		}
	}
}

// dumb-init's rewrite tests (--rewrite s:r; tini has no rewrites) and berth's -signal-rewrite/-stop-signal,
// including sources outside the usual list and SIGRTMIN+3 (Docker's STOPSIGNAL of systemd images).
func TestPeerSuiteRewrite(t *testing.T) {
	t.Parallel()
	sp := buildSigprint(t)
	cases := []struct {
		name      string
		rewrite   [][2]int
		stop      string // berth's -stop-signal
		send      []int
		want      []int
		berthOnly bool
	}{
		{name: "none", send: []int{15, 3, 18, 2}, want: []int{15, 3, 18, 2}},
		{name: "TERM:INT", rewrite: [][2]int{{15, 2}}, send: []int{15, 3, 18, 2}, want: []int{2, 3, 18, 2}},
		{name: "TERM:INT INT:TERM QUIT:QUIT", rewrite: [][2]int{{15, 2}, {2, 15}, {3, 3}}, send: []int{15, 3, 18, 2}, want: []int{2, 3, 18, 15}},
		{name: "HUP:SYS SYS:HUP", rewrite: [][2]int{{1, 31}, {31, 1}}, send: []int{1, 31}, want: []int{31, 1}},
		{name: "SYS:HUP", rewrite: [][2]int{{31, 1}}, send: []int{31, 10}, want: []int{1, 10}},
		{name: "TTIN:TERM", rewrite: [][2]int{{21, 15}}, send: []int{21, 10}, want: []int{15, 10}},
		{name: "TTIN:TERM TTOU:INT TSTP:HUP", rewrite: [][2]int{{21, 15}, {22, 2}, {20, 1}}, send: []int{21, 22, 20}, want: []int{15, 2, 1}},
		{name: "RTMIN+3:HUP", rewrite: [][2]int{{37, 1}}, send: []int{37, 10}, want: []int{1, 10}, berthOnly: true},
		{name: "HUP:RTMIN+3", rewrite: [][2]int{{1, 37}}, send: []int{1}, want: []int{37}, berthOnly: true},
		{name: "TERM:RTMIN+3", rewrite: [][2]int{{15, 37}}, send: []int{15}, want: []int{37}, berthOnly: true},
		{name: "stop-signal RTMIN+3", stop: "RTMIN+3", send: []int{15}, want: []int{37}, berthOnly: true},
		{name: "stop-signal SIGRTMIN+3", stop: "SIGRTMIN+3", send: []int{15}, want: []int{37}, berthOnly: true},
	}
	for _, in := range []peerInit{peerBerth, peerDumbInit} {
		for _, m := range modes {
			for _, c := range cases {
				if c.berthOnly && in.name != "berth" {
					continue
				}
				t.Run(in.name+"/"+m.name+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					var flags []string
					for _, rw := range c.rewrite {
						if in.name == "berth" {
							flags = append(flags, "-signal-rewrite", peerSigName(rw[0])+":"+peerSigName(rw[1]))
						} else {
							flags = append(flags, "-r", fmt.Sprintf("%d:%d", rw[0], rw[1]))
						}
					}
					if in.name == "berth" {
						// a stop signal starts the shutdown: keep its SIGKILL out of the sequence
						flags = append(flags, "-stop-timeout", "60s")
						if c.stop != "" {
							flags = append(flags, "-stop-signal", c.stop)
						}
					}
					flagged := peerInit{in.name, func(t *testing.T, pid1 bool) []string {
						argv := in.argv(t, pid1)
						if in.name == "berth" { // flags go before the "--"
							return append(append(argv[:len(argv)-1:len(argv)-1], flags...), "--")
						}
						return append(append(argv[:len(argv):len(argv)], flags...), "--")
					}}
					r := startInit(t, flagged, initOpts{pid1: m.pid1}, sp)
					from := r.waitLine(0, "main ready*", 10*time.Second) + 1
					for i, n := range c.send {
						r.signal(n)
						from = r.waitLine(from, fmt.Sprintf("main sig %d", c.want[i]), 10*time.Second) + 1
						if n == 20 || n == 21 || n == 22 {
							if in.name == "dumb-init" && !m.pid1 {
								// dumb-init suspends itself after a job-control signal, rewritten or not
								// (its test_default_rewrites_can_be_overriden_with_setsid_enabled); SIGCONT
								// wakes it and is forwarded.
								waitState(t, r.pid, "dumb-init", stopped, 10*time.Second)
								r.signal(18)
								from = r.waitLine(from, "main sig 18", 10*time.Second) + 1
							} else if st := procState(r.pid); st == 'T' {
								t.Fatalf("%s stopped itself on SIG%s", in.name, peerSigName(n))
							}
						}
					}
					have := slices.DeleteFunc(r.sigLines("main"), func(s int) bool { return s == 18 && !slices.Contains(c.want, 18) })
					if !slices.Equal(have, c.want) {
						t.Fatalf("sent %v, child got %v, want %v\n%s", c.send, have, c.want, r.diag())
					}
					endWithChildKilled(t, r)
				})
			}
		}
	}
}

// parseSigState reads SigBlk and SigIgn from a /proc/PID/status.
func parseSigState(t *testing.T, status string) (blk, ign uint64) {
	t.Helper()
	var okB, okI bool
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigBlk":
			blk, okB = n, err == nil
		case "SigIgn":
			ign, okI = n, err == nil
		}
	}
	if !okB || !okI {
		t.Fatalf("no SigBlk/SigIgn in:\n%s", status)
	}
	return blk, ign
}

// sigSetDiff names the signals of a /proc/PID/status mask that want has and have lacks, and the reverse.
func sigSetDiff(what string, want, have uint64) string {
	var lost, extra []string
	for n := 1; n <= 64; n++ {
		bit := uint64(1) << (n - 1)
		if want&bit != 0 && have&bit == 0 {
			lost = append(lost, "SIG"+peerSigName(n))
		}
		if have&bit != 0 && want&bit == 0 {
			extra = append(extra, "SIG"+peerSigName(n))
		}
	}
	out := ""
	if len(lost) > 0 {
		out += fmt.Sprintf("\n%s at start but not in the child: %s", what, strings.Join(lost, " "))
	}
	if len(extra) > 0 {
		out += fmt.Sprintf("\n%s in the child but not at start: %s", what, strings.Join(extra, " "))
	}
	return out
}

// tini's sigconf test: the init is started with signals ignored and blocked, and its child must start
// with the same ignored set and signal mask (nohup, `trap ” INT`, background jobs rely on it). The
// expected state is the child's without an init in between. dumb-init resets both (it unblocks every signal
// and installs a handler for 1–31 in the child before exec): it is asserted as documented, not a control.
func TestPeerSuiteSigconf(t *testing.T) {
	t.Parallel()
	sigconf := buildC(t, "sigconf")
	sets := []struct{ name, ign, blk string }{
		{"tini-set", "22,11,2", "21,4,15"},            // TTOU SEGV INT ignored; TTIN ILL TERM blocked
		{"nohup-and-realtime", "1,12,13", "10,37,64"}, // HUP USR2 PIPE ignored; USR1 RTMIN+3 RTMAX blocked
	}
	for _, in := range peerAll {
		for _, m := range modes {
			for _, s := range sets {
				t.Run(in.name+"/"+m.name+"/"+s.name, func(t *testing.T) {
					t.Parallel()
					var base []string
					if m.pid1 {
						base = append(base, pid1Prefix...)
					}
					status := func(argv []string) (blk, ign uint64) {
						code, out, stderr, err := runShort(argv, "", 20*time.Second)
						if err != nil || code != 0 {
							t.Fatalf("%v: exit %d (%v)\n%s", argv, code, err, stderr)
						}
						if in.name == "berth" && strings.TrimSpace(stderr) != "" {
							t.Errorf("berth wrote to stderr:\n%s", stderr)
						}
						return parseSigState(t, out)
					}
					prefix := []string{sigconf, s.ign, s.blk}
					wantBlk, wantIgn := status(append(append(prefix, base...), "cat", "/proc/self/status"))
					haveBlk, haveIgn := status(append(prefix, initArgv(t, in, m.pid1, "cat", "/proc/self/status")...))
					if in.name == "dumb-init" {
						// it unblocks everything and resets 1-31; a real-time signal ignored in the test's own
						// environment (signal 32 under the race-enabled, glibc-linked test binary) stays ignored
						wantBlk, wantIgn = 0, wantIgn&^0x7fffffff
					}
					if haveBlk != wantBlk || haveIgn != wantIgn {
						t.Fatalf("child of %s: SigBlk %016x SigIgn %016x, want SigBlk %016x SigIgn %016x (started with ignored %s, blocked %s)%s%s",
							in.name, haveBlk, haveIgn, wantBlk, wantIgn, s.ign, s.blk,
							sigSetDiff("ignored", wantIgn, haveIgn), sigSetDiff("blocked", wantBlk, haveBlk))
					}
				})
			}
		}
	}
}

// dumb-init's test_tty: under a real terminal the init passes the child's output through exactly and adds
// nothing of its own (README "Signals": a zero-config run writes nothing of berth's own on success).
func TestPeerSuiteTTY(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, input, want string
		argv              []string
	}{
		{"tac", "1\n2\n3\n\x04", "3\n2\n1\n", []string{"tac"}},
		{"cat", "hello\nworld\n\x04", "hello\nworld\n", []string{"cat"}},
		{"stdout and stderr", "", "out\nerr\n", []string{"sh", "-c", "echo out; echo err >&2"}},
	}
	for _, in := range peerAll {
		for _, c := range cases {
			t.Run(in.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				r := startInit(t, in, initOpts{tty: true}, c.argv...)
				if c.input != "" {
					r.write(c.input)
				}
				if code := r.waitExit(10 * time.Second); code != 0 {
					t.Fatalf("want exit 0, have %d\n%s", code, r.diag())
				}
				r.waitEOF()
				if have := r.out.String(); have != c.want {
					t.Fatalf("terminal shows %q, want exactly %q", have, c.want)
				}
			})
		}
	}
}

// dumb-init's test_child_gets_controlling_tty_if_we_had_one and shell_background_test.py, as a session: an
// interactive bash under the init, in a pty, has job control — Ctrl-Z suspends the foreground job, `fg`
// resumes it, a background job is brought to the foreground and interrupted with Ctrl-C — and the init is
// never stopped. Then job-control signals sent to the init with kill(2).
func TestPeerSuiteJobControl(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed for the interactive shell scenario")
	}
	sp := buildSigprint(t)
	for _, in := range peerAll {
		t.Run(in.name+"/interactive-bash", func(t *testing.T) {
			t.Parallel()
			r := startInit(t, in, initOpts{tty: true}, "bash", "--norc", "--noprofile", "--noediting", "-i")
			notStopped := func(when string) {
				t.Helper()
				if st := procState(r.pid); st == 'T' {
					t.Fatalf("%s is stopped %s\n%s", in.name, when, r.diag())
				}
			}
			// Markers are computed by the shell, so only the shell's output can match them.
			r.write("echo \"flags=[$-]\"; echo M$((40+2))\n")
			off := r.waitOutput(0, "M42", 10*time.Second)
			if m := regexp.MustCompile(`flags=\[([a-zA-Z]*)\]`).FindStringSubmatch(r.out.String()); m == nil || !strings.Contains(m[1], "m") {
				t.Fatalf("bash has no job control (flag m) under %s\n%s", in.name, r.diag())
			}
			// Ctrl-Z suspends the foreground job; bash takes the terminal back.
			r.write("cat\nping\n")
			off = r.waitOutput(off, "ping", 10*time.Second) // cat runs in the foreground
			r.write("\x1a")
			off = r.waitOutput(off, "Stopped", 10*time.Second)
			notStopped("after Ctrl-Z")
			r.write("jobs; echo J$((1+1))\n")
			off = r.waitOutput(off, "J2", 10*time.Second)
			// fg resumes it in the foreground; Ctrl-D ends it.
			r.write("fg\npong\n")
			off = r.waitOutput(off, "pong", 10*time.Second)
			r.write("\x04")
			r.write("echo D$((2+1))\n")
			off = r.waitOutput(off, "D3", 10*time.Second)
			// A background job brought to the foreground and interrupted with Ctrl-C.
			r.write("sleep 60 & echo SPID=$!\n")
			off = r.waitOutput(off, "SPID=", 10*time.Second)
			end := r.waitOutput(off, "\n", 10*time.Second)
			spid, err := strconv.Atoi(strings.TrimSpace(r.out.String()[off:end]))
			if err != nil {
				t.Fatalf("no pid after SPID=: %v\n%s", err, r.diag())
			}
			r.write("fg %1\n")
			if !harness.Within(10*time.Second, func() bool {
				pg, err := unix.IoctlGetInt(int(r.master.Fd()), unix.TIOCGPGRP)
				return err == nil && pg == spid
			}) {
				t.Fatalf("the background job %d never became the terminal's foreground group\n%s", spid, r.diag())
			}
			// bash hands the terminal over (tcsetpgrp) a moment before it restores the job's terminal modes;
			// a ^C in between is read as a plain byte, so it is repeated until the job is gone.
			gone := func() bool { st := procState(spid); return st == 0 || st == 'Z' }
			if !harness.Within(10*time.Second, func() bool {
				if !gone() {
					r.write("\x03")
				}
				return harness.Within(300*time.Millisecond, gone)
			}) {
				t.Fatalf("the interrupted job (pid %d) survived Ctrl-C for 10s\n%s", spid, r.diag())
			}
			r.write("echo C$((4+1))\n")
			r.waitOutput(off, "C5", 10*time.Second)
			notStopped("at the end of the session")
			r.write("exit 7\n")
			if code := r.waitExit(10 * time.Second); code != 7 {
				t.Fatalf("bash exited 7: want the init to exit 7, have %d\n%s", code, r.diag())
			}
			if in.name == "berth" {
				noStackTrace(t, r.out.String())
			}
		})
	}

	// kill -TSTP/-TTIN/-TTOU to the init (dumb-init's shell_background_test.py). What each does:
	//   berth: forwards them to the child's group and is never stopped itself (README "Signals");
	//   tini: forwards TSTP; ignores TTIN and TTOU itself, so they are dropped;
	//   dumb-init: sends SIGSTOP to the child's group instead and stops itself — except as PID 1, where the
	//   kernel drops the SIGSTOP an init sends itself. SIGCONT to the init wakes both.
	// With a child that catches them (it reports them), and one that keeps their default action (it stops).
	for _, in := range peerAll {
		for _, m := range modes {
			for _, n := range []int{20, 21, 22} {
				for _, handled := range []bool{true, false} {
					kind := "caught"
					if !handled {
						kind = "default"
					}
					t.Run(fmt.Sprintf("%s/%s/SIG%s/%s", in.name, m.name, peerSigName(n), kind), func(t *testing.T) {
						t.Parallel()
						var reported, childStops, initStops bool
						switch in.name {
						case "berth":
							reported, childStops = handled, !handled
						case "tini":
							reported, childStops = n == 20 && handled, n == 20 && !handled
						case "dumb-init":
							childStops, initStops = true, !m.pid1
						}
						args := []string{sp}
						if !handled {
							args = append(args, "-d", "20,21,22")
						}
						r := startInit(t, in, initOpts{pid1: m.pid1}, args...)
						from := r.waitLine(0, "main ready*", 10*time.Second) + 1
						child := r.child()
						r.signal(n)
						if reported {
							from = r.waitLine(from, fmt.Sprintf("main sig %d", n), 10*time.Second) + 1
						}
						if childStops {
							waitState(t, child, "the child", stopped, 10*time.Second)
						}
						if initStops {
							waitState(t, r.pid, in.name, stopped, 10*time.Second)
						} else if st := procState(r.pid); st == 'T' {
							t.Fatalf("%s stopped itself on SIG%s\n%s", in.name, peerSigName(n), r.diag())
						}
						// SIGCONT to the init reaches the child (which resumes), then a fence shows that
						// the init forwards and that nothing else arrived.
						r.signal(18)
						from = r.waitLine(from, "main sig 18", 10*time.Second) + 1
						waitState(t, child, "the child", func(st byte) bool { return st != 'T' }, 10*time.Second)
						r.signal(10)
						r.waitLine(from, "main sig 10", 10*time.Second)
						want := []int{18, 10}
						if reported {
							want = []int{n, 18, 10}
						}
						if have := r.sigLines("main"); !slices.Equal(have, want) {
							t.Fatalf("child got %v, want %v\n%s", have, want, r.diag())
						}
						if st := procState(r.pid); st == 'T' {
							t.Fatalf("%s is stopped at the end\n%s", in.name, r.diag())
						}
						endWithChildKilled(t, r)
					})
				}
			}
		}
	}
}

// reapScript orphans 40 processes and 40 grand-orphans; each waits (bounded) until it has been re-parented
// to the init ($1 of the orphan) and writes its parent's pid. The script then waits (bounded) until the
// init's only child is the script itself — every orphan exited and was reaped — and checks that every orphan
// was re-parented to the init.
const reapScript = `init=$PPID; f=$1; : > "$f"
orphan='i=0; while [ $i -lt 20000 ]; do read -r a b c pp rest < /proc/self/stat; [ "$pp" = "$1" ] && break; i=$((i+1)); done; echo $pp >> "$0"'
i=0
while [ $i -lt 40 ]; do
  (sh -c "$orphan" "$f" "$init" &)
  ( (sh -c "$orphan" "$f" "$init" &) & )
  i=$((i+1))
done
n=0
while :; do
  set -- $(cat /proc/$init/task/*/children 2>/dev/null)
  lines=$(wc -l < "$f")
  [ "$lines" -eq 80 ] && [ $# -eq 1 ] && [ "$1" = $$ ] && break
  n=$((n+1))
  if [ $n -gt 1000 ]; then echo "not reaped: init $init has children $*; $lines orphans reported"; exit 98; fi
  sleep 0.01
done
if grep -vqx "$init" "$f"; then echo "re-parented elsewhere than init $init:"; sort "$f" | uniq -c; exit 97; fi
echo reaped $lines`

// tini's reaping test and dumb-init's test-zombies: orphans and grand-orphans are re-parented to the init
// and reaped, as PID 1 and as child subreaper. dumb-init is not a subreaper, so only its PID 1 run counts.
func TestPeerSuiteReaping(t *testing.T) {
	t.Parallel()
	for _, in := range peerAll {
		for _, m := range modes {
			if in.name == "dumb-init" && !m.pid1 {
				continue
			}
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				f := filepath.Join(t.TempDir(), "orphans")
				code, out, stderr, err := runShort(initArgv(t, in, m.pid1, "sh", "-c", reapScript, "sh", f), "", 30*time.Second)
				if err != nil || code != 0 || !strings.Contains(out, "reaped 80") {
					t.Fatalf("exit %d (%v)\nstdout:\n%s\nstderr:\n%s", code, err, out, stderr)
				}
				if in.name == "berth" {
					noStackTrace(t, stderr)
				}
			})
		}
	}
}

// A zero-config run writes nothing of its own: tini and dumb-init print nothing without -v, and README "Signals"
// says the same of berth. The child's own output passes through byte for byte.
func TestPeerSuiteQuiet(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                string
		argv                []string
		wantStdout, wantErr string
		wantCode            int
	}{
		{"true", []string{"true"}, "", "", 0},
		{"output", []string{"sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2; printf tail"}, "out\ntail", "err\n", 0},
	}
	for _, in := range peerAll {
		for _, m := range modes {
			for _, c := range cases {
				t.Run(in.name+"/"+m.name+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					code, out, stderr, err := runShort(initArgv(t, in, m.pid1, c.argv...), "", 20*time.Second)
					if err != nil || code != c.wantCode {
						t.Fatalf("want exit %d, have %d (%v)\n%s", c.wantCode, code, err, stderr)
					}
					if out != c.wantStdout || stderr != c.wantErr {
						t.Fatalf("stdout %q stderr %q, want exactly %q and %q", out, stderr, c.wantStdout, c.wantErr)
					}
				})
			}
		}
	}
}

// dumb-init's cwd_test.py: the child starts in the directory the init was started in.
func TestPeerSuiteCwd(t *testing.T) {
	t.Parallel()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range peerAll {
		for _, m := range modes {
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				code, out, stderr, err := runShort(initArgv(t, in, m.pid1, "sh", "-c", "pwd -P"), dir, 20*time.Second)
				if err != nil || code != 0 || out != dir+"\n" {
					t.Fatalf("exit %d (%v): child's cwd %q, want %q\n%s", code, err, out, dir, stderr)
				}
			})
		}
	}
}

// exitJob is one run of an init with a child whose exit status the init must pass on (or map).
type exitJob struct {
	name string
	argv []string
	want int
}

// runExitJobs runs jobs three at a time and fails the test with every wrong exit status, sorted.
func runExitJobs(t *testing.T, what string, jobs []exitJob) {
	t.Helper()
	ch := make(chan exitJob)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				code, _, stderr, err := runShort(j.argv, "", 20*time.Second)
				if err != nil || code != j.want {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("%s: want %d, have %d (%v) %s", j.name, j.want, code, err, firstLine(stderr)))
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if len(fails) > 0 {
		slices.Sort(fails)
		t.Fatalf("%d of %d %s wrong:\n%s", len(fails), len(jobs), what, strings.Join(fails, "\n"))
	}
}
