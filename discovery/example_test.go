package discovery_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/onchange"
)

// The order cmd/berth follows: register, resolve peers into the main command's environment, then run the
// checks and the peers watch as actors, and deregister first on shutdown.
func Example() {
	ctx := context.Background()
	a, err := discovery.New(discovery.Config{
		MetadataURI: os.Getenv("ECS_CONTAINER_METADATA_URI_V4"),
		Services: []discovery.ServiceConfig{{Name: "app", Port: 8080,
			Checks: []discovery.CheckConfig{{HTTP: "http://127.0.0.1:8080/health", Interval: 10 * time.Second}}}},
		Peers: []discovery.PeersConfig{{Name: "cluster", Service: "app-hz", Min: 1, Env: "HZ_MEMBERS"}},
	}, hclog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := a.Register(ctx); err != nil { // only with consul.required: exit code 69
		fmt.Println(err)
		return
	}
	env, _ := a.ResolvePeers(ctx) // HZ_MEMBERS=host:port,... for the main command
	_ = env
	go func() { _ = a.Run(ctx) }()
	go func() {
		_ = a.WatchPeers(ctx, func(name string, action onchange.Action) { fmt.Println("peers", name, "changed:", action) })
	}()
	// On SIGTERM, before the application is signalled:
	stop, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = a.Deregister(stop)
}
