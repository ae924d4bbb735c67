package tests

// Pristine environment (README "Exit code mapping and a pristine environment"; envconsul's `pristine`, chamber
// exec --pristine): the processes berth starts get only what berth gives them, not berth's environment.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestPristineEnvironment: under pristine (config key, flag or BERTH_PRISTINE) the main command and a job see
// exactly their env block, the secret blocks' variables and the inherited references berth resolved (from
// moto), and nothing else of berth's environment: no PATH, no AWS_* berth used, no BERTH_*, no plain inherited
// variable, no reference left alone by -no-resolve. Without it they see all of that, as before.
func TestPristineEnvironment(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	a.Secret(t, "app/db", `{"username":"pristine-user","password":"pristine-pass-1"}`)
	a.Param(t, "/app/api-key", "pristine-api-key", true)
	values := []string{"pristine-user", "pristine-pass-1", "pristine-api-key"}
	dir := t.TempDir()
	mainOut, jobOut := filepath.Join(dir, "main.json"), filepath.Join(dir, "job.json")

	config := func(pristine string) string {
		mainArgv, _ := json.Marshal([]string{app, "-env-json", mainOut})
		jobArgv, _ := json.Marshal([]string{app, "-env-json", jobOut})
		return secWriteFile(t, filepath.Join(dir, "berth-"+strings.ReplaceAll(pristine, " ", "")+".hcl"), fmt.Sprintf(`
%s
main {
  command = %s
  after   = ["first"]
  env     = { FROM_BLOCK = "main-block", DSN = "db://app:${secret("secretsmanager:app/db:password")}@db" }
}

job "first" {
  type    = "oneshot"
  command = %s
  env     = { JOB_ONLY = "job-block" }
}

secret "db" {
  secretsmanager = "app/db"
  env            = { DB_USER = "username" }
}
`, pristine, mainArgv, jobArgv))
	}
	inherited := a.env("",
		"INHERITED_PLAIN=plain-value",
		"API_KEY=ssm:/app/api-key",        // a reference in berth's environment: resolved, so given
		"LEFT_ALONE=ssm:/app/not-fetched", // -no-resolve: berth leaves it alone, so under pristine it is not given
		"BERTH_NO_RESOLVE=LEFT_ALONE",
	)
	wantMain := map[string]string{
		"API_KEY":    "pristine-api-key",
		"DB_USER":    "pristine-user",
		"FROM_BLOCK": "main-block",
		"DSN":        "db://app:pristine-pass-1@db",
	}
	wantJob := map[string]string{
		"API_KEY":  "pristine-api-key",
		"DB_USER":  "pristine-user",
		"JOB_ONLY": "job-block",
	}
	exact := func(t *testing.T, what string, have, want map[string]string) {
		t.Helper()
		secCompare(t, have, want)
		if extra := slices.Sorted(maps.Keys(have)); !slices.Equal(extra, slices.Sorted(maps.Keys(want))) {
			t.Errorf("%s: want exactly the variables %v, have %v", what, slices.Sorted(maps.Keys(want)), extra)
		}
	}
	run := func(t *testing.T, env []string, args ...string) {
		t.Helper()
		os.Remove(mainOut)
		os.Remove(jobOut)
		b := secBerth(t, false, env, args...)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		secNoValues(t, "berth's stderr", b.Stderr.String(), values...)
	}

	for _, tc := range []struct {
		name string
		key  string   // top-level line of the config
		env  []string // added to berth's environment
		args []string
	}{
		{name: "config", key: "pristine = true"},
		{name: "flag", args: []string{"-pristine"}},
		{name: "BERTH_PRISTINE", env: []string{"BERTH_PRISTINE=true"}},
		{name: "flag beats the config", key: "pristine = false", args: []string{"-pristine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(t, append(slices.Clone(inherited), tc.env...), append(append([]string{"run"}, tc.args...), "-config", config(tc.key))...)
			exact(t, "main", secChildEnv(t, mainOut), wantMain)
			exact(t, "job first", secChildEnv(t, jobOut), wantJob)
		})
	}

	t.Run("without pristine", func(t *testing.T) {
		run(t, inherited, "run", "-config", config(""))
		have := secChildEnv(t, mainOut)
		secCompare(t, have, wantMain)
		for _, k := range []string{"PATH", "INHERITED_PLAIN", "AWS_ENDPOINT_URL", "BERTH_NO_RESOLVE"} {
			if _, ok := have[k]; !ok {
				t.Errorf("%s: not inherited without pristine", k)
			}
		}
		if have["LEFT_ALONE"] != "ssm:/app/not-fetched" {
			t.Errorf("LEFT_ALONE: want the -no-resolve reference as it was, have %q", have["LEFT_ALONE"])
		}
		if _, ok := have["JOB_ONLY"]; ok {
			t.Error("the job's env block reached the main command")
		}
	})

	t.Run("zero config", func(t *testing.T) {
		b := secBerth(t, false, inherited, "-pristine", "--", app, "-env-json", mainOut)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		exact(t, "main", secChildEnv(t, mainOut), map[string]string{"API_KEY": "pristine-api-key"})
	})
}
