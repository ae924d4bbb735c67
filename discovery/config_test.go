package discovery

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/onchange"
)

func TestValidate(t *testing.T) {
	okCheck := CheckConfig{HTTP: "http://127.0.0.1:8080/health"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"empty", Config{}, ""},
		{"service ok", Config{Services: []ServiceConfig{{Name: "app", Port: 8080, Checks: []CheckConfig{okCheck}}}}, ""},
		{"no name off ECS", Config{Services: []ServiceConfig{{Port: 8080}}}, "a name is required"},
		{"no name on ECS", Config{MetadataURI: "http://169.254.170.2/v4/x", Services: []ServiceConfig{{Port: 8080}}}, ""},
		{"bad port", Config{Services: []ServiceConfig{{Name: "app", Port: 70000}}}, "out of range"},
		{"duplicate", Config{Services: []ServiceConfig{{Name: "app", Port: 1}, {Name: "app", Port: 1}}}, "duplicate service"},
		{"dca below 1m", Config{Services: []ServiceConfig{{Name: "app", DeregisterCriticalAfter: 10 * time.Second}}}, "minimum of 1m"},
		{"two kinds", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{HTTP: "http://x/", TCP: "x:1"}}}}}, "http and tcp both set"},
		{"no kind", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{}}}}}, "needs one of http, tcp or exec"},
		{"bad url", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{HTTP: "127.0.0.1:80/health"}}}}}, "is not an http:// or https:// URL"},
		{"bad tcp", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{TCP: "nohostport"}}}}}, "not host:port"},
		{"exec without runner", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{Exec: []string{"true"}}}}}}, "exec runner"},
		{"bad initial", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{TCP: "a:1", InitialStatus: "ok"}}}}}, "initial_status"},
		{"tiny interval", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{TCP: "a:1", Interval: time.Millisecond}}}}}, "below 100ms"},
		{"dup check", Config{Services: []ServiceConfig{{Name: "app", Checks: []CheckConfig{{Name: "x", TCP: "a:1"}, {Name: "x", TCP: "a:2"}}}}}, "duplicate check"},
		{"peers ok", Config{Peers: []PeersConfig{{Name: "c", Service: "hz", Env: "HZ", OnChange: onchange.Action{Signal: syscall.SIGHUP}}}}, ""},
		{"peers restart", Config{Peers: []PeersConfig{{Name: "c", Service: "hz", File: "/tmp/x", OnChange: onchange.Action{Restart: true}}}}, ""},
		{"peers no service", Config{Peers: []PeersConfig{{Name: "c", Env: "HZ"}}}, "service is required"},
		{"peers no output", Config{Peers: []PeersConfig{{Name: "c", Service: "hz"}}}, "needs a destination: env or file"},
		{"peers bad template", Config{Peers: []PeersConfig{{Name: "c", Service: "hz", Env: "HZ", Template: "{{range .}"}}}, "template"},
		{"peers negative min", Config{Peers: []PeersConfig{{Name: "c", Service: "hz", Env: "HZ", Min: -1}}}, "min"},
		{"consul scheme", Config{Consul: ConsulConfig{Scheme: "ftp"}}, `consul: scheme: "ftp" is not one of`},
		{"consul mode catalog", Config{Consul: ConsulConfig{Mode: ModeCatalog, Node: "task-1", SessionTTL: 10 * time.Second}}, ""},
		{"consul mode bad", Config{Consul: ConsulConfig{Mode: "auto"}}, `consul: mode: "auto" is not one of`},
		{"consul session_ttl short", Config{Consul: ConsulConfig{Mode: ModeCatalog, SessionTTL: 5 * time.Second}}, "outside Consul's range"},
		{"login without method", Config{Consul: ConsulConfig{Login: &LoginConfig{}}}, "login: method is required"},
		{"consul node slash", Config{Consul: ConsulConfig{Mode: ModeCatalog, Node: "a/b"}}, `node: "a/b" contains '/'`},
		{"name with slash", Config{Services: []ServiceConfig{{Name: "x/../y"}}}, `name: "x/../y" contains '/'`},
		{"id with slash", Config{Services: []ServiceConfig{{Name: "app", ID: "x/../y"}}}, `id: "x/../y" contains '/'`},
		{"id dot-dot", Config{Services: []ServiceConfig{{Name: "app", ID: ".."}}}, "path segment"},
		{"id with query", Config{Services: []ServiceConfig{{Name: "app", ID: "a?b"}}}, "contains '?'"},
		{"id with percent", Config{Services: []ServiceConfig{{Name: "app", ID: "a%2Fb"}}}, "contains '%'"},
		{"name with space", Config{Services: []ServiceConfig{{Name: "my app"}}}, "contains ' '"},
		{"id ok", Config{Services: []ServiceConfig{{Name: "app.v2", ID: "app_v2:node-1.a"}}}, ""},
		{"peers service with slash", Config{Peers: []PeersConfig{{Name: "c", Service: "hz/../web", Env: "HZ"}}}, `service: "hz/../web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, have %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("want error containing %q, have nil", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("want error containing %q, have %v", tc.want, err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		have := b.next()
		if have < want*8/10 || have > want*12/10 {
			t.Fatalf("step %d: want %s ±20%%, have %s", i, want, have)
		}
	}
	b.reset()
	if have := b.next(); have > 120*time.Millisecond {
		t.Fatalf("after reset: want ≈100ms, have %s", have)
	}
}

func TestRender(t *testing.T) {
	peers := []Peer{{Address: "10.0.0.1", Port: 6222}, {Address: "::1", Port: 6222}}
	for _, tc := range []struct {
		name, tmpl, want string
	}{
		{"default", "", "10.0.0.1:6222,[::1]:6222"},
		{"spec example", "{{range .}}{{.Address}}:{{.Port}}{{end}}", "10.0.0.1:6222::1:6222"},
		{"routes", `{{range $i, $p := .}}{{if $i}},{{end}}nats-route://{{$p.HostPort}}{{end}}`, "nats-route://10.0.0.1:6222,nats-route://[::1]:6222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := newPeerState(PeersConfig{Name: "x", Template: tc.tmpl})
			if err != nil {
				t.Fatal(err)
			}
			have, err := ps.render(peers)
			if err != nil {
				t.Fatal(err)
			}
			if have != tc.want {
				t.Fatalf("want %q, have %q", tc.want, have)
			}
		})
	}
}

func TestLoginDenied(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want bool
	}{
		{`Unexpected response code: 500 (IAM principal arn:aws:iam::1:user/x is not trusted)`, true},
		{`Unexpected response code: 403 (Permission denied)`, true},
		{`Unexpected response code: 500 (received error code 403 from STS: InvalidClientTokenId)`, true},
		{`Unexpected response code: 500 (No cluster leader)`, false},
		{`Put "http://127.0.0.1:8500/v1/acl/login": dial tcp 127.0.0.1:8500: connect: connection refused`, false},
		{`Unexpected response code: 500 (rpc error making call: EOF)`, false},
	} {
		if have := denied(errors.New(tc.err)); have != tc.want {
			t.Errorf("denied(%q): want %v, have %v", tc.err, tc.want, have)
		}
	}
}
