package config

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// ExitConfig is the exit code of a bad configuration (EX_CONFIG, README "Exit codes").
const ExitConfig = 78

// Error is returned by Load and Parse for every kind of bad configuration. Problems lists all of them in
// file order, each one line of the form "file:line:col: message".
type Error struct {
	Problems []string
	err      error
}

// Error returns the first problem and how many more there are.
func (e *Error) Error() string {
	switch len(e.Problems) {
	case 0:
		return "bad configuration"
	case 1:
		return e.Problems[0]
	default:
		return fmt.Sprintf("%s (and %d more)", e.Problems[0], len(e.Problems)-1)
	}
}

// ExitCode is 78.
func (e *Error) ExitCode() int { return ExitConfig }

// Unwrap returns the underlying error when the file could not be read.
func (e *Error) Unwrap() error { return e.err }

// Funcs are the outside dependencies of the expression functions. Every field may be nil.
type Funcs struct {
	// Env looks up a variable for env("NAME"); nil behaves as an empty environment. cmd/berth passes
	// os.LookupEnv.
	Env func(name string) (string, bool)
	// Secret returns the text that stands for a secret reference in a value, for secret("REF"); it returns
	// an error for a malformed reference. cmd/berth passes a function that checks the reference with the
	// secrets package and returns its marker. nil makes secret() fail with "secret() not available".
	Secret func(ref string) (string, error)
	// CheckRef is called with every env value of the main block and the job blocks (except names listed
	// in secrets.skip_env); an error marks the value as a malformed secret reference. nil checks nothing.
	CheckRef func(value string) error
}

// Load reads and parses the file at path. A path ending in ".json" is read as HCL's JSON syntax, anything
// else as HCL native syntax. The error is always an *Error.
// A file larger than MaxFileSize is refused without being read whole.
func Load(path string, fn Funcs) (*File, error) {
	src, err := readLimited(path)
	if err != nil {
		msg := oneLine(err.Error())
		if !strings.Contains(msg, path) {
			msg = path + ": " + msg
		}
		return nil, &Error{Problems: []string{msg}, err: fmt.Errorf("read config: %w", err)}
	}
	return Parse(src, path, fn)
}

// Parse parses and checks src; filename names it in messages and picks the syntax (".json" is JSON). The
// error is always an *Error. src larger than MaxFileSize or nested deeper than MaxDepth is refused before
// HCL parses it.
func Parse(src []byte, filename string, fn Funcs) (*File, error) {
	if len(src) > MaxFileSize {
		return nil, &Error{Problems: []string{filename + ": " + errTooLarge(int64(len(src))).Error()}}
	}
	pm := &posMap{src: src}
	var (
		file  *hcl.File
		diags hcl.Diagnostics
	)
	if strings.EqualFold(filepath.Ext(filename), ".json") {
		if off := jsonNestingDepth(src); off >= 0 {
			return nil, &Error{Problems: []string{pm.at(filename, off) + ": " + errTooDeep()}}
		}
		file, diags = hcljson.Parse(src, filename)
	} else {
		toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
		if off := nestingDepth(toks); off >= 0 {
			return nil, &Error{Problems: []string{pm.at(filename, off) + ": " + errTooDeep()}}
		}
		var expanded []byte
		expanded, pm.inserted = expandSingleLineBlocks(src, toks)
		file, diags = hclsyntax.ParseConfig(expanded, filename, hcl.InitialPos)
	}
	d := &decoder{ctx: evalContext(fn), fn: fn, pos: pm, filename: filename}
	d.diags = append(d.diags, diags...)
	var f *File
	if file != nil && file.Body != nil {
		f = d.file(file.Body)
	}
	if d.diags.HasErrors() || f == nil {
		return nil, &Error{Problems: d.problems()}
	}
	f.Filename = filename
	return f, nil
}

// problems formats every error diagnostic as one line, sorted by position, duplicates dropped. Positions are
// formatted in file order, each from the previous one, so many problems on one long line stay cheap.
func (d *decoder) problems() []string {
	type problem struct {
		off int // -1: no position
		msg string
	}
	var ps []problem
	for _, diag := range d.diags {
		if diag.Severity != hcl.DiagError {
			continue
		}
		msg := diag.Summary
		if diag.Detail != "" {
			msg += ": " + diag.Detail
		}
		rng := diag.Subject
		if rng == nil {
			rng = diag.Context
		}
		off := -1
		if rng != nil {
			off = d.pos.orig(rng.Start.Byte)
		}
		ps = append(ps, problem{off, oneLine(msg)})
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		where := d.filename
		if p.off >= 0 {
			where = d.pos.at(d.filename, p.off)
		}
		text := where + ": " + p.msg
		if seen[text] {
			continue
		}
		seen[text] = true
		out = append(out, text)
	}
	if len(out) == 0 {
		out = []string{d.filename + ": bad configuration"}
	}
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// posMap turns byte offsets of the parsed text back into line and column of the original source. The
// parsed text differs from the source only by the newlines expandSingleLineBlocks inserted.
type posMap struct {
	src      []byte
	inserted []int // offsets in the parsed text of inserted bytes, ascending
	lines    []int // offsets in src where lines start, built on first use

	// the last position formatted, so that positions asked for in file order (a block per job) cost the
	// distance from the previous one, not from the start of the line
	lastOff, lastCol int
}

func (m *posMap) orig(b int) int {
	n := sort.SearchInts(m.inserted, b) // inserted bytes before b
	b -= n
	return min(max(b, 0), len(m.src))
}

// at formats "file:line:col" for an offset of the original source; columns count characters from 1.
func (m *posMap) at(filename string, off int) string {
	if m.lines == nil {
		m.lines = append(m.lines, 0)
		for i, c := range m.src {
			if c == '\n' {
				m.lines = append(m.lines, i+1)
			}
		}
		m.lastOff = -1
	}
	off = min(max(off, 0), len(m.src))
	line := sort.Search(len(m.lines), func(i int) bool { return m.lines[i] > off }) // 1-based line of off
	start := m.lines[line-1]
	var col int
	if m.lastOff >= start && m.lastOff <= off {
		col = m.lastCol + utf8.RuneCount(m.src[m.lastOff:off])
	} else {
		col = utf8.RuneCount(m.src[start:off]) + 1
	}
	m.lastOff, m.lastCol = off, col
	return fmt.Sprintf("%s:%d:%d", filename, line, col)
}

// rangeAt formats the start of a range of the parsed text.
func (d *decoder) rangeAt(r hcl.Range) string {
	return d.pos.at(d.filename, d.pos.orig(r.Start.Byte))
}

func evalContext(fn Funcs) *hcl.EvalContext {
	env := function.New(&function.Spec{
		Description: "env(NAME) is the value of an environment variable; env(NAME, DEFAULT) allows it to be unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default")
			}
			name := args[0].AsString()
			if fn.Env != nil {
				if v, ok := fn.Env(name); ok {
					return cty.StringVal(v), nil
				}
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, function.NewArgErrorf(0,
				"environment variable %q is not set (write env(%q, \"\") to allow that)", name, name)
		},
	})
	secret := function.New(&function.Spec{
		Description: "secret(REF) stands for a secret reference resolved before processes start.",
		Params:      []function.Parameter{{Name: "ref", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if fn.Secret == nil {
				return cty.NilVal, fmt.Errorf("secret() not available")
			}
			v, err := fn.Secret(args[0].AsString())
			if err != nil {
				return cty.NilVal, function.NewArgError(0, err)
			}
			return cty.StringVal(v), nil
		},
	})
	return &hcl.EvalContext{Functions: map[string]function.Function{"env": env, "secret": secret}}
}
