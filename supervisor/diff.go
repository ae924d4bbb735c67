package supervisor

import "reflect"

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
