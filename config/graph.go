package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// after reads the after list of the process called name, keeping each entry's position for checkAfter.
func (d *decoder) after(name string, a hcl.Attributes) []string {
	attr := a["after"]
	if attr == nil {
		return nil
	}
	exprs, diags := hcl.ExprList(attr.Expr)
	if diags.HasErrors() {
		d.errf(attr.Expr.Range(), "after must be a list of job names, such as [\"migrate\"]")
		return nil
	}
	var out []string
	for _, e := range exprs {
		v, ok := d.eval("after", e, cty.String)
		if !ok {
			continue
		}
		out = append(out, v.AsString())
		if d.afters == nil {
			d.afters = map[string][]ref{}
		}
		d.afters[name] = append(d.afters[name], ref{name: v.AsString(), rng: e.Range()})
	}
	return out
}

// checkAfter reports after entries that name no job, name main, repeat, or close a cycle.
func (d *decoder) checkAfter(f *File) {
	jobs := map[string]bool{}
	for _, j := range f.Jobs {
		jobs[j.Name] = true
	}
	deps := map[string][]ref{} // valid edges between jobs
	for proc, refs := range d.afters {
		seen := map[string]bool{}
		for _, r := range refs {
			switch {
			case r.name == MainName:
				d.errf(r.rng, "after: %q cannot be waited for; jobs start before or beside the main command", r.name)
			case r.name == proc:
				d.errf(r.rng, "after: cycle in after: %s -> %s", r.name, r.name)
			case !jobs[r.name]:
				d.errf(r.rng, "after: no job named %q", r.name)
			case seen[r.name]:
				d.errf(r.rng, "after: %q listed twice", r.name)
			default:
				deps[proc] = append(deps[proc], r)
			}
			seen[r.name] = true
		}
	}
	// Depth-first search in file order; every back edge closes one cycle, reported where it closes.
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string)
	visit = func(n string) {
		state[n] = onStack
		stack = append(stack, n)
		for _, r := range deps[n] {
			switch state[r.name] {
			case unvisited:
				visit(r.name)
			case onStack:
				i := slices.Index(stack, r.name)
				cycle := append(slices.Clone(stack[i:]), r.name)
				d.errf(r.rng, "after: cycle in after: %s", strings.Join(cycle, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, j := range f.Jobs {
		if state[j.Name] == unvisited {
			visit(j.Name)
		}
	}
}

// checkRefs passes every env value of the processes, except those named in secrets.skip_env, to
// Funcs.CheckRef.
func (d *decoder) checkRefs(f *File) {
	if d.fn.CheckRef == nil {
		return
	}
	for _, e := range d.envRefs {
		if slices.Contains(f.SecretsOptions.SkipEnv, e.name) {
			continue
		}
		if err := d.fn.CheckRef(e.value); err != nil {
			d.errf(e.rng, "env %s: %s", e.name, err)
		}
	}
}

// JobOrder returns the names of the jobs and MainName in an order that respects every after list: jobs as
// declared in the file unless after says otherwise, and main as late as its after list allows beside them
// (after every job that is not waiting for it, since nothing waits for main). Stop in the reverse order.
func (f *File) JobOrder() ([]string, error) {
	names := make([]string, 0, len(f.Jobs)+1)
	deps := map[string][]string{}
	for _, j := range f.Jobs {
		names = append(names, j.Name)
		deps[j.Name] = j.After
	}
	names = append(names, MainName)
	if f.Main != nil {
		deps[MainName] = f.Main.After
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	placed := map[string]bool{}
	order := make([]string, 0, len(names))
	for len(order) < len(names) {
		progress := false
		for _, n := range names {
			if placed[n] {
				continue
			}
			ready := true
			for _, dep := range deps[n] {
				if !known[dep] {
					return nil, fmt.Errorf("%s: after: no job named %q", n, dep)
				}
				if !placed[dep] {
					ready = false
					break
				}
			}
			if ready {
				placed[n] = true
				order = append(order, n)
				progress = true
				break // restart from the first name so that file order wins among the ready ones
			}
		}
		if !progress {
			var left []string
			for _, n := range names {
				if !placed[n] {
					left = append(left, n)
				}
			}
			return nil, fmt.Errorf("cycle in after among %s", strings.Join(left, ", "))
		}
	}
	return order, nil
}
