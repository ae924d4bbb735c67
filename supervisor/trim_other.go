//go:build !linux

package supervisor

// TrimExecutable does nothing outside Linux.
func TrimExecutable() (int, error) { return 0, nil }
