package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// A once-job's state in KV: berth/once/<KEY> holds "ok" after a success or "failed:<code>" after a failure
// (berth/once/<KEY>/info has who ran it, when and how long); berth/once/<KEY>/.lock is the lock of the berth
// running it. A failure only fails the berths that were waiting for that run: one that starts later runs the
// job again.

// OnceFailedError is a once-job that failed on the berth that ran it: every waiting berth exits with Code.
type OnceFailedError struct {
	Job, Key string
	Code     int
}

func (e *OnceFailedError) Error() string {
	return fmt.Sprintf("once %q failed with exit code %d on the berth that ran it", e.Key, e.Code)
}

// ExitCode is the job's exit code.
func (e *OnceFailedError) ExitCode() int { return e.Code }

// Once is one once-job's gate. Begin and Finish are supervisor.Gate's Acquire and Release (cmd/berth adapts them).
type Once struct {
	c   *Coordinator
	job string
	key string // berth/once/<KEY>
	cfg OnceConfig

	mu      sync.Mutex
	lock    *api.Lock
	sess    *session
	started time.Time
}

// Once returns the gate of job with oc.
func (c *Coordinator) Once(job string, oc OnceConfig) *Once {
	if oc.Wait == 0 {
		oc.Wait = DefaultOnceWait
	}
	if oc.SessionTTL == 0 {
		oc.SessionTTL = DefaultLockSessionTTL
	}
	return &Once{c: c, job: job, key: OncePrefix + strings.TrimPrefix(oc.Key, "/"), cfg: oc}
}

// Key is the result's KV key.
func (o *Once) Key() string { return o.key }

// onceResult is what a result key holds.
type onceResult struct {
	ok     bool
	failed bool
	code   int
	index  uint64 // ModifyIndex
}

func parseResult(p *api.KVPair) onceResult {
	if p == nil {
		return onceResult{}
	}
	r := onceResult{index: p.ModifyIndex}
	v := string(p.Value)
	switch {
	case v == "ok":
		r.ok = true
	case strings.HasPrefix(v, "failed:"):
		r.failed = true
		r.code, _ = strconv.Atoi(strings.TrimPrefix(v, "failed:"))
		if r.code <= 0 || r.code > 255 {
			r.code = 1
		}
	}
	return r
}

// Begin decides: run=true means this berth holds the lock and must run the job (then Finish); run=false
// means it succeeded already (here or on another berth). A failure of the run this berth waited for is an
// *OnceFailedError. Waiting is bounded by Wait; Consul errors are retried until consul.timeout.
func (o *Once) Begin(ctx context.Context) (run bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Wait)
	defer cancel()
	bo := backoff{min: o.c.cfg.RetryMin, max: o.c.cfg.RetryMax}
	var failing time.Time
	for {
		run, err := o.begin(ctx)
		var fe *OnceFailedError
		if err == nil || errors.As(err, &fe) {
			return run, err
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return false, &UnavailableError{What: "once " + strconv.Quote(o.cfg.Key),
					Err: fmt.Errorf("not done within wait %s (another berth is running it)", o.cfg.Wait)}
			}
			return false, ctx.Err()
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		if time.Since(failing) > o.c.cfg.Timeout {
			return false, &UnavailableError{What: "consul", Err: fmt.Errorf("once %q: %s", o.cfg.Key, short(err))}
		}
		o.c.log.Warn("once: waiting for Consul", "job", o.job, "key", o.key, "error", short(err))
		if !sleep(ctx, max(min(bo.next(), time.Until(failing.Add(o.c.cfg.Timeout))), 10*time.Millisecond)) {
			continue // ctx ended: reported above
		}
	}
}

func (o *Once) get(ctx context.Context, index uint64) (*api.KVPair, *api.QueryMeta, error) {
	d := o.c.cfg.RequestTimeout
	q := &api.QueryOptions{RequireConsistent: true}
	if index > 0 {
		q.WaitIndex, q.WaitTime = index, o.c.cfg.BlockingWait
		d = o.c.cfg.blockingDeadline(o.c.cfg.BlockingWait)
	}
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	p, m, err := o.c.client.KV().Get(o.key, q.WithContext(rctx))
	if err != nil {
		return nil, nil, describe(err, d)
	}
	return p, m, nil
}

func (o *Once) begin(ctx context.Context) (bool, error) {
	p, meta, err := o.get(ctx, 0)
	if err != nil {
		return false, err
	}
	first := parseResult(p)
	if first.ok {
		return false, nil
	}
	since := meta.LastIndex // a failure recorded before we came is an earlier attempt's: run it again

	// No lock-delay to speak of (1ms; 0 would mean Consul's 15s): a dead holder's process is gone with it.
	s, err := o.c.newSession(ctx, "berth once "+o.job, o.cfg.SessionTTL, time.Millisecond)
	if err != nil {
		return false, err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watched := make(chan onceResult, 1)
	go func() {
		idx := since
		for wctx.Err() == nil {
			p, m, err := o.get(wctx, idx)
			if err != nil {
				if !sleep(wctx, o.c.cfg.RetryMax) {
					return
				}
				continue
			}
			if r := parseResult(p); (r.ok || r.failed) && r.index > since {
				watched <- r
				return
			}
			if m.LastIndex < idx { // the index went backwards (a restored snapshot): start over
				idx = 0
				continue
			}
			idx = m.LastIndex
		}
	}()
	type acquired struct {
		lock *api.Lock
		err  error
	}
	ac := make(chan acquired, 1)
	actx, stopAcquire := context.WithCancel(ctx)
	defer stopAcquire()
	go func() {
		lock, _, err := o.c.acquire(actx, o.key+"/.lock", s)
		ac <- acquired{lock, err}
	}()
	decided := func(r onceResult) (bool, error) {
		if r.ok {
			o.c.log.Info("once: done by another berth", "job", o.job, "key", o.key)
			return false, nil
		}
		return false, &OnceFailedError{Job: o.job, Key: o.cfg.Key, Code: r.code}
	}
	select {
	case r := <-watched:
		stopAcquire()
		go func() { // the lock attempt may still win; give it back
			if a := <-ac; a.err == nil {
				_ = a.lock.Unlock()
			}
			o.c.destroy(s)
		}()
		return decided(r)
	case a := <-ac:
		if a.err != nil {
			go o.c.destroy(s)
			return false, a.err
		}
		// Holding the lock: the result may have been written just before the holder unlocked.
		p, _, err := o.get(ctx, 0)
		if err == nil {
			if r := parseResult(p); r.ok || (r.failed && r.index > since) {
				_ = a.lock.Unlock()
				go o.c.destroy(s)
				return decided(r)
			}
		} else {
			_ = a.lock.Unlock()
			go o.c.destroy(s)
			return false, err
		}
		o.mu.Lock()
		o.lock, o.sess, o.started = a.lock, s, time.Now()
		o.mu.Unlock()
		o.c.log.Info("once: running", "job", o.job, "key", o.key)
		return true, nil
	case <-ctx.Done():
		go o.c.destroy(s)
		return false, ctx.Err()
	}
}

// onceInfo is berth/once/<KEY>/info.
type onceInfo struct {
	Job      string    `json:"job"`
	Result   string    `json:"result"`
	Code     int       `json:"code"`
	Holder   string    `json:"holder"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Finish records the result of the run Begin granted (code 0 = "ok", >0 = "failed:<code>", <0 = stopped
// before it finished: nothing recorded, the next holder runs it), then unlocks and destroys the session. The
// result is written before the unlock, so a waiter that takes the lock next sees it.
func (o *Once) Finish(code int) {
	o.mu.Lock()
	lock, s, started := o.lock, o.sess, o.started
	o.lock, o.sess = nil, nil
	o.mu.Unlock()
	if s == nil {
		return
	}
	if code >= 0 {
		result := "ok"
		if code != 0 {
			result = "failed:" + strconv.Itoa(code)
		}
		info, _ := json.Marshal(onceInfo{Job: o.job, Result: result, Code: code, Holder: o.c.id, Started: started, Finished: time.Now()})
		ctx, cancel := context.WithTimeout(context.Background(), o.c.cfg.RequestTimeout)
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: o.key + "/info", Value: info}},
			{KV: &api.KVTxnOp{Verb: api.KVSet, Key: o.key, Value: []byte(result)}},
		}
		ok, resp, _, err := o.c.client.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(ctx))
		cancel()
		switch {
		case err != nil:
			o.c.log.Error("once: recording the result failed", "job", o.job, "key", o.key, "error", short(err))
		case !ok:
			o.c.log.Error("once: recording the result failed", "job", o.job, "key", o.key, "errors", fmt.Sprint(resp.Errors))
		default:
			o.c.log.Info("once: result recorded", "job", o.job, "key", o.key, "result", result)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = lock.Unlock() }()
	select {
	case <-done:
	case <-time.After(o.c.cfg.RequestTimeout):
	}
	o.c.destroy(s)
}
