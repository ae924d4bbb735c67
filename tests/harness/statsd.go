package harness

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// Statsd stands in for the Datadog agent: a real packet listener (udp or unixgram) that keeps every
// DogStatsD line it receives, until the test ends.
type Statsd struct {
	Conn net.PacketConn

	mu    sync.Mutex
	lines []string
}

// ListenStatsd listens on network/addr ("udp", "127.0.0.1:0"; "unixgram", a socket path) and collects.
func ListenStatsd(t testing.TB, network, addr string) *Statsd {
	t.Helper()
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return CollectStatsd(t, conn)
}

// CollectStatsd collects the lines conn receives; t.Cleanup closes conn and stops the reader.
func CollectStatsd(t testing.TB, conn net.PacketConn) *Statsd {
	s := &Statsd{Conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			for _, l := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				if l != "" {
					s.lines = append(s.lines, l)
				}
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// Lines returns a copy of every line received so far.
func (s *Statsd) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}
