//go:build !linux

package harness

import "syscall"

// componentAttr puts a component in its own process group (the tests run on Linux; this keeps vet building).
func componentAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
