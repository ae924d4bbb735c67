package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Events receives process lifecycle events (metrics, status). Implementations must not block.
type Events interface {
	ProcessStarted(job string, pid int)
	ProcessExited(job string, e Exit, restarting bool)
}

// Hook is a command run at a point of the lifecycle (pre_stop, post_stop), bounded by Timeout.
type Hook struct {
	Name    string
	Argv    []string
	Timeout time.Duration // 0 = 30s
}

// Config is everything the supervisor needs. cmd/berth fills it from flags, env and the config file.
type Config struct {
	// Main is the main command; nil runs berth without one (sidecar mode, SPEC §8).
	Main *Spec
	// MainAfter names the jobs the main command waits for (`after` of the main block).
	MainAfter []string
	// MainPreStart, MainPreStop and MainPostStop are the main command's hooks. They run with the main
	// command's env, dir, user and umask, and pre_stop/post_stop only if it was started.
	MainPreStart, MainPreStop, MainPostStop *Hook
	// Jobs are the other processes, in declaration order.
	Jobs []JobSpec
	// Resident keeps a berth without a main command running until it is told to stop. When false and Main is
	// nil, berth exits once Prepare and every oneshot job have finished (ECS dependsOn: COMPLETE); a service
	// or periodic job makes it resident anyway.
	Resident bool
	// KillGrace is how long leftover processes get between SIGTERM and SIGKILL at the end (default 3s).
	KillGrace time.Duration
	// DrainDelay is waited after Drain and before anything is signalled, so load balancers notice.
	DrainDelay time.Duration
	// DrainTimeout bounds the Drain functions together (default 10s): berth never hangs on a dead Consul.
	DrainTimeout time.Duration
	// SignalRewrite maps a received signal to the one forwarded (TERM → QUIT for nginx).
	SignalRewrite map[syscall.Signal]syscall.Signal
	// Signals, when set, replaces berth's real signals (unit tests inject them here).
	Signals <-chan os.Signal
	// Output receives the processes' stdout/stderr; nil passes the file descriptors through.
	Output Output
	// Prepare runs before any process starts (secrets, peers, required registration). A stop signal cancels
	// its context. Its error ends berth with that error's exit code and nothing started.
	Prepare func(ctx context.Context) error
	// Drain functions run first in the shutdown sequence (deregister from Consul), before any signal is sent.
	Drain []func(ctx context.Context)
	// Events, if set, is told about starts and exits.
	Events Events
	// StreamDrain bounds how long berth waits at exit for output still in pipes (default 2s).
	StreamDrain time.Duration
}

// Supervisor is berth's PID-1 core: it starts the main command and the jobs in `after` order, restarts
// them by policy, forwards signals to the main command's process group and runs the shutdown sequence of
// SPEC §3. One goroutine (Run's loop) makes every decision; other goroutines talk to it through channels.
type Supervisor struct {
	cfg    Config
	log    hclog.Logger
	reaper *Reaper
	forkMu sync.Mutex

	exits chan unitExit // process exits, to the loop
	wake  chan string   // timers (restart back-off, periodic runs), to the loop
	reqs  chan func()   // requests from other goroutines (reload, restart, signal), run on the loop
	quit  chan struct{} // closed when Run returns

	mu       sync.Mutex // guards the fields below for readers outside the loop (Status, ExitCode)
	units    map[string]*unit
	order    []string // declaration order: jobs, then "main"
	seq      int
	code     int
	codeSet  bool
	stopping bool
	envAdd   map[string]string // berth ctl putenv: applied at the next start of any process
	procs    []*Process        // everything started, for the final output drain
}

type unitExit struct {
	name string
	gen  int
	proc *Process
}

// MainName is the unit name of the main command.
const MainName = "main"

// New checks cfg and returns a supervisor that starts processes through reaper.
func New(cfg Config, reaper *Reaper, log hclog.Logger) (*Supervisor, error) {
	if reaper == nil {
		return nil, errors.New("supervisor: nil reaper")
	}
	if cfg.Main != nil && len(cfg.Main.Argv) == 0 {
		return nil, errors.New("supervisor: empty main command")
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 3 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.StreamDrain <= 0 {
		cfg.StreamDrain = 2 * time.Second
	}
	s := &Supervisor{cfg: cfg, log: log, reaper: reaper, units: map[string]*unit{},
		exits: make(chan unitExit, 64), wake: make(chan string, 64), reqs: make(chan func(), 16),
		quit: make(chan struct{}), envAdd: map[string]string{}}
	for _, j := range cfg.Jobs {
		if err := s.checkJob(j); err != nil {
			return nil, err
		}
		s.units[j.Name] = &unit{job: j}
		s.order = append(s.order, j.Name)
	}
	if cfg.Main != nil {
		s.units[MainName] = &unit{isMain: true, job: JobSpec{Spec: *cfg.Main, Type: Service, Restart: RestartNever,
			After: cfg.MainAfter, PreStart: cfg.MainPreStart, PreStop: cfg.MainPreStop, PostStop: cfg.MainPostStop}}
		s.order = append(s.order, MainName)
	}
	for _, name := range s.order {
		for _, a := range s.units[name].job.After {
			if s.units[a] == nil || a == MainName {
				return nil, fmt.Errorf("supervisor: %s: after %q: no such job", name, a)
			}
		}
	}
	return s, nil
}

func (s *Supervisor) checkJob(j JobSpec) error {
	switch {
	case j.Name == "" || j.Name == MainName:
		return fmt.Errorf("supervisor: bad job name %q", j.Name)
	case len(j.Argv) == 0:
		return fmt.Errorf("supervisor: job %s: empty command", j.Name)
	case j.Type != Oneshot && j.Type != Service:
		return fmt.Errorf("supervisor: job %s: type %q", j.Name, j.Type)
	case s.units[j.Name] != nil:
		return fmt.Errorf("supervisor: duplicate job %s", j.Name)
	}
	return nil
}

// ExitCode is berth's exit code once Run returned (SPEC §2).
func (s *Supervisor) ExitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

// setCode decides berth's exit code: the first decision wins (a job that gave up stays 70 even though
// stopping the main command afterwards yields 143).
func (s *Supervisor) setCode(c int) {
	s.mu.Lock()
	if !s.codeSet {
		s.code = c
		s.codeSet = true
	}
	s.mu.Unlock()
}

func isStopSignal(sig os.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
}

// GaveUpError is returned when a non-optional service job exhausted its restarts (exit 70).
type GaveUpError struct {
	Job      string
	Restarts int
	Last     Exit
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("job %s gave up after %d restarts (last exit %d)", e.Job, e.Restarts, e.Last.Code)
}
func (e *GaveUpError) ExitCode() int { return 70 }

// JobFailedError is returned when a oneshot job failed: berth exits with the job's code.
type JobFailedError struct {
	Job  string
	Code int
}

func (e *JobFailedError) Error() string { return fmt.Sprintf("job %s exited %d", e.Job, e.Code) }
func (e *JobFailedError) ExitCode() int { return e.Code }

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

	if err := s.prepare(ctx, sigc); err != nil {
		s.shutdown(sigc, 0)
		return err
	}
	if s.cfg.Main == nil {
		s.log.Info("running without a main command (sidecar mode)", "jobs", len(s.cfg.Jobs))
	}

	var healthTick <-chan time.Time
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
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
		healthTick = nil
		if s.anyPending() {
			healthTick = ticker.C // waiting for a service to become healthy: look again shortly
		}
		select {
		case sig := <-sigc:
			if isStopSignal(sig) {
				s.log.Info("stopping", "signal", sig)
				s.shutdown(sigc, sig.(syscall.Signal))
				return nil
			}
			s.forward(sig.(syscall.Signal))
		case ev := <-s.exits:
			if err := s.handleExit(ev); err != nil {
				s.shutdown(sigc, 0)
				if errors.Is(err, errMainExited) {
					return nil
				}
				return err
			}
		case name := <-s.wake:
			if err := s.handleWake(name); err != nil {
				s.shutdown(sigc, 0)
				return err
			}
		case f := <-s.reqs:
			f()
		case <-healthTick:
		case <-ctx.Done():
			s.shutdown(sigc, 0)
			return nil
		}
	}
}

var errMainExited = errors.New("main command exited")

// startReady starts every pending unit whose `after` is satisfied, in declaration order.
func (s *Supervisor) startReady() error {
	for _, name := range s.order {
		u := s.units[name]
		if u.state != statePending || !s.ready(u) {
			continue
		}
		if err := s.startUnit(u); err != nil {
			return err
		}
	}
	return nil
}

func (s *Supervisor) anyPending() bool {
	for _, u := range s.units {
		if u.state == statePending {
			return true
		}
	}
	return false
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

// startUnit runs the unit's pre_start hook and starts its process. A main command that cannot start ends
// berth (127/126); a job that cannot start counts as a failed run.
func (s *Supervisor) startUnit(u *unit) error {
	if err := s.runHook(u.job.Spec, u.job.PreStart, "pre_start"); err != nil {
		s.log.Error("pre_start hook failed", "job", u.job.Name, "error", err)
		if u.isMain {
			s.setCode(1)
			return err
		}
		return s.handleFailure(u, Exit{Code: 1})
	}
	s.mu.Lock()
	spec := u.job.Spec // copied under the lock: SetEnv (secret refresh) writes it from another goroutine
	spec.Env = append([]string(nil), spec.Env...)
	for k, v := range s.envAdd {
		spec.Env = setEnv(spec.Env, k, v)
	}
	s.mu.Unlock()
	p, err := s.Start(spec)
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
	gen, name := u.gen, u.job.Name
	s.mu.Unlock()
	go func() {
		<-p.Done()
		select {
		case s.exits <- unitExit{name: name, gen: gen, proc: p}:
		case <-s.quit:
		}
	}()
	return nil
}

// handleExit applies the restart policy to an exited process.
func (s *Supervisor) handleExit(ev unitExit) error {
	u := s.units[ev.name]
	if u == nil || u.gen != ev.gen || u.proc != ev.proc {
		return nil // replaced by a reload, or an old run
	}
	e := ev.proc.Exit()
	s.mu.Lock()
	u.lastExit = &e
	u.proc = nil
	s.mu.Unlock()
	if s.cfg.Events != nil {
		s.cfg.Events.ProcessExited(u.job.Name, e, s.willRestart(u, e))
	}
	if u.isMain {
		s.log.Info("main command exited", "code", e.Code)
		s.setCode(e.Code)
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
	name, gen := u.job.Name, u.gen
	u.timer = time.AfterFunc(d, func() {
		select {
		case s.wake <- name + "\x00" + strconv.Itoa(gen):
		case <-s.quit:
		}
	})
}

func (s *Supervisor) handleWake(key string) error {
	name, g, _ := strings.Cut(key, "\x00")
	u := s.units[name]
	if u == nil || strconv.Itoa(u.gen) != g || (u.state != stateBackoff && u.state != stateWaiting) {
		return nil
	}
	return s.startUnit(u)
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

// forward passes sig (after rewrite) to the main command's process group.
func (s *Supervisor) forward(sig syscall.Signal) {
	if to, ok := s.cfg.SignalRewrite[sig]; ok {
		sig = to
	}
	main := s.mainProc()
	if main == nil {
		return
	}
	s.log.Debug("forwarding signal", "signal", SignalName(sig), "pgid", main.Pid())
	if err := main.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("forwarding signal failed", "signal", SignalName(sig), "error", err)
	}
}

// Start starts spec under supervision (the main command, a job run).
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	if spec.User != nil && spec.User.Home != "" {
		spec.Env = setEnv(spec.Env, "HOME", spec.User.Home)
	}
	p, err := start(spec, startOpts{reaper: s.reaper, output: s.cfg.Output, log: s.log, mu: &s.forkMu})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	p.log.Debug("started", "argv0", spec.Argv[0])
	s.pruneProcs()
	if s.cfg.Events != nil {
		s.cfg.Events.ProcessStarted(spec.Name, p.Pid())
	}
	return p, nil
}

// pruneProcs forgets finished processes whose output is drained, so a crash-looping job does not grow
// the list for ever.
func (s *Supervisor) pruneProcs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.procs) < 64 {
		return
	}
	kept := s.procs[:0]
	for _, p := range s.procs {
		select {
		case <-p.drained:
			select {
			case <-p.Done():
				continue
			default:
			}
		default:
		}
		kept = append(kept, p)
	}
	s.procs = kept
}

func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

func (s *Supervisor) mainProc() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.units[MainName]; u != nil {
		return u.proc
	}
	return nil
}

// shutdown is the sequence of SPEC §3. sig is the stop signal berth received (0 when the main command exited
// or berth decided to stop). Every step is bounded.
func (s *Supervisor) shutdown(sigc <-chan os.Signal, sig syscall.Signal) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopping = true
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
	// 2. drain_delay, skipped when the main command is already gone (nothing left to drain for).
	if s.cfg.DrainDelay > 0 && main != nil {
		select {
		case <-time.After(s.cfg.DrainDelay):
		case <-main.Done():
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
		s.setCode(e.Code)
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
	// re-parents its own children to berth, and they must not outlive it.
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
			if seen != nil && seen[pid] {
				continue
			}
			if seen != nil {
				seen[pid] = true
			}
			_ = unix.Kill(pid, sig)
		}
		return n
	}
	if s.reaper.NoChildren() {
		return
	}
	termed := map[int]bool{}
	if signalAll(unix.SIGTERM, termed) == 0 {
		return
	}
	s.log.Debug("terminating leftover processes", "grace", s.cfg.KillGrace)
	deadline := time.Now().Add(s.cfg.KillGrace)
	for time.Now().Before(deadline) {
		if s.reaper.NoChildren() {
			return
		}
		time.Sleep(10 * time.Millisecond)
		signalAll(unix.SIGTERM, termed) // newly re-parented ones get their TERM and their grace too
	}
	s.log.Warn("leftover processes did not exit within kill_grace, sending SIGKILL", "kill_grace", s.cfg.KillGrace)
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if s.reaper.NoChildren() || signalAll(unix.SIGKILL, nil) == 0 {
			return
		}
	}
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

// Exec runs spec to completion, bounded by ctx (on expiry its group is killed). When out is non-nil the
// combined output is captured into it (up to 64 KiB); otherwise it goes to berth's output like any process.
// This is how everything in berth that runs a command (hooks, exec checks) avoids a second wait4 owner.
func (s *Supervisor) Exec(ctx context.Context, spec Spec, out *bytes.Buffer) (int, []byte, error) {
	output := s.cfg.Output
	if out != nil {
		output = &captureOutput{buf: out}
	}
	p, err := start(spec, startOpts{reaper: s.reaper, output: output, log: s.log, mu: &s.forkMu})
	if err != nil {
		return 0, nil, err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		p.signalGroup(unix.SIGKILL)
		<-p.Done()
		p.waitStreams(time.Second)
		return p.exit.Code, nil, fmt.Errorf("%s: %w", spec.Name, ctx.Err())
	}
	p.waitStreams(time.Second)
	if out != nil {
		return p.exit.Code, out.Bytes(), nil
	}
	return p.exit.Code, nil, nil
}

// captureOutput collects both streams of a short command into one buffer.
type captureOutput struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (c *captureOutput) Passthrough() bool { return false }
func (c *captureOutput) Stream(_, _ string, r io.Reader) error {
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		if n > 0 {
			c.mu.Lock()
			if c.buf.Len() < 64<<10 {
				c.buf.Write(b[:n])
			}
			c.mu.Unlock()
		}
		if err != nil {
			return nil
		}
	}
}
