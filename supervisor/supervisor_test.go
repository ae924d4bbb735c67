package supervisor

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/tests/harness"
)

func newReaper(t *testing.T) *Reaper {
	t.Helper()
	r, err := NewReaper(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// Many processes exiting at once while orphans are reaped: every started process gets its own exit status.
func TestReaperNeverLosesAStatus(t *testing.T) {
	r := newReaper(t)
	s, err := New(Config{}, r, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := i % 7
			// each shell also leaves an orphan for the reaper's sweep to collect
			p, err := s.Start(Spec{Name: "burst", Argv: []string{"sh", "-c", "(true &); exit " + string(rune('0'+code))}, Env: os.Environ(), Umask: -1})
			if err != nil {
				t.Error(err)
				return
			}
			select {
			case <-p.Done():
			case <-time.After(30 * time.Second):
				t.Error("exit status lost: process never reported")
				return
			}
			if have := p.Exit().Code; have != code {
				t.Errorf("want exit %d, have %d", code, have)
			}
		}()
	}
	wg.Wait()
}

func TestInjectedSignalsAndShutdown(t *testing.T) {
	r := newReaper(t)
	sigc := make(chan os.Signal, 1)
	dir := t.TempDir()
	var drained sync.WaitGroup
	drained.Add(1)
	drainedAt := make(chan time.Time, 1)
	s, err := New(Config{
		Main: &Spec{Name: "main", Argv: []string{"sh", "-c", `trap 'echo hup >> ` + dir + `/log' HUP; trap 'echo term >> ` + dir + `/log; exit 42' TERM; echo ready > ` + dir + `/ready; while :; do sleep 0.05; done`},
			Env: os.Environ(), Umask: -1},
		Signals: sigc,
		Drain:   []func(context.Context){func(context.Context) { drainedAt <- time.Now(); drained.Done() }},
	}, r, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	waitFor(t, dir+"/ready")
	sigc <- syscall.SIGHUP
	harness.WaitFile(t, dir+"/log", "hup", 10*time.Second)
	sigc <- syscall.SIGTERM
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("supervisor did not finish")
	}
	if have := s.ExitCode(); have != 42 {
		t.Fatalf("want 42, have %d", have)
	}
	drained.Wait()
}

func TestExecCapturesOutputAndTimesOut(t *testing.T) {
	r := newReaper(t)
	s, _ := New(Config{}, r, hclog.NewNullLogger())
	code, out, err := s.Exec(context.Background(), Spec{Name: "x", Argv: []string{"sh", "-c", "echo hello; echo oops >&2; exit 1"}, Env: os.Environ(), Umask: -1}, newBuf())
	if err != nil || code != 1 || len(out) == 0 {
		t.Fatalf("have code=%d out=%q err=%v", code, out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = s.Exec(ctx, Spec{Name: "slow", Argv: []string{"sleep", "30"}, Env: os.Environ(), Umask: -1}, newBuf())
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("want a timeout error promptly, have %v after %s", err, time.Since(start))
	}
}

func TestParseSignal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{{"TERM", syscall.SIGTERM, true}, {"sigquit", syscall.SIGQUIT, true}, {"9", syscall.SIGKILL, true}, {"NOPE", 0, false}, {"", 0, false}, {"99", 0, false},
		{"SIGRTMIN", 34, true}, {"SIGRTMIN+3", 37, true}, {"rtmax-1", 63, true}, {"RTMAX", 64, true}, {"SIGRTMIN+31", 0, false},
		{"RTMIN3", 0, false}, {"RTMAX+1", 0, false}, {"0", 0, false}, {"65", 0, false}, {"SYS", syscall.SIGSYS, true}} {
		have, err := ParseSignal(c.in)
		if (err == nil) != c.ok || have != c.want {
			t.Errorf("ParseSignal(%q) = %v, %v", c.in, have, err)
		}
	}
}

// TestParseRewrite: any signal berth forwards may be a source, any 1-64 a target; a rewrite that can never take
// effect is refused (the CLI turns that into exit 64, the config loader into 78).
func TestParseRewrite(t *testing.T) {
	for _, c := range []struct {
		in       string
		from, to syscall.Signal
		ok       bool
	}{
		{"TERM:QUIT", syscall.SIGTERM, syscall.SIGQUIT, true},
		{"SYS:HUP", syscall.SIGSYS, syscall.SIGHUP, true},
		{"TTIN:TERM", syscall.SIGTTIN, syscall.SIGTERM, true},
		{"SEGV:USR1", syscall.SIGSEGV, syscall.SIGUSR1, true},
		{"RTMIN+3:TERM", 37, syscall.SIGTERM, true},
		{"TERM:SIGRTMIN+3", syscall.SIGTERM, 37, true},
		{"PROF:KILL", syscall.SIGPROF, syscall.SIGKILL, true},
		{"KILL:TERM", 0, 0, false}, {"STOP:TERM", 0, 0, false}, {"CHLD:TERM", 0, 0, false},
		{"URG:TERM", 0, 0, false}, {"PIPE:TERM", 0, 0, false}, {"33:TERM", 0, 0, false},
		{"TERM:0", 0, 0, false}, {"TERM:65", 0, 0, false}, {"TERM", 0, 0, false}, {"TERM:", 0, 0, false},
	} {
		from, to, err := ParseRewrite(c.in)
		if (err == nil) != c.ok || from != c.from || to != c.to {
			t.Errorf("ParseRewrite(%q) = %v, %v, %v; want %v, %v, ok=%v", c.in, from, to, err, c.from, c.to, c.ok)
		}
	}
}

// TestSignalScopeAndParentDeathSignal: the two spellings of signal_scope, and the parent-death signals berth can
// act on (SIGKILL too; not SIGSTOP, nor those it never acts on); New refuses the rest.
func TestSignalScopeAndParentDeathSignal(t *testing.T) {
	for in, want := range map[string]SignalScope{"group": SignalGroup, " child ": SignalChild, "pgid": "", "": "", "Child": ""} {
		have, err := ParseSignalScope(in)
		if have != want || (err == nil) != (want != "") {
			t.Errorf("ParseSignalScope(%q) = %q, %v; want %q", in, have, err, want)
		}
	}
	for s := syscall.Signal(1); s <= 64; s++ {
		want := s != syscall.SIGSTOP && s != syscall.SIGCHLD && s != syscall.SIGURG && s != syscall.SIGPIPE && s != 33
		if err := CheckParentDeathSignal(s); (err == nil) != want {
			t.Errorf("CheckParentDeathSignal(%s) = %v, want ok=%v", SignalName(s), err, want)
		}
	}
	r := newReaper(t)
	for _, cfg := range []Config{{SignalScope: "session"}, {ParentDeathSignal: syscall.SIGSTOP}, {ParentDeathSignal: 65}} {
		if _, err := New(cfg, r, hclog.NewNullLogger()); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
}

// TestForwardedSignals is the signal contract of the README: every catchable signal but the four exceptions.
func TestForwardedSignals(t *testing.T) {
	have := map[syscall.Signal]bool{}
	for _, s := range forwardedSignals() {
		have[s] = true
	}
	for s := syscall.Signal(1); s <= 64; s++ {
		want := s != syscall.SIGKILL && s != syscall.SIGSTOP && s != syscall.SIGCHLD && s != syscall.SIGURG &&
			s != syscall.SIGPIPE && s != 33
		if have[s] != want {
			t.Errorf("%s forwarded = %v, want %v", SignalName(s), have[s], want)
		}
	}
}

func TestParseRlimit(t *testing.T) {
	for _, c := range []struct {
		name, value string
		soft, hard  uint64
		ok          bool
	}{{"nofile", "65536", 65536, 65536, true}, {"RLIMIT_NOFILE", "1024:4096", 1024, 4096, true}, {"nofile", "4096:1024", 0, 0, false}, {"bogus", "1", 0, 0, false}, {"nproc", "x", 0, 0, false}} {
		have, err := ParseRlimit(c.name, c.value)
		if (err == nil) != c.ok || (c.ok && (have.Soft != c.soft || have.Hard != c.hard)) {
			t.Errorf("ParseRlimit(%q,%q) = %+v, %v", c.name, c.value, have, err)
		}
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "SIGKILL", "15", "", "sig", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err == nil && (sig <= 0 || sig > 64) {
			t.Fatalf("ParseSignal(%q) accepted %d", s, sig)
		}
	})
}

// waitFor waits until path exists (a child's "I am ready" file).
func waitFor(t *testing.T, path string) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, path+" exists", func() bool { _, err := os.Stat(path); return err == nil })
}
