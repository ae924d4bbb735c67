package onchange

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/supervisor"
)

// Action is a parsed on_change value. The zero value is "none".
type Action struct {
	// Restart stops the target and starts it again.
	Restart bool
	// Signal, when not 0, is sent to the target's process group.
	Signal syscall.Signal
}

// None reports whether the action does nothing.
func (a Action) None() bool { return !a.Restart && a.Signal == 0 }

// String is the canonical text: "none", "restart" or "signal:SIGHUP".
func (a Action) String() string {
	switch {
	case a.Restart:
		return "restart"
	case a.Signal != 0:
		return "signal:" + supervisor.SignalName(a.Signal)
	}
	return "none"
}

// Parse reads "none" (or ""), "restart" or "signal:NAME". Its errors are one line and do not repeat the key.
func Parse(s string) (Action, error) {
	switch {
	case s == "" || s == "none":
		return Action{}, nil
	case s == "restart":
		return Action{Restart: true}, nil
	case strings.HasPrefix(s, "signal:") && len(s) > len("signal:"):
		sig, err := supervisor.ParseSignal(strings.TrimPrefix(s, "signal:"))
		if err != nil {
			return Action{}, err
		}
		return Action{Signal: sig}, nil
	}
	return Action{}, fmt.Errorf("%q is not \"none\", \"restart\" or \"signal:SIGNAME\"", s)
}
