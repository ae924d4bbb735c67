package onchange

import (
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Action
		text    string
		wantErr string
	}{
		{in: "", text: "none"},
		{in: "none", text: "none"},
		{in: "restart", want: Action{Restart: true}, text: "restart"},
		{in: "signal:hup", want: Action{Signal: syscall.SIGHUP}, text: "signal:SIGHUP"},
		{in: "signal:SIGUSR1", want: Action{Signal: syscall.SIGUSR1}, text: "signal:SIGUSR1"},
		{in: "reload", wantErr: `"reload" is not "none", "restart" or "signal:SIGNAME"`},
		{in: "signal:", wantErr: "is not"},
		{in: "signal:NOPE", wantErr: "unknown signal"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			have, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error containing %q, have %v", tc.wantErr, err)
				}
				return
			}
			if err != nil || have != tc.want {
				t.Fatalf("want %+v, have %+v, %v", tc.want, have, err)
			}
			if have.String() != tc.text {
				t.Errorf("String: want %q, have %q", tc.text, have.String())
			}
			if have.None() != (tc.text == "none") {
				t.Errorf("None: want %v", tc.text == "none")
			}
		})
	}
}
