//go:build !(linux && (amd64 || arm64))

package supervisor

import (
	"os"
	"syscall"
)

func startSignalState() inherited { return inheritedFallback() }

func rawSignals() (raw, faults []syscall.Signal) { return nil, nil }

func listenRaw(_, _ []syscall.Signal, _ chan<- os.Signal) (func(), error) { return func() {}, nil }
