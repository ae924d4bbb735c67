package config_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/onchange"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
	"github.com/berth-dev/berth/telemetry"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

// envValue is the value of key in a KEY=VALUE list.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// clearPos drops the positions, which differ between the HCL and the JSON form of a file.
func clearPos(f *config.File) {
	f.Filename = ""
	f.Positions = nil
}

// specExample reads testdata/spec.hcl (the README's full-mode example, verbatim) or its JSON twin, with the user "app"
// replaced by "nobody", which exists on the test machines.
func specExample(t *testing.T, name, from, to string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(from)) {
		t.Fatalf("%s does not contain %q", name, from)
	}
	return bytes.Replace(src, []byte(from), []byte(to), 1)
}

func TestSpecExample(t *testing.T) {
	nobody, err := supervisor.LookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	nofile, err := supervisor.ParseRlimit("nofile", "65536")
	if err != nil {
		t.Fatal(err)
	}
	want := &config.File{
		LogLevel: "info",
		Main: &supervisor.JobSpec{
			Spec: supervisor.Spec{
				Name:        supervisor.MainName,
				Argv:        []string{"java", "-jar", "/app/app.jar"},
				User:        nobody,
				Umask:       -1,
				StopSignal:  syscall.SIGTERM,
				StopTimeout: 25 * time.Second,
				Rlimits:     []supervisor.Rlimit{nofile},
			},
			After: []string{"migrate"},
		},
		Jobs: []supervisor.JobSpec{{
			Spec: supervisor.Spec{Name: "migrate", Argv: []string{"/app/migrate", "up"}, Umask: -1},
			Type: supervisor.Oneshot, Restart: supervisor.RestartNever,
		}},
		Secrets: []secrets.Block{
			{
				Name: "db", SecretsManager: "prod/app/db",
				EnvMap: map[string]string{"DB_USER": "username", "DB_PASSWORD": "password"},
				UID:    -1, GID: -1,
			},
			{
				Name: "app-config", KMSFile: "/app/config.json.enc", File: "/run/secrets/config.json",
				Mode: 0o400, UID: -1, GID: -1,
			},
		},
		SecretsOptions: secrets.Config{Timeout: 30 * time.Second, Concurrency: 8},
		Services: []discovery.ServiceConfig{{
			Name: "app", Port: 8080, Address: "auto", Tags: []string{"v1"},
			DeregisterCriticalAfter: time.Minute,
			Checks: []discovery.CheckConfig{{
				HTTP:     "http://127.0.0.1:8080/health",
				Interval: 10 * time.Second, Timeout: 2 * time.Second, InitialStatus: "critical",
				SuccessBeforePassing: 1, FailuresBeforeCritical: 1,
			}},
		}},
		Peers: []discovery.PeersConfig{{
			Name: "cluster", Service: "app-hz", PassingOnly: ptr(true), Min: 1, Wait: 30 * time.Second,
			Env: "HZ_MEMBERS",
		}},
		Telemetry: telemetry.MetricsConfig{Prometheus: "127.0.0.1:9102"},
		Logs:      telemetry.StreamConfig{Format: "raw", MaxLine: 1 << 20},
	}
	for _, tc := range []struct {
		file, from, to string
		wantPos        [4]string // main, job migrate, secret app-config, service app
	}{
		{"spec.hcl", `user         = "app"`, `user         = "nobody"`,
			[4]string{"spec.hcl:3:1", "spec.hcl:12:1", "spec.hcl:22:1", "spec.hcl:27:1"}},
		{"spec.json", `"user": "app"`, `"user": "nobody"`,
			[4]string{"spec.json:3:11", "spec.json:12:16", "spec.json:22:19", "spec.json:28:12"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			have, err := config.Parse(specExample(t, tc.file, tc.from, tc.to), tc.file, config.Funcs{})
			if err != nil {
				t.Fatal(err)
			}
			if have.Filename != tc.file {
				t.Errorf("Filename: want %q, have %q", tc.file, have.Filename)
			}
			havePos := [4]string{have.Positions["main"], have.Positions[`job "migrate"`], have.Positions[`secret "app-config"`], have.Positions[`service "app"`]}
			if havePos != tc.wantPos {
				t.Errorf("positions: want %q, have %q", tc.wantPos, havePos)
			}
			clearPos(have)
			if diff := cmp.Diff(want, have, cmpopts.IgnoreUnexported(supervisor.Spec{})); diff != "" {
				t.Errorf("-want +have:\n%s", diff)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"berth.hcl":  `log_level = "debug"`,
		"berth.json": `{"log_level": "debug"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := config.Load(path, config.Funcs{})
			if err != nil {
				t.Fatal(err)
			}
			if want, have := "debug", f.LogLevel; want != have {
				t.Errorf("want %q, have %q", want, have)
			}
			if want, have := path, f.Filename; want != have {
				t.Errorf("Filename: want %q, have %q", want, have)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := config.Load(filepath.Join(dir, "nope.hcl"), config.Funcs{})
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.ExitCode() != 78 {
			t.Fatalf("want *config.Error with exit code 78, have %#v", err)
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("want an error wrapping os.ErrNotExist, have %v", err)
		}
	})
}

func TestBadConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		json      bool
		want      string // "line:col: fragment"
	}{
		{name: "syntax error", src: "main {\n  command = [\"a\"\n}\n", want: "3:1: Missing item separator"},
		{name: "unclosed block", src: "main {\n", want: "1:6: Unclosed configuration block"},
		{name: "unknown key", src: "main {\n  comand = [\"a\"]\n}\n", want: `2:3: Unsupported argument: An argument named "comand" is not expected here. Did you mean "command"?`},
		{name: "unknown top key", src: "log_lvl = \"info\"\n", want: "1:1: Unsupported argument"},
		{name: "unknown block", src: "mian {\n}\n", want: `1:1: Unsupported block type: Blocks of type "mian" are not expected here. Did you mean "main"?`},
		{name: "bad duration", src: "stop_timeout = \"10\"\n", want: `1:16: stop_timeout: bad duration "10"`},
		{name: "negative duration", src: "drain_delay = \"-5s\"\n", want: `1:15: drain_delay: negative duration "-5s"`},
		{name: "zero hook timeout", src: "main {\n  pre_stop {\n    command = [\"x\"]\n    timeout = \"0s\"\n  }\n}\n", want: "4:15: timeout must be above zero"},
		{name: "unknown signal", src: "main {\n  stop_signal = \"SIGFOO\"\n}\n", want: `2:17: stop_signal: unknown signal "SIGFOO"`},
		{name: "unknown signal in rewrite", src: "signal_rewrite = { TERM = \"QUITE\" }\n", want: `1:27: signal_rewrite: unknown signal "QUITE"`},
		{name: "exit code out of range", src: "exit_code_map = { 143 = 0, 256 = 0 }\n", want: `1:28: exit_code_map: "256" is not an exit code 0-255`},
		{name: "exit code map to a signal", src: "exit_code_map = {\n  143 = \"TERM\"\n}\n", want: `2:9: exit_code_map: 143 must map to an exit code 0-255, such as 0`},
		{name: "exit code map to 256", src: "exit_code_map = { 143 = 256 }\n", want: `1:25: exit_code_map: 143 must map to an exit code 0-255`},
		{name: "exit code map not a map", src: "exit_code_map = [143]\n", want: `1:17: exit_code_map must be a map`},
		{name: "exit code mapped twice", src: "exit_code_map = { 143 = 0, \"0143\" = 1 }\n", want: `1:28: exit_code_map: 143 mapped twice`},
		{name: "bad signal scope", src: "signal_scope = \"pgid\"\n", want: `1:16: signal_scope: "pgid" is not one of ["group" "child"]`},
		{name: "pdeathsig STOP", src: "pdeathsig = \"STOP\"\n", want: `1:13: pdeathsig: parent death signal SIGSTOP: it would stop berth`},
		{name: "pdeathsig CHLD", src: "pdeathsig = 17\n", want: `1:13: pdeathsig: parent death signal SIGCHLD: berth never acts on it`},
		{name: "pristine not a bool", src: "pristine = \"yes\"\n", want: `1:12: pristine`},
		{name: "bad log level", src: "log_level = \"loud\"\n", want: `1:13: log_level: "loud" is not one of`},
		{name: "cycle in after", src: "job \"a\" {\n  command = [\"a\"]\n  after = [\"b\"]\n}\njob \"b\" {\n  command = [\"b\"]\n  after = [\"a\"]\n}\n", want: "7:12: after: cycle in after: a -> b -> a"},
		{name: "three-job cycle", src: "job \"a\" {\n  command = [\"a\"]\n  after = [\"c\"]\n}\njob \"b\" {\n  command = [\"b\"]\n  after = [\"a\"]\n}\njob \"c\" {\n  command = [\"c\"]\n  after = [\"b\"]\n}\n", want: "7:12: after: cycle in after: a -> c -> b -> a"},
		{name: "self in after", src: "job \"a\" {\n  command = [\"a\"]\n  after = [\"a\"]\n}\n", want: "3:12: after: cycle in after: a -> a"},
		{name: "unknown job in after", src: "main {\n  after = [\"migrate\"]\n}\n", want: `2:12: after: no job named "migrate"`},
		{name: "main in after", src: "job \"a\" {\n  command = [\"a\"]\n  after = [\"main\"]\n}\n", want: `3:12: after: "main" cannot be waited for`},
		{name: "job named main", src: "job \"main\" {\n  command = [\"a\"]\n}\n", want: `1:5: job name "main" is reserved`},
		{name: "bad job name", src: "job \"a b\" {\n  command = [\"a\"]\n}\n", want: `1:5: job name "a b"`},
		{name: "duplicate job", src: "job \"a\" {\n  command = [\"a\"]\n}\njob \"a\" {\n  command = [\"a\"]\n}\n", want: `4:5: duplicate job "a" (first at bad.hcl:1:1)`},
		{name: "duplicate main", src: "main {\n}\nmain {\n}\n", want: "3:1: duplicate main block (first at bad.hcl:1:1)"},
		{name: "duplicate hook", src: "main {\n  pre_start { command = [\"a\"] }\n  pre_start { command = [\"b\"] }\n}\n", want: "3:3: duplicate pre_start hook"},
		{name: "job without command", src: "job \"a\" {\n  type = \"oneshot\"\n}\n", want: `1:9: Missing required argument: The argument "command" is required`},
		{name: "empty command", src: "main {\n  command = []\n}\n", want: "2:13: command must not be empty"},
		{name: "periodic service", src: "job \"a\" {\n  command = [\"a\"]\n  type = \"service\"\n  every = \"1h\"\n}\n", want: "4:3: every: only a oneshot job can be periodic"},
		{name: "oneshot restart always", src: "job \"a\" {\n  command = [\"a\"]\n  type = \"oneshot\"\n  restart = \"always\"\n}\n", want: "4:13: restart: a oneshot job cannot restart"},
		{name: "bad restart", src: "job \"a\" {\n  command = [\"a\"]\n  restart = \"sometimes\"\n}\n", want: `3:13: restart: "sometimes" is not one of`},
		{name: "negative max_restarts", src: "job \"a\" {\n  command = [\"a\"]\n  max_restarts = -1\n}\n", want: "3:18: max_restarts must be a whole number from 0"},
		{name: "bad user", src: "user = \"no-such-user-berth\"\n", want: `1:8: user: unknown user "no-such-user-berth"`},
		{name: "bad group", src: "main {\n  user = \"root:no-such-group-berth\"\n}\n", want: `2:10: user: unknown group "no-such-group-berth"`},
		{name: "bad rlimit value", src: "main {\n  rlimits = { nofile = \"lots\" }\n}\n", want: `2:24: rlimits: rlimit nofile: bad value "lots"`},
		{name: "unknown rlimit", src: "main {\n  rlimits = { files = 10 }\n}\n", want: `2:15: rlimits: unknown rlimit "files"`},
		{name: "rlimit soft above hard", src: "main {\n  rlimits = { nofile = \"10:5\" }\n}\n", want: "2:24: rlimits: rlimit nofile: soft 10 above hard 5"},
		{name: "fractional rlimit", src: "main {\n  rlimits = { nofile = 1.5 }\n}\n", want: "2:24: rlimits: nofile must be a whole number"},
		{name: "numeric umask", src: "main {\n  umask = 0022\n}\n", want: `2:11: umask must be an octal string such as "0022"`},
		{name: "bad umask", src: "main {\n  umask = \"0999\"\n}\n", want: `2:11: umask: bad octal mode "0999"`},
		{name: "bad env name", src: "main {\n  env = { \"A=B\" = \"x\" }\n}\n", want: `2:11: env: "A=B" is not a valid variable name`},
		{name: "duplicate env key", src: "main {\n  env = { A = \"x\", A = \"y\" }\n}\n", want: `2:20: env: duplicate key "A"`},
		{name: "command not a list", src: "main {\n  command = \"java -jar app.jar\"\n}\n", want: "2:13: command: want list of string, have string"},
		{name: "bad port", src: "service \"app\" {\n  port = 70000\n}\n", want: "2:10: port must be a whole number from 1 to 65535, have 70000"},
		{name: "port as word", src: "service \"app\" {\n  port = \"http\"\n}\n", want: "2:10: port: want number, have string"},
		{name: "port zero", src: "service \"app\" {\n  port = 0\n}\n", want: "2:10: port must be a whole number from 1 to 65535, have 0"},
		{name: "check timeout above interval", src: "service \"app\" {\n  check {\n    tcp = \"x:1\"\n    interval = \"1s\"\n    timeout = \"2s\"\n  }\n}\n", want: "5:15: timeout must not exceed interval (1s)"},
		{name: "on_change without refresh", src: "secret \"db\" {\n  ssm = \"/a\"\n  file = \"/x\"\n  on_change = \"restart\"\n}\n", want: "4:3: on_change needs refresh"},
		{name: "relative secret file", src: "secret \"db\" {\n  ssm = \"/a\"\n  file = \"x.json\"\n}\n", want: `3:10: file: "x.json" is not an absolute path`},
		{name: "relative kms_file", src: "secret \"db\" {\n  kms_file = \"x.enc\"\n  env = \"X\"\n}\n", want: `2:14: kms_file: "x.enc" is not an absolute path`},
		{name: "empty json key", src: "secret \"db\" {\n  secretsmanager = \"x\"\n  env = { A = \"\" }\n}\n", want: "3:15: env: A maps to an empty key"},
		{name: "two check kinds", src: "service \"app\" {\n  port = 1\n  check {\n    http = \"http://x/\"\n    tcp = \"x:1\"\n  }\n}\n", want: "5:5: check: http and tcp both set"},
		{name: "check without kind", src: "service \"app\" {\n  port = 1\n  check {\n    interval = \"5s\"\n  }\n}\n", want: "3:3: check: needs one of http, tcp or exec"},
		{name: "bad check url", src: "service \"app\" {\n  port = 1\n  check { http = \"localhost:8080\" }\n}\n", want: `3:18: http: "localhost:8080" is not an http:// or https:// URL`},
		{name: "bad initial status", src: "service \"app\" {\n  port = 1\n  check {\n    tcp = \"x:1\"\n    initial_status = \"ok\"\n  }\n}\n", want: `5:22: initial_status: "ok" is not one of`},
		{name: "two sources in a secret", src: "secret \"db\" {\n  ssm = \"/a\"\n  secretsmanager = \"b\"\n  env = \"X\"\n}\n", want: `2:3: secret "db": secretsmanager and ssm both set`},
		{name: "secret without source", src: "secret \"db\" {\n  env = \"X\"\n}\n", want: `1:1: secret "db": needs one source`},
		{name: "secret without destination", src: "secret \"db\" {\n  ssm = \"/a\"\n}\n", want: `1:1: secret "db": needs a destination`},
		{name: "version_stage without secretsmanager", src: "secret \"db\" {\n  ssm = \"/a\"\n  version_stage = \"x\"\n  env = \"X\"\n}\n", want: "3:3: version_stage goes only with secretsmanager"},
		{name: "bad s3 url", src: "secret \"db\" {\n  s3 = \"bucket/key\"\n  env_prefix = \"X_\"\n}\n", want: `2:8: s3: "bucket/key" is not s3://bucket/key`},
		{name: "bad secret mode", src: "secret \"db\" {\n  ssm = \"/a\"\n  file = \"/x\"\n  mode = \"rw\"\n}\n", want: `4:10: mode: bad octal mode "rw"`},
		{name: "bad on_change", src: "secret \"db\" {\n  ssm = \"/a\"\n  file = \"/x\"\n  on_change = \"reload\"\n}\n", want: `4:15: on_change: "reload" is not "none", "restart" or "signal:SIGNAME"`},
		{name: "bad on_change signal", src: "secret \"db\" {\n  ssm = \"/a\"\n  file = \"/x\"\n  on_change = \"signal:SIGNOPE\"\n}\n", want: `4:15: on_change: unknown signal "SIGNOPE"`},
		{name: "whole-value env with ssm_path", src: "secret \"db\" {\n  ssm_path = \"/a/\"\n  env = \"X\"\n}\n", want: "3:3: env: ssm_path reads many parameters"},
		{name: "malformed template", src: "peers \"c\" {\n  service = \"hz\"\n  env = \"HZ\"\n  template = \"{{range .}}\"\n}\n", want: "4:14: template: template: c:1: unexpected EOF"},
		{name: "peers without destination", src: "peers \"c\" {\n  service = \"hz\"\n}\n", want: `1:1: peers "c": needs a destination`},
		{name: "bad prometheus address", src: "telemetry {\n  prometheus = \"9102\"\n}\n", want: `2:16: prometheus: "9102" is not a listen address`},
		{name: "bad logs format", src: "logs {\n  format = \"xml\"\n}\n", want: `2:12: format: "xml" is not one of`},
		{name: "bad consul scheme", src: "consul {\n  scheme = \"ftp\"\n}\n", want: `2:12: scheme: "ftp" is not one of`},
		{name: "bad consul mode", src: "consul {\n  mode = \"auto\"\n}\n", want: `2:10: mode: "auto" is not one of`},
		{name: "short session_ttl", src: "consul {\n  mode = \"catalog\"\n  session_ttl = \"5s\"\n}\n", want: `3:17: session_ttl 5s is outside`},
		{name: "secrets concurrency", src: "secrets {\n  concurrency = 0\n}\n", want: "2:17: concurrency must be a whole number from 1 to 1000"},
		{name: "extraneous label", src: "main \"x\" {\n}\n", want: "1:6: Extraneous label for main"},
		{name: "missing label", src: "job {\n  command = [\"a\"]\n}\n", want: "1:5: Missing name for job"},
		{name: "unset env()", src: "main {\n  dir = env(\"BERTH_TEST_UNSET\")\n}\n", want: `2:14: Invalid function argument: Invalid value for "name" parameter: environment variable "BERTH_TEST_UNSET" is not set`},
		{name: "secret() unavailable", src: "main {\n  env = { A = secret(\"ssm:/a\") }\n}\n", want: `2:15: Error in function call: Call to function "secret" failed: secret() not available.`},
		{name: "unknown function", src: "main {\n  dir = upper(\"x\")\n}\n", want: "2:9: Call to unknown function"},
		{name: "variable", src: "main {\n  dir = var.x\n}\n", want: "2:9: Variables not allowed"},
		{
			name: "positions after a comma block",
			src:  "service \"app\" {\n  port = 8080\n  check {http = \"http://x/\", interval = \"10\", timeout = \"2s\"}\n}\n",
			want: `3:41: interval: bad duration "10"`,
		},
		{name: "json unknown key", json: true, src: "{\n  \"main\": {\n    \"comand\": [\"a\"]\n  }\n}\n", want: `3:5: Extraneous JSON object property: No argument or block type is named "comand". Did you mean "command"?`},
		{name: "json syntax error", json: true, src: "{\n  \"log_level\": \"info\",\n}\n", want: "2:22: Trailing comma in object"},
		{name: "json bad duration", json: true, src: "{\"stop_timeout\": \"ten\"}", want: `1:18: stop_timeout: bad duration "ten"`},
		{name: "json cycle", json: true, src: `{"job": {"a": {"command": ["a"], "after": ["b"]}, "b": {"command": ["b"], "after": ["a"]}}}`, want: "1:85: after: cycle in after: a -> b -> a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filename := "bad.hcl"
			if tc.json {
				filename = "bad.json"
			}
			f, err := config.Parse([]byte(tc.src), filename, config.Funcs{})
			if err == nil {
				t.Fatalf("want an error, have none (%+v)", f)
			}
			var cerr *config.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("want *config.Error, have %T", err)
			}
			if want, have := 78, cerr.ExitCode(); want != have {
				t.Errorf("exit code: want %d, have %d", want, have)
			}
			want := filename + ":" + tc.want
			for _, p := range cerr.Problems {
				if strings.HasPrefix(p, want) {
					return
				}
			}
			t.Errorf("want a problem starting with\n  %s\nhave\n  %s", want, strings.Join(cerr.Problems, "\n  "))
		})
	}
}

func TestAllProblems(t *testing.T) {
	src := `log_level = "loud"
stop_timeout = "ten"
main {
  comand = ["a"]
  after  = ["nope"]
}
`
	_, err := config.Parse([]byte(src), "x.hcl", config.Funcs{})
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *config.Error, have %v", err)
	}
	want := []string{
		`x.hcl:1:13: log_level: "loud" is not one of ["trace" "debug" "info" "warn" "error"]`,
		`x.hcl:2:16: stop_timeout: bad duration "ten" (want e.g. "10s", "1m30s")`,
		`x.hcl:4:3: Unsupported argument: An argument named "comand" is not expected here. Did you mean "command"?`,
		`x.hcl:5:13: after: no job named "nope"`,
	}
	if diff := cmp.Diff(want, cerr.Problems); diff != "" {
		t.Errorf("-want +have:\n%s", diff)
	}
	if want, have := want[0]+" (and 3 more)", err.Error(); want != have {
		t.Errorf("Error(): want %q, have %q", want, have)
	}
	for _, p := range cerr.Problems {
		if strings.Contains(p, "\n") {
			t.Errorf("problem spans lines: %q", p)
		}
	}
}

func TestEnvFunc(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"APP_DIR": "/srv/app", "EMPTY": ""}[name]
		return v, ok
	}
	for _, tc := range []struct {
		expr, want string
	}{
		{`env("APP_DIR")`, "/srv/app"},
		{`"${env("APP_DIR")}/bin"`, "/srv/app/bin"},
		{`env("UNSET", "/default")`, "/default"},
		{`env("APP_DIR", "/default")`, "/srv/app"},
		{`env("EMPTY", "/default")`, ""},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			src := "main {\n  env = { X = " + tc.expr + " }\n}\n"
			f, err := config.Parse([]byte(src), "x.hcl", config.Funcs{Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if have := envValue(f.Main.Env, "X"); have != tc.want {
				t.Errorf("want %q, have %q", tc.want, have)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		src := `{"main": {"dir": "${env(\"APP_DIR\")}/x"}}`
		f, err := config.Parse([]byte(src), "x.json", config.Funcs{Env: env})
		if err != nil {
			t.Fatal(err)
		}
		if want, have := "/srv/app/x", f.Main.Dir; want != have {
			t.Errorf("want %q, have %q", want, have)
		}
	})
}

func TestSecretFunc(t *testing.T) {
	var refs []string
	fn := config.Funcs{Secret: func(ref string) (string, error) {
		refs = append(refs, ref)
		if !strings.HasPrefix(ref, "secretsmanager:") {
			return "", fmt.Errorf("malformed reference %q", ref)
		}
		return "\x00marker:" + ref + "\x00", nil
	}}
	src := `main {
  env = { DATABASE_URL = "postgres://app:${secret("secretsmanager:prod/db:password")}@db/app" }
}
`
	f, err := config.Parse([]byte(src), "x.hcl", fn)
	if err != nil {
		t.Fatal(err)
	}
	if want, have := "postgres://app:\x00marker:secretsmanager:prod/db:password\x00@db/app", envValue(f.Main.Env, "DATABASE_URL"); want != have {
		t.Errorf("want %q, have %q", want, have)
	}
	if want := []string{"secretsmanager:prod/db:password"}; !cmp.Equal(want, refs) {
		t.Errorf("hook calls: want %q, have %q", want, refs)
	}

	_, err = config.Parse([]byte("main {\n  dir = secret(\"bogus\")\n}\n"), "x.hcl", fn)
	if want := `x.hcl:2:17: Invalid function argument: Invalid value for "ref" parameter: malformed reference "bogus".`; err == nil || err.Error() != want {
		t.Errorf("want %q, have %v", want, err)
	}
}

func TestCheckRef(t *testing.T) {
	fn := config.Funcs{CheckRef: func(v string) error {
		if strings.HasPrefix(v, "ssm:") && len(v) == len("ssm:") {
			return errors.New("empty parameter name")
		}
		return nil
	}}
	src := `main {
  env = { A = "ssm:", B = "plain", C = "ssm:" }
}
job "j" {
  command = ["j"]
  env     = { D = "ssm:" }
}
secrets {
  skip_env = ["C"]
}
`
	_, err := config.Parse([]byte(src), "x.hcl", fn)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *config.Error, have %v", err)
	}
	want := []string{
		"x.hcl:2:15: env A: empty parameter name",
		"x.hcl:6:19: env D: empty parameter name",
	}
	if diff := cmp.Diff(want, cerr.Problems); diff != "" {
		t.Errorf("-want +have:\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	src := `
job "shipper" {
  command = ["shipper"]
}
job "backup" {
  command = ["backup"]
  every   = "1h"
}
job "warm" {
  command = ["warm"]
  type    = "oneshot"
  restart = "on-failure"
  max_restarts = 3
  optional = true
  umask   = "0027"
  pre_start {
    command = ["prep"]
  }
}
service "s" {
  check {
    exec = ["/check"]
  }
  check {
    tcp      = "127.0.0.1:1"
    interval = "2s"
  }
}
peers "p" {
  service = "x"
  file    = "/run/peers"
  on_change = "signal:HUP"
}
consul {
  required = true
}
secret "paths" {
  ssm_path  = "/prod/app/"
  env       = { DB_PASSWORD = "db/password" }
  file      = "/run/app.json"
  refresh   = "15m"
  on_change = "signal:USR1"
}
`
	f, err := config.Parse([]byte(src), "x.hcl", config.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		Type, Restart string
		Every         time.Duration
		MaxRestarts   int
		Optional      bool
	}
	var have []job
	for _, j := range f.Jobs {
		have = append(have, job{j.Type, j.Restart, j.Every, j.MaxRestarts, j.Optional})
	}
	want := []job{
		{supervisor.Service, supervisor.RestartAlways, 0, 0, false},
		{supervisor.Oneshot, supervisor.RestartNever, time.Hour, 0, false},
		{supervisor.Oneshot, supervisor.RestartOnFailure, 0, 3, true},
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("jobs -want +have:\n%s", diff)
	}
	if want, have := (&supervisor.Hook{Argv: []string{"prep"}, Timeout: 30 * time.Second}), f.Jobs[2].PreStart; !cmp.Equal(want, have) {
		t.Errorf("hook: want %+v, have %+v", want, have)
	}
	if want, have := 0o027, f.Jobs[2].Umask; have != want {
		t.Errorf("umask: want %v, have %v", want, have)
	}
	wantChecks := []discovery.CheckConfig{
		{Exec: []string{"/check"}, Interval: 10 * time.Second, Timeout: 5 * time.Second,
			InitialStatus: "critical", SuccessBeforePassing: 1, FailuresBeforeCritical: 1},
		{TCP: "127.0.0.1:1", Interval: 2 * time.Second, Timeout: 2 * time.Second,
			InitialStatus: "critical", SuccessBeforePassing: 1, FailuresBeforeCritical: 1},
	}
	if diff := cmp.Diff(wantChecks, f.Services[0].Checks); diff != "" {
		t.Errorf("checks -want +have:\n%s", diff)
	}
	if want, have := 0, f.Services[0].Port; want != have {
		t.Errorf("port: want %d, have %d", want, have)
	}
	wantSecret := secrets.Block{Name: "paths", SSMPath: "/prod/app/",
		EnvMap: map[string]string{"DB_PASSWORD": "db/password"}, File: "/run/app.json", Mode: 0o400,
		UID: -1, GID: -1, Refresh: 15 * time.Minute, OnChange: onchange.Action{Signal: syscall.SIGUSR1}}
	if diff := cmp.Diff(wantSecret, f.Secrets[0]); diff != "" {
		t.Errorf("secret -want +have:\n%s", diff)
	}
	if want, have := "x.hcl:37:1", f.Positions[`secret "paths"`]; want != have {
		t.Errorf("secret position: want %q, have %q", want, have)
	}
	if want, have := "signal:SIGUSR1", f.Secrets[0].OnChange.String(); want != have {
		t.Errorf("OnChange.String: want %q, have %q", want, have)
	}
	if want, have := (onchange.Action{Signal: syscall.SIGHUP}), f.Peers[0].OnChange; want != have {
		t.Errorf("on_change: want %+v, have %+v", want, have)
	}
	if want, have := (discovery.ConsulConfig{Required: true, Timeout: 30 * time.Second, Mode: discovery.ModeAgent}), *f.Consul; !cmp.Equal(want, have, cmpopts.IgnoreFields(discovery.ConsulConfig{}, "WrapTransport")) {
		t.Errorf("consul: want %+v, have %+v", want, have)
	}
	if want, have := "x.hcl:34:1", f.Positions["consul"]; want != have {
		t.Errorf("consul position: want %q, have %q", want, have)
	}
	if f.Redact != nil || f.StopTimeout != nil || f.LogLevel != "" || f.Main != nil {
		t.Errorf("unset top-level keys must stay unset: %+v", f)
	}
}

func TestTopLevel(t *testing.T) {
	src := `
log_level      = "warn"
log_format     = "json"
stop_signal    = "QUIT"
stop_timeout   = "20s"
kill_grace     = "1s"
drain_delay    = "0s"
signal_rewrite = { TERM = "QUIT", "SIGINT" = "15" }
user           = "0:0"
control_socket = "/run/berth.sock"
redact         = false
exit_code_map  = { 143 = 0, "130" = "0", 1 = 2 }
pristine       = true
signal_scope   = "child"
pdeathsig      = "term"
`
	f, err := config.Parse([]byte(src), "x.hcl", config.Funcs{})
	if err != nil {
		t.Fatal(err)
	}
	want := &config.File{
		Filename: "x.hcl", LogLevel: "warn", LogFormat: "json", StopSignal: syscall.SIGQUIT,
		StopTimeout: ptr(20 * time.Second), KillGrace: ptr(time.Second), DrainDelay: ptr(time.Duration(0)),
		SignalRewrite: map[syscall.Signal]syscall.Signal{syscall.SIGTERM: syscall.SIGQUIT, syscall.SIGINT: syscall.SIGTERM},
		User:          "0:0", Credential: &supervisor.Credential{UID: 0, GID: 0, Home: "/root", Name: "root"},
		ControlSocket: "/run/berth.sock", Redact: ptr(false),
		ExitCodeMap: map[int]int{143: 0, 130: 0, 1: 2}, Pristine: ptr(true),
		SignalScope: supervisor.SignalChild, ParentDeathSignal: syscall.SIGTERM,
		SecretsOptions: secrets.Config{Timeout: 30 * time.Second, Concurrency: 8},
		Logs:           telemetry.StreamConfig{Format: "raw", MaxLine: 1 << 20},
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("-want +have:\n%s", diff)
	}
}

func TestJobOrder(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"no jobs", ``, []string{"main"}},
		{"file order", "job \"b\" {\n command = [\"b\"]\n}\njob \"a\" {\n command = [\"a\"]\n}\n", []string{"b", "a", "main"}},
		{
			"after reorders",
			"main {\n after = [\"b\"]\n}\njob \"b\" {\n command = [\"b\"]\n after = [\"c\"]\n}\njob \"a\" {\n command = [\"a\"]\n}\njob \"c\" {\n command = [\"c\"]\n}\n",
			[]string{"a", "c", "b", "main"},
		},
		{
			"diamond",
			"job \"d\" {\n command = [\"d\"]\n after = [\"b\", \"c\"]\n}\njob \"c\" {\n command = [\"c\"]\n after = [\"a\"]\n}\njob \"b\" {\n command = [\"b\"]\n after = [\"a\"]\n}\njob \"a\" {\n command = [\"a\"]\n}\n",
			[]string{"a", "c", "b", "d", "main"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse([]byte(tc.src), "x.hcl", config.Funcs{})
			if err != nil {
				t.Fatal(err)
			}
			have, err := f.JobOrder()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, have); diff != "" {
				t.Errorf("-want +have:\n%s", diff)
			}
		})
	}
	t.Run("cycle built by hand", func(t *testing.T) {
		f := &config.File{Jobs: []supervisor.JobSpec{
			{Spec: supervisor.Spec{Name: "a"}, After: []string{"b"}},
			{Spec: supervisor.Spec{Name: "b"}, After: []string{"a"}},
		}}
		if _, err := f.JobOrder(); err == nil || !strings.Contains(err.Error(), "cycle") {
			t.Errorf("want a cycle error, have %v", err)
		}
	})
}

// TestJobEqual: a reload restarts a job whose block changed (supervisor.Diff), not one that only moved.
func TestJobEqual(t *testing.T) {
	parse := func(src string) supervisor.JobSpec {
		t.Helper()
		f, err := config.Parse([]byte(src), "x.hcl", config.Funcs{})
		if err != nil {
			t.Fatal(err)
		}
		return f.Jobs[0]
	}
	base := parse("job \"a\" {\n  command = [\"a\"]\n  env = { X = \"1\" }\n}\n")
	for _, tc := range []struct {
		name, src string
		want      bool
	}{
		{"same", "job \"a\" {\n  command = [\"a\"]\n  env = { X = \"1\" }\n}\n", true},
		{"moved in the file", "\n\n\njob \"a\" {\n  env = { X = \"1\" }\n  command = [\"a\"]\n}\n", true},
		{"env changed", "job \"a\" {\n  command = [\"a\"]\n  env = { X = \"2\" }\n}\n", false},
		{"command changed", "job \"a\" {\n  command = [\"a\", \"-v\"]\n  env = { X = \"1\" }\n}\n", false},
		{"restart changed", "job \"a\" {\n  command = [\"a\"]\n  env = { X = \"1\" }\n  restart = \"on-failure\"\n}\n", false},
		{"hook added", "job \"a\" {\n  command = [\"a\"]\n  env = { X = \"1\" }\n  post_stop {\n    command = [\"x\"]\n  }\n}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed, _ := supervisor.Diff([]supervisor.JobSpec{base}, []supervisor.JobSpec{parse(tc.src)})
			if have := len(changed) == 0; have != tc.want {
				t.Errorf("want %v, have %v", tc.want, have)
			}
		})
	}
}
