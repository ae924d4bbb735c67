package supervisor

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/field"
	"github.com/google/go-cmp/cmp"
)

// problems lists err's field errors as "BLOCK PATH: MSG".
func problems(err error) []string {
	var out []string
	for _, fe := range field.All(err) {
		out = append(out, fe.Block+" "+fe.Path+": "+fe.Msg)
	}
	return out
}

func TestJobSpecDefaultsAndValidate(t *testing.T) {
	job := func(mod func(*JobSpec)) JobSpec {
		j := JobSpec{Spec: Spec{Name: "j", Argv: []string{"x"}}}
		mod(&j)
		return j.WithDefaults()
	}
	if j := job(func(*JobSpec) {}); j.Type != Service || j.Restart != RestartAlways {
		t.Errorf("defaults: %s/%s, want service/always", j.Type, j.Restart)
	}
	if j := job(func(j *JobSpec) { j.Every = time.Hour }); j.Type != Oneshot || j.Restart != RestartNever {
		t.Errorf("periodic defaults: %s/%s, want oneshot/never", j.Type, j.Restart)
	}
	for _, tc := range []struct {
		name string
		mod  func(*JobSpec)
		want []string
	}{
		{"good", func(*JobSpec) {}, nil},
		{"main", func(j *JobSpec) { j.Name = MainName }, []string{`job "main" name: job name "main" is reserved for the main block`}},
		{"no command", func(j *JobSpec) { j.Argv = nil }, []string{`job "j" command: command must not be empty`}},
		{"bad type", func(j *JobSpec) { j.Type = "daemon" }, []string{`job "j" type: type: "daemon" is not one of ["oneshot" "service"]`}},
		{"periodic service", func(j *JobSpec) { j.Type, j.Every = Service, time.Minute }, []string{`job "j" every: every: only a oneshot job can be periodic`}},
		{"oneshot always", func(j *JobSpec) { j.Type, j.Restart = Oneshot, RestartAlways }, []string{`job "j" restart: restart: a oneshot job cannot restart "always" (use type = "service")`}},
		{"bad restart", func(j *JobSpec) { j.Restart = "sometimes" }, []string{`job "j" restart: restart: "sometimes" is not one of ["never" "on-failure" "always"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := job(tc.mod).Validate()
			if diff := cmp.Diff(tc.want, problems(err)); diff != "" {
				t.Errorf("-want +have:\n%s", diff)
			}
		})
	}
}

func TestValidateGraph(t *testing.T) {
	job := func(name string, after ...string) JobSpec {
		return JobSpec{Spec: Spec{Name: name, Argv: []string{"x"}}, After: after}
	}
	for _, tc := range []struct {
		name      string
		jobs      []JobSpec
		mainAfter []string
		want      []string
	}{
		{"chain", []JobSpec{job("a"), job("b", "a")}, []string{"a", "b"}, nil},
		{"unknown and main", []JobSpec{job("a", "zz", "main")}, []string{"a", "a"}, []string{
			`job "a" after.0: after: no job named "zz"`,
			`job "a" after.1: after: "main" cannot be waited for; jobs start before or beside the main command`,
			`main after.1: after: "a" listed twice`,
		}},
		{"self", []JobSpec{job("a", "a")}, nil, []string{`job "a" after.0: after: cycle in after: a -> a`}},
		{"cycle", []JobSpec{job("a", "c"), job("b", "a"), job("c", "b")}, nil, []string{`job "b" after.0: after: cycle in after: a -> c -> b -> a`}},
		{"duplicate", []JobSpec{job("a"), job("a")}, nil, []string{`job "a" name: duplicate job "a"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, problems(ValidateGraph(tc.jobs, tc.mainAfter))); diff != "" {
				t.Errorf("-want +have:\n%s", diff)
			}
		})
	}
}

// TestPlanReload: a reload may change anything but a job behind a gate, whose Gate is built at start only.
func TestPlanReload(t *testing.T) {
	type lock struct{ Key string } // stands for discovery.LockConfig: the supervisor only compares it
	job := func(name string, gate any, argv ...string) JobSpec {
		return JobSpec{Spec: Spec{Name: name, Argv: argv}, Type: Service, Restart: RestartAlways, GateConfig: gate}
	}
	plain, sched := job("web", nil, "web"), job("sched", &lock{"k"}, "sched")
	for _, tc := range []struct {
		name        string
		prev, next  []JobSpec
		wantChanged []string
		wantGated   string
	}{
		{"plain job changed beside a gated one", []JobSpec{plain, sched}, []JobSpec{job("web", nil, "web", "-v"), sched}, []string{"web"}, ""},
		{"gated job's command changed", []JobSpec{sched}, []JobSpec{job("sched", &lock{"k"}, "sched", "-v")}, nil, "sched"},
		{"gate setting changed", []JobSpec{sched}, []JobSpec{job("sched", &lock{"k2"}, "sched")}, nil, "sched"},
		{"gate added", []JobSpec{plain}, []JobSpec{job("web", &lock{"k"}, "web")}, nil, "web"},
		{"gate removed", []JobSpec{sched}, []JobSpec{job("sched", nil, "sched")}, nil, "sched"},
		{"gated job added", nil, []JobSpec{sched}, nil, "sched"},
		{"gated job removed", []JobSpec{plain, sched}, []JobSpec{plain}, nil, "sched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, _, err := PlanReload(tc.prev, tc.next)
			var ge *GatedError
			switch {
			case tc.wantGated == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantGated != "" && (!errors.As(err, &ge) || ge.Job != tc.wantGated):
				t.Fatalf("want a refusal naming %s, have %v", tc.wantGated, err)
			case tc.wantGated != "":
				if want := "job " + tc.wantGated + " uses singleton or once: restart berth to change it"; err.Error() != want {
					t.Errorf("message: %q, want %q", err, want)
				}
				return
			}
			var names []string
			for _, j := range changed {
				names = append(names, j.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.wantChanged, ",") {
				t.Errorf("changed %v, want %v", names, tc.wantChanged)
			}
		})
	}
}
