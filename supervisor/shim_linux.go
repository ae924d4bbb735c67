package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// execShimArg is argv[1] of berth re-executed as the exec shim. A signal berth was started with ignored, but
// that the Go runtime or the reaper must handle in berth itself (SIGCHLD, SIGURG, SIGPROF, the fault signals),
// cannot reach a child through fork: the runtime resets every signal it handles to the default in the child.
// In that case, and only then, the child starts as berth itself with these arguments; the shim sets SIG_IGN
// and the inherited mask on its own thread and execs the command in place (same pid, group and credentials).
const execShimArg = "__berth-exec-shim"

// shimArgv wraps path and argv for the exec shim, or returns ok=false when no shim is needed or possible.
func shimArgv(in inherited, path string, argv []string) (exe string, args []string, ok bool) {
	sigs := in.shimIgnored()
	if len(sigs) == 0 {
		return "", nil, false
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, false
	}
	nums := make([]string, len(sigs))
	for i, s := range sigs {
		nums[i] = strconv.Itoa(int(s))
	}
	return exe, append([]string{argv[0], execShimArg, strings.Join(nums, ","), path}, argv...), true
}

// ExecShim runs the exec shim when args (os.Args) asks for it: it never returns then, except with the error
// that kept it from exec'ing the command (berth exits 127 with it). isShim is false for any other command line.
func ExecShim(args, env []string) (isShim bool, err error) {
	if len(args) < 5 || args[1] != execShimArg {
		return false, nil
	}
	runtime.LockOSThread() // the mask and the exec belong to this thread
	for _, f := range strings.Split(args[2], ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > sigRTMax {
			return true, fmt.Errorf("exec shim: bad signal list %q", args[2])
		}
		ign := kernelSigaction{handler: 1} // SIG_IGN
		if err := sigaction(syscall.Signal(n), &ign, nil); err != nil {
			return true, fmt.Errorf("exec shim: ignore signal %d: %w", n, err)
		}
	}
	if in := startSignalState(); in.known {
		want := unix.Sigset_t{Val: [16]uint64{in.mask}}
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &want, nil)
	}
	err = syscall.Exec(args[3], args[4:], env)
	return true, fmt.Errorf("cannot run %s: %w", args[3], err)
}
