package main

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/berth-dev/berth/control"
	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
)

// backend is the control plane's view of a running berth.
type backend struct{ b *berth }

// statusDoc is GET /v1/status. It never holds a secret value: references and versions only.
type statusDoc struct {
	Version       string                      `json:"version"`
	Pid           int                         `json:"pid"`
	Uptime        string                      `json:"uptime"`
	Processes     []supervisor.UnitStatus     `json:"processes"`
	OrphansReaped uint64                      `json:"orphans_reaped"`
	Checks        []discovery.CheckState      `json:"checks"`
	Registrations []discovery.Registration    `json:"registrations"`
	Secrets       []secrets.RefStatus         `json:"secrets"`
	Peers         map[string][]discovery.Peer `json:"peers,omitempty"`
}

func (b *berth) status() any {
	d := statusDoc{Version: version, Pid: osPid(), Uptime: time.Since(b.started).Round(time.Second).String(),
		Processes: b.sup.Status(), OrphansReaped: b.reaper.Orphans(), Secrets: b.resolver.Status()}
	if b.disc != nil {
		d.Checks = b.disc.Checks()
		d.Registrations = b.disc.Registrations()
		if b.opts.file != nil || b.flags.peersService != "" {
			d.Peers = map[string][]discovery.Peer{}
			if b.flags.peersService != "" {
				d.Peers["peers"] = b.disc.Peers("peers")
			}
			if b.opts.file != nil {
				for _, p := range b.opts.file.Peers {
					d.Peers[p.Name] = b.disc.Peers(p.Name)
				}
			}
		}
	}
	return d
}

func (k backend) Status() any { return k.b.status() }

// Health is `berth health`: healthy when every check passes and every non-optional service job runs — the
// same verdicts discovery and the supervisor give `after` and status. Before secrets and registration are
// ready berth is "starting", which is unhealthy.
func (k backend) Health() (bool, any) {
	b := k.b
	rep := control.HealthReport{Healthy: true}
	select {
	case <-b.prepared:
	default:
		rep.Healthy = false
		rep.Checks = append(rep.Checks, control.CheckResult{Name: "berth", Status: control.CheckCritical, Output: "starting"})
	}
	if b.disc != nil {
		for _, c := range b.disc.Checks() {
			rep.Checks = append(rep.Checks, control.CheckResult{Name: c.Name, Status: c.Status, Output: c.Output})
		}
		if !b.disc.Healthy() {
			rep.Healthy = false
		}
	}
	for _, u := range b.sup.Status() {
		if u.Type != supervisor.Service {
			continue
		}
		st := control.CheckPassing
		if u.State != "running" {
			st = control.CheckCritical
		}
		rep.Checks = append(rep.Checks, control.CheckResult{Name: "job:" + u.Name, Status: st, Output: u.State})
	}
	if !b.sup.JobsHealthy() {
		rep.Healthy = false
	}
	return rep.Healthy, rep
}

// Reload re-reads the config file and restarts only the jobs that changed. A file that does not load is
// rejected and the running configuration stays. Changes outside jobs need a restart of berth (logged).
func (k backend) Reload(ctx context.Context) error {
	b := k.b
	if b.flags.config == "" {
		return &control.RejectedError{Err: fmt.Errorf("berth runs without -config: nothing to reload")}
	}
	nf, err := loadConfigFile(b.flags.config, b.env)
	if err != nil {
		return &control.RejectedError{Err: err}
	}
	select {
	case <-b.prepared:
	default:
		return &control.RejectedError{Err: fmt.Errorf("berth is still starting; reload once it runs")}
	}
	old := b.opts.file
	changed, removed, err := supervisor.PlanReload(b.opts.jobs(old), b.opts.jobs(nf))
	if err != nil {
		return &control.RejectedError{Err: err}
	}
	// A changed job gets the unit environment of a start: the resolved shared variables, its own as last
	// applied (or its new block's), peers. Held against a refresh writing every unit's environment meanwhile.
	b.unitEnvMu.Lock()
	defer b.unitEnvMu.Unlock()
	resolved, blocks := b.resolver.Env(), b.opts.unitEnvBlocks()
	owns := make(map[string][]string, len(changed))
	for i, j := range changed {
		own, err := resolved.ReloadedUnit(j.Name, blocks[j.Name], j.Env)
		if err != nil {
			return &control.RejectedError{Err: fmt.Errorf("job %s: %w", j.Name, err)}
		}
		owns[j.Name] = own
		changed[i].Env = unitEnv(resolved.Shared, own, b.peerEnv())
	}
	if !reflect.DeepEqual(old.Main, nf.Main) {
		b.log.Warn("reload: the main block changed; restart berth to apply it")
	}
	if err := b.sup.UpdateJobs(ctx, changed, removed); err != nil {
		return &control.RejectedError{Err: err}
	}
	b.resolver.SetUnits(owns, removed)
	b.opts.file.Jobs = nf.Jobs
	b.log.Info("reloaded", "changed", len(changed), "removed", len(removed))
	return nil
}

func (k backend) Maintenance(ctx context.Context, on bool, reason string) error {
	if k.b.disc == nil {
		return &control.RejectedError{Err: fmt.Errorf("no Consul services registered by this berth")}
	}
	return k.b.disc.Maintenance(ctx, on, reason)
}

func (k backend) PutEnv(key, value string) error {
	k.b.sup.PutEnv(key, value)
	return nil
}

func (k backend) PutMetric(name string, value float64) error {
	if k.b.metrics == nil {
		return &control.RejectedError{Err: fmt.Errorf("metrics are off (set DD_AGENT_HOST, telemetry.dogstatsd or -prometheus)")}
	}
	if err := k.b.metrics.Put(name, value); err != nil {
		return &control.InvalidError{Err: err}
	}
	return nil
}
