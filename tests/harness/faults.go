package harness

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// Fault is one row of bench/FAULTS.md: what was done to berth or its dependencies, what a user relies on,
// what the test observed, and the figure it measured (a duration, a count, a size).
type Fault struct {
	Name     string `json:"name"`
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	Figure   string `json:"figure"`
}

var faultsMu sync.Mutex // serialises appends from parallel tests of one test binary

// RecordFault appends f to the JSON-lines file named by BERTH_FAULTS_OUT, which `make faults` sets and then
// renders into bench/FAULTS.md. Without it this does nothing, so fault tests run in `make test` unchanged.
// Call it only after the test's assertions passed: a row in FAULTS.md is an observation that held.
func RecordFault(t testing.TB, f Fault) {
	t.Helper()
	t.Logf("fault %q: %s (%s)", f.Name, f.Observed, f.Figure)
	path := os.Getenv("BERTH_FAULTS_OUT")
	if path == "" || t.Failed() {
		return
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	faultsMu.Lock()
	defer faultsMu.Unlock()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("harness: BERTH_FAULTS_OUT: %v", err)
	}
	defer fh.Close()
	if _, err := fh.Write(append(b, '\n')); err != nil {
		t.Fatalf("harness: BERTH_FAULTS_OUT: %v", err)
	}
}

// SlowFault skips a fault scenario that takes long (tens of seconds of waiting on TTLs or back-offs) unless
// `make faults` runs it (BERTH_FAULTS=all). The fast scenarios run in `make test` as well.
func SlowFault(t testing.TB) {
	t.Helper()
	if os.Getenv("BERTH_FAULTS") != "all" {
		t.Skip("slow fault scenario: runs in `make faults` (BERTH_FAULTS=all), not in `make test`")
	}
}
