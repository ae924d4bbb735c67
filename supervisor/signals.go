package supervisor

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Real-time signals are numbered as the kernel, glibc and Docker's STOPSIGNAL do: SIGRTMIN is 34, SIGRTMAX 64.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// inherited is the signal state berth was started with; processes berth starts begin with it (tini's
// sigconf behaviour): `nohup`, `trap ” INT` and a shell's background jobs rely on it.
type inherited struct {
	known   bool                    // recorded by the entry point: the mask and every disposition
	ignored map[syscall.Signal]bool // dispositions that were SIG_IGN
	mask    uint64                  // blocked signals, bit n-1 for signal n
}

// inheritedFallback is what a binary linked without the entry point can know: the Go runtime leaves an
// inherited SIG_IGN of SIGHUP and SIGINT in place and reports it through signal.Ignored.
func inheritedFallback() inherited {
	in := inherited{ignored: map[syscall.Signal]bool{}}
	for _, s := range []syscall.Signal{unix.SIGHUP, unix.SIGINT} {
		if signal.Ignored(s) {
			in.ignored[s] = true
		}
	}
	return in
}

// notInherited are signals whose inherited SIG_IGN berth cannot keep in itself: berth needs SIGCHLD to reap
// (an ignored SIGCHLD makes the kernel discard exit statuses), the Go runtime needs SIGURG (preemption),
// SIGPROF, 33, and the fault signals (its own faults must still crash it). Processes berth starts get them
// ignored all the same, through the exec shim (shim.go). An ignored 32 or 34 is left alone by the runtime
// and berth, so it stays ignored by itself.
func notInherited(s syscall.Signal) bool {
	const sigSTKFLT = 16 // Linux; absent from x/sys/unix on other systems
	return slices.Contains([]syscall.Signal{unix.SIGCHLD, unix.SIGURG, unix.SIGPROF, 33,
		unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, sigSTKFLT, unix.SIGSYS}, s)
}

// shimIgnored lists the signals berth was started with ignored but cannot keep ignored itself: a child must
// start through the exec shim, which ignores them just before it execs the command.
func (in inherited) shimIgnored() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= sigRTMax; s++ {
		if in.ignored[s] && notInherited(s) {
			out = append(out, s)
		}
	}
	return out
}

// notForwardable explains why berth never forwards s, or returns "" when it does (README "Signals").
func notForwardable(s syscall.Signal) string {
	switch s {
	case unix.SIGKILL, unix.SIGSTOP:
		return "it cannot be caught"
	case unix.SIGCHLD:
		return "berth uses it to reap its children"
	case unix.SIGURG:
		return "the Go runtime sends it to itself for preemption"
	case unix.SIGPIPE:
		return "the kernel raises it in berth for berth's own writes to closed sockets and pipes"
	case 33:
		return "the Go runtime uses signal 33 for itself"
	}
	if s < 1 || s > sigRTMax {
		return "it is out of range"
	}
	return ""
}

// forwardedSignals is every signal berth catches and passes on to the main command's process group: 1-31
// and the real-time signals, except those notForwardable names. SIGTERM, SIGINT and SIGQUIT also start the
// shutdown; SIGTSTP, SIGTTIN and SIGTTOU are caught, so berth itself is never stopped by them.
func forwardedSignals() []syscall.Signal {
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= sigRTMax; s++ {
		if notForwardable(s) == "" {
			out = append(out, s)
		}
	}
	return out
}

// SignalScope is what the signals berth sends the main command reach (Config.SignalScope).
type SignalScope string

const (
	// SignalGroup is the main command's process group: its children in that group too (dumb-init's default,
	// tini -g).
	SignalGroup SignalScope = "group"
	// SignalChild is the main command's process alone (dumb-init -c, tini's default).
	SignalChild SignalScope = "child"
)

// ParseSignalScope accepts "group" and "child".
func ParseSignalScope(s string) (SignalScope, error) {
	switch sc := SignalScope(strings.TrimSpace(s)); sc {
	case SignalGroup, SignalChild:
		return sc, nil
	}
	return "", fmt.Errorf("signal scope %q: want %q (the main command's process group) or %q (the main command alone)", s, SignalGroup, SignalChild)
}

// CheckParentDeathSignal tells whether sig can be berth's parent-death signal: SIGKILL (berth dies with its
// parent, its processes with it as PID 1) or any signal berth acts on; not SIGSTOP, nor a signal berth never
// acts on (SIGCHLD, SIGURG, SIGPIPE, 33).
func CheckParentDeathSignal(sig syscall.Signal) error {
	if sig == unix.SIGKILL {
		return nil
	}
	if sig == unix.SIGSTOP {
		return fmt.Errorf("parent death signal SIGSTOP: it would stop berth")
	}
	if why := notForwardable(sig); why != "" {
		return fmt.Errorf("parent death signal %s: berth never acts on it: %s", SignalName(sig), why)
	}
	return nil
}

// ParseSignal accepts "SIGTERM", "TERM", "term", a number ("15") or a real-time signal as Docker's STOPSIGNAL
// writes it ("SIGRTMIN+3", "RTMAX-1"), and returns the signal (1-64).
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if name == "" {
		return 0, fmt.Errorf("empty signal name")
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n <= 0 || n > sigRTMax {
			return 0, fmt.Errorf("signal number %d out of range 1-%d", n, sigRTMax)
		}
		return syscall.Signal(n), nil
	}
	name = strings.TrimPrefix(name, "SIG")
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		return rtSignal(s, sigRTMin, rest)
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX"); ok {
		return rtSignal(s, sigRTMax, rest)
	}
	sig := unix.SignalNum("SIG" + name)
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

func rtSignal(orig string, base int, off string) (syscall.Signal, error) {
	n := base
	if off != "" {
		d, err := strconv.Atoi(off) // "+3" or "-2"
		if err != nil || (off[0] != '+' && off[0] != '-') {
			return 0, fmt.Errorf("unknown signal %q", orig)
		}
		n += d
	}
	if n < sigRTMin || n > sigRTMax {
		return 0, fmt.Errorf("signal %q out of range SIGRTMIN-SIGRTMAX (%d-%d)", orig, sigRTMin, sigRTMax)
	}
	return syscall.Signal(n), nil
}

// SignalName returns the conventional name of sig ("SIGTERM", "SIGRTMIN+3").
func SignalName(sig syscall.Signal) string {
	if sig >= sigRTMin && sig <= sigRTMax {
		if sig == sigRTMin {
			return "SIGRTMIN"
		}
		return "SIGRTMIN+" + strconv.Itoa(int(sig-sigRTMin))
	}
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// CheckRewrite tells whether a rewrite FROM → TO can take effect: FROM must be a signal berth receives and
// forwards (not SIGKILL, SIGSTOP, SIGCHLD, SIGURG, SIGPIPE or 33), TO any signal 1-64.
func CheckRewrite(from, to syscall.Signal) error {
	if why := notForwardable(from); why != "" {
		return fmt.Errorf("%s cannot be rewritten: %s", SignalName(from), why)
	}
	if to < 1 || to > sigRTMax {
		return fmt.Errorf("signal %d out of range 1-%d", to, sigRTMax)
	}
	return nil
}

// ParseRewrite parses a "FROM:TO" signal rewrite such as "TERM:QUIT" and checks it with CheckRewrite.
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
	if err = CheckRewrite(from, to); err != nil {
		return 0, 0, fmt.Errorf("signal rewrite %q: %w", s, err)
	}
	return from, to, nil
}

// listen starts catching every forwarded signal that berth was not started with ignored, and keeps the
// inherited ignored ones ignored so that processes berth starts inherit them. The channel never blocks the
// sender; stop undoes it all. With berth's entry point (the release build) every forwarded signal is caught
// by berth_rawsig (listenRaw), not os/signal: os/signal enables each signal with a round trip to the runtime's
// signal-mask thread, and the ~60 berth forwards cost about 1 ms of every start that way (and 1 ms more to
// undo at exit), against 60 sigaction calls. Without it (go run, the race-enabled build) os/signal does it.
func listen(in inherited) (<-chan os.Signal, func(), error) {
	ch := make(chan os.Signal, 128)
	rawList, faultList := rawSignals()
	kind := map[syscall.Signal]int{}
	for _, s := range rawList {
		kind[s] = 1
	}
	for _, s := range faultList {
		kind[s] = 2
	}
	var notify, ignore []os.Signal
	var raw, faults []syscall.Signal
	for s := syscall.Signal(1); s <= sigRTMax; s++ {
		// every inherited SIG_IGN that berth can hold stays (SIGPIPE too, which is never forwarded)
		if in.ignored[s] && !notInherited(s) && !(s >= 32 && s <= 34) {
			ignore = append(ignore, s)
		}
	}
	for _, s := range forwardedSignals() {
		switch {
		case in.ignored[s] && !notInherited(s):
			// ignored by berth (above), as the process itself would
		case s >= 32 && s <= 34 && in.ignored[s]:
			// left ignored: neither the runtime nor berth touches it
		case kind[s] == 2:
			faults = append(faults, s)
		case kind[s] == 1 || len(rawList) > 0: // an ignored SIGPROF or fault signal is still caught (the runtime
			// would die of it otherwise) and forwarded to children that ignore it through the exec shim
			raw = append(raw, s)
		default:
			notify = append(notify, s)
		}
	}
	if len(ignore) > 0 {
		signal.Ignore(ignore...)
	}
	if len(notify) > 0 { // Notify with no signals would relay every signal
		signal.Notify(ch, notify...)
	}
	stopRaw, err := listenRaw(raw, faults, ch)
	if err != nil {
		signal.Stop(ch)
		return nil, nil, fmt.Errorf("signal handlers: %w", err)
	}
	return ch, func() { signal.Stop(ch); stopRaw() }, nil
}
