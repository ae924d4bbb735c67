package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Gate holds a unit back until cluster coordination lets it run: a singleton's lock, a once-per-key
// oneshot (README "Cluster coordination"). The implementations live outside the supervisor (discovery's
// Consul locks, wired in cmd/berth), so the supervisor knows nothing of Consul. Both methods are called beside
// the loop, never on it.
type Gate interface {
	// Acquire blocks until the unit may start (or ctx ends). Every start of the unit's process goes through
	// it, restarts included. An error that has an ExitCode() (a once-job's recorded failure, Consul
	// unavailable when required) ends berth with that code and starts nothing more.
	Acquire(ctx context.Context) (Grant, error)
	// Release gives the grant back once the process started under it has ended (code is its exit code, -1
	// when it was stopped or never ran). It must be bounded: it also runs in the shutdown sequence.
	Release(code int)
}

// Grant is what Acquire hands out.
type Grant struct {
	// Skip: the unit must not run, and a oneshot counts as succeeded (a once-job another berth already ran).
	Skip bool
	// Lost, when non-nil, closes when the right to run is lost (a singleton's lock or session): the process
	// is stopped with its stop signal and timeout, and the unit waits on Acquire again.
	Lost <-chan struct{}
}

// gateStart starts the unit's Acquire beside the loop; the result comes back as evGate.
func (s *Supervisor) gateStart(u *unit) {
	s.setState(u, stateStandby)
	gate, gen := u.job.Gate, u.gen
	go func() {
		g, err := gate.Acquire(s.hookCtx)
		s.box.post(event{kind: evGate, u: u, gen: gen, grant: g, err: err})
	}()
}

// handleGate applies Acquire's result on the loop.
func (s *Supervisor) handleGate(ev event) error {
	u := ev.u
	if u.gen != ev.gen || u.state != stateStandby {
		if ev.err == nil && !ev.grant.Skip {
			go u.job.Gate.Release(-1) // nobody wants it any more (restarted, replaced, stopping)
		}
		return nil
	}
	if ev.err != nil {
		if errors.Is(ev.err, context.Canceled) {
			return nil
		}
		code := ExitUnavailable
		var ec interface{ ExitCode() int }
		if errors.As(ev.err, &ec) {
			code = ec.ExitCode()
		}
		s.log.Error("coordination failed", "job", u.job.Name, "error", ev.err)
		s.setState(u, stateFailed)
		s.setCode(code)
		return &GateError{Job: u.job.Name, Code: code, Err: ev.err}
	}
	if ev.grant.Skip {
		s.log.Info("job already done elsewhere; skipped", "job", u.job.Name)
		s.mu.Lock()
		u.succeeded = true
		u.state = stateDone
		s.mu.Unlock()
		return nil
	}
	s.mu.Lock()
	u.granted = true
	u.grantGate = u.job.Gate // a reload may replace u.job before the grant is given back
	u.grantSeq++
	seq := u.grantSeq
	s.mu.Unlock()
	if lost := ev.grant.Lost; lost != nil {
		go func() {
			select {
			case <-lost:
				s.box.post(event{kind: evLost, u: u, gen: seq})
			case <-s.quit:
			}
		}()
	}
	return s.startUnit(u)
}

// handleLost fences a unit whose grant was lost: its process is stopped with its stop signal and timeout,
// then it waits on the gate again (the grant is released once the process is gone, in evStopped).
func (s *Supervisor) handleLost(ev event) {
	u := ev.u
	if !u.granted || u.grantSeq != ev.gen {
		return
	}
	s.log.Warn("lock lost; stopping the process", "job", u.job.Name)
	if u.proc != nil {
		s.stopUnit(u, statePending)
		return
	}
	// between runs (pre_start hook, back-off): nothing to stop
	s.mu.Lock()
	u.gen++
	if u.timer != nil {
		u.timer.Stop()
	}
	u.state = statePending
	s.mu.Unlock()
	s.release(u, -1)
}

// release gives u's grant back, beside the loop.
func (s *Supervisor) release(u *unit, code int) {
	if !u.granted {
		return
	}
	s.mu.Lock()
	u.granted = false
	g := u.grantGate
	s.mu.Unlock()
	s.releasing.Add(1) // the shutdown sequence waits for it: a once-job's result must reach Consul
	go func() { defer s.releasing.Done(); g.Release(code) }()
}

// releaseAll gives back every grant still held (their processes are gone by now) and waits for the releases
// under way, at the end of the shutdown sequence, bounded by d.
func (s *Supervisor) releaseAll(d time.Duration) {
	var wg sync.WaitGroup
	s.mu.Lock()
	for _, u := range s.units {
		if u.granted {
			u.granted = false
			wg.Add(1)
			go func(g Gate) { defer wg.Done(); g.Release(-1) }(u.grantGate)
		}
	}
	s.mu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); s.releasing.Wait() }() // releases already under way (a once-job's result)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	waitCtx(ctx, &wg)
}

// ExitUnavailable is the exit code of a gate that failed without a code of its own (Consul unavailable).
const ExitUnavailable = 69

// GateError ends berth when a unit's gate failed: a once-job that failed on another berth (its exit code),
// or coordination that could not reach Consul (69).
type GateError struct {
	Job  string
	Code int
	Err  error
}

func (e *GateError) Error() string { return fmt.Sprintf("job %s: %v", e.Job, e.Err) }
func (e *GateError) Unwrap() error { return e.Err }
func (e *GateError) ExitCode() int { return e.Code }
