#include "textflag.h"

// berth_rt0 is berth's ELF entry point (linked with -ldflags=-E=berth_rt0). See inherit_linux_amd64.s.
TEXT berth_rt0(SB),NOSPLIT|NOFRAME,$0
	MOVD	$1, R19
	MOVD	$·startActs(SB), R20
loop:
	MOVD	R19, R0               // signum
	MOVD	$0, R1                // act = NULL: query only
	LSL	$5, R19, R2           // 32 bytes per kernel sigaction
	ADD	R20, R2, R2           // oldact = &startActs[signum]
	MOVD	$8, R3                // sizeof(kernel sigset)
	MOVD	$134, R8              // rt_sigaction
	SVC
	ADD	$1, R19
	CMP	$65, R19
	BLT	loop
	MOVD	$0, R0                // SIG_BLOCK with set = NULL: query only
	MOVD	$0, R1
	MOVD	$·startMask(SB), R2
	MOVD	$8, R3
	MOVD	$135, R8              // rt_sigprocmask
	SVC
	MOVD	$1, R0
	MOVW	R0, ·startValid(SB)
	JMP	_rt0_arm64_linux(SB)

// berth_rawsig writes the signal number to the self-pipe rawSigFD. See inherit_linux_amd64.s.
TEXT berth_rawsig(SB),NOSPLIT|NOFRAME,$0
	SUB	$16, RSP
	MOVB	R0, (RSP)
	MOVW	·rawSigFD(SB), R0
	MOVD	RSP, R1
	MOVD	$1, R2
	MOVD	$64, R8               // write
	SVC
	ADD	$16, RSP
	RET

// berth_faultsig: si_code <= 0 (sent by a process) to the self-pipe, a real fault to the runtime's handler.
// See inherit_linux_amd64.s.
TEXT berth_faultsig(SB),NOSPLIT|NOFRAME,$0
	MOVW	8(R1), R3             // info->si_code, sign-extended
	CMP	$0, R3
	BGT	fault
	JMP	berth_rawsig(SB)
fault:
	MOVD	·goSigHandler(SB), R3
	JMP	(R3)

// func rawSigAddrs() (handler, fault, restorer uintptr); arm64 returns through the kernel's vDSO trampoline.
TEXT ·rawSigAddrs(SB),NOSPLIT,$0-24
	MOVD	$berth_rawsig(SB), R0
	MOVD	R0, handler+0(FP)
	MOVD	$berth_faultsig(SB), R0
	MOVD	R0, fault+8(FP)
	MOVD	$0, R0
	MOVD	R0, restorer+16(FP)
	RET
