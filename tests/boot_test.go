package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// bootPhase is one step of a boot scenario, in the shape of tailscale's TestContainerBoot: what the test does
// when the phase begins, then what must be true before the next one.
type bootPhase struct {
	Signal syscall.Signal // sent to berth when the phase begins (0: nothing)

	WantApp    []string          // lines the app's event log holds by the end of the phase ("ready", "signal QUIT")
	WantEnv    map[string]string // what the main command sees of these variables ("" = unset)
	WantStderr string            // a substring of berth's stderr by the end of the phase
	WantExit   *int              // berth's exit code; nil = still running at the end of the phase
}

func exitWith(code int) *int { return &code }

// TestBootPhases: the life of a container from the user's side, one scenario per row. $APP, $LOG and $ENV in
// Args, Env and Config are the test app, its event log and the file where it writes what it saw of WantEnv.
func TestBootPhases(t *testing.T) {
	app := harness.TestApp(t)
	cases := []struct {
		name   string
		Env    []string
		Args   []string
		Config string // written to $DIR/berth.hcl and passed with -config
		Phases []bootPhase
	}{
		{
			name:   "zero config: the exit code passes through",
			Args:   []string{"--", "$APP", "-code", "3"},
			Phases: []bootPhase{{WantExit: exitWith(3)}},
		},
		{
			name: "SIGTERM reaches the app, whose exit code is berth's",
			Args: []string{"--", "$APP", "-log", "$LOG", "-exit-on", "TERM:42"},
			Phases: []bootPhase{
				{WantApp: []string{"ready"}},
				{Signal: syscall.SIGTERM, WantApp: []string{"signal TERM"}, WantExit: exitWith(42)},
			},
		},
		{
			name: "BERTH_SIGNAL_REWRITE turns TERM into QUIT",
			Env:  []string{"BERTH_SIGNAL_REWRITE=TERM:QUIT"},
			Args: []string{"--", "$APP", "-log", "$LOG", "-trap", "TERM", "-exit-on", "QUIT:7"},
			Phases: []bootPhase{
				{WantApp: []string{"ready"}},
				{Signal: syscall.SIGTERM, WantApp: []string{"signal QUIT"}, WantExit: exitWith(7)},
			},
		},
		{
			name: "an app that ignores SIGTERM is killed after the stop timeout",
			Env:  []string{"BERTH_STOP_TIMEOUT=300ms"},
			Args: []string{"--", "$APP", "-log", "$LOG", "-ignore", "TERM", "-sleep", "1m"},
			Phases: []bootPhase{
				{WantApp: []string{"ready"}},
				{Signal: syscall.SIGTERM, WantStderr: "did not stop in time, sending SIGKILL", WantExit: exitWith(137)},
			},
		},
		{
			name: "config file: the main command, its env block over the host's, BERTH_* over the file",
			Env:  []string{"HOST_VAR=from-host", "SHADOWED=from-host", "BERTH_LOG_LEVEL=debug"},
			Config: `log_level = "warn"
main {
  command = ["$APP", "-log", "$LOG", "-env", "HOST_VAR,SHADOWED,OWN,UNSET", "-env-json", "$ENV", "-sleep", "1m"]
  env = { SHADOWED = "from-file", OWN = "own" }
}
`,
			Phases: []bootPhase{
				{
					WantApp:    []string{"ready"},
					WantEnv:    map[string]string{"HOST_VAR": "from-host", "SHADOWED": "from-file", "OWN": "own", "UNSET": ""},
					WantStderr: "[DEBUG]", // BERTH_LOG_LEVEL=debug won over the file's warn
				},
				{Signal: syscall.SIGTERM, WantExit: exitWith(143)},
			},
		},
	}
	for _, tc := range cases {
		for _, m := range modes {
			t.Run(tc.name+"/"+m.name, func(t *testing.T) {
				dir := t.TempDir()
				logPath, envPath := filepath.Join(dir, "app.log"), filepath.Join(dir, "env.json")
				expand := strings.NewReplacer("$APP", app, "$LOG", logPath, "$ENV", envPath, "$DIR", dir).Replace
				var args, env []string
				if tc.Config != "" {
					cfg := filepath.Join(dir, "berth.hcl")
					if err := os.WriteFile(cfg, []byte(expand(tc.Config)), 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "run", "-config", cfg)
				}
				for _, a := range tc.Args {
					args = append(args, expand(a))
				}
				for _, e := range tc.Env {
					env = append(env, expand(e))
				}
				b := harness.RunBerth(t, harness.BerthOpts{PID1: m.pid1, Env: env, Args: args})
				for i, ph := range tc.Phases {
					if ph.Signal != 0 {
						b.Signal(ph.Signal)
					}
					for _, line := range ph.WantApp {
						harness.Eventually(t, 10*time.Second, fmt.Sprintf("phase %d: ", i)+"the app logs "+line, func() bool {
							data, _ := os.ReadFile(logPath)
							return strings.Contains(string(data), line)
						})
					}
					if ph.WantEnv != nil {
						harness.Eventually(t, 10*time.Second, fmt.Sprintf("phase %d: ", i)+"the app writes its environment", func() bool {
							_, err := os.Stat(envPath)
							return err == nil
						})
						var seen map[string]string
						data, _ := os.ReadFile(envPath)
						if err := json.Unmarshal(data, &seen); err != nil {
							t.Fatalf("phase %d: the app's env file: %v", i, err)
						}
						for k, want := range ph.WantEnv {
							if have, ok := seen[k]; have != want || (want == "" && ok) {
								t.Errorf("phase %d: the app sees %s=%q (set: %v), want %q", i, k, have, ok, want)
							}
						}
					}
					if ph.WantStderr != "" {
						harness.Eventually(t, 10*time.Second, fmt.Sprintf("phase %d: ", i)+"berth logs "+ph.WantStderr, func() bool {
							return strings.Contains(b.Stderr.String(), ph.WantStderr)
						})
					}
					if ph.WantExit != nil {
						if code := b.Wait(30 * time.Second); code != *ph.WantExit {
							t.Fatalf("phase %d: berth exit %d, want %d\nstderr:\n%s", i, code, *ph.WantExit, b.Stderr.String())
						}
					} else {
						select {
						case <-b.Done():
							t.Fatalf("phase %d: berth exited early (%d)\nstderr:\n%s", i, b.Wait(0), b.Stderr.String())
						default:
						}
					}
				}
				if strings.Contains(b.Stderr.String(), "goroutine ") {
					t.Errorf("stack trace on berth's stderr:\n%s", b.Stderr.String())
				}
			})
		}
	}
}
