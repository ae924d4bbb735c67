package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// Exit is how a process ended.
type Exit struct {
	Pid    int
	Code   int            // exit status, or 128+signal when killed (README "Exit codes")
	Signal syscall.Signal // the killing signal, 0 when the process exited
}

// CheckExitCode tells whether n is an exit code a process can have: 0-255.
func CheckExitCode(n int) error {
	if n < 0 || n > 255 {
		return fmt.Errorf("exit code %d out of range 0-255", n)
	}
	return nil
}

// ParseExitCodeMapping parses one entry of an exit code map: "FROM:TO" (143:0), or tini's -e spelling "FROM"
// alone, which maps FROM to 0. Both codes are 0-255.
func ParseExitCodeMapping(s string) (from, to int, err error) {
	a, b, hasTo := strings.Cut(s, ":")
	if from, err = parseExitCode(a); err != nil {
		return 0, 0, fmt.Errorf("exit code mapping %q: %w", s, err)
	}
	if hasTo {
		if to, err = parseExitCode(b); err != nil {
			return 0, 0, fmt.Errorf("exit code mapping %q: %w", s, err)
		}
	}
	return from, to, nil
}

func parseExitCode(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not an exit code (want FROM:TO with codes 0-255, e.g. 143:0)", s)
	}
	return n, CheckExitCode(n)
}
