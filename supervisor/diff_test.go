package supervisor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDiff(t *testing.T) {
	job := func(name string, argv ...string) JobSpec {
		return JobSpec{Spec: Spec{Name: name, Argv: argv, Umask: -1}, Type: Service, Restart: RestartAlways}
	}
	withEnv := func(j JobSpec, env ...string) JobSpec { j.Env = env; return j }
	withHook := func(j JobSpec) JobSpec { j.PostStop = &Hook{Argv: []string{"x"}, Timeout: time.Second}; return j }
	a, b, c := job("a", "a"), job("b", "b"), job("c", "c")
	for _, tc := range []struct {
		name        string
		prev, next  []JobSpec
		wantChanged []string
		wantRemoved []string
	}{
		{"nothing", nil, nil, nil, nil},
		{"same", []JobSpec{a, b}, []JobSpec{a, b}, nil, nil},
		{"reordered", []JobSpec{a, b}, []JobSpec{b, a}, nil, nil},
		{"added", []JobSpec{a}, []JobSpec{a, b}, []string{"b"}, nil},
		{"removed", []JobSpec{a, b, c}, []JobSpec{b}, nil, []string{"a", "c"}},
		{"command changed", []JobSpec{a}, []JobSpec{job("a", "a", "-v")}, []string{"a"}, nil},
		{"env changed", []JobSpec{withEnv(a, "X=1")}, []JobSpec{withEnv(a, "X=2")}, []string{"a"}, nil},
		{"hook added", []JobSpec{a}, []JobSpec{withHook(a)}, []string{"a"}, nil},
		{"all at once", []JobSpec{a, b}, []JobSpec{job("b", "b2"), c}, []string{"b", "c"}, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, removed := Diff(tc.prev, tc.next)
			var have []string
			for _, j := range changed {
				have = append(have, j.Name)
			}
			if diff := cmp.Diff(tc.wantChanged, have); diff != "" {
				t.Errorf("changed -want +have:\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRemoved, removed); diff != "" {
				t.Errorf("removed -want +have:\n%s", diff)
			}
		})
	}
}
