package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

func exitFromStatus(pid int, ws unix.WaitStatus) Exit {
	switch {
	case ws.Signaled():
		return Exit{Pid: pid, Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	default:
		return Exit{Pid: pid, Code: ws.ExitStatus()}
	}
}

// Reaper is the one owner of wait4 in berth (containerd's sys/reaper design). Every child berth starts goes
// through Start, which registers its pid before the reaper can collect it, so an exit status is never lost to
// the orphan-reaping loop (the go-reaper #2/#11 and ContainerPilot bug). Any other child that turns up — an
// orphan re-parented to berth as PID 1 or as a child subreaper — is reaped and counted.
type Reaper struct {
	log       hclog.Logger
	inherited inherited  // the signal state berth started with, given to every child
	mu        sync.Mutex // held across fork+register and across each wait4 sweep
	waiters   map[int]func(Exit)
	swept     chan struct{} // closed (and replaced) by every sweep that reaped something
	orphans   atomic.Uint64
	sigc      chan os.Signal
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

// reaperLive makes a second Reaper in one process an error: two wait4(-1) loops would steal each other's
// exit statuses (go-reaper #2/#11). Process-wide by nature, like wait4 itself.
var reaperLive atomic.Bool

// NewReaper makes berth a child subreaper when it is not PID 1 and starts the reaping goroutine. Close stops it;
// it must outlive every process berth starts, so cmd/berth starts it first and closes it last.
func NewReaper(log hclog.Logger) (*Reaper, error) {
	if !reaperLive.CompareAndSwap(false, true) {
		return nil, errors.New("supervisor: a Reaper is already running in this process (one wait4 owner)")
	}
	if os.Getpid() != 1 {
		// Without it (qemu-user, old kernels) berth still supervises its own children; orphans of theirs go to
		// the namespace's init instead. tini warns and carries on too.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Warn("cannot become a child subreaper: orphans of the main command will not be reaped by berth",
				"error", err)
		}
	}
	r := &Reaper{
		log:       log,
		inherited: startSignalState(),
		waiters:   make(map[int]func(Exit)),
		swept:     make(chan struct{}),
		sigc:      make(chan os.Signal, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	signal.Notify(r.sigc, unix.SIGCHLD)
	go r.loop()
	return r, nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.sigc:
			r.sweep()
		case <-r.stop:
			signal.Stop(r.sigc)
			r.sweep()
			return
		}
	}
}

// sweep collects every exited child and hands each exit of a process berth started to its callback, after
// releasing the lock (a callback may take its time; the next sweep must not wait for it). It reports whether
// berth has no children left at all.
func (r *Reaper) sweep() (none bool) {
	type delivery struct {
		f func(Exit)
		e Exit
	}
	var out []delivery
	r.mu.Lock()
	reaped := false
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			none = true
			break
		}
		if err != nil || pid <= 0 {
			break
		}
		if ws.Stopped() || ws.Continued() {
			continue
		}
		reaped = true
		if f, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			out = append(out, delivery{f, exitFromStatus(pid, ws)})
			continue
		}
		r.orphans.Add(1)
		r.log.Trace("reaped orphan", "pid", pid)
	}
	if reaped {
		close(r.swept)
		r.swept = make(chan struct{})
	}
	r.mu.Unlock()
	for _, d := range out {
		d.f(d.e)
	}
	return none
}

// Swept returns a channel closed by the next sweep that reaps a process: what the shutdown waits on instead
// of polling for leftovers to go. Take it before checking NoChildren, so no exit falls in between.
func (r *Reaper) Swept() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.swept
}

// NoChildren sweeps once and reports whether berth has no child processes left.
func (r *Reaper) NoChildren() bool { return r.sweep() }

// Orphans is the number of processes reaped that berth did not start itself.
func (r *Reaper) Orphans() uint64 { return r.orphans.Load() }

// Start starts cmd and registers onExit, which the reaper calls exactly once, from its own goroutine, with the
// process's exit: one hop from wait4 to whoever started it. Never call cmd.Wait: the reaper has the status.
// cmd.Process is released (its pidfd closed) before onExit runs, so callers use the returned pid.
func (r *Reaper) Start(cmd *exec.Cmd, onExit func(Exit)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.startWithMask(cmd); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	proc := cmd.Process
	r.waiters[pid] = func(e Exit) {
		_ = proc.Release()
		onExit(e)
	}
	return pid, nil
}

// startWithMask starts cmd from a thread whose signal mask is the one berth was started with: the runtime
// hands the forking thread's mask to the child, and Go's own thread masks lack the signals it needs
// unblocked (SIGTERM, SIGILL, ...), which would lose a mask set by the parent (tini's sigconf test).
func (r *Reaper) startWithMask(cmd *exec.Cmd) error {
	if !r.inherited.known {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.Sigset_t
	want := unix.Sigset_t{Val: [16]uint64{r.inherited.mask}}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &want, &old); err != nil {
		return cmd.Start()
	}
	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }()
	return cmd.Start()
}

// Close stops the reaping goroutine after a last sweep.
func (r *Reaper) Close() {
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		reaperLive.Store(false)
	})
	<-r.done
}
