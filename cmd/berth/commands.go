package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/control"
	"github.com/berth-dev/berth/secrets"
)

func osPid() int { return os.Getpid() }

// cmdValidate: berth validate -config FILE — every problem on its own line, exit 0 or 78.
func cmdValidate(args []string, stdio Stdio, env LookupEnv) int {
	fs := flag.NewFlagSet("berth validate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdio.Out, "usage: berth validate -config FILE (or BERTH_CONFIG)\nPrints every problem as FILE:LINE:COL: message and exits 78, or FILE: ok and 0.")
			return 0
		}
		return fail(stdio.Err, exitUsage, "validate: %v", err)
	}
	if *path == "" {
		if v, ok := env("BERTH_CONFIG"); ok {
			*path = v
		}
	}
	if *path == "" || fs.NArg() > 0 {
		return fail(stdio.Err, exitUsage, "usage: berth validate -config FILE")
	}
	_, err := loadConfigFile(*path, env) // every block checked by its own package's Validate
	if err == nil {
		fmt.Fprintf(stdio.Out, "%s: ok\n", *path)
		return 0
	}
	if ce, ok := err.(*config.Error); ok {
		for _, p := range ce.Problems {
			fmt.Fprintf(stdio.Err, "berth: %s\n", p)
		}
		return exitConfig
	}
	return fail(stdio.Err, exitCodeOf(err, exitConfig), "%v", err)
}

// socketPath is -control-socket / BERTH_CONTROL_SOCKET / the default, for the control-plane clients.
func socketPath(env LookupEnv) string {
	if v, ok := env("BERTH_CONTROL_SOCKET"); ok && v != "" {
		return v
	}
	return control.DefaultSocket
}

func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
}

func cmdHealth(args []string, stdio Stdio, env LookupEnv) int {
	ctx, cancel := interruptible()
	defer cancel()
	return control.RunHealth(ctx, socketPath(env), args, stdio.Out, stdio.Err)
}

func cmdCtl(args []string, stdio Stdio, env LookupEnv) int {
	ctx, cancel := interruptible()
	defer cancel()
	return control.RunCtl(ctx, socketPath(env), args, stdio.Out, stdio.Err)
}

func cmdSecrets(args []string, stdio Stdio, _ LookupEnv) int {
	ctx, cancel := interruptible()
	defer cancel()
	var in io.Reader = os.Stdin
	if stdio.In != nil {
		in = stdio.In
	}
	return secrets.RunCLI(ctx, args, in, stdio.Out, stdio.Err)
}
