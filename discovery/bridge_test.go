package discovery

import (
	"bytes"
	"cmp"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/tests/harness"
)

// logBuffer is berth's log as a test reads it back.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// withNetworkMode sets the network mode of the container document (and of its entry in the task document).
func withNetworkMode(mode string) func(map[string]any) {
	return func(c map[string]any) {
		for _, n := range c["Networks"].([]any) {
			n.(map[string]any)["NetworkMode"] = mode
		}
	}
}

// TestBridgeNetworkMode registers a service of a bridge-mode task with a real agent and reads back what Consul
// holds: the host port Docker publishes the container port on and no service address, so that Consul answers
// with the node's address.
func TestBridgeNetworkMode(t *testing.T) {
	c, ins := startConsul(t)
	bridge := harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", nil)
	const tid = "5e1f0c2a7b9d4e3f8a6b1c0d2e4f6a8b"
	for _, tc := range []struct {
		name     string
		uri      string
		svc      ServiceConfig
		wantAddr string // "" = none: Consul uses the node's
		wantPort int
		wantLog  string
	}{
		{"dynamic host port", bridge, ServiceConfig{Name: "br-dyn", Port: 8080}, "", 32768,
			`[INFO]  discovery: bridge network mode: registering the host port at the Consul agent's node address: service=br-dyn container_port=8080 host_port=32768`},
		{"static host port", bridge, ServiceConfig{Name: "br-static", Port: 9000}, "", 9900, "container_port=9000 host_port=9900"},
		{"the port written is the host port", bridge, ServiceConfig{Name: "br-hostport", Port: 9900}, "", 9900,
			"bridge network mode: port is a host port"},
		{"no mapping keeps the task address", bridge, ServiceConfig{Name: "br-none", Port: 7000}, "127.0.3.2", 7000,
			"[WARN]  discovery: bridge network mode: the task metadata maps no tcp host port to the service port"},
		{"udp mapping only", bridge, ServiceConfig{Name: "br-udp", Port: 8125}, "127.0.3.2", 8125, "maps no tcp host port"},
		{"explicit address wins", bridge, ServiceConfig{Name: "br-explicit", Port: 8080, Address: "10.1.2.3"}, "10.1.2.3", 8080, ""},
		{"awsvpc ignores Ports", harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", withNetworkMode("awsvpc")),
			ServiceConfig{Name: "awsvpc", Port: 8080}, "127.0.3.2", 8080, ""},
		{"host ignores Ports", harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", withNetworkMode("host")),
			ServiceConfig{Name: "host", Port: 8080}, "127.0.3.2", 8080, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			cfg := Config{MetadataURI: tc.uri, Services: []ServiceConfig{tc.svc.WithDefaults()}}
			cfg.Consul.Address = c.Addr
			a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Name: "discovery", Output: logs, Level: hclog.Info}))
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Register(harness.Context(t)); err != nil {
				t.Fatal(err)
			}
			// the ID keeps the port of the config: the same for every restart of the task on another host port
			id := tc.svc.Name + "-" + tid + "-" + strconv.Itoa(tc.svc.Port)
			t.Cleanup(func() { ins.Agent().ServiceDeregister(id) })
			cat, _, err := ins.Catalog().Service(tc.svc.Name, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(cat) != 1 || cat[0].ServiceID != id {
				t.Fatalf("want one instance %s in the catalog, have %+v", id, cat)
			}
			if cat[0].ServiceAddress != tc.wantAddr || cat[0].ServicePort != tc.wantPort {
				t.Errorf("catalog: ServiceAddress %q ServicePort %d, want %q %d", cat[0].ServiceAddress, cat[0].ServicePort, tc.wantAddr, tc.wantPort)
			}
			// what a client of the health API (and DNS) dials
			es, _, err := ins.Health().Service(tc.svc.Name, "", false, nil)
			if err != nil || len(es) != 1 {
				t.Fatalf("health: %v %v", es, err)
			}
			want := tc.wantAddr
			if want == "" {
				want = es[0].Node.Address
			}
			if addr := cmp.Or(es[0].Service.Address, es[0].Node.Address); addr != want || want == "" {
				t.Errorf("a client dials %q, want %q", addr, want)
			}
			// status reports what Consul holds
			if r := a.Registrations(); len(r) != 1 || r[0].Address != tc.wantAddr || r[0].Port != tc.wantPort {
				t.Errorf("Registrations: %+v, want address %q port %d", r, tc.wantAddr, tc.wantPort)
			}
			log := logs.String()
			if tc.wantLog != "" && !strings.Contains(log, tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, log)
			}
			if tc.wantLog == "" && strings.Contains(log, "bridge network mode") {
				t.Errorf("log mentions bridge mode:\n%s", log)
			}
			if n := strings.Count(log, "bridge network mode"); n > 1 {
				t.Errorf("bridge network mode logged %d times, want once:\n%s", n, log)
			}
		})
	}
}

// TestBridgeNetworkModeCatalog: agentless, there is no agent on the host whose node address could stand for the
// host's, so berth warns once and registers the task's address and container port as in the other modes.
func TestBridgeNetworkModeCatalog(t *testing.T) {
	c, ins := startConsul(t)
	logs := &logBuffer{}
	cfg := Config{MetadataURI: harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", nil),
		Services: []ServiceConfig{ServiceConfig{Name: "br-cat", Port: 8080}.WithDefaults()}}
	cfg.Consul.Address, cfg.Consul.Mode = c.Addr, ModeCatalog
	a, err := New(cfg, hclog.New(&hclog.LoggerOptions{Name: "discovery", Output: logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Deregister(context.Background()) })
	cat, _, err := ins.Catalog().Service("br-cat", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) != 1 || cat[0].Address != "127.0.3.2" || cat[0].ServiceAddress != "127.0.3.2" || cat[0].ServicePort != 8080 {
		t.Fatalf("want the task's node and service at 127.0.3.2:8080, have %+v", cat)
	}
	log := logs.String()
	if n := strings.Count(log, "[WARN]  discovery: bridge network mode: catalog mode has no Consul agent on the host"); n != 1 {
		t.Fatalf("want one warning about catalog mode in bridge mode, have %d:\n%s", n, log)
	}
	if strings.Contains(log, "registering the host port") {
		t.Fatalf("catalog mode must not register the host port:\n%s", log)
	}
}

// TestBridgeIncludeSelf: with include_self this instance is in its own list before Consul lists it (its check
// is critical yet); in bridge mode it is there at the agent's node address and the host port, as the other
// instances see it, not at an empty address.
func TestBridgeIncludeSelf(t *testing.T) {
	c, ins := startConsul(t)
	cfg := Config{MetadataURI: harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", nil),
		Services: []ServiceConfig{ServiceConfig{Name: "br-peers", Port: 8080,
			Checks: []CheckConfig{{TCP: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}}}.WithDefaults()},
		Peers: []PeersConfig{PeersConfig{Name: "members", Service: "br-peers", IncludeSelf: true, Env: "MEMBERS"}.WithDefaults()}}
	a, _ := newTestAgent(t, c.Addr, cfg)
	if err := a.Register(harness.Context(t)); err != nil {
		t.Fatal(err)
	}
	self, err := ins.Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	node, _ := self["Member"]["Addr"].(string)
	env, err := a.ResolvePeers(harness.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := node + ":32768"; node == "" || env["MEMBERS"] != want {
		t.Fatalf("MEMBERS = %q, want %q (the node address and the host port)", env["MEMBERS"], want)
	}
}
