//go:build !linux

package supervisor

import (
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// watchParent needs Linux's PR_SET_PDEATHSIG; Run never gets this far elsewhere (NewReaper fails).
func watchParent(syscall.Signal, int, <-chan struct{}, hclog.Logger) error { return errNotLinux }
