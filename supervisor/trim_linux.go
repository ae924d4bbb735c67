package supervisor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TrimExecutable drops the pages of berth's own executable from its page tables (madvise MADV_DONTNEED on
// the read-only mappings of /proc/self/exe) and returns how many KiB were resident. Linux maps file pages
// in 64 KiB blocks around every page a fault touches, so starting berth leaves most of its 15 MiB binary in
// its resident set although the supervisor, once running, touches a small part of it. The pages stay in the
// page cache, clean and shared: what berth touches again comes back with a minor fault. berth calls this once,
// a few seconds after the main command started (cmd/berth).
//
// Only a position-dependent executable (ELF ET_EXEC, Go's default -buildmode=exe) is trimmed: in a PIE the
// dynamic relocations were applied to pages that were made read-only afterwards (RELRO), and dropping those
// would bring back the file's unrelocated bytes.
func TrimExecutable() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	if pie, err := isPIE("/proc/self/exe"); err != nil || pie {
		return 0, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	trimmed := 0
	var lo, hi uintptr
	ours := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 6 && strings.Contains(f[0], "-") && len(f[1]) == 4 { // a mapping's header line
			ours = f[5] == exe && !strings.Contains(f[1], "w") // text and read-only data, not .data/.bss
			a, z, _ := strings.Cut(f[0], "-")
			l, _ := strconv.ParseUint(a, 16, 64)
			h, _ := strconv.ParseUint(z, 16, 64)
			lo, hi = uintptr(l), uintptr(h)
			continue
		}
		if !ours || len(f) < 2 || f[0] != "Rss:" {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_DONTNEED); e != 0 {
			return trimmed, e
		}
		kib, _ := strconv.Atoi(f[1])
		trimmed += kib
	}
	return trimmed, sc.Err()
}

// isPIE reports whether the ELF file at path is ET_DYN (a position-independent executable) rather than ET_EXEC.
func isPIE(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var hdr [18]byte // e_ident (16 bytes), then e_type
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return false, err
	}
	if string(hdr[:4]) != "\x7fELF" {
		return false, errors.New("not an ELF file")
	}
	typ := binary.LittleEndian.Uint16(hdr[16:])
	if hdr[5] == 2 { // ELFDATA2MSB
		typ = binary.BigEndian.Uint16(hdr[16:])
	}
	return typ != 2, nil // ET_EXEC = 2
}
