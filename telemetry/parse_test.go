//go:build linux

package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/ecsmeta"
)

func TestResolveDogStatsD(t *testing.T) {
	tests := []struct {
		name    string
		setting string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"off", "", nil, "", ""},
		{"setting host:port", "10.0.0.1:9125", nil, "10.0.0.1:9125", ""},
		{"setting udp url", "udp://agent:8126", nil, "agent:8126", ""},
		{"setting udp url without port", "udp://agent", nil, "agent:8125", ""},
		{"setting bare host", "agent", nil, "agent:8125", ""},
		{"setting unix", "unix:///var/run/datadog/dsd.socket", nil, "unix:///var/run/datadog/dsd.socket", ""},
		{"setting wins over env", "a:1", map[string]string{"DD_AGENT_HOST": "b"}, "a:1", ""},
		{"url", "", map[string]string{"DD_DOGSTATSD_URL": "udp://127.0.0.1:9999", "DD_AGENT_HOST": "x"}, "127.0.0.1:9999", ""},
		{"url unix", "", map[string]string{"DD_DOGSTATSD_URL": "unix:///tmp/d.sock"}, "unix:///tmp/d.sock", ""},
		{"url unixgram", "", map[string]string{"DD_DOGSTATSD_URL": "unixgram:///tmp/d.sock"}, "unixgram:///tmp/d.sock", ""},
		{"agent host", "", map[string]string{"DD_AGENT_HOST": "169.254.1.1"}, "169.254.1.1:8125", ""},
		{"agent host and port", "", map[string]string{"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "18125"}, "agent:18125", ""},
		{"agent host ipv6", "", map[string]string{"DD_AGENT_HOST": "fd00::1"}, "[fd00::1]:8125", ""},
		{"agent host with port", "", map[string]string{"DD_AGENT_HOST": "agent:7000"}, "agent:7000", ""},
		{"bad scheme", "", map[string]string{"DD_DOGSTATSD_URL": "http://agent:8125"}, "", "DD_DOGSTATSD_URL"},
		{"relative unix path", "unix://dsd.socket", nil, "", "telemetry.dogstatsd"},
		{"bad port", "", map[string]string{"DD_AGENT_HOST": "agent", "DD_DOGSTATSD_PORT": "0"}, "", "DD_DOGSTATSD_PORT"},
		{"bad port in url", "udp://agent:99999", nil, "", "telemetry.dogstatsd"},
		{"missing host", "udp://:8125", nil, "", "telemetry.dogstatsd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have, err := ResolveDogStatsD(tt.setting, envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error naming %s, have %q, %v", tt.wantErr, have, err)
				}
				return
			}
			if err != nil || have != tt.want {
				t.Fatalf("want %q, have %q (%v)", tt.want, have, err)
			}
		})
	}
}

func FuzzResolveDogStatsD(f *testing.F) {
	for _, s := range []string{"udp://a:1", "unix:///x", "a", "[::1]:8125", "udp://[fe80::1%eth0]:1", "::", "x://y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		have, err := ResolveDogStatsD(v, nil)
		if err != nil || v == "" {
			return
		}
		if strings.HasPrefix(have, "unix") {
			return
		}
		// Anything accepted as UDP must be host:port with a valid port.
		h, p, serr := net.SplitHostPort(have)
		if serr != nil || h == "" || checkPort(p) != nil {
			t.Fatalf("%q resolved to unusable %q", v, have)
		}
	})
}

func TestGlobalTags(t *testing.T) {
	task := &ecsmeta.Task{Cluster: "arn:aws:ecs:us-east-1:1:cluster/prod", Family: "app", Revision: "7", ContainerName: "web"}
	tests := []struct {
		name string
		env  map[string]string
		task *ecsmeta.Task
		want []string
	}{
		{"none", nil, nil, nil},
		{"unified service tags", map[string]string{"DD_ENV": "prod", "DD_SERVICE": "shop", "DD_VERSION": "2"}, nil,
			[]string{"env:prod", "service:shop", "version:2"}},
		{"DD_TAGS commas and spaces", map[string]string{"DD_TAGS": "a:1, b:2 c:3,,"}, nil, []string{"a:1", "b:2", "c:3"}},
		{"ecs", nil, task, []string{"ecs_cluster:prod", "task_family:app", "task_version:7", "container_name:web"}},
		{"other variables never", map[string]string{"SECRET": "s3cr3t-value", "AWS_SECRET_ACCESS_KEY": "k"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if have := GlobalTags(envMap(tt.env), tt.task); !slices.Equal(have, tt.want) {
				t.Fatalf("want %v, have %v", tt.want, have)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 100 50 20 10 20 0 1 0 100 4096 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", "42 (sh)" + tail, procStat{ppid: 1, ticks: 180, rss: 321}, false},
		{"name with spaces and parens", "42 (a (b) c)" + tail, procStat{ppid: 1, ticks: 180, rss: 321}, false},
		{"negative child times ignored", "42 (x) S 1 2 3 4 5 6 7 8 9 10 100 50 -1 -1 20 0 1 0 100 4096 9", procStat{ppid: 1, ticks: 150, rss: 9}, false},
		{"truncated", "42 (sh) S 1 2 3", procStat{}, true},
		{"no name", "42 sh S 1", procStat{}, true},
		{"garbage number", "42 (sh) S x" + tail[4:], procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("want error %v, have %v", tt.wantErr, err)
			}
			if !tt.wantErr && have != tt.want {
				t.Fatalf("want %+v, have %+v", tt.want, have)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 5 100 200 18446744073709551615"))
	f.Add([]byte("7 ()) R 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err == nil && st.rss < 0 && !bytes.Contains(b, []byte("-")) {
			t.Fatalf("negative rss without a minus sign: %+v", st)
		}
	})
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantErr             string
		wantLines           int // of the two lines logged (debug, info)
		wantJSON            bool
	}{
		{"defaults", "", "", "", 1, false},
		{"json", "info", "json", "", 1, true},
		{"debug text", "DEBUG", "text", "", 2, false},
		{"trace json", "trace", "json", "", 2, true},
		{"error hides info", "error", "", "", 0, false},
		{"bad level", "verbose", "", `"verbose"`, 0, false},
		{"bad format", "info", "logfmt", `"logfmt"`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			log, err := NewLogger(LogConfig{Level: tt.level, Format: tt.format, Output: &out})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error naming %s, have %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("debug line", "k", "v")
			log.Info("info line\nwith a newline", "n", 1)
			var lines []string
			sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if tt.wantJSON {
				for _, l := range lines {
					var obj map[string]any
					if err := json.Unmarshal([]byte(l), &obj); err != nil {
						t.Fatalf("not one JSON object per line: %q: %v", l, err)
					}
					if obj["logger"] != "berth" {
						t.Errorf("want logger berth, have %v", obj["logger"])
					}
				}
				if len(lines) != tt.wantLines {
					t.Fatalf("want %d lines, have %d:\n%s", tt.wantLines, len(lines), out.String())
				}
			} else if strings.Count(out.String(), " line") != tt.wantLines {
				t.Fatalf("want %d log entries, have:\n%s", tt.wantLines, out.String())
			}
		})
	}
}
