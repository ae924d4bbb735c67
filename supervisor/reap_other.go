//go:build !linux

package supervisor

import (
	"errors"
	"os/exec"

	"github.com/hashicorp/go-hclog"
)

// errNotLinux is what berth run says on other systems: the module builds everywhere (gopls, go vet, the
// config and secrets tooling), but supervising processes needs Linux (subreaper, wait4 semantics, /proc).
var errNotLinux = errors.New("berth supervises processes on Linux only")

// Reaper is unavailable outside Linux; NewReaper fails.
type Reaper struct{ inherited inherited }

// NewReaper fails outside Linux.
func NewReaper(hclog.Logger) (*Reaper, error) { return nil, errNotLinux }

// Start fails outside Linux.
func (r *Reaper) Start(*exec.Cmd, func(Exit)) (int, error) { return 0, errNotLinux }

// NoChildren is always true outside Linux.
func (r *Reaper) NoChildren() bool { return true }

// Swept never fires outside Linux.
func (r *Reaper) Swept() <-chan struct{} { return make(chan struct{}) }

// Orphans is always 0 outside Linux.
func (r *Reaper) Orphans() uint64 { return 0 }

// Close does nothing outside Linux.
func (r *Reaper) Close() {}
