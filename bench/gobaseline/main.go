// Command gobaseline is the floor for a Go entrypoint in bench/run.sh: it starts its arguments with os/exec,
// waits, and exits with their code — the Go runtime and nothing else. The gap between it and berth is
// berth's own start-up (dependency init, signal and reaper setup); the gap between it and tini is Go's.
package main

import (
	"os"
	"os/exec"
)

func main() {
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		os.Exit(127)
	}
}
