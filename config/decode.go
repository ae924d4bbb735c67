package config

import (
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/field"
	"github.com/berth-dev/berth/onchange"
	"github.com/berth-dev/berth/supervisor"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder turns HCL bodies into File values, collecting every problem instead of stopping at the first.
type decoder struct {
	ctx      *hcl.EvalContext
	fn       Funcs
	pos      *posMap
	filename string
	diags    hcl.Diagnostics

	envRefs []envRef // env values of processes, for Funcs.CheckRef

	// where the keys of the blocks other packages validate are: block name (`secret "db"`) -> key path
	// (field.Error.Path) -> ranges
	keys         map[string]map[string]keyValue
	positions    map[string]string // block name -> "file:line:col" (File.Positions)
	discoveryBad bool              // a service, peers or consul block had problems of its own
}

// keyValue is where a key and its value are; for a block, both are its header.
type keyValue struct{ key, value hcl.Range }

// block records where a block of another package and its attributes are, for check.
func (d *decoder) block(name string, b *hcl.Block, a hcl.Attributes) map[string]keyValue {
	if d.keys == nil {
		d.keys, d.positions = map[string]map[string]keyValue{}, map[string]string{}
	}
	at := map[string]keyValue{"": {b.DefRange, b.DefRange}}
	for n, attr := range a {
		at[n] = keyValue{attr.NameRange, attr.Expr.Range()}
	}
	d.keys[name] = at
	d.positions[name] = d.rangeAt(b.DefRange)
	return at
}

// check reports the problems a package's Validate found (field.Errors) at the keys they name.
func (d *decoder) check(err error) {
	if err == nil {
		return
	}
	for _, fe := range field.All(err) {
		at := d.keys[fe.Block]
		kv, ok := at[fe.Path]
		if !ok {
			kv = at[""] // a key the block left out: the block
		}
		rng := kv.value
		if fe.Key {
			rng = kv.key
		}
		d.errf(rng, "%s", fe.Msg)
	}
	if len(field.All(err)) == 0 { // not from a block: still a problem of the file
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: err.Error()})
	}
}

// checkDecoded is check for a block of which keys may have failed to decode since the diagnostic before: a
// problem Validate finds with such a key, or with one the block lacks while it has problems, or with a key
// of reported, is left out, since it was reported as it was decoded.
func (d *decoder) checkDecoded(err error, before int, reported ...string) {
	bad := d.diags[before:]
	if err == nil || (!bad.HasErrors() && len(reported) == 0) {
		d.check(err)
		return
	}
	for _, fe := range field.All(err) {
		if slices.Contains(reported, fe.Path) {
			continue
		}
		kv, ok := d.keys[fe.Block][fe.Path]
		if !ok && bad.HasErrors() {
			continue
		}
		reported := false
		for _, diag := range bad {
			if diag.Severity == hcl.DiagError && diag.Subject != nil && overlaps(*diag.Subject, kv) {
				reported = true
			}
		}
		if !reported {
			d.check(fe)
		}
	}
}

// overlaps reports whether r lies within the key or value of kv.
func overlaps(r hcl.Range, kv keyValue) bool {
	in := func(o hcl.Range) bool {
		return r.Start.Byte >= o.Start.Byte && r.Start.Byte < max(o.End.Byte, o.Start.Byte+1)
	}
	return in(kv.key) || in(kv.value)
}

// envRef is one env value of a process.
type envRef struct {
	name, value string
	rng         hcl.Range
}

func (d *decoder) errf(rng hcl.Range, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

// content applies a schema to a body; unknown keys and blocks become problems.
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	if c == nil {
		c = &hcl.BodyContent{Attributes: hcl.Attributes{}}
	}
	return c
}

// eval evaluates an expression and converts it to ty. ok is false after a problem or for null.
func (d *decoder) eval(name string, expr hcl.Expression, ty cty.Type) (cty.Value, bool) {
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		d.errf(expr.Range(), "%s: value is not known", name)
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		d.errf(expr.Range(), "%s: want %s, have %s", name, ty.FriendlyNameForConstraint(), v.Type().FriendlyName())
		return cty.NilVal, false
	}
	if cv.IsNull() {
		return cty.NilVal, false
	}
	return cv, true
}

func (d *decoder) str(attrs hcl.Attributes, name string) (string, bool) {
	a := attrs[name]
	if a == nil {
		return "", false
	}
	v, ok := d.eval(name, a.Expr, cty.String)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

// nonEmpty is str that also rejects "".
func (d *decoder) nonEmpty(attrs hcl.Attributes, name string) string {
	s, ok := d.str(attrs, name)
	if ok && s == "" {
		d.errf(attrs[name].Expr.Range(), "%s must not be empty", name)
	}
	return s
}

func (d *decoder) boolean(attrs hcl.Attributes, name string) (bool, bool) {
	a := attrs[name]
	if a == nil {
		return false, false
	}
	v, ok := d.eval(name, a.Expr, cty.Bool)
	if !ok {
		return false, false
	}
	return v.True(), true
}

// integer reads a whole number in [lo, hi].
func (d *decoder) integer(attrs hcl.Attributes, name string, lo, hi int) (int, bool) {
	a := attrs[name]
	if a == nil {
		return 0, false
	}
	v, ok := d.eval(name, a.Expr, cty.Number)
	if !ok {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if acc != big.Exact || n < int64(lo) || n > int64(hi) {
		d.errf(a.Expr.Range(), "%s must be a whole number from %d to %d, have %s", name, lo, hi, bf.Text('g', 10))
		return 0, false
	}
	return int(n), true
}

// list reads a list of strings; null elements are problems. Empty lists read as nil. ok is false when the
// key is absent or after a problem.
func (d *decoder) list(attrs hcl.Attributes, name string) ([]string, bool) {
	a := attrs[name]
	if a == nil {
		return nil, false
	}
	v, ok := d.eval(name, a.Expr, cty.List(cty.String))
	if !ok {
		return nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() {
			d.errf(a.Expr.Range(), "%s: elements must not be null", name)
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

// strings is list without the ok.
func (d *decoder) strings(attrs hcl.Attributes, name string) []string {
	l, _ := d.list(attrs, name)
	return l
}

// command reads an argv: a non-empty list whose first element is not empty.
func (d *decoder) command(attrs hcl.Attributes, name string) []string {
	c, ok := d.list(attrs, name)
	switch {
	case !ok:
	case len(c) == 0:
		d.errf(attrs[name].Expr.Range(), "%s must not be empty", name)
	case c[0] == "":
		d.errf(attrs[name].Expr.Range(), "%s: program name must not be empty", name)
	}
	return c
}

// entry is one key = value of a map expression, with positions.
type entry struct {
	key      string
	keyRange hcl.Range
	value    cty.Value
	valRange hcl.Range
}

// entries reads a map literal key by key so that problems point at the entry. Duplicate keys are problems.
func (d *decoder) entries(name string, expr hcl.Expression) []entry {
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		d.errf(expr.Range(), "%s must be a map, such as { KEY = \"value\" }", name)
		return nil
	}
	var out []entry
	seen := map[string]bool{}
	for _, p := range pairs {
		k, ok := d.eval(name+" key", p.Key, cty.String)
		if !ok {
			continue
		}
		key := k.AsString()
		if seen[key] {
			d.errf(p.Key.Range(), "%s: duplicate key %q", name, key)
			continue
		}
		seen[key] = true
		v, diags := p.Value.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		if v.IsNull() || !v.IsWhollyKnown() {
			d.errf(p.Value.Range(), "%s: value of %q must not be null", name, key)
			continue
		}
		out = append(out, entry{key: key, keyRange: p.Key.Range(), value: v, valRange: p.Value.Range()})
	}
	return out
}

// strMap reads a map of strings (numbers and bools are turned into strings); nil when empty.
func (d *decoder) strMap(attrs hcl.Attributes, name string) map[string]string {
	a := attrs[name]
	if a == nil {
		return nil
	}
	return d.strMapExpr(name, a.Expr)
}

func (d *decoder) strMapExpr(name string, expr hcl.Expression) map[string]string {
	var out map[string]string
	for _, e := range d.entries(name, expr) {
		s, err := convert.Convert(e.value, cty.String)
		if err != nil {
			d.errf(e.valRange, "%s: value of %q must be a string", name, e.key)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[e.key] = s.AsString()
	}
	return out
}

// duration reads a time.ParseDuration string; negative durations are problems.
func (d *decoder) duration(attrs hcl.Attributes, name string) (time.Duration, bool) {
	a := attrs[name]
	if a == nil {
		return 0, false
	}
	v, ok := d.eval(name, a.Expr, cty.String)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(v.AsString())
	if err != nil {
		d.errf(a.Expr.Range(), "%s: bad duration %q (want e.g. \"10s\", \"1m30s\")", name, v.AsString())
		return 0, false
	}
	if dur < 0 {
		d.errf(a.Expr.Range(), "%s: negative duration %q", name, v.AsString())
		return 0, false
	}
	return dur, true
}

// positive is duration that also rejects zero.
func (d *decoder) positive(attrs hcl.Attributes, name string) (time.Duration, bool) {
	dur, ok := d.duration(attrs, name)
	if ok && dur == 0 {
		d.errf(attrs[name].Expr.Range(), "%s must be above zero", name)
		return 0, false
	}
	return dur, ok
}

func (d *decoder) durationPtr(attrs hcl.Attributes, name string) *time.Duration {
	if dur, ok := d.duration(attrs, name); ok {
		return &dur
	}
	return nil
}

func (d *decoder) signal(attrs hcl.Attributes, name string) syscall.Signal {
	s, ok := d.str(attrs, name)
	if !ok {
		return 0
	}
	sig, err := supervisor.ParseSignal(s)
	if err != nil {
		d.errf(attrs[name].Expr.Range(), "%s: %s", name, err)
		return 0
	}
	return sig
}

// oneOf reads a string that must be one of allowed; def when absent.
func (d *decoder) oneOf(attrs hcl.Attributes, name, def string, allowed ...string) string {
	s, ok := d.str(attrs, name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.errf(attrs[name].Expr.Range(), "%s: %q is not one of %q", name, s, allowed)
	return def
}

func (d *decoder) user(attrs hcl.Attributes, name string) (string, *supervisor.Credential) {
	s, ok := d.str(attrs, name)
	if !ok {
		return "", nil
	}
	cred, err := supervisor.LookupUser(s)
	if err != nil {
		d.errf(attrs[name].Expr.Range(), "%s: %s", name, err)
		return "", nil
	}
	return s, cred
}

// octal reads an octal mode string ("0022", "0400") no larger than 0777. A number is a problem: in HCL
// 0022 is twenty-two.
func (d *decoder) octal(attrs hcl.Attributes, name string) (os.FileMode, bool) {
	a := attrs[name]
	if a == nil {
		return 0, false
	}
	v, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return 0, false
	}
	if v.Type() != cty.String {
		d.errf(a.Expr.Range(), "%s must be an octal string such as \"0022\"", name)
		return 0, false
	}
	n, err := strconv.ParseUint(v.AsString(), 8, 32)
	if err != nil || n > 0o777 {
		d.errf(a.Expr.Range(), "%s: bad octal mode %q (want e.g. \"0022\")", name, v.AsString())
		return 0, false
	}
	return os.FileMode(n), true
}

// rlimits reads { nofile = 65536, core = "0:unlimited" }.
func (d *decoder) rlimits(attrs hcl.Attributes, name string) []supervisor.Rlimit {
	a := attrs[name]
	if a == nil {
		return nil
	}
	var out []supervisor.Rlimit
	for _, e := range d.entries(name, a.Expr) {
		var value string
		switch e.value.Type() {
		case cty.String:
			value = e.value.AsString()
		case cty.Number:
			bf := e.value.AsBigFloat()
			if !bf.IsInt() {
				d.errf(e.valRange, "%s: %s must be a whole number, \"soft:hard\" or \"unlimited\"", name, e.key)
				continue
			}
			value = bf.Text('f', 0)
		default:
			d.errf(e.valRange, "%s: %s must be a whole number, \"soft:hard\" or \"unlimited\"", name, e.key)
			continue
		}
		r, err := supervisor.ParseRlimit(e.key, value)
		if err != nil {
			rng := e.valRange
			if _, keyErr := supervisor.ParseRlimit(e.key, "0"); keyErr != nil {
				rng = e.keyRange
			}
			d.errf(rng, "%s: %s", name, err)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			d.errf(a.Expr.Range(), "%s: %s set twice", name, out[i].Name)
		}
	}
	return out
}

// onChange reads "none", "restart" or "signal:NAME".
func (d *decoder) onChange(attrs hcl.Attributes, name string) onchange.Action {
	s, ok := d.str(attrs, name)
	if !ok {
		return onchange.Action{}
	}
	a, err := onchange.Parse(s)
	if err != nil {
		d.errf(attrs[name].Expr.Range(), "%s: %s", name, err)
	}
	return a
}
