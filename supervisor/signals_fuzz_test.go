package supervisor_test

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/supervisor"
)

// FuzzParseRewrite checks -signal-rewrite parsing: it never panics, an accepted rewrite maps a signal in
// 1..64 to a signal in 1..64, it needs the FROM:TO colon, and a rejection is one line that quotes the input.
func FuzzParseRewrite(f *testing.F) {
	for _, s := range []string{
		"TERM:QUIT", "SIGTERM:SIGQUIT", "15:3", "SYS:HUP", "TTIN:TERM", "WINCH:USR1", "RTMIN+3:TERM",
		"TERM:RTMIN+3", "SIGRTMAX-1:INT", "RTMAX:RTMIN", "KILL:TERM", "STOP:TERM", "TERM:KILL", "0:1", "65:1",
		"1:64", "-1:2", "TERM", ":", "TERM:", ":TERM", "TERM:QUIT:HUP", " term : quit ", "sigterm:sigquit",
		"RTMIN+99:TERM", "99999999999999999999:1", "\x00:\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := supervisor.ParseRewrite(s)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") || msg == "" {
				t.Fatalf("ParseRewrite(%q): error is not one line: %q", s, msg)
			}
			return
		}
		if from < 1 || from > 64 || to < 1 || to > 64 {
			t.Fatalf("ParseRewrite(%q) accepted %d:%d", s, from, to)
		}
		if !strings.Contains(s, ":") {
			t.Fatalf("ParseRewrite(%q) accepted a rewrite without FROM:TO", s)
		}
	})
}
