package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/tests/harness"
)

func sh(name, script string) Spec {
	return Spec{Name: name, Argv: []string{"sh", "-c", script}, Env: os.Environ(), Umask: -1, StopTimeout: 2 * time.Second}
}

// runSup runs a supervisor in the background; the returned function waits for Run's result.
func runSup(t *testing.T, cfg Config) (*Supervisor, chan os.Signal, func() error) {
	t.Helper()
	sigc := make(chan os.Signal, 4)
	cfg.Signals = sigc
	s, err := New(cfg, newReaper(t), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var result error
	finished := false
	wait := func() error {
		if finished {
			return result
		}
		select {
		case result = <-errc:
			finished = true
			return result
		case <-time.After(60 * time.Second):
			t.Fatal("supervisor did not finish")
			return nil
		}
	}
	t.Cleanup(func() { cancel(); _ = wait() })
	return s, sigc, wait
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

func TestAfterOneshotThenMain(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/order"
	main := sh("main", "echo main >> "+log)
	s, _, wait := runSup(t, Config{
		Main:      &main,
		MainAfter: []string{"migrate"},
		Jobs:      []JobSpec{{Spec: sh("migrate", "sleep 0.3; echo migrate >> "+log), Type: Oneshot, Restart: RestartNever}},
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if have := strings.Join(readLines(t, log), ","); have != "migrate,main" {
		t.Fatalf("want migrate,main; have %s", have)
	}
	if s.ExitCode() != 0 {
		t.Fatalf("exit %d", s.ExitCode())
	}
}

func TestFailingOneshotStopsStartup(t *testing.T) {
	dir := t.TempDir()
	main := sh("main", "touch "+dir+"/main-started")
	s, _, wait := runSup(t, Config{
		Main: &main, MainAfter: []string{"migrate"},
		Jobs: []JobSpec{{Spec: sh("migrate", "exit 4"), Type: Oneshot, Restart: RestartNever}},
	})
	err := wait()
	var jf *JobFailedError
	if !errors.As(err, &jf) || s.ExitCode() != 4 {
		t.Fatalf("want JobFailedError and exit 4; have %v, %d", err, s.ExitCode())
	}
	if _, err := os.Stat(dir + "/main-started"); err == nil {
		t.Fatal("main started although its oneshot failed")
	}
}

func TestServiceRestartsWithGrowingDelaysThenGivesUp(t *testing.T) {
	dir := t.TempDir()
	main := sh("main", "sleep 60")
	s, _, wait := runSup(t, Config{
		Main: &main,
		Jobs: []JobSpec{{Spec: sh("crashy", "date +%s.%N >> "+dir+"/starts; exit 3"), Type: Service, Restart: RestartAlways, MaxRestarts: 3}},
	})
	err := wait()
	var gu *GaveUpError
	if !errors.As(err, &gu) || s.ExitCode() != 70 {
		t.Fatalf("want GaveUpError/70; have %v, %d", err, s.ExitCode())
	}
	starts := readLines(t, dir+"/starts")
	if len(starts) != 4 {
		t.Fatalf("want 4 starts (1 + 3 restarts), have %d", len(starts))
	}
	var ts []float64
	for _, s := range starts {
		f, _ := strconv.ParseFloat(s, 64)
		ts = append(ts, f)
	}
	// back-off 1s, 2s, 4s: each gap at least the back-off and growing
	for i, want := range []float64{1, 2, 4} {
		gap := ts[i+1] - ts[i]
		if gap < want*0.9 {
			t.Fatalf("gap %d is %.2fs, want >= %.0fs (starts %v)", i, gap, want, starts)
		}
	}
}

func TestOptionalServiceGivingUpKeepsBerth(t *testing.T) {
	main := sh("main", "sleep 3; exit 6")
	s, _, wait := runSup(t, Config{
		Main: &main,
		Jobs: []JobSpec{{Spec: sh("opt", "exit 1"), Type: Service, Restart: RestartNever, Optional: true}},
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if s.ExitCode() != 6 {
		t.Fatalf("want main's 6, have %d", s.ExitCode())
	}
}

func TestPeriodicJobNoOverlap(t *testing.T) {
	dir := t.TempDir()
	main := sh("main", "sleep 2.5")
	// each run takes 0.4s and marks begin/end; every 0.5s → runs never overlap
	_, _, wait := runSup(t, Config{
		Main: &main,
		Jobs: []JobSpec{{Spec: sh("tick", "echo b >> "+dir+"/runs; sleep 0.4; echo e >> "+dir+"/runs"), Type: Oneshot, Every: 500 * time.Millisecond, Restart: RestartNever}},
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	runs := readLines(t, dir+"/runs")
	if len(runs) < 6 {
		t.Fatalf("want at least 3 runs in 2.5s, have %v", runs)
	}
	for i := 0; i+1 < len(runs); i += 2 {
		if runs[i] != "b" || runs[i+1] != "e" {
			t.Fatalf("overlap or missing end: %v", runs)
		}
	}
}

func TestHooksRunInOrderAndTimeOut(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/hooks"
	main := sh("main", "echo main >> "+log+"; trap 'exit 0' TERM; while :; do sleep 0.05; done")
	hook := func(word string) []string { return []string{"sh", "-c", "echo " + word + " >> " + log} }
	_, sigc, wait := runSup(t, Config{
		Main:         &main,
		MainPreStart: &Hook{Argv: hook("pre_start")},
		// pre_stop gets stuck after logging: its timeout must cut it short
		MainPreStop:  &Hook{Argv: []string{"sh", "-c", "echo pre_stop >> " + log + "; sleep 30"}, Timeout: 300 * time.Millisecond},
		MainPostStop: &Hook{Argv: hook("post_stop")},
	})
	harness.Eventually(t, 10*time.Second, "pre_start and the main command logged", func() bool { return len(readLines(t, log)) >= 2 })
	start := time.Now()
	sigc <- syscall.SIGTERM
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a stuck hook held shutdown for %s", d)
	}
	if have := strings.Join(readLines(t, log), ","); have != "pre_start,main,pre_stop,post_stop" {
		t.Fatalf("hook order: %s", have)
	}
}

func TestStopInReverseStartOrder(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/stops"
	ready := dir + "/ready"
	svc := func(name string) Spec {
		return sh(name, "trap 'echo "+name+" >> "+log+"; exit 0' TERM; echo "+name+" >> "+ready+"; while :; do sleep 0.05; done")
	}
	main := svc("main")
	_, sigc, wait := runSup(t, Config{
		Main: &main, MainAfter: []string{"b"},
		Jobs: []JobSpec{
			{Spec: svc("a"), Type: Service, Restart: RestartAlways},
			{Spec: svc("b"), Type: Service, Restart: RestartAlways, After: []string{"a"}},
		},
	})
	harness.Eventually(t, 10*time.Second, "every trap set", func() bool { return len(readLines(t, ready)) == 3 })
	sigc <- syscall.SIGTERM
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if have := strings.Join(readLines(t, log), ","); have != "main,b,a" {
		t.Fatalf("want main,b,a; have %s", have)
	}
}

func TestSidecarOneshotsOnlyExits(t *testing.T) {
	dir := t.TempDir()
	s, _, wait := runSup(t, Config{
		Jobs: []JobSpec{{Spec: sh("write", "echo done > "+dir+"/out"), Type: Oneshot, Restart: RestartNever}},
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if s.ExitCode() != 0 {
		t.Fatalf("exit %d", s.ExitCode())
	}
	if _, err := os.Stat(dir + "/out"); err != nil {
		t.Fatal("oneshot did not run")
	}
}

func TestRestartAndUpdateJobs(t *testing.T) {
	dir := t.TempDir()
	main := sh("main", "sleep 60")
	job := JobSpec{Spec: sh("svc", "echo v1 >> "+dir+"/log; sleep 60"), Type: Service, Restart: RestartAlways}
	other := JobSpec{Spec: sh("other", "echo other >> "+dir+"/log; sleep 60"), Type: Service, Restart: RestartAlways}
	s, sigc, wait := runSup(t, Config{Main: &main, Jobs: []JobSpec{job, other}})
	waitLines := func(n int) []string {
		t.Helper()
		harness.Eventually(t, 10*time.Second, fmt.Sprintf("%d lines in the log", n), func() bool { return len(readLines(t, dir+"/log")) >= n })
		return readLines(t, dir+"/log")
	}
	waitLines(2)
	otherPid := s.Pids()["other"]
	changed := job
	changed.Argv = []string{"sh", "-c", "echo v2 >> " + dir + "/log; sleep 60"}
	if err := s.UpdateJobs(context.Background(), []JobSpec{changed}, nil); err != nil {
		t.Fatal(err)
	}
	lines := waitLines(3)
	if lines[2] != "v2" {
		t.Fatalf("want v2 started, have %v", lines)
	}
	// UpdateJobs acted on the loop before it returned: a restart of "other" would already show in its pid
	if have := s.Pids()["other"]; have != otherPid || len(readLines(t, dir+"/log")) != 3 {
		t.Fatalf("only the changed job restarts: other pid %d → %d, log %v", otherPid, have, readLines(t, dir+"/log"))
	}
	sigc <- syscall.SIGTERM
	_ = wait()
}

func TestOptionalFailedDependencyDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	main := sh("main", "echo main > "+dir+"/main")
	s, _, wait := runSup(t, Config{
		Main: &main, MainAfter: []string{"warm"},
		Jobs: []JobSpec{{Spec: sh("warm", "exit 2"), Type: Oneshot, Restart: RestartNever, Optional: true}},
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/main"); err != nil || s.ExitCode() != 0 {
		t.Fatalf("main should run after an optional job gave up: %v, exit %d", err, s.ExitCode())
	}
}

func TestRelativeCommandResolvedInDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/run.sh", []byte("#!/bin/sh\nexit 5\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	main := Spec{Name: "main", Argv: []string{"./run.sh"}, Dir: dir, Env: os.Environ(), Umask: -1}
	s, _, wait := runSup(t, Config{Main: &main})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if s.ExitCode() != 5 {
		t.Fatalf("want 5 from ./run.sh in dir, have %d", s.ExitCode())
	}
}

// TestSidecarDrainDelay: a resident sidecar (no main command) waits drain_delay after draining, before it
// exits: on ECS the app is stopped only after the sidecar that deregistered it has exited, so this delay is
// the app's drain window.
func TestSidecarDrainDelay(t *testing.T) {
	drained := make(chan time.Time, 1)
	_, sigc, wait := runSup(t, Config{Resident: true, DrainDelay: 500 * time.Millisecond,
		Drain: []func(context.Context){func(context.Context) { drained <- time.Now() }}})
	sigc <- syscall.SIGTERM
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(<-drained); d < 500*time.Millisecond {
		t.Fatalf("berth exited %s after draining, want the 500ms drain_delay first", d)
	}
}

// signal_scope = "child" is the main command's: its hooks are signalled as a group, as jobs are.
func TestHookSpecSignalsTheGroup(t *testing.T) {
	main := Spec{Name: MainName, Argv: []string{"app"}, childOnly: true}
	sp, _ := hookSpec(main, &Hook{Argv: []string{"hook"}}, "pre_start")
	if sp.childOnly {
		t.Fatalf("hook %s inherits the main command's signal scope", sp.Name)
	}
	if sp.Name != MainName+".pre_start" || sp.Argv[0] != "hook" {
		t.Fatalf("hook spec %+v", sp)
	}
}
