package config

import (
	"container/heap"
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// after reads the after list of a process; at gets each entry's position as "after.I" (I its index in the
// list), where supervisor.ValidateGraph's problems are reported.
func (d *decoder) after(a hcl.Attributes, at map[string]keyValue) []string {
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
		at[fmt.Sprintf("after.%d", len(out))] = keyValue{e.Range(), e.Range()}
		out = append(out, v.AsString())
	}
	return out
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
