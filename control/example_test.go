package control_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/control"
)

// backend is the smallest Backend: a fixed status and health, and no-op actions.
type backend struct{}

func (backend) Status() any {
	return map[string]any{"main": map[string]any{"pid": 7, "restarts": 0}}
}
func (backend) Health() (bool, any) {
	return false, control.HealthReport{Checks: []control.CheckResult{
		{Name: "service:web:http", Status: control.CheckCritical, Output: "HTTP 503"},
	}}
}
func (backend) Reload(context.Context) error                    { return nil }
func (backend) Maintenance(context.Context, bool, string) error { return nil }
func (backend) PutEnv(string, string) error                     { return nil }
func (backend) PutMetric(string, float64) error                 { return nil }

func Example() {
	dir, err := os.MkdirTemp("", "berth-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "berth.sock")

	srv, err := control.New(control.Config{Socket: socket}, backend{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Listen before starting the application, so that a second berth fails fast.
	if err := srv.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	fmt.Println("exit", control.RunCtl(context.Background(), socket, []string{"status"}, os.Stdout, os.Stdout))
	fmt.Println("exit", control.RunHealth(context.Background(), socket, nil, os.Stdout, os.Stdout))
	// Output:
	// {
	//   "main": {
	//     "pid": 7,
	//     "restarts": 0
	//   }
	// }
	// exit 0
	// unhealthy: 0 of 1 checks passing
	//   critical service:web:http: HTTP 503
	// exit 1
}
