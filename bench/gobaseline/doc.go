// Command gobaseline is the floor for a Go entrypoint in bench/run.sh: it starts its arguments with os/exec,
// waits, and exits with their code — the Go runtime and nothing else. The gap between it and berth is
// berth's own start-up (dependency init, signal and reaper setup); the gap between it and tini is Go's.
package main
