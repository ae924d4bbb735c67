//go:build linux

package tests

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// berthWith is berth with flags before its "--", started through pre (such as `env VAR=value`) when given.
func berthWith(name string, pre []string, flags ...string) peerInit {
	return peerInit{name, func(t *testing.T, pid1 bool) []string {
		argv := append(append([]string{}, pre...), harness.Berth(t), "-control-socket", "off")
		return append(append(argv, flags...), "--")
	}}
}

// dumb-init's child_processes_test.py test_no_setsid_doesnt_signal_entire_group (DUMB_INIT_SETSID=0, which is
// -c / --single-child): a signal sent to the init reaches its child only, not the other processes of the
// child's process group. tini does the same without -g (its pgroup test needs -g). berth does it with
// -signal-scope child, BERTH_SIGNAL_SCOPE=child or signal_scope = "child" (README "Signals").
func TestPeerSuiteSingleChild(t *testing.T) {
	t.Parallel()
	sp := buildSigprint(t)
	cfg := secWriteFile(t, filepath.Join(t.TempDir(), "berth.hcl"), "signal_scope = \"child\"\n")
	inits := []peerInit{
		berthWith("berth-flag", nil, "-signal-scope", "child"),
		berthWith("berth-env", []string{"env", "BERTH_SIGNAL_SCOPE=child"}),
		berthWith("berth-config", nil, "-config", cfg),
		{"tini", func(t *testing.T, pid1 bool) []string {
			if pid1 {
				return []string{peerTool(t, "tini"), "--"}
			}
			return []string{peerTool(t, "tini"), "-s", "--"}
		}},
		// no setsid: the child stays in dumb-init's own group, and signals go to its pid
		{"dumb-init", func(t *testing.T, pid1 bool) []string { return []string{peerTool(t, "dumb-init"), "-c"} }},
	}
	// The fence: a real-time signal numbered above every one sent. A process is given its pending signals
	// lowest number first (standard ones before real-time ones), so a signal the init had sent a member shows
	// in its output before the fence does.
	const fence = sigRTMIN + 10
	for _, in := range inits {
		for _, m := range modes {
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				sigs, r, from := startGroup(t, in, m.pid1, sp)
				child := r.child()
				members := descendants(child)
				if len(members) != 2 {
					t.Fatalf("the child %d has children %v, want its 2 members\n%s", child, members, r.diag())
				}
				for _, n := range sigs {
					r.signal(n)
					from = r.waitLine(from, fmt.Sprintf("main sig %d", n), 10*time.Second) + 1
				}
				for _, p := range members {
					if err := syscall.Kill(p, syscall.Signal(fence)); err != nil {
						t.Fatalf("fence to member %d: %v", p, err)
					}
				}
				for _, role := range []string{"m1", "m2"} {
					r.waitLine(0, fmt.Sprintf("%s sig %d", role, fence), 10*time.Second)
				}
				if have := r.sigLines("main"); !slices.Equal(have, sigs) {
					t.Errorf("the child got %v, want %v", have, sigs)
				}
				for _, role := range []string{"m1", "m2"} {
					if have := r.sigLines(role); !slices.Equal(have, []int{fence}) {
						t.Errorf("%s, in the child's group, got %v: want only the fence %d sent to it directly\n%s", role, have, fence, r.diag())
					}
				}
				// The end: the members, then the child (a SIGKILL of the group would reach dumb-init -c too).
				for _, p := range members {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				_ = syscall.Kill(child, syscall.SIGKILL)
				if code := r.waitExit(10 * time.Second); code != 137 {
					t.Fatalf("child killed by SIGKILL: want the init to exit 137, have %d\n%s", code, r.diag())
				}
				if strings.HasPrefix(in.name, "berth") {
					noStackTrace(t, r.stderr())
				}
			})
		}
	}

	// berth's shutdown with signal_scope "child": SIGTERM reaches the main command alone as its stop signal;
	// the members of its group, left over once it exited, get their one SIGTERM from the leftover step
	// (README "How it works"), after the main command's, and are gone when berth exits with the main
	// command's code. dumb-init -c and tini leave leftovers alone, so berth has no control here; with the
	// group scope the members would see the stop signal beside the main command and a second SIGTERM as
	// leftovers.
	for _, m := range modes {
		t.Run("berth-stop/"+m.name, func(t *testing.T) {
			t.Parallel()
			in := berthWith("berth", nil, "-signal-scope", "child", "-kill-grace", "1s")
			r := startInit(t, in, initOpts{pid1: m.pid1}, sp, "-m", "2", "-e", "15:115")
			r.waitLine(0, "m1 ready*", 10*time.Second)
			r.waitLine(0, "m2 ready*", 10*time.Second)
			r.waitLine(0, "main ready*", 10*time.Second)
			members := descendants(r.child())
			r.signal(15)
			if code := r.waitExit(20 * time.Second); code != 115 {
				t.Fatalf("the main command exits 115 on SIGTERM: want berth to exit 115, have %d\n%s", code, r.diag())
			}
			r.waitEOF() // every member closed its stdout: gone
			lines := r.out.lines()
			mainAt := slices.Index(lines, "main sig 15")
			if mainAt < 0 {
				t.Fatalf("the main command never got SIGTERM\n%s", r.diag())
			}
			for _, role := range []string{"m1", "m2"} {
				var at []int
				for i, l := range lines {
					if l == role+" sig 15" {
						at = append(at, i)
					}
				}
				if len(at) != 1 || at[0] < mainAt {
					t.Errorf("%s got SIGTERM at lines %v, want once, after the main command's (line %d)\n%s", role, at, mainAt, r.diag())
				}
			}
			for _, p := range members {
				if st := procState(p); st != 0 && st != 'Z' {
					t.Errorf("member %d outlived berth (state %c)", p, st)
				}
			}
			noStackTrace(t, r.stderr())
		})
	}

	// The spellings berth refuses: one line naming the flag, variable or file position, 64 or 78.
	t.Run("berth-usage", func(t *testing.T) {
		t.Parallel()
		bad := secWriteFile(t, filepath.Join(t.TempDir(), "bad.hcl"), "log_level = \"warn\"\nsignal_scope = \"pgroup\"\n")
		for _, c := range []struct {
			env  []string
			args []string
			code int
			want string
		}{
			{args: []string{"-signal-scope", "pgroup"}, code: 64, want: `berth: -signal-scope: signal scope "pgroup": want "group"`},
			{env: []string{"BERTH_SIGNAL_SCOPE=session"}, code: 64, want: `berth: -signal-scope: signal scope "session": want "group"`},
			{args: []string{"-config", bad}, code: 78, want: "berth: " + bad + `:2:16: signal_scope: "pgroup" is not one of ["group" "child"]`},
		} {
			b := harness.RunBerth(t, harness.BerthOpts{Env: c.env, Args: append(c.args, "--", "true")})
			code := b.Wait(20 * time.Second)
			lines := strings.Split(strings.TrimSpace(b.Stderr.String()), "\n")
			if code != c.code || len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
				t.Errorf("%v %v: want exit %d and one line %q..., have %d:\n%s", c.env, c.args, c.code, c.want, code, b.Stderr.String())
			}
		}
	})
}
