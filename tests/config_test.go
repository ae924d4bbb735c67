package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// badConfigs each hold one mistake; want is the "line:col: text" berth must report after the file name.
var badConfigs = []struct {
	name    string
	file    string // .hcl or .json
	content string
	want    string
}{
	{"syntax error", "syntax.hcl", "job \"a\" {\n  command = [\"true\"\n}\n", ":3:1: Missing item separator"},
	{"unknown key", "unknown.hcl", "log_level = \"info\"\nbogus = 1\n", `:2:1: Unsupported argument: An argument named "bogus"`},
	{"unknown key in block", "unknownblock.hcl", "job \"a\" {\n  command = [\"true\"]\n  restrat = \"always\"\n}\n", `:3:3: Unsupported argument: An argument named "restrat"`},
	{"bad duration", "duration.hcl", "stop_timeout = \"10 parsecs\"\n", `:1:16: stop_timeout: bad duration "10 parsecs"`},
	{"unknown signal", "signal.hcl", "main {\n  command = [\"true\"]\n  stop_signal = \"SIGNOPE\"\n}\n", `:3:17: stop_signal: unknown signal "SIGNOPE"`},
	{"cycle in after", "cycle.hcl", "job \"a\" {\n  command = [\"true\"]\n  after = [\"b\"]\n}\njob \"b\" {\n  command = [\"true\"]\n  after = [\"a\"]\n}\n", ":7:12: after: cycle in after: a -> b -> a"},
	{"unknown job in after", "after.hcl", "main {\n  command = [\"true\"]\n  after = [\"migrate\"]\n}\n", `:3:12: after: no job named "migrate"`},
	{"bad user", "user.hcl", "job \"a\" {\n  command = [\"true\"]\n  user = \"no-such-user-xyz\"\n}\n", `:3:10: user: unknown user "no-such-user-xyz"`},
	{"bad rlimit name", "rlimit.hcl", "main {\n  command = [\"true\"]\n  rlimits = { nofiles = 4096 }\n}\n", `:3:15: rlimits: unknown rlimit "nofiles"`},
	{"bad rlimit value", "rlimitvalue.hcl", "main {\n  command = [\"true\"]\n  rlimits = { nofile = \"lots\" }\n}\n", `:3:24: rlimits: rlimit nofile: bad value "lots"`},
	{"json unknown key", "bad.json", "{\n  \"main\": {\n    \"command\": [\"true\"],\n    \"stop_sginal\": \"TERM\"\n  }\n}\n", `:4:5: Extraneous JSON object property`},
}

func TestBadConfigValidateAndRun(t *testing.T) {
	app := harness.TestApp(t)
	for _, c := range badConfigs {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, c.file, c.content)
			want := "berth: " + path + c.want

			code, _, stderr := berthCmd(t, nil, "validate", "-config", path)
			if code != 78 {
				t.Fatalf("validate: want exit 78, have %d\nstderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, want) {
				t.Fatalf("validate: stderr lacks %q:\n%s", want, stderr)
			}
			noStackTrace(t, stderr)

			// the same file for run: nothing may start, not even the main command of the command line
			marker := filepath.Join(dir, "started")
			b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"run", "-control-socket", "off",
				"-config", path, "--", app, "-log", marker}})
			if have := b.Wait(20 * time.Second); have != 78 {
				t.Fatalf("run: want exit 78, have %d\nstderr:\n%s", have, b.Stderr.String())
			}
			if !strings.Contains(b.Stderr.String(), want) {
				t.Fatalf("run: stderr lacks %q:\n%s", want, b.Stderr.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("run with a bad config started the main command")
			}
			noStackTrace(t, b.Stderr.String())
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "many.hcl", `stop_signal = "SIGNOPE"
job "a" {
  command = ["true"]
  after   = ["b"]
  bogus   = 1
}
job "b" {
  command = ["true"]
  after   = ["a"]
  user    = "no-such-user-xyz"
  every   = "1 fortnight"
}
job "c" {
  command = ["true"]
  after   = ["zzz"]
}
`)
	code, _, stderr := berthCmd(t, nil, "validate", "-config", path)
	if code != 78 {
		t.Fatalf("want exit 78, have %d\n%s", code, stderr)
	}
	wants := []string{
		`:1:15: stop_signal: unknown signal "SIGNOPE"`,
		`:5:3: Unsupported argument: An argument named "bogus"`,
		`:9:14: after: cycle in after: a -> b -> a`,
		`:10:13: user: unknown user "no-such-user-xyz"`,
		`:11:13: every: bad duration "1 fortnight"`,
		`:15:14: after: no job named "zzz"`,
	}
	for _, w := range wants {
		if !strings.Contains(stderr, "berth: "+path+w) {
			t.Errorf("stderr lacks %q", path+w)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
	// one line per problem (a bad `every` is not also "only a oneshot job can be periodic"), each naming the file
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(wants) {
		t.Errorf("want %d problems, have %d:\n%s", len(wants), len(lines), stderr)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "berth: "+path+":") {
			t.Errorf("line does not start with berth: FILE:line:col: %q", line)
		}
	}
}

func TestValidateGoodConfig(t *testing.T) {
	dir := t.TempDir()
	good := `log_level = "debug"
stop_timeout = "5s"
main {
  command = ["/bin/true"]
  after   = ["migrate"]
  rlimits = { nofile = 4096, core = "0:unlimited" }
  umask   = "0027"
  env     = { HOME_DIR = env("HOME", "/root") }
}
job "migrate" {
  type    = "oneshot"
  command = ["/bin/true"]
}
job "shipper" {
  type         = "service"
  command      = ["/bin/sleep", "1000"]
  restart      = "on-failure"
  max_restarts = 3
  optional     = true
  pre_stop { command = ["/bin/true"], timeout = "2s" }
}
logs {
  format = "json"
}
`
	for _, name := range []string{"good.hcl"} {
		path := writeFile(t, dir, name, good)
		code, stdout, stderr := berthCmd(t, nil, "validate", "-config", path)
		if code != 0 {
			t.Fatalf("want exit 0, have %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, path+": ok") {
			t.Fatalf("stdout lacks %q: %q", path+": ok", stdout)
		}
	}
	// the same structure as JSON
	js := writeFile(t, dir, "good.json", `{"main": {"command": ["/bin/true"], "after": ["migrate"]},
 "job": {"migrate": {"type": "oneshot", "command": ["/bin/true"]}}}`)
	if code, _, stderr := berthCmd(t, nil, "validate", "-config", js); code != 0 {
		t.Fatalf("json: want exit 0, have %d\n%s", code, stderr)
	}
}

func TestBerthConfigEnv(t *testing.T) {
	app := harness.TestApp(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "main.log")
	path := writeFile(t, dir, "app.hcl", "main {\n  command = "+hclList(app, "-log", out, "-env", "FROM_FILE")+
		"\n  env = { FROM_FILE = \"yes\" }\n}\n")
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Env: []string{"BERTH_CONFIG=" + path},
		Args: []string{"-control-socket", "off"}})
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	if !strings.Contains(b.Stdout.String(), "FROM_FILE=yes set=true") {
		t.Fatalf("main from BERTH_CONFIG did not run with its env; stdout:\n%s", b.Stdout.String())
	}
	harness.WaitFile(t, out, "ready", time.Second)

	// validate reads BERTH_CONFIG too
	bad := writeFile(t, dir, "bad.hcl", "bogus = 1\n")
	code, _, stderr := berthCmd(t, []string{"BERTH_CONFIG=" + bad}, "validate")
	if code != 78 || !strings.Contains(stderr, bad+":1:1:") {
		t.Fatalf("validate with BERTH_CONFIG: want 78 and %s:1:1, have %d\n%s", bad, code, stderr)
	}
}

// TestStopSignalPrecedence: flag > env > file > default, observed as the signal the child gets when berth
// is told to stop.
func TestStopSignalPrecedence(t *testing.T) {
	app := harness.TestApp(t)
	all := []string{"TERM", "USR1", "USR2", "HUP"}
	cases := []struct {
		name string
		env  []string
		flag []string
		want string
	}{
		{"default", nil, nil, "TERM"},
		{"file", nil, nil, "USR1"},
		{"env beats file", []string{"BERTH_STOP_SIGNAL=SIGUSR2"}, nil, "USR2"},
		{"flag beats env", []string{"BERTH_STOP_SIGNAL=SIGUSR2"}, []string{"-stop-signal", "HUP"}, "HUP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			content := "stop_timeout = \"3s\"\n"
			if c.name != "default" {
				content += "stop_signal = \"SIGUSR1\"\n"
			}
			cfg := writeFile(t, dir, "stop.hcl", content)
			log := filepath.Join(dir, "app.log")
			var others []string
			for _, s := range all {
				if s != c.want {
					others = append(others, s)
				}
			}
			args := append([]string{"run", "-control-socket", "off", "-config", cfg}, c.flag...)
			args = append(args, "--", app, "-log", log, "-exit-on", c.want+":0", "-trap", strings.Join(others, ","))
			b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Env: c.env, Args: args})
			harness.WaitFile(t, log, "ready", 20*time.Second)
			b.Signal(syscall.SIGTERM)
			// a wrong signal is only logged by the child; berth then SIGKILLs it after 3s (exit 137)
			if have := b.Wait(20 * time.Second); have != 0 {
				data, _ := os.ReadFile(log)
				t.Fatalf("want exit 0 (child got SIG%s), have %d; child log:\n%s\nstderr:\n%s", c.want, have, data, b.Stderr.String())
			}
			data, _ := os.ReadFile(log)
			if got := strings.Count(string(data), "signal "); got != 1 || !strings.Contains(string(data), "signal "+c.want) {
				t.Fatalf("want exactly SIG%s, child log:\n%s", c.want, data)
			}
		})
	}
}

// TestMainProcessSettings: rlimits, umask, user, dir and env of the main block reach the child.
func TestMainProcessSettings(t *testing.T) {
	app := harness.TestApp(t)
	work, err := os.MkdirTemp("", "berth-dir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, t.TempDir(), "main.hcl", `main {
  rlimits = { nofile = 4096 }
  umask   = "0027"
  user    = "nobody"
  dir     = "`+work+`"
  env     = { GREETING = "hello = \"world\" $HOME" }
}
`)
	b := harness.RunBerth(t, harness.BerthOpts{PID1: true, Args: []string{"run", "-control-socket", "off", "-config", cfg,
		"--", app, "-nofile", "-umask", "-cwd", "-id", "-env", "GREETING"}})
	if have := b.Wait(20 * time.Second); have != 0 {
		t.Fatalf("want exit 0, have %d\n%s", have, b.Stderr.String())
	}
	out := b.Stdout.String()
	for _, want := range []string{
		"nofile=4096:4096\n",
		"umask=0027\n",
		"cwd=" + work + "\n",
		"uid=65534 gid=65534 groups=[]\n",
		`GREETING=hello = "world" $HOME set=true` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, b.Stderr.String())
	}
}
