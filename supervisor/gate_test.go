package supervisor

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// fakeGate grants on demand: each Acquire takes one answer from grants.
type fakeGate struct {
	grants   chan fakeAnswer
	mu       sync.Mutex
	released []int
}

type fakeAnswer struct {
	g   Grant
	err error
}

func newFakeGate() *fakeGate { return &fakeGate{grants: make(chan fakeAnswer, 4)} }

func (f *fakeGate) Acquire(ctx context.Context) (Grant, error) {
	select {
	case a := <-f.grants:
		return a.g, a.err
	case <-ctx.Done():
		return Grant{}, ctx.Err()
	}
}

func (f *fakeGate) Release(code int) {
	f.mu.Lock()
	f.released = append(f.released, code)
	f.mu.Unlock()
}

func (f *fakeGate) releases() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.released...)
}

func stateOf(s *Supervisor, name string) (string, string) {
	for _, st := range s.Status() {
		if st.Name == name {
			return st.State, st.Lock
		}
	}
	return "", ""
}

// A singleton waits in standby, runs once granted, is stopped when the grant is lost and waits again; the
// grant is released only after its process is gone.
func TestGateSingletonLost(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	job := JobSpec{Spec: sh("sched", "echo start >> "+dir+"/log; exec sleep 60"), Type: Service, Restart: RestartAlways, Gate: g}
	s, sigc, wait := runSup(t, Config{Jobs: []JobSpec{job}, Resident: true})
	harness.Eventually(t, 10*time.Second, "standby", func() bool { st, l := stateOf(s, "sched"); return st == "standby" && l == "standby" })
	lost := make(chan struct{})
	g.grants <- fakeAnswer{g: Grant{Lost: lost}}
	harness.Eventually(t, 10*time.Second, "running", func() bool { st, l := stateOf(s, "sched"); return st == "running" && l == "holder" })
	close(lost)
	harness.Eventually(t, 10*time.Second, "standby again", func() bool { st, _ := stateOf(s, "sched"); return st == "standby" })
	if r := g.releases(); len(r) != 1 || r[0] != -1 {
		t.Fatalf("want one release (-1) after the stop, have %v", r)
	}
	if n := len(readLines(t, dir+"/log")); n != 1 {
		t.Fatalf("want 1 start, have %d", n)
	}
	sigc <- syscall.SIGTERM
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

// A once-job skipped by its gate counts as succeeded for after; a failed gate ends berth with its code and
// starts nothing.
func TestGateOnce(t *testing.T) {
	t.Run("skip", func(t *testing.T) {
		dir := t.TempDir()
		g := newFakeGate()
		g.grants <- fakeAnswer{g: Grant{Skip: true}}
		mig := JobSpec{Spec: sh("migrate", "echo ran >> "+dir+"/log"), Type: Oneshot, Restart: RestartNever, Gate: g}
		main := sh("main", "echo main >> "+dir+"/log")
		s, _, wait := runSup(t, Config{Main: &main, MainAfter: []string{"migrate"}, Jobs: []JobSpec{mig}})
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if have := readLines(t, dir+"/log"); len(have) != 1 || have[0] != "main" {
			t.Fatalf("want only main to run, have %v", have)
		}
		if s.ExitCode() != 0 {
			t.Fatalf("want 0, have %d", s.ExitCode())
		}
	})
	t.Run("failed", func(t *testing.T) {
		dir := t.TempDir()
		g := newFakeGate()
		g.grants <- fakeAnswer{err: &JobFailedError{Job: "migrate", Code: 3}}
		mig := JobSpec{Spec: sh("migrate", "echo ran >> "+dir+"/log"), Type: Oneshot, Restart: RestartNever, Gate: g}
		main := sh("main", "echo main >> "+dir+"/log")
		s, _, wait := runSup(t, Config{Main: &main, MainAfter: []string{"migrate"}, Jobs: []JobSpec{mig}})
		err := wait()
		var ge *GateError
		if !errors.As(err, &ge) || ge.ExitCode() != 3 || s.ExitCode() != 3 {
			t.Fatalf("want a GateError with code 3, have %v (exit %d)", err, s.ExitCode())
		}
		if have := readLines(t, dir+"/log"); len(have) != 0 {
			t.Fatalf("want nothing started, have %v", have)
		}
	})
	t.Run("ran", func(t *testing.T) {
		dir := t.TempDir()
		g := newFakeGate()
		g.grants <- fakeAnswer{}
		mig := JobSpec{Spec: sh("migrate", "echo ran >> "+dir+"/log; exit 0"), Type: Oneshot, Restart: RestartNever, Gate: g}
		main := sh("main", "echo main >> "+dir+"/log")
		_, _, wait := runSup(t, Config{Main: &main, MainAfter: []string{"migrate"}, Jobs: []JobSpec{mig}})
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if have := readLines(t, dir+"/log"); len(have) != 2 || have[0] != "ran" {
			t.Fatalf("want migrate then main, have %v", have)
		}
		if r := g.releases(); len(r) != 1 || r[0] != 0 {
			t.Fatalf("want the result 0 released, have %v", r)
		}
	})
}
