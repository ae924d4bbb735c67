package tests

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// TestECSBridgeNetworkMode runs berth on an ECS task in bridge network mode (a fake metadata endpoint serving
// testdata/ecs-metadata-v4-bridge with this test's ports): Docker publishes the application's container port on
// a host port, so Consul must show that host port and no service address (the agent's node address, the host's
// when the agent runs on the host), while berth's check keeps probing the application on its container port.
// In awsvpc and host mode the same document registers the task's address and the container port, as before.
func TestECSBridgeNetworkMode(t *testing.T) {
	c := harness.StartConsul(t)
	app := harness.TestApp(t)
	for _, tc := range []struct {
		mode           string
		wantBridgePort bool
	}{{"bridge", true}, {"awsvpc", false}, {"host", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			port, hostPort := harness.FreePort(t), harness.FreePort(t) // nothing listens on hostPort: it is Docker's, on the host
			meta := harness.ServeECSMetadataFrom(t, "ecs-metadata-v4-bridge", func(doc map[string]any) {
				for _, n := range doc["Networks"].([]any) {
					n.(map[string]any)["NetworkMode"] = tc.mode
				}
				doc["Ports"] = []any{map[string]any{"ContainerPort": port, "Protocol": "tcp", "HostPort": hostPort, "HostIp": "0.0.0.0"}}
			})
			name := uniqueName(t, "bridge-"+tc.mode)
			listen := "127.0.0.1:" + strconv.Itoa(port)
			b := harness.RunBerth(t, harness.BerthOpts{Env: []string{"CONSUL_HTTP_ADDR=" + c.Addr, "ECS_CONTAINER_METADATA_URI_V4=" + meta},
				Args: []string{"-control-socket", "off", "-log-level", "info", "-service", name, "-port", strconv.Itoa(port),
					"-check-http", "http://" + listen + "/health", "-check-interval", "1s", "--", app, "-http", listen}})
			// passing: the check reached the application on its container port
			es, _ := waitConsul(t, c.Addr, name, 20*time.Second, "registered and passing", oneWithStatus("passing"), b)
			cat := catalogService(t, c.Addr, name)
			if len(cat) != 1 || cat[0].ServiceID != es[0].Service.ID {
				t.Fatalf("catalog: %+v", cat)
			}
			wantAddr, wantPort := "127.0.3.2", port // the task's address from the metadata, the container port
			if tc.wantBridgePort {
				wantAddr, wantPort = "", hostPort
			}
			if cat[0].ServiceAddress != wantAddr || cat[0].ServicePort != wantPort {
				t.Fatalf("catalog: ServiceAddress %q ServicePort %d, want %q %d (container port %d, host port %d)",
					cat[0].ServiceAddress, cat[0].ServicePort, wantAddr, wantPort, port, hostPort)
			}
			if tc.wantBridgePort && cat[0].Address == "" {
				t.Fatalf("the node has no address for clients to use: %+v", cat[0])
			}
			logged := strings.Contains(b.Stderr.String(), "bridge network mode: registering the host port at the Consul agent's node address")
			if logged != tc.wantBridgePort {
				t.Fatalf("bridge-mode line logged: %v, want %v:\n%s", logged, tc.wantBridgePort, b.Stderr.String())
			}
			if tc.wantBridgePort && !strings.Contains(b.Stderr.String(), "host_port="+strconv.Itoa(hostPort)) &&
				!strings.Contains(b.Stderr.String(), `"host_port":`+strconv.Itoa(hostPort)) {
				t.Fatalf("the log line should name the host port %d:\n%s", hostPort, b.Stderr.String())
			}
			b.Signal(syscall.SIGTERM)
			if code := b.Wait(30 * time.Second); code != 143 {
				t.Fatalf("exit %d, want 143\n%s", code, b.Stderr.String())
			}
			if cat := catalogService(t, c.Addr, name); len(cat) != 0 {
				t.Fatalf("after exit the catalog lists %+v", cat)
			}
		})
	}
}
