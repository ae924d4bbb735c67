package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/discovery"
)

func TestCoordinationKeys(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string // error substring; "" = parses
	}{
		{"singleton", `consul {}
main {
  singleton   = true
  lock_key    = "k/main"
  session_ttl = "20s"
  lock_delay  = "5s"
}
job "sched" {
  singleton = true
  command   = ["x"]
}
job "migrate" {
  type    = "oneshot"
  once    = "v1"
  wait    = "2m"
  command = ["x"]
}`, ""},
		{"json", `{"consul": {}, "job": {"m": {"type": "oneshot", "once": "v1", "command": ["x"]}}}`, ""},
		{"both", `job "x" {
  type      = "oneshot"
  singleton = true
  once      = "k"
  command   = ["x"]
}`, "x.hcl:4:3: once: a job cannot be both singleton and once"},
		{"service", `job "x" {
  once    = "k"
  command = ["x"]
}`, "x.hcl:2:3: once: only a oneshot job"},
		{"periodic", `job "x" {
  type    = "oneshot"
  every   = "1h"
  once    = "k"
  command = ["x"]
}`, "x.hcl:4:3: once: a periodic job"},
		{"lockkey", `job "x" {
  lock_key = "k"
  command  = ["x"]
}`, "x.hcl:2:3: lock_key: only with singleton = true"},
		{"delay", `job "x" {
  singleton  = true
  lock_delay = "2m"
  command    = ["x"]
}`, "x.hcl:3:16: lock_delay: at most 1m0s"},
		{"ttl", `main {
  singleton   = true
  session_ttl = "1s"
}`, "x.hcl:3:17: session_ttl: must be between 10s"},
		{"wait", `job "x" {
  type    = "oneshot"
  wait    = "1m"
  command = ["x"]
}`, "x.hcl:3:3: wait: only with once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "x.hcl"
			if tc.name == "json" {
				name = "x.json"
			}
			f, err := config.Parse([]byte(tc.src), name, config.Funcs{})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("want error %q, have %v", tc.want, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "json" {
				if oc, ok := f.Jobs[0].GateConfig.(*discovery.OnceConfig); !ok || oc.Key != "v1" {
					t.Fatalf("once not decoded: %+v", f.Jobs[0])
				}
				return
			}
			if want, have := (discovery.LockConfig{Key: "k/main", SessionTTL: 20 * time.Second, LockDelay: 5 * time.Second}), f.Main.GateConfig; !reflect.DeepEqual(have, &want) {
				t.Fatalf("main singleton: want %+v, have %+v", want, have)
			}
			if lc, ok := f.Jobs[0].GateConfig.(*discovery.LockConfig); !ok || lc.Key != "" {
				t.Fatalf("job singleton: %+v", f.Jobs[0].GateConfig)
			}
			if want, have := (discovery.OnceConfig{Key: "v1", Wait: 2 * time.Minute}), f.Jobs[1].GateConfig; !reflect.DeepEqual(have, &want) {
				t.Fatalf("once: want %+v, have %+v", want, have)
			}
		})
	}
}
