package supervisor

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/field"
)

// Job types and restart policies (README "How it works").
const (
	Oneshot = "oneshot"
	Service = "service"

	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Back-off of restarts: 1s doubling to 30s, reset after 60s of running (README "How it works").
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
	Gate        Gate          // cluster coordination (singleton, once); nil runs it without
	// GateConfig is what Gate is built from, as the config file set it (discovery's LockConfig for singleton,
	// OnceConfig for once); nil without one. The supervisor never reads it: Diff compares it, and a reload
	// may not change, add or remove a job that has one (PlanReload), because a Gate is built at start only.
	GateConfig any
}

// jobBlock names a job as config messages do.
func jobBlock(name string) string { return fmt.Sprintf("job %q", name) }

// defaultType is the type of a job that sets none: a periodic job is a oneshot, anything else a service.
func (j JobSpec) defaultType() string {
	if j.Every > 0 {
		return Oneshot
	}
	return Service
}

// effectiveType is Type, or the default for one that is unset or not a type at all (its own problem).
func (j JobSpec) effectiveType() string {
	if j.Type == Oneshot || j.Type == Service {
		return j.Type
	}
	return j.defaultType()
}

// WithDefaults fills in what a job block leaves unset: Type (Oneshot when Every is set, else Service) and
// Restart (RestartNever for a oneshot, RestartAlways for a service).
func (j JobSpec) WithDefaults() JobSpec {
	if j.Type == "" {
		j.Type = j.defaultType()
	}
	if j.Restart == "" {
		j.Restart = RestartAlways
		if j.effectiveType() == Oneshot {
			j.Restart = RestartNever
		}
	}
	return j
}

// Validate checks one job after WithDefaults. It returns every problem, each a field.Error of block
// `job "NAME"` naming its key (config puts the file's line and column in front). The `after` graph is
// ValidateGraph's.
func (j JobSpec) Validate() error {
	b := field.Block{Name: jobBlock(j.Name)}
	switch j.Name {
	case "":
		b.Valuef("name", "job name must not be empty")
	case MainName:
		b.Valuef("name", "job name %q is reserved for the main block", j.Name)
	}
	if len(j.Argv) == 0 {
		b.Valuef("command", "command must not be empty")
	}
	if j.Type != Oneshot && j.Type != Service {
		b.Valuef("type", "type: %q is not one of %q", j.Type, []string{Oneshot, Service})
	}
	switch j.Restart {
	case RestartNever, RestartOnFailure, RestartAlways:
	default:
		b.Valuef("restart", "restart: %q is not one of %q", j.Restart, []string{RestartNever, RestartOnFailure, RestartAlways})
	}
	typ := j.effectiveType()
	if typ == Service && j.Every > 0 {
		b.Keyf("every", "every: only a oneshot job can be periodic")
	}
	if typ == Oneshot && j.Restart == RestartAlways {
		b.Valuef("restart", "restart: a oneshot job cannot restart \"always\" (use type = \"service\")")
	}
	if j.MaxRestarts < 0 {
		b.Valuef("max_restarts", "max_restarts: must not be negative")
	}
	return b.Err()
}

// unitState is where a unit is in its life.
type unitState int

const (
	statePending  unitState = iota // waiting for `after`
	stateStarting                  // pre_start hook running
	stateRunning                   // process alive
	stateStopping                  // being stopped for a restart or a reload
	stateBackoff                   // waiting to restart
	stateWaiting                   // periodic job between runs
	stateDone                      // oneshot exited 0 (not periodic)
	stateFailed                    // gave up
	stateStopped                   // stopped by shutdown or reload
	stateStandby                   // waiting on its Gate (a singleton another berth holds, a once-job)
)

func (s unitState) String() string {
	return [...]string{"pending", "starting", "running", "stopping", "backoff", "waiting", "done", "failed", "stopped", "standby"}[s]
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
	gen       int       // bumped when a unit is restarted or replaced, so stale timers and exits are ignored
	after     unitState // the state a stopping unit moves to once its process is gone
	granted   bool      // its Gate granted the current run (released when the process is gone)
	grantGate Gate      // the Gate that granted it
	grantSeq  int       // bumped on every grant, so a stale Lost is ignored
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
		default: // service: healthy once running
			if d.state != stateRunning {
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
	sp.childOnly = false // signal_scope is the main command's; a hook is signalled as a group, as a job is
	t := h.Timeout
	if t <= 0 {
		t = DefaultHookTimeout
	}
	return sp, t
}

// runHook runs a hook to completion within its timeout, or until ctx ends (its group is then killed); a
// non-zero exit is an error.
func (s *Supervisor) runHook(ctx context.Context, job Spec, h *Hook, what string) error {
	if h == nil || len(h.Argv) == 0 {
		return nil
	}
	sp, t := hookSpec(job, h, what)
	ctx, cancel := context.WithTimeout(ctx, t)
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

// hookWarn runs a hook during shutdown; a failure is logged, never fatal.
func (s *Supervisor) hookWarn(job Spec, h *Hook, what string) {
	if err := s.runHook(context.Background(), job, h, what); err != nil {
		s.log.Warn("hook failed", "error", err)
	}
}
