package main

import (
	"bytes"
	"maps"
	"slices"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/supervisor"
)

// -exit-code-map and BERTH_EXIT_CODE_MAP join the file's exit_code_map, each winning for its own code.
func TestExitCodeMapFromFileEnvAndFlag(t *testing.T) {
	file := &config.File{ExitCodeMap: map[int]int{143: 1, 5: 6}}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want map[int]int
	}{
		{"file", nil, nil, map[int]int{143: 1, 5: 6}},
		{"flag, tini's spelling", []string{"-exit-code-map", "143"}, nil, map[int]int{143: 0, 5: 6}},
		{"env list", nil, map[string]string{"BERTH_EXIT_CODE_MAP": "143:0, 130"}, map[int]int{143: 0, 130: 0, 5: 6}},
		{"flag beats env", []string{"-exit-code-map", "1:2"}, map[string]string{"BERTH_EXIT_CODE_MAP": "143:0"}, map[int]int{143: 1, 1: 2, 5: 6}},
	} {
		f, rest, err := parseRunFlags(append(c.args, "app"), envOf(c.env), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		o, err := mergeOptions(f, rest, file)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !maps.Equal(o.exitCodeMap, c.want) {
			t.Errorf("%s: want %v, have %v", c.name, c.want, o.exitCodeMap)
		}
	}
	if _, _, err := parseRunFlags([]string{"-exit-code-map", "143:999", "app"}, envOf(nil), &bytes.Buffer{}); err == nil {
		t.Error("-exit-code-map 143:999 accepted")
	}
}

func TestPristineBase(t *testing.T) {
	env := []string{"PATH=/bin", "BERTH_LOG_LEVEL=info", "DB=secretsmanager:prod/db", "KEY=ssm:/app/key", "SKIPPED=ssm:/x",
		"PLAIN=secretsmanager", "BAD=ssm:/prod/"}
	have := pristineBase(env, []string{"SKIPPED"})
	// a malformed reference stays, so that it fails as it would without pristine
	want := []string{"DB=secretsmanager:prod/db", "KEY=ssm:/app/key", "BAD=ssm:/prod/"}
	if !slices.Equal(have, want) {
		t.Fatalf("want %v, have %v", want, have)
	}
	if have := pristineBase([]string{"PATH=/bin"}, nil); have == nil || len(have) != 0 {
		t.Fatalf("want an empty, non-nil environment, have %#v", have)
	}
}

// -signal-scope and -pdeathsig (and their BERTH_* variables) win over signal_scope and pdeathsig.
func TestSignalScopeAndPdeathsigFromFileEnvAndFlag(t *testing.T) {
	file := &config.File{SignalScope: supervisor.SignalChild, ParentDeathSignal: syscall.SIGTERM}
	for _, c := range []struct {
		name  string
		args  []string
		env   map[string]string
		file  *config.File
		scope supervisor.SignalScope
		sig   syscall.Signal
	}{
		{"defaults", nil, nil, nil, supervisor.SignalGroup, 0},
		{"file", nil, nil, file, supervisor.SignalChild, syscall.SIGTERM},
		{"env", nil, map[string]string{"BERTH_SIGNAL_SCOPE": "group", "BERTH_PDEATHSIG": "SIGUSR1"}, file, supervisor.SignalGroup, syscall.SIGUSR1},
		{"flag beats env", []string{"-signal-scope", "child", "-pdeathsig", "KILL"}, map[string]string{"BERTH_SIGNAL_SCOPE": "group", "BERTH_PDEATHSIG": "HUP"}, nil, supervisor.SignalChild, syscall.SIGKILL},
	} {
		f, rest, err := parseRunFlags(append(c.args, "app"), envOf(c.env), &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		o, err := mergeOptions(f, rest, c.file)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if o.signalScope != c.scope || o.pdeathsig != c.sig {
			t.Errorf("%s: want %q and %v, have %q and %v", c.name, c.scope, c.sig, o.signalScope, o.pdeathsig)
		}
	}
	for _, args := range [][]string{{"-signal-scope", "session"}, {"-pdeathsig", "STOP"}, {"-pdeathsig", "URG"}, {"-pdeathsig", "99"}} {
		f, rest, err := parseRunFlags(append(args, "app"), envOf(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mergeOptions(f, rest, nil); exitCodeOf(err, 0) != exitUsage {
			t.Errorf("%v: want a usage error, have %v", args, err)
		}
	}
}
