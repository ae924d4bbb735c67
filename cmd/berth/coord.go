package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/ecsmeta"
	"github.com/berth-dev/berth/supervisor"
	"github.com/hashicorp/go-hclog"
)

// Cluster coordination (README "Cluster coordination"): discovery's Consul locks behind the supervisor's
// Gate, so that the supervisor knows nothing of Consul.

// singletonGate adapts a discovery.Singleton to supervisor.Gate.
type singletonGate struct{ l *discovery.Singleton }

func (g singletonGate) Acquire(ctx context.Context) (supervisor.Grant, error) {
	lost, err := g.l.Acquire(ctx)
	return supervisor.Grant{Lost: lost}, err
}
func (g singletonGate) Release(code int) { g.l.Release(code) }

// onceGate adapts a discovery.Once to supervisor.Gate: a success recorded elsewhere skips the job (it counts
// as succeeded for `after`).
type onceGate struct{ o *discovery.Once }

func (g onceGate) Acquire(ctx context.Context) (supervisor.Grant, error) {
	run, err := g.o.Begin(ctx)
	return supervisor.Grant{Skip: err == nil && !run}, err
}
func (g onceGate) Release(code int) { g.o.Finish(code) }

// needsCoordination reports whether the file has a singleton or once anywhere.
func needsCoordination(f *config.File) bool {
	if f == nil {
		return false
	}
	if f.Main != nil && f.Main.GateConfig != nil {
		return true
	}
	for _, j := range f.Jobs {
		if j.GateConfig != nil {
			return true
		}
	}
	return false
}

// coordinated names the first singleton or once setting of the file, and where it is, for messages.
func coordinated(f *config.File) string {
	for _, j := range f.Jobs {
		at := f.Positions[fmt.Sprintf("job %q", j.Name)]
		switch j.GateConfig.(type) {
		case *discovery.OnceConfig:
			return fmt.Sprintf("once in job %q (%s)", j.Name, at)
		case *discovery.LockConfig:
			return fmt.Sprintf("singleton in job %q (%s)", j.Name, at)
		}
	}
	if f.Main != nil {
		return fmt.Sprintf("singleton in main (%s)", f.Positions[supervisor.MainName])
	}
	return "singleton"
}

// coordinator builds the gates of the file's singleton and once settings onto cfg. Without a consul block or
// CONSUL_HTTP_ADDR it is a config error: berth does not guess where the lock lives.
func (b *berth) coordinator(file *config.File, cfg *supervisor.Config, meta *ecsmeta.Cache, getenv func(string) string) error {
	if !needsCoordination(file) {
		return nil
	}
	if file.Consul == nil && getenv("CONSUL_HTTP_ADDR") == "" {
		return &codedError{code: exitConfig, msg: coordinated(file) + " needs Consul: add a consul block or set CONSUL_HTTP_ADDR"}
	}
	var cc discovery.ConsulConfig
	if file.Consul != nil {
		cc = *file.Consul
	}
	co, err := discovery.NewCoordinator(cc, b.log.Named("coordination"))
	if err != nil {
		return &codedError{code: exitConfig, msg: "consul: " + err.Error()}
	}
	scope := coordinationScope(file, meta, b.log)
	lockGate := func(name string, lc *discovery.LockConfig, stopTimeout time.Duration) supervisor.Gate {
		var onHeld func(bool)
		if b.metrics != nil {
			onHeld = func(held bool) { b.metrics.LockChanged(name, held) }
		}
		l := co.Singleton(name, scope, *lc, stopTimeout, onHeld)
		b.log.Debug("singleton", "job", name, "key", l.Key())
		return singletonGate{l}
	}
	if cfg.Main != nil && file.Main != nil {
		if lc, ok := file.Main.GateConfig.(*discovery.LockConfig); ok {
			cfg.MainGate = lockGate(supervisor.MainName, lc, cfg.Main.StopTimeout)
		}
	}
	for i := range cfg.Jobs {
		j := &cfg.Jobs[i]
		switch gc := j.GateConfig.(type) {
		case *discovery.LockConfig:
			j.Gate = lockGate(j.Name, gc, j.StopTimeout)
		case *discovery.OnceConfig:
			j.Gate = onceGate{co.Once(j.Name, *gc)}
		}
	}
	return nil
}

// coordinationScope is what default singleton keys are scoped by: the first service's name, else the ECS
// task family (lower-cased, as the service name defaults to), else nothing.
func coordinationScope(file *config.File, meta *ecsmeta.Cache, log hclog.Logger) string {
	for _, s := range file.Services {
		if s.Name != "" {
			return s.Name
		}
	}
	if meta == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	task, err := meta.Fetch(ctx)
	if err != nil {
		log.Warn("ECS task metadata unavailable; singleton keys go without the family", "error", err)
		return ""
	}
	return strings.ToLower(task.Family)
}
