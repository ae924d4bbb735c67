package secrets

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/ecsmeta"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/go-hclog"
)

// Defaults and bounds of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 8
	// MaxConcurrency bounds Concurrency (secrets.concurrency).
	MaxConcurrency = 1000
)

// Config configures a Resolver. The config file's top-level secrets block gives Timeout, Jitter, Concurrency
// and SkipEnv (config decodes it into a Config); its secret blocks give Blocks.
type Config struct {
	// Timeout is secrets.timeout: the total budget of one resolution, retries included (default 30s). Past it
	// the resolution fails with exit code 69 — unless every answer since is throttling, which is retried until
	// ThrottleFactor × Timeout.
	Timeout time.Duration
	// Jitter is secrets.jitter: a random delay in [0, Jitter) before the first fetch, so a large fleet
	// starting at once does not hit the APIs' rate limits together. It is not part of Timeout.
	Jitter time.Duration
	// Concurrency is the size of the fetch worker pool (default 8).
	Concurrency int
	// SkipEnv names variables left untouched even if their value looks like a reference (-no-resolve,
	// secrets.skip_env). secret() markers inside such a variable are still resolved: they were asked for.
	SkipEnv []string
	// Blocks are the `secret "NAME" {}` blocks of the config file.
	Blocks []Block
	// MetadataURI is ECS_CONTAINER_METADATA_URI_V4, used for the region when nothing else gives one.
	MetadataURI string
	// Metadata, when set, is the berth-wide cache of that metadata (fetched once for all components); nil
	// fetches from MetadataURI directly.
	Metadata *ecsmeta.Cache
	// AWS, when non-nil, replaces the SDK default chain (config.LoadDefaultConfig). The region fallback still
	// applies when its Region is empty. berth's SDK retries are always replaced by its own (see Timeout).
	AWS *aws.Config
	// NewValues, when non-nil, receives the plaintexts a refresh brought in (Run), so the output redactor
	// can add them before the supervisor restarts or signals anything.
	NewValues func(values []string)
	// Observe, when non-nil, is called after every fetch attempt with the source ("secretsmanager", "ssm",
	// "s3", "kms"), its duration and its error (nil on success) — for berth.secrets.fetch.duration and
	// berth.secrets.errors.
	Observe func(source string, d time.Duration, err error)
}

// Resolver resolves references and secret blocks. Resolve first, then Run for refreshes.
type Resolver struct {
	cfg  Config
	log  hclog.Logger
	skip map[string]bool

	awsMu   sync.Mutex
	clients *clients

	mu    sync.Mutex
	state *state // the last resolution; nil before Resolve succeeded
}

// Env is what a resolution takes and gives: the variables every unit (the main command, each job) gets, and
// each unit's own variables (its env block). A unit's environment is Shared overlaid by Units[unit]. One
// resolution serves every unit, so each distinct secret is fetched once however many units read it.
type Env struct {
	// Shared is berth's environment (KEY=VALUE). Secret blocks' variables are set here.
	Shared []string
	// Units are the units' own variables by unit name (KEY=VALUE; secret() markers allowed).
	Units map[string][]string
}

// ReloadedUnit is the own variables of a unit whose env block a reload read again: its current ones in e
// (Resolver.Env: resolved at start, or as the last reload set them) while the block is as it was (prev, the
// block as last applied, and next as written, sorted KEY=VALUE; prev nil for a new unit), the new block's
// values as they are otherwise. A changed block holding a secret reference or a secret() marker is refused:
// references are resolved at start only.
func (e Env) ReloadedUnit(unit string, prev, next []string) ([]string, error) {
	if slices.Equal(prev, next) {
		return e.Units[unit], nil
	}
	marker, _ := utf8.DecodeRuneInString(markerOpen)
	for _, kv := range next {
		k, v, _ := strings.Cut(kv, "=")
		if _, isRef, _ := ParseRef(v); isRef || strings.ContainsRune(v, marker) {
			return nil, fmt.Errorf("env %s holds a secret reference, which is resolved at start only: restart berth to apply it", k)
		}
	}
	return next, nil
}

// Clone is a deep copy of e.
func (e Env) Clone() Env {
	c := Env{Shared: append([]string(nil), e.Shared...)}
	if e.Units != nil {
		c.Units = make(map[string][]string, len(e.Units))
		for u, l := range e.Units {
			c.Units[u] = append([]string(nil), l...)
		}
	}
	return c
}

// state is what Run needs of the last resolution.
type state struct {
	env      Env                 // the units' environments
	versions map[string]string   // block name -> version
	status   []RefStatus         // for Status
	blockEnv map[string][]string // block name -> variables it set
}

// Result is a resolution's outcome.
type Result struct {
	// Env is the units' environments: references replaced by values, block variables set in Shared.
	Env Env
	// Values is every resolved plaintext (whole values, JSON members, dotenv entries, parameters), for the
	// output redactor (which applies its own minimum length). Never log it.
	Values []string
	// Refs is the status of every reference and block: reference and version, never the value.
	Refs []RefStatus
	// Files are the files written.
	Files []string
}

// RefStatus describes one resolved reference for `berth ctl status`. It never holds a value.
type RefStatus struct {
	// Var is the environment variable of an env reference ("" for a block).
	Var string `json:"var,omitempty"`
	// Unit is the unit whose own env block holds Var ("" for berth's shared environment and for blocks).
	Unit string `json:"unit,omitempty"`
	// Block is the secret block's name ("" for an env reference).
	Block string `json:"block,omitempty"`
	// Ref is the reference as shown in messages (kms ciphertexts shortened).
	Ref string `json:"ref"`
	// Version is the version id, parameter version, S3 ETag/version id or ciphertext digest ("" if none).
	Version string `json:"version,omitempty"`
	// Fetched is when the value was read.
	Fetched time.Time `json:"fetched"`
}

// WithDefaults is c with DefaultTimeout and DefaultConcurrency where they are 0.
func (c Config) WithDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// New checks cfg and returns a Resolver. It does not touch AWS: clients are created on the first resolution
// that needs one. Errors are *Error with code 78.
func New(cfg Config, log hclog.Logger) (*Resolver, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg = cfg.WithDefaults()
	switch {
	case cfg.Timeout < 0:
		return nil, &Error{Code: ExitConfig, Err: errors.New("secrets.timeout must be positive")}
	case cfg.Jitter < 0:
		return nil, &Error{Code: ExitConfig, Err: errors.New("secrets.jitter must not be negative")}
	case cfg.Concurrency < 0:
		return nil, &Error{Code: ExitConfig, Err: errors.New("secrets concurrency must be positive")}
	case cfg.Concurrency > MaxConcurrency:
		return nil, &Error{Code: ExitConfig, Err: fmt.Errorf("secrets concurrency must be at most %d", MaxConcurrency)}
	}
	seen := map[string]bool{}
	for _, b := range cfg.Blocks {
		if err := b.Validate(); err != nil {
			return nil, &Error{Code: ExitConfig, Err: err}
		}
		if seen[b.Name] {
			return nil, &Error{Code: ExitConfig, Err: fmt.Errorf("secret %q: declared twice", b.Name)}
		}
		seen[b.Name] = true
	}
	r := &Resolver{cfg: cfg, log: log.Named("secrets"), skip: map[string]bool{}}
	for _, v := range cfg.SkipEnv {
		r.skip[v] = true
	}
	return r, nil
}

// envEntry is one KEY=VALUE of the input environment that holds references.
type envEntry struct {
	unit  string // "" for Env.Shared
	idx   int
	name  string
	value string
	whole *unit        // the value is one reference
	spans []markerSpan // secret() markers inside the value
	units []*unit      // one per span
	jsonK []string     // JSON key per unit ("" = whole value)
}

// Resolve resolves every reference in env (berth's environment and each unit's env block) and every block,
// writes the blocks' files, and returns the units' environments. Nothing is written unless every reference
// and block resolved. Errors are *Error (ExitCode 69, 77 or 78) naming the variable (and its unit) or block
// and the reference, never a value.
func (r *Resolver) Resolve(ctx context.Context, env Env) (*Result, error) {
	p := newPlan()
	var entries []*envEntry
	regionHint := ""
	hint := func(ref Ref) {
		if regionHint == "" {
			regionHint = ref.Region
		}
	}
	scan := func(unit string, list []string) error {
		for i, kv := range list {
			if err := r.scanEntry(p, &entries, hint, unit, i, kv); err != nil {
				return err
			}
		}
		return nil
	}
	if err := scan("", env.Shared); err != nil {
		return nil, err
	}
	for _, u := range sortedKeys(env.Units) {
		if err := scan(u, env.Units[u]); err != nil {
			return nil, err
		}
	}
	blockUnits := make([]*unit, len(r.cfg.Blocks))
	for i, b := range r.cfg.Blocks {
		u := blockUnit(b)
		hint(u.ref)
		blockUnits[i] = p.add(u)
	}

	out := &Result{Env: env.Clone()}
	if len(p.order) == 0 {
		r.setState(&state{env: out.Env, versions: map[string]string{}, blockEnv: map[string][]string{}})
		return out, nil
	}
	r.log.Debug("resolving secrets", "references", len(entries), "blocks", len(r.cfg.Blocks), "fetches", len(p.order))
	if r.cfg.Jitter > 0 {
		d := time.Duration(rand.Int64N(int64(r.cfg.Jitter)))
		r.log.Debug("start-up jitter", "delay", d)
		select {
		case <-ctx.Done():
			return nil, &Error{Code: ExitUnavailable, Err: fmt.Errorf("cancelled: %w", ctx.Err())}
		case <-time.After(d):
		}
	}
	start := time.Now()
	bctx, cancel := r.budget(ctx, start)
	defer cancel()
	c, err := r.awsClientsBy(bctx, start, regionHint)
	if err != nil {
		return nil, err
	}
	f := r.fetcher(c, r.cfg.Concurrency, start)
	if err := f.run(bctx, p); err != nil {
		return nil, err
	}
	now := time.Now()

	// Assemble: env references, then blocks (a block's variables win over the environment's).
	var values valueSet
	for _, e := range entries {
		if e.whole != nil {
			// A unit is shared by every variable that reads the same secret version: errors about the
			// value (a missing JSON key) must name this variable and its own reference, not the first user's.
			v, err := pick(e.whole, e.jsonK[0])
			if err == nil {
				err = envSafe(e.name, e.unit, e.whole, v)
			}
			if err != nil {
				return nil, relabel(err, e.name, e.unit, e.value)
			}
			values.add(v)
			out.Env.set(e.unit, e.idx, e.name+"="+v)
			out.Refs = append(out.Refs, RefStatus{Var: e.name, Unit: e.unit, Ref: e.whole.display, Version: e.whole.item.version, Fetched: now})
			continue
		}
		var b strings.Builder
		last := 0
		for i, s := range e.spans {
			v, err := pick(e.units[i], e.jsonK[i])
			if err == nil {
				err = envSafe(e.name, e.unit, e.units[i], v)
			}
			if err != nil {
				return nil, relabel(err, e.name, e.unit, s.ref)
			}
			values.add(v)
			b.WriteString(e.value[last:s.start])
			b.WriteString(v)
			last = s.end
			out.Refs = append(out.Refs, RefStatus{Var: e.name, Unit: e.unit, Ref: e.units[i].display, Version: e.units[i].item.version, Fetched: now})
		}
		b.WriteString(e.value[last:])
		out.Env.set(e.unit, e.idx, e.name+"="+b.String())
	}
	st := &state{versions: map[string]string{}, blockEnv: map[string][]string{}}
	var files []stagedFile
	defer func() {
		for _, sf := range files {
			sf.discard()
		}
	}()
	for i, b := range r.cfg.Blocks {
		u := blockUnits[i]
		d, err := deliver(b, u)
		if err != nil {
			return nil, err
		}
		for _, kv := range d.env {
			out.Env.Shared = setEnv(out.Env.Shared, kv)
			name, _, _ := strings.Cut(kv, "=")
			st.blockEnv[b.Name] = append(st.blockEnv[b.Name], name)
		}
		values.add(d.values...)
		if b.File != "" {
			sf, err := stageFile(b.File, u.item.raw, b.Mode, b.UID, b.GID)
			if err != nil {
				return nil, &Error{Var: b.label(), Code: ExitCantCreate, Err: err}
			}
			sf.label = b.label()
			files = append(files, sf)
		}
		st.versions[b.Name] = u.item.version
		out.Refs = append(out.Refs, RefStatus{Block: b.Name, Ref: u.display, Version: u.item.version, Fetched: now})
	}
	for i := range files {
		if err := files[i].check(); err != nil {
			return nil, &Error{Var: files[i].label, Code: ExitCantCreate, Err: err}
		}
	}
	for i := range files {
		if err := files[i].commit(); err != nil {
			return nil, &Error{Var: files[i].label, Code: ExitCantCreate, Err: err}
		}
		out.Files = append(out.Files, files[i].path)
	}
	files = nil
	out.Values = values.list
	st.env, st.status = out.Env, out.Refs
	r.setState(st)
	r.log.Debug("secrets resolved", "references", len(out.Refs), "files", len(out.Files), "duration", time.Since(start))
	return out, nil
}

// scanEntry adds the references of one KEY=VALUE of env (of unit, "" for Env.Shared) to the plan.
func (r *Resolver) scanEntry(p *plan, entries *[]*envEntry, hint func(Ref), unit string, i int, kv string) error {
	name, value, _ := strings.Cut(kv, "=")
	e := &envEntry{unit: unit, idx: i, name: name, value: value}
	bad := func(err error) error { return &Error{Var: name, Unit: unit, Code: ExitConfig, Err: err} }
	spans, err := findMarkers(value)
	if err != nil {
		return bad(err)
	}
	for _, s := range spans {
		ref, ok, err := ParseRef(s.ref)
		if !ok && err == nil {
			err = errors.New("secret() argument is not a reference")
		}
		if err != nil {
			return bad(err)
		}
		hint(ref)
		e.spans = append(e.spans, s)
		e.units = append(e.units, p.add(refUnit(ref, name, unit)))
		e.jsonK = append(e.jsonK, ref.JSONKey)
	}
	if len(spans) == 0 && !r.skip[name] {
		ref, ok, err := ParseRef(value)
		if err != nil {
			return bad(err)
		}
		if ok {
			hint(ref)
			e.whole = p.add(refUnit(ref, name, unit))
			e.jsonK = []string{ref.JSONKey}
		}
	}
	if e.whole != nil || len(e.units) > 0 {
		*entries = append(*entries, e)
	}
	return nil
}

func (r *Resolver) setState(st *state) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = st
}

// Env is the units' environments as of the last resolution or refresh (empty before Resolve), for restarts.
func (r *Resolver) Env() Env {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return Env{}
	}
	return r.state.env.Clone()
}

// SetUnits records what a reload applied: own[unit] becomes that unit's own variables (as ReloadedUnit gave
// them; empty drops the entry) and each removed unit's entry goes away. Env() holds each unit's current own
// variables from then on, so the next reload and every refresh give a unit its env block as last applied, not
// the one berth started with. No-op before Resolve.
func (r *Resolver) SetUnits(own map[string][]string, removed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return
	}
	env := r.state.env.Clone() // Env() and Resolve's result may share the old one: replaced, never changed
	if env.Units == nil {
		env.Units = map[string][]string{}
	}
	for u, l := range own {
		if len(l) == 0 {
			delete(env.Units, u)
			continue
		}
		env.Units[u] = slices.Clone(l)
	}
	for _, u := range removed {
		delete(env.Units, u)
	}
	r.state.env = env
}

// Status is the references with their current versions (never values), for `berth ctl status`.
func (r *Resolver) Status() []RefStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		return nil
	}
	return append([]RefStatus(nil), r.state.status...)
}

// budget is the context of one resolution started at start: it ends at the throttling bound,
// ThrottleFactor × secrets.timeout; only throttled retries go past secrets.timeout itself (fetcher.soft).
func (r *Resolver) budget(ctx context.Context, start time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, start.Add(ThrottleFactor*r.cfg.Timeout))
}

// fetcher is a fetcher for a resolution started at start.
func (r *Resolver) fetcher(c *clients, concurrency int, start time.Time) *fetcher {
	return &fetcher{c: c, concurrency: concurrency, log: r.log, observe: r.cfg.Observe, soft: start.Add(r.cfg.Timeout)}
}

// awsClientsBy is awsClients within secrets.timeout of start: configuration and ECS metadata are not
// throttled answers, so they do not get the throttling bound.
func (r *Resolver) awsClientsBy(ctx context.Context, start time.Time, regionHint string) (*clients, error) {
	actx, cancel := context.WithDeadline(ctx, start.Add(r.cfg.Timeout))
	defer cancel()
	return r.awsClients(actx, regionHint)
}

func (r *Resolver) awsClients(ctx context.Context, regionHint string) (*clients, error) {
	r.awsMu.Lock()
	defer r.awsMu.Unlock()
	if r.clients != nil {
		return r.clients, nil
	}
	meta := r.cfg.Metadata
	if meta == nil {
		meta = metadataCache(r.cfg.MetadataURI)
	}
	start := time.Now()
	c, err := loadAWS(ctx, r.cfg.AWS, regionHint, meta, r.log.Named("aws"))
	if err != nil {
		return nil, err
	}
	r.log.Debug("aws clients ready", "region", c.region, "duration", time.Since(start))
	r.clients = c
	return c, nil
}

// pick is a reference's value: the whole value or one JSON key of it.
func pick(u *unit, jsonKey string) (string, error) {
	if jsonKey == "" {
		return string(u.item.raw), nil
	}
	m, err := jsonObject(u.item.raw)
	if err != nil {
		return "", u.fail(ExitUnavailable, fmt.Errorf("JSON key %q: %w", jsonKey, err))
	}
	v, ok := m[jsonKey]
	if !ok {
		return "", u.fail(ExitUnavailable, fmt.Errorf("JSON key %q does not exist in the secret", jsonKey))
	}
	return v, nil
}

// relabel makes a value error name the variable and the reference it was read through (kms: ciphertexts
// shortened as Ref.String does).
func relabel(err error, name, unit, raw string) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	c := *se
	c.Var, c.Unit, c.Ref = name, unit, raw
	if ref, ok, perr := ParseRef(raw); ok && perr == nil {
		c.Ref = ref.String()
	}
	return &c
}

// envSafe rejects a value the kernel cannot put in an environment.
func envSafe(name, envUnit string, u *unit, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return &Error{Var: name, Unit: envUnit, Ref: u.display, Code: ExitConfig, Err: errors.New("value contains a NUL byte: deliver it to a file instead")}
	}
	return nil
}

// delivery is what a block contributes.
type delivery struct {
	env    []string // KEY=VALUE
	values []string
}

// deliver computes a block's variables and values from its fetched unit.
func deliver(b Block, u *unit) (*delivery, error) {
	d := &delivery{values: []string{string(u.item.raw)}}
	if b.Env != "" {
		if err := envSafe(b.Env, "", u, string(u.item.raw)); err != nil {
			return nil, err
		}
		d.env = append(d.env, b.Env+"="+string(u.item.raw))
	}
	var keys map[string]string
	if len(b.EnvMap) > 0 || b.EnvPrefix != "" || u.item.keys != nil || u.item.format != "" {
		var err error
		keys, err = u.item.keysOf()
		if err != nil && (len(b.EnvMap) > 0 || b.EnvPrefix != "") {
			code := ExitUnavailable
			if u.item.format != "" {
				code = ExitConfig
			}
			return nil, u.fail(code, err)
		}
	} else if m, err := jsonObject(u.item.raw); err == nil {
		keys = m // JSON members are values too, for redaction
	}
	for _, k := range sortedKeys(keys) {
		d.values = append(d.values, keys[k])
	}
	for _, v := range sortedKeys(b.EnvMap) {
		k := b.EnvMap[v]
		val, ok := keys[k]
		if !ok && b.SSMPath != "" {
			val, ok = keys[strings.TrimPrefix(strings.TrimPrefix(k, strings.TrimSuffix(b.SSMPath, "/")), "/")]
		}
		if !ok {
			return nil, u.fail(ExitUnavailable, fmt.Errorf("key %q (for %s) does not exist", k, v))
		}
		if err := envSafe(v, "", u, val); err != nil {
			return nil, err
		}
		d.env = append(d.env, v+"="+val)
	}
	if b.EnvPrefix != "" {
		for _, k := range sortedKeys(keys) {
			name := b.EnvPrefix + EnvName(k)
			if err := envSafe(name, "", u, keys[k]); err != nil {
				return nil, err
			}
			d.env = append(d.env, name+"="+keys[k])
		}
	}
	return d, nil
}

// set replaces entry i of unit's list ("" = Shared).
func (e *Env) set(unit string, i int, kv string) {
	if unit == "" {
		e.Shared[i] = kv
		return
	}
	e.Units[unit][i] = kv
}

// setEnv replaces the last KEY= entry of env or appends kv.
func setEnv(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	for i := len(env) - 1; i >= 0; i-- {
		if n, _, _ := strings.Cut(env[i], "="); n == name {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// valueSet is an ordered set of plaintexts.
type valueSet struct {
	list []string
	seen map[string]bool
}

func (s *valueSet) add(vs ...string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	for _, v := range vs {
		if v == "" || s.seen[v] {
			continue
		}
		s.seen[v] = true
		s.list = append(s.list, v)
	}
}
