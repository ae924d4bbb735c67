package supervisor

import (
	"debug/elf"
	"fmt"
	"os"
	"testing"
)

// TestTrimExecutable: berth drops its executable's resident pages and goes on running from the page cache; a
// PIE is left alone (its RELRO pages hold relocations the file does not have).
func TestTrimExecutable(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	wantPIE := f.Type == elf.ET_DYN
	f.Close()
	pie, err := isPIE("/proc/self/exe")
	if err != nil || pie != wantPIE {
		t.Fatalf("isPIE = %v, %v; debug/elf says type %v", pie, err, f.Type)
	}
	kib, err := TrimExecutable()
	if err != nil {
		t.Fatal(err)
	}
	if !pie && kib == 0 {
		t.Fatal("nothing of a position-dependent executable was resident to trim")
	}
	if pie && kib != 0 {
		t.Fatalf("a PIE was trimmed (%d KiB)", kib)
	}
	// the code and read-only data come back as touched
	if s := fmt.Sprintf("%d-%s", 42, "ok"); s != "42-ok" {
		t.Fatal(s)
	}
	t.Logf("pie=%v, %d KiB trimmed", pie, kib)
}
