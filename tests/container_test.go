package tests

import (
	"archive/tar"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// podman runs real OCI containers here (README, Development): the ENTRYPOINT contract of the example
// Dockerfile is what a Docker/ECS user sees — exit code, logs, docker stop → graceful exit.
// waitBerthHealth waits up to 30 s for `berth health` in container name to exit 0, as an ECS container
// healthCheck runs it; what fails the test names what and shows the container's log.
func waitBerthHealth(t *testing.T, name, what string) {
	t.Helper()
	var health string
	if !harness.Within(30*time.Second, func() bool {
		out, code := podman(t, "exec", name, "/usr/local/bin/berth", "health")
		health = fmt.Sprintf("exit %d: %s", code, out)
		return code == 0
	}) {
		logs, _ := podman(t, "logs", name)
		t.Fatalf("%s: %s\n%s", what, health, logs)
	}
}

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

// exampleImages are what `make image` builds: berth's image (the release's root filesystem, stamped) and the
// example application image FROM it (examples/dockerfile).
type exampleImages struct {
	berth, app string
	version    string // the VERSION the test stamped
}

func buildExampleImages(t *testing.T) exampleImages {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (%v): run `make deps`", err)
	}
	pid := os.Getpid()
	im := exampleImages{berth: fmt.Sprintf("localhost/berth-e2e-%d-berth", pid), app: fmt.Sprintf("localhost/berth-e2e-%d", pid),
		version: fmt.Sprintf("v0.0.0-e2e.%d.image", pid)}
	cmd := exec.Command("make", "--no-print-directory", "image", "VERSION="+im.version, "IMAGE="+im.app, "BERTH_IMAGE="+im.berth)
	cmd.Dir = harness.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", im.app, im.berth) })
	return im
}

// exportedFiles is the root filesystem of a container of img (podman export), by path (directories end in /).
func exportedFiles(t *testing.T, img string) map[string]relFile {
	t.Helper()
	name := fmt.Sprintf("berth-e2e-export-%d", os.Getpid())
	if out, code := podman(t, "create", "--name", name, img); code != 0 {
		t.Fatalf("podman create: %s", out)
	}
	defer podman(t, "rm", "-f", name)
	path := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, code := podman(t, "export", "-o", path, name); code != 0 {
		t.Fatalf("podman export: %s", out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]relFile{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("podman export: %v", err)
		}
		data, _ := io.ReadAll(tr)
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		files[name] = relFile{mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid, data: data}
	}
}

var ulimits = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"}

// TestContainerEntrypoint: `make image` as a user runs it. berth's image is stamped and holds the release's root
// filesystem; the example app image runs its default CMD under berth as PID 1, with the control socket that
// `berth health` (an ECS healthCheck) talks to; exit codes, podman stop and orphans behave as under tini.
func TestContainerEntrypoint(t *testing.T) {
	im := buildExampleImages(t)
	root := harness.RepoRoot(t)

	t.Run("berth's image: stamped, the release root filesystem", func(t *testing.T) {
		head := relGit(t, root, "rev-parse", "--short", "HEAD")
		want := regexp.MustCompile(`^berth ` + regexp.QuoteMeta(im.version) + ` \(` + regexp.QuoteMeta(head) + `(-dirty)?, go1\.[0-9.]+\)\n$`)
		if out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none"}, ulimits...), im.berth)...); code != 0 || !want.MatchString(out) {
			t.Fatalf("default CMD (version): exit %d %q, want %s", code, out, want)
		}
		files := exportedFiles(t, im.app) // the app image is FROM berth's: both hold the same root filesystem
		for _, want := range []struct {
			path string
			mode fs.FileMode
		}{
			{"usr/local/bin/berth", 0o755},
			{"usr/local/bin/app", 0o755},
			{"etc/ssl/certs/ca-certificates.crt", 0o644},
			{"tmp/", fs.ModeDir | fs.ModeSticky | 0o777},
			{"var/run/", fs.ModeDir | 0o755},
		} {
			if f, ok := files[want.path]; !ok {
				t.Errorf("the image has no /%s", want.path)
			} else if f.mode != want.mode {
				t.Errorf("/%s is %v, want %v", want.path, f.mode, want.mode)
			}
		}
		if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"].data) {
			t.Error("/etc/ssl/certs/ca-certificates.crt holds no PEM certificate")
		}
		for path := range files {
			if strings.HasPrefix(path, "etc/berth/") {
				t.Errorf("the application image holds the sidecar's /%s (it belongs in examples/sidecar's image)", path)
			}
		}
	})

	t.Run("default CMD under berth as PID 1, berth health answers", func(t *testing.T) {
		name := fmt.Sprintf("berth-e2e-cmd-%d", os.Getpid())
		if out, code := podman(t, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, ulimits...), im.app)...); code != 0 {
			t.Fatalf("podman run -d: %d %s", code, out)
		}
		t.Cleanup(func() { podman(t, "rm", "-f", "-t", "0", name) })
		waitBerthHealth(t, name, "berth health in the container")
		// PID 1 is berth, and the app (the image's CMD) is its child
		if out, _ := podman(t, "exec", name, "/usr/local/bin/berth", "ctl", "status"); !strings.Contains(out, `"pid": 1,`) ||
			!strings.Contains(out, `"state": "running"`) {
			t.Fatalf("ctl status: want berth as pid 1 running main:\n%s", out)
		}
	})

	t.Run("exit code of the app", func(t *testing.T) {
		out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none"}, ulimits...), im.app, "/usr/local/bin/app", "-code", "7")...)
		if code != 7 {
			t.Fatalf("want 7, have %d:\n%s", code, out)
		}
	})

	t.Run("podman stop is a graceful stop", func(t *testing.T) {
		name := fmt.Sprintf("berth-e2e-stop-%d", os.Getpid())
		out, code := podman(t, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, ulimits...),
			im.app, "/usr/local/bin/app", "-say", "started", "-exit-on", "TERM:42")...)
		if code != 0 {
			t.Fatalf("podman run -d: %d %s", code, out)
		}
		t.Cleanup(func() { podman(t, "rm", "-f", name) })
		harness.Eventually(t, 20*time.Second, "the app started", func() bool {
			logs, _ := podman(t, "logs", name)
			return strings.Contains(logs, "started")
		})
		if out, code := podman(t, "stop", "-t", "10", name); code != 0 {
			t.Fatalf("podman stop: %d %s", code, out)
		}
		have, _ := podman(t, "inspect", name, "--format", "{{.State.ExitCode}}")
		if strings.TrimSpace(have) != "42" {
			t.Fatalf("want exit code 42 after SIGTERM, have %q", have)
		}
	})

	t.Run("orphans reaped inside the container", func(t *testing.T) {
		// the image has no shell: busybox (Debian busybox-static, a static binary) is mounted as one
		busybox, err := exec.LookPath("busybox")
		if err != nil {
			t.Fatalf("busybox is not installed (%v): run `make deps-test`", err)
		}
		script := `i=0; while [ $i -lt 200 ]; do (sleep 0.1 &); i=$((i+1)); done; sleep 1; exec /usr/local/bin/app -count-zombies`
		out, code := podman(t, append(append([]string{"run", "--rm", "--network", "none", "-v", busybox + ":/bin/sh:ro"}, ulimits...),
			im.app, "/bin/sh", "-c", script)...)
		if code != 0 || !strings.Contains(out, "zombies=0") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}
