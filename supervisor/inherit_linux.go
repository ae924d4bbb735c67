//go:build linux && (amd64 || arm64)

package supervisor

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction on amd64 and arm64 (not libc's).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// The signal state berth was started with, written by the entry point berth_rt0 (inherit_linux_*.s) before
// the Go runtime starts and never written again. This is the one piece of package-level state in berth: the
// Go runtime replaces every disposition with its own handler before any Go code runs, so this is the only
// place the inherited ones can be read (runtime.fwdSig is not reachable from outside the runtime).
var (
	startActs  [65]kernelSigaction
	startMask  uint64
	startValid uint32

	// rawSigFD is the write end of the self-pipe of berth_rawsig; set before the handler is installed.
	rawSigFD int32 = -1
	// goSigHandler is the runtime's signal handler, where berth_faultsig sends real faults.
	goSigHandler uintptr
)

func rawSigAddrs() (handler, fault, restorer uintptr)

// startSignalState returns the ignored set and the mask berth was started with. known is false when the
// binary was linked without -E=berth_rt0 (go install, the race-enabled test build): then only the ignored
// state of SIGHUP and SIGINT is known, which the Go runtime itself respects.
func startSignalState() inherited {
	if startValid == 0 {
		return inheritedFallback()
	}
	in := inherited{known: true, ignored: map[syscall.Signal]bool{}}
	for i := 1; i < len(startActs); i++ {
		if startActs[i].handler == 1 { // SIG_IGN
			in.ignored[syscall.Signal(i)] = true
		}
	}
	in.mask = startMask
	return in
}

// rawSignals are the signals os/signal cannot deliver: SIGPROF (the runtime keeps it for its profiler) and
// the real-time signals 32 and 34 (reserved for glibc and musl; a static Go binary uses neither); listen
// catches every other forwarded signal the same way when they are available. Signal 33
// is the runtime's own (per-thread syscalls) and stays untouched. faults are the signals the runtime treats
// as a fault unless si_code is SI_USER or SI_TKILL, so a sigqueue(3) of them would crash berth.
func rawSignals() (raw, faults []syscall.Signal) {
	if startValid == 0 {
		return nil, nil // the race-enabled build links glibc, which owns 32 and 33
	}
	return []syscall.Signal{unix.SIGPROF, 32, 34},
		[]syscall.Signal{unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS}
}

func sigaction(s syscall.Signal, act, old *kernelSigaction) error {
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(act)),
		uintptr(unsafe.Pointer(old)), 8, 0, 0); e != 0 {
		return e
	}
	return nil
}

// listenRaw installs berth_rawsig for sigs and berth_faultsig in front of the runtime's handler for faults,
// and sends what they catch to out until the returned stop is called.
func listenRaw(sigs, faults []syscall.Signal, out chan<- os.Signal) (stop func(), err error) {
	if len(sigs)+len(faults) == 0 {
		return func() {}, nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	// A full pipe drops a signal instead of blocking the handler; standard signals coalesce anyway.
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, err
	}
	rawSigFD = int32(p[1])
	h, fh, r := rawSigAddrs()
	const saSiginfo, saOnstack, saRestart, saRestorer = 0x4, 0x08000000, 0x10000000, 0x04000000 // amd64, arm64
	// SA_ONSTACK: a goroutine stack has no room for a signal frame; every Go thread has an alternate stack.
	act := kernelSigaction{handler: h, flags: saOnstack | saRestart, mask: ^uint64(0)}
	if r != 0 {
		act.restorer = r
		act.flags |= saRestorer
	}
	type saved struct {
		sig syscall.Signal
		old kernelSigaction
	}
	var undo []saved
	restore := func() {
		for _, u := range undo {
			_ = sigaction(u.sig, &u.old, nil)
		}
	}
	for _, s := range sigs {
		var o kernelSigaction
		if err := sigaction(s, &act, &o); err != nil {
			restore()
			return nil, err
		}
		undo = append(undo, saved{s, o})
	}
	for _, s := range faults {
		var o kernelSigaction
		if err := sigaction(s, nil, &o); err != nil {
			restore()
			return nil, err
		}
		// Only in front of the runtime's own handler (the same for every signal it handles, with SA_SIGINFO).
		if o.flags&saSiginfo == 0 || o.handler <= 1 || (goSigHandler != 0 && o.handler != goSigHandler) {
			continue
		}
		goSigHandler = o.handler
		fa := o
		fa.handler = fh
		if err := sigaction(s, &fa, nil); err != nil {
			restore()
			return nil, err
		}
		undo = append(undo, saved{s, o})
	}
	rd := os.NewFile(uintptr(p[0]), "berth-rawsig")
	done := make(chan struct{})
	go func() {
		defer close(done)
		// One thread that never blocks the caught signals: the Go runtime gives its threads the mask berth was
		// started with, so a signal berth inherited blocked would otherwise never be delivered (os/signal keeps
		// such a thread for the same reason). The read below blocks this thread, not the poller.
		runtime.LockOSThread()
		var unblock unix.Sigset_t
		for _, list := range [][]syscall.Signal{sigs, faults} {
			for _, s := range list {
				unblock.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
			}
		}
		_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &unblock, nil)
		b := make([]byte, 64)
		for {
			n, err := rd.Read(b)
			for _, c := range b[:n] {
				select { // like os/signal: never block, a full channel drops
				case out <- syscall.Signal(c):
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return func() {
		restore()
		unix.Close(p[1])
		<-done
		rd.Close()
	}, nil
}
