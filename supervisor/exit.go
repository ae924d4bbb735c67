package supervisor

import "syscall"

// Exit is how a process ended.
type Exit struct {
	Pid    int
	Code   int            // exit status, or 128+signal when killed (README "Exit codes")
	Signal syscall.Signal // the killing signal, 0 when the process exited
}
