package telemetry

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// processSnapshots reads berth's own process families (client_golang's process collector) from /proc/self and
// getrlimit. A family whose source cannot be read is left out of the scrape; the others are still served.
func processSnapshots() []promSnapshot {
	values := map[string]float64{}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if f := statFields(b); len(f) >= 22 {
			num := func(n int) float64 { v, _ := strconv.ParseUint(string(f[n-3]), 10, 64); return float64(v) }
			values["process_cpu_seconds_total"] = (num(14) + num(15)) / clockTicks
			values["process_virtual_memory_bytes"] = num(23)
			values["process_resident_memory_bytes"] = num(24) * float64(os.Getpagesize())
			if btime, ok := bootTime(); ok {
				values["process_start_time_seconds"] = btime + num(22)/clockTicks
			}
		}
	}
	if d, err := os.Open("/proc/self/fd"); err == nil {
		names, err := d.Readdirnames(-1)
		_ = d.Close()
		if err == nil {
			values["process_open_fds"] = float64(len(names)) // with the one reading the directory, as client_golang counts
		}
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		values["process_max_fds"] = float64(lim.Cur)
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		values["process_virtual_memory_max_bytes"] = float64(lim.Cur) // RLIM_INFINITY is the largest uint64
	}
	if in, out, ok := netOctets(); ok {
		values["process_network_receive_bytes_total"] = in
		values["process_network_transmit_bytes_total"] = out
	}
	return snapshots(processFamilies, values, nil)
}

// statFields are the fields of /proc/PID/stat after the command name: field N is at N-3.
func statFields(b []byte) [][]byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}

// bootTime is btime from /proc/stat: the boot time in seconds since the epoch.
func bootTime() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}

// netOctets are IpExt InOctets and OutOctets of /proc/self/net/netstat (the network namespace's, as
// client_golang reads them).
func netOctets() (in, out float64, ok bool) {
	b, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	var names []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, found := bytes.CutPrefix(line, []byte("IpExt: "))
		if !found {
			continue
		}
		fields := bytes.Fields(rest)
		if names == nil { // the first IpExt line names the columns, the second has the values
			for _, f := range fields {
				names = append(names, string(f))
			}
			continue
		}
		var haveIn, haveOut bool
		for i, f := range fields {
			if i >= len(names) {
				break
			}
			v, err := strconv.ParseFloat(string(f), 64)
			if err != nil {
				continue
			}
			switch names[i] {
			case "InOctets":
				in, haveIn = v, true
			case "OutOctets":
				out, haveOut = v, true
			}
		}
		return in, out, haveIn && haveOut
	}
	return 0, 0, false
}
