//go:build linux

package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// tini's run_inner_tests.py exit code test for -e: with `-e CODE` the init exits 0 when the child exits CODE
// ("inclusive"), and with every other code given it exits CODE ("exclusive"). berth's -exit-code-map takes tini's
// spelling (CODE alone means CODE:0) and FROM:TO. tini's test runs all 256 codes; this runs the codes at the
// edges and those of a shell and of signals, for berth and tini (dumb-init has no such option), plus the
// Java-on-ECS case: the init is sent SIGTERM, the child dies of it (143), and the init exits 0.
func TestPeerSuiteExitCodeMap(t *testing.T) {
	t.Parallel()
	codes := []int{0, 1, 2, 42, 126, 127, 128, 129, 130, 137, 143, 254, 255}
	mapFlag := func(in peerInit, from int) []string {
		if in.name == "berth" {
			return []string{"-exit-code-map", strconv.Itoa(from)}
		}
		return []string{"-e", strconv.Itoa(from)}
	}
	// withFlags puts flags before the init's "--" (tini and berth both take one)
	withFlags := func(in peerInit, flags []string) peerInit {
		return peerInit{in.name, func(t *testing.T, pid1 bool) []string {
			argv := in.argv(t, pid1)
			return append(append(argv[:len(argv)-1:len(argv)-1], flags...), "--")
		}}
	}
	for _, in := range []peerInit{peerBerth, peerTini} {
		for _, m := range modes {
			t.Run(in.name+"/"+m.name, func(t *testing.T) {
				t.Parallel()
				var jobs []exitJob
				for _, code := range codes {
					child := []string{"sh", "-c", fmt.Sprintf("exit %d", code)}
					inclusive := withFlags(in, mapFlag(in, code))
					jobs = append(jobs, exitJob{fmt.Sprintf("inclusive %d", code), initArgv(t, inclusive, m.pid1, child...), 0})
					var others []string
					for c := 0; c <= 255; c++ {
						if c != code {
							others = append(others, mapFlag(in, c)...)
						}
					}
					exclusive := withFlags(in, others)
					jobs = append(jobs, exitJob{fmt.Sprintf("exclusive %d", code), initArgv(t, exclusive, m.pid1, child...), code})
				}
				for _, sig := range []int{2, 9, 15} {
					child := []string{"sh", "-c", "kill -" + peerSigName(sig) + " $$"}
					jobs = append(jobs, exitJob{"killed by SIG" + peerSigName(sig) + ", mapped", initArgv(t, withFlags(in, mapFlag(in, 128+sig)), m.pid1, child...), 0},
						exitJob{"killed by SIG" + peerSigName(sig) + ", unmapped", initArgv(t, withFlags(in, mapFlag(in, 1)), m.pid1, child...), 128 + sig})
				}
				runExitJobs(t, "exit codes", jobs)
			})

			t.Run(in.name+"/"+m.name+"/stopped by SIGTERM", func(t *testing.T) {
				t.Parallel()
				r := startInit(t, withFlags(in, mapFlag(in, 143)), initOpts{pid1: m.pid1}, "sh", "-c", "echo ready; exec sleep 60")
				r.waitLine(0, "ready", 10*time.Second)
				r.signal(15)
				if code := r.waitExit(20 * time.Second); code != 0 {
					t.Fatalf("child killed by the forwarded SIGTERM (143) with 143 mapped: want 0, have %d\n%s", code, r.diag())
				}
			})
		}
	}

	// Where berth differs from tini: a command that cannot be started is berth's own 127 (or 126), never mapped;
	// tini's forked child exits 127 after its failed exec, and tini maps that like any exit status.
	t.Run("command not found", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct {
			in   peerInit
			want int
		}{{peerBerth, 127}, {peerTini, 0}} {
			code, _, stderr, err := runShort(initArgv(t, withFlags(c.in, mapFlag(c.in, 127)), false, "/nonexistent/berth-test-command"), "", 20*time.Second)
			if err != nil || code != c.want {
				t.Errorf("%s with 127 mapped, a command that does not exist: want %d, have %d (%v) %s", c.in.name, c.want, code, err, firstLine(stderr))
			}
		}
	})

	// berth's own spellings: FROM:TO to any code, BERTH_EXIT_CODE_MAP (comma-separated), the config file's
	// exit_code_map with a flag winning per code, the info line saying what was mapped, and the usage errors.
	t.Run("berth", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := secWriteFile(t, dir+"/berth.hcl", "exit_code_map = { 3 = 4, 5 = 6 }\n")
		for _, c := range []struct {
			name string
			env  []string
			args []string
			exit int
			want int
		}{
			{name: "FROM:TO", args: []string{"-exit-code-map", "3:7"}, exit: 3, want: 7},
			{name: "env", env: []string{"BERTH_EXIT_CODE_MAP=1:2, 3:9,143"}, exit: 3, want: 9},
			{name: "env, tini's spelling", env: []string{"BERTH_EXIT_CODE_MAP=1:2, 3:9,143"}, exit: 143, want: 0},
			{name: "flag beats env", env: []string{"BERTH_EXIT_CODE_MAP=3:9"}, args: []string{"-exit-code-map", "3:8"}, exit: 3, want: 8},
			{name: "config", args: []string{"-config", cfg}, exit: 5, want: 6},
			{name: "flag beats config for its code", args: []string{"-config", cfg, "-exit-code-map", "3:0"}, exit: 3, want: 0},
			{name: "config's other codes stay", args: []string{"-config", cfg, "-exit-code-map", "3:0"}, exit: 5, want: 6},
		} {
			args := append(append([]string{"-control-socket", "off", "-log-level", "info"}, c.args...), "--", "sh", "-c", fmt.Sprintf("exit %d", c.exit))
			b := harness.RunBerth(t, harness.BerthOpts{Env: c.env, Args: args})
			if code := b.Wait(20 * time.Second); code != c.want {
				t.Errorf("%s: child exits %d: want berth to exit %d, have %d\n%s", c.name, c.exit, c.want, code, b.Stderr.String())
				continue
			}
			mapped := fmt.Sprintf("exit code mapped: code=%d exit=%d", c.exit, c.want)
			if !strings.Contains(b.Stderr.String(), mapped) {
				t.Errorf("%s: want %q in berth's log, have:\n%s", c.name, mapped, b.Stderr.String())
			}
		}
		for _, c := range []struct {
			env  []string
			args []string
			want string
		}{
			{args: []string{"-exit-code-map", "256:0"}, want: `berth: invalid value "256:0" for flag -exit-code-map: exit code mapping "256:0": exit code 256 out of range 0-255`},
			{args: []string{"-exit-code-map", "143:TERM"}, want: `berth: invalid value "143:TERM" for flag -exit-code-map: exit code mapping "143:TERM": "TERM" is not an exit code`},
			{args: []string{"-exit-code-map", "143:0", "-exit-code-map", "143:1"}, want: "berth: -exit-code-map: 143 mapped twice (to 0 and to 1)"},
			{env: []string{"BERTH_EXIT_CODE_MAP=143:0,x"}, want: `berth: BERTH_EXIT_CODE_MAP="143:0,x": exit code mapping "x": "x" is not an exit code`},
		} {
			b := harness.RunBerth(t, harness.BerthOpts{Env: c.env, Args: append(c.args, "--", "true")})
			code := b.Wait(20 * time.Second)
			lines := strings.Split(strings.TrimSpace(b.Stderr.String()), "\n")
			if code != 64 || len(lines) != 1 || !strings.HasPrefix(lines[0], c.want) {
				t.Errorf("%v %v: want exit 64 and one line %q..., have %d:\n%s", c.env, c.args, c.want, code, b.Stderr.String())
			}
		}
		bad := secWriteFile(t, dir+"/bad.hcl", "exit_code_map = {\n  143 = 300\n}\n")
		for _, argv := range [][]string{{"validate", "-config", bad}, {"-config", bad, "--", "true"}} {
			b := harness.RunBerth(t, harness.BerthOpts{Args: argv})
			code := b.Wait(20 * time.Second)
			if want := bad + ":2:9: exit_code_map: 143 must map to an exit code 0-255"; code != 78 || !strings.Contains(b.Stderr.String(), want) {
				t.Errorf("berth %v: want exit 78 and %q, have %d:\n%s", argv, want, code, b.Stderr.String())
			}
		}
	})
}
