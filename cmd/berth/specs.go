package main

import (
	"slices"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
)

// The config file's blocks as the components take them, with the merged top-level defaults.

// specFromProcess builds a supervisor spec from a main or job block, with the top-level defaults.
func (o *options) specFromProcess(name string, p *config.Process, argv []string, base []string) supervisor.Spec {
	sp := supervisor.Spec{
		Name:        name,
		Argv:        argv,
		Env:         base,
		User:        o.user,
		Umask:       -1,
		StopSignal:  o.stopSignal,
		StopTimeout: o.stopTimeout,
	}
	if p == nil {
		return sp
	}
	sp.Dir = p.Dir
	if p.Credential != nil {
		sp.User = p.Credential
	}
	if p.Umask != nil {
		sp.Umask = int(*p.Umask)
	}
	sp.Rlimits = p.Rlimits
	if p.StopSignal != 0 {
		sp.StopSignal = p.StopSignal
	}
	if p.StopTimeout != nil {
		sp.StopTimeout = *p.StopTimeout
	}
	return sp
}

// jobSpec converts a job block.
func (o *options) jobSpec(j config.Job) supervisor.JobSpec {
	return supervisor.JobSpec{
		Spec:        o.specFromProcess(j.Name, &j.Process, j.Command, nil),
		Type:        j.Type,
		Every:       j.Every,
		Restart:     j.Restart,
		MaxRestarts: j.MaxRestarts,
		Optional:    j.Optional,
		After:       j.After,
		PreStart:    j.PreStart,
		PreStop:     j.PreStop,
		PostStop:    j.PostStop,
	}
}

// fileJobSpecs are the job blocks as the supervisor takes them, with each env block as written (secret
// references unresolved): what a reload compares (supervisor.Diff).
func (o *options) fileJobSpecs(jobs []config.Job) []supervisor.JobSpec {
	out := make([]supervisor.JobSpec, 0, len(jobs))
	for _, j := range jobs {
		spec := o.jobSpec(j)
		spec.Env = mapEnv(j.Env)
		out = append(out, spec)
	}
	return out
}

// secretBlocks are the config's secret blocks; a file with no user of its own goes to the main command's.
func (o *options) secretBlocks() []secrets.Block {
	if o.file == nil {
		return nil
	}
	owner := o.user
	if o.file.Main != nil && o.file.Main.Credential != nil {
		owner = o.file.Main.Credential
	}
	out := slices.Clone(o.file.Secrets)
	for i := range out {
		if out[i].UID == -1 && owner != nil {
			out[i].UID, out[i].GID = int(owner.UID), int(owner.GID)
		}
	}
	return out
}
