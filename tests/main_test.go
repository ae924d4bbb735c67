package tests

import (
	"os"
	"testing"

	"github.com/berth-dev/berth/tests/harness"
)

// TestMain removes the berth and testapp binaries the harness built once the tests are done.
func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
