package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestSSMPathBench compares `berth run` resolving a `secret { ssm_path }` block of 5 and of 50 SecureString
// parameters with `chamber exec` reading the same parameters (chamber's SSM store: GetParametersByPath with
// decryption, paginated, then exec), both against one moto_server, directly and through a proxy adding 20 ms
// per request (the round trip to an AWS region). Runs are interleaved pairs, the order alternating, so a
// burst of load on the shared machine hits both. Run by bench/footprint.sh with BERTH_BENCH=1,
// CHAMBER=<chamber binary> and BERTH_BIN=<release-like berth>; BERTH_BENCH_OUT receives a markdown table.
// The environment of both is the same explicit list (moto's endpoint and dummy credentials, no shared config
// files): nothing of the machine's own (AWS_CA_BUNDLE, for one, costs every SDK start 4.5 ms of parsing here).
// A last table times each tool's start-up alone (`chamber version`, `berth version`, `berth run -- /bin/true`),
// so that berth's extra time splits into start-up and supervision on one side and the resolution on the other.
func TestSSMPathBench(t *testing.T) {
	if os.Getenv("BERTH_BENCH") != "1" {
		t.Skip("set BERTH_BENCH=1 (bench/footprint.sh)")
	}
	chamber := os.Getenv("CHAMBER")
	if chamber == "" {
		t.Skip("set CHAMBER to a chamber binary (bench/footprint.sh builds one)")
	}
	berth := os.Getenv("BERTH_BIN")
	if berth == "" {
		berth = harness.Berth(t)
	}
	pairs := 20
	a := secStartAWS(t)
	slow := harness.StartAWSProxy(t, a.moto.URL)
	slow.SetDelay(20 * time.Millisecond)
	dir := t.TempDir()
	sizes := []int{5, 50}
	for _, n := range sizes {
		for i := range n {
			a.Param(t, fmt.Sprintf("/bench%d/param%02d", n, i), fmt.Sprintf("value-%d-%d", n, i), true)
		}
		secWriteFile(t, filepath.Join(dir, fmt.Sprintf("ssm%d.hcl", n)),
			fmt.Sprintf("secret \"app\" {\n  ssm_path   = \"/bench%d\"\n  env_prefix = \"APP_\"\n}\n", n))
	}
	run := func(env []string, argv ...string) (time.Duration, string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
		}
		return d, stderr.String()
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "## Secrets on the critical path: `ssm_path` vs chamber (median of %d interleaved pairs)\n\n", pairs)
	tbl.WriteString("`chamber exec benchN -- /bin/true` (chamber's SSM store: GetParametersByPath with decryption, 10 per page, " +
		"then exec) against `berth run -config c.hcl -- /bin/true` with `secret \"app\" { ssm_path = \"/benchN\", env_prefix = \"APP_\" }` " +
		"(the same calls, recursive), one moto_server, wall time of the whole process. \"resolve\" is berth's debug-logged " +
		"resolution (AWS configuration, credentials, the pages); \"aws config\" the part of it before the first request.\n\n")
	tbl.WriteString("| parameters | endpoint | chamber ms | berth ms | berth ÷ chamber | berth resolve ms | berth aws config ms |\n|---|---|---|---|---|---|---|\n")
	var fastChamber, fastBerth time.Duration // the 5-parameter moto row, for the start-up split below
	for _, e := range []struct{ name, url string }{{"moto", a.moto.URL}, {"moto + 20 ms per request", slow.URL}} {
		env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, a.env(e.url)...)
		for _, n := range sizes {
			var ch, be, ratio, resolve, awsLoad []time.Duration
			cfg := filepath.Join(dir, fmt.Sprintf("ssm%d.hcl", n))
			for i := 0; i <= pairs; i++ {
				var c, b time.Duration
				var log string
				runBerth := func() {
					b, log = run(env, berth, "run", "-control-socket", "off", "-log-level", "debug", "-config", cfg, "--", "/bin/true")
				}
				if i%2 == 0 {
					c, _ = run(env, chamber, "exec", fmt.Sprintf("bench%d", n), "--", "/bin/true")
					runBerth()
				} else {
					runBerth()
					c, _ = run(env, chamber, "exec", fmt.Sprintf("bench%d", n), "--", "/bin/true")
				}
				if i == 0 {
					continue // warm-up
				}
				ch, be, ratio = append(ch, c), append(be, b), append(ratio, b*1000/c)
				resolve = append(resolve, logDuration(t, log, "secrets resolved"))
				awsLoad = append(awsLoad, logDuration(t, log, "aws clients ready"))
			}
			if e.url == a.moto.URL && n == sizes[0] {
				fastChamber, fastBerth = secMedian(ch), secMedian(be)
			}
			fmt.Fprintf(&tbl, "| %d | %s | %.1f | %.1f | %.2f | %.1f | %.1f |\n", n, e.name, secMs(secMedian(ch)), secMs(secMedian(be)),
				float64(secMedian(ratio))/1000, secMs(secMedian(resolve)), secMs(secMedian(awsLoad)))
		}
	}
	// The start-up alone, no AWS call, in the same environment: what each tool pays besides the resolution.
	// chamber execs the command in place (unix.Exec on Linux); berth starts it as a child, waits and exits with
	// its code. Every row includes this test's own fork, exec and wait once.
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, a.env(a.moto.URL)...)
	startup := [][]string{{chamber, "version"}, {berth, "version"}, {berth, "run", "-control-socket", "off", "--", "/bin/true"}}
	took := make([][]time.Duration, len(startup))
	for i := 0; i <= pairs; i++ {
		for k := range startup {
			if i%2 == 1 {
				k = len(startup) - 1 - k
			}
			d, _ := run(env, startup[k]...)
			if i > 0 { // round 0 warms up
				took[k] = append(took[k], d)
			}
		}
	}
	chamberUp, berthUp, berthRun := secMedian(took[0]), secMedian(took[1]), secMedian(took[2])
	fmt.Fprintf(&tbl, "\nStart-up alone, no AWS call, the same environment (median of %d interleaved rounds):\n\n", pairs)
	tbl.WriteString("| command | what it measures | ms |\n|---|---|---|\n")
	fmt.Fprintf(&tbl, "| `chamber version` | chamber's start-up: the Go runtime and its packages' initialisation | %.1f |\n", secMs(chamberUp))
	fmt.Fprintf(&tbl, "| `berth version` | berth's start-up, the same as chamber's row | %.1f |\n", secMs(berthUp))
	fmt.Fprintf(&tbl, "| `berth run -control-socket off -- /bin/true` | berth's start-up and its own start path: signal handlers, the reaper, fork, exec and wait of the child, exit | %.1f |\n", secMs(berthRun))
	startDiff, diff := berthRun-chamberUp, fastBerth-fastChamber
	rest := fmt.Sprintf("which leaves %.1f ms for the resolution", secMs(diff-startDiff))
	if diff <= startDiff {
		rest = "the whole difference and more: berth's resolution itself is no slower than chamber's"
	}
	fmt.Fprintf(&tbl, "\nchamber execs the command in place (`unix.Exec` on Linux: chamber's cmd/exec_unix.go); berth starts it as "+
		"a child and waits, as PID 1 must. In the 5-parameter moto row berth takes %.1f ms more than chamber. "+
		"Start-up and supervision account for %.1f ms (`berth run -- /bin/true` against `chamber version`; of it, "+
		"%+.1f ms is the two binaries' own start-up, and chamber's in-place exec of /bin/true is not in its row): %s. "+
		"The start-up part is the same in milliseconds whatever the resolution costs, so the ratio goes towards "+
		"1 with 50 parameters and with 20 ms per request.\n\n",
		secMs(diff), secMs(startDiff), secMs(berthUp-chamberUp), rest)
	t.Log("\n" + tbl.String())
	if p := os.Getenv("BERTH_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(tbl.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// logDuration is the duration= field of the first berth log line containing msg.
func logDuration(t *testing.T, log, msg string) time.Duration {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "duration="); ok {
				v = strings.Trim(v, `"`)
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				return d
			}
		}
	}
	t.Fatalf("no %q line with a duration in:\n%s", msg, log)
	return 0
}
