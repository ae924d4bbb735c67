package main

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/supervisor"
)

func envOf(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFlagEnvPrecedence(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		env       map[string]string
		fileStop  *time.Duration
		wantStop  time.Duration
		wantRules int
	}{
		{"default", nil, nil, nil, 10 * time.Second, 0},
		{"file", nil, nil, ptr(25 * time.Second), 25 * time.Second, 0},
		{"env beats file", nil, map[string]string{"BERTH_STOP_TIMEOUT": "3s"}, ptr(25 * time.Second), 3 * time.Second, 0},
		{"flag beats env", []string{"-stop-timeout", "1s"}, map[string]string{"BERTH_STOP_TIMEOUT": "3s"}, ptr(25 * time.Second), time.Second, 0},
		{"repeatable from env", nil, map[string]string{"BERTH_SIGNAL_REWRITE": "TERM:QUIT,HUP:USR1"}, nil, 10 * time.Second, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, rest, err := parseRunFlags(append(c.args, "app"), envOf(c.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 1 || rest[0] != "app" {
				t.Fatalf("command: %v", rest)
			}
			var file *config.File
			if c.fileStop != nil {
				file = &config.File{StopTimeout: c.fileStop}
			}
			o, err := mergeOptions(f, rest, file)
			if err != nil {
				t.Fatal(err)
			}
			if o.stopTimeout != c.wantStop || len(o.signalRewrite) != c.wantRules {
				t.Fatalf("want %s/%d rules, have %s/%d", c.wantStop, c.wantRules, o.stopTimeout, len(o.signalRewrite))
			}
		})
	}
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	_, _, err := parseRunFlags([]string{"app"}, envOf(map[string]string{"BERTH_KILL_GRACE": "soon"}), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "BERTH_KILL_GRACE") {
		t.Fatalf("want an error naming BERTH_KILL_GRACE, have %v", err)
	}
}

func TestMainDispatch(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"version"}, Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil }); code != 0 || !strings.HasPrefix(out.String(), "berth v") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	errb.Reset()
	if code := Main(nil, Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil }); code != exitUsage || !strings.HasPrefix(errb.String(), "berth: ") {
		t.Fatalf("no command: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"validate"}, Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil }); code != exitUsage {
		t.Fatalf("validate without -config: %d %q", code, errb.String())
	}
}

// TestUnitEnvironments: each unit's env block goes to the resolver under the unit's name, and a unit's
// environment is the shared one overlaid by its own variables (a host variable holding ':' stays shared).
func TestUnitEnvironments(t *testing.T) {
	o := &options{file: &config.File{
		Main: &supervisor.JobSpec{Spec: supervisor.Spec{Name: supervisor.MainName, Env: []string{"A=2", "B=x=y"}}},
		Jobs: []supervisor.JobSpec{{Spec: supervisor.Spec{Name: "job1", Env: []string{"C=3"}}}, {Spec: supervisor.Spec{Name: "quiet"}}},
	}}
	units := o.unitEnvBlocks()
	if len(units) != 2 || strings.Join(units["main"], " ") != "A=2 B=x=y" || strings.Join(units["job1"], " ") != "C=3" {
		t.Fatalf("unit env blocks: %v", units)
	}
	shared := []string{"PATH=/bin", "A=1", "odd:name=kept"}
	if got := strings.Join(mergeEnv(shared, units["main"]), " "); got != "PATH=/bin A=2 odd:name=kept B=x=y" {
		t.Fatalf("main: %v", got)
	}
	if got := strings.Join(mergeEnv(shared, units["job1"], []string{"PEERS=a,b"}), " "); got != "PATH=/bin A=1 odd:name=kept C=3 PEERS=a,b" {
		t.Fatalf("job1: %v", got)
	}
}

func TestSignalRewriteFromFileAndFlag(t *testing.T) {
	f, rest, err := parseRunFlags([]string{"-signal-rewrite", "HUP:USR2", "app"}, envOf(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := mergeOptions(f, rest, &config.File{SignalRewrite: map[syscall.Signal]syscall.Signal{syscall.SIGTERM: syscall.SIGQUIT}})
	if err != nil {
		t.Fatal(err)
	}
	if o.signalRewrite[syscall.SIGTERM] != syscall.SIGQUIT || o.signalRewrite[syscall.SIGHUP] != syscall.SIGUSR2 {
		t.Fatalf("rewrite: %v", o.signalRewrite)
	}
}

func ptr(d time.Duration) *time.Duration { return &d }

// TestHelpIsAskedFor: help that was asked for goes to stdout and exits 0 (`berth --help | less`), for berth,
// run, validate and secrets; a usage error is one berth: line on stderr and 64.
func TestHelpIsAskedFor(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"version", "-h"}, {"run", "-h"}, {"validate", "-h"}, {"secrets", "-h"}, {"secrets", "--help"}, {"secrets", "encrypt", "-h"}, {"secrets", "decrypt", "-h"}} {
		var out, errb bytes.Buffer
		if code := Main(args, Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil }); code != 0 || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("berth %v: exit %d, stdout %d bytes, stderr %q; want 0, the help on stdout, nothing on stderr", args, code, out.Len(), errb.String())
		}
		if args[0] == "secrets" && args[1] == "encrypt" && (!strings.Contains(out.String(), "-ref") || !strings.Contains(out.String(), "-context")) {
			t.Errorf("secrets encrypt -h does not explain -ref and -context:\n%s", out.String())
		}
		if args[0] == "secrets" && strings.HasPrefix(args[1], "-") && (!strings.Contains(out.String(), "berth secrets encrypt") || !strings.Contains(out.String(), "berth secrets decrypt")) {
			t.Errorf("berth %v does not name encrypt and decrypt:\n%s", args, out.String())
		}
	}
	for _, args := range [][]string{{"secrets", "encrypt"}, {"secrets", "bogus"}, {"validate", "-nope"}, {"version", "extra"}, {"version", "-short"}, {"--version", "extra"}} {
		var out, errb bytes.Buffer
		code := Main(args, Stdio{Out: &out, Err: &errb}, envOf(nil), func() []string { return nil })
		if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); code != exitUsage || len(lines) != 1 || !strings.HasPrefix(lines[0], "berth: ") {
			t.Errorf("berth %v: exit %d, stderr %q; want 64 and one berth: line", args, code, errb.String())
		}
	}
}
