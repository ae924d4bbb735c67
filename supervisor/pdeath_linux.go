package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// watchParent makes sig berth's parent-death signal (prctl PR_SET_PDEATHSIG, as tini -p) until quit is
// closed. The kernel keeps the setting per thread (it checks each thread of the orphaned process), and a Go
// thread goes away when a goroutine ends locked to it, so the setting lives on a thread this goroutine holds
// for the whole run. ppid is berth's parent as New saw it: when it has changed already, the parent died
// before the setting existed, and berth sends itself sig, as the kernel would have.
func watchParent(sig syscall.Signal, ppid int, quit <-chan struct{}, log hclog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
			errc <- fmt.Errorf("parent death signal %s: %w", SignalName(sig), err)
			return
		}
		errc <- nil
		<-quit
		// Back to no setting before the thread returns to the runtime's pool.
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0)
	}()
	if err := <-errc; err != nil {
		return err
	}
	if now := os.Getppid(); now != ppid {
		log.Info("parent died before berth watched it", "signal", SignalName(sig), "parent", ppid)
		_ = unix.Kill(os.Getpid(), sig)
	}
	return nil
}
