package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Exit codes (README "Exit codes") that berth itself produces.
const (
	exitUsage       = 64
	exitUnavailable = 69
	exitSoftware    = 70
	exitNoPerm      = 77
	exitConfig      = 78
)

// Stdio are the streams the CLI talks to.
type Stdio struct {
	In  *os.File
	Out io.Writer
	Err io.Writer
}

// LookupEnv reads the environment (os.LookupEnv in production).
type LookupEnv func(string) (string, bool)

// Environ lists the environment (os.Environ in production): what references are resolved in and what the
// processes berth starts inherit.
type Environ func() []string

// Main dispatches the first word; anything that is not a reserved subcommand is `run` (README "Use it"), so
// `berth -- health` runs a program called health.
func Main(args []string, stdio Stdio, env LookupEnv, environ Environ) int {
	if len(args) > 0 {
		switch args[0] {
		case "-version", "--version":
			return cmdVersion(args[1:], stdio, env)
		case "-h", "-help", "--help", "help":
			usage(stdio.Out) // asked for: to stdout, so `berth --help | less` shows it
			return 0
		}
		switch args[0] {
		case "run":
			return cmdRun(args[1:], stdio, env, environ)
		case "validate":
			return cmdValidate(args[1:], stdio, env)
		case "version":
			return cmdVersion(args[1:], stdio, env)
		case "health":
			return cmdHealth(args[1:], stdio, env)
		case "ctl":
			return cmdCtl(args[1:], stdio, env)
		case "secrets":
			return cmdSecrets(args[1:], stdio, env)
		}
	}
	return cmdRun(args, stdio, env, environ)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  berth [run] [flags] [--] COMMAND [ARG...]   run COMMAND under supervision
  berth run -config FILE [--] [COMMAND...]     full mode with a config file
  berth validate -config FILE                  check a config file (exit 0 or 78)
  berth version                                print the version
  berth health                                 exit 0 when every check of the running berth passes
  berth ctl status|reload|maintenance on|off|putenv K=V|putmetric NAME=VALUE
  berth secrets encrypt -key KEY_ID [-context k=v]... [-in FILE] [-out FILE] [-ref]
  berth secrets decrypt [-context k=v]... [-in FILE] [-out FILE]
Every run flag can also be set as BERTH_<FLAG> (upper case, - becomes _). Run 'berth run -h' for the flags.
`)
}

// cmdVersion is `berth version`, which takes no arguments: an extra one is a usage error rather than ignored.
func cmdVersion(args []string, stdio Stdio, _ LookupEnv) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprintln(stdio.Out, "usage: berth version    prints berth vX.Y.Z (COMMIT, goVERSION)")
			return 0
		}
		return fail(stdio.Err, exitUsage, "version: unexpected argument %q (usage: berth version)", args[0])
	}
	fmt.Fprintf(stdio.Out, "berth %s (%s, %s)\n", version, commit, runtime.Version())
	return 0
}

// fail prints berth's one-line error and returns code.
func fail(w io.Writer, code int, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	fmt.Fprintf(w, "berth: %s\n", msg)
	return code
}

// exitCodeOf returns the exit code an error carries (README "Exit codes"), or def.
func exitCodeOf(err error, def int) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return def
}
