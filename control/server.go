package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

const (
	// DefaultSocket is the control socket path when Config.Socket is empty.
	DefaultSocket = "/var/run/berth.sock"
	// DefaultMode is the socket file's permission when Config.Mode is zero: only berth's user may talk to it.
	DefaultMode os.FileMode = 0o600
	// DefaultShutdownTimeout bounds how long Run waits for in-flight requests once its context is done.
	DefaultShutdownTimeout = 5 * time.Second
	// MaxBodyBytes is the largest request body the server reads; larger bodies get 413.
	MaxBodyBytes = 64 << 10

	// maxSocketPath is the longest path a unix socket address can hold on Linux (sun_path is 108 bytes with the
	// terminating NUL).
	maxSocketPath = 107
)

// Backend is what the control plane controls. cmd/berth implements it by gluing the supervisor, discovery,
// secrets and telemetry together.
//
// Status, Health, PutEnv and PutMetric may be called concurrently from several requests. Reload calls never
// overlap one another, and Maintenance calls never overlap one another (the server serializes each), but a
// Reload may run while a Maintenance call does.
//
// Errors are sent to the client verbatim in the "error" field: they must never contain secret values (name
// the reference or the variable, never its value). Wrap an error in *RejectedError for 409 or *InvalidError for
// 400; anything else is 500.
type Backend interface {
	// Status returns the JSON document for GET /v1/status: processes, pids, restarts, checks, registrations,
	// secret references with versions — never secret values.
	Status() any
	// Health reports whether every check and every service job is healthy, with a detail document (ideally a
	// HealthReport, so `berth health` can print the failing checks).
	Health() (ok bool, detail any)
	// Reload re-reads the configuration and restarts only what changed. A configuration that does not load must
	// leave the running one untouched and return a *RejectedError.
	Reload(ctx context.Context) error
	// Maintenance puts every service of this berth into (on) or out of (off) maintenance mode.
	Maintenance(ctx context.Context, on bool, reason string) error
	// PutEnv sets an environment variable for the next start of jobs. The key is a valid POSIX name and the
	// value has no NUL byte; the value may be secret.
	PutEnv(key, value string) error
	// PutMetric records a gauge. The name matches [A-Za-z0-9_.]+ and the value is finite.
	PutMetric(name string, value float64) error
}

// Config configures the control server.
type Config struct {
	// Socket is the path of the unix socket (flag -control-socket, BERTH_CONTROL_SOCKET). Empty means
	// DefaultSocket. The directory must exist and be writable.
	Socket string
	// Mode is the permission of the socket file; only permission bits are allowed. Zero means DefaultMode (0600).
	Mode os.FileMode
	// ShutdownTimeout bounds how long Run waits for in-flight requests after its context is done; then the
	// remaining connections are closed. Zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.Socket == "" {
		c.Socket = DefaultSocket
	}
	if c.Mode == 0 {
		c.Mode = DefaultMode
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// Validate checks the configuration (after defaults are applied); errors name the flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Socket) > maxSocketPath {
		errs = append(errs, fmt.Errorf("-control-socket: path %q is %d bytes long; a unix socket path may have at most %d",
			c.Socket, len(c.Socket), maxSocketPath))
	}
	if c.Mode&^os.ModePerm != 0 {
		errs = append(errs, fmt.Errorf("control socket mode %v: only permission bits (0777) are allowed", c.Mode))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("control shutdown timeout %v: must not be negative", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Server is the control plane: HTTP/JSON over a unix socket. Create it with New, call Listen to create the
// socket (optional; Run listens if needed), then Run until shutdown.
type Server struct {
	cfg     Config
	backend Backend
	log     hclog.Logger

	// reloadSem and maintSem serialize Reload and Maintenance calls; a request waits for its turn.
	reloadSem chan struct{}
	maintSem  chan struct{}

	mu      sync.Mutex
	sock    *socket // nil before Listen and after the socket is released
	started bool    // Run was called
}

// New validates cfg and returns a server; it does not create the socket yet. A nil log discards messages.
func New(cfg Config, b Backend, log hclog.Logger) (*Server, error) {
	if b == nil {
		return nil, errors.New("control: nil Backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Server{
		cfg:       cfg.withDefaults(),
		backend:   b,
		log:       log.Named("control"),
		reloadSem: make(chan struct{}, 1),
		maintSem:  make(chan struct{}, 1),
	}, nil
}

// Socket returns the path of the control socket.
func (s *Server) Socket() string { return s.cfg.Socket }

// Listen creates the socket, so that the integrator can fail fast (another berth running, unwritable
// directory) before starting the application. A stale socket left by a dead berth is replaced; a socket that
// answers is an *InUseError; any other file at the path is an error and is left alone.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenLocked()
}

func (s *Server) listenLocked() error {
	if s.sock != nil {
		return fmt.Errorf("control socket %s: already listening", s.cfg.Socket)
	}
	if s.started {
		return fmt.Errorf("control socket %s: server already ran", s.cfg.Socket)
	}
	sock, err := listenSocket(s.cfg.Socket, s.cfg.Mode)
	if err != nil {
		return err
	}
	s.sock = sock
	s.log.Debug("listening", "socket", s.cfg.Socket, "mode", s.cfg.Mode)
	return nil
}

// Close releases a socket created by Listen when Run will not be called (start-up failed after Listen). Once
// Run was called it does nothing: cancel Run's context instead.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.sock == nil {
		return nil
	}
	err := s.sock.close()
	s.sock = nil
	return err
}

// Run serves requests until ctx is done, then stops accepting, cancels the context of in-flight backend calls,
// waits at most Config.ShutdownTimeout for them, closes what is left and removes the socket file. It listens
// first if Listen was not called. It returns nil after a clean shutdown; it may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return fmt.Errorf("control socket %s: Run called twice", s.cfg.Socket)
	}
	if s.sock == nil {
		if err := s.listenLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.started = true
	sock := s.sock
	s.mu.Unlock()
	defer func() {
		if err := sock.close(); err != nil {
			s.log.Warn("cannot remove control socket", "socket", s.cfg.Socket, "error", err)
		}
	}()

	// Backend calls get a context that ends when shutdown starts, not when a client hangs up: a reload must not
	// be abandoned half-way because `berth ctl` was interrupted.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	srv := &http.Server{
		Handler:           s.handler(callCtx),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// No WriteTimeout: a reload may legitimately take up to a minute; its duration is the backend's to bound.
		IdleTimeout: time.Minute,
		ErrorLog:    s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext: func(net.Listener) context.Context { return callCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sock.ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("control socket %s: %w", s.cfg.Socket, err)
	case <-ctx.Done():
	}
	s.log.Debug("shutting down")
	cancelCalls()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("requests still running at shutdown; closing their connections", "timeout", s.cfg.ShutdownTimeout)
		_ = srv.Close()
	}
	<-served // http.ErrServerClosed
	return nil
}
