package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/supervisor"
)

// runFlags are the flags of `berth run` (README "Use it"). Each is also read from BERTH_<NAME>.
type runFlags struct {
	config        string
	logLevel      string
	logFormat     string
	stopSignal    string
	stopTimeout   time.Duration
	killGrace     time.Duration
	drainDelay    time.Duration
	signalRewrite listFlag
	signalScope   string
	pdeathsig     string
	user          string
	controlSocket string
	redact        bool
	noResolve     listFlag
	exitCodeMap   exitCodesFlag
	pristine      bool

	service       string
	port          int
	checkHTTP     string
	checkTCP      string
	checkExec     string
	checkInterval time.Duration
	peersService  string
	peersEnv      string
	peersMin      int
	peersWait     time.Duration
	prometheus    string
	consulMode    string

	// set holds the names given on the command line or through BERTH_*: they win over the config file.
	set map[string]bool
}

// listFlag is a repeatable flag; from the environment it takes a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// exitCodesFlag is -exit-code-map: a listFlag whose entries are checked as they are given, so that a bad one
// from BERTH_EXIT_CODE_MAP is named by its variable.
type exitCodesFlag struct{ listFlag }

func (e *exitCodesFlag) Set(v string) error {
	if _, _, err := supervisor.ParseExitCodeMapping(v); err != nil {
		return err
	}
	return e.listFlag.Set(v)
}

func newRunFlagSet(f *runFlags, errOut io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("berth run", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&f.config, "config", "", "config file (HCL, or JSON by extension)")
	fs.StringVar(&f.logLevel, "log-level", "", "berth's log level: trace, debug, info, warn, error (default warn without a config file, info with one)")
	fs.StringVar(&f.logFormat, "log-format", "text", "berth's log format: text or json")
	fs.StringVar(&f.stopSignal, "stop-signal", "SIGTERM", "signal that asks the main command to stop")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", supervisor.DefaultStopTimeout, "time between the stop signal and SIGKILL")
	fs.DurationVar(&f.killGrace, "kill-grace", supervisor.DefaultKillGrace, "time leftover processes get between SIGTERM and SIGKILL")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "wait after deregistering before stopping the application")
	fs.Var(&f.signalRewrite, "signal-rewrite", "FROM:TO rewrite of a forwarded signal, e.g. TERM:QUIT (repeatable)")
	fs.StringVar(&f.signalScope, "signal-scope", "group", "what a signal to the main command reaches: group (its process group, as dumb-init) or child (the main command alone, as dumb-init -c and tini)")
	fs.StringVar(&f.pdeathsig, "pdeathsig", "", "signal berth gets when its parent dies (PR_SET_PDEATHSIG, as tini -p), e.g. SIGTERM")
	fs.StringVar(&f.user, "user", "", "run the command as USER or UID[:GID] (supplementary groups dropped)")
	fs.StringVar(&f.controlSocket, "control-socket", "/var/run/berth.sock", "control socket path (\"\" or \"off\" disables)")
	fs.BoolVar(&f.redact, "redact", true, "replace resolved secret values in process output with [REDACTED]")
	fs.Var(&f.noResolve, "no-resolve", "leave this environment variable alone even if it looks like a secret reference (repeatable)")
	fs.Var(&f.exitCodeMap, "exit-code-map", "FROM:TO: exit TO when the main command exits FROM, e.g. 143:0 (FROM alone means FROM:0, as tini -e; repeatable)")
	fs.BoolVar(&f.pristine, "pristine", false, "processes get only what berth gives them (resolved references, env and secret blocks, peers), not berth's environment")
	fs.StringVar(&f.service, "service", "", "register the application in Consul under this name")
	fs.IntVar(&f.port, "port", 0, "the application's port to register")
	fs.StringVar(&f.checkHTTP, "check-http", "", "health check URL (2xx/3xx passes)")
	fs.StringVar(&f.checkTCP, "check-tcp", "", "health check host:port")
	fs.StringVar(&f.checkExec, "check-exec", "", "health check command (exit 0 passing, 1 warning)")
	fs.DurationVar(&f.checkInterval, "check-interval", 10*time.Second, "health check interval")
	fs.StringVar(&f.peersService, "peers-service", "", "Consul service whose members are this application's peers")
	fs.StringVar(&f.peersEnv, "peers-env", "BERTH_PEERS", "variable that receives the peers as host:port,host:port")
	fs.IntVar(&f.peersMin, "peers-min", 0, "wait for at least this many peers")
	fs.DurationVar(&f.peersWait, "peers-wait", 30*time.Second, "how long to wait for -peers-min peers")
	fs.StringVar(&f.prometheus, "prometheus", "", "serve /metrics and /status on this address")
	fs.StringVar(&f.consulMode, "consul-mode", "", "agent (register with the local Consul agent) or catalog (agentless: the task is a catalog node); default agent, or the consul block's mode")
	return fs
}

// envName is the BERTH_* variable of a flag: -stop-timeout → BERTH_STOP_TIMEOUT.
func envName(flagName string) string {
	return "BERTH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseRunFlags parses args, then fills every flag not given from BERTH_<NAME> (flag > env > file > default).
// It returns the remaining arguments (the command). -h prints the flags to helpOut and returns flag.ErrHelp.
func parseRunFlags(args []string, env LookupEnv, helpOut io.Writer) (*runFlags, []string, error) {
	f := &runFlags{set: map[string]bool{}}
	fs := newRunFlagSet(f, io.Discard) // errors become berth's one line, not the flag package's dump
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(helpOut, "usage: berth [run] [flags] [--] COMMAND [ARG...]\nflags (each also BERTH_<FLAG>):")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return nil, nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		if envErr != nil || f.set[fl.Name] {
			return
		}
		name := envName(fl.Name)
		v, ok := env(name)
		if !ok {
			return
		}
		values := []string{v}
		switch fl.Value.(type) {
		case *listFlag, *exitCodesFlag:
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if err := fl.Value.Set(strings.TrimSpace(one)); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
				return
			}
		}
		f.set[fl.Name] = true
	})
	if envErr != nil {
		return nil, nil, envErr
	}
	return f, fs.Args(), nil
}
