package main

import (
	"fmt"
	"maps"
	"slices"
	"syscall"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
)

// options is the merged view of flags, BERTH_* variables and the config file (flag > env > file > default).
type options struct {
	file *config.File // nil without -config

	logLevel, logFormat string
	stopSignal          syscall.Signal
	stopTimeout         time.Duration
	killGrace           time.Duration
	drainDelay          time.Duration
	signalRewrite       map[syscall.Signal]syscall.Signal
	signalScope         supervisor.SignalScope // signal_scope, -signal-scope
	pdeathsig           syscall.Signal         // pdeathsig, -pdeathsig; 0 = none
	user                *supervisor.Credential
	controlSocket       string
	controlExplicit     bool // the socket was asked for: failing to create it is an error
	redact              bool
	skipEnv             []string
	exitCodeMap         map[int]int // main command's exit code → berth's (exit_code_map, -exit-code-map)
	pristine            bool        // children get no inherited variable but the references berth resolved
	prometheus          string
	command             []string // main command (command line wins over main.command)
}

// loadConfigFile loads path with the expression functions wired to the secrets package.
func loadConfigFile(path string, env LookupEnv) (*config.File, error) {
	return config.Load(path, config.Funcs{
		Env: env,
		Secret: func(ref string) (string, error) {
			if _, ok, err := secrets.ParseRef(ref); err != nil {
				return "", err
			} else if !ok {
				return "", fmt.Errorf("%q is not a secret reference (secretsmanager:, ssm:, kms: or an ARN)", ref)
			}
			return secrets.Marker(ref), nil
		},
		CheckRef: func(v string) error {
			_, _, err := secrets.ParseRef(v)
			return err
		},
	})
}

// mergeOptions applies flag > env > file > default. f.set says which flags came from the command line or
// BERTH_*; their values win over the file.
func mergeOptions(f *runFlags, command []string, file *config.File) (*options, error) {
	o := &options{file: file, command: command}
	pick := func(name string, flagVal, fileVal string) string {
		if f.set[name] || fileVal == "" {
			return flagVal
		}
		return fileVal
	}
	pickDur := func(name string, flagVal time.Duration, fileVal *time.Duration) time.Duration {
		if f.set[name] || fileVal == nil {
			return flagVal
		}
		return *fileVal
	}
	var fileLevel, fileFormat, fileUser, fileSocket, filePrometheus string
	var fileStop, fileKill, fileDrain *time.Duration
	if file != nil {
		fileLevel, fileFormat, fileUser, fileSocket = file.LogLevel, file.LogFormat, file.User, file.ControlSocket
		fileStop, fileKill, fileDrain = file.StopTimeout, file.KillGrace, file.DrainDelay
		filePrometheus = file.Telemetry.Prometheus
	}
	o.logLevel = pick("log-level", f.logLevel, fileLevel)
	if o.logLevel == "" {
		// Zero config is quiet like tini: nothing of berth's own on a normal run. With a config file berth
		// is an agent, and its lifecycle lines (secrets resolved, registered, main exited) are wanted.
		o.logLevel = "warn"
		if file != nil {
			o.logLevel = "info"
		}
	}
	o.logFormat = pick("log-format", f.logFormat, fileFormat)
	o.stopTimeout = pickDur("stop-timeout", f.stopTimeout, fileStop)
	o.killGrace = pickDur("kill-grace", f.killGrace, fileKill)
	o.drainDelay = pickDur("drain-delay", f.drainDelay, fileDrain)
	o.prometheus = pick("prometheus", f.prometheus, filePrometheus)
	if o.stopTimeout < 0 || o.killGrace < 0 || o.drainDelay < 0 {
		return nil, usageErr("-stop-timeout, -kill-grace and -drain-delay must not be negative")
	}

	var err error
	if o.stopSignal, err = supervisor.ParseSignal(f.stopSignal); err != nil {
		return nil, usageErr("-stop-signal: %v", err)
	}
	if !f.set["stop-signal"] && file != nil && file.StopSignal != 0 {
		o.stopSignal = file.StopSignal
	}

	o.signalRewrite = map[syscall.Signal]syscall.Signal{}
	if file != nil {
		for from, to := range file.SignalRewrite {
			o.signalRewrite[from] = to
		}
	}
	for _, r := range f.signalRewrite {
		from, to, err := supervisor.ParseRewrite(r)
		if err != nil {
			return nil, usageErr("-signal-rewrite: %v", err)
		}
		o.signalRewrite[from] = to
	}

	if err := o.mergeSignalScope(f, file); err != nil {
		return nil, err
	}

	if u := pick("user", f.user, fileUser); u != "" {
		if f.set["user"] || file == nil || file.Credential == nil {
			if o.user, err = supervisor.LookupUser(u); err != nil {
				return nil, usageErr("-user: %v", err)
			}
		} else {
			o.user = file.Credential
		}
	}

	o.controlSocket = pick("control-socket", f.controlSocket, fileSocket)
	o.controlExplicit = f.set["control-socket"] || fileSocket != ""
	if o.controlSocket == "off" {
		o.controlSocket = ""
	}

	o.redact = f.redact
	if !f.set["redact"] && file != nil && file.Redact != nil {
		o.redact = *file.Redact
	}
	o.pristine = f.pristine
	if !f.set["pristine"] && file != nil && file.Pristine != nil {
		o.pristine = *file.Pristine
	}
	if o.exitCodeMap, err = mergeExitCodeMap(f.exitCodeMap.listFlag, file); err != nil {
		return nil, err
	}
	o.skipEnv = append([]string(nil), f.noResolve...)
	if file != nil {
		o.skipEnv = append(o.skipEnv, file.SecretsOptions.SkipEnv...)
	}
	if len(o.command) == 0 && file != nil && file.Main != nil {
		o.command = file.Main.Argv
	}
	return o, nil
}

// mergeSignalScope merges signal_scope and pdeathsig (flag > env > file > default).
func (o *options) mergeSignalScope(f *runFlags, file *config.File) error {
	var err error
	if o.signalScope, err = supervisor.ParseSignalScope(f.signalScope); err != nil {
		return usageErr("-signal-scope: %v", err)
	}
	if !f.set["signal-scope"] && file != nil && file.SignalScope != "" {
		o.signalScope = file.SignalScope
	}
	if f.pdeathsig != "" {
		if o.pdeathsig, err = supervisor.ParseSignal(f.pdeathsig); err == nil {
			err = supervisor.CheckParentDeathSignal(o.pdeathsig)
		}
		if err != nil {
			return usageErr("-pdeathsig: %v", err)
		}
	}
	if !f.set["pdeathsig"] && file != nil && file.ParentDeathSignal != 0 {
		o.pdeathsig = file.ParentDeathSignal
	}
	return nil
}

// mergeExitCodeMap is the file's exit_code_map with each -exit-code-map entry winning for its code, as
// -signal-rewrite does for signal_rewrite.
func mergeExitCodeMap(entries []string, file *config.File) (map[int]int, error) {
	out := map[int]int{}
	if file != nil {
		maps.Copy(out, file.ExitCodeMap)
	}
	given := map[int]int{}
	for _, e := range entries {
		from, to, err := supervisor.ParseExitCodeMapping(e)
		if err != nil {
			return nil, usageErr("-exit-code-map: %v", err)
		}
		if prev, dup := given[from]; dup && prev != to {
			return nil, usageErr("-exit-code-map: %d mapped twice (to %d and to %d)", from, prev, to)
		}
		given[from], out[from] = to, to
	}
	return out, nil
}

// top is what every process inherits where its block sets nothing (supervisor.Spec.Inherit): the merged user,
// stop_signal and stop_timeout.
func (o *options) top() supervisor.Spec {
	return supervisor.Spec{User: o.user, StopSignal: o.stopSignal, StopTimeout: o.stopTimeout}
}

// jobs are file's jobs with the merged top-level settings, each Env its env block as written: what the
// supervisor is built with (Prepare gives every unit its complete environment before anything starts) and
// what a reload compares (supervisor.PlanReload).
func (o *options) jobs(file *config.File) []supervisor.JobSpec {
	if file == nil {
		return nil
	}
	out := make([]supervisor.JobSpec, len(file.Jobs))
	for i, j := range file.Jobs {
		j.Spec = j.Inherit(o.top())
		out[i] = j
	}
	return out
}

// mainSpec is the main command: the main block, if any, with the merged top-level settings and the command
// line's command (which wins over main.command).
func (o *options) mainSpec() supervisor.JobSpec {
	main := supervisor.JobSpec{Spec: supervisor.Spec{Umask: -1}}
	if o.file != nil && o.file.Main != nil {
		main = *o.file.Main
	}
	main.Spec = main.Inherit(o.top())
	main.Name, main.Argv, main.Env = supervisor.MainName, o.command, nil
	return main
}

// secretBlocks are the config's secret blocks; a file with no user of its own goes to the main command's.
func (o *options) secretBlocks() []secrets.Block {
	if o.file == nil {
		return nil
	}
	owner := o.user
	if o.file.Main != nil && o.file.Main.User != nil {
		owner = o.file.Main.User
	}
	out := slices.Clone(o.file.Secrets)
	for i := range out {
		if out[i].UID == -1 && owner != nil {
			out[i].UID, out[i].GID = int(owner.UID), int(owner.GID)
		}
	}
	return out
}
