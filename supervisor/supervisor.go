package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
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
	Timeout time.Duration // 0 = DefaultHookTimeout
}

// Config is everything the supervisor needs. cmd/berth fills it from flags, env and the config file.
type Config struct {
	// Main is the main command; nil runs berth without one (sidecar mode, README "Sidecar mode").
	Main *Spec
	// MainAfter names the jobs the main command waits for (`after` of the main block).
	MainAfter []string
	// MainPreStart, MainPreStop and MainPostStop are the main command's hooks. They run with the main
	// command's env, dir, user and umask, and pre_stop/post_stop only if it was started.
	MainPreStart, MainPreStop, MainPostStop *Hook
	// MainGate, when set, holds the main command back until it grants the run (`singleton` on main: a hot
	// standby container).
	MainGate Gate
	// Jobs are the other processes, in declaration order.
	Jobs []JobSpec
	// Resident keeps a berth without a main command running until it is told to stop. When false and Main is
	// nil, berth exits once Prepare and every oneshot job have finished (ECS dependsOn: COMPLETE); a service
	// or periodic job makes it resident anyway.
	Resident bool
	// KillGrace is how long leftover processes get between SIGTERM and SIGKILL at the end (0 =
	// DefaultKillGrace).
	KillGrace time.Duration
	// DrainDelay is waited after Drain and before anything is signalled, so load balancers notice.
	DrainDelay time.Duration
	// DrainTimeout bounds the Drain functions together (default 10s): berth never hangs on a dead Consul.
	DrainTimeout time.Duration
	// SignalRewrite maps a received signal to the one forwarded (TERM → QUIT for nginx).
	SignalRewrite map[syscall.Signal]syscall.Signal
	// SignalScope says what the signals berth sends the main command reach (forwarded ones, the stop
	// signal, SignalJob): its process group (SignalGroup, the default, as dumb-init) or the main command
	// alone (SignalChild, as dumb-init -c and tini without -g). The SIGKILL after stop_timeout and the
	// leftover step of the shutdown are the same in both.
	SignalScope SignalScope
	// ParentDeathSignal, when not 0, is the signal berth asks the kernel for when its parent dies
	// (PR_SET_PDEATHSIG, tini -p); berth then acts on it as on any signal it receives (SIGTERM: the
	// shutdown sequence).
	ParentDeathSignal syscall.Signal
	// ExitCodeMap maps the main command's exit code (N, or 128+S when a signal killed it) to berth's own
	// (143 → 0 for a JVM that exits 143 on SIGTERM). It applies only when berth exits with the main
	// command's own exit status, never to a code berth decided (a failed job, 126/127 when the command could
	// not be started, 128+S for a stop before the start). Codes are 0-255.
	ExitCodeMap map[int]int
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
// README "How it works". One goroutine (Run's loop) makes every decision; other goroutines talk to it through channels.
type Supervisor struct {
	cfg    Config
	log    hclog.Logger
	reaper *Reaper
	forkMu sync.Mutex

	box        *mailbox      // process exits, timers, hook and stop results, requests: to the loop
	quit       chan struct{} // closed when Run returns
	hookCtx    context.Context
	hookCancel context.CancelFunc // kills pre_start hooks still running when the shutdown begins

	ppid int // berth's parent when New ran: a parent that died before Run set ParentDeathSignal is noticed

	mu       sync.Mutex // guards the fields below for readers outside the loop (Status, ExitCode)
	units    map[string]*unit
	order    []string // declaration order: jobs, then "main"
	seq      int
	code     int
	codeSet  bool
	stopping bool
	envAdd   map[string]string // berth ctl putenv: applied at the next start of any process
	procs    []*Process        // everything started, for the final output drain

	releasing sync.WaitGroup // Gate releases under way (release), waited for by the shutdown sequence
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
	for from, to := range cfg.ExitCodeMap {
		if err := CheckExitCode(from); err != nil {
			return nil, fmt.Errorf("supervisor: exit code map: %w", err)
		}
		if err := CheckExitCode(to); err != nil {
			return nil, fmt.Errorf("supervisor: exit code map: %w", err)
		}
	}
	if cfg.SignalScope == "" {
		cfg.SignalScope = SignalGroup
	}
	if cfg.SignalScope != SignalGroup && cfg.SignalScope != SignalChild {
		return nil, fmt.Errorf("supervisor: signal scope %q: want %q or %q", cfg.SignalScope, SignalGroup, SignalChild)
	}
	if sig := cfg.ParentDeathSignal; sig != 0 {
		if err := CheckParentDeathSignal(sig); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.StreamDrain <= 0 {
		cfg.StreamDrain = 2 * time.Second
	}
	s := &Supervisor{cfg: cfg, log: log, reaper: reaper, units: map[string]*unit{}, box: newMailbox(),
		quit: make(chan struct{}), envAdd: map[string]string{}, ppid: os.Getppid()}
	s.hookCtx, s.hookCancel = context.WithCancel(context.Background())
	for _, j := range cfg.Jobs {
		if err := j.Validate(); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
	}
	if err := ValidateGraph(cfg.Jobs, cfg.MainAfter); err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	for _, j := range cfg.Jobs {
		s.units[j.Name] = &unit{job: j}
		s.order = append(s.order, j.Name)
	}
	if cfg.Main != nil {
		spec := *cfg.Main
		spec.childOnly = cfg.SignalScope == SignalChild
		s.units[MainName] = &unit{isMain: true, job: JobSpec{Spec: spec, Type: Service, Restart: RestartNever,
			After: cfg.MainAfter, PreStart: cfg.MainPreStart, PreStop: cfg.MainPreStop, PostStop: cfg.MainPostStop,
			Gate: cfg.MainGate}}
		s.order = append(s.order, MainName)
	}
	return s, nil
}

// ExitCode is berth's exit code once Run returned (README "Exit codes").
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

// setMainCode decides berth's exit code from the main command's own exit status, through Config.ExitCodeMap.
// Like setCode, the first decision wins: a code already decided (a job that failed first) is not mapped.
func (s *Supervisor) setMainCode(c int) {
	s.mu.Lock()
	if s.codeSet {
		s.mu.Unlock()
		return
	}
	to, mapped := s.cfg.ExitCodeMap[c]
	s.code, s.codeSet = c, true
	if mapped {
		s.code = to
	}
	s.mu.Unlock()
	if mapped {
		s.log.Info("exit code mapped", "code", c, "exit", to)
	}
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
