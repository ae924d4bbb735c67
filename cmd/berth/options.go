package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/discovery"
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
	user                *supervisor.Credential
	controlSocket       string
	controlExplicit     bool // the socket was asked for: failing to create it is an error
	redact              bool
	skipEnv             []string
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
	o.skipEnv = append([]string(nil), f.noResolve...)
	if file != nil {
		o.skipEnv = append(o.skipEnv, file.SecretsOptions.SkipEnv...)
	}
	if len(o.command) == 0 && file != nil && file.Main != nil {
		o.command = file.Main.Command
	}
	return o, nil
}

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

// envSep separates a unit name from a variable name in the combined list given to the secrets resolver
// ("main:DATABASE_URL"), so that every unit's env block is resolved in one pass and each distinct secret is
// fetched once. Messages about such a variable then read "main:DATABASE_URL". Only names of known units are
// split off again, so a host variable that happens to contain ':' is left alone.
const envSep = ":"

// combinedEnv is berth's environment plus every unit's own env (with secret() markers), namespaced.
func combinedEnv(base []string, units map[string]map[string]string) []string {
	out := append([]string(nil), base...)
	names := make([]string, 0, len(units))
	for n := range units {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keys := make([]string, 0, len(units[n]))
		for k := range units[n] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, n+envSep+k+"="+units[n][k])
		}
	}
	return out
}

// splitEnv takes a resolved combined list apart: the shared environment, plus each known unit's variables.
func splitEnv(resolved []string, units []string) (shared []string, perUnit map[string][]string) {
	known := make(map[string]bool, len(units))
	for _, u := range units {
		known[u] = true
	}
	perUnit = map[string][]string{}
	for _, kv := range resolved {
		name, _, _ := strings.Cut(kv, "=")
		if unit, _, ok := strings.Cut(name, envSep); ok && known[unit] {
			perUnit[unit] = append(perUnit[unit], kv[len(unit)+len(envSep):])
			continue
		}
		shared = append(shared, kv)
	}
	return shared, perUnit
}

// skipEnvFor extends -no-resolve / skip_env to the namespaced names of every unit's env block.
func skipEnvFor(skip []string, units []string) []string {
	out := append([]string(nil), skip...)
	for _, u := range units {
		for _, name := range skip {
			out = append(out, u+envSep+name)
		}
	}
	return out
}

// mergeEnv overlays add (KEY=VALUE) onto base; later entries win.
func mergeEnv(base []string, add ...[]string) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(base))
	put := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			return
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range base {
		put(kv)
	}
	for _, l := range add {
		for _, kv := range l {
			put(kv)
		}
	}
	return out
}

func mapEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
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

// discoveryConfig builds discovery's config from the file and the zero-config flags. ok=false means
// there is nothing to register or follow.
func (o *options) discoveryConfig(f *runFlags, metadataURI string) (discovery.Config, bool, error) {
	var dc discovery.Config
	dc.MetadataURI = metadataURI
	if o.file != nil { // checked by config.Load with discovery's Validate
		if c := o.file.Consul; c != nil {
			dc.Consul = *c
		}
		dc.Services = slices.Clone(o.file.Services)
		dc.Peers = slices.Clone(o.file.Peers)
	}
	if f.set["consul-mode"] {
		if f.consulMode != discovery.ModeAgent && f.consulMode != discovery.ModeCatalog {
			return dc, false, usageErr("-consul-mode: %q is not one of %q", f.consulMode, []string{discovery.ModeAgent, discovery.ModeCatalog})
		}
		dc.Consul.Mode = f.consulMode
	}
	// zero-config flags: a bad name is a usage error (64); discovery's Validate below applies the same ValidName
	// to config files (78)
	for _, fl := range [...]struct{ name, v string }{{"-service", f.service}, {"-peers-service", f.peersService}} {
		if fl.v != "" {
			if err := discovery.ValidName(fl.v); err != nil {
				return dc, false, usageErr("%s: %v", fl.name, err)
			}
		}
	}
	if f.service != "" || f.port != 0 {
		sc := discovery.ServiceConfig{Name: f.service, Port: f.port}
		add := func(c discovery.CheckConfig) {
			c.Interval = f.checkInterval
			sc.Checks = append(sc.Checks, c)
		}
		if f.checkHTTP != "" {
			add(discovery.CheckConfig{HTTP: f.checkHTTP})
		}
		if f.checkTCP != "" {
			add(discovery.CheckConfig{TCP: f.checkTCP})
		}
		if f.checkExec != "" {
			add(discovery.CheckConfig{Exec: []string{"/bin/sh", "-c", f.checkExec}})
		}
		if sc.Name == "" && metadataURI == "" {
			return dc, false, usageErr("-port needs -service when not running on ECS (on ECS the task family is the name)")
		}
		dc.Services = append(dc.Services, sc)
	} else if f.checkHTTP != "" || f.checkTCP != "" || f.checkExec != "" {
		return dc, false, usageErr("-check-http, -check-tcp and -check-exec need -service or -port")
	}
	if f.peersService != "" {
		dc.Peers = append(dc.Peers, discovery.PeersConfig{Name: "peers", Service: f.peersService, Env: f.peersEnv,
			Min: f.peersMin, Wait: f.peersWait})
	}
	if len(dc.Services) == 0 && len(dc.Peers) == 0 {
		return dc, false, nil
	}
	// Validate now so problems surface before anything starts. The exec runner (the supervisor) is wired in
	// by assemble afterwards, so a stand-in keeps every exec check from failing as "needs an exec runner".
	v := dc
	v.Exec = func(context.Context, []string) (int, []byte, error) { return 0, nil, nil }
	if err := v.Validate(); err != nil {
		return dc, false, &codedError{code: exitConfig, msg: err.Error()}
	}
	return dc, true, nil
}

// unitNames are the main command and the jobs of the config file.
func (o *options) unitNames() []string {
	names := []string{"main"}
	if o.file != nil {
		for _, j := range o.file.Jobs {
			names = append(names, j.Name)
		}
	}
	return names
}
