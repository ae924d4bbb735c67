//go:build linux && (amd64 || arm64)

package supervisor

import (
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestFaultSignals: behind berth's entry point, SIGSEGV and SIGBUS sent by a process (kill(2), sigqueue(3))
// arrive on the channel to be forwarded, and a real fault still reaches the Go runtime (a nil dereference is
// a recoverable panic, not a lost signal). tests/signals_test.go runs this test in a binary linked with
// -E=berth_rt0, as the release is; `go test` alone links without it.
func TestFaultSignals(t *testing.T) {
	if startValid == 0 {
		t.Skip("needs the berth_rt0 entry point (-ldflags=-E=berth_rt0): tests/signals_test.go runs it so")
	}
	ch, stop, err := listen(inherited{known: true, ignored: map[syscall.Signal]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a nil dereference did not panic")
			}
		}()
		var p *int
		_ = *p
	}()

	want := func(sig syscall.Signal, how string) {
		t.Helper()
		select {
		case have := <-ch:
			if have != sig {
				t.Fatalf("%s: have %v, want %v", how, have, sig)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: %v never arrived", how, sig)
		}
	}
	if err := unix.Kill(os.Getpid(), unix.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	want(unix.SIGSEGV, "kill")
	// sigqueue(3): si_code SI_QUEUE, which the runtime alone would take for a fault.
	var info [128]byte
	*(*int32)(unsafe.Pointer(&info[0])) = int32(unix.SIGBUS)
	*(*int32)(unsafe.Pointer(&info[8])) = -1 // SI_QUEUE
	*(*int32)(unsafe.Pointer(&info[16])) = int32(os.Getpid())
	if _, _, e := unix.RawSyscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(os.Getpid()), uintptr(unix.SIGBUS),
		uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		t.Fatal(e)
	}
	want(unix.SIGBUS, "sigqueue")
	if err := unix.Kill(os.Getpid(), unix.SIGPROF); err != nil {
		t.Fatal(err)
	}
	want(unix.SIGPROF, "kill SIGPROF")
}
