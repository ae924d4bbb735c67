package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
)

// Cluster coordination (README "Cluster coordination"): singleton locks and once-per-key oneshots, built on
// consul/api's Lock and session API. berth creates each session itself so that it knows when the last
// renewal Consul accepted was sent: that is what fencing is measured from.

// Defaults and bounds of the coordination keys.
const (
	DefaultLockSessionTTL = 15 * time.Second
	MinSessionTTL         = 10 * time.Second // Consul's minimum
	MaxSessionTTL         = 24 * time.Hour
	MaxLockDelay          = 60 * time.Second // Consul caps lock-delay at 60s
	DefaultOnceWait       = 10 * time.Minute

	// SingletonPrefix and OncePrefix are where the keys live.
	SingletonPrefix = "berth/singleton/"
	OncePrefix      = "berth/once/"
)

// LockConfig is a singleton's lock: `singleton = true` with lock_key, session_ttl and lock_delay.
type LockConfig struct {
	// Key is the KV key of the lock; "" means SingletonKey(scope, job).
	Key string
	// SessionTTL is the TTL of the session that holds (or waits for) the lock (default 15s, 10s–24h).
	SessionTTL time.Duration
	// LockDelay is the session's lock-delay: once Consul invalidated the session nobody may take the lock for
	// this long, so the old holder has its stop_timeout to stop before a standby starts. 0 means the
	// process's stop_timeout (at most 60s).
	LockDelay time.Duration
}

// OnceConfig is a once-per-key oneshot: `once = "KEY"` with wait and session_ttl.
type OnceConfig struct {
	// Key is the once key; the result lives at berth/once/<Key>.
	Key string
	// Wait bounds how long a berth waits for another one running the job (default 10m).
	Wait time.Duration
	// SessionTTL is the TTL of the session of the holder (default 15s): a holder that dies mid-run releases
	// the lock after it (Consul waits up to twice the TTL).
	SessionTTL time.Duration
}

// SingletonKey is the default lock key of a job: berth/singleton/<scope>/<job>, or berth/singleton/<job>
// without a scope (the ECS family or the first service name).
func SingletonKey(scope, job string) string {
	if scope == "" {
		return SingletonPrefix + job
	}
	return SingletonPrefix + scope + "/" + job
}

// Coordinator makes singleton locks and once-gates on one Consul client.
type Coordinator struct {
	client *api.Client
	cfg    ConsulConfig
	log    hclog.Logger
	id     string // who holds: hostname and pid, stored as the lock's value
}

// NewCoordinator builds a coordinator on the `consul {}` block (defaults applied by WithDefaults).
func NewCoordinator(c ConsulConfig, log hclog.Logger) (*Coordinator, error) {
	c = c.WithDefaults()
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.RequestTimeout, DefaultRequestTimeout}, {&c.RetryMin, DefaultRetryMin}, {&c.RetryMax, DefaultRetryMax},
		{&c.BlockingWait, DefaultBlockingWait}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	client, err := newClient(c)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &Coordinator{client: client, cfg: c, log: log, id: fmt.Sprintf("%s/%d", host, os.Getpid())}, nil
}

// session is one Consul session berth created and renews itself. lost closes when the session can no longer
// be trusted: Consul said it is gone, or no renewal was accepted within TTL minus a margin (Consul
// invalidates no earlier than TTL after the last renewal it received, which was sent no earlier than we
// measure from).
type session struct {
	id   string
	lost chan struct{}
	done chan struct{} // closed by end: stop renewing
	why  string
	once sync.Once
	endO sync.Once
}

func (s *session) lose(why string) {
	s.once.Do(func() { s.why = why; close(s.lost) })
}

func (s *session) end() { s.endO.Do(func() { close(s.done) }) }

// fenceMargin is how long before the TTL runs out berth declares its session lost.
func fenceMargin(ttl time.Duration) time.Duration {
	m := ttl / 10
	if m < time.Second {
		m = time.Second
	}
	return m
}

func (c *Coordinator) newSession(ctx context.Context, name string, ttl, delay time.Duration) (*session, error) {
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	id, _, err := c.client.Session().Create(&api.SessionEntry{
		Name: name, TTL: ttl.String(), LockDelay: delay, Behavior: api.SessionBehaviorRelease,
	}, (&api.WriteOptions{}).WithContext(rctx))
	if err != nil {
		return nil, describe(err, c.cfg.RequestTimeout)
	}
	s := &session{id: id, lost: make(chan struct{}), done: make(chan struct{})}
	go c.renew(s, ttl, sent)
	return s, nil
}

// renew keeps s alive every TTL/3 until end, and fences: lost closes at the last accepted renewal's send
// time + TTL - margin.
func (c *Coordinator) renew(s *session, ttl time.Duration, sent time.Time) {
	deadline := sent.Add(ttl - fenceMargin(ttl))
	fence := time.NewTimer(time.Until(deadline))
	defer fence.Stop()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-fence.C:
			s.lose("no session renewal accepted within " + ttl.String())
			return
		case <-tick.C:
			at := time.Now()
			bound := min(ttl/3, time.Until(deadline))
			if bound <= 0 {
				continue
			}
			rctx, cancel := context.WithTimeout(context.Background(), bound)
			entry, _, err := c.client.Session().Renew(s.id, (&api.WriteOptions{}).WithContext(rctx))
			cancel()
			switch {
			case err == nil && entry == nil:
				s.lose("session invalidated by Consul")
				return
			case err != nil:
				c.log.Debug("session renewal failed", "session", s.id, "error", short(err))
			default:
				deadline = at.Add(ttl - fenceMargin(ttl))
				fence.Reset(time.Until(deadline))
			}
		}
	}
}

// destroy ends s and destroys it in Consul, bounded.
func (c *Coordinator) destroy(s *session) {
	s.end()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	if _, err := c.client.Session().Destroy(s.id, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		c.log.Debug("session destroy failed", "session", s.id, "error", short(err))
	}
}

// acquire takes key's lock for session s with consul/api's Lock, waiting with blocking queries. It returns
// the lock and the channel Lock returns, or an error; it gives up when ctx ends or s is lost.
func (c *Coordinator) acquire(ctx context.Context, key string, s *session) (*api.Lock, <-chan struct{}, error) {
	lock, err := c.client.LockOpts(&api.LockOptions{
		Key: key, Value: []byte(c.id), Session: s.id,
		LockWaitTime: c.cfg.BlockingWait,
		// The monitor rides out a brief Consul hiccup; fencing by the session's own TTL does the rest.
		MonitorRetries: 3, MonitorRetryTime: c.cfg.RetryMax,
	})
	if err != nil {
		return nil, nil, err
	}
	stop := make(chan struct{})
	type result struct {
		ch  <-chan struct{}
		err error
	}
	rc := make(chan result, 1)
	go func() {
		ch, err := lock.Lock(stop)
		rc <- result{ch, err}
	}()
	select {
	case r := <-rc:
		if r.err != nil {
			return nil, nil, r.err
		}
		if r.ch == nil {
			return nil, nil, errors.New("lock attempt stopped")
		}
		return lock, r.ch, nil
	case <-s.lost:
		close(stop)
		return nil, nil, errors.New("session lost while waiting: " + s.why)
	case <-ctx.Done():
		close(stop) // Lock notices between blocking queries; the session is destroyed by the caller, so it cannot acquire
		return nil, nil, ctx.Err()
	}
}

// Singleton is one job's lock. Acquire and Release are supervisor.Gate's (cmd/berth adapts them).
type Singleton struct {
	c      *Coordinator
	job    string
	key    string
	ttl    time.Duration
	delay  time.Duration
	onHeld func(held bool) // metrics: acquisitions and losses; may be nil

	mu   sync.Mutex
	lock *api.Lock
	sess *session
}

// Singleton returns job's lock. stopTimeout is the process's stop_timeout: the default lock-delay.
func (c *Coordinator) Singleton(job, scope string, lc LockConfig, stopTimeout time.Duration, onHeld func(held bool)) *Singleton {
	key := lc.Key
	if key == "" {
		key = SingletonKey(scope, job)
	}
	ttl := lc.SessionTTL
	if ttl == 0 {
		ttl = DefaultLockSessionTTL
	}
	delay := lc.LockDelay
	if delay == 0 {
		delay = min(stopTimeout, MaxLockDelay)
	}
	delay = max(delay, time.Millisecond) // 0 would mean Consul's default, 15s
	return &Singleton{c: c, job: job, key: strings.TrimPrefix(key, "/"), ttl: ttl, delay: delay, onHeld: onHeld}
}

// Key is the lock's KV key.
func (l *Singleton) Key() string { return l.key }

// Acquire waits as a hot standby (blocking queries on the key, a session renewed every TTL/3) until this
// berth holds the lock. The returned channel closes when the lock is lost: Lock's channel closed, or the
// session could not be renewed within its TTL. Consul errors are retried with back-off; with consul.required
// they end in an UnavailableError (69) once consul.timeout has passed without an answer.
func (l *Singleton) Acquire(ctx context.Context) (<-chan struct{}, error) {
	bo := backoff{min: l.c.cfg.RetryMin, max: l.c.cfg.RetryMax}
	var failing time.Time
	for {
		lost, err := l.try(ctx)
		if err == nil {
			return lost, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		if l.c.cfg.Required && time.Since(failing) > l.c.cfg.Timeout {
			return nil, &UnavailableError{What: "consul", Err: fmt.Errorf("singleton %s: %s", l.job, short(err))}
		}
		l.c.log.Warn("singleton: waiting for Consul", "job", l.job, "key", l.key, "error", short(err))
		d := bo.next()
		if l.c.cfg.Required { // the last try comes at consul.timeout, not a back-off step later
			d = max(min(d, time.Until(failing.Add(l.c.cfg.Timeout))), 10*time.Millisecond)
		}
		if !sleep(ctx, d) {
			return nil, ctx.Err()
		}
	}
}

func (l *Singleton) try(ctx context.Context) (<-chan struct{}, error) {
	s, err := l.c.newSession(ctx, "berth singleton "+l.job, l.ttl, l.delay)
	if err != nil {
		return nil, err
	}
	lock, held, err := l.c.acquire(ctx, l.key, s)
	if err != nil {
		go l.c.destroy(s)
		return nil, err
	}
	go func() {
		select {
		case <-held:
			s.lose("lock lost")
		case <-s.done:
		}
	}()
	l.mu.Lock()
	l.lock, l.sess = lock, s
	l.mu.Unlock()
	l.c.log.Info("singleton: lock acquired", "job", l.job, "key", l.key)
	if l.onHeld != nil {
		l.onHeld(true)
	}
	go func() {
		select {
		case <-s.lost:
			l.c.log.Warn("singleton: lock lost", "job", l.job, "key", l.key, "reason", s.why)
			if l.onHeld != nil {
				l.onHeld(false)
			}
		case <-s.done:
		}
	}()
	return s.lost, nil
}

// Release unlocks (no lock-delay: the process is gone) and destroys the session. It is bounded by
// consul.request_timeout per request.
func (l *Singleton) Release(int) {
	l.mu.Lock()
	lock, s := l.lock, l.sess
	l.lock, l.sess = nil, nil
	l.mu.Unlock()
	if s == nil {
		return
	}
	select {
	case <-s.lost:
	default:
		s.end() // no loss to report: this is a voluntary release
		done := make(chan struct{})
		go func() { defer close(done); _ = lock.Unlock() }()
		select {
		case <-done:
		case <-time.After(l.c.cfg.RequestTimeout):
		}
	}
	l.c.destroy(s)
	l.c.log.Info("singleton: lock released", "job", l.job, "key", l.key)
}
