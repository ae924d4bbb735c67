package harness

import "syscall"

// componentAttr puts a component in its own process group and kills it if the test binary dies first.
func componentAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
