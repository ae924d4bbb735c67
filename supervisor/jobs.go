package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// Job types and restart policies (SPEC §3).
const (
	Oneshot = "oneshot"
	Service = "service"

	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Back-off of restarts: 1s doubling to 30s, reset after 60s of running (SPEC §3).
const (
	backoffMin   = time.Second
	backoffMax   = 30 * time.Second
	backoffReset = 60 * time.Second
)

// JobSpec is a job besides the main command: a oneshot (migration), a periodic oneshot (every), or a
// long-running service co-process.
type JobSpec struct {
	Spec
	Type        string        // Oneshot or Service
	Every       time.Duration // periodic oneshot; no overlap
	Restart     string        // RestartNever, RestartOnFailure, RestartAlways
	MaxRestarts int           // 0 = unlimited
	Optional    bool          // giving up does not stop berth
	After       []string      // jobs that must have exited 0 (oneshot) or be healthy (service) first
	PreStart    *Hook         // before every start of the process
	PreStop     *Hook         // before its stop signal during shutdown
	PostStop    *Hook         // after it stopped during shutdown
	// Healthy reports a service job's health (its checks); nil means "healthy once started".
	Healthy func() bool
}

// unitState is where a unit is in its life.
type unitState int

const (
	statePending unitState = iota // waiting for `after`
	stateRunning                  // process alive
	stateBackoff                  // waiting to restart
	stateWaiting                  // periodic job between runs
	stateDone                     // oneshot exited 0 (not periodic)
	stateFailed                   // gave up
	stateStopped                  // stopped by shutdown or reload
)

func (s unitState) String() string {
	return [...]string{"pending", "running", "backoff", "waiting", "done", "failed", "stopped"}[s]
}

// unit is the supervisor's bookkeeping for the main command or one job. Only the supervisor's loop
// goroutine mutates it; Status copies it under s.mu.
type unit struct {
	job       JobSpec
	isMain    bool
	state     unitState
	proc      *Process
	restarts  int
	backoff   time.Duration
	lastStart time.Time
	lastExit  *Exit
	succeeded bool // a oneshot run exited 0 at least once
	startSeq  int  // order of first start, for reverse-order stop
	timer     *time.Timer
	gen       int // bumped when a unit is replaced by reload, so stale timers and exits are ignored
}

// ready reports whether u's dependencies are satisfied.
func (s *Supervisor) ready(u *unit) bool {
	for _, name := range u.job.After {
		d := s.units[name]
		if d == nil {
			return false
		}
		if d.state == stateFailed && d.job.Optional {
			continue // an optional job that gave up does not hold back what comes after it
		}
		switch {
		case d.job.Type == Oneshot:
			if !d.succeeded {
				return false
			}
		default: // service
			if d.state != stateRunning {
				return false
			}
			if d.job.Healthy != nil && !d.job.Healthy() {
				return false
			}
		}
	}
	return true
}

// nextBackoff doubles the delay, resetting it after a run of backoffReset.
func nextBackoff(prev time.Duration, ran time.Duration) time.Duration {
	if prev == 0 || ran >= backoffReset {
		return backoffMin
	}
	if prev*2 > backoffMax {
		return backoffMax
	}
	return prev * 2
}

// hookSpec derives the process spec a hook runs with: its job's env, dir, user and umask.
func hookSpec(job Spec, h *Hook, what string) (Spec, time.Duration) {
	sp := job
	sp.Name = job.Name + "." + what
	sp.Argv = h.Argv
	sp.Stdin = false
	sp.TTY = false
	t := h.Timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	return sp, t
}

// runHook runs a hook to completion within its timeout; a non-zero exit is an error.
func (s *Supervisor) runHook(job Spec, h *Hook, what string) error {
	if h == nil || len(h.Argv) == 0 {
		return nil
	}
	sp, t := hookSpec(job, h, what)
	ctx, cancel := context.WithTimeout(context.Background(), t)
	defer cancel()
	code, _, err := s.Exec(ctx, sp, nil)
	if err != nil {
		return fmt.Errorf("%s hook of %s: %w", what, job.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("%s hook of %s exited %d", what, job.Name, code)
	}
	return nil
}

// UnitStatus is one process's line in `berth ctl status`.
type UnitStatus struct {
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	State     string     `json:"state"`
	Pid       int        `json:"pid,omitempty"`
	Restarts  int        `json:"restarts"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	LastExit  *int       `json:"last_exit,omitempty"`
}

// Status lists the main command and every job in declaration order.
func (s *Supervisor) Status() []UnitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UnitStatus, 0, len(s.order))
	for _, name := range s.order {
		u := s.units[name]
		st := UnitStatus{Name: name, Type: u.job.Type, State: u.state.String(), Restarts: u.restarts}
		if u.isMain {
			st.Type = "main"
		}
		if u.proc != nil {
			st.Pid = u.proc.Pid()
		}
		if !u.lastStart.IsZero() {
			t := u.lastStart
			st.StartedAt = &t
		}
		if u.lastExit != nil {
			c := u.lastExit.Code
			st.LastExit = &c
		}
		out = append(out, st)
	}
	return out
}

// Pids maps each running unit to its pid (the root of its process tree), for /proc sampling.
func (s *Supervisor) Pids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.units))
	for name, u := range s.units {
		if u.proc != nil {
			m[name] = u.proc.Pid()
		}
	}
	return m
}

// JobsHealthy reports whether every service job is running (and healthy by its checks): part of
// `berth health`.
func (s *Supervisor) JobsHealthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.units {
		if u.isMain || u.job.Type != Service {
			continue
		}
		if u.state != stateRunning && !u.job.Optional {
			return false
		}
		if u.job.Healthy != nil && !u.job.Healthy() {
			return false
		}
	}
	return true
}

// PutEnv sets KEY=VALUE for the next start of every process (berth ctl putenv).
func (s *Supervisor) PutEnv(key, value string) {
	s.mu.Lock()
	s.envAdd[key] = value
	s.mu.Unlock()
}

// ErrStopping is returned by requests that arrive once the shutdown sequence has begun.
var ErrStopping = errors.New("berth is stopping")

// call runs f on the loop goroutine and waits for it; it fails once berth is stopping.
func (s *Supervisor) call(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- f() }:
	case <-s.quit:
		return ErrStopping
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-s.quit:
		return ErrStopping
	}
}

// Restart stops a job (or the main command) with its stop signal and starts it again at once, without
// counting a restart (on_change = "restart" of a secret or peers block, or a reload).
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	return s.call(ctx, func() error {
		u := s.units[name]
		if u == nil {
			return fmt.Errorf("no job %q", name)
		}
		s.restartUnit(u, nil)
		return nil
	})
}

// restartUnit stops u's process (if running), optionally replaces its spec, and starts it again when ready.
// It runs on the loop goroutine.
func (s *Supervisor) restartUnit(u *unit, spec *JobSpec) {
	s.mu.Lock()
	p := u.proc
	u.gen++ // the old process's exit and timers no longer count
	if u.timer != nil {
		u.timer.Stop()
	}
	s.mu.Unlock()
	if p != nil {
		p.Stop(context.Background(), 0)
	}
	s.mu.Lock()
	if spec != nil {
		u.job = *spec
	}
	u.proc = nil
	u.state = statePending
	u.restarts = 0
	u.backoff = 0
	s.mu.Unlock()
	// startReady on the next loop turn starts it when its `after` is satisfied
}

// SignalJob sends sig to a job's (or the main command's) process group (on_change = "signal:SIGHUP").
func (s *Supervisor) SignalJob(ctx context.Context, name string, sig syscall.Signal) error {
	return s.call(ctx, func() error {
		u := s.units[name]
		if u == nil {
			return fmt.Errorf("no job %q", name)
		}
		if u.proc == nil {
			return nil
		}
		return u.proc.Signal(sig)
	})
}

// UpdateJobs applies a reload: changed jobs are stopped and started with their new spec, new jobs are added,
// removed jobs are stopped. The main command is not touched (changing it needs a restart of berth).
func (s *Supervisor) UpdateJobs(ctx context.Context, changed []JobSpec, removed []string) error {
	return s.call(ctx, func() error {
		for _, j := range changed {
			if j.Name == MainName || j.Name == "" || len(j.Argv) == 0 {
				return fmt.Errorf("reload: bad job %q", j.Name)
			}
		}
		for _, name := range removed {
			u := s.units[name]
			if u == nil || u.isMain {
				continue
			}
			s.restartUnit(u, nil)
			s.mu.Lock()
			u.state = stateStopped
			delete(s.units, name)
			s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
			s.mu.Unlock()
		}
		for _, j := range changed {
			if u := s.units[j.Name]; u != nil {
				s.log.Info("reload: restarting changed job", "job", j.Name)
				s.restartUnit(u, &j)
				continue
			}
			s.log.Info("reload: adding job", "job", j.Name)
			s.mu.Lock()
			s.units[j.Name] = &unit{job: j}
			s.order = append([]string{j.Name}, s.order...)
			s.mu.Unlock()
		}
		return nil
	})
}

// SetEnv replaces the environment of a unit's next start (secrets resolved in Prepare, peers, refreshes).
func (s *Supervisor) SetEnv(name string, env []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[name]
	if u == nil {
		return fmt.Errorf("no job %q", name)
	}
	u.job.Env = env
	return nil
}

// Units lists the unit names in declaration order (jobs, then "main").
func (s *Supervisor) Units() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// hookWarn runs a hook during shutdown; a failure is logged, never fatal.
func (s *Supervisor) hookWarn(job Spec, h *Hook, what string) {
	if err := s.runHook(job, h, what); err != nil {
		s.log.Warn("hook failed", "error", err)
	}
}
