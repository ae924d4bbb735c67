package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/oklog/run"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/supervisor"
)

func cmdRun(args []string, stdio Stdio, env LookupEnv) int {
	f, command, err := parseRunFlags(args, env, stdio.Err)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return fail(stdio.Err, exitUsage, "%v", err)
	}
	if len(command) == 0 && f.config == "" {
		return fail(stdio.Err, exitUsage, "no command to run and no -config (usage: berth [run] [flags] [--] COMMAND [ARG...])")
	}
	log, err := newLogger(f.logLevel, f.logFormat, stdio.Err)
	if err != nil {
		return fail(stdio.Err, exitUsage, "%v", err)
	}
	supCfg, err := supervisorConfig(f, command, stdio)
	if err != nil {
		return fail(stdio.Err, exitCodeOf(err, exitUsage), "%v", err)
	}

	// The reaper is up before anything can start a process and down after everything stopped: it is not a
	// run.Group actor because its lifetime must enclose all of them.
	reaper, err := supervisor.NewReaper(log.Named("reaper"))
	if err != nil {
		return fail(stdio.Err, exitSoftware, "%v", err)
	}
	defer reaper.Close()

	sup, err := supervisor.New(supCfg, reaper, log.Named("supervisor"))
	if err != nil {
		return fail(stdio.Err, exitSoftware, "%v", err)
	}

	var g run.Group
	{
		// supervisor: starts the main command, forwards signals, and owns the shutdown sequence; it is the
		// actor that normally returns first, after the whole sequence ran.
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return sup.Run(ctx) }, func(error) { cancel() })
	}
	err = g.Run()
	code := sup.ExitCode()
	if err != nil {
		fail(stdio.Err, code, "%v", err)
	}
	return code
}

// supervisorConfig turns flags into the supervisor's Config. Errors carry exit code 64 (usage).
func supervisorConfig(f *runFlags, command []string, stdio Stdio) (supervisor.Config, error) {
	var cfg supervisor.Config
	stopSig, err := supervisor.ParseSignal(f.stopSignal)
	if err != nil {
		return cfg, usageErr("-stop-signal: %v", err)
	}
	rewrite := map[syscall.Signal]syscall.Signal{}
	for _, r := range f.signalRewrite {
		from, to, err := supervisor.ParseRewrite(r)
		if err != nil {
			return cfg, usageErr("-signal-rewrite: %v", err)
		}
		rewrite[from] = to
	}
	var cred *supervisor.Credential
	if f.user != "" {
		if cred, err = supervisor.LookupUser(f.user); err != nil {
			return cfg, usageErr("-user: %v", err)
		}
	}
	if f.stopTimeout < 0 || f.killGrace < 0 || f.drainDelay < 0 {
		return cfg, usageErr("durations must not be negative")
	}
	cfg = supervisor.Config{
		KillGrace:     f.killGrace,
		DrainDelay:    f.drainDelay,
		SignalRewrite: rewrite,
	}
	if len(command) > 0 {
		cfg.Main = &supervisor.Spec{
			Name:        "main",
			Argv:        command,
			Env:         os.Environ(),
			User:        cred,
			Umask:       -1,
			StopSignal:  stopSig,
			StopTimeout: f.stopTimeout,
			Stdin:       true,
			TTY:         hasControllingTTY(stdio.In),
		}
	}
	return cfg, nil
}

// hasControllingTTY reports whether f is a terminal that is berth's controlling terminal (docker run -it).
func hasControllingTTY(f *os.File) bool {
	if f == nil {
		return false
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return false
	}
	_, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil
}

type codedError struct {
	code int
	msg  string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) ExitCode() int { return e.code }

func usageErr(format string, a ...any) error {
	return &codedError{code: exitUsage, msg: fmt.Sprintf(format, a...)}
}

func newLogger(level, format string, w interface{ Write([]byte) (int, error) }) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(level)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("-log-level: unknown level %q (trace, debug, info, warn, error)", level)
	}
	if format != "text" && format != "json" {
		return nil, fmt.Errorf("-log-format: unknown format %q (text, json)", format)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "berth", Level: lvl, Output: w, JSONFormat: format == "json"}), nil
}
