package tests

import (
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/tests/harness"
)

// TestMain removes the berth and testapp binaries the harness built once the tests are done. A test binary
// started with SIGINT or SIGHUP ignored (a CI script's background job) would pass that on to every berth, tini
// and shell it starts, and Ctrl-C in the job-control scenarios would do nothing: catching them here makes the
// processes the tests start begin with the default disposition, as from a terminal.
func TestMain(m *testing.M) {
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGHUP} {
		if signal.Ignored(s) {
			signal.Notify(make(chan os.Signal, 1), s)
		}
	}
	os.Exit(harness.Main(m))
}
