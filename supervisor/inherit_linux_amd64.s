#include "textflag.h"

// berth_rt0 is berth's ELF entry point (linked with -ldflags=-E=berth_rt0, as the Makefile, the Dockerfile and
// the release do). Before the Go runtime installs its own signal handlers it records the signal dispositions
// and the signal mask berth was started with, so that processes berth starts inherit them as they would from
// tini (tini's sigconf test). Nothing else is touched: SP still points at argc for the runtime's own entry.
TEXT berth_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$1, R12
loop:
	MOVQ	R12, DI               // signum
	MOVQ	$0, SI                // act = NULL: query only
	LEAQ	·startActs(SB), DX
	MOVQ	R12, AX
	SHLQ	$5, AX                // 32 bytes per kernel sigaction
	ADDQ	AX, DX                // oldact = &startActs[signum]
	MOVQ	$8, R10               // sizeof(kernel sigset)
	MOVQ	$13, AX               // rt_sigaction
	SYSCALL
	INCQ	R12
	CMPQ	R12, $65
	JLT	loop
	MOVQ	$0, DI                // SIG_BLOCK with set = NULL: query only
	MOVQ	$0, SI
	LEAQ	·startMask(SB), DX
	MOVQ	$8, R10
	MOVQ	$14, AX               // rt_sigprocmask
	SYSCALL
	MOVL	$1, ·startValid(SB)
	JMP	_rt0_amd64_linux(SB)

// berth_rawsig is the handler for the signals the Go runtime keeps to itself (SIGPROF, 32, 34): it writes the
// signal number to the self-pipe rawSigFD, which a goroutine turns into a forwarded signal. Only write(2):
// async-signal-safe, and it runs on the thread's alternate signal stack (SA_ONSTACK).
TEXT berth_rawsig(SB),NOSPLIT|NOFRAME,$0
	SUBQ	$8, SP
	MOVB	DI, 0(SP)
	MOVL	·rawSigFD(SB), DI
	MOVQ	SP, SI
	MOVQ	$1, DX
	MOVQ	$1, AX                // write
	SYSCALL
	ADDQ	$8, SP
	RET

// berth_faultsig sits in front of the runtime's handler for the fault signals (SIGSEGV, SIGBUS, ...). A signal
// sent by a process (si_code <= 0: SI_USER, SI_QUEUE, SI_TKILL) goes to the self-pipe to be forwarded; one
// the kernel raised for a fault (si_code > 0) goes, registers and stack untouched, to the runtime's handler,
// so a real fault still crashes berth with a Go traceback.
TEXT berth_faultsig(SB),NOSPLIT|NOFRAME,$0
	MOVL	8(SI), AX             // info->si_code
	CMPL	AX, $0
	JGT	fault
	JMP	berth_rawsig(SB)
fault:
	MOVQ	·goSigHandler(SB), AX
	JMP	AX

// berth_rawsigreturn is the SA_RESTORER trampoline x86-64 requires.
TEXT berth_rawsigreturn(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX               // rt_sigreturn
	SYSCALL
	INT	$3

// func rawSigAddrs() (handler, fault, restorer uintptr)
TEXT ·rawSigAddrs(SB),NOSPLIT,$0-24
	LEAQ	berth_rawsig(SB), AX
	MOVQ	AX, handler+0(FP)
	LEAQ	berth_faultsig(SB), AX
	MOVQ	AX, fault+8(FP)
	LEAQ	berth_rawsigreturn(SB), AX
	MOVQ	AX, restorer+16(FP)
	RET
