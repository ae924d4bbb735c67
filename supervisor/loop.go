package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The loop (Run) makes every decision and never waits on anything but its inputs, as tini's loop waits only in
// sigtimedwait and waitpid: a signal is acted on at once, whatever hook or stop is in progress. Whatever takes
// time — a pre_start hook, stopping a process for a restart or a reload, a timer — runs beside it and reports
// back as an event through the mailbox.

type eventKind int

const (
	evExit    eventKind = iota // a process of a unit was reaped
	evWake                     // a restart back-off or a periodic job's period elapsed
	evHook                     // a pre_start hook finished (err set when it failed)
	evStopped                  // a stop for a restart or a reload finished
	evCall                     // a request from another goroutine (reload, restart, signal)
	evGate                     // a unit's Gate answered (grant or err set)
	evLost                     // a unit's grant was lost (gen is the grant's sequence)
)

type event struct {
	kind  eventKind
	u     *unit
	gen   int // u.gen when the event was set off; a stale event (the unit was restarted since) is dropped
	proc  *Process
	err   error
	fn    func()
	grant Grant
}

// mailbox is the loop's one input besides signals. post never blocks: the reaper calls it from its goroutine,
// and a reaper that waited on a busy loop would hold back every other exit.
type mailbox struct {
	mu    sync.Mutex
	q     []event
	ready chan struct{} // has a token while q is not empty
}

func newMailbox() *mailbox { return &mailbox{ready: make(chan struct{}, 1)} }

func (m *mailbox) post(ev event) {
	m.mu.Lock()
	m.q = append(m.q, ev)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.q
	m.q = nil
	return q
}

// Run is the supervisor actor: it returns when the shutdown sequence has finished. Cancelling ctx starts the
// shutdown sequence (another actor failed, or berth ctl asked to stop).
func (s *Supervisor) Run(ctx context.Context) error {
	defer close(s.quit)
	sigc := s.cfg.Signals
	if sigc == nil {
		// Every catchable signal is caught (SIGSEGV and friends sent by kill(2) included: the runtime still
		// crashes on a real fault), so none can kill berth or stop it (SIGTSTP, SIGTTIN, SIGTTOU); each one
		// reaches the main command's group. Those berth was started with ignored stay ignored.
		ch, stop, err := listen(s.reaper.inherited)
		if err != nil {
			return err
		}
		defer stop()
		sigc = ch
	}
	defer s.hookCancel()
	if s.cfg.ParentDeathSignal != 0 {
		// Only now that the signal is caught: set earlier, a parent dying in between would kill berth
		// with the signal's default action.
		if err := watchParent(s.cfg.ParentDeathSignal, s.ppid, s.quit, s.log); err != nil {
			s.setCode(70)
			return err
		}
	}

	if err := s.prepare(ctx, sigc); err != nil {
		s.shutdown(sigc, 0)
		return err
	}
	if s.cfg.Main == nil {
		s.log.Info("running without a main command (sidecar mode)", "jobs", len(s.cfg.Jobs))
	}
	for {
		if err := s.startReady(); err != nil {
			s.shutdown(sigc, 0)
			return err
		}
		if s.finished() {
			s.log.Info("nothing left to run")
			s.shutdown(sigc, 0)
			return nil
		}
		select {
		case sig := <-sigc:
			if isStopSignal(sig) {
				s.log.Info("stopping", "signal", sig)
				s.shutdown(sigc, sig.(syscall.Signal))
				return nil
			}
			s.forward(sig.(syscall.Signal))
		case <-s.box.ready:
			for _, ev := range s.box.take() {
				if err := s.handle(ev); err != nil {
					s.shutdown(sigc, 0)
					if errors.Is(err, errMainExited) {
						return nil
					}
					return err
				}
			}
		case <-ctx.Done():
			s.shutdown(sigc, 0)
			return nil
		}
	}
}

var errMainExited = errors.New("main command exited")

// handle applies one event on the loop.
func (s *Supervisor) handle(ev event) error {
	switch ev.kind {
	case evCall:
		ev.fn()
		return nil
	case evGate:
		return s.handleGate(ev)
	case evLost:
		s.handleLost(ev)
		return nil
	}
	u := ev.u
	if u.gen != ev.gen {
		return nil // the unit was restarted or replaced since
	}
	switch ev.kind {
	case evExit:
		if u.proc != ev.proc {
			return nil
		}
		return s.handleExit(u, ev.proc.Exit())
	case evWake:
		if u.state != stateBackoff && u.state != stateWaiting {
			return nil
		}
		return s.startUnit(u)
	case evHook:
		if u.state != stateStarting {
			return nil
		}
		if ev.err != nil {
			s.log.Error("pre_start hook failed", "job", u.job.Name, "error", ev.err)
			if u.isMain {
				s.setCode(1)
				return ev.err
			}
			return s.handleFailure(u, Exit{Code: 1})
		}
		return s.spawn(u)
	case evStopped:
		if u.state != stateStopping {
			return nil
		}
		s.mu.Lock()
		u.proc = nil
		u.state = u.after
		s.mu.Unlock()
		s.release(u, -1)
	}
	return nil
}

// startReady starts every pending unit whose `after` is satisfied, in declaration order, until nothing more
// becomes ready: a service started in this pass may be what a later unit waits for.
func (s *Supervisor) startReady() error {
	for progress := true; progress; {
		progress = false
		for _, name := range s.order {
			u := s.units[name]
			if u.state != statePending || !s.ready(u) {
				continue
			}
			if err := s.startUnit(u); err != nil {
				return err
			}
			progress = true
		}
	}
	return nil
}

// finished: without a main command and not resident, berth is done when no unit can run again.
func (s *Supervisor) finished() bool {
	if s.cfg.Main != nil || s.cfg.Resident {
		return false
	}
	for _, u := range s.units {
		if u.job.Type == Service || u.job.Every > 0 {
			return false
		}
		if u.state != stateDone && u.state != stateFailed {
			return false
		}
	}
	return true
}

// startUnit starts u: its pre_start hook first, beside the loop, then (on evHook) its process.
func (s *Supervisor) startUnit(u *unit) error {
	if u.job.Gate != nil && !u.granted {
		s.gateStart(u) // evGate comes back to startUnit with the grant
		return nil
	}
	h := u.job.PreStart
	if h == nil || len(h.Argv) == 0 {
		return s.spawn(u)
	}
	s.setState(u, stateStarting)
	spec, gen := u.job.Spec, u.gen
	go func() {
		err := s.runHook(s.hookCtx, spec, h, "pre_start")
		s.box.post(event{kind: evHook, u: u, gen: gen, err: err})
	}()
	return nil
}

// spawn starts u's process. A main command that cannot start ends berth (127/126); a job that cannot start
// counts as a failed run.
func (s *Supervisor) spawn(u *unit) error {
	s.mu.Lock()
	spec := u.job.Spec // copied under the lock: SetEnv (secret refresh) writes it from another goroutine
	// Clone keeps an empty environment (pristine) empty: a nil one would inherit berth's (os/exec).
	spec.Env = slices.Clone(spec.Env)
	for k, v := range s.envAdd {
		spec.Env = setEnv(spec.Env, k, v)
	}
	gen := u.gen
	s.mu.Unlock()
	p, err := s.start(spec, func(p *Process) { s.box.post(event{kind: evExit, u: u, gen: gen, proc: p}) })
	if err != nil {
		var se *StartError
		code := 126
		if errors.As(err, &se) {
			code = se.Code
		}
		if u.isMain {
			s.setCode(code)
			return err
		}
		s.log.Error("job failed to start", "job", u.job.Name, "error", err)
		return s.handleFailure(u, Exit{Code: code})
	}
	s.mu.Lock()
	u.proc = p
	u.state = stateRunning
	u.lastStart = time.Now()
	if u.startSeq == 0 {
		s.seq++
		u.startSeq = s.seq
	}
	s.mu.Unlock()
	return nil
}

// handleExit applies the restart policy to an exited process.
func (s *Supervisor) handleExit(u *unit, e Exit) error {
	s.mu.Lock()
	u.lastExit = &e
	u.proc = nil
	s.mu.Unlock()
	s.release(u, e.Code)
	if s.cfg.Events != nil {
		s.cfg.Events.ProcessExited(u.job.Name, e, s.willRestart(u, e))
	}
	if u.isMain {
		s.log.Info("main command exited", "code", e.Code)
		s.setMainCode(e.Code)
		return errMainExited
	}
	s.log.Info("job exited", "job", u.job.Name, "code", e.Code)
	if e.Code == 0 && u.job.Type == Oneshot {
		s.mu.Lock()
		u.succeeded = true
		u.restarts = 0
		u.backoff = 0
		s.mu.Unlock()
		if u.job.Every > 0 {
			s.schedule(u, time.Until(u.lastStart.Add(u.job.Every)), stateWaiting)
		} else {
			s.setState(u, stateDone)
		}
		return nil
	}
	if e.Code == 0 && u.job.Restart == RestartOnFailure {
		s.setState(u, stateDone)
		return nil
	}
	return s.handleFailure(u, e)
}

// willRestart tells whether handleExit will restart u after e (for the restart metric and event).
func (s *Supervisor) willRestart(u *unit, e Exit) bool {
	if u.isMain || (e.Code == 0 && (u.job.Type == Oneshot || u.job.Restart == RestartOnFailure)) {
		return false
	}
	restart := u.job.Restart == RestartAlways || (u.job.Restart == RestartOnFailure && e.Code != 0)
	return restart && (u.job.MaxRestarts == 0 || u.restarts < u.job.MaxRestarts)
}

// handleFailure decides between a back-off restart, waiting for the next period, and giving up.
func (s *Supervisor) handleFailure(u *unit, e Exit) error {
	s.release(u, e.Code)
	restart := u.job.Restart == RestartAlways || (u.job.Restart == RestartOnFailure && e.Code != 0)
	if restart && (u.job.MaxRestarts == 0 || u.restarts < u.job.MaxRestarts) {
		s.mu.Lock()
		u.restarts++
		u.backoff = nextBackoff(u.backoff, time.Since(u.lastStart))
		d := u.backoff
		s.mu.Unlock()
		s.log.Info("restarting job", "job", u.job.Name, "in", d, "restarts", u.restarts)
		s.schedule(u, d, stateBackoff)
		return nil
	}
	if u.job.Every > 0 {
		s.log.Warn("periodic job failed; next run on schedule", "job", u.job.Name, "code", e.Code)
		s.schedule(u, time.Until(u.lastStart.Add(u.job.Every)), stateWaiting)
		return nil
	}
	s.setState(u, stateFailed)
	if u.job.Optional {
		s.log.Warn("optional job gave up", "job", u.job.Name, "code", e.Code)
		return nil
	}
	if u.job.Type == Oneshot {
		s.log.Error("job failed", "job", u.job.Name, "code", e.Code)
		s.setCode(e.Code)
		return &JobFailedError{Job: u.job.Name, Code: e.Code}
	}
	err := &GaveUpError{Job: u.job.Name, Restarts: u.restarts, Last: e}
	s.log.Error("job gave up", "job", u.job.Name, "restarts", u.restarts, "code", e.Code)
	s.setCode(err.ExitCode())
	return err
}

func (s *Supervisor) setState(u *unit, st unitState) {
	s.mu.Lock()
	u.state = st
	s.mu.Unlock()
}

// schedule starts u again after d (back-off or the next period) through the loop.
func (s *Supervisor) schedule(u *unit, d time.Duration, st unitState) {
	s.setState(u, st)
	if d < 0 {
		d = 0
	}
	gen := u.gen
	u.timer = time.AfterFunc(d, func() { s.box.post(event{kind: evWake, u: u, gen: gen}) })
}

// stopUnit stops u's process beside the loop (a restart or a reload) and moves u to next once it is gone, so
// a new run never overlaps the old one. Stale exits and timers of the old run no longer count.
func (s *Supervisor) stopUnit(u *unit, next unitState) {
	s.mu.Lock()
	u.gen++
	if u.timer != nil {
		u.timer.Stop()
	}
	p := u.proc
	u.restarts = 0
	u.backoff = 0
	if p == nil {
		u.state = next
		s.mu.Unlock()
		return
	}
	u.state, u.after = stateStopping, next
	gen := u.gen
	s.mu.Unlock()
	go func() {
		p.Stop(context.Background(), 0)
		s.box.post(event{kind: evStopped, u: u, gen: gen, proc: p})
	}()
}

// prepare runs cfg.Prepare; a stop signal cancels it and berth exits 128+signal with nothing started.
func (s *Supervisor) prepare(ctx context.Context, sigc <-chan os.Signal) error {
	if s.cfg.Prepare == nil {
		return nil
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.cfg.Prepare(pctx) }()
	for {
		select {
		case err := <-errc:
			if err != nil {
				code := 1
				var ec interface{ ExitCode() int }
				if errors.As(err, &ec) {
					code = ec.ExitCode()
				}
				s.setCode(code)
			}
			return err
		case sig := <-sigc:
			if isStopSignal(sig) {
				s.log.Info("stop signal before start; nothing was started", "signal", sig)
				cancel()
				<-errc
				s.setCode(128 + int(sig.(syscall.Signal)))
				return fmt.Errorf("interrupted by %s before start", SignalName(sig.(syscall.Signal)))
			}
		}
	}
}

// forward passes sig (after rewrite) to the main command's process group, or to the main command alone
// with signal_scope "child".
func (s *Supervisor) forward(sig syscall.Signal) {
	if to, ok := s.cfg.SignalRewrite[sig]; ok {
		sig = to
	}
	main := s.mainProc()
	if main == nil {
		return
	}
	s.log.Debug("forwarding signal", "signal", SignalName(sig), "pid", main.Pid(), "scope", s.cfg.SignalScope)
	if err := main.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("forwarding signal failed", "signal", SignalName(sig), "error", err)
	}
}

func isStopSignal(sig os.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
}
