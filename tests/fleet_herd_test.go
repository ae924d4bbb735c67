package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/tests/harness"
)

// SSM's default throughput quota for GetParameter, GetParameters and GetParametersByPath (shared), in
// transactions per second; AWS publishes no burst, so the bucket holds one second's worth.
const (
	fleetSSMRate  = 40
	fleetSSMBurst = 40
)

// fleetThrottle makes proxy enforce SSM's default quota on its parameter reads.
func fleetThrottle(proxy *harness.AWSProxy) *harness.Quota {
	return proxy.Throttle(fleetSSMRate, fleetSSMBurst, "AmazonSSM.GetParameters", "AmazonSSM.GetParametersByPath")
}

// fleetHerdResult is one herd: each task's start delay from the herd's start, and the failures.
type fleetHerdResult struct {
	name      string
	n         int
	delays    []time.Duration // of the tasks that started
	asked     []time.Duration // when each task was launched, from the herd's start (nil: all at once)
	failed    int
	firstErr  string
	spawn     time.Duration // launching every task
	wall      time.Duration // until the last task started or failed
	served    int64
	throttled int64
	mem       string
}

// fleetIdeal is the start delay of the k-th task (1-based) of a herd that all asks at once, if the quota
// were used perfectly: the bucket's burst at once, then one every 1/rate.
func fleetIdeal(k int) time.Duration {
	if k <= fleetSSMBurst {
		return 0
	}
	return time.Duration(float64(k-fleetSSMBurst) / fleetSSMRate * float64(time.Second))
}

// fleetIdealFor is the start delays if the quota were used perfectly for tasks launched at the given times
// (from the herd's start): each served at its launch, or as soon as the bucket next holds a token.
func fleetIdealFor(launched []time.Duration) []time.Duration {
	s := slices.Clone(launched)
	slices.Sort(s)
	out := make([]time.Duration, len(s))
	tokens, last := float64(fleetSSMBurst), 0.0
	for i, a := range s {
		at := a.Seconds()
		if have := min(fleetSSMBurst, tokens+(max(at, last)-last)*fleetSSMRate); have >= 1 {
			at = max(at, last)
			tokens = have - 1
		} else {
			at = max(at, last) + (1-have)/fleetSSMRate
			tokens = 0
		}
		last = at
		out[i] = time.Duration(at * float64(time.Second))
	}
	return out
}

// TestFleetHerd: 1,000 tasks start at once, each resolving one SecureString SSM reference
// (X=ssm:/fleet/db-password: one GetParameters call), against moto behind a proxy that enforces SSM's
// default 40 TPS quota. Measured: failed starts and the p50/p99 start delay against the quota's ideal, for
// 1,000 real `berth -- /bin/true` processes, for 1,000 secrets.Resolvers in one process with berth's
// defaults, and for plain aws-sdk-go-v2 clients with the SDK's own retryers for comparison.
func TestFleetHerd(t *testing.T) {
	fleetBench(t)
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BERTH_FLEET_HERD")); err == nil && v >= 10 { // a quick run while working on it
		n = v
	}
	const value = "fleet-db-password-9c41e7-never-logged"
	a := secStartAWS(t)
	a.Param(t, "/fleet/db-password", value, true)
	proxy := harness.StartAWSProxy(t, a.moto.URL)
	bin := harness.Berth(t)
	awsCfg := harness.AWSClients(t, proxy.URL).Config
	names := []string{"/fleet/db-password"}

	// settle lets the bucket fill and moto go idle between herds.
	settle := func() *harness.Quota {
		proxy.SetInject(nil)
		time.Sleep(2 * time.Second)
		return fleetThrottle(proxy)
	}

	var results []fleetHerdResult

	// 1. Real processes: berth -- /bin/true, zero config, defaults.
	{
		q := settle()
		dir := t.TempDir()
		env := a.env(proxy.URL, "X=ssm:/fleet/db-password")
		procs := make([]*fleetProc, 0, n)
		var mu sync.Mutex
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			fleetStopAll(procs)
		})
		var peakRSS, peakPSS int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() { // the herd's memory while it waits, every 250ms
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
				var pids []int
				mu.Lock()
				for _, p := range procs {
					if !p.exited() {
						pids = append(pids, p.cmd.Process.Pid)
					}
				}
				mu.Unlock()
				rss, pss := fleetMem(pids)
				peakRSS, peakPSS = max(peakRSS, rss), max(peakPSS, pss)
			}
		}()
		t0 := time.Now()
		for i := range n {
			p, err := fleetStart(t, env, filepath.Join(dir, strconv.Itoa(i)+".log"), bin, "-control-socket", "off", "--", "/bin/true")
			if err != nil {
				t.Fatalf("start task %d: %v", i, err)
			}
			mu.Lock()
			procs = append(procs, p)
			mu.Unlock()
		}
		r := fleetHerdResult{name: fmt.Sprintf("%d × `berth -- /bin/true` (processes)", n), n: n, spawn: time.Since(t0)}
		for _, p := range procs {
			select {
			case <-p.done:
			case <-time.After(5 * time.Minute):
				t.Fatal("a task did not end within 5 minutes")
			}
		}
		close(stop)
		<-sampled
		for i, p := range procs {
			out, _ := os.ReadFile(p.log)
			if strings.Contains(string(out), value) {
				t.Errorf("task %d: berth's output holds the secret value", i)
			}
			if p.code != 0 {
				r.failed++
				if r.firstErr == "" {
					r.firstErr = fmt.Sprintf("exit %d: %s", p.code, strings.TrimSpace(string(out)))
				}
				continue
			}
			r.delays = append(r.delays, p.exitedAt().Sub(t0))
		}
		for _, p := range procs {
			r.asked = append(r.asked, p.started.Sub(t0))
		}
		r.wall = time.Since(t0)
		r.served, r.throttled = q.Served(), q.Throttled()
		r.mem = fmt.Sprintf("peak RSS %.0f MiB, PSS %.0f MiB", float64(peakRSS)/1024, float64(peakPSS)/1024)
		results = append(results, r)
	}

	// inProcess runs n goroutines, each its own task (own SDK clients, own connections), all at once.
	inProcess := func(name string, n int, task func(ctx context.Context) error) {
		q := settle()
		r := fleetHerdResult{name: name, n: n}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ctx := harness.Context(t)
		gate := make(chan struct{})
		t0 := time.Now()
		for range n {
			wg.Go(func() {
				<-gate
				err := task(ctx)
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					r.failed++
					if r.firstErr == "" {
						r.firstErr = err.Error()
					}
					return
				}
				r.delays = append(r.delays, d)
			})
		}
		r.spawn = time.Since(t0)
		close(gate)
		wg.Wait()
		r.wall = time.Since(t0)
		r.served, r.throttled = q.Served(), q.Throttled()
		if strings.Contains(r.firstErr, value) {
			t.Errorf("%s: an error holds the secret value", name)
			r.firstErr = "(error held the value)"
		}
		results = append(results, r)
	}

	// 2. berth's resolver, in-process: secrets.New with defaults (SDK retryer off, berth's own back-off).
	resolver := func(ctx context.Context) error {
		cfg := awsCfg.Copy()
		r, err := secrets.New(secrets.Config{AWS: &cfg}, nil)
		if err != nil {
			return err
		}
		res, err := r.Resolve(ctx, secrets.Env{Shared: []string{"X=ssm:/fleet/db-password"}})
		if err == nil && res.Env.Shared[0] != "X="+value {
			return fmt.Errorf("wrong value resolved (%d bytes)", len(res.Env.Shared[0]))
		}
		return err
	}
	inProcess(fmt.Sprintf("%d × secrets.Resolver, defaults (in one process)", n), n, resolver)
	inProcess(fmt.Sprintf("%d × secrets.Resolver, defaults (a smaller herd)", n/5), n/5, resolver)
	inProcess(fmt.Sprintf("%d × secrets.Resolver, defaults (a larger herd: past secrets.timeout)", 2*n), 2*n, resolver)

	// 3. For comparison: plain SDK clients, one GetParameters each, with the SDK's own retryers.
	sdk := func(retryer func() aws.Retryer, budget time.Duration) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			cfg := awsCfg.Copy()
			cfg.Retryer = retryer
			c := ssm.NewFromConfig(cfg)
			ctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			_, err := c.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: aws.Bool(true)})
			return err
		}
	}
	inProcess(fmt.Sprintf("%d × aws-sdk-go-v2 standard retryer, SDK defaults (3 attempts)", n), n,
		sdk(func() aws.Retryer { return retry.NewStandard() }, 2*time.Minute))
	inProcess(fmt.Sprintf("%d × aws-sdk-go-v2 adaptive retryer (retry.NewAdaptiveMode), SDK defaults (3 attempts)", n), n,
		sdk(func() aws.Retryer { return retry.NewAdaptiveMode() }, 2*time.Minute))
	inProcess(fmt.Sprintf("%d × aws-sdk-go-v2 adaptive retryer, unlimited attempts within 2m", n), n,
		sdk(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = 1 << 20
					so.RateLimiter = ratelimit.None // no client-side retry quota: bounded by the deadline only
				})
			})
		}, 2*time.Minute))

	var b strings.Builder
	b.WriteString("## Start-up herds against SSM's default quota\n\n")
	fmt.Fprintf(&b, "Each task resolves one SecureString parameter (`X=ssm:/fleet/db-password`: one GetParameters call) from moto_server, "+
		"behind a proxy that enforces SSM's default throughput quota as a token bucket of %d requests per second "+
		"(burst %d) shared by GetParameters and GetParametersByPath, and answers `400 ThrottlingException` "+
		"(`%s`) beyond it. All tasks of a herd start at once. Start delay is from the herd's start to the task "+
		"having its secret (for processes: to berth's exit after `/bin/true`). The ideal is the quota used perfectly: "+
		"the burst at once, then one task every 1/%d s: p99 %.1f s for %d tasks (%.1f s for %d, %.1f s for %d); "+
		"the goal is p99 ≤ 2× ideal with 0 failed starts.\n\n",
		fleetSSMRate, fleetSSMBurst, harness.ThrottlingException, fleetSSMRate, fleetIdeal(n*99/100).Seconds(), n,
		fleetIdeal(n/5*99/100).Seconds(), n/5, fleetIdeal(2*n*99/100).Seconds(), 2*n)
	b.WriteString("| tasks | failed starts | p50 s | p99 s | p99 ÷ ideal | last s | GetParameters sent (throttled) | per task | launch s | memory |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		p50, p99, last := fleetPercentile(r.delays, 50), fleetPercentile(r.delays, 99), fleetPercentile(r.delays, 100)
		ratio := "–"
		ideal := r.idealP99()
		if len(r.delays) > 0 && ideal > 0 {
			ratio = fmt.Sprintf("%.2f", p99.Seconds()/ideal.Seconds())
			if r.asked != nil {
				ratio += fmt.Sprintf(" (ideal for this launch: %.1f s)", ideal.Seconds())
			}
		}
		mem := r.mem
		if mem == "" {
			mem = "–"
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %s | %.1f | %d (%d) | %.1f | %.1f | %s |\n", r.name, r.failed,
			p50.Seconds(), p99.Seconds(), ratio, last.Seconds(), r.served+r.throttled, r.throttled,
			float64(r.served+r.throttled)/float64(r.n), r.spawn.Seconds(), mem)
	}
	b.WriteString("\nThe SDK rows are plain aws-sdk-go-v2 SSM clients, one GetParameters each: on the SDK's defaults (3 attempts) most of the herd " +
		"fails, as a task does whose secrets the ECS agent fetches (its aws-sdk-go v1 SSM client retries 3 times). " +
		"The processes row is bounded by this machine: 1,000 Go processes starting on 2 cores take most of the launch column " +
		"to start, and the delay includes berth's own start-up there.\n\n")
	for _, r := range results {
		if r.firstErr != "" {
			fmt.Fprintf(&b, "- %s, first failure: `%s`\n", r.name, fleetOneLine(r.firstErr))
		}
	}
	b.WriteString("\n")
	fleetReport(t, b.String())
	for _, r := range results[:4] {
		if r.failed != 0 {
			t.Errorf("%s: %d failed starts with berth's defaults; want 0", r.name, r.failed)
		}
		// The goal: p99 within 2× the quota-limited ideal. Below a second of ideal (a quick run's small herd,
		// mostly the bucket's burst) the ratio measures start-up noise, not the back-off.
		if ideal, p99 := r.idealP99(), fleetPercentile(r.delays, 99); ideal >= time.Second && p99 > 2*ideal {
			t.Errorf("%s: p99 start delay %.1f s is %.2f× the quota-limited ideal %.1f s; want ≤ 2×", r.name,
				p99.Seconds(), p99.Seconds()/ideal.Seconds(), ideal.Seconds())
		}
	}
}

// idealP99 is the quota-limited ideal of the herd's p99 start delay: all at once, or for the launch as it
// happened when the tasks were launched over a while (processes).
func (r fleetHerdResult) idealP99() time.Duration {
	if r.asked != nil {
		return fleetPercentile(fleetIdealFor(r.asked), 99)
	}
	return fleetIdeal(r.n * 99 / 100)
}

func fleetOneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
