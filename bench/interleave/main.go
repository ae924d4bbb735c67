package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

type result struct {
	Command   string  `json:"command"`
	WallMs    float64 `json:"wall_ms"`     // median
	WallP25Ms float64 `json:"wall_p25_ms"` // 25th percentile
	WallP75Ms float64 `json:"wall_p75_ms"`
	UserMs    float64 `json:"user_ms"`
	SysMs     float64 `json:"sys_ms"`
	MaxRSSKiB int64   `json:"max_rss_kib"` // median of the peaks under /usr/bin/time
	MinFlt    int64   `json:"minor_faults"`
	Runs      int     `json:"runs"`
}

func main() {
	runs := flag.Int("runs", 100, "measured rounds")
	warmup := flag.Int("warmup", 10, "rounds run first and not measured")
	rssRuns := flag.Int("rss-runs", 20, "rounds under /usr/bin/time for the peak RSS and page faults")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: interleave [-runs N] [-warmup N] -- CMD...")
		os.Exit(2)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	type sample struct {
		wall, user, sys time.Duration
	}
	samples := make([][]sample, len(cmds))
	order := make([]int, len(cmds))
	for round := 0; round < *warmup+*runs; round++ {
		for i := range order {
			order[i] = i
		}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			argv := strings.Fields(cmds[i])
			path := argv[0]
			start := time.Now()
			pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}})
			if err != nil {
				fmt.Fprintf(os.Stderr, "interleave: %s: %v\n", cmds[i], err)
				os.Exit(1)
			}
			var ws syscall.WaitStatus
			var ru syscall.Rusage
			if _, err := syscall.Wait4(pid, &ws, 0, &ru); err != nil {
				fmt.Fprintf(os.Stderr, "interleave: wait %s: %v\n", cmds[i], err)
				os.Exit(1)
			}
			wall := time.Since(start)
			if ws.ExitStatus() != 0 {
				fmt.Fprintf(os.Stderr, "interleave: %s exited %d\n", cmds[i], ws.ExitStatus())
				os.Exit(1)
			}
			if round >= *warmup {
				samples[i] = append(samples[i], sample{wall: wall, user: time.Duration(ru.Utime.Nano()),
					sys: time.Duration(ru.Stime.Nano())})
			}
		}
	}
	// Peak RSS and minor faults: /usr/bin/time -f "%M %R" around each command, interleaved as well.
	rss := make([][]int64, len(cmds))
	flt := make([][]int64, len(cmds))
	tf, err := os.CreateTemp("", "interleave-time-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tf.Close()
	defer os.Remove(tf.Name())
	for round := 0; round < *rssRuns; round++ {
		for i := range cmds {
			argv := append([]string{"/usr/bin/time", "-f", "%M %R", "-o", tf.Name()}, strings.Fields(cmds[i])...)
			pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}})
			if err != nil {
				fmt.Fprintf(os.Stderr, "interleave: /usr/bin/time %s: %v\n", cmds[i], err)
				os.Exit(1)
			}
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				fmt.Fprintf(os.Stderr, "interleave: /usr/bin/time %s: exit %d (%v)\n", cmds[i], ws.ExitStatus(), err)
				os.Exit(1)
			}
			b, err := os.ReadFile(tf.Name())
			var m, r int64
			if _, err2 := fmt.Sscan(string(b), &m, &r); err != nil || err2 != nil {
				fmt.Fprintf(os.Stderr, "interleave: /usr/bin/time output %q: %v %v\n", b, err, err2)
				os.Exit(1)
			}
			rss[i], flt[i] = append(rss[i], m), append(flt[i], r)
		}
	}
	median := func(v []int64) int64 {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := make([]result, len(cmds))
	for i, s := range samples {
		pick := func(f func(sample) int64, q float64) int64 {
			v := make([]int64, len(s))
			for j := range s {
				v[j] = f(s[j])
			}
			slices.Sort(v)
			return v[int(q*float64(len(v)-1)+0.5)]
		}
		ms := func(f func(sample) time.Duration, q float64) float64 {
			return float64(pick(func(x sample) int64 { return int64(f(x)) }, q)) / 1e6
		}
		out[i] = result{Command: cmds[i], Runs: len(s),
			WallMs:    ms(func(x sample) time.Duration { return x.wall }, 0.5),
			WallP25Ms: ms(func(x sample) time.Duration { return x.wall }, 0.25),
			WallP75Ms: ms(func(x sample) time.Duration { return x.wall }, 0.75),
			UserMs:    ms(func(x sample) time.Duration { return x.user }, 0.5),
			SysMs:     ms(func(x sample) time.Duration { return x.sys }, 0.5),
			MaxRSSKiB: median(rss[i]),
			MinFlt:    median(flt[i])}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
