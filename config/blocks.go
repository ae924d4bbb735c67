package config

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
	"github.com/berth-dev/berth/telemetry"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

func attrs(names ...string) []hcl.AttributeSchema {
	out := make([]hcl.AttributeSchema, len(names))
	for i, n := range names {
		out[i] = hcl.AttributeSchema{Name: n}
	}
	return out
}

// required marks the named attributes of a schema as required.
func required(as []hcl.AttributeSchema, names ...string) []hcl.AttributeSchema {
	for i := range as {
		for _, n := range names {
			if as[i].Name == n {
				as[i].Required = true
			}
		}
	}
	return as
}

// Schemas and key lists are returned by functions rather than kept in package variables, so that nothing in
// the package is mutable.

func processAttrs() []string {
	return []string{"command", "env", "dir", "user", "umask", "rlimits", "stop_signal", "stop_timeout", "after",
		"singleton", "lock_key", "session_ttl", "lock_delay"}
}

func jobAttrs() []string {
	return append(processAttrs(), "type", "every", "restart", "max_restarts", "optional", "once", "wait")
}

func secretSources() []string { return []string{"kms_file", "secretsmanager", "ssm", "ssm_path", "s3"} }

func topSchema() *hcl.BodySchema {
	return &hcl.BodySchema{
		Attributes: attrs("log_level", "log_format", "stop_signal", "stop_timeout", "kill_grace", "drain_delay",
			"signal_rewrite", "user", "control_socket", "redact", "exit_code_map", "pristine",
			"signal_scope", "pdeathsig"),
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "main"},
			{Type: "job", LabelNames: []string{"name"}},
			{Type: "secret", LabelNames: []string{"name"}},
			{Type: "secrets"},
			{Type: "service", LabelNames: []string{"name"}},
			{Type: "peers", LabelNames: []string{"name"}},
			{Type: "consul"},
			{Type: "telemetry"},
			{Type: "logs"},
		},
	}
}

func hookBlocks() []hcl.BlockHeaderSchema {
	return []hcl.BlockHeaderSchema{{Type: "pre_start"}, {Type: "pre_stop"}, {Type: "post_stop"}}
}

// validName reports whether a block label is usable as a name in logs, metric tags and `after`.
func validName(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return s != ""
}

// file decodes the top-level body.
func (d *decoder) file(body hcl.Body) *File {
	c := d.content(body, topSchema())
	a := c.Attributes
	f := &File{}
	f.LogLevel = d.oneOf(a, "log_level", "", "trace", "debug", "info", "warn", "error")
	f.LogFormat = d.oneOf(a, "log_format", "", "text", "json")
	f.StopSignal = d.signal(a, "stop_signal")
	f.StopTimeout = d.durationPtr(a, "stop_timeout")
	f.KillGrace = d.durationPtr(a, "kill_grace")
	f.DrainDelay = d.durationPtr(a, "drain_delay")
	f.SignalRewrite = d.signalRewrite(a)
	f.ExitCodeMap = d.exitCodeMap(a)
	f.SignalScope = supervisor.SignalScope(d.oneOf(a, "signal_scope", "", string(supervisor.SignalGroup), string(supervisor.SignalChild)))
	f.ParentDeathSignal = d.pdeathsig(a)
	f.User, f.Credential = d.user(a, "user")
	f.ControlSocket = d.nonEmpty(a, "control_socket")
	if b, ok := d.boolean(a, "redact"); ok {
		f.Redact = &b
	}
	if b, ok := d.boolean(a, "pristine"); ok {
		f.Pristine = &b
	}
	f.SecretsOptions = secrets.Config{}.WithDefaults()
	f.Logs = telemetry.StreamConfig{}.WithDefaults()

	first := map[string]*hcl.Block{}  // singleton blocks
	labels := map[string]*hcl.Block{} // "job\x00name"
	count := map[string]int{}         // labelled blocks of each type
	for _, b := range c.Blocks {
		if len(b.Labels) > 0 {
			if count[b.Type]++; count[b.Type] > MaxBlocks {
				if count[b.Type] == MaxBlocks+1 {
					d.errf(b.DefRange, "more than %d %s blocks; a config file holds at most %d", MaxBlocks, b.Type, MaxBlocks)
				}
				continue
			}
		}
		if len(b.Labels) == 0 {
			if prev := first[b.Type]; prev != nil {
				d.errf(b.DefRange, "duplicate %s block (first at %s)", b.Type, d.rangeAt(prev.DefRange))
				continue
			}
			first[b.Type] = b
		} else {
			name := b.Labels[0]
			if !validName(name) {
				d.errf(b.LabelRanges[0], "%s name %q: use letters, digits, '_', '.' and '-'", b.Type, name)
			}
			key := b.Type + "\x00" + name
			if prev := labels[key]; prev != nil {
				d.errf(b.LabelRanges[0], "duplicate %s %q (first at %s)", b.Type, name, d.rangeAt(prev.DefRange))
				continue
			}
			labels[key] = b
		}
		switch b.Type {
		case "main":
			f.Main = d.main(b)
		case "job":
			f.Jobs = append(f.Jobs, d.job(b))
		case "secret":
			f.Secrets = append(f.Secrets, d.secret(b))
		case "secrets":
			f.SecretsOptions = d.secretsOptions(b)
		case "service":
			f.Services = append(f.Services, d.service(b))
		case "peers":
			f.Peers = append(f.Peers, d.peers(b))
		case "consul":
			f.Consul = d.consul(b)
		case "telemetry":
			f.Telemetry = d.telemetry(b)
		case "logs":
			f.Logs = d.logs(b)
		}
	}
	d.checkRefs(f)
	var mainAfter []string
	if f.Main != nil {
		mainAfter = f.Main.After
	}
	d.check(supervisor.ValidateGraph(f.Jobs, mainAfter))
	d.checkDiscovery(f)
	f.Positions = d.positions
	return f
}

// pdeathsig reads pdeathsig = "SIGTERM", checked as -pdeathsig is.
func (d *decoder) pdeathsig(a hcl.Attributes) syscall.Signal {
	sig := d.signal(a, "pdeathsig")
	if sig == 0 {
		return 0
	}
	if err := supervisor.CheckParentDeathSignal(sig); err != nil {
		d.errf(a["pdeathsig"].Expr.Range(), "pdeathsig: %s", err)
		return 0
	}
	return sig
}

func (d *decoder) signalRewrite(a hcl.Attributes) map[syscall.Signal]syscall.Signal {
	attr := a["signal_rewrite"]
	if attr == nil {
		return nil
	}
	var out map[syscall.Signal]syscall.Signal
	for _, e := range d.entries("signal_rewrite", attr.Expr) {
		from, err := supervisor.ParseSignal(e.key)
		if err != nil {
			d.errf(e.keyRange, "signal_rewrite: %s", err)
			continue
		}
		if e.value.Type() != cty.String {
			d.errf(e.valRange, "signal_rewrite: %s must map to a signal name such as \"QUIT\"", e.key)
			continue
		}
		to, err := supervisor.ParseSignal(e.value.AsString())
		if err != nil {
			d.errf(e.valRange, "signal_rewrite: %s", err)
			continue
		}
		if err := supervisor.CheckRewrite(from, to); err != nil {
			d.errf(e.keyRange, "signal_rewrite: %s", err)
			continue
		}
		if out == nil {
			out = map[syscall.Signal]syscall.Signal{}
		}
		if _, dup := out[from]; dup {
			d.errf(e.keyRange, "signal_rewrite: %s rewritten twice", e.key)
			continue
		}
		out[from] = to
	}
	return out
}

// exitCodeMap reads exit_code_map = { 143 = 0 }: the main command's exit code → berth's, both 0-255.
func (d *decoder) exitCodeMap(a hcl.Attributes) map[int]int {
	attr := a["exit_code_map"]
	if attr == nil {
		return nil
	}
	var out map[int]int
	for _, e := range d.entries("exit_code_map", attr.Expr) {
		from, err := strconv.Atoi(e.key)
		if err == nil {
			err = supervisor.CheckExitCode(from)
		}
		if err != nil {
			d.errf(e.keyRange, "exit_code_map: %q is not an exit code 0-255", e.key)
			continue
		}
		to, ok := exitCodeValue(e.value)
		if !ok {
			d.errf(e.valRange, "exit_code_map: %d must map to an exit code 0-255, such as 0", from)
			continue
		}
		if out == nil {
			out = map[int]int{}
		}
		if _, dup := out[from]; dup { // "143" and "0143" are two keys to HCL, one code to berth
			d.errf(e.keyRange, "exit_code_map: %d mapped twice", from)
			continue
		}
		out[from] = to
	}
	return out
}

// exitCodeValue is a whole number 0-255, given as a number or a string of digits.
func exitCodeValue(v cty.Value) (int, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || !n.IsKnown() || n.IsNull() {
		return 0, false
	}
	bf := n.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	i, acc := bf.Int64()
	if acc != big.Exact || supervisor.CheckExitCode(int(i)) != nil || i != int64(int(i)) {
		return 0, false
	}
	return int(i), true
}

// process decodes what the main block and job blocks have in common into the supervisor's JobSpec: the
// Spec (Env the env block as written, sorted KEY=VALUE; User, StopSignal and StopTimeout zero when unset, so
// that the top-level settings apply: Spec.Inherit), After, the hooks, and singleton as GateConfig. at gets
// the positions of the after entries.
func (d *decoder) process(name string, c *hcl.BodyContent, at map[string]keyValue) supervisor.JobSpec {
	a := c.Attributes
	p := supervisor.JobSpec{Spec: supervisor.Spec{Name: name, Umask: -1}}
	p.Argv = d.command(a, "command")
	p.Env = envList(d.envMap(a))
	p.Dir = d.nonEmpty(a, "dir")
	_, p.User = d.user(a, "user")
	if m, ok := d.octal(a, "umask"); ok {
		p.Umask = int(m)
	}
	p.Rlimits = d.rlimits(a, "rlimits")
	p.StopSignal = d.signal(a, "stop_signal")
	if t, ok := d.duration(a, "stop_timeout"); ok {
		if t == 0 { // "0s" is the supervisor's default, not "unset" (which would take the top-level one)
			t = supervisor.DefaultStopTimeout
		}
		p.StopTimeout = t
	}
	p.After = d.after(a, at)
	if lc := d.singleton(a); lc != nil {
		p.GateConfig = lc
	}
	seen := map[string]*hcl.Block{}
	for _, hb := range c.Blocks {
		if prev := seen[hb.Type]; prev != nil {
			d.errf(hb.DefRange, "duplicate %s hook (first at %s)", hb.Type, d.rangeAt(prev.DefRange))
			continue
		}
		seen[hb.Type] = hb
		h := d.hook(hb)
		switch hb.Type {
		case "pre_start":
			p.PreStart = h
		case "pre_stop":
			p.PreStop = h
		case "post_stop":
			p.PostStop = h
		}
	}
	return p
}

// envList is an env block as KEY=VALUE, sorted; nil when empty.
func envList(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// envMap reads env of a process: keys must be usable as environment variable names. Values are queued for
// Funcs.CheckRef, which runs once secrets.skip_env is known.
func (d *decoder) envMap(a hcl.Attributes) map[string]string {
	attr := a["env"]
	if attr == nil {
		return nil
	}
	var m map[string]string
	for _, e := range d.entries("env", attr.Expr) {
		s, err := convert.Convert(e.value, cty.String)
		if err != nil {
			d.errf(e.valRange, "env: value of %q must be a string", e.key)
			continue
		}
		if e.key == "" || strings.ContainsAny(e.key, "=\x00") {
			d.errf(e.keyRange, "env: %q is not a valid variable name", e.key)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[e.key] = s.AsString()
		d.envRefs = append(d.envRefs, envRef{name: e.key, value: s.AsString(), rng: e.valRange})
	}
	return m
}

func (d *decoder) hook(b *hcl.Block) *supervisor.Hook {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: required(attrs("command", "timeout"), "command")})
	h := &supervisor.Hook{Argv: d.command(c.Attributes, "command"), Timeout: supervisor.DefaultHookTimeout}
	if t, ok := d.positive(c.Attributes, "timeout"); ok {
		h.Timeout = t
	}
	return h
}

// main decodes the main block: a JobSpec of which Spec, After, the hooks and GateConfig are set (the main
// command is not restarted: Type and Restart stay unset). Argv is empty when the block sets no command.
func (d *decoder) main(b *hcl.Block) *supervisor.JobSpec {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs(processAttrs()...), Blocks: hookBlocks()})
	p := d.process(MainName, c, d.block(MainName, b, c.Attributes))
	if a := c.Attributes["session_ttl"]; a != nil && p.GateConfig == nil {
		d.errf(a.NameRange, "session_ttl: only with singleton = true")
	}
	return &p
}

// job decodes a job block. What a job may be is supervisor.JobSpec's WithDefaults and Validate to say; the
// decoder checks types and records where each key is.
func (d *decoder) job(b *hcl.Block) supervisor.JobSpec {
	schema := &hcl.BodySchema{
		Attributes: required(attrs(jobAttrs()...), "command"),
		Blocks:     hookBlocks(),
	}
	before := len(d.diags)
	c := d.content(b.Body, schema)
	a := c.Attributes
	name := b.Labels[0]
	at := d.block(fmt.Sprintf("job %q", name), b, a)
	at["name"] = keyValue{b.LabelRanges[0], b.LabelRanges[0]}
	j := d.process(name, c, at)
	if every, ok := d.positive(a, "every"); ok {
		j.Every = every
	}
	j.Type, _ = d.str(a, "type")
	j.Restart, _ = d.str(a, "restart")
	if n, ok := d.integer(a, "max_restarts", 0, 1<<31-1); ok {
		j.MaxRestarts = n
	}
	j.Optional, _ = d.boolean(a, "optional")
	j = j.WithDefaults()
	if oc := d.once(a, j); oc != nil {
		j.GateConfig = oc
	}
	var named []string // a bad name was reported at the label (file)
	if !validName(name) {
		named = append(named, "name")
	}
	d.checkDecoded(j.Validate(), before, named...) // a key that did not decode is reported once
	return j
}

// singleton decodes singleton, lock_key, session_ttl and lock_delay (README "Cluster coordination").
func (d *decoder) singleton(a hcl.Attributes) *discovery.LockConfig {
	on, _ := d.boolean(a, "singleton")
	if !on {
		for _, k := range []string{"lock_key", "lock_delay"} {
			if a[k] != nil {
				d.errf(a[k].NameRange, "%s: only with singleton = true", k)
			}
		}
		return nil
	}
	lc := &discovery.LockConfig{Key: d.nonEmpty(a, "lock_key")}
	lc.SessionTTL = d.sessionTTL(a)
	if t, ok := d.positive(a, "lock_delay"); ok {
		if t > discovery.MaxLockDelay {
			d.errf(a["lock_delay"].Expr.Range(), "lock_delay: at most %s (Consul's limit)", discovery.MaxLockDelay)
		}
		lc.LockDelay = t
	}
	return lc
}

func (d *decoder) sessionTTL(a hcl.Attributes) time.Duration {
	t, ok := d.positive(a, "session_ttl")
	if ok && (t < discovery.MinSessionTTL || t > discovery.MaxSessionTTL) {
		d.errf(a["session_ttl"].Expr.Range(), "session_ttl: must be between %s and %s (Consul's limits)",
			discovery.MinSessionTTL, discovery.MaxSessionTTL)
	}
	return t
}

// once decodes once and wait of a job; singleton and once exclude each other, and once needs a oneshot.
func (d *decoder) once(a hcl.Attributes, j supervisor.JobSpec) *discovery.OnceConfig {
	if a["once"] == nil {
		if a["wait"] != nil {
			d.errf(a["wait"].NameRange, "wait: only with once")
		}
		if a["session_ttl"] != nil && j.GateConfig == nil {
			d.errf(a["session_ttl"].NameRange, "session_ttl: only with singleton = true or once")
		}
		return nil
	}
	key := d.nonEmpty(a, "once")
	switch {
	case j.GateConfig != nil:
		d.errf(a["once"].NameRange, "once: a job cannot be both singleton and once")
		return nil
	case j.Type != supervisor.Oneshot && (j.Type == supervisor.Service || j.Every == 0):
		// a type that is none (Validate reports it) counts as the default: oneshot when periodic
		d.errf(a["once"].NameRange, "once: only a oneshot job can run once per key (type = \"oneshot\")")
		return nil
	case j.Every > 0:
		d.errf(a["once"].NameRange, "once: a periodic job cannot run once per key")
		return nil
	}
	oc := &discovery.OnceConfig{Key: key, SessionTTL: d.sessionTTL(a)}
	if t, ok := d.positive(a, "wait"); ok {
		oc.Wait = t
	}
	return oc
}

// secretsOptions decodes the top-level secrets block into the resolver's own Config (its timeouts and pool;
// the secret blocks go in separately).
func (d *decoder) secretsOptions(b *hcl.Block) secrets.Config {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("timeout", "jitter", "concurrency", "skip_env")})
	a := c.Attributes
	var o secrets.Config
	o.Timeout, _ = d.positive(a, "timeout")
	o.Jitter, _ = d.duration(a, "jitter")
	o.Concurrency, _ = d.integer(a, "concurrency", 1, secrets.MaxConcurrency)
	o.SkipEnv = d.strings(a, "skip_env")
	return o.WithDefaults()
}

// secret decodes a secret block. What a secret block may hold is secrets.Block.Validate's to say; the
// decoder checks types and records where each key is.
func (d *decoder) secret(b *hcl.Block) secrets.Block {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs(append(secretSources(),
		"encryption_context", "version_stage", "version_id", "format", "env", "env_prefix", "file", "mode", "user",
		"refresh", "on_change")...)})
	a := c.Attributes
	before := len(d.diags)
	s := secrets.Block{Name: b.Labels[0], UID: -1, GID: -1}
	at := d.block(fmt.Sprintf("secret %q", s.Name), b, a)
	s.KMSFile = d.nonEmpty(a, "kms_file")
	s.SecretsManager = d.nonEmpty(a, "secretsmanager")
	s.SSM = d.nonEmpty(a, "ssm")
	s.SSMPath = d.nonEmpty(a, "ssm_path")
	s.S3 = d.nonEmpty(a, "s3")
	s.Format = d.nonEmpty(a, "format")
	s.EncryptionContext = d.strMap(a, "encryption_context")
	s.VersionStage = d.nonEmpty(a, "version_stage")
	s.VersionID = d.nonEmpty(a, "version_id")
	if attr := a["env"]; attr != nil {
		v, diags := attr.Expr.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		switch {
		case diags.HasErrors() || v.IsNull():
		case v.Type() == cty.String:
			if s.Env = v.AsString(); s.Env == "" {
				d.errf(attr.Expr.Range(), "env: \"\" is not a valid variable name")
			}
		default:
			for _, e := range d.entries("env", attr.Expr) {
				v, err := convert.Convert(e.value, cty.String)
				if err != nil {
					d.errf(e.valRange, "env: value of %q must be a string", e.key)
					continue
				}
				if s.EnvMap == nil {
					s.EnvMap = map[string]string{}
				}
				s.EnvMap[e.key] = v.AsString()
				at["env."+e.key] = keyValue{e.keyRange, e.valRange}
			}
		}
	}
	s.EnvPrefix = d.nonEmpty(a, "env_prefix")
	s.File = d.nonEmpty(a, "file")
	if m, ok := d.octal(a, "mode"); ok {
		s.Mode = m
	}
	var owner *supervisor.Credential
	if _, owner = d.user(a, "user"); owner != nil {
		s.UID, s.GID = int(owner.UID), int(owner.GID)
	}
	if a["user"] != nil && a["file"] == nil {
		d.errf(a["user"].NameRange, "user goes only with file")
	}
	if t, ok := d.positive(a, "refresh"); ok {
		s.Refresh = t
	}
	s.OnChange = d.onChange(a, "on_change")
	s = s.WithDefaults()
	if !d.diags[before:].HasErrors() { // a key that did not decode is reported once
		d.check(s.Validate())
	}
	return s
}

func (d *decoder) service(b *hcl.Block) discovery.ServiceConfig {
	c := d.content(b.Body, &hcl.BodySchema{
		Attributes: attrs("id", "port", "address", "tags", "meta", "deregister_critical_after"),
		Blocks:     []hcl.BlockHeaderSchema{{Type: "check"}},
	})
	a := c.Attributes
	defer d.discoveryDecoded(len(d.diags))
	s := discovery.ServiceConfig{Name: b.Labels[0]}
	at := d.block(fmt.Sprintf("service %q", s.Name), b, a)
	s.ID = d.nonEmpty(a, "id")
	s.Port, _ = d.integer(a, "port", 1, 65535)
	if addr, ok := d.str(a, "address"); ok {
		if addr == "" {
			d.errf(a["address"].Expr.Range(), "address must not be empty (\"auto\" is the default)")
		}
		s.Address = addr
	}
	s.Tags = d.strings(a, "tags")
	s.Meta = d.strMap(a, "meta")
	if t, ok := d.positive(a, "deregister_critical_after"); ok {
		s.DeregisterCriticalAfter = t
	}
	for i, cb := range c.Blocks {
		s.Checks = append(s.Checks, d.healthCheck(cb, fmt.Sprintf("check.%d", i), at))
	}
	return s.WithDefaults()
}

// healthCheck decodes a check block of a service; at gets the positions of its keys under prefix.
func (d *decoder) healthCheck(b *hcl.Block, prefix string, at map[string]keyValue) discovery.CheckConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("name", "http", "tcp", "exec", "interval", "timeout",
		"initial_status", "success_before_passing", "failures_before_critical")})
	a := c.Attributes
	at[prefix] = keyValue{b.DefRange, b.DefRange}
	for name, attr := range a {
		at[prefix+"."+name] = keyValue{attr.NameRange, attr.Expr.Range()}
	}
	var ch discovery.CheckConfig
	ch.Name = d.nonEmpty(a, "name")
	ch.HTTP, _ = d.str(a, "http")
	ch.TCP, _ = d.str(a, "tcp")
	ch.Exec = d.command(a, "exec")
	if t, ok := d.positive(a, "interval"); ok {
		ch.Interval = t
	}
	if t, ok := d.positive(a, "timeout"); ok {
		ch.Timeout = t
	}
	ch.InitialStatus, _ = d.str(a, "initial_status")
	ch.SuccessBeforePassing, _ = d.integer(a, "success_before_passing", 1, 1000)
	ch.FailuresBeforeCritical, _ = d.integer(a, "failures_before_critical", 1, 1000)
	return ch
}

func (d *decoder) peers(b *hcl.Block) discovery.PeersConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: required(attrs("service", "tag", "passing_only",
		"include_self", "min", "wait", "env", "file", "template", "on_change"), "service")})
	a := c.Attributes
	defer d.discoveryDecoded(len(d.diags))
	p := discovery.PeersConfig{Name: b.Labels[0]}
	d.block(fmt.Sprintf("peers %q", p.Name), b, a)
	p.Service = d.nonEmpty(a, "service")
	p.Tag = d.nonEmpty(a, "tag")
	if v, ok := d.boolean(a, "passing_only"); ok {
		p.PassingOnly = &v
	}
	p.IncludeSelf, _ = d.boolean(a, "include_self")
	p.Min, _ = d.integer(a, "min", 0, 10000)
	if t, ok := d.duration(a, "wait"); ok {
		p.Wait = t
	}
	p.Env = d.nonEmpty(a, "env")
	p.File = d.nonEmpty(a, "file")
	p.Template, _ = d.str(a, "template")
	p.OnChange = d.onChange(a, "on_change")
	return p.WithDefaults()
}

func (d *decoder) consul(b *hcl.Block) *discovery.ConsulConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("address", "token", "token_file", "scheme",
		"ca_file", "ca_path", "client_cert", "client_key", "tls_server_name", "insecure_skip_verify",
		"datacenter", "required", "timeout", "mode", "node", "session_ttl"),
		Blocks: []hcl.BlockHeaderSchema{{Type: "login"}}})
	a := c.Attributes
	defer d.discoveryDecoded(len(d.diags))
	d.block("consul", b, a)
	cs := discovery.ConsulConfig{}
	cs.Address = d.nonEmpty(a, "address")
	cs.Token, _ = d.str(a, "token")
	cs.Scheme, _ = d.str(a, "scheme")
	cs.TokenFile = d.nonEmpty(a, "token_file")
	cs.CACert = d.nonEmpty(a, "ca_file")
	cs.CAPath = d.nonEmpty(a, "ca_path")
	cs.ClientCert = d.nonEmpty(a, "client_cert")
	cs.ClientKey = d.nonEmpty(a, "client_key")
	cs.TLSServerName = d.nonEmpty(a, "tls_server_name")
	cs.InsecureSkipVerify, _ = d.boolean(a, "insecure_skip_verify")
	cs.Datacenter = d.nonEmpty(a, "datacenter")
	cs.Required, _ = d.boolean(a, "required")
	if t, ok := d.positive(a, "timeout"); ok {
		cs.Timeout = t
	}
	cs.Mode, _ = d.str(a, "mode")
	cs.Node = d.nonEmpty(a, "node")
	if t, ok := d.positive(a, "session_ttl"); ok {
		cs.SessionTTL = t
	}
	for i, lb := range c.Blocks {
		if i > 0 {
			d.errf(lb.DefRange, "login: at most one login block")
			continue
		}
		cs.Login = d.login(lb)
	}
	cs = cs.WithDefaults()
	return &cs
}

// login decodes consul { login {} } (ACL login with the task's IAM role, discovery/login.go).
func (d *decoder) login(b *hcl.Block) *discovery.LoginConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("method", "meta", "sts_endpoint", "sts_region",
		"server_id_header_value", "include_iam_entity")})
	a := c.Attributes
	l := &discovery.LoginConfig{}
	l.Method, _ = d.str(a, "method")
	l.Meta = d.strMap(a, "meta")
	l.STSEndpoint = d.nonEmpty(a, "sts_endpoint")
	l.STSRegion = d.nonEmpty(a, "sts_region")
	l.ServerIDHeaderValue = d.nonEmpty(a, "server_id_header_value")
	l.IncludeIAMEntity, _ = d.boolean(a, "include_iam_entity")
	return l
}

// discoveryDecoded notes whether decoding a discovery block, begun with before diagnostics, found problems.
func (d *decoder) discoveryDecoded(before int) {
	d.discoveryBad = d.discoveryBad || d.diags[before:].HasErrors()
}

// checkDiscovery applies discovery's Validate to the service, peers and consul blocks together (ids and
// names must be unique across blocks). Exec checks get a stand-in runner: cmd/berth wires the supervisor.
func (d *decoder) checkDiscovery(f *File) {
	if d.discoveryBad { // a key that did not decode is reported once
		return
	}
	dc := discovery.Config{Services: f.Services, Peers: f.Peers,
		Exec: func(context.Context, []string) (int, []byte, error) { return 0, nil, nil }}
	if f.Consul != nil {
		dc.Consul = *f.Consul
	}
	d.check(dc.Validate())
}

// telemetry decodes the telemetry block into the metrics' own MetricsConfig (its sinks and tags).
func (d *decoder) telemetry(b *hcl.Block) telemetry.MetricsConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("dogstatsd", "prometheus", "tags")})
	a := c.Attributes
	var t telemetry.MetricsConfig
	t.DogStatsD = d.nonEmpty(a, "dogstatsd")
	if p, ok := d.str(a, "prometheus"); ok {
		if err := telemetry.CheckListenAddr(p); err != nil {
			d.errf(a["prometheus"].Expr.Range(), "prometheus: %s", err)
		}
		t.Prometheus = p
	}
	t.Tags = d.strings(a, "tags")
	return t
}

// logs decodes the logs block into the output streamer's own StreamConfig (format, prefix, max_line).
func (d *decoder) logs(b *hcl.Block) telemetry.StreamConfig {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs("format", "prefix", "max_line")})
	a := c.Attributes
	var l telemetry.StreamConfig
	l.Format = d.oneOf(a, "format", "", telemetry.OutputRaw, telemetry.OutputJSON)
	l.Prefix, _ = d.boolean(a, "prefix")
	l.MaxLine, _ = d.integer(a, "max_line", telemetry.MinMaxLine, telemetry.MaxMaxLine)
	return l.WithDefaults()
}
