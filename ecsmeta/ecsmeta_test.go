package ecsmeta

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestFetchFixture(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/v4/abc", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../testdata/ecs-metadata-v4/container.json")
	})
	mux.HandleFunc("/v4/abc/task", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../testdata/ecs-metadata-v4/task.json")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	have, err := Client{URI: srv.URL + "/v4/abc"}.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Task{
		Cluster: "arn:aws:ecs:us-east-1:111122223333:cluster/prod", Family: "app", Revision: "42",
		TaskARN:          "arn:aws:ecs:us-east-1:111122223333:task/prod/cd189a933e5849daa93386466019ab50",
		AvailabilityZone: "us-east-1a", LaunchType: "FARGATE", ContainerName: "app",
		DockerID: "cd189a933e5849daa93386466019ab50-2495160603", IPv4: "127.0.2.106",
	}
	if *have != want {
		t.Fatalf("want %+v\nhave %+v", want, *have)
	}
	if have.TaskID() != "cd189a933e5849daa93386466019ab50" || have.Region() != "us-east-1" || have.ClusterName() != "prod" {
		t.Fatalf("derived fields: %q %q %q", have.TaskID(), have.Region(), have.ClusterName())
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
