package ecsmeta

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// EnvVar is the variable ECS sets in every container of a task (agent ≥ 1.39, Fargate ≥ 1.4).
const EnvVar = "ECS_CONTAINER_METADATA_URI_V4"

// Task is what berth uses of the task metadata and of this container's metadata.
type Task struct {
	Cluster          string // cluster ARN or name as ECS reports it
	TaskARN          string
	Family           string
	Revision         string
	AvailabilityZone string
	LaunchType       string
	ContainerName    string // this container's name in the task definition
	DockerID         string
	IPv4             string // first private IPv4 address of this container's first network, "" if none
	// NetworkMode is the task's network mode as the first network reports it: "awsvpc", "bridge", "host", or ""
	// (none reported).
	NetworkMode string
	// Ports are this container's port mappings (none when it exposes no port). In bridge mode HostPort is the
	// port Docker publishes on the host, often from the ephemeral range; in awsvpc and host mode it equals
	// ContainerPort.
	Ports []Port
}

// Port is one entry of the container's Ports.
type Port struct {
	ContainerPort int
	Protocol      string // "tcp" or "udp"; "" means tcp
	HostPort      int
	HostIP        string `json:"HostIp"` // the host address it is bound to ("0.0.0.0", "::"); "" from older agents
}

// Network modes (Task.NetworkMode) as the ECS agent reports them.
const (
	NetworkAWSVPC = "awsvpc"
	NetworkBridge = "bridge"
	NetworkHost   = "host"
)

// HostPort is the host port that Docker maps containerPort/tcp to, reachable from other hosts: mappings bound
// to a loopback address are skipped, and an IPv4 (or unspecified) binding is preferred to an IPv6 one, as
// Docker lists one of each for the same port. It returns 0 when there is no such mapping.
func (t *Task) HostPort(containerPort int) int {
	if t == nil {
		return 0
	}
	found := 0
	for _, p := range t.Ports {
		if p.ContainerPort != containerPort || p.HostPort == 0 || !strings.EqualFold(cmp.Or(p.Protocol, "tcp"), "tcp") {
			continue
		}
		ip := net.ParseIP(p.HostIP)
		if ip != nil && ip.IsLoopback() {
			continue
		}
		if ip == nil || ip.To4() != nil {
			return p.HostPort
		}
		if found == 0 {
			found = p.HostPort
		}
	}
	return found
}

// TaskID is the last segment of the task ARN ("cd189a93..."), or "" when there is no ARN.
func (t *Task) TaskID() string {
	if t == nil || t.TaskARN == "" {
		return ""
	}
	return t.TaskARN[strings.LastIndex(t.TaskARN, "/")+1:]
}

// Region is the region segment of the task ARN (arn:aws:ecs:REGION:...), or "".
func (t *Task) Region() string {
	if t == nil {
		return ""
	}
	parts := strings.SplitN(t.TaskARN, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[3]
}

// ClusterName is the cluster's short name (the part after "cluster/" of an ARN).
func (t *Task) ClusterName() string {
	if t == nil {
		return ""
	}
	if i := strings.LastIndex(t.Cluster, "cluster/"); i >= 0 {
		return t.Cluster[i+len("cluster/"):]
	}
	return t.Cluster
}

// Client fetches the metadata documents.
type Client struct {
	// URI is the value of ECS_CONTAINER_METADATA_URI_V4; empty means "not on ECS".
	URI string
	// HTTP is the client used; nil means a client with a 2s timeout.
	HTTP *http.Client
}

// Fetch reads $URI (container) and $URI/task (task). It returns (nil, nil) when URI is empty.
func (c Client) Fetch(ctx context.Context) (*Task, error) {
	if c.URI == "" {
		return nil, nil
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	var container struct {
		Name     string
		DockerID string `json:"DockerId"`
		Networks []struct {
			NetworkMode   string
			IPv4Addresses []string
		}
		Ports []Port
	}
	if err := getJSON(ctx, hc, c.URI, &container); err != nil {
		return nil, err
	}
	var task struct {
		Cluster, TaskARN, Family, Revision, AvailabilityZone, LaunchType string
	}
	if err := getJSON(ctx, hc, strings.TrimRight(c.URI, "/")+"/task", &task); err != nil {
		return nil, err
	}
	t := &Task{
		Cluster: task.Cluster, TaskARN: task.TaskARN, Family: task.Family, Revision: task.Revision,
		AvailabilityZone: task.AvailabilityZone, LaunchType: task.LaunchType,
		ContainerName: container.Name, DockerID: container.DockerID,
	}
	if len(container.Networks) > 0 {
		t.NetworkMode = container.Networks[0].NetworkMode
	}
	t.Ports = container.Ports
	for _, n := range container.Networks {
		if len(n.IPv4Addresses) > 0 {
			t.IPv4 = n.IPv4Addresses[0]
			break
		}
	}
	return t, nil
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("ecs metadata %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ecs metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ecs metadata %s: HTTP %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("ecs metadata %s: %w", url, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("ecs metadata %s: %w", url, err)
	}
	return nil
}

// Cache fetches the metadata once for all the components of one berth (discovery's address and meta,
// telemetry's tags, the secrets region fallback). A failed fetch is not remembered: the next caller tries again.
type Cache struct {
	Client Client

	mu   sync.Mutex
	task *Task
}

// Fetch returns the cached task, fetching it on first use. It returns (nil, nil) when not on ECS.
func (c *Cache) Fetch(ctx context.Context) (*Task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.task != nil {
		return c.task, nil
	}
	t, err := c.Client.Fetch(ctx)
	if err == nil {
		c.task = t
	}
	return t, err
}
