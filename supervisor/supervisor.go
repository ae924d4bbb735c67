package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	// Resident keeps a berth without a main command running until it is told to stop. When false and Main is
	// nil, berth exits 0 once Prepare has finished (ECS dependsOn: COMPLETE).
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
	// PreStop and PostStop hooks run before the stop signal and after everything stopped.
	PreStop, PostStop []Hook
	// Events, if set, is told about starts and exits.
	Events Events
	// StreamDrain bounds how long berth waits at exit for output still in pipes (default 2s).
	StreamDrain time.Duration
}

// Supervisor is berth's PID-1 core: it starts the main command, forwards signals to its process group and
// runs the shutdown sequence of SPEC §3.
type Supervisor struct {
	cfg    Config
	log    hclog.Logger
	reaper *Reaper
	forkMu sync.Mutex

	mu       sync.Mutex
	main     *Process
	code     int
	stopping bool
	procs    []*Process // everything started, in start order
}

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
	return &Supervisor{cfg: cfg, log: log, reaper: reaper}, nil
}

// ExitCode is berth's exit code once Run returned (SPEC §2).
func (s *Supervisor) ExitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func (s *Supervisor) setCode(c int) {
	s.mu.Lock()
	s.code = c
	s.mu.Unlock()
}

func isStopSignal(sig os.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
}

// Run is the supervisor actor: it returns when the shutdown sequence has finished. Cancelling ctx starts the
// shutdown sequence (another actor failed, or berth ctl asked to stop).
func (s *Supervisor) Run(ctx context.Context) error {
	sigc := s.cfg.Signals
	if sigc == nil {
		// berth itself is never stopped by job-control signals, and with a TTY it must be able to hand the
		// terminal to the child's group (SIGTTOU) without being stopped.
		signal.Ignore(unix.SIGTTIN, unix.SIGTTOU, unix.SIGTSTP)
		ch := make(chan os.Signal, 64)
		sigs := make([]os.Signal, 0, len(forwardedSignals))
		for _, sg := range forwardedSignals {
			sigs = append(sigs, sg)
		}
		signal.Notify(ch, sigs...)
		defer signal.Stop(ch)
		sigc = ch
	}

	if err := s.prepare(ctx, sigc); err != nil {
		s.shutdown(sigc, 0)
		return err
	}

	if s.cfg.Main == nil {
		if !s.cfg.Resident {
			s.log.Info("no main command and nothing resident: done")
			s.shutdown(sigc, 0)
			return nil
		}
		s.log.Info("running without a main command (sidecar mode)")
		for {
			select {
			case sig := <-sigc:
				if isStopSignal(sig) {
					s.log.Info("stopping", "signal", sig)
					s.shutdown(sigc, sig.(syscall.Signal))
					return nil
				}
			case <-ctx.Done():
				s.shutdown(sigc, 0)
				return nil
			}
		}
	}

	main, err := s.Start(*s.cfg.Main)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			s.setCode(se.Code)
		} else {
			s.setCode(126)
		}
		s.shutdown(sigc, 0)
		return err
	}
	s.mu.Lock()
	s.main = main
	s.mu.Unlock()

	for {
		select {
		case sig := <-sigc:
			if isStopSignal(sig) {
				s.log.Info("stopping", "signal", sig)
				s.shutdown(sigc, sig.(syscall.Signal))
				return nil
			}
			s.forward(sig.(syscall.Signal))
		case <-main.Done():
			e := main.Exit()
			s.log.Info("main command exited", "code", e.Code)
			s.shutdown(sigc, 0)
			return nil
		case <-ctx.Done():
			s.shutdown(sigc, 0)
			return nil
		}
	}
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
	s.mu.Lock()
	main := s.main
	s.mu.Unlock()
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
	p, err := start(spec, startOpts{
		reaper: s.reaper, output: s.cfg.Output, log: s.log, mu: &s.forkMu,
		onExit: func(p *Process) {
			if s.cfg.Events != nil {
				s.cfg.Events.ProcessExited(p.spec.Name, p.exit, false)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	p.log.Debug("started", "argv0", spec.Argv[0])
	if s.cfg.Events != nil {
		s.cfg.Events.ProcessStarted(spec.Name, p.Pid())
	}
	return p, nil
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

// shutdown is the sequence of SPEC §3. sig is the stop signal berth received (0 when the main command exited
// or berth decided to stop). It is bounded in every step.
func (s *Supervisor) shutdown(sigc <-chan os.Signal, sig syscall.Signal) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return
	}
	s.stopping = true
	main := s.main
	s.mu.Unlock()

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
	// 2. drain_delay, cut short when the main command is already gone.
	if s.cfg.DrainDelay > 0 {
		var done <-chan struct{}
		if main != nil {
			done = main.Done()
		}
		select {
		case <-time.After(s.cfg.DrainDelay):
		case <-done:
		}
	}
	// 3. pre_stop hooks.
	s.runHooks(s.cfg.PreStop)

	// 4-5. stop_signal to the main command, then everything else in reverse start order, each with its
	// stop_timeout before SIGKILL of its group.
	if main != nil {
		stopSig := main.spec.StopSignal
		if sig != 0 && sig != unix.SIGTERM {
			stopSig = sig // SIGINT/SIGQUIT pass through as received
		}
		if to, ok := s.cfg.SignalRewrite[sig]; ok && sig != 0 {
			stopSig = to
		}
		main.Stop(context.Background(), stopSig)
		s.setCode(main.Exit().Code)
	}
	s.mu.Lock()
	procs := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i] != main {
			procs[i].Stop(context.Background(), 0)
		}
	}

	// 6. leftovers: as PID 1 every process in the namespace, else every child re-parented to us.
	s.killLeftovers()

	// 7. post_stop hooks, then give output copiers a bounded moment to flush.
	s.runHooks(s.cfg.PostStop)
	for _, p := range procs {
		p.waitStreams(s.cfg.StreamDrain)
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
	signalAll := func(sig syscall.Signal) int {
		if pid1 {
			// kill(-1) from PID 1 reaches every process of the namespace but berth.
			if err := unix.Kill(-1, sig); err != nil {
				return 0
			}
			return 1
		}
		kids := childPids(os.Getpid())
		for _, pid := range kids {
			_ = unix.Kill(pid, sig)
		}
		return len(kids)
	}
	if s.reaper.NoChildren() {
		return
	}
	if signalAll(unix.SIGTERM) == 0 {
		return
	}
	s.log.Debug("terminating leftover processes", "grace", s.cfg.KillGrace)
	deadline := time.Now().Add(s.cfg.KillGrace)
	for time.Now().Before(deadline) {
		if s.reaper.NoChildren() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Warn("leftover processes did not exit within kill_grace, sending SIGKILL", "kill_grace", s.cfg.KillGrace)
	signalAll(unix.SIGKILL)
	for i := 0; i < 100 && !s.reaper.NoChildren(); i++ {
		time.Sleep(10 * time.Millisecond)
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

func (s *Supervisor) runHooks(hooks []Hook) {
	for _, h := range hooks {
		t := h.Timeout
		if t <= 0 {
			t = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), t)
		code, _, err := s.Exec(ctx, Spec{Name: h.Name, Argv: h.Argv, Env: os.Environ(), Umask: -1}, nil)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("hook failed", "hook", h.Name, "error", err)
		case code != 0:
			s.log.Warn("hook exited non-zero", "hook", h.Name, "code", code)
		}
	}
}

// Exec runs spec to completion, bounded by ctx (on expiry its group is killed). When out is non-nil the
// combined output is captured into it (up to 64 KiB); otherwise it goes to berth's output like any process.
// This is how everything in berth that runs a command (hooks, exec checks) avoids a second wait4 owner.
func (s *Supervisor) Exec(ctx context.Context, spec Spec, out *bytes.Buffer) (int, []byte, error) {
	if spec.Umask == 0 && spec.Name == "" {
		spec.Umask = -1
	}
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
