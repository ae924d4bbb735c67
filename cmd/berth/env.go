package main

import (
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/supervisor"
)

// The units' environments: berth's shared environment, each unit's own env block, and the peers variables.

// unitEnvBlocks are the env blocks of the main block and of each job, by unit name, as the secrets resolver
// takes them (secret() markers and references unresolved).
func (o *options) unitEnvBlocks() map[string][]string {
	units := map[string][]string{}
	if o.file == nil {
		return units
	}
	if m := o.file.Main; m != nil && len(m.Env) > 0 {
		units[supervisor.MainName] = slices.Clone(m.Env)
	}
	for _, j := range o.file.Jobs {
		if len(j.Env) > 0 {
			units[j.Name] = slices.Clone(j.Env)
		}
	}
	return units
}

// unitEnv is a unit's environment: the shared variables overlaid by its own, then by the peers variables.
func unitEnv(shared, own []string, peers map[string]string) []string {
	return mergeEnv(shared, own, mapEnv(peers))
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
