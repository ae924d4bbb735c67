package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestParseExitCodeMapping(t *testing.T) {
	for _, c := range []struct {
		in       string
		from, to int
		ok       bool
	}{
		{"143:0", 143, 0, true}, {"143", 143, 0, true}, {"0:1", 0, 1, true}, {"255:255", 255, 255, true},
		{" 130 : 0 ", 130, 0, true},
		{"256:0", 0, 0, false}, {"143:256", 0, 0, false}, {"-1:0", 0, 0, false}, {"TERM:0", 0, 0, false},
		{"", 0, 0, false}, {"143:", 0, 0, false}, {":0", 0, 0, false}, {"1:2:3", 0, 0, false},
	} {
		from, to, err := ParseExitCodeMapping(c.in)
		if (err == nil) != c.ok || from != c.from || to != c.to {
			t.Errorf("ParseExitCodeMapping(%q) = %d, %d, %v; want %d, %d, ok=%v", c.in, from, to, err, c.from, c.to, c.ok)
		}
	}
	if _, err := New(Config{ExitCodeMap: map[int]int{143: 256}}, newReaper(t), hclog.NewNullLogger()); err == nil {
		t.Fatal("New accepted an exit code map to 256")
	}
}

// The map applies to the main command's own exit status (N, or 128+S when a signal killed it), whichever way
// it ended, and never to a code berth decided itself.
func TestExitCodeMapAppliesToMainOnly(t *testing.T) {
	m := map[int]int{143: 0, 3: 7, 127: 0, 4: 0}
	t.Run("main exits 143", func(t *testing.T) {
		main := sh("main", "exit 143")
		s, _, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		if err := wait(); err != nil || s.ExitCode() != 0 {
			t.Fatalf("want 0, have %d (%v)", s.ExitCode(), err)
		}
	})
	t.Run("main killed by SIGTERM", func(t *testing.T) {
		main := sh("main", "kill -TERM $$")
		s, _, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		if err := wait(); err != nil || s.ExitCode() != 0 {
			t.Fatalf("want 0, have %d (%v)", s.ExitCode(), err)
		}
	})
	t.Run("to a non-zero code", func(t *testing.T) {
		main := sh("main", "exit 3")
		s, _, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		if err := wait(); err != nil || s.ExitCode() != 7 {
			t.Fatalf("want 7, have %d (%v)", s.ExitCode(), err)
		}
	})
	t.Run("unmapped code", func(t *testing.T) {
		main := sh("main", "exit 142")
		s, _, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		if err := wait(); err != nil || s.ExitCode() != 142 {
			t.Fatalf("want 142, have %d (%v)", s.ExitCode(), err)
		}
	})
	t.Run("main stopped by the shutdown sequence", func(t *testing.T) {
		dir := t.TempDir()
		main := sh("main", "touch "+dir+"/ready; exec sleep 60") // sleep dies of the SIGTERM: 143
		s, sigc, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		waitFor(t, filepath.Join(dir, "ready"))
		sigc <- syscall.SIGTERM
		if err := wait(); err != nil || s.ExitCode() != 0 {
			t.Fatalf("want 0, have %d (%v)", s.ExitCode(), err)
		}
	})
	t.Run("a failed oneshot's code", func(t *testing.T) {
		main := sh("main", "exit 0")
		s, _, wait := runSup(t, Config{Main: &main, MainAfter: []string{"migrate"}, ExitCodeMap: m,
			Jobs: []JobSpec{{Spec: sh("migrate", "exit 4"), Type: Oneshot, Restart: RestartNever}}})
		if _ = wait(); s.ExitCode() != 4 {
			t.Fatalf("want the job's 4, unmapped; have %d", s.ExitCode())
		}
	})
	t.Run("command not found", func(t *testing.T) {
		main := Spec{Name: "main", Argv: []string{"/nonexistent/berth-test-cmd"}, Env: os.Environ(), Umask: -1}
		s, _, wait := runSup(t, Config{Main: &main, ExitCodeMap: m})
		if _ = wait(); s.ExitCode() != 127 {
			t.Fatalf("want 127, unmapped; have %d", s.ExitCode())
		}
	})
	t.Run("stopped before the main command started", func(t *testing.T) {
		dir := t.TempDir()
		main := sh("main", "exit 0")
		cfg := Config{Main: &main, ExitCodeMap: m, MainPreStart: &Hook{Argv: []string{"sh", "-c", "touch " + dir + "/hook; exec sleep 60"}}}
		s, sigc, wait := runSup(t, cfg)
		waitFor(t, filepath.Join(dir, "hook"))
		sigc <- syscall.SIGTERM
		if _ = wait(); s.ExitCode() != 143 {
			t.Fatalf("want berth's own 143, unmapped; have %d", s.ExitCode())
		}
	})
}

// An empty environment stays empty: os/exec would give a nil one berth's whole environment.
func TestEmptyEnvIsNotInherited(t *testing.T) {
	t.Setenv("BERTH_TEST_INHERITED", "leak")
	out := filepath.Join(t.TempDir(), "env")
	main := Spec{Name: "main", Argv: []string{"/bin/sh", "-c", "env > " + out}, Env: []string{}, Umask: -1}
	s, _, wait := runSup(t, Config{Main: &main})
	if err := wait(); err != nil || s.ExitCode() != 0 {
		t.Fatalf("exit %d (%v)", s.ExitCode(), err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// dash exports PWD (and nothing else) into an empty environment
	for _, kv := range strings.Fields(string(b)) {
		if !strings.HasPrefix(kv, "PWD=") {
			t.Errorf("the child inherited %q", kv)
		}
	}
}
