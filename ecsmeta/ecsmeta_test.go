package ecsmeta

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// serve serves the fixture documents of testdata/DIR and returns the metadata URI.
func serve(t *testing.T, dir string) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/v4/abc", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../testdata/"+dir+"/container.json")
	})
	mux.HandleFunc("/v4/abc/task", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../testdata/"+dir+"/task.json")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/v4/abc"
}

func TestFetchFixture(t *testing.T) {
	have, err := Client{URI: serve(t, "ecs-metadata-v4")}.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Task{
		Cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", Family: "app", Revision: "42",
		TaskARN:          "arn:aws:ecs:us-east-1:111122223333:task/prod/cd189a933e5849daa93386466019ab50",
		AvailabilityZone: "us-east-1a", LaunchType: "FARGATE", ContainerName: "app",
		DockerID: "cd189a933e5849daa93386466019ab50-2495160603", IPv4: "127.0.2.106", NetworkMode: NetworkAWSVPC,
	}
	if !reflect.DeepEqual(*have, want) {
		t.Fatalf("want %+v\nhave %+v", want, *have)
	}
	if have.TaskID() != "cd189a933e5849daa93386466019ab50" || have.Region() != "us-east-1" || have.ClusterName() != "prod" {
		t.Fatalf("derived fields: %q %q %q", have.TaskID(), have.Region(), have.ClusterName())
	}
}

func TestFetchBridgeFixture(t *testing.T) {
	have, err := Client{URI: serve(t, "ecs-metadata-v4-bridge")}.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if have.NetworkMode != NetworkBridge || have.IPv4 != "127.0.3.2" || have.LaunchType != "EC2" {
		t.Fatalf("network mode %q, IPv4 %q, launch type %q; want bridge, 127.0.3.2, EC2", have.NetworkMode, have.IPv4, have.LaunchType)
	}
	wantPorts := []Port{
		{ContainerPort: 8080, Protocol: "tcp", HostPort: 32768, HostIP: "0.0.0.0"},
		{ContainerPort: 8080, Protocol: "tcp", HostPort: 32768, HostIP: "::"},
		{ContainerPort: 9000, Protocol: "tcp", HostPort: 9900, HostIP: "0.0.0.0"},
		{ContainerPort: 8125, Protocol: "udp", HostPort: 32769, HostIP: "0.0.0.0"},
	}
	if !reflect.DeepEqual(have.Ports, wantPorts) {
		t.Fatalf("ports:\nwant %+v\nhave %+v", wantPorts, have.Ports)
	}
	for port, want := range map[int]int{8080: 32768, 9000: 9900, 8125: 0 /* udp only */, 32768: 0 /* a host port */, 1234: 0} {
		if hp := have.HostPort(port); hp != want {
			t.Errorf("HostPort(%d) = %d, want %d", port, hp, want)
		}
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ports []Port
		want  int
	}{
		{"no ports", nil, 0},
		{"protocol left out means tcp", []Port{{ContainerPort: 80, HostPort: 32770}}, 32770},
		{"protocol in capitals", []Port{{ContainerPort: 80, Protocol: "TCP", HostPort: 32770}}, 32770},
		{"udp only", []Port{{ContainerPort: 80, Protocol: "udp", HostPort: 32770}}, 0},
		{"no host port yet", []Port{{ContainerPort: 80, Protocol: "tcp"}}, 0},
		{"IPv4 binding before IPv6", []Port{{ContainerPort: 80, HostPort: 32771, HostIP: "::"}, {ContainerPort: 80, HostPort: 32770, HostIP: "0.0.0.0"}}, 32770},
		{"IPv6 binding alone", []Port{{ContainerPort: 80, HostPort: 32771, HostIP: "::"}}, 32771},
		{"loopback binding skipped", []Port{{ContainerPort: 80, HostPort: 32770, HostIP: "127.0.0.1"}}, 0},
		{"specific host address", []Port{{ContainerPort: 80, HostPort: 32770, HostIP: "10.0.1.7"}}, 32770},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if have := (&Task{Ports: tc.ports}).HostPort(80); have != tc.want {
				t.Fatalf("HostPort(80) = %d, want %d", have, tc.want)
			}
		})
	}
	if (*Task)(nil).HostPort(80) != 0 {
		t.Fatal("a nil task has no mappings")
	}
}

func TestFetchNotOnECS(t *testing.T) {
	have, err := Client{}.Fetch(context.Background())
	if have != nil || err != nil {
		t.Fatalf("want nil, nil; have %v, %v", have, err)
	}
}

func TestCacheFetchesOnce(t *testing.T) {
	var hits int
	mux := http.NewServeMux()
	mux.HandleFunc("/v4/abc", func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.ServeFile(w, r, "../testdata/ecs-metadata-v4/container.json")
	})
	mux.HandleFunc("/v4/abc/task", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../testdata/ecs-metadata-v4/task.json")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := &Cache{Client: Client{URI: srv.URL + "/v4/abc"}}
	for i := 0; i < 3; i++ {
		task, err := c.Fetch(context.Background())
		if err != nil || task.Family != "app" {
			t.Fatalf("fetch %d: %v %v", i, task, err)
		}
	}
	if hits != 1 {
		t.Fatalf("want 1 request to the metadata endpoint, have %d", hits)
	}
}
