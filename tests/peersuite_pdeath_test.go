//go:build linux

package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// tini's test/pdeathsignal: with -p SIGNAL the init asks the kernel for SIGNAL when its parent dies, and
// then treats it as a signal it received. tests/testdata/peersuite/pdeath plays tini's stage_1.py: it starts
// the parent, which starts the init, and, as a child subreaper, inherits the init once the test has killed
// the parent, so the init's exit status is still seen. As PID 1 the parent is unshare (without
// --kill-child, which would SIGKILL the init itself). berth's -pdeathsig against tini's -p: SIGTERM is
// passed to the child, which exits 115, and the init exits 115; SIGUSR1 is forwarded and the init runs on
// until it is sent SIGTERM. dumb-init has no such option.
func TestPeerSuiteParentDeath(t *testing.T) {
	t.Parallel()
	sp := buildSigprint(t)
	pdeath := buildC(t, "pdeath")
	cfg := secWriteFile(t, filepath.Join(t.TempDir(), "berth.hcl"), "pdeathsig = \"TERM\"\n")
	type pcase struct {
		name string
		in   peerInit
		sig  int
		pid1 bool
	}
	// withFlags puts flags before the init's "--" (tini and berth both take one)
	withFlags := func(in peerInit, flags ...string) peerInit {
		return peerInit{in.name, func(t *testing.T, pid1 bool) []string {
			argv := in.argv(t, pid1)
			return append(append(argv[:len(argv)-1:len(argv)-1], flags...), "--")
		}}
	}
	var cases []pcase
	for _, m := range modes {
		for _, sig := range []int{15, 10} {
			name := "SIG" + peerSigName(sig)
			cases = append(cases,
				pcase{"berth/" + m.name + "/" + name, withFlags(peerBerth, "-pdeathsig", name), sig, m.pid1},
				pcase{"tini/" + m.name + "/" + name, withFlags(peerTini, "-p", name), sig, m.pid1})
		}
	}
	// berth's other spellings, as an ordinary child
	cases = append(cases,
		pcase{"berth/subreaper/BERTH_PDEATHSIG", berthWith("berth", []string{"env", "BERTH_PDEATHSIG=term"}), 15, false},
		pcase{"berth/subreaper/pdeathsig key", berthWith("berth", nil, "-config", cfg), 15, false},
		pcase{"berth/subreaper/flag beats key", berthWith("berth", nil, "-config", cfg, "-pdeathsig", "USR1"), 10, false})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wrapped := peerInit{c.in.name, func(t *testing.T, _ bool) []string {
				argv := []string{pdeath}
				if c.pid1 {
					argv = append(argv, "-x", "unshare", "--pid", "--fork", "--mount-proc")
				}
				return append(argv, c.in.argv(t, c.pid1)...)
			}}
			r := startInit(t, wrapped, initOpts{}, sp, "-e", "15:115")
			from := r.waitLine(0, "main ready*", 10*time.Second) + 1
			parent := r.child()
			initPid := r.firstChild(parent, "init")
			if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
				t.Fatalf("kill the parent %d: %v", parent, err)
			}
			from = r.waitLine(from, fmt.Sprintf("main sig %d", c.sig), 10*time.Second) + 1
			if c.sig != 15 {
				// forwarded: the init runs on, and a SIGTERM sent to it later still stops it
				if st := procState(initPid); st == 0 || st == 'Z' {
					t.Fatalf("%s ended on SIG%s from its parent's death\n%s", c.in.name, peerSigName(c.sig), r.diag())
				}
				if err := syscall.Kill(initPid, syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				r.waitLine(from, "main sig 15", 10*time.Second)
			}
			want := fmt.Sprintf("pdeath reaped pid=%d code=*", initPid)
			at := r.waitLine(0, want, 20*time.Second)
			line := r.out.lines()[at]
			if !strings.HasSuffix(line, " code=115") {
				t.Fatalf("the child exits 115 on SIGTERM: want %s to exit 115, have %q\n%s", c.in.name, line, r.diag())
			}
			if code := r.waitExit(10 * time.Second); code != 0 {
				t.Fatalf("pdeath exits 0 once it reaped everything, have %d\n%s", code, r.diag())
			}
			if c.in.name == "berth" {
				noStackTrace(t, r.stderr())
			}
		})
	}

	// Without -pdeathsig nothing tells berth: it runs on, orphaned, until it is told to stop.
	t.Run("berth/subreaper/none", func(t *testing.T) {
		t.Parallel()
		r := startInit(t, peerInit{"berth", func(t *testing.T, pid1 bool) []string {
			return append([]string{pdeath}, peerBerth.argv(t, false)...)
		}}, initOpts{}, sp, "-e", "15:115")
		from := r.waitLine(0, "main ready*", 10*time.Second) + 1
		parent := r.child()
		initPid := r.firstChild(parent, "init")
		_ = syscall.Kill(parent, syscall.SIGKILL)
		r.waitLine(0, fmt.Sprintf("pdeath reaped pid=%d code=137", parent), 10*time.Second)
		// a fence: SIGUSR1 sent now comes after anything the parent's death could have caused
		_ = syscall.Kill(initPid, syscall.SIGUSR1)
		r.waitLine(from, "main sig 10", 10*time.Second)
		if have := r.sigLines("main"); len(have) != 1 {
			t.Fatalf("the child got %v after the parent died, want only the fence [10]\n%s", have, r.diag())
		}
	})

	// The signals berth refuses: one line naming the flag or the file position, 64 or 78.
	t.Run("berth/usage", func(t *testing.T) {
		t.Parallel()
		bad := secWriteFile(t, filepath.Join(t.TempDir(), "bad.hcl"), "pdeathsig = \"SIGCHLD\"\n")
		for _, c := range []struct {
			env  []string
			args []string
			code int
			want string
		}{
			{args: []string{"-pdeathsig", "STOP"}, code: 64, want: "berth: -pdeathsig: parent death signal SIGSTOP: it would stop berth"},
			{args: []string{"-pdeathsig", "PIPE"}, code: 64, want: "berth: -pdeathsig: parent death signal SIGPIPE: berth never acts on it"},
			{env: []string{"BERTH_PDEATHSIG=TREM"}, code: 64, want: `berth: -pdeathsig: unknown signal "TREM"`},
			{args: []string{"-config", bad}, code: 78, want: "berth: " + bad + ":1:13: pdeathsig: parent death signal SIGCHLD: berth never acts on it"},
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
