package supervisor

import (
	"bytes"
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// shutdown is the sequence of README "How it works". sig is the stop signal berth received (0 when the main command exited
// or berth decided to stop). Every step is bounded.
func (s *Supervisor) shutdown(sigc <-chan os.Signal, sig syscall.Signal) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopping = true
	s.hookCancel() // a pre_start hook still running is killed: nothing more starts
	var mainU *unit
	var jobs []*unit
	for _, u := range s.units {
		if u.timer != nil {
			u.timer.Stop()
		}
		if u.isMain {
			mainU = u
		} else if u.startSeq > 0 {
			jobs = append(jobs, u)
		}
	}
	s.mu.Unlock()
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].startSeq > jobs[j].startSeq }) // reverse start order

	// Signals that arrive while we stop still reach the main command (a second Ctrl-C, a SIGUSR1).
	fwdStop := make(chan struct{})
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		for {
			select {
			case sg := <-sigc:
				s.forward(sg.(syscall.Signal))
			case <-fwdStop:
				return
			}
		}
	}()
	defer func() { close(fwdStop); <-fwdDone }()

	// 1. Drain first: deregister from Consul before the application hears anything.
	if len(s.cfg.Drain) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
		var wg sync.WaitGroup
		for _, d := range s.cfg.Drain {
			wg.Add(1)
			go func() { defer wg.Done(); d(ctx) }()
		}
		waitCtx(ctx, &wg)
		cancel()
	}
	main := s.mainProc()
	mainStarted := mainU != nil && mainU.startSeq > 0
	if mainU != nil && !mainStarted && sig != 0 {
		s.setCode(128 + int(sig)) // stopped before the main command started (a pre_start hook, an `after` wait)
	}
	// 2. drain_delay, skipped when the main command is already gone (nothing left to drain for).
	// In sidecar mode (no main command) the delay is the app's drain window: ECS stops the app only after the
	// resident sidecar that deregistered it has exited.
	if s.cfg.DrainDelay > 0 && (main != nil || s.cfg.Main == nil) {
		var gone <-chan struct{} // nil in sidecar mode: the whole delay
		if main != nil {
			gone = main.Done()
		}
		select {
		case <-time.After(s.cfg.DrainDelay):
		case <-gone:
		}
	}
	// 3. pre_stop hooks, with the main command's identity.
	if mainStarted {
		s.hookWarn(mainU.job.Spec, mainU.job.PreStop, "pre_stop")
	}

	// 4-5. stop_signal to the main command, then the jobs in reverse start order, each with its
	// stop_timeout before SIGKILL of its group.
	if main != nil {
		stopSig := main.spec.StopSignal
		if sig != 0 && sig != unix.SIGTERM {
			stopSig = sig // SIGINT/SIGQUIT pass through as received
		}
		if to, ok := s.cfg.SignalRewrite[sig]; ok && sig != 0 {
			stopSig = to
		}
		e := main.Stop(context.Background(), stopSig)
		s.setMainCode(e.Code)
		s.exitedAtStop(MainName, main.Exit())
	}
	for _, u := range jobs {
		s.mu.Lock()
		p := u.proc
		s.mu.Unlock()
		if p == nil {
			continue
		}
		s.hookWarn(u.job.Spec, u.job.PreStop, "pre_stop")
		p.Stop(context.Background(), 0)
		s.setState(u, stateStopped)
		s.exitedAtStop(u.job.Name, p.Exit())
		s.hookWarn(u.job.Spec, u.job.PostStop, "post_stop")
	}
	// Processes no unit holds any more (a job removed by a reload, still being stopped) are stopped too.
	s.mu.Lock()
	detached := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range detached {
		select {
		case <-p.Done():
		default:
			p.Stop(context.Background(), 0)
		}
	}

	// Locks are given back only now that their processes are gone: a standby may start at once (a release
	// carries no lock-delay), and never while the old holder still runs.
	s.releaseAll(s.cfg.DrainTimeout)

	// 6. leftovers: as PID 1 every process in the namespace, else every child re-parented to us.
	s.killLeftovers()

	// 7. post_stop hooks, then give output copiers one shared, bounded moment to flush.
	if mainStarted {
		s.hookWarn(mainU.job.Spec, mainU.job.PostStop, "post_stop")
	}
	s.mu.Lock()
	procs := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	deadline := time.Now().Add(s.cfg.StreamDrain)
	for _, p := range procs {
		p.waitStreams(time.Until(deadline))
	}
}

// exitedAtStop reports an exit caused by the shutdown sequence: the run loop that reports every other exit
// has stopped, and without this berth.process.exits would never count the main command's last exit.
func (s *Supervisor) exitedAtStop(name string, e Exit) {
	if s.cfg.Events != nil {
		s.cfg.Events.ProcessExited(name, e, false)
	}
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-ctx.Done():
	}
}

func (s *Supervisor) killLeftovers() {
	pid1 := os.Getpid() == 1
	// signalAll signals every leftover: as PID 1 kill(-1) reaches the whole namespace but berth; as a
	// subreaper only berth's current children, so it is repeated: a TERM-ignoring child killed here
	// re-parents its own children to berth, and they must not outlive it. seen keeps a process from
	// getting its SIGTERM twice.
	signalAll := func(sig syscall.Signal, seen map[int]bool) int {
		if pid1 {
			if err := unix.Kill(-1, sig); err != nil {
				return 0
			}
			return 1
		}
		n := 0
		for _, pid := range childPids(os.Getpid()) {
			n++
			if seen[pid] {
				continue
			}
			if seen != nil {
				seen[pid] = true
			}
			_ = unix.Kill(pid, sig)
		}
		return n
	}
	// gone waits, without polling, until berth has no child left (true) or deadline passes (false). Every
	// reap wakes it; then again runs, which signals whoever was re-parented to berth by that death.
	gone := func(deadline time.Time, again func()) bool {
		for {
			swept := s.reaper.Swept() // before the check, so an exit in between still wakes us
			if s.reaper.NoChildren() {
				return true
			}
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			t := time.NewTimer(left)
			select {
			case <-swept:
			case <-t.C:
			}
			t.Stop()
			again()
		}
	}
	if s.reaper.NoChildren() {
		return
	}
	termed := map[int]bool{}
	if signalAll(unix.SIGTERM, termed) == 0 {
		return
	}
	s.log.Debug("terminating leftover processes", "grace", s.cfg.KillGrace)
	if gone(time.Now().Add(s.cfg.KillGrace), func() {
		if !pid1 {
			signalAll(unix.SIGTERM, termed) // newly re-parented ones get their TERM too
		}
	}) {
		return
	}
	s.log.Warn("leftover processes did not exit within kill_grace, sending SIGKILL", "kill_grace", s.cfg.KillGrace)
	signalAll(unix.SIGKILL, nil)
	gone(time.Now().Add(time.Second), func() { signalAll(unix.SIGKILL, nil) })
}

// childPids lists the pids whose parent is ppid, from /proc.
func childPids(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// the comm field may contain spaces and parens: parse after the last ')'
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp == ppid {
			out = append(out, pid)
		}
	}
	return out
}
