package discovery

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	template "github.com/DataDog/datadog-agent/pkg/template/text"
	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/onchange"
)

// Peer is one instance of a peers block's service.
type Peer struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Address string            `json:"address"` // service address, else the node's address
	Port    int               `json:"port"`
	Tags    []string          `json:"tags"`
	Meta    map[string]string `json:"meta"`
	Node    string            `json:"node"`
}

// HostPort is "address:port" ("[v6]:port" for IPv6).
func (p Peer) HostPort() string { return net.JoinHostPort(p.Address, strconv.Itoa(p.Port)) }

// Templates run on datadog-agent's copy of text/template, which is the standard library's minus method calls:
// text/template's way of finding a method by name (reflect.Value.MethodByName with a computed name) makes the Go
// linker keep every exported method of every type in the binary, and berth's binary was 30.9 MiB with it,
// 16.9 MiB without. Peer's one method, HostPort, reaches templates as a field of templatePeer, so a template
// writes {{.HostPort}} as before.
func templateFuncs() template.FuncMap {
	return template.FuncMap{"join": strings.Join}
}

// templatePeer is a Peer as templates see it: its fields, and HostPort as a field.
type templatePeer struct {
	ID       string
	Name     string
	Address  string
	Port     int
	Tags     []string
	Meta     map[string]string
	Node     string
	HostPort string
}

func templatePeers(peers []Peer) []templatePeer {
	out := make([]templatePeer, len(peers))
	for i, p := range peers {
		out[i] = templatePeer{ID: p.ID, Name: p.Name, Address: p.Address, Port: p.Port, Tags: p.Tags, Meta: p.Meta,
			Node: p.Node, HostPort: p.HostPort()}
	}
	return out
}

type peerState struct {
	cfg  PeersConfig
	tmpl *template.Template // nil: comma-separated host:port

	// guarded by Agent.mu
	index    uint64
	rendered string
	resolved bool
	peers    []Peer
}

func newPeerState(p PeersConfig) (*peerState, error) {
	if p.Wait == 0 {
		p.Wait = DefaultPeersWait
	}
	ps := &peerState{cfg: p}
	if p.Template != "" {
		t, err := template.New(p.Name).Funcs(templateFuncs()).Option("missingkey=error").Parse(p.Template)
		if err != nil {
			return nil, fmt.Errorf("peers %q: template: %w", p.Name, err)
		}
		ps.tmpl = t
	}
	return ps, nil
}

func (ps *peerState) render(peers []Peer) (string, error) {
	if ps.tmpl == nil {
		hp := make([]string, len(peers))
		for i, p := range peers {
			hp[i] = p.HostPort()
		}
		return strings.Join(hp, ","), nil
	}
	var b bytes.Buffer
	if err := ps.tmpl.Execute(&b, templatePeers(peers)); err != nil {
		return "", fmt.Errorf("peers %q: template: %w", ps.cfg.Name, err)
	}
	return b.String(), nil
}

// ResolvePeers does the initial lookup of every peers block, in parallel: each waits up to its Wait for Min
// peers (the first member of a new cluster starts with fewer, possibly none, after Wait), writes its file and
// returns the env vars. A Consul that does not answer within Wait yields an empty list, not an error; errors
// are template and file-writing failures.
func (a *Agent) ResolvePeers(ctx context.Context) (map[string]string, error) {
	if len(a.peers) == 0 {
		return map[string]string{}, nil
	}
	if err := a.prepare(ctx); err != nil {
		return nil, err
	}
	errs := make([]error, len(a.peers))
	var wg sync.WaitGroup
	for i, ps := range a.peers {
		wg.Go(func() { errs[i] = a.resolve(ctx, ps) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a.PeerEnv(), nil
}

func (a *Agent) resolve(ctx context.Context, ps *peerState) error {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, ps.cfg.Wait)
	defer cancel()
	var (
		peers   []Peer
		index   uint64
		lastErr error
		b       = backoff{min: a.cfg.Consul.RetryMin, max: a.cfg.Consul.RetryMax}
	)
	for {
		var wait time.Duration
		if index > 0 {
			// Block until the list changes or the wait runs out (the ctx deadline cuts Consul's jitter).
			wait = min(a.cfg.Consul.BlockingWait, time.Until(start.Add(ps.cfg.Wait)))
		}
		got, idx, err := a.query(wctx, ps, index, wait)
		if err != nil {
			if wctx.Err() != nil {
				break
			}
			lastErr = err
			a.log.Warn("peers lookup failed; retrying", "peers", ps.cfg.Name, "error", err)
			if !sleep(wctx, b.next()) {
				break
			}
			continue
		}
		b.reset()
		peers, index = got, nextIndex(index, idx)
		if len(peers) >= ps.cfg.Min || wctx.Err() != nil {
			break
		}
		a.log.Info("waiting for peers", "peers", ps.cfg.Name, "service", ps.cfg.Service, "have", len(peers), "min", ps.cfg.Min)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("peers %q: %w", ps.cfg.Name, ctx.Err())
	}
	if len(peers) < ps.cfg.Min {
		a.log.Warn("fewer peers than min after wait; starting with what there is (first member of a new cluster)",
			"peers", ps.cfg.Name, "have", len(peers), "min", ps.cfg.Min, "wait", ps.cfg.Wait, "last_error", lastErr)
	}
	a.mu.Lock()
	ps.index = index
	ps.resolved = true
	a.mu.Unlock()
	_, err := a.update(ps, peers)
	return err
}

// nextIndex applies Consul's blocking-query rules: reset when the index goes backwards (agent or cluster
// restarted), never block on 0.
func nextIndex(old, got uint64) uint64 {
	if got < old {
		return 0
	}
	return max(got, 1)
}

// query runs one (blocking when index > 0) health query and filters the result. Its deadline is the wait
// plus Consul's jitter plus RequestTimeout: a Consul that accepts the connection and never answers cannot
// hold a watch for longer than that.
func (a *Agent) query(ctx context.Context, ps *peerState, index uint64, wait time.Duration) ([]Peer, uint64, error) {
	if index == 0 {
		wait = 0
	}
	timeout := a.cfg.Consul.blockingDeadline(wait)
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := &api.QueryOptions{Datacenter: a.cfg.Consul.Datacenter, WaitIndex: index, WaitTime: wait}
	entries, meta, err := a.client.Health().Service(ps.cfg.Service, ps.cfg.Tag, ps.cfg.passingOnly(), q.WithContext(qctx))
	a.observe(ctx, err)
	if err != nil {
		return nil, 0, fmt.Errorf("health service %s: %w", ps.cfg.Service, describe(err, timeout))
	}
	return a.filter(ps, entries), meta.LastIndex, nil
}

// filter turns entries into sorted peers, dropping or adding this berth's own instance (include_self).
func (a *Agent) filter(ps *peerState, entries []*api.ServiceEntry) []Peer {
	self := map[string]Peer{}
	a.mu.Lock()
	nodeAddr := a.nodeAddr // a service registered without an address (bridge mode) is at the node's
	a.mu.Unlock()
	for _, r := range a.Registrations() {
		if r.Name == ps.cfg.Service && (ps.cfg.Tag == "" || slices.Contains(r.Tags, ps.cfg.Tag)) {
			self[r.ID] = Peer{ID: r.ID, Name: r.Name, Address: cmp.Or(r.Address, nodeAddr), Port: r.Port, Tags: r.Tags, Meta: r.Meta}
		}
	}
	var peers []Peer
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		// never nil: status shows "tags": [] and "meta": {} for a service without them, not null
		p := Peer{ID: e.Service.ID, Name: e.Service.Service, Address: e.Service.Address, Port: e.Service.Port,
			Tags: append([]string{}, e.Service.Tags...), Meta: maps.Clone(e.Service.Meta)}
		if p.Meta == nil {
			p.Meta = map[string]string{}
		}
		if e.Node != nil {
			p.Node = e.Node.Node
			if p.Address == "" {
				p.Address = e.Node.Address
			}
		}
		if _, mine := self[p.ID]; mine {
			if !ps.cfg.IncludeSelf {
				continue
			}
			delete(self, p.ID)
		}
		peers = append(peers, p)
	}
	if ps.cfg.IncludeSelf {
		// Our own instance belongs in the list even before its checks pass or it is registered.
		for _, p := range self {
			peers = append(peers, p)
		}
	}
	slices.SortFunc(peers, func(x, y Peer) int {
		return cmp.Or(cmp.Compare(x.Address, y.Address), cmp.Compare(x.Port, y.Port), cmp.Compare(x.ID, y.ID))
	})
	return peers
}

// update renders peers and, when the result differs from the last one, writes the file. It reports whether
// the rendering changed.
func (a *Agent) update(ps *peerState, peers []Peer) (bool, error) {
	out, err := ps.render(peers)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	changed := out != ps.rendered || ps.peers == nil
	ps.rendered, ps.peers = out, peers
	if ps.peers == nil {
		ps.peers = []Peer{}
	}
	a.mu.Unlock()
	if !changed {
		return false, nil
	}
	a.log.Info("peers", "peers", ps.cfg.Name, "service", ps.cfg.Service, "count", len(peers), "value", out)
	if ps.cfg.File != "" {
		if err := writeFileAtomic(ps.cfg.File, []byte(out), 0o644); err != nil {
			return true, fmt.Errorf("peers %q: %w", ps.cfg.Name, err)
		}
	}
	return true, nil
}

// PeerEnv returns the current env var of every peers block that has one (the latest rendering, for the next
// start of the main command).
func (a *Agent) PeerEnv() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	env := map[string]string{}
	for _, ps := range a.peers {
		if ps.cfg.Env != "" && ps.peers != nil {
			env[ps.cfg.Env] = ps.rendered
		}
	}
	return env
}

// Peers returns the current peer list of the named block (nil before it was resolved).
func (a *Agent) Peers(name string) []Peer {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range a.peers {
		if ps.cfg.Name == name {
			return slices.Clone(ps.peers)
		}
	}
	return nil
}

// WatchPeers follows every peers block with Consul blocking queries (one open query per block, re-issued when
// it returns, after the service settled when it returned a change; back-off with jitter on errors; no
// polling), re-renders the files, and calls onChange(name,
// action) with the block's on_change ("signal:SIGHUP", "restart") when the rendered list changed; blocks with
// on_change "none" only re-render. It returns nil when ctx is done.
func (a *Agent) WatchPeers(ctx context.Context, onChange func(name string, action onchange.Action)) error {
	if len(a.peers) == 0 {
		<-ctx.Done()
		return nil
	}
	if err := a.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	for _, ps := range a.peers {
		wg.Go(func() { a.watch(ctx, ps, onChange) })
	}
	wg.Wait()
	return nil
}

func (a *Agent) watch(ctx context.Context, ps *peerState, onChange func(name string, action onchange.Action)) {
	a.mu.Lock()
	index, resolved := ps.index, ps.resolved
	a.mu.Unlock()
	b := backoff{min: a.cfg.Consul.RetryMin, max: a.cfg.Consul.RetryMax}
	for {
		started := time.Now()
		peers, idx, err := a.queryUntilRecovery(ctx, ps, index)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRecovered) {
			// Consul answers again after an outage this query lived through; the connection it waits on may
			// be one the outage swallowed. Ask again now, plainly: the agent may have restarted with a lower
			// index.
			a.log.Debug("peers watch re-issued after a consul outage", "peers", ps.cfg.Name)
			index = 0
			b.reset()
			continue
		}
		if err != nil {
			// The agent may have restarted with a lower index: a blocking query on our old index would then
			// hang for the whole wait. Start again with a plain query (Consul's "reset the index" rule).
			index = 0
			d := b.next()
			a.log.Warn("peers watch failed; retrying", "peers", ps.cfg.Name, "error", err, "in", d.Round(time.Millisecond))
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		b.reset()
		prev := index
		index = nextIndex(index, idx)
		moved := idx != prev
		if moved || !resolved {
			changed, err := a.update(ps, peers)
			if err != nil {
				a.log.Error("peers render failed", "peers", ps.cfg.Name, "error", err)
			}
			if action := ps.cfg.OnChange; changed && resolved && onChange != nil && !action.None() {
				onChange(ps.cfg.Name, action)
			}
			resolved = true
		}
		// Consul's advice for blocking queries: rate-limit re-issues when the index churns, so a flapping
		// service elsewhere cannot turn the watch into a busy loop.
		if time.Since(started) < a.cfg.Consul.RetryMin && !sleep(ctx, a.cfg.Consul.RetryMin-time.Since(started)) {
			return
		}
		// A change was rendered at once. Before the watch asks for the whole list again, it waits for the
		// service to settle, so a burst of changes (a deployment replacing a fifth of the fleet) costs each
		// watcher one more list, not one per change (README, Decisions).
		if moved {
			switch a.settle(ctx, ps, index) {
			case settleDone:
				return
			case settleReset:
				index = 0 // the agent restarted with a lower index: start again with a plain query
			}
		}
	}
}

// The quiet period a peers watch waits for after a change, and the longest it defers the next list.
const (
	peersQuiet     = time.Second
	peersSettleMax = 4 * time.Second
)

// peersProbeFilter matches no instance: a probe's answer is "[]" and its X-Consul-Index is the service's.
const peersProbeFilter = `Service.ID == ""`

// settle returns once nothing changed in the service for a quiet period (1s ±25%, so watchers woken together
// do not ask again together), or 4s after it was called. It watches with probes: blocking queries on the same
// index whose filter matches nothing, so each answer is an index, not the list. The next blocking query on
// index then returns at once with the list when something changed, and waits as usual when nothing did.
func (a *Agent) settle(ctx context.Context, ps *peerState, index uint64) settled {
	deadline := time.Now().Add(peersSettleMax)
	for {
		wait := min(time.Duration(float64(peersQuiet)*(0.75+0.5*rand.Float64())), time.Until(deadline))
		if wait <= 0 {
			return settleQuiet
		}
		started := time.Now()
		idx, err := a.probePeers(ctx, ps, index, wait)
		switch {
		case ctx.Err() != nil:
			return settleDone
		case err != nil || idx == index:
			return settleQuiet // quiet for wait, or an error the watch's own query handles
		case idx < index:
			return settleReset
		}
		index = idx
		if d := a.cfg.Consul.RetryMin - time.Since(started); d > 0 && !sleep(ctx, d) {
			return settleDone
		}
	}
}

type settled int

const (
	settleQuiet settled = iota // ask for the list
	settleReset                // the index went backwards: ask with a plain query
	settleDone                 // ctx is done
)

// probePeers is a blocking health query of ps's service on index whose answer lists no instance: it returns the
// service's index when something changed or wait ran out.
func (a *Agent) probePeers(ctx context.Context, ps *peerState, index uint64, wait time.Duration) (uint64, error) {
	timeout := a.cfg.Consul.blockingDeadline(wait)
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := &api.QueryOptions{Datacenter: a.cfg.Consul.Datacenter, WaitIndex: index, WaitTime: wait, Filter: peersProbeFilter}
	_, meta, err := a.client.Health().Service(ps.cfg.Service, ps.cfg.Tag, ps.cfg.passingOnly(), q.WithContext(qctx))
	a.observe(ctx, err)
	if err != nil {
		return 0, fmt.Errorf("health service %s: %w", ps.cfg.Service, describe(err, timeout))
	}
	return meta.LastIndex, nil
}

var errRecovered = errors.New("consul answered again after an outage")

// queryUntilRecovery is query with the watch's blocking wait, cut short with errRecovered when an outage
// ends while it is open (another request got the first answer after it): its own connection may be one the
// outage swallowed, which only its deadline would otherwise end.
func (a *Agent) queryUntilRecovery(ctx context.Context, ps *peerState, index uint64) ([]Peer, uint64, error) {
	recovered := a.recoveredCh()
	qctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-recovered:
			cancel(errRecovered)
		case <-done:
		}
	}()
	peers, idx, err := a.query(qctx, ps, index, a.cfg.Consul.BlockingWait)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(qctx), errRecovered) {
		return nil, 0, errRecovered
	}
	return peers, idx, err
}

// writeFileAtomic writes data next to path and renames it over path, so readers never see half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
