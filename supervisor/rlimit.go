package supervisor

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Rlimit is one resource limit to apply to a started process.
type Rlimit struct {
	Resource int    // unix.RLIMIT_*
	Name     string // "nofile"
	Soft     uint64
	Hard     uint64
}

// ParseRlimit parses a limit name ("nofile", "RLIMIT_NOFILE") and a value: "65536" (soft = hard),
// "1024:65536" (soft:hard) or "unlimited".
func ParseRlimit(name, value string) (Rlimit, error) {
	key := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "rlimit_")
	res, ok := rlimitNames()[key]
	if !ok {
		return Rlimit{}, fmt.Errorf("unknown rlimit %q", name)
	}
	parse := func(s string) (uint64, error) {
		s = strings.TrimSpace(s)
		if s == "unlimited" || s == "infinity" || s == "-1" {
			return unix.RLIM_INFINITY, nil
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rlimit %s: bad value %q", key, s)
		}
		return n, nil
	}
	r := Rlimit{Resource: res, Name: key}
	soft, hard, both := strings.Cut(value, ":")
	var err error
	if r.Soft, err = parse(soft); err != nil {
		return Rlimit{}, err
	}
	r.Hard = r.Soft
	if both {
		if r.Hard, err = parse(hard); err != nil {
			return Rlimit{}, err
		}
	}
	if r.Soft > r.Hard {
		return Rlimit{}, fmt.Errorf("rlimit %s: soft %d above hard %d", key, r.Soft, r.Hard)
	}
	return r, nil
}
