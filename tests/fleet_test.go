package tests

// Fleet simulation (make bench-fleet, bench/fleet.sh): many berths at once against one real Consul agent
// (TestFleetConsul, fleet_consul_test.go) and start-up herds against a throttled SSM (TestFleetHerd,
// fleet_herd_test.go); this file has what both use. Both
// are benchmarks, skipped unless BERTH_BENCH_FLEET=1; each appends a markdown section to BERTH_BENCH_OUT.
// They still assert what a fleet relies on (everything converges, no polling, no failed start), so a run
// that produced figures is a run where those held.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// fleetBench skips a fleet benchmark unless BERTH_BENCH_FLEET=1 (bench/fleet.sh).
func fleetBench(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_BENCH_FLEET") != "1" {
		t.Skip("fleet benchmark: set BERTH_BENCH_FLEET=1 (make bench-fleet)")
	}
}

// fleetReport appends a markdown section to BERTH_BENCH_OUT (and logs it).
func fleetReport(t *testing.T, md string) {
	t.Helper()
	t.Log("\n" + md)
	p := os.Getenv("BERTH_BENCH_OUT")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(md); err != nil {
		t.Fatal(err)
	}
}

// fleetProc is one berth of a fleet: its own process group, output to a file.
type fleetProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	code    int
	ended   time.Time
	port    int    // the registered service port: the instance's identity in peer lists
	peers   string // its peers file
	log     string
	started time.Time
}

func fleetStart(t *testing.T, env []string, log string, argv ...string) (*fleetProc, error) {
	out, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	p := &fleetProc{done: make(chan struct{}), log: log}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		p.ended = time.Now()
		p.code = harness.ExitCode(p.cmd.ProcessState)
		close(p.done)
	}()
	return p, nil
}

// exitedAt is when the process was seen to exit (after done is closed).
func (p *fleetProc) exitedAt() time.Time { return p.ended }

func (p *fleetProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// fleetStopAll stops what is still running: SIGTERM (berth deregisters first), SIGKILL to the group after 20s.
func fleetStopAll(procs []*fleetProc) {
	for _, p := range procs {
		if !p.exited() {
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.After(20 * time.Second)
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// fleetCPU is utime+stime of pid (clock ticks of USER_HZ, 100 on Linux).
func fleetCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// fields after the parenthesised command name: state is field 3, utime 14, stime 15
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// fleetMem is the summed RSS and PSS of pids, in KiB (smaps_rollup; a pid gone meanwhile counts 0).
func fleetMem(pids []int) (rss, pss int64) {
	for _, pid := range pids {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 2 {
				continue
			}
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			switch fs[0] {
			case "Rss:":
				rss += v
			case "Pss:":
				pss += v
			}
		}
		f.Close()
	}
	return rss, pss
}

// fleetPercentile is the p-th percentile (0..100) of ds, nearest rank.
func fleetPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
