package supervisor

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/field"
)

// ValidateGraph checks the `after` lists of the jobs and of the main command (mainAfter) together: job names
// are unique, and every entry names a job, not main nor the job itself, once, without closing a cycle. Each
// problem is a field.Error of the block that lists the entry (`job "NAME"` or main), at key "after.I" (the
// I-th entry), reported where a cycle closes.
func ValidateGraph(jobs []JobSpec, mainAfter []string) error {
	var errs []*field.Error
	add := func(block string, i int, format string, args ...any) {
		errs = append(errs, &field.Error{Block: block, Path: fmt.Sprintf("after.%d", i), Msg: fmt.Sprintf(format, args...)})
	}
	names := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		if names[j.Name] {
			errs = append(errs, &field.Error{Block: jobBlock(j.Name), Path: "name", Msg: fmt.Sprintf("duplicate job %q", j.Name)})
		}
		names[j.Name] = true
	}
	type unitAfter struct {
		name, block string
		after       []string
	}
	units := make([]unitAfter, 0, len(jobs)+1)
	for _, j := range jobs {
		units = append(units, unitAfter{j.Name, jobBlock(j.Name), j.After})
	}
	units = append(units, unitAfter{MainName, MainName, mainAfter})
	deps := map[string][]edge{} // valid edges between jobs
	for _, u := range units {
		seen := map[string]bool{}
		for i, a := range u.after {
			switch {
			case a == MainName:
				add(u.block, i, "after: %q cannot be waited for; jobs start before or beside the main command", a)
			case a == u.name:
				add(u.block, i, "after: cycle in after: %s -> %s", a, a)
			case !names[a]:
				add(u.block, i, "after: no job named %q", a)
			case seen[a]:
				add(u.block, i, "after: %q listed twice", a)
			default:
				deps[u.name] = append(deps[u.name], edge{to: a, block: u.block, index: i})
			}
			seen[a] = true
		}
	}
	// Depth-first search in declaration order; every back edge closes one cycle, reported where it closes.
	// The search keeps its own stack, so a chain of thousands of jobs does not recurse as deep.
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
	for _, j := range jobs {
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
			e := edges[top.next]
			top.next++
			switch state[e.to] {
			case unvisited:
				push(e.to)
			case onStack:
				add(e.block, e.index, "after: cycle in after: %s", cycleText(path[at[e.to]:], e.to))
			}
		}
	}
	b := field.Block{}
	b.Add(errs...)
	return b.Err()
}

// edge is a valid `after` entry: the unit listing it waits for to; block and index locate the entry.
type edge struct {
	to    string
	block string
	index int
}

// frame is a job on ValidateGraph's search path.
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
