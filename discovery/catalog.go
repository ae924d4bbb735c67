package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Catalog mode (consul { mode = "catalog" }): berth is the agentless registrar of its own task, the way
// consul-ecs registers Fargate tasks, without consul-ecs's separately deployed controller.
//
//   - The task is a catalog node (ConsulConfig.Node, else the ECS task id, else the hostname) at the task's
//     address, with the ECS fields as node meta; its services and checks are written with Catalog().Register.
//     No agent's local state is touched.
//   - Checks run in berth as in agent mode; a check's status is written only when it changes, so a task whose
//     health is stable costs no catalog write.
//   - Liveness comes from a TTL'd session bound to the node (no checks, so no serfHealth), renewed every
//     SessionTTL/2; its id is the node meta berth_session. Session renewals reset a timer on the leader and
//     are no Raft writes. Consul invalidates a session 2×TTL after its last renewal.
//   - Every berth sweeps the instances of its own services: any node whose berth_session no longer exists is
//     deregistered. A sweep runs at start-up and whenever the cluster's sessions change (a blocking query on
//     the session list), so a SIGKILLed task is gone about 2×SessionTTL after its last renewal, as long as one
//     berth of the service lives. When the last instance dies nobody sweeps: its entry stays (critical or
//     not) until the next instance of the service starts and sweeps at start-up.

// nodeMetaSession is the node meta key holding the id of the session that keeps the node alive.
const nodeMetaSession = "berth_session"

// sweepFloor is the least time between two sweeps: a cluster whose sessions churn (locks, other berths)
// wakes every berth's blocking query, and one catalog read per second per berth is the most that costs.
const sweepFloor = time.Second

// catalogState is what catalog mode adds to the Agent; guarded by Agent.mu unless noted.
type catalogState struct {
	node     string
	address  string
	nodeMeta map[string]string
	session  string // "" until created, and again when Consul lost it
}

// catalogSetup names the node and gathers its meta (called by prepare, caller holds prepMu).
func (a *Agent) catalogSetup(instance, address string, meta map[string]string) {
	node := a.cfg.Consul.Node
	if node == "" {
		node = instance
	}
	nm := map[string]string{"berth": "catalog"}
	for _, k := range []string{"ecs_cluster", "ecs_task_arn", "ecs_family", "ecs_revision", "availability_zone"} {
		if v := meta[k]; v != "" {
			nm[k] = v
		}
	}
	a.mu.Lock()
	a.cat.node, a.cat.address, a.cat.nodeMeta = node, address, nm
	a.mu.Unlock()
}

func (a *Agent) sessionTTL() time.Duration {
	if a.cfg.Consul.SessionTTL > 0 {
		return a.cfg.Consul.SessionTTL
	}
	return DefaultSessionTTL
}

// ensureSession registers the bare node and creates its session when there is none. Caller holds regSem.
func (a *Agent) ensureSession(ctx context.Context) (string, error) {
	a.mu.Lock()
	cs := a.cat
	id, node, addr, nm := cs.session, cs.node, cs.address, maps.Clone(cs.nodeMeta)
	a.mu.Unlock()
	if id != "" {
		return id, nil
	}
	// The session must belong to a node that exists. Bound to our own node, it dies with the node's
	// deregistration, and it does not depend on the server that created it staying in the cluster.
	wo := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := a.client.Catalog().Register(&api.CatalogRegistration{Node: node, Address: addr, NodeMeta: nm}, wo); err != nil {
		return "", fmt.Errorf("register node %s: %w", node, err)
	}
	id, _, err := a.client.Session().CreateNoChecks(&api.SessionEntry{Name: "berth " + node, Node: node,
		TTL: a.sessionTTL().String()}, wo)
	if err != nil {
		return "", fmt.Errorf("create session for node %s: %w", node, err)
	}
	a.mu.Lock()
	cs.session = id
	a.mu.Unlock()
	a.log.Debug("consul session created", "node", node, "session", id, "ttl", a.sessionTTL())
	return id, nil
}

// catalogRegistration builds the catalog registration of s with its checks' current status, and the
// maintenance check when on. Caller holds a.mu.
func (a *Agent) catalogRegistration(s *service, session string, maint bool, reason string) *api.CatalogRegistration {
	cs := a.cat
	nm := maps.Clone(cs.nodeMeta)
	nm[nodeMetaSession] = session
	reg := &api.CatalogRegistration{Node: cs.node, Address: cs.address, NodeMeta: nm,
		Service: &api.AgentService{ID: s.id, Service: s.name, Address: s.address, Port: s.port,
			Tags: slices.Clone(s.tags), Meta: maps.Clone(s.meta)}}
	for _, c := range s.checks {
		reg.Checks = append(reg.Checks, &api.HealthCheck{Node: cs.node, CheckID: c.id, Name: c.name,
			Status: c.status, Notes: c.notes, Output: c.output, ServiceID: s.id, ServiceName: s.name})
	}
	if maint {
		reg.Checks = append(reg.Checks, &api.HealthCheck{Node: cs.node, CheckID: maintCheckID(s.id),
			Name: "Service Maintenance Mode", Status: api.HealthCritical, Notes: reason, ServiceID: s.id,
			ServiceName: s.name})
	}
	return reg
}

// maintCheckID is the ID agent mode's maintenance check has, so dashboards and tests see one shape.
func maintCheckID(serviceID string) string { return "_service_maintenance:" + serviceID }

// catalogRegister writes s, its checks and the node in one request. Caller holds regSem.
func (a *Agent) catalogRegister(ctx context.Context, s *service, maint bool, reason string) error {
	session, err := a.ensureSession(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	reg := a.catalogRegistration(s, session, maint, reason)
	sent := make([]string, len(s.checks))
	for i, c := range s.checks {
		sent[i] = c.status
	}
	a.mu.Unlock()
	wo := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := a.client.Catalog().Register(reg, wo); err != nil {
		return err
	}
	if !maint {
		// Maintenance may have been on before (or before a restart of berth with the same node name).
		if _, err := a.client.Catalog().Deregister(&api.CatalogDeregistration{Node: reg.Node, CheckID: maintCheckID(s.id)}, wo); err != nil {
			return fmt.Errorf("maintenance off: %w", err)
		}
	}
	a.mu.Lock()
	for i, c := range s.checks {
		c.sent = sent[i]
	}
	a.mu.Unlock()
	return nil
}

// catalogReport writes c's status to the catalog when it differs from the status last written. The
// output is written with it; an output that changes under a stable status is not (zero writes in steady state).
func (a *Agent) catalogReport(ctx context.Context, c *check) {
	a.mu.Lock()
	if c.status == c.sent || a.draining || !c.svc.registered {
		a.mu.Unlock()
		return
	}
	status := c.status
	reg := a.catalogRegistration(c.svc, a.cat.session, a.maintenance, a.maintReason)
	reg.SkipNodeUpdate = true
	reg.Checks = slices.DeleteFunc(reg.Checks, func(h *api.HealthCheck) bool { return h.CheckID != c.id })
	a.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
	defer cancel()
	defer context.AfterFunc(a.stopOps, cancel)()
	_, err := a.client.Catalog().Register(reg, (&api.WriteOptions{}).WithContext(rctx))
	a.observe(ctx, err)
	switch {
	case err == nil:
		a.mu.Lock()
		c.sent = status
		a.mu.Unlock()
	case ctx.Err() != nil || a.stopOps.Err() != nil:
	case a.tokenGone(err):
		a.resync(c.svc)
	default:
		// The next run (one interval later) retries, since c.sent still differs.
		a.log.Warn("consul catalog check update failed; retrying next interval", "check", c.id, "error", describe(err, a.cfg.Consul.RequestTimeout))
	}
}

// runCatalog keeps the session alive and sweeps ghosts until ctx is done.
func (a *Agent) runCatalog(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.renewLoop(ctx) })
	names := map[string]bool{}
	for _, s := range a.serviceList() {
		if !names[s.name] {
			names[s.name] = true
			wg.Go(func() { a.sweepLoop(ctx, s.name) })
		}
	}
	wg.Wait()
}

// renewLoop renews the session every SessionTTL/2. A session Consul no longer knows (a Consul restart with
// empty state, or a partition longer than 2×TTL during which a peer may have reaped this node) is dropped
// and everything registers again with a new one.
func (a *Agent) renewLoop(ctx context.Context) {
	every := a.sessionTTL() / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.stopOps.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		id := a.cat.session
		a.mu.Unlock()
		if id == "" {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
		stop := context.AfterFunc(a.stopOps, cancel)
		entry, _, err := a.client.Session().Renew(id, (&api.WriteOptions{}).WithContext(rctx))
		stop()
		cancel()
		a.observe(ctx, err)
		switch {
		case a.tokenGone(err):
			for _, s := range a.serviceList() {
				a.resync(s)
			}
		case err != nil:
			if ctx.Err() == nil && a.stopOps.Err() == nil {
				a.log.Warn("consul session renewal failed", "session", id, "error", describe(err, a.cfg.Consul.RequestTimeout))
			}
		case entry == nil:
			a.mu.Lock()
			if a.cat.session == id {
				a.cat.session = ""
			}
			a.mu.Unlock()
			for _, s := range a.serviceList() {
				a.lost(s)
			}
		}
	}
}

// sweepLoop sweeps the instances of service name at once, then each time the cluster's sessions change.
func (a *Agent) sweepLoop(ctx context.Context, name string) {
	var index uint64
	b := backoff{min: a.cfg.Consul.RetryMin, max: a.cfg.Consul.RetryMax}
	for ctx.Err() == nil && a.stopOps.Err() == nil {
		if err := a.sweep(ctx, name); err != nil && ctx.Err() == nil {
			a.log.Debug("ghost sweep failed", "service", name, "error", err)
		}
		if !sleep(ctx, sweepFloor) {
			return
		}
		wait := a.cfg.Consul.BlockingWait
		qctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.blockingDeadline(wait))
		_, meta, err := a.client.Session().List((&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(qctx))
		cancel()
		a.observe(ctx, err)
		if err != nil {
			if !sleep(ctx, b.next()) {
				return
			}
			index = 0
			continue
		}
		b.reset()
		index = nextIndex(index, meta.LastIndex)
	}
}

// sweep deregisters every node of service name whose session no longer exists. The catalog is listed
// before the sessions are asked about, so a berth that registers meanwhile already has its session.
func (a *Agent) sweep(ctx context.Context, name string) error {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
	defer cancel()
	defer context.AfterFunc(a.stopOps, cancel)()
	entries, _, err := a.client.Catalog().Service(name, "", (&api.QueryOptions{}).WithContext(rctx))
	if err != nil {
		return err
	}
	a.mu.Lock()
	self := a.cat.node
	a.mu.Unlock()
	checked := map[string]bool{}
	var errs []error
	for _, e := range entries {
		id := e.NodeMeta[nodeMetaSession]
		if id == "" || e.Node == self || checked[e.Node] {
			continue
		}
		checked[e.Node] = true
		info, _, err := a.client.Session().Info(id, (&api.QueryOptions{}).WithContext(rctx))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info != nil {
			continue
		}
		// A node re-registered with a new session meanwhile writes its new id into the meta: deregister only if
		// the node still carries the dead one, read back just now.
		if n, _, err := a.client.Catalog().Node(e.Node, (&api.QueryOptions{}).WithContext(rctx)); err != nil {
			errs = append(errs, err)
			continue
		} else if n == nil || n.Node == nil || n.Node.Meta[nodeMetaSession] != id {
			continue
		}
		if _, err := a.client.Catalog().Deregister(&api.CatalogDeregistration{Node: e.Node}, (&api.WriteOptions{}).WithContext(rctx)); err != nil {
			errs = append(errs, err)
			continue
		}
		a.log.Info("reaped a dead instance from the consul catalog", "service", name, "node", e.Node,
			"service_id", e.ServiceID, "session", id)
	}
	return errors.Join(errs...)
}

// catalogDeregister removes this berth's node — its services, checks and session with it — in one request.
func (a *Agent) catalogDeregister(ctx context.Context) error {
	services := a.serviceList()
	a.mu.Lock()
	try := false
	for _, s := range services {
		try = try || s.ever || s.unsure && a.consulErr == nil
	}
	node := a.cat.node
	session := a.cat.session
	a.mu.Unlock()
	if !try && session == "" {
		a.log.Debug("not deregistering: never registered", "node", node)
		return nil
	}
	timeout := a.cfg.Consul.RequestTimeout
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := a.client.Catalog().Deregister(&api.CatalogDeregistration{Node: node}, (&api.WriteOptions{}).WithContext(rctx))
	a.observe(ctx, err)
	if err != nil {
		return fmt.Errorf("deregister node %s: %w", node, describe(err, timeout))
	}
	ids := make([]string, 0, len(services))
	a.mu.Lock()
	for _, s := range services {
		s.registered, s.gone = false, true
		ids = append(ids, s.id)
	}
	a.cat.session = ""
	a.mu.Unlock()
	a.log.Info("deregistered from consul catalog", "node", node, "ids", strings.Join(ids, ","))
	return nil
}

// catalogMaintenance re-registers every service with the maintenance check on (critical, the reason as its
// notes) or removes it. Caller has set a.maintenance.
func (a *Agent) catalogMaintenance(ctx context.Context) error {
	for _, s := range a.serviceList() {
		a.mu.Lock()
		s.registered = false
		a.mu.Unlock()
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
	defer cancel()
	err := a.registerAll(rctx)
	if err != nil && !errors.Is(err, errDraining) {
		select {
		case a.kick <- struct{}{}:
		default:
		}
		if unanswered(errors.Unwrap(err)) || unanswered(err) {
			return &UnavailableError{What: "consul", Err: fmt.Errorf("maintenance: %w; berth applies it once Consul answers", err)}
		}
		return fmt.Errorf("consul: maintenance: %w", err)
	}
	return nil
}
