//go:build !(linux && (amd64 || arm64))

package supervisor

import (
	"os"
	"syscall"
)

func startSignalState() inherited { return inheritedFallback() }

func rawSignals() []syscall.Signal { return nil }

func listenRaw([]syscall.Signal, chan<- os.Signal) (func(), error) { return func() {}, nil }
