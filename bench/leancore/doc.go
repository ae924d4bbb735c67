// Command leancore is a prototype measured by bench/footprint.sh, not shipped: the "lean PID-1 core" way past
// the start-up floor. A zero-config run (`leancore [--] COMMAND...`, no flag, no BERTH_* variable, no secret
// reference in the environment) is supervised here, with nothing linked but the runtime, os/signal and
// syscall: the child is started, every signal berth would forward is passed to it, orphans are reaped, and
// the child's exit code (or 128+signal) is returned. Any other run execs the agent ($LEANCORE_AGENT, else
// berth beside this binary) with the same arguments, so a feature run pays one more exec of a small binary.
// It shows what the split would cost and save; it is not berth (no stop-signal rewrite, no kill grace, no
// inherited-signal shim).
package main
