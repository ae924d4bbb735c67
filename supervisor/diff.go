package supervisor

import (
	"fmt"
	"reflect"
)

// Diff is what a reload asks of UpdateJobs: changed holds the jobs of next that prev lacks or holds
// differently (in next's order), removed the names of prev's jobs that next lacks (in prev's order). Jobs
// are compared whole, Env included, so a caller that resolves secrets into Env compares the specs as the
// file wrote them and fills Env in afterwards.
func Diff(prev, next []JobSpec) (changed []JobSpec, removed []string) {
	old := make(map[string]JobSpec, len(prev))
	for _, j := range prev {
		old[j.Name] = j
	}
	kept := make(map[string]bool, len(next))
	for _, j := range next {
		kept[j.Name] = true
		if o, ok := old[j.Name]; !ok || !reflect.DeepEqual(o, j) {
			changed = append(changed, j)
		}
	}
	for _, j := range prev {
		if !kept[j.Name] {
			removed = append(removed, j.Name)
		}
	}
	return changed, removed
}

// GatedError refuses a reload that would change, add or remove a job with a GateConfig (singleton, once):
// its Gate is built at start only.
type GatedError struct{ Job string }

func (e *GatedError) Error() string {
	return fmt.Sprintf("job %s uses singleton or once: restart berth to change it", e.Job)
}

// PlanReload is what a reload asks of UpdateJobs: Diff of the running configuration's jobs (prev) and the
// reloaded file's (next), both with their env blocks as written, refused with a *GatedError when a job it
// would change, add or remove has a GateConfig in prev or next (Diff compares GateConfig too, so a changed
// singleton or once setting is a change).
func PlanReload(prev, next []JobSpec) (changed []JobSpec, removed []string, err error) {
	changed, removed = Diff(prev, next)
	gated := map[string]bool{}
	for _, js := range [][]JobSpec{prev, next} {
		for _, j := range js {
			if j.GateConfig != nil {
				gated[j.Name] = true
			}
		}
	}
	for _, j := range changed {
		if gated[j.Name] {
			return nil, nil, &GatedError{Job: j.Name}
		}
	}
	for _, name := range removed {
		if gated[name] {
			return nil, nil, &GatedError{Job: name}
		}
	}
	return changed, removed, nil
}
