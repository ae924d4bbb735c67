package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/supervisor"
)

// Set at build time: go build -ldflags "-X main.version=v0.1.0 -X main.commit=abc1234".
var (
	version = "v0.0.0-dev"
	commit  = "unknown"
)

func main() {
	// berth re-executed as the exec shim of a child that keeps inherited ignored signals (supervisor/shim_linux.go)
	if shim, err := supervisor.ExecShim(os.Args, os.Environ()); shim {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		os.Exit(127)
	}
	os.Exit(Main(os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.LookupEnv, os.Environ))
}
