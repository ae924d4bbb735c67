package secrets

import (
	"slices"
	"strings"
	"testing"
)

// TestReloadedUnit: a reloaded unit keeps its resolved variables while its env block is as it was, takes a
// changed block's plain values, and refuses a changed block with a reference (resolved at start only).
func TestReloadedUnit(t *testing.T) {
	e := Env{Units: map[string][]string{"job": {"DB=resolved-plaintext"}}}
	block := []string{"DB=ssm:/prod/db"}
	if own, err := e.ReloadedUnit("job", block, slices.Clone(block)); err != nil || !slices.Equal(own, e.Units["job"]) {
		t.Errorf("unchanged block: %v, %v; want the resolved variables", own, err)
	}
	if own, err := e.ReloadedUnit("job", block, []string{"MODE=fast"}); err != nil || !slices.Equal(own, []string{"MODE=fast"}) {
		t.Errorf("changed block: %v, %v; want its plain values", own, err)
	}
	if own, err := e.ReloadedUnit("new", nil, nil); err != nil || own != nil {
		t.Errorf("new unit without env: %v, %v", own, err)
	}
	for _, v := range []string{"ssm:/prod/other", "postgres://" + Marker("ssm:/prod/pw") + "@db"} {
		_, err := e.ReloadedUnit("job", block, []string{"DB=" + v})
		if want := "env DB holds a secret reference, which is resolved at start only: restart berth to apply it"; err == nil || err.Error() != want {
			t.Errorf("changed block with %q: %v, want %q", v, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "prod") {
			t.Errorf("the error names the reference: %v", err)
		}
	}
}

// TestSetUnits: what a reload applied is what Env gives from then on — the next reload of an unchanged block
// and every refresh read it, not the block berth started with — and a removed unit's entry is gone.
func TestSetUnits(t *testing.T) {
	r := mustNew(t, Config{}, nil)
	r.SetUnits(map[string][]string{"job": {"MODE=fast"}}, nil) // before Resolve: nothing to update
	res, err := r.Resolve(t.Context(), Env{Shared: []string{"PATH=/bin"}, Units: map[string][]string{"job": {"MODE=slow"}, "gone": {"X=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	r.SetUnits(map[string][]string{"job": {"MODE=fast"}, "added": {"ADDED=yes"}}, []string{"gone"})
	e := r.Env()
	if got := e.Units["job"]; !slices.Equal(got, []string{"MODE=fast"}) {
		t.Errorf("job: %v, want the reloaded MODE=fast", got)
	}
	if got := e.Units["added"]; !slices.Equal(got, []string{"ADDED=yes"}) {
		t.Errorf("added: %v", got)
	}
	if _, ok := e.Units["gone"]; ok {
		t.Errorf("a removed unit keeps its entry: %v", e.Units)
	}
	if own, err := e.ReloadedUnit("job", []string{"MODE=fast"}, []string{"MODE=fast"}); err != nil || !slices.Equal(own, []string{"MODE=fast"}) {
		t.Errorf("unchanged block after a reload: %v, %v; want MODE=fast", own, err)
	}
	if got := res.Env.Units["job"]; !slices.Equal(got, []string{"MODE=slow"}) {
		t.Errorf("SetUnits changed Resolve's result: %v", got)
	}
	r.SetUnits(map[string][]string{"job": nil}, nil) // the block was emptied
	if l, ok := r.Env().Units["job"]; ok {
		t.Errorf("an emptied block keeps %v", l)
	}
}

// New takes the secrets block's rules as config does: zero is the default, the pool is 1 to MaxConcurrency.
func TestNewOptions(t *testing.T) {
	r := mustNew(t, Config{}, nil)
	if r.cfg.Timeout != DefaultTimeout || r.cfg.Concurrency != DefaultConcurrency || r.cfg.Jitter != 0 {
		t.Errorf("defaults: timeout %s, concurrency %d, jitter %s", r.cfg.Timeout, r.cfg.Concurrency, r.cfg.Jitter)
	}
	mustNew(t, Config{Concurrency: MaxConcurrency}, nil)
	for _, cfg := range []Config{{Timeout: -1}, {Jitter: -1}, {Concurrency: -1}, {Concurrency: MaxConcurrency + 1}} {
		if _, err := New(cfg, nil); exitCode(err) != ExitConfig {
			t.Errorf("%+v: want a config error (78), have %v", cfg, err)
		}
	}
}
