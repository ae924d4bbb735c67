package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Start starts spec under supervision, outside the units (tests, tools).
func (s *Supervisor) Start(spec Spec) (*Process, error) { return s.start(spec, nil) }

// start starts spec; onExit, if set, is called from the reaper's goroutine once the process was reaped.
func (s *Supervisor) start(spec Spec, onExit func(*Process)) (*Process, error) {
	if spec.User != nil && spec.User.Home != "" {
		spec.Env = setEnv(spec.Env, "HOME", spec.User.Home)
	}
	p, err := start(spec, startOpts{reaper: s.reaper, output: s.cfg.Output, log: s.log, mu: &s.forkMu, onExit: onExit})
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

// UnitStatus is one process's line in `berth ctl status`.
type UnitStatus struct {
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	State     string     `json:"state"`
	Pid       int        `json:"pid,omitempty"`
	Restarts  int        `json:"restarts"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	LastExit  *int       `json:"last_exit,omitempty"`
	// Lock is "holder" (granted) or "standby" (waiting on it) for a unit behind a Gate (singleton, once); ""
	// otherwise.
	Lock string `json:"lock,omitempty"`
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
		switch {
		case u.job.Gate == nil:
		case u.granted:
			st.Lock = "holder"
		case u.state == stateStandby:
			st.Lock = "standby"
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
	case <-s.quit:
		return ErrStopping
	default:
	}
	s.box.post(event{kind: evCall, fn: func() { errc <- f() }})
	select {
	case <-ctx.Done():
		return ctx.Err()
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
		s.stopUnit(u, statePending) // startReady starts it again once it is gone and its `after` holds
		return nil
	})
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
			if err := j.Validate(); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
		}
		for _, name := range removed {
			u := s.units[name]
			if u == nil || u.isMain {
				continue
			}
			s.stopUnit(u, stateStopped)
			s.mu.Lock()
			delete(s.units, name)
			s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
			s.mu.Unlock()
		}
		for _, j := range changed {
			if u := s.units[j.Name]; u != nil {
				s.log.Info("reload: restarting changed job", "job", j.Name)
				s.stopUnit(u, statePending)
				s.mu.Lock()
				u.job = j
				s.mu.Unlock()
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
