package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// podman runs real OCI containers here (README, Development): the ENTRYPOINT contract of the example
// Dockerfile is what a Docker/ECS user sees — exit code, logs, docker stop → graceful exit.
func podman(t *testing.T, args ...string) (string, int) {
	t.Helper()
	base := []string{"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"}
	cmd := exec.Command("podman", append(base, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("podman %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

func buildExampleImage(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (%v): run `make deps`", err)
	}
	tag := fmt.Sprintf("localhost/berth-e2e-%d", os.Getpid())
	root := harness.RepoRoot(t)
	cmd := exec.Command(filepath.Join(root, "examples/dockerfile/build.sh"), tag)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("examples/dockerfile/build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", tag) })
	return tag
}

var ulimits = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"}

func TestContainerEntrypoint(t *testing.T) {
	img := buildExampleImage(t)

	t.Run("default CMD under berth as PID 1", func(t *testing.T) {
		out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none"}, ulimits...), img)...)
		if code != 0 || !strings.Contains(out, "hello from a berth-supervised container") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
	})

	t.Run("exit code of the app", func(t *testing.T) {
		out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none"}, ulimits...), img, "/usr/local/bin/app", "-code", "7")...)
		if code != 7 {
			t.Fatalf("want 7, have %d:\n%s", code, out)
		}
	})

	t.Run("podman stop is a graceful stop", func(t *testing.T) {
		name := fmt.Sprintf("berth-e2e-stop-%d", os.Getpid())
		out, code := podman(t, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, ulimits...),
			img, "/usr/local/bin/app", "-say", "started", "-exit-on", "TERM:42")...)
		if code != 0 {
			t.Fatalf("podman run -d: %d %s", code, out)
		}
		t.Cleanup(func() { podman(t, "rm", "-f", name) })
		deadline := time.Now().Add(20 * time.Second)
		for {
			logs, _ := podman(t, "logs", name)
			if strings.Contains(logs, "started") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("app never started:\n%s", logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, code := podman(t, "stop", "-t", "10", name); code != 0 {
			t.Fatalf("podman stop: %d %s", code, out)
		}
		have, _ := podman(t, "inspect", name, "--format", "{{.State.ExitCode}}")
		if strings.TrimSpace(have) != "42" {
			t.Fatalf("want exit code 42 after SIGTERM, have %q", have)
		}
	})

	t.Run("orphans reaped inside the container", func(t *testing.T) {
		script := `i=0; while [ $i -lt 200 ]; do (sleep 0.1 &); i=$((i+1)); done; sleep 1; exec /usr/local/bin/app -count-zombies`
		out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none"}, ulimits...), img, "/bin/sh", "-c", script)...)
		if code != 0 || !strings.Contains(out, "zombies=0") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// The ECS sidecar pattern of examples/ecs/task-definition-sidecar.json: a berth container with no main
// command resolves a secret into a shared volume and exits 0 (ECS dependsOn: SUCCESS), then the application
// container reads the file.
func TestContainerSidecarSharedVolume(t *testing.T) {
	img := buildExampleImage(t)
	moto := harness.StartMoto(t)
	aws := exec.Command("aws", "ssm", "put-parameter", "--name", "/example/app/config", "--type", "SecureString",
		"--value", "listen=8080 token=sidecar-delivered-value")
	aws.Env = append(os.Environ(), moto.Env()...)
	if out, err := aws.CombinedOutput(); err != nil {
		t.Fatalf("aws ssm put-parameter: %v\n%s", err, out)
	}
	vol := fmt.Sprintf("berth-e2e-secrets-%d", os.Getpid())
	t.Cleanup(func() { podman(t, "volume", "rm", "-f", vol) })

	args := []string{"run", "--rm", "--network", "host", "-v", vol + ":/run/secrets", "--entrypoint", "/usr/local/bin/berth"}
	for _, kv := range moto.Env() {
		args = append(args, "-e", kv)
	}
	args = append(append(args, ulimits...), img, "run", "-control-socket", "off", "-config", "/etc/berth/sidecar.hcl")
	out, code := podman(t, args...)
	if code != 0 {
		t.Fatalf("sidecar: want exit 0 (ECS dependsOn SUCCESS), have %d:\n%s", code, out)
	}
	if strings.Contains(out, "sidecar-delivered-value") {
		t.Fatal("the secret value appeared in the sidecar's output")
	}
	out, code = podman(t, append(append([]string{"run", "--rm", "--network", "none", "-v", vol + ":/run/secrets:ro"}, ulimits...),
		img, "/bin/sh", "-c", "ls -l /run/secrets/app.conf && cat /run/secrets/app.conf")...)
	if code != 0 || !strings.Contains(out, "-r--r--r--") || !strings.Contains(out, "token=sidecar-delivered-value") {
		t.Fatalf("app container: exit %d:\n%s", code, out)
	}
}
