package main

import (
	"slices"
	"strings"

	"github.com/berth-dev/berth/secrets"
)

// childBase is the environment every process's is built on, before its env block, the secret blocks' variables
// and peers are added (prepare hands it to the secrets resolver): berth's own environment; with pristine only
// its variables that hold a secret reference berth resolves (README "Exit code mapping and a pristine
// environment").
func (b *berth) childBase() []string {
	if !b.opts.pristine {
		return b.environ()
	}
	return pristineBase(b.environ(), b.opts.skipEnv)
}

// pristineBase keeps the variables of env whose value is a secret reference, other than those skipped
// (-no-resolve): the resolver replaces them with their values. A malformed reference is kept, so that it fails
// as it would without pristine.
func pristineBase(env, skip []string) []string {
	out := []string{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if slices.Contains(skip, name) {
			continue
		}
		if _, isRef, err := secrets.ParseRef(value); isRef || err != nil {
			out = append(out, kv)
		}
	}
	return out
}
