package supervisor

import "syscall"

// Exit is how a process ended.
type Exit struct {
	Pid    int
	Code   int            // exit status, or 128+signal when killed (SPEC §2)
	Signal syscall.Signal // the killing signal, 0 when the process exited
}
