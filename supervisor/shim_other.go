//go:build !linux

package supervisor

func shimArgv(inherited, string, []string) (string, []string, bool) { return "", nil, false }

// ExecShim is Linux-only; elsewhere no command line is a shim invocation.
func ExecShim(_, _ []string) (bool, error) { return false, nil }
