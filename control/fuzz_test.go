package control

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func FuzzParseEnvAssignment(f *testing.F) {
	for _, seed := range []string{"K=V", "K=", "=V", "K", "_A1=a=b", "1A=x", "A-B=c", "K=\x00", "Ä=1", "", "\x00000=0000"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		key, value, err := ParseEnvAssignment(arg)
		if err != nil {
			// The error may quote the name (%q): only what is left without it must not hold the value.
			if k, v, ok := strings.Cut(arg, "="); ok && len(v) >= 4 && !strings.Contains(k, v) &&
				strings.Contains(strings.ReplaceAll(err.Error(), strconv.Quote(k), ""), v) {
				t.Fatalf("the error %q quotes the value %q", err, v)
			}
			return
		}
		if !ValidEnvKey(key) || key+"="+value != arg || strings.IndexByte(value, 0) >= 0 {
			t.Fatalf("accepted %q as key %q value %q", arg, key, value)
		}
	})
}

func FuzzParseMetricAssignment(f *testing.F) {
	for _, seed := range []string{"a=1", "a.b_c=-1.5e3", "a=", "=1", "a=NaN", "a=Inf", "a b=1", "a=1x", "a=0x1p-2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		name, value, err := ParseMetricAssignment(arg)
		if err != nil {
			return
		}
		if !ValidMetricName(name) || math.IsNaN(value) || math.IsInf(value, 0) || !strings.HasPrefix(arg, name+"=") {
			t.Fatalf("accepted %q as %q = %v", arg, name, value)
		}
	})
}

// FuzzHandler drives the request decoding of every POST endpoint: every answer is a JSON document with a
// known status, and what reaches the backend is valid.
func FuzzHandler(f *testing.F) {
	for _, seed := range []struct{ path, body string }{
		{"/v1/env", `{"key":"K","value":"V"}`},
		{"/v1/env", `{"key":"K","value":"a\u0000b"}`},
		{"/v1/metric", `{"name":"a.b","value":1e308}`},
		{"/v1/metric", `{"name":"a","value":1e400}`},
		{"/v1/maintenance", `{"enable":true,"reason":"x"}`},
		{"/v1/reload", ``},
		{"/v1/reload", `{}`},
		{"/v1/env", `[1,2]`},
	} {
		f.Add(seed.path, seed.body)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		b := &fakeBackend{}
		s, err := New(Config{Socket: "/unused.sock"}, b, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "http://berth/", strings.NewReader(body))
		req.URL.Path = "/" + strings.TrimLeft(path, "/")
		rec := httptest.NewRecorder()
		s.handler(context.Background()).ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404, 405, 413:
		default:
			t.Fatalf("unexpected status %d for POST %s %q: %s", rec.Code, path, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for k, v := range b.env {
			if !ValidEnvKey(k) || strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("backend got putenv %q", k)
			}
		}
		for name := range b.metrics {
			if !ValidMetricName(name) {
				t.Fatalf("backend got metric %q", name)
			}
		}
	})
}
