package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Defaults of the stop sequence (stop_timeout, kill_grace, hook timeout).
const (
	// DefaultStopTimeout is Spec.StopTimeout when it is 0: the time between the stop signal and SIGKILL.
	DefaultStopTimeout = 10 * time.Second
	// DefaultKillGrace is Config.KillGrace when it is 0: the time leftover processes get between SIGTERM and
	// SIGKILL at the end.
	DefaultKillGrace = 3 * time.Second
	// DefaultHookTimeout is Hook.Timeout when it is 0.
	DefaultHookTimeout = 30 * time.Second
)

// Spec describes one process: the main command, or one run of a job.
type Spec struct {
	Name        string         // job name; "main" for the main command
	Argv        []string       // command and arguments; Argv[0] is looked up in the PATH of Env
	Env         []string       // complete environment, KEY=VALUE
	Dir         string         // working directory; "" = berth's
	User        *Credential    // nil = berth's own identity
	Umask       int            // -1 = inherit berth's umask
	Rlimits     []Rlimit       // applied to the process before it runs
	StopSignal  syscall.Signal // signal that asks it to stop; 0 = SIGTERM
	StopTimeout time.Duration  // how long to wait after StopSignal before SIGKILL; 0 = DefaultStopTimeout
	Stdin       bool           // give it berth's stdin (the main command) instead of /dev/null
	TTY         bool           // make its process group the terminal's foreground group

	childOnly bool // Signal and the stop signal reach the process only, not its group (Config.SignalScope)
}

// Inherit fills in what s leaves unset from top, the settings of every process (top-level user,
// stop_signal, stop_timeout): User when nil, StopSignal and StopTimeout when 0.
func (s Spec) Inherit(top Spec) Spec {
	if s.User == nil {
		s.User = top.User
	}
	if s.StopSignal == 0 {
		s.StopSignal = top.StopSignal
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = top.StopTimeout
	}
	return s
}

// Output receives supervised processes' output. telemetry.Streamer implements it.
type Output interface {
	// Passthrough reports that output needs no processing: the child then writes to berth's own
	// stdout/stderr directly (zero copy; a TTY stays a TTY).
	Passthrough() bool
	// Stream copies r to the stdout or stderr sink until EOF.
	Stream(job, stream string, r io.Reader) error
}

// StartError is a failure to start a command; ExitCode is 127 (not found) or 126 (not executable), as a shell
// would report (README "Exit codes").
type StartError struct {
	Name string
	Path string
	Err  error
	Code int
}

func (e *StartError) Error() string {
	return fmt.Sprintf("%s: cannot run %s: %v", e.Name, e.Path, e.Err)
}
func (e *StartError) Unwrap() error { return e.Err }
func (e *StartError) ExitCode() int { return e.Code }

// Process is one running process of a Spec, in its own process group. It is created by start and finished
// when Done is closed.
type Process struct {
	spec    Spec
	pid     int
	started time.Time
	done    chan struct{}
	exit    Exit
	streams sync.WaitGroup // output copiers; they end at EOF, which may outlive the process (a daemonised child)
	drained chan struct{}  // closed when every output copier returned
	log     hclog.Logger

	mu     sync.Mutex
	exited bool
	// The stop under way, if any: a second Stop (the shutdown reaching a job a restart or reload is
	// already stopping) continues it, keeping its deadline, instead of granting a fresh stop_timeout.
	stopBy  time.Time
	stopSig syscall.Signal
	killed  bool // the stop's SIGKILL was sent
}

// Pid is the process id (and process group id).
func (p *Process) Pid() int { return p.pid }

// Done is closed when the process has been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit is valid after Done is closed.
func (p *Process) Exit() Exit { <-p.done; return p.exit }

// Signal sends sig to the process's group (to the process alone for a main command with signal_scope
// "child"), unless it has already been reaped (its pid may be reused). The group outlives its leader, so
// signalGroup is used for leftovers.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return os.ErrProcessDone
	}
	if p.spec.childOnly {
		return unix.Kill(p.pid, sig)
	}
	return unix.Kill(-p.pid, sig)
}

// signalGroup signals the whole group even after the leader was reaped: a process group id is not reused
// while any member lives, so this reaches leftovers and nobody else.
func (p *Process) signalGroup(sig syscall.Signal) {
	_ = unix.Kill(-p.pid, sig)
}

// Stop sends the stop signal (sig, or the spec's) through Signal, waits the stop timeout and then SIGKILLs
// the group. It returns at once when the process is already gone (consul-template #1101) and is bounded by
// the timeout. With childOnly the group's leftovers get no stop signal: the shutdown's leftover step ends
// them. A Stop while another is under way joins it: the deadline stays the first one's (the shutdown does not
// grant a job a restart or reload is stopping a second stop_timeout), and the signal is sent again only when
// it differs from the one already sent.
func (p *Process) Stop(ctx context.Context, sig syscall.Signal) Exit {
	if sig == 0 {
		sig = p.spec.StopSignal
	}
	select {
	case <-p.done:
		if !p.spec.childOnly {
			p.signalGroup(sig) // leftovers of the group, if any
		}
		return p.exit
	default:
	}
	p.mu.Lock()
	joined := !p.stopBy.IsZero()
	if !joined {
		p.stopBy, p.stopSig = time.Now().Add(p.spec.StopTimeout), sig
	}
	deadline, resend := p.stopBy, !joined || sig != p.stopSig
	p.stopSig = sig // the signal sent last: a third Stop compares with it
	p.mu.Unlock()
	if joined {
		p.log.Debug("stop already under way; waiting for it", "signal", SignalName(sig), "left", time.Until(deadline).Round(time.Millisecond))
	} else {
		p.log.Debug("stopping", "signal", SignalName(sig), "timeout", p.spec.StopTimeout)
	}
	if resend {
		_ = p.Signal(sig)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill("did not stop in time, sending SIGKILL")
		<-p.done
	case <-ctx.Done():
		p.kill("")
		<-p.done
	}
	return p.exit
}

// kill SIGKILLs the group, logging why the first time (two joined stops reach their deadline together).
func (p *Process) kill(why string) {
	p.mu.Lock()
	first := !p.killed
	p.killed = true
	p.mu.Unlock()
	if first && why != "" {
		p.log.Warn(why, "timeout", p.spec.StopTimeout)
	}
	p.signalGroup(unix.SIGKILL)
}

// waitStreams waits up to d for the output copiers to reach EOF.
func (p *Process) waitStreams(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.drained:
	case <-t.C:
	}
}

// lookPath finds argv0 in the PATH of env (the child's PATH, not berth's), with the shell's exit codes:
// 127 when nothing is found, 126 when a match exists but cannot be executed.
func lookPath(name, argv0, dir string, env []string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("is a directory: %w", fs.ErrPermission)
		}
		if fi.Mode()&0o111 == 0 {
			return fmt.Errorf("not executable: %w", fs.ErrPermission)
		}
		return nil
	}
	classify := func(p string, err error) error {
		code := 127
		if errors.Is(err, fs.ErrPermission) {
			code = 126
		}
		return &StartError{Name: name, Path: p, Err: err, Code: code}
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p) // exec resolves a relative command against the child's working directory
		}
		if err := check(p); err != nil {
			return "", classify(argv0, err)
		}
		return argv0, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && errors.Is(err, fs.ErrPermission) {
			denied = classify(p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", &StartError{Name: name, Path: argv0, Err: errors.New("command not found"), Code: 127}
}

// startOpts is what the supervisor lends a process at start.
type startOpts struct {
	reaper *Reaper
	output Output
	log    hclog.Logger
	mu     *sync.Mutex // serialises process-wide umask/rlimit changes around fork
	// onExit, if set, is called once from the reaper's goroutine after Done is closed; it must not block.
	onExit func(*Process)
}

// start starts spec under the reaper. Process-wide attributes the child must inherit (umask, rlimits) are set
// on berth around the fork under opts.mu and restored right after: Go's SysProcAttr cannot set them in the
// child, and a re-exec shim would cost every start a second Go runtime init.
func start(spec Spec, opts startOpts) (*Process, error) {
	if len(spec.Argv) == 0 {
		return nil, &StartError{Name: spec.Name, Path: "", Err: errors.New("empty command"), Code: 127}
	}
	if spec.StopSignal == 0 {
		spec.StopSignal = unix.SIGTERM
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = DefaultStopTimeout
	}
	path, err := lookPath(spec.Name, spec.Argv[0], spec.Dir, spec.Env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: spec.Argv, Env: spec.Env, Dir: spec.Dir}
	if exe, args, ok := shimArgv(opts.reaper.inherited, path, spec.Argv); ok {
		cmd.Path, cmd.Args = exe, args // keeps the ignored signals berth itself cannot hold (shim_linux.go)
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if spec.TTY {
		attr.Foreground = true
		attr.Ctty = 0
	}
	if spec.User != nil {
		attr.Credential = &syscall.Credential{Uid: spec.User.UID, Gid: spec.User.GID, Groups: []uint32{}}
	}
	cmd.SysProcAttr = attr

	var closeAfter []*os.File
	var readers [2]*os.File
	if spec.Stdin {
		cmd.Stdin = os.Stdin
	}
	if opts.output == nil || opts.output.Passthrough() || spec.TTY {
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	} else {
		for i := range readers {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, fmt.Errorf("%s: output pipe: %w", spec.Name, err)
			}
			// Blocking reads, like cat: Go's poller would otherwise park the copier on EAGAIN and wake it
			// through epoll every time the pipe runs dry, costing about half the throughput. Fd() switches the
			// descriptor to blocking mode; the copier then blocks in read(2) on its own thread.
			_ = r.Fd()
			readers[i] = r
			closeAfter = append(closeAfter, w)
		}
		cmd.Stdout, cmd.Stderr = closeAfter[0], closeAfter[1]
	}
	closeAll := func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}

	opts.mu.Lock()
	restore, err := applyInherited(spec)
	if err != nil {
		opts.mu.Unlock()
		closeAll()
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	p := &Process{spec: spec, started: time.Now(), done: make(chan struct{}), drained: make(chan struct{})}
	pid, err := opts.reaper.Start(cmd, func(e Exit) {
		p.mu.Lock()
		p.exited = true
		p.exit = e
		p.mu.Unlock()
		close(p.done)
		if opts.onExit != nil {
			opts.onExit(p)
		}
	})
	restore()
	opts.mu.Unlock()
	closeAll() // the child holds its own copies of the write ends
	if err != nil {
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
		code := 126
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return nil, &StartError{Name: spec.Name, Path: path, Err: errors.Unwrap(err), Code: code}
	}
	p.pid = pid // the exit callback never reads it; everything else runs after start returns
	p.log = opts.log.With("job", spec.Name, "pid", pid)
	for i, r := range readers {
		if r == nil {
			continue
		}
		stream := [2]string{"stdout", "stderr"}[i]
		p.streams.Add(1)
		go func() {
			defer p.streams.Done()
			defer r.Close()
			if err := opts.output.Stream(spec.Name, stream, r); err != nil {
				p.log.Warn("output stream failed", "stream", stream, "error", err)
				_, _ = io.Copy(io.Discard, r) // keep the pipe drained so the child never blocks forever
			}
		}()
	}
	go func() { p.streams.Wait(); close(p.drained) }()
	return p, nil
}

// applyInherited sets umask and rlimits on berth so the next fork inherits them, and returns the undo.
func applyInherited(spec Spec) (restore func(), err error) {
	var undo []func()
	restore = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if spec.Umask >= 0 {
		old := unix.Umask(spec.Umask)
		undo = append(undo, func() { unix.Umask(old) })
	}
	for _, rl := range spec.Rlimits {
		var old unix.Rlimit
		if err := unix.Getrlimit(rl.Resource, &old); err != nil {
			restore()
			return func() {}, fmt.Errorf("getrlimit %s: %w", rl.Name, err)
		}
		if err := unix.Setrlimit(rl.Resource, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			restore()
			return func() {}, fmt.Errorf("rlimit %s=%d:%d: %w", rl.Name, rl.Soft, rl.Hard, err)
		}
		undo = append(undo, func() { _ = unix.Setrlimit(rl.Resource, &old) })
	}
	return restore, nil
}
