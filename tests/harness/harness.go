package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot walks up from the working directory to the directory holding go.mod of the berth module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/berth-dev/berth\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("harness: cannot find the berth repository root above the working directory")
		}
		dir = parent
	}
}

// Tool returns the path of a binary built by `make tools` (consul, nats-server).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("harness: %s is not built (%v); run `make tools` first", name, err)
	}
	return p
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePorts returns n distinct loopback TCP ports that were free a moment ago: all are held open until the
// last is taken, so two of them can never be the same (separate FreePort calls can: Consul then refuses a
// serf WAN port equal to the LAN one).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// consulArgs are the arguments of a `consul agent -dev` on distinct free loopback ports.
func consulArgs(t testing.TB, c *Consul) []string {
	p := FreePorts(t, 4)
	c.HTTPPort = p[0]
	c.Addr = "127.0.0.1:" + strconv.Itoa(c.HTTPPort)
	return []string{Tool(t, "consul"), "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(p[0]), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(p[1]), "-serf-wan-port", strconv.Itoa(p[2]),
		"-server-port", strconv.Itoa(p[3]), "-log-level", "warn",
		"-node", "berth-test-" + strconv.Itoa(c.HTTPPort)}
}

// binary is a program of this repository built once per test binary.
type binary struct {
	once sync.Once
	path string
	err  error
}

// Built once per test binary, shared by every test of the package (a cache, not state a test relies on).
var (
	berthBin     binary
	berthRaceBin binary
	testappBin   binary
)

// build compiles pkg into a fresh directory the first time b is asked for, and returns its path. Static
// (CGO_ENABLED=0) like the release, unless race is set (the race detector needs cgo).
func (b *binary) build(t testing.TB, pkg, name string, race bool) string {
	t.Helper()
	root := RepoRoot(t)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			b.err = err
			return
		}
		_ = os.Chmod(dir, 0o755) // -user nobody must be able to run what is inside
		b.path = filepath.Join(dir, name)
		args := []string{"build", "-o", b.path}
		cgo := "CGO_ENABLED=0"
		if race {
			args, cgo = append(args, "-race"), "CGO_ENABLED=1"
		} else if name == "berth" {
			// berth's entry point records the inherited signal state, as the release build does (Makefile)
			args = append(args, "-ldflags=-E=berth_rt0")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(append(args, pkg), " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Main runs a test binary's tests and then removes the binaries built for them (about 100 MB in the temporary
// directory per run otherwise). Call it from TestMain: os.Exit(harness.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	for _, b := range []*binary{&berthBin, &berthRaceBin, &testappBin} {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path))
		}
	}
	return code
}

// Berth builds ./cmd/berth once per test binary (static, like the release) and returns its path.
func Berth(t testing.TB) string { return berthBin.build(t, "./cmd/berth", "berth", false) }

// RaceBerth builds ./cmd/berth with the race detector once per test binary.
func RaceBerth(t testing.TB) string { return berthRaceBin.build(t, "./cmd/berth", "berth", true) }

// TestApp builds tests/testapp (static) once per test binary and returns its path.
func TestApp(t testing.TB) string { return testappBin.build(t, "./tests/testapp", "testapp", false) }

// Process is a background component started by the harness.
type Process struct {
	Cmd  *exec.Cmd
	Log  *bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Output returns what the process wrote so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Log.String()
}

// Start runs argv in the background with its own process group; t.Cleanup kills the group and waits.
func Start(t testing.TB, env []string, argv ...string) *Process {
	t.Helper()
	p := &Process{Log: &bytes.Buffer{}}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = lockedBuffer{&p.mu, p.Log}
	cmd.Stderr = lockedBuffer{&p.mu, p.Log}
	cmd.SysProcAttr = componentAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("harness: start %s: %v", argv[0], err)
	}
	p.Cmd = cmd
	done := make(chan struct{})
	p.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return p
}

// WaitHTTP polls url until it answers with a status < 500 or the timeout passes.
func WaitHTTP(t testing.TB, url string, timeout time.Duration, p *Process) {
	t.Helper()
	if WithinEvery(timeout, 50*time.Millisecond, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 500
	}) {
		return
	}
	out := ""
	if p != nil {
		out = p.Output()
	}
	t.Fatalf("harness: %s did not answer within %s\n%s", url, timeout, out)
}

// Consul is a running `consul agent -dev`.
type Consul struct {
	*Process
	Addr     string // host:port of the HTTP API
	HTTPPort int
	args     []string
	t        testing.TB
}

// StartConsul starts `consul agent -dev` on free loopback ports and waits until it has a leader.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	c := &Consul{t: t}
	c.args = consulArgs(t, c)
	c.start()
	return c
}

// StartConsulACL starts `consul agent -dev` with ACLs on (default_policy "deny") and the management token
// root, for tests of consul { login {} }.
func StartConsulACL(t testing.TB, root string) *Consul {
	t.Helper()
	c := &Consul{t: t}
	c.args = append(consulArgs(t, c),
		"-hcl", `acl { enabled = true, default_policy = "deny", tokens { initial_management = "`+root+`" } }`)
	c.start()
	return c
}

// StartConsulHCL starts `consul agent -dev` with extra agent configuration (HCL), e.g. raised limits for a
// fleet of clients that all connect from 127.0.0.1.
func StartConsulHCL(t testing.TB, hcl string) *Consul {
	t.Helper()
	c := &Consul{t: t}
	c.args = append(consulArgs(t, c), "-hcl", hcl)
	c.start()
	return c
}

func (c *Consul) start() {
	c.t.Helper()
	c.Process = Start(c.t, nil, c.args...)
	if WithinEvery(60*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + c.Addr + "/v1/status/leader")
		if err != nil {
			return false
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200 && len(bytes.Trim(b.Bytes(), "\" \n")) > 0
	}) {
		return
	}
	c.t.Fatalf("harness: consul did not elect a leader within 60s\n%s", c.Output())
}

// Stop kills the agent (dev mode loses all state).
func (c *Consul) Stop() {
	_ = syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-c.Exited():
	case <-time.After(10 * time.Second):
	}
}

// Restart kills the agent and starts a fresh one on the same HTTP port.
func (c *Consul) Restart() {
	c.t.Helper()
	c.Stop()
	time.Sleep(200 * time.Millisecond)
	c.start()
}

// Moto is a running moto_server.
type Moto struct {
	*Process
	URL string // http://127.0.0.1:PORT
}

// StartMoto starts moto_server on a free loopback port. Use Moto.Env for the variables the AWS SDK needs.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("harness: moto_server not on PATH (%v); run `make deps`", err)
	}
	port := FreePort(t)
	p := Start(t, nil, bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	m := &Moto{Process: p, URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	WaitHTTP(t, m.URL+"/moto-api/", 60*time.Second, p)
	return m
}

// Env returns the environment that points the AWS SDK at this moto_server with dummy credentials.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.URL,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Context returns a context cancelled at test cleanup.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// ServeECSMetadata serves the recorded task-metadata v4 documents of testdata/ecs-metadata-v4 and
// returns the value to put in ECS_CONTAINER_METADATA_URI_V4.
func ServeECSMetadata(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "testdata", "ecs-metadata-v4")
	if _, err := os.Stat(filepath.Join(dir, "task.json")); err != nil {
		t.Fatalf("harness: ECS fixtures missing: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v4/meta", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "container.json"))
	})
	mux.HandleFunc("/v4/meta/task", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "task.json"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/v4/meta"
}

// ServeECSMetadataFrom serves the task-metadata v4 documents of testdata/DIR (container.json, task.json) and
// returns the value to put in ECS_CONTAINER_METADATA_URI_V4. edit, when not nil, changes the container
// document before it is served, and the same container's entry in the task document (tests put their own
// free ports into Ports).
func ServeECSMetadataFrom(t testing.TB, dir string, edit func(container map[string]any)) string {
	t.Helper()
	dir = filepath.Join(RepoRoot(t), "testdata", dir)
	load := func(name string) map[string]any {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("harness: ECS fixture: %v", err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("harness: ECS fixture %s: %v", name, err)
		}
		return doc
	}
	container, task := load("container.json"), load("task.json")
	if edit != nil {
		edit(container)
		containers, _ := task["Containers"].([]any)
		for _, c := range containers {
			if c, ok := c.(map[string]any); ok && c["Name"] == container["Name"] {
				edit(c)
			}
		}
	}
	docs := map[string][]byte{}
	for path, doc := range map[string]map[string]any{"/v4/meta": container, "/v4/meta/task": task} {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("harness: ECS fixture: %v", err)
		}
		docs[path] = b
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v4/meta"
}
