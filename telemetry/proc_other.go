//go:build !linux

package telemetry

import "time"

type usage struct {
	rss        int64
	cpuPercent float64
	cpuValid   bool
}

// procSampler has nothing to sample outside Linux: there is no /proc.
type procSampler struct{}

func newProcSampler() *procSampler { return &procSampler{} }

func (s *procSampler) sample(map[string]int, time.Time) (map[string]usage, error) { return nil, nil }

// processSnapshots: the process families are read from /proc, on Linux only.
func processSnapshots() []promSnapshot { return nil }
