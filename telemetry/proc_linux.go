package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux architecture berth
// ships for (the kernel fixes it for the ABI; prometheus/procfs assumes the same).
const clockTicks = 100

// procStat is what the sampler uses of /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks uint64 // utime + stime + cutime + cstime: the process, and its children it has waited for
	rss   int64  // resident pages
}

// parseStat parses the content of /proc/PID/stat. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, errors.New("stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state): field N is fields[N-3].
	if len(fields) < 22 {
		return st, fmt.Errorf("stat: %d fields after the command name, want at least 22", len(fields))
	}
	num := func(n int) (int64, error) {
		v, err := strconv.ParseInt(string(fields[n-3]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %d: %w", n, err)
		}
		return v, nil
	}
	ppid, err := num(4)
	if err != nil {
		return st, err
	}
	st.ppid = int(ppid)
	for _, n := range []int{14, 15, 16, 17} {
		v, err := num(n)
		if err != nil {
			return st, err
		}
		if v > 0 {
			st.ticks += uint64(v)
		}
	}
	if st.rss, err = num(24); err != nil {
		return st, err
	}
	return st, nil
}

// usage is a job's process-tree use in one sample.
type usage struct {
	rss        int64   // bytes
	cpuPercent float64 // percent of one core since the previous sample of the same root pid
	cpuValid   bool    // false on the first sample of a root pid
}

type cpuMark struct {
	pid   int
	ticks uint64
	at    time.Time
}

// procSampler samples process trees from /proc. It is used by one goroutine (Metrics.Run).
type procSampler struct {
	proc string
	page int64
	prev map[string]cpuMark // by job
}

func newProcSampler() *procSampler {
	return &procSampler{proc: "/proc", page: int64(os.Getpagesize()), prev: make(map[string]cpuMark)}
}

// sample returns the usage of each job's tree: the root pid and all its descendants (by ppid) at this
// moment. A descendant that was re-parented away from the tree (to berth, the subreaper) no longer counts.
// RSS is summed over processes, so shared pages count once per process (as in ps and top).
func (s *procSampler) sample(jobs map[string]int, now time.Time) (map[string]usage, error) {
	out := make(map[string]usage, len(jobs))
	if len(jobs) == 0 {
		clear(s.prev)
		return out, nil
	}
	ents, err := os.ReadDir(s.proc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.proc, err)
	}
	stats := make(map[int]procStat, len(ents))
	children := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(s.proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	for job, root := range jobs {
		if _, ok := stats[root]; !ok {
			delete(s.prev, job)
			continue
		}
		var u usage
		var ticks uint64
		queue := []int{root}
		seen := map[int]bool{root: true}
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			st := stats[pid]
			ticks += st.ticks
			u.rss += st.rss * s.page
			for _, c := range children[pid] {
				if !seen[c] {
					seen[c] = true
					queue = append(queue, c)
				}
			}
		}
		if p, ok := s.prev[job]; ok && p.pid == root && now.After(p.at) {
			if ticks > p.ticks { // a tree that lost an unwaited child can go backwards: report 0 then
				u.cpuPercent = float64(ticks-p.ticks) / clockTicks / now.Sub(p.at).Seconds() * 100
			}
			u.cpuValid = true
		}
		s.prev[job] = cpuMark{pid: root, ticks: ticks, at: now}
		out[job] = u
	}
	for job := range s.prev {
		if _, ok := jobs[job]; !ok {
			delete(s.prev, job)
		}
	}
	return out, nil
}
