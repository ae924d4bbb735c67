package discovery

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestSingletonKey(t *testing.T) {
	for _, tc := range []struct{ scope, job, want string }{
		{"", "sched", "berth/singleton/sched"},
		{"billing", "sched", "berth/singleton/billing/sched"},
	} {
		if have := SingletonKey(tc.scope, tc.job); have != tc.want {
			t.Errorf("SingletonKey(%q, %q): want %q, have %q", tc.scope, tc.job, tc.want, have)
		}
	}
	c := &Coordinator{}
	l := c.Singleton("sched", "", LockConfig{}, 0, nil)
	if l.ttl != DefaultLockSessionTTL || l.delay != time.Millisecond {
		t.Errorf("defaults: want ttl %s and a 1ms lock-delay for stop_timeout 0, have %s and %s", DefaultLockSessionTTL, l.ttl, l.delay)
	}
	l = c.Singleton("sched", "", LockConfig{Key: "/k"}, 2*time.Minute, nil)
	if l.Key() != "k" || l.delay != MaxLockDelay {
		t.Errorf("want key k and lock-delay capped at %s, have %q and %s", MaxLockDelay, l.Key(), l.delay)
	}
}

func TestParseOnceResult(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  onceResult
	}{
		{"ok", onceResult{ok: true, index: 7}},
		{"failed:3", onceResult{failed: true, code: 3, index: 7}},
		{"failed:x", onceResult{failed: true, code: 1, index: 7}},
		{"failed:999", onceResult{failed: true, code: 1, index: 7}},
		{"", onceResult{index: 7}},
	} {
		if have := parseResult(&api.KVPair{Value: []byte(tc.value), ModifyIndex: 7}); have != tc.want {
			t.Errorf("%q: want %+v, have %+v", tc.value, tc.want, have)
		}
	}
	if have := parseResult(nil); have != (onceResult{}) {
		t.Errorf("nil: have %+v", have)
	}
}

func TestFenceMargin(t *testing.T) {
	for _, tc := range []struct{ ttl, want time.Duration }{
		{10 * time.Second, time.Second},
		{time.Minute, 6 * time.Second},
	} {
		if have := fenceMargin(tc.ttl); have != tc.want {
			t.Errorf("fenceMargin(%s): want %s, have %s", tc.ttl, tc.want, have)
		}
	}
}
