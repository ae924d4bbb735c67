package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/control"
	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/ecsmeta"
	"github.com/berth-dev/berth/onchange"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
	"github.com/berth-dev/berth/telemetry"
)

func cmdRun(args []string, stdio Stdio, env LookupEnv, environ Environ) int {
	f, command, err := parseRunFlags(args, env, stdio.Out)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stdio.Err, exitUsage, "%v", err)
	}
	if f.config == "" && len(command) == 0 && f.service == "" && f.port == 0 && f.peersService == "" && f.prometheus == "" {
		return fail(stdio.Err, exitUsage, "no command to run and no -config (usage: berth [run] [flags] [--] COMMAND [ARG...])")
	}
	b, code, err := assemble(f, command, stdio, env, environ)
	if err != nil {
		return fail(stdio.Err, code, "%v", err)
	}
	return b.run()
}

// trimAfter is how long after the main command started berth drops the start-up's pages of its executable
// from its resident set (README "Performance").
const trimAfter = 5 * time.Second

// berth is one assembled run: every component, ready to be wired into the run.Group.
type berth struct {
	opts     *options
	flags    *runFlags
	log      hclog.Logger
	fields   *telemetry.LogFields // appended to every JSON line: the ECS task's, once known
	env      LookupEnv
	environ  Environ
	stdio    Stdio
	reaper   *supervisor.Reaper
	sup      *supervisor.Supervisor
	streamer *telemetry.Streamer
	metrics  *telemetry.Metrics
	resolver *secrets.Resolver
	disc     *discovery.Agent
	ctl      *control.Server
	prepared chan struct{} // closed once secrets, registration and peers are ready: the app may start
	started  time.Time
	// unitEnvMu makes a reload (its jobs' environments, then the resolver's record of them) and a refresh
	// writing every unit's environment happen one after the other, so neither undoes the other.
	unitEnvMu sync.Mutex
	valuesMu  sync.Mutex
	values    []string // resolved secret values, for redaction only; never logged
}

// assemble builds every component from flags, env and the config file. Nothing is started here except the
// reaper and listeners that must fail early (Prometheus, control socket); on error they are closed again.
func assemble(f *runFlags, command []string, stdio Stdio, env LookupEnv, environ Environ) (b *berth, code int, err error) {
	b = &berth{flags: f, env: env, environ: environ, stdio: stdio, prepared: make(chan struct{}), started: time.Now()}
	var cleanup []func() // what the builders started, undone in reverse if a later one fails
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	var file *configFile
	if f.config != "" {
		cf, err := loadConfigFile(f.config, env)
		if err != nil {
			return nil, exitCodeOf(err, exitConfig), err
		}
		file = cf
	}
	o, err := mergeOptions(f, command, file)
	if err != nil {
		return nil, exitCodeOf(err, exitUsage), err
	}
	b.opts = o
	b.fields = &telemetry.LogFields{}
	if b.log, err = telemetry.NewLogger(telemetry.LogConfig{Level: o.logLevel, Format: o.logFormat, Output: stdio.Err, Fields: b.fields}); err != nil {
		return nil, exitUsage, err
	}
	getenv := func(k string) string { v, _ := env(k); return v }
	metadataURI := getenv(ecsmeta.EnvVar)
	var meta *ecsmeta.Cache // one fetch of the ECS task metadata for discovery, telemetry and secrets
	if metadataURI != "" {
		meta = &ecsmeta.Cache{Client: ecsmeta.Client{URI: metadataURI}}
		if strings.EqualFold(o.logFormat, "json") || (file != nil && file.Logs.Format == telemetry.OutputJSON) {
			go ecsLogFields(meta, b.fields, b.log)
		}
	}
	// In dependency order: output, discovery (checked before anything listens), metrics (discovery and
	// secrets report to them once running), secrets, the supervisor (which wires all of them), the control
	// socket (which serves them).
	for _, build := range []func() (int, error){
		func() (int, error) { return b.buildStreamer(file) },
		func() (int, error) { return b.buildDiscovery(metadataURI, meta) },
		func() (int, error) { return b.buildMetrics(file, getenv, meta, &cleanup) },
		func() (int, error) { return b.buildResolver(file, metadataURI, meta) },
		func() (int, error) { return b.buildSupervisor(file, getenv, meta, &cleanup) },
		func() (int, error) { return b.buildControl(&cleanup) },
	} {
		if code, err := build(); err != nil {
			return nil, code, err
		}
	}
	return b, 0, nil
}

// ecsLogFields adds the ECS task's fields to every JSON line once the task metadata is known. It runs beside
// the start-up and never holds it up: lines written before the answer go without them. The fetch is the
// berth-wide one (discovery, metrics and secrets share it); a failed one is tried again a few times.
func ecsLogFields(meta *ecsmeta.Cache, fields *telemetry.LogFields, log hclog.Logger) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		task, err := meta.Fetch(ctx)
		cancel()
		if err == nil {
			fields.SetECS(task)
			return
		}
		if attempt == 5 {
			log.Warn("ECS task metadata unavailable; JSON log lines go without ECS fields", "error", err)
			return
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// buildStreamer: every process's output, line by line, redacted (logs block).
func (b *berth) buildStreamer(file *configFile) (int, error) {
	var sc telemetry.StreamConfig
	if file != nil {
		sc = file.Logs
	}
	sc.Redact, sc.Stdout, sc.Stderr, sc.Fields = b.opts.redact, b.stdio.Out, b.stdio.Err, b.fields
	var err error
	if b.streamer, err = telemetry.NewStreamer(sc, b.log.Named("output")); err != nil {
		return exitConfig, err
	}
	return 0, nil
}

// buildMetrics: only when asked for (DogStatsD env or config, Prometheus address).
func (b *berth) buildMetrics(file *configFile, getenv func(string) string, meta *ecsmeta.Cache, cleanup *[]func()) (int, error) {
	var mc telemetry.MetricsConfig
	if file != nil {
		mc = file.Telemetry
	}
	dsdAddr, err := telemetry.ResolveDogStatsD(mc.DogStatsD, getenv)
	if err != nil {
		return exitUsage, err // a malformed DD_DOGSTATSD_URL must not silently turn metrics off
	}
	if dsdAddr == "" && b.opts.prometheus == "" {
		return 0, nil
	}
	var task *ecsmeta.Task
	if meta != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if task, err = meta.Fetch(ctx); err != nil {
			b.log.Warn("ECS task metadata unavailable; metrics go without ECS tags", "error", err)
		}
		cancel()
	}
	mc.Prometheus, mc.Env, mc.ECSTask = b.opts.prometheus, getenv, task
	mc.Status = func() any { return b.status() }
	mc.Processes = func() map[string]int { return b.sup.Pids() }
	b.metrics, err = telemetry.NewMetrics(mc, b.log.Named("metrics"))
	if err != nil {
		return exitUsage, err
	}
	*cleanup = append(*cleanup, func() { _ = b.metrics.Close() })
	return 0, nil
}

// buildDiscovery: the Consul agent, when a service, peers or coordination needs one.
func (b *berth) buildDiscovery(metadataURI string, meta *ecsmeta.Cache) (int, error) {
	dc, hasDiscovery, err := b.opts.discoveryConfig(b.flags, metadataURI)
	if err != nil || !hasDiscovery {
		return exitCodeOf(err, exitUsage), err
	}
	dc.Metadata = meta
	dc.Exec = b.execCheck
	dc.OnCheck = func(c discovery.CheckState) {
		if b.metrics != nil {
			b.metrics.CheckStatus(c.Name, c.Service, c.Status)
		}
	}
	if b.disc, err = discovery.New(dc, b.log.Named("consul")); err != nil {
		return exitCodeOf(err, exitConfig), err
	}
	return 0, nil
}

// buildResolver: secrets. The resolver is cheap until it has something to fetch (AWS config loads lazily).
func (b *berth) buildResolver(file *configFile, metadataURI string, meta *ecsmeta.Cache) (int, error) {
	o := b.opts
	var secCfg secrets.Config
	if file != nil {
		secCfg = file.SecretsOptions
	}
	secCfg.SkipEnv, secCfg.Blocks, secCfg.MetadataURI, secCfg.Metadata = o.skipEnv, o.secretBlocks(), metadataURI, meta
	secCfg.NewValues = b.addSecretValues
	if b.metrics != nil {
		secCfg.Observe = func(_ string, d time.Duration, err error) { b.metrics.SecretsFetched(d, err) }
	}
	var err error
	if b.resolver, err = secrets.New(secCfg, b.log); err != nil {
		return exitCodeOf(err, exitConfig), err
	}
	return 0, nil
}

// buildSupervisor: the main command, the jobs and their gates, the reaper, and the shutdown's drain step.
func (b *berth) buildSupervisor(file *configFile, getenv func(string) string, meta *ecsmeta.Cache, cleanup *[]func()) (int, error) {
	o := b.opts
	supCfg := supervisor.Config{
		KillGrace: o.killGrace, DrainDelay: o.drainDelay, SignalRewrite: o.signalRewrite,
		ExitCodeMap: o.exitCodeMap, Output: b.streamer, Prepare: b.prepare,
		SignalScope: o.signalScope, ParentDeathSignal: o.pdeathsig,
	}
	if b.metrics != nil || b.disc != nil {
		supCfg.Events = &procEvents{m: b.metrics, disc: b.disc}
	}
	if b.disc != nil {
		// Shutdown step 1: traffic drains before the application hears anything.
		supCfg.Drain = append(supCfg.Drain, func(ctx context.Context) {
			if err := b.disc.Deregister(ctx); err != nil {
				b.log.Warn("deregistration failed", "error", err)
			}
		})
	}
	if len(o.command) > 0 {
		main := o.mainSpec()
		main.Stdin = true
		main.TTY = hasControllingTTY(b.stdio.In)
		supCfg.Main = &main.Spec
		supCfg.MainAfter = main.After
		supCfg.MainPreStart, supCfg.MainPreStop, supCfg.MainPostStop = main.PreStart, main.PreStop, main.PostStop
	}
	supCfg.Jobs = o.jobs(file)
	if err := b.coordinator(file, &supCfg, meta, getenv); err != nil { // singleton and once gates
		return exitCodeOf(err, exitConfig), err
	}
	supCfg.Resident = b.disc != nil || o.prometheus != ""
	var err error
	if b.reaper, err = supervisor.NewReaper(b.log.Named("reaper")); err != nil {
		return exitSoftware, err
	}
	*cleanup = append(*cleanup, b.reaper.Close)
	if b.sup, err = supervisor.New(supCfg, b.reaper, b.log.Named("supervisor")); err != nil {
		return exitConfig, err
	}
	return 0, nil
}

// buildControl: the control socket. One asked for explicitly is created now, so that a second berth on the
// same socket fails before starting anything. The default one is optional: it is created by its actor, off
// the path to the main command's exec (about 1 ms), and a failure only disables it — a zero-config berth must
// run like tini even where it cannot create /var/run/berth.sock.
func (b *berth) buildControl(cleanup *[]func()) (int, error) {
	o := b.opts
	if o.controlSocket == "" {
		return 0, nil
	}
	srv, err := control.New(control.Config{Socket: o.controlSocket}, backend{b}, b.log)
	if err == nil && o.controlExplicit {
		err = srv.Listen()
	}
	switch {
	case err == nil:
		b.ctl = srv
		*cleanup = append(*cleanup, func() { _ = srv.Close() })
	case o.controlExplicit:
		return exitUnavailable, fmt.Errorf("control socket: %w", err)
	default:
		b.log.Debug("control socket disabled", "socket", o.controlSocket, "error", err)
	}
	return 0, nil
}

// run wires the actors into one run.Group and returns berth's exit code.
func (b *berth) run() int {
	defer b.reaper.Close() // last: every process berth started has been reaped
	var g run.Group
	{
		// supervisor: prepares (secrets, registration, peers), starts the main command and jobs, forwards
		// signals, and owns the shutdown sequence — Consul deregistration first, then the stop signal. It is
		// the actor that normally returns first, after that whole sequence ran.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return b.sup.Run(ctx) }, func(error) { cancel() })
	}
	{
		// trim: once the main command has run for a while, berth's resident set drops the executable's pages
		// the start-up mapped (supervisor.TrimExecutable); what the running berth needs comes back as touched.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			if !b.waitPrepared(ctx) {
				return nil
			}
			t := time.NewTimer(trimAfter)
			defer t.Stop()
			select {
			case <-t.C:
				kib, err := supervisor.TrimExecutable()
				b.log.Trace("trimmed the executable's resident pages", "kib", kib, "error", err)
			case <-ctx.Done():
				return nil
			}
			<-ctx.Done()
			return nil
		}, func(error) { cancel() })
	}
	if b.disc != nil {
		// discovery: runs the checks, reports them to Consul TTL checks, keeps the registration alive. Its
		// Deregister already ran inside the supervisor's shutdown when this is interrupted.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			if !b.waitPrepared(ctx) {
				return nil
			}
			return b.disc.Run(ctx)
		}, func(error) { cancel() })
	}
	if b.hasPeerWatch() {
		// peers: follows each peers block with blocking queries and applies on_change.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			if !b.waitPrepared(ctx) {
				return nil
			}
			return b.disc.WatchPeers(ctx, b.onPeersChange)
		}, func(error) { cancel() })
	}
	if b.hasRefresh() {
		// secrets refresh: re-reads refreshable secret blocks and applies on_change.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			if !b.waitPrepared(ctx) {
				return nil
			}
			return b.resolver.Run(ctx, b.onSecretChange)
		}, func(error) { cancel() })
	}
	if b.metrics != nil {
		// metrics: Prometheus endpoint, uptime, /proc sampling; flushes DogStatsD when it returns.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return b.metrics.Run(ctx) }, func(error) { cancel() })
	}
	if b.ctl != nil {
		// control plane: berth ctl / berth health; the socket is removed when it returns.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error {
			if !b.opts.controlExplicit {
				if err := b.ctl.Listen(); err != nil {
					b.log.Debug("control socket disabled", "socket", b.opts.controlSocket, "error", err)
					<-ctx.Done()
					return nil
				}
			}
			return b.ctl.Run(ctx)
		}, func(error) { cancel() })
	}
	err := g.Run()
	code := b.sup.ExitCode()
	if err != nil {
		if c := exitCodeOf(err, 0); c != 0 && code == 0 {
			code = c
		}
		fail(b.stdio.Err, code, "%v", err)
	}
	return code
}

func (b *berth) waitPrepared(ctx context.Context) bool {
	select {
	case <-b.prepared:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *berth) hasPeerWatch() bool {
	return b.disc != nil && (len(b.flags.peersService) > 0 || (b.opts.file != nil && len(b.opts.file.Peers) > 0))
}

func (b *berth) hasRefresh() bool {
	for _, s := range b.opts.secretBlocks() {
		if s.Refresh > 0 {
			return true
		}
	}
	return false
}

// prepare runs before any process starts: secrets (all units' environments in one resolution), then
// Consul registration (required semantics), then the initial peer lookup. Any failure starts nothing.
func (b *berth) prepare(ctx context.Context) error {
	res, err := b.resolver.Resolve(ctx, secrets.Env{Shared: b.childBase(), Units: b.opts.unitEnvBlocks()})
	if err != nil {
		return err
	}
	b.addSecretValues(res.Values)
	if b.disc != nil {
		if err := b.disc.Register(ctx); err != nil {
			return err
		}
		if _, err := b.disc.ResolvePeers(ctx); err != nil {
			return err
		}
	}
	b.setUnitEnvs(res.Env)
	close(b.prepared)
	return nil
}

// addSecretValues adds resolved plaintexts to the set the output redactor replaces; a refresh adds the new
// values while keeping the old ones (a process may still print a value it read before the rotation).
func (b *berth) addSecretValues(v []string) {
	b.valuesMu.Lock()
	defer b.valuesMu.Unlock()
	b.values = append(b.values, v...)
	b.streamer.SetRedactions(b.values)
}

// onPeersChange applies a peers block's on_change to the main command.
func (b *berth) onPeersChange(name string, action onchange.Action) {
	b.log.Info("peers changed", "peers", name, "action", action.String())
	for k, v := range b.disc.PeerEnv() {
		b.sup.PutEnv(k, v)
	}
	b.apply(action)
}

// onSecretChange takes a refreshed secret into every unit's environment for its next start (so a later
// crash-restart never runs with the old value), then applies the block's on_change.
func (b *berth) onSecretChange(block string, action onchange.Action) {
	b.log.Info("secret changed", "secret", block, "action", action.String())
	b.unitEnvMu.Lock()
	b.setUnitEnvs(b.resolver.Env())
	b.unitEnvMu.Unlock()
	b.apply(action)
}

// setUnitEnvs gives every unit its environment: the resolved shared env, its own variables (resolved at start,
// or as the last reload applied them), peers.
func (b *berth) setUnitEnvs(resolved secrets.Env) {
	peers := b.peerEnv()
	for _, name := range b.sup.Units() {
		_ = b.sup.SetEnv(name, unitEnv(resolved.Shared, resolved.Units[name], peers))
	}
}

func (b *berth) peerEnv() map[string]string {
	if b.disc == nil {
		return nil
	}
	return b.disc.PeerEnv()
}

// apply performs an on_change action on the main command (or, without one, on every job).
func (b *berth) apply(action onchange.Action) {
	targets := []string{supervisor.MainName}
	if len(b.opts.command) == 0 {
		targets = b.sup.Units()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, t := range targets {
		var err error
		switch {
		case action.Restart:
			err = b.sup.Restart(ctx, t)
		case action.Signal != 0:
			err = b.sup.SignalJob(ctx, t, action.Signal)
		}
		switch {
		case errors.Is(err, supervisor.ErrStopping):
			b.log.Debug("on_change skipped: berth is stopping", "job", t, "action", action.String())
		case err != nil:
			b.log.Warn("on_change failed", "job", t, "action", action.String(), "error", err)
		}
	}
}

// execCheck runs an exec check through the supervisor (the only wait4 owner).
func (b *berth) execCheck(ctx context.Context, argv []string) (int, []byte, error) {
	spec := supervisor.Spec{Name: "check", Argv: argv, Env: b.environ(), Umask: -1}
	return b.sup.Exec(ctx, spec, &bytes.Buffer{})
}

type codedError struct {
	code int
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) ExitCode() int { return e.code }

func usageErr(format string, a ...any) error {
	return &codedError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

// procEvents hands the supervisor's process events to the metrics, and a restart of the main command to
// discovery (its checks run at once and retry quickly until they pass again).
type procEvents struct {
	m          *telemetry.Metrics // nil without metrics
	disc       *discovery.Agent   // nil without discovery
	mainStarts atomic.Int64
}

func (e *procEvents) ProcessStarted(job string, _ int) {
	if e.m != nil {
		e.m.ProcessStarted(job)
	}
	if e.disc != nil && job == supervisor.MainName && e.mainStarts.Add(1) > 1 {
		e.disc.Restarted()
	}
}

func (e *procEvents) ProcessExited(job string, x supervisor.Exit, restarting bool) {
	if e.m != nil {
		e.m.ProcessExited(job, x.Code, restarting)
	}
}

type configFile = config.File
