package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
)

// Registration is one service of this berth as status reports it.
type Registration struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Address    string            `json:"address"`
	Port       int               `json:"port"`
	Tags       []string          `json:"tags"`
	Meta       map[string]string `json:"meta"`
	Registered bool              `json:"registered"` // the agent confirmed it and still answers (State is StateRegistered)
	// State is StateRegistered, StatePending, StateUnknown or StateDeregistered.
	State       string `json:"state"`
	Maintenance bool   `json:"maintenance"`
	// Error is the last Consul error behind State (no answer, refused, rejected); "" when registered.
	Error string `json:"error,omitempty"`
}

// Registration states, as status reports them.
const (
	// StateRegistered: the agent confirmed the registration and answers berth's requests.
	StateRegistered = "registered"
	// StatePending: not registered yet, or lost by the agent; berth keeps trying.
	StatePending = "pending"
	// StateUnknown: Consul does not answer, so whether the agent still has it is unknown.
	StateUnknown = "unknown"
	// StateDeregistered: removed at shutdown.
	StateDeregistered = "deregistered"
)

// Agent registers this berth's services in Consul, runs their checks and follows peers.
type Agent struct {
	cfg    Config
	log    hclog.Logger
	client *api.Client

	// regSem serialises (re-)registration with Deregister so a registration can never land after the
	// deregistration (consul-ecs #284).
	regSem chan struct{}
	// kick wakes the registration loop when a TTL update found the registration gone.
	kick chan struct{}
	// stopOps is cancelled by Deregister and aborts in-flight registrations and TTL updates.
	stopOps   context.Context
	cancelOps context.CancelFunc

	prepMu   sync.Mutex // held while preparing (may do network I/O), never together with mu
	prepared bool

	mu          sync.Mutex
	services    []*service
	draining    bool
	maintenance bool
	maintReason string
	peers       []*peerState
	cat         *catalogState // catalog mode (catalog.go); nil in agent mode
	// nodeAddr is the agent's node address, read once after registering a service without an address (bridge
	// network mode): Consul gives that service the node's address, and so does include_self.
	nodeAddr string

	// token is the ACL token of consul { login {} } (login.go), put on every request by the transport.
	token   *atomic.Pointer[string]
	loginMu sync.Mutex // one login at a time
	// Consul's reachability as the last request left it: consulErr is set while requests go unanswered
	// (refused, reset, timed out) and cleared by the first answer; recovered is then closed and replaced, which
	// re-issues the blocking queries that lived through the outage.
	consulErr   error
	consulSince time.Time
	recovered   chan struct{}
}

type service struct {
	id, name, address string
	port              int
	tags              []string
	meta              map[string]string
	dca               time.Duration
	checks            []*check

	// guarded by Agent.mu
	registered bool  // the agent has it, as far as berth knows
	ever       bool  // a registration was confirmed at least once
	unsure     bool  // a registration request was cut off by shutdown: it may have landed
	gone       bool  // deregistered at shutdown
	regErr     error // why the last registration failed
}

// New validates cfg and builds the agent. It does no network I/O: ECS metadata is read and the services are
// resolved on the first Register, Run or ResolvePeers.
func New(cfg Config, log hclog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("discovery config: %w", err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &cfg.Consul
	if c.Timeout == 0 {
		c.Timeout = DefaultConsulTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.BlockingWait == 0 {
		c.BlockingWait = DefaultBlockingWait
	}
	token := new(atomic.Pointer[string])
	cc := cfg.Consul
	if cc.Login != nil {
		wrap := cc.WrapTransport
		cc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			if wrap != nil {
				rt = wrap(rt)
			}
			return tokenTransport{base: rt, token: token}
		}
	}
	client, err := newClient(cc)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	a := &Agent{cfg: cfg, log: log, client: client, regSem: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		recovered: make(chan struct{}), token: token}
	a.stopOps, a.cancelOps = context.WithCancel(context.Background())
	if cfg.Consul.Mode == ModeCatalog {
		a.cat = &catalogState{} // filled in by prepare
	}
	for _, p := range cfg.Peers {
		ps, err := newPeerState(p)
		if err != nil {
			return nil, err
		}
		a.peers = append(a.peers, ps)
	}
	return a, nil
}

// prepare resolves names, addresses, IDs and meta once (ECS metadata needs the network).
func (a *Agent) prepare(ctx context.Context) error {
	a.prepMu.Lock()
	defer a.prepMu.Unlock()
	if a.prepared {
		return nil
	}
	task, err := a.fetchTask(ctx)
	if err != nil {
		needName := false
		for _, s := range a.cfg.Services {
			needName = needName || s.Name == ""
		}
		if needName {
			return &UnavailableError{What: "ECS task metadata", Err: fmt.Errorf("service name defaults to the task family: %w", err)}
		}
		a.log.Warn("ECS task metadata unavailable; using interface address and hostname", "error", err)
	}
	hostname, _ := os.Hostname()
	instance := task.TaskID()
	if instance == "" {
		instance = hostname
	}
	// The instance goes into the default ID, which goes into URL paths: keep it to ValidName's alphabet.
	instance = strings.Map(func(r rune) rune {
		if nameRune(r) {
			return r
		}
		return '-'
	}, instance)
	var services []*service
	for _, sc := range a.cfg.Services {
		s := &service{name: sc.Name, port: sc.Port, tags: slices.Clone(sc.Tags), dca: sc.DeregisterCriticalAfter}
		if s.name == "" {
			s.name = strings.ToLower(task.Family)
		}
		s.id = sc.ID
		if s.id == "" {
			s.id = fmt.Sprintf("%s-%s-%d", s.name, instance, s.port)
		}
		s.address = sc.Address
		if s.address == "" || s.address == AddressAuto {
			s.address = autoAddress(task, hostname)
			if a.cat == nil {
				a.bridgePort(task, s) // an address written in the config wins, with its port as written
			}
		}
		s.meta = map[string]string{}
		if task != nil {
			for k, v := range map[string]string{"ecs_cluster": task.ClusterName(), "ecs_task_arn": task.TaskARN,
				"ecs_family": task.Family, "ecs_revision": task.Revision, "availability_zone": task.AvailabilityZone} {
				if v != "" {
					s.meta[k] = v
				}
			}
		}
		maps.Copy(s.meta, sc.Meta)
		if s.dca == 0 {
			s.dca = DefaultDeregisterCriticalAfter
		}
		s.checks = newChecks(s, sc.Checks)
		services = append(services, s)
	}
	a.mu.Lock()
	a.services = services
	a.mu.Unlock()
	if a.cat != nil && task != nil && task.NetworkMode == ecsmeta.NetworkBridge {
		a.log.Warn("bridge network mode: catalog mode has no Consul agent on the host to stand for the host's address; "+
			"registering the task's Docker bridge address and container ports, reachable from its host only (use awsvpc, or set address and port)",
			"address", autoAddress(task, hostname))
	}
	if a.cat != nil {
		meta := map[string]string{}
		if task != nil {
			meta = map[string]string{"ecs_cluster": task.ClusterName(), "ecs_task_arn": task.TaskARN,
				"ecs_family": task.Family, "ecs_revision": task.Revision, "availability_zone": task.AvailabilityZone}
		}
		a.catalogSetup(instance, autoAddress(task, hostname), meta)
	}
	a.prepared = true
	return nil
}

// bridgePort adapts a service whose address is "auto" to a task in bridge network mode (agent mode): the task's
// own address is Docker's bridge, reachable from its host only, and Docker publishes the container port on a
// host port. Like registrator, berth then registers the host port and no address, so Consul gives the agent's
// node address: the host's, where the agent runs on the host. The checks are untouched: they run inside the
// task and probe the addresses they name. Without a tcp mapping for the port the service keeps the task's
// address and port, with one warning; a port that already is a mapping's host port is kept as written.
func (a *Agent) bridgePort(task *ecsmeta.Task, s *service) {
	if task == nil || task.NetworkMode != ecsmeta.NetworkBridge || s.port == 0 {
		return
	}
	if hp := task.HostPort(s.port); hp != 0 {
		a.log.Info("bridge network mode: registering the host port at the Consul agent's node address",
			"service", s.name, "container_port", s.port, "host_port", hp)
		s.address, s.port = "", hp
		return
	}
	for _, p := range task.Ports {
		if p.HostPort == s.port && p.ContainerPort != 0 && task.HostPort(p.ContainerPort) == s.port {
			a.log.Info("bridge network mode: port is a host port; registering it at the Consul agent's node address",
				"service", s.name, "host_port", s.port, "container_port", p.ContainerPort)
			s.address = ""
			return
		}
	}
	a.log.Warn("bridge network mode: the task metadata maps no tcp host port to the service port; registering the "+
		"task's Docker bridge address, reachable from its host only (publish the port in portMappings, or set address and port)",
		"service", s.name, "address", s.address, "port", s.port)
}

// fetchTask reads ECS task metadata, retrying briefly: the endpoint is local and answers within
// milliseconds once the task runs, but may not be ready in the first instant.
func (a *Agent) fetchTask(ctx context.Context) (*ecsmeta.Task, error) {
	if a.cfg.MetadataURI == "" {
		return nil, nil
	}
	var err error
	b := backoff{min: 200 * time.Millisecond, max: 2 * time.Second}
	for i := 0; i < 4; i++ {
		var task *ecsmeta.Task
		meta := a.cfg.Metadata
		if meta == nil {
			meta = &ecsmeta.Cache{Client: ecsmeta.Client{URI: a.cfg.MetadataURI}}
		}
		if task, err = meta.Fetch(ctx); err == nil {
			return task, nil
		}
		if !sleep(ctx, b.next()) {
			break
		}
	}
	return nil, err
}

// autoAddress is the address "auto": the ECS task's IPv4, else the first non-loopback interface address
// (IPv4 before IPv6, link-local skipped), else the hostname.
func autoAddress(task *ecsmeta.Task, hostname string) string {
	if task != nil && task.IPv4 != "" {
		return task.IPv4
	}
	var v6 string
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, addr := range addrs {
			ipn, ok := addr.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
			if v6 == "" {
				v6 = ipn.IP.String()
			}
		}
	}
	if v6 != "" {
		return v6
	}
	return hostname
}

// Register performs the first registration. With consul.required it retries with back-off until
// consul.timeout and then returns an error with ExitCode 69; otherwise a Consul that does not answer is
// logged and Register returns nil at once (Run keeps retrying).
func (a *Agent) Register(ctx context.Context) error {
	if err := a.prepare(ctx); err != nil {
		return err
	}
	if err := a.registerLogin(ctx); err != nil {
		return err
	}
	if len(a.serviceList()) == 0 {
		return nil
	}
	if !a.cfg.Consul.Required {
		if err := a.registerAll(ctx); err != nil && !errors.Is(err, errDraining) {
			a.log.Warn("consul registration failed; the application starts anyway and berth keeps retrying", "error", err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.Timeout)
	defer cancel()
	b := backoff{min: a.cfg.Consul.RetryMin, max: a.retryCap()}
	for {
		err := a.registerAll(ctx)
		if err == nil || errors.Is(err, errDraining) {
			return nil
		}
		a.log.Warn("consul registration failed; retrying", "error", err)
		if !sleep(ctx, b.next()) {
			return &UnavailableError{What: "consul", Err: fmt.Errorf("required = true, not registered within %s: %w", a.cfg.Consul.Timeout, err)}
		}
	}
}

var errDraining = errors.New("deregistered: shutdown has begun")

// registerAll registers every service the agent does not have, each with its TTL checks in their current
// state, and re-applies maintenance mode.
func (a *Agent) registerAll(parent context.Context) error {
	select {
	case a.regSem <- struct{}{}:
	case <-parent.Done():
		return parent.Err()
	}
	defer func() { <-a.regSem }()
	timeout := a.cfg.Consul.RequestTimeout
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	defer context.AfterFunc(a.stopOps, cancel)()
	if err := a.login(ctx); err != nil {
		return err
	}
	failed := func(s *service, err error) error {
		a.tokenGone(err)
		a.observe(parent, err)
		err = describe(err, timeout)
		a.mu.Lock()
		s.regErr = err
		// Cut off by shutdown on its way, it may have landed; one Consul did not answer within RequestTimeout
		// (an agent answers in milliseconds) is taken as lost — if it landed after all, its TTL check expires
		// and Consul removes it deregister_critical_after later.
		s.unsure = s.unsure || errors.Is(err, context.Canceled)
		a.mu.Unlock()
		return err
	}

	var errs []error
	for _, s := range a.serviceList() {
		a.mu.Lock()
		if a.draining {
			a.mu.Unlock()
			return errDraining
		}
		if s.registered {
			a.mu.Unlock()
			continue
		}
		reg := a.registration(s)
		maint, reason := a.maintenance, a.maintReason
		a.mu.Unlock()

		if a.cat != nil {
			// Catalog mode: the service, its checks, maintenance and the node in one write (catalog.go).
			if err := a.catalogRegister(ctx, s, maint, reason); err != nil {
				errs = append(errs, fmt.Errorf("register service %s in the catalog: %w", s.id, failed(s, err)))
				continue
			}
			a.observe(parent, nil)
			a.mu.Lock()
			s.ever, s.registered, s.regErr = true, true, nil
			a.mu.Unlock()
			a.log.Info("registered in consul catalog", "service", s.name, "id", s.id, "address", s.address, "port", s.port)
			for _, c := range s.checks {
				a.catalogReport(parent, c) // writes only a status that changed meanwhile
			}
			continue
		}
		opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
		if err := a.client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
			errs = append(errs, fmt.Errorf("register service %s: %w", s.id, failed(s, err)))
			continue
		}
		a.observe(parent, nil)
		a.mu.Lock()
		s.ever = true // the agent has it from here on, maintenance or not
		a.mu.Unlock()
		if maint {
			if err := a.client.Agent().EnableServiceMaintenanceOpts(s.id, reason, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
				errs = append(errs, fmt.Errorf("maintenance on %s: %w", s.id, failed(s, err)))
				continue
			}
		}
		a.mu.Lock()
		s.registered, s.regErr = true, nil
		var changed []*check
		for i, c := range s.checks {
			if c.status != reg.Checks[i].Status {
				changed = append(changed, c)
			}
		}
		learn := s.address == "" && a.nodeAddr == ""
		a.mu.Unlock()
		a.log.Info("registered in consul", "service", s.name, "id", s.id, "address", s.address, "port", s.port)
		// A result that came while the registration was on its way skipped its TTL update (the registration
		// was to carry it, and carried the status before): send it now, not an interval later.
		for _, c := range changed {
			a.report(parent, c)
		}
		if learn {
			a.learnNodeAddress(ctx)
		}
	}
	return errors.Join(errs...)
}

// learnNodeAddress reads the agent's node address (/v1/agent/self, Member.Addr): the address Consul gives a
// service registered without one. A failure only leaves include_self without an address until Consul lists the
// instance, so it is logged at debug level and tried again at the next registration.
func (a *Agent) learnNodeAddress(ctx context.Context) {
	var self struct{ Member struct{ Addr string } }
	if _, err := a.client.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx)); err != nil || self.Member.Addr == "" {
		a.log.Debug("consul agent's node address unknown", "error", err)
		return
	}
	a.mu.Lock()
	a.nodeAddr = self.Member.Addr
	a.mu.Unlock()
}

// registration builds the agent registration of s with its checks' current status. Caller holds a.mu.
func (a *Agent) registration(s *service) *api.AgentServiceRegistration {
	reg := &api.AgentServiceRegistration{
		ID: s.id, Name: s.name, Address: s.address, Port: s.port,
		Tags: slices.Clone(s.tags), Meta: maps.Clone(s.meta),
	}
	for _, c := range s.checks {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{
			CheckID: c.id, Name: c.name, TTL: (3 * c.interval).String(), Status: c.status,
			Notes:                          c.notes,
			DeregisterCriticalServiceAfter: s.dca.String(),
		})
	}
	return reg
}

func (a *Agent) serviceList() []*service {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.services
}

// Run runs the checks, reports their results to the Consul TTL checks, and keeps the registration alive: a
// TTL update answered with "unknown check" (the agent lost its state) re-registers at once, and a registration
// that failed is retried with back-off and jitter. Steady-state cost: one TTL update per check per interval.
// Run returns nil when ctx is done.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer a.logout() // Run returns at the end of shutdown, after the application
	var wg sync.WaitGroup
	for _, s := range a.serviceList() {
		for _, c := range s.checks {
			if !c.keepalive {
				a.notify(c)
			}
			wg.Go(func() { a.runCheck(ctx, c) })
		}
	}
	if a.cat != nil && len(a.serviceList()) > 0 {
		wg.Go(func() { a.runCatalog(ctx) })
	}
	a.registrationLoop(ctx)
	wg.Wait()
	return nil
}

func (a *Agent) registrationLoop(ctx context.Context) {
	b := backoff{min: a.cfg.Consul.RetryMin, max: a.retryCap()}
	for {
		if a.needsRegistration() {
			err := a.registerAll(ctx)
			switch {
			case err == nil:
				b.reset()
			case errors.Is(err, errDraining):
			case ctx.Err() != nil:
				return
			default:
				d := b.next()
				a.log.Warn("consul registration failed; retrying", "error", err, "in", d.Round(time.Millisecond))
				if !sleep(ctx, d) {
					return
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		}
	}
}

// retryCap is the largest wait between registration attempts: RetryMax, and at most the shortest check
// interval, so that a registration lands within about one interval of Consul answering (README: "as soon as
// Consul answers"), however long Consul was down.
func (a *Agent) retryCap() time.Duration {
	c := a.cfg.Consul.RetryMax
	for _, s := range a.serviceList() {
		for _, ch := range s.checks {
			c = min(c, ch.interval)
		}
	}
	return max(c, a.cfg.Consul.RetryMin)
}

// observe folds the outcome of one request into Consul's reachability: an answer (any status) ends an
// outage, no answer (refused, reset, timed out) begins or continues one. A request cancelled by berth, or
// cut by a parent context that ended (shutdown, the end of a wait), says nothing about Consul.
func (a *Agent) observe(parent context.Context, err error) {
	if parent != nil && parent.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	a.mu.Lock()
	var wake chan struct{}
	var outage time.Duration
	switch {
	case !unanswered(err) && a.consulErr != nil:
		outage = time.Since(a.consulSince)
		a.consulErr, wake = nil, a.recovered
		a.recovered = make(chan struct{})
	case unanswered(err):
		if a.consulErr == nil {
			a.consulSince = time.Now()
		}
		a.consulErr = err
	}
	a.mu.Unlock()
	if wake != nil {
		a.log.Info("consul answers again", "unreachable_for", outage.Round(time.Millisecond))
		close(wake)
	}
}

// recoveredCh is closed when Consul next answers after an outage.
func (a *Agent) recoveredCh() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recovered
}

func (a *Agent) needsRegistration() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining {
		return false
	}
	for _, s := range a.services {
		if !s.registered {
			return true
		}
	}
	return false
}

// lost marks s as unknown to the agent and wakes the registration loop.
func (a *Agent) lost(s *service) {
	a.mu.Lock()
	was := s.registered
	s.registered = false
	draining := a.draining
	a.mu.Unlock()
	if draining {
		return
	}
	if was {
		a.log.Warn("consul agent lost the registration; re-registering", "id", s.id)
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// resync has the registration loop register s again, quietly (the agent did not lose it; berth does not know
// what it has): the registration carries the current check status and re-applies maintenance mode.
func (a *Agent) resync(s *service) {
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return
	}
	s.registered = false
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Deregister removes every service of this berth from Consul (shutdown step 1). From the moment it is called
// nothing re-registers a service or updates a TTL, even while checks keep finishing (consul-ecs #284).
// Services are deregistered in parallel, each request bounded by RequestTimeout (and ctx), so it never hangs
// on a dead or wedged Consul. A service the agent never confirmed is skipped — unless shutdown cut its
// registration request off while Consul was answering (it may have landed) — so a berth whose Consul hung
// from the start does not spend its drain time deregistering what was never registered. A 404 counts as done
// only when the agent really no longer lists the service.
func (a *Agent) Deregister(ctx context.Context) error {
	a.mu.Lock()
	a.draining = true
	a.mu.Unlock()
	a.cancelOps()
	// Wait for an in-flight registration (now aborted) so ours is the last word.
	select {
	case a.regSem <- struct{}{}:
		defer func() { <-a.regSem }()
	case <-ctx.Done():
		return fmt.Errorf("deregister: %w", ctx.Err())
	}
	if a.cat != nil {
		return a.catalogDeregister(ctx)
	}
	services := a.serviceList()
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		a.mu.Lock()
		try := s.ever || s.unsure && a.consulErr == nil
		a.mu.Unlock()
		if !try {
			a.log.Debug("not deregistering: never registered", "id", s.id)
			continue
		}
		wg.Go(func() { errs[i] = a.deregister(ctx, s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (a *Agent) deregister(ctx context.Context, s *service) error {
	timeout := a.cfg.Consul.RequestTimeout
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := a.client.Agent().ServiceDeregisterOpts(s.id, (&api.QueryOptions{}).WithContext(rctx))
	a.observe(ctx, err)
	if err != nil && isNotFound(err) {
		// "Unknown service": true after an agent restart — or the request addressed some other entry. Only the
		// agent's own list can tell.
		list, lerr := a.client.Agent().ServicesWithFilterOpts("", (&api.QueryOptions{}).WithContext(rctx))
		switch {
		case lerr != nil:
			return fmt.Errorf("deregister %s: consul answered %q and its service list is unavailable: %w", s.id,
				firstLine(err.Error()), describe(lerr, timeout))
		case list[s.id] != nil:
			return fmt.Errorf("deregister %s: consul answered %q, yet the agent still lists the service", s.id, firstLine(err.Error()))
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("deregister %s: %w", s.id, describe(err, timeout))
	}
	a.mu.Lock()
	s.registered, s.gone = false, true
	a.mu.Unlock()
	a.log.Info("deregistered from consul", "id", s.id)
	return nil
}

// Maintenance turns Consul maintenance mode on or off for every service of this berth. The state is kept and
// re-applied when berth re-registers after an agent restart. After Deregister it does nothing.
func (a *Agent) Maintenance(ctx context.Context, on bool, reason string) error {
	if reason == "" {
		reason = "berth ctl maintenance"
	}
	a.mu.Lock()
	if a.draining {
		a.mu.Unlock()
		return nil
	}
	a.maintenance, a.maintReason = on, reason
	a.mu.Unlock()
	if a.cat != nil {
		return a.catalogMaintenance(ctx)
	}
	// One RequestTimeout for the whole call: `berth ctl maintenance` answers within it whatever Consul does.
	timeout := a.cfg.Consul.RequestTimeout
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	onOff := map[bool]string{true: "on", false: "off"}[on]
	var errs []error
	for _, s := range a.serviceList() {
		q := (&api.QueryOptions{}).WithContext(rctx)
		var err error
		if on {
			err = a.client.Agent().EnableServiceMaintenanceOpts(s.id, reason, q)
		} else {
			err = a.client.Agent().DisableServiceMaintenanceOpts(s.id, q)
		}
		a.observe(ctx, err)
		switch {
		case err == nil:
		case isNotFound(err):
			a.lost(s) // re-registration applies the new state
		case unanswered(err):
			a.resync(s) // the registration loop re-registers it, maintenance state included, once Consul answers
			errs = append(errs, &UnavailableError{What: "consul", Err: fmt.Errorf("maintenance %s for %s: %w; berth applies it once Consul answers", onOff, s.id, describe(err, timeout))})
		default:
			errs = append(errs, fmt.Errorf("consul: maintenance %s for %s: %w", onOff, s.id, err))
		}
	}
	return errors.Join(errs...)
}

// Registrations returns the services of this berth (empty before the first Register, Run or ResolvePeers).
func (a *Agent) Registrations() []Registration {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Registration, 0, len(a.services))
	for _, s := range a.services {
		r := Registration{ID: s.id, Name: s.name, Address: s.address, Port: s.port,
			Tags: append([]string{}, s.tags...), Meta: maps.Clone(s.meta), Maintenance: a.maintenance} // "tags": [], never null
		switch {
		case s.gone:
			r.State = StateDeregistered
		case s.registered && a.consulErr != nil:
			r.State, r.Error = StateUnknown, "consul unreachable since "+a.consulSince.Format(time.RFC3339)+": "+short(a.consulErr)
		case s.registered:
			r.State, r.Registered = StateRegistered, true
		default:
			r.State = StatePending
			if s.regErr != nil {
				r.Error = short(s.regErr)
			}
		}
		out = append(out, r)
	}
	return out
}

// checkID is the Consul check ID: the service ID and the check name with anything but [A-Za-z0-9_.-]
// replaced, because the ID goes into the URL path of /v1/agent/check/update/.
func checkID(serviceID, name string) string {
	return serviceID + ":" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, name)
}
