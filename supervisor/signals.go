package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals is the allow-list of signals berth passes on to the main command's process group
// (SPEC §3). SIGCHLD, SIGURG (the Go runtime's preemption signal, consul-template #1487) and SIGPIPE are
// deliberately absent.
func forwardedSignals() []syscall.Signal {
	return []syscall.Signal{
		unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2,
		unix.SIGWINCH, unix.SIGCONT, unix.SIGALRM,
	}
}

// ParseSignal accepts "SIGTERM", "TERM", "term" or a number ("15") and returns the signal.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if name == "" {
		return 0, fmt.Errorf("empty signal name")
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("unknown signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

// SignalName returns the conventional name of sig ("SIGTERM").
func SignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// ParseRewrite parses a "FROM:TO" signal rewrite such as "TERM:QUIT".
func ParseRewrite(s string) (from, to syscall.Signal, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("signal rewrite %q: want FROM:TO, e.g. TERM:QUIT", s)
	}
	if from, err = ParseSignal(a); err != nil {
		return 0, 0, fmt.Errorf("signal rewrite %q: %w", s, err)
	}
	if to, err = ParseSignal(b); err != nil {
		return 0, 0, fmt.Errorf("signal rewrite %q: %w", s, err)
	}
	return from, to, nil
}
