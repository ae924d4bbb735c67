package config

import (
	"container/heap"
	"fmt"
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
	// Depth-first search in file order; every back edge closes one cycle, reported where it closes. The
	// search keeps its own stack, so a chain of thousands of jobs does not recurse as deep.
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	at := map[string]int{} // position in path of a job on the stack
	var path []frame
	push := func(n string) {
		state[n] = onStack
		at[n] = len(path)
		path = append(path, frame{name: n})
	}
	for _, j := range f.Jobs {
		if state[j.Name] != unvisited {
			continue
		}
		push(j.Name)
		for len(path) > 0 {
			top := &path[len(path)-1]
			edges := deps[top.name]
			if top.next == len(edges) {
				state[top.name] = done
				path = path[:len(path)-1]
				continue
			}
			r := edges[top.next]
			top.next++
			switch state[r.name] {
			case unvisited:
				push(r.name)
			case onStack:
				d.errf(r.rng, "after: cycle in after: %s", cycleText(path[at[r.name]:], r.name))
			}
		}
	}
}

// frame is a job on checkAfter's search path.
type frame struct {
	name string
	next int // index of the next edge of deps[name] to follow
}

// cycleText is "a -> b -> a" for a cycle on the search path starting at its first job; a long cycle is
// shortened in the middle so that the message stays one readable line.
func cycleText(path []frame, closing string) string {
	names := make([]string, 0, min(len(path), 9)+2)
	for i, fr := range path {
		if len(path) > 10 && i == 4 {
			names = append(names, fmt.Sprintf("... (%d more)", len(path)-8))
		}
		if len(path) > 10 && i >= 4 && i < len(path)-4 {
			continue
		}
		names = append(names, fr.name)
	}
	return strings.Join(append(names, closing), " -> ")
}

// checkRefs passes every env value of the processes, except those named in secrets.skip_env, to
// Funcs.CheckRef.
func (d *decoder) checkRefs(f *File) {
	if d.fn.CheckRef == nil {
		return
	}
	skip := make(map[string]bool, len(f.SecretsOptions.SkipEnv))
	for _, name := range f.SecretsOptions.SkipEnv {
		skip[name] = true
	}
	for _, e := range d.envRefs {
		if skip[e.name] {
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
//
// Of the processes whose after lists are satisfied, the one declared first comes next (Kahn's algorithm
// with a heap of file positions), in O(n log n) for n processes.
func (f *File) JobOrder() ([]string, error) {
	names := make([]string, 0, len(f.Jobs)+1)
	index := make(map[string]int, len(f.Jobs)+1)
	afters := make([][]string, 0, len(f.Jobs)+1)
	for _, j := range f.Jobs {
		index[j.Name] = len(names)
		names = append(names, j.Name)
		afters = append(afters, j.After)
	}
	index[MainName] = len(names)
	names = append(names, MainName)
	if f.Main != nil {
		afters = append(afters, f.Main.After)
	} else {
		afters = append(afters, nil)
	}
	waiting := make([]int, len(names))   // unplaced entries of each after list
	waiters := make([][]int, len(names)) // who lists each process in after
	for i, after := range afters {
		for _, dep := range after {
			k, ok := index[dep]
			if !ok {
				return nil, fmt.Errorf("%s: after: no job named %q", names[i], dep)
			}
			waiting[i]++
			waiters[k] = append(waiters[k], i)
		}
	}
	ready := &intHeap{}
	for i := range names {
		if waiting[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]string, 0, len(names))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, names[i])
		for _, w := range waiters[i] {
			if waiting[w]--; waiting[w] == 0 {
				heap.Push(ready, w)
			}
		}
	}
	if len(order) < len(names) {
		var left []string
		for i, n := range names {
			if waiting[i] > 0 {
				left = append(left, n)
			}
		}
		return nil, fmt.Errorf("cycle in after among %s", strings.Join(left, ", "))
	}
	return order, nil
}

// intHeap is a min-heap of ints for container/heap.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
