package secrets

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-dev/berth/onchange"
)

// Run is the refresh actor (an oklog/run actor): every block with Refresh > 0 is re-read on its own
// interval; when its version changed, Run rewrites the block's file, updates Env(), hands the new plaintexts
// to Config.NewValues, then calls onChange(block, action) with the block's on_change (a "none" is not
// reported). A failed refresh is logged and keeps the old value; it is retried at the next interval.
// Env references are read once, at Resolve, and never refreshed. Run returns nil when ctx is done; it must
// be called after Resolve succeeded.
func (r *Resolver) Run(ctx context.Context, onChange func(block string, action onchange.Action)) error {
	r.mu.Lock()
	resolved := r.state != nil
	r.mu.Unlock()
	if !resolved {
		return errors.New("secrets: Run before a successful Resolve")
	}
	var wg sync.WaitGroup
	for _, b := range r.cfg.Blocks {
		if b.Refresh <= 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(b.Refresh)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					r.refresh(ctx, b, onChange)
				}
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// refresh re-reads one block and applies a change.
func (r *Resolver) refresh(ctx context.Context, b Block, onChange func(block string, action onchange.Action)) {
	start := time.Now()
	bctx, cancel := r.budget(ctx, start)
	defer cancel()
	u := blockUnit(b)
	c, err := r.awsClientsBy(bctx, start, u.ref.Region)
	if err != nil {
		r.log.Warn("secret refresh failed", "block", b.Name, "error", err)
		return
	}
	f := r.fetcher(c, 1, start)
	p := newPlan()
	p.add(u)
	if err := f.run(bctx, p); err != nil {
		if ctx.Err() == nil {
			r.log.Warn("secret refresh failed, keeping the current value", "block", b.Name, "error", err)
		}
		return
	}
	r.mu.Lock()
	old := r.state.versions[b.Name]
	r.mu.Unlock()
	if u.item.version == old {
		r.log.Trace("secret unchanged", "block", b.Name, "version", old)
		return
	}
	d, err := deliver(b, u)
	if err != nil {
		r.log.Warn("secret refresh failed, keeping the current value", "block", b.Name, "error", err)
		return
	}
	if b.File != "" {
		sf, err := stageFile(b.File, u.item.raw, b.Mode, b.UID, b.GID)
		if err == nil {
			err = sf.commit()
		}
		if err != nil {
			r.log.Warn("secret refresh: cannot write file, keeping the current one", "block", b.Name, "error", err)
			return
		}
	}
	now := time.Now()
	r.mu.Lock()
	st := r.state
	st.versions[b.Name] = u.item.version
	env := st.env.Clone()
	for _, kv := range d.env {
		env.Shared = setEnv(env.Shared, kv)
	}
	st.env = env
	status := append([]RefStatus(nil), st.status...)
	for i := range status {
		if status[i].Block == b.Name {
			status[i].Version, status[i].Fetched = u.item.version, now
		}
	}
	st.status = status
	r.mu.Unlock()
	r.log.Info("secret changed", "block", b.Name, "from", old, "to", u.item.version)
	if r.cfg.NewValues != nil {
		r.cfg.NewValues(d.values)
	}
	if !b.OnChange.None() && onChange != nil {
		onChange(b.Name, b.OnChange)
	}
}
