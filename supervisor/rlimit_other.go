//go:build !linux

package supervisor

import "golang.org/x/sys/unix"

// rlimitNames maps the names rlimits accepts to their resources; the Linux-only ones are absent.
func rlimitNames() map[string]int {
	return map[string]int{
		"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
		"fsize": unix.RLIMIT_FSIZE, "nofile": unix.RLIMIT_NOFILE, "stack": unix.RLIMIT_STACK,
	}
}
