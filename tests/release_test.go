package tests

// The release as a user gets it: `make release` writes static amd64 and arm64 binaries, OCI image archives and
// SHA256SUMS; the arm64 binary runs under qemu-user as PID 1 (version, an exit code, a forwarded SIGTERM, a
// secret from moto); the image archives hold berth, a CA bundle, /tmp and /var/run; the amd64 archive loads in
// podman, and berth runs and answers `berth health` in it. Helpers are prefixed "rel".

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

var relArches = []string{"amd64", "arm64"}

func TestRelease(t *testing.T) {
	root := harness.RepoRoot(t)
	version := fmt.Sprintf("v0.0.0-e2e.%d", os.Getpid()) // also the image name: nothing shared with a user's
	dist := t.TempDir()
	head := relGit(t, root, "rev-parse", "--short", "HEAD")

	start := time.Now()
	cmd := exec.Command("make", "--no-print-directory", "release", "VERSION="+version, "DIST="+dist)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	t.Logf("make release: %s", time.Since(start).Round(time.Second))
	bin := func(arch string) string { return filepath.Join(dist, "berth_"+version+"_linux_"+arch) }
	archive := func(arch string) string { return filepath.Join(dist, "berth_"+version+"_image_linux_"+arch+".oci.tar") }
	multi := filepath.Join(dist, "berth_"+version+"_image.oci.tar")
	wantVersion := regexp.MustCompile(`^berth ` + regexp.QuoteMeta(version) + ` \(` + regexp.QuoteMeta(head) + `(-dirty)?, go1\.[0-9.]+\)\n$`)

	t.Run("SHA256SUMS covers every file and matches", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
			sum, name, ok := strings.Cut(line, "  ")
			if !ok || len(sum) != 64 {
				t.Fatalf("SHA256SUMS line %q is not sha256sum's format", line)
			}
			listed[name] = sum
		}
		entries, _ := os.ReadDir(dist)
		for _, e := range entries {
			if e.Name() == "SHA256SUMS" {
				continue
			}
			sum, ok := listed[e.Name()]
			if !ok {
				t.Errorf("%s is not in SHA256SUMS", e.Name())
			} else if have := relSHA256File(t, filepath.Join(dist, e.Name())); have != sum {
				t.Errorf("%s: sha256 %s, SHA256SUMS says %s", e.Name(), have, sum)
			}
			delete(listed, e.Name())
			info, _ := e.Info()
			t.Logf("%-45s %6.1f MB", e.Name(), float64(info.Size())/1e6)
		}
		for name := range listed {
			t.Errorf("SHA256SUMS lists %s, which is not in dist", name)
		}
		want := []string{filepath.Base(bin("amd64")), filepath.Base(bin("arm64")), filepath.Base(archive("amd64")),
			filepath.Base(archive("arm64")), filepath.Base(multi), "SHA256SUMS"}
		for _, name := range want {
			if _, err := os.Stat(filepath.Join(dist, name)); err != nil {
				t.Errorf("dist lacks %s", name)
			}
		}
		// what a user runs after downloading (README, Install)
		c := exec.Command("sha256sum", "-c", "SHA256SUMS")
		c.Dir = dist
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
		}
	})

	t.Run("binaries are static, trimmed, stamped and start at berth's entry point", func(t *testing.T) {
		machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
		for _, arch := range relArches {
			f, err := elf.Open(bin(arch))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != machine[arch] {
				t.Errorf("%s: ELF machine %v", arch, f.Machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("%s: has %v: not a static binary", arch, p.Type)
				}
			}
			f.Close()
			info, err := buildinfo.ReadFile(bin(arch))
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux", "GOARCH": arch} {
				if settings[k] != v {
					t.Errorf("%s: build setting %s=%q, want %q", arch, k, settings[k], v)
				}
			}
			data, _ := os.ReadFile(bin(arch))
			if bytes.Contains(data, []byte(root+"/")) {
				t.Errorf("%s: the binary holds the build directory %s (no -trimpath?)", arch, root)
			}
		}
		// -trimpath drops -ldflags from the build info: the stamp is checked through `berth version`, and
		// -E=berth_rt0 through what it is for. A signal berth was started with ignored stays ignored in the
		// command it runs, as under tini; a binary entered at the Go runtime's own entry point forgets it.
		if out, err := exec.Command(bin("amd64"), "version").Output(); err != nil || !wantVersion.Match(out) {
			t.Errorf("berth version: %v %q, want %v", err, out, wantVersion)
		}
		if ign := relSigIgn(t, bin("amd64")); ign&(1<<(syscall.SIGUSR2-1)) == 0 {
			t.Errorf("amd64: SIGUSR2, ignored when berth started, is not ignored in its child (SigIgn %#x): not linked with -E=berth_rt0?", ign)
		}
	})

	t.Run("arm64 under qemu-user", func(t *testing.T) {
		qemu, err := exec.LookPath("qemu-aarch64-static")
		if err != nil {
			t.Fatalf("qemu-aarch64-static is not installed (%v): run `make deps` (Debian qemu-user-static)", err)
		}
		arm := bin("arm64")
		out, err := exec.Command(qemu, arm, "version").Output()
		if err != nil || !wantVersion.Match(out) {
			t.Fatalf("berth version under qemu: %v %q, want %v", err, out, wantVersion)
		}
		if ign := relSigIgn(t, "unshare", "--pid", "--fork", "--mount-proc", qemu, arm); ign&(1<<(syscall.SIGUSR2-1)) == 0 {
			t.Errorf("arm64: SIGUSR2, ignored when berth started, is not ignored in its child (SigIgn %#x): not linked with -E=berth_rt0?", ign)
		}

		// As PID 1, as in a container: qemu-user 7.2 has no PR_SET_CHILD_SUBREAPER, which berth needs
		// only when it is not PID 1.
		if code, _, stderr := relQemuPID1(t, qemu, arm, nil, "/bin/sh", "-c", "exit 7").wait(t); code != 7 {
			t.Fatalf("exit code: want 7, have %d\n%s", code, stderr)
		}

		r := relQemuPID1(t, qemu, arm, nil, "sleep", "600")
		r.waitGrandchild(t, "sleep") // berth has forked it: its signal handling is in place
		r.signal(t, syscall.SIGTERM)
		if code, _, stderr := r.wait(t); code != 143 {
			t.Fatalf("SIGTERM forwarded to sleep: want exit 143 (128+15), have %d\n%s", code, stderr)
		}

		moto := harness.StartMoto(t)
		const value = "arm64-delivered-Zq8v"
		arn, _ := harness.AWSClients(t, moto.URL).Secret(t, "release/e2e/db", value)
		outFile := filepath.Join(t.TempDir(), "value")
		env := append(moto.Env(), "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
			"DB_PASSWORD="+arn, "OUT="+outFile)
		code, stdout, stderr := relQemuPID1(t, qemu, arm, env, "/bin/sh", "-c", `printf %s "$DB_PASSWORD" >"$OUT"`).wait(t)
		if code != 0 {
			t.Fatalf("secret from moto: exit %d\n%s", code, strings.ReplaceAll(stderr, value, "<value>"))
		}
		if got, _ := os.ReadFile(outFile); string(got) != value {
			t.Fatalf("the child saw DB_PASSWORD of %d bytes, want the secret's %d", len(got), len(value))
		}
		if strings.Contains(stdout+stderr, value) {
			t.Fatal("the secret value appeared in berth's output")
		}
	})

	t.Run("image archives", func(t *testing.T) {
		digests := map[string]string{}
		for _, arch := range relArches {
			img := relReadOCI(t, archive(arch))
			if len(img.index.Manifests) != 1 || img.index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "berth:"+version {
				t.Fatalf("%s: index.json %+v, want one manifest named berth:%s", arch, img.index, version)
			}
			digests[arch] = img.index.Manifests[0].Digest
			m := img.manifest(t, img.index.Manifests[0].Digest)
			var cfg struct {
				Architecture, OS string
				Config           struct {
					Entrypoint, Cmd []string
					Labels          map[string]string
				}
			}
			img.json(t, m.Config.Digest, &cfg)
			if cfg.Architecture != arch || cfg.OS != "linux" {
				t.Errorf("%s: image config says %s/%s", arch, cfg.OS, cfg.Architecture)
			}
			if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/berth"}) {
				t.Errorf("%s: ENTRYPOINT %q, want berth itself (ECS command: [\"run\", …])", arch, cfg.Config.Entrypoint)
			}
			if l := cfg.Config.Labels; l["org.opencontainers.image.version"] != version || !strings.HasPrefix(l["org.opencontainers.image.revision"], head) {
				t.Errorf("%s: labels %v", arch, l)
			}
			if len(m.Layers) != 1 {
				t.Fatalf("%s: %d layers, want 1", arch, len(m.Layers))
			}
			blobPath := func(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }
			if d := img.docker; len(d) != 1 || d[0].Config != blobPath(m.Config.Digest) || !slices.Equal(d[0].Layers, []string{blobPath(m.Layers[0].Digest)}) ||
				!slices.Equal(d[0].RepoTags, []string{"berth:" + version}) {
				t.Errorf("%s: docker's manifest.json %+v does not name the OCI manifest's config and layer as berth:%s", arch, d, version)
			}
			files := img.layer(t, m.Layers[0].Digest)
			for _, want := range []struct {
				path string
				mode fs.FileMode
			}{
				{"usr/local/bin/berth", 0o755},
				{"etc/ssl/certs/ca-certificates.crt", 0o644},
				{"tmp/", fs.ModeDir | fs.ModeSticky | 0o777},
				{"var/run/", fs.ModeDir | 0o755},
			} {
				f, ok := files[want.path]
				if !ok {
					t.Errorf("%s: the image has no /%s", arch, want.path)
					continue
				}
				if f.mode != want.mode || f.uid != 0 || f.gid != 0 {
					t.Errorf("%s: /%s is %v %d:%d, want %v 0:0", arch, want.path, f.mode, f.uid, f.gid, want.mode)
				}
			}
			if sum := sha256.Sum256(files["usr/local/bin/berth"].data); hex.EncodeToString(sum[:]) != relSHA256File(t, bin(arch)) {
				t.Errorf("%s: /usr/local/bin/berth is not dist's berth_%s_linux_%s", arch, version, arch)
			}
			if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"].data) {
				t.Errorf("%s: /etc/ssl/certs/ca-certificates.crt holds no PEM certificate", arch)
			}
		}

		img := relReadOCI(t, multi)
		if len(img.index.Manifests) != 1 || img.index.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Fatalf("multi-arch archive: index.json %+v, want one image index", img.index)
		}
		var list relIndex
		img.json(t, img.index.Manifests[0].Digest, &list)
		have := map[string]string{}
		for _, m := range list.Manifests {
			have[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
		}
		for _, arch := range relArches {
			if have["linux/"+arch] != digests[arch] {
				t.Errorf("multi-arch index: linux/%s is %q, the per-arch archive holds %q", arch, have["linux/"+arch], digests[arch])
			}
		}
	})

	t.Run("amd64 image in podman", func(t *testing.T) {
		if _, err := exec.LookPath("podman"); err != nil {
			t.Fatalf("podman is not installed (%v): run `make deps`", err)
		}
		img := "localhost/berth:" + version
		if out, code := podman(t, "load", "-i", archive("amd64")); code != 0 || !strings.Contains(out, img) {
			t.Fatalf("podman load: exit %d\n%s", code, out)
		}
		t.Cleanup(func() { podman(t, "rmi", "-f", img) })
		// docker load's format (manifest.json) in the same archive, read by containers/image's docker-archive
		// transport: the image it gives is the one the OCI index names.
		ociID, _ := podman(t, "image", "inspect", "--format", "{{.ID}}", img)
		if out, code := podman(t, "rmi", img); code != 0 {
			t.Fatalf("podman rmi: %s", out)
		}
		if out, code := podman(t, "pull", "docker-archive:"+archive("amd64")); code != 0 {
			t.Fatalf("podman pull docker-archive: exit %d\n%s", code, out)
		}
		if dockerID, _ := podman(t, "image", "inspect", "--format", "{{.ID}}", img); dockerID != ociID || ociID == "" {
			t.Fatalf("the docker-archive view is image %q, the OCI view %q", dockerID, ociID)
		}

		run := append([]string{"run", "--rm", "--network", "none"}, ulimits...)
		if out, code := podman(t, append(run, img)...); code != 0 || !wantVersion.MatchString(out) {
			t.Fatalf("default CMD (version): exit %d %q", code, out)
		}

		// Zero config, no secrets: berth as PID 1 runs a static app mounted into the image.
		app := append(run, "-v", harness.TestApp(t)+":/app:ro", img, "run", "--", "/app")
		if out, code := podman(t, append(app, "-say", "hello from the release image", "-code", "3")...); code != 3 || !strings.Contains(out, "hello from the release image") {
			t.Fatalf("zero-config run: want exit 3 and the app's line, have %d:\n%s", code, out)
		}

		// berth health talks to the control socket under /var/run: it answers while the app runs.
		name := fmt.Sprintf("berth-e2e-release-%d", os.Getpid())
		args := append(append([]string{"run", "-d", "--name", name, "--network", "none"}, ulimits...),
			"-v", harness.TestApp(t)+":/app:ro", img, "run", "--", "/app", "-say", "started", "-exit-on", "TERM:0")
		if out, code := podman(t, args...); code != 0 {
			t.Fatalf("podman run -d: exit %d\n%s", code, out)
		}
		t.Cleanup(func() { podman(t, "rm", "-f", name) })
		harness.Eventually(t, 30*time.Second, "the app's line in podman logs", func() bool {
			logs, _ := podman(t, "logs", name)
			return strings.Contains(logs, "started")
		})
		var health string
		if !harness.Within(15*time.Second, func() bool {
			out, code := podman(t, "exec", name, "/usr/local/bin/berth", "health")
			health = fmt.Sprintf("exit %d: %s", code, out)
			return code == 0
		}) {
			t.Fatalf("berth health in the image: %s", health)
		}
		if out, code := podman(t, "stop", "-t", "10", name); code != 0 {
			t.Fatalf("podman stop: %d %s", code, out)
		}
		if have, _ := podman(t, "inspect", name, "--format", "{{.State.ExitCode}}"); strings.TrimSpace(have) != "0" {
			logs, _ := podman(t, "logs", name)
			t.Fatalf("after podman stop: exit code %q, want the app's 0\n%s", have, logs)
		}
	})
}

// relGit runs git in dir and returns its trimmed output.
func relGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command("git", args...)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func relSHA256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// relSigIgn starts berth (argv: the binary, or a wrapper and the binary) with SIGUSR2 ignored and returns the
// SigIgn mask of the command it runs.
func relSigIgn(t *testing.T, argv ...string) uint64 {
	t.Helper()
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + a + "'"
	}
	script := "trap '' USR2; exec " + strings.Join(q, " ") + " -control-socket off -- grep SigIgn /proc/self/status"
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	_, mask, ok := strings.Cut(strings.TrimSpace(string(out)), "SigIgn:")
	ign, perr := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
	if err != nil || !ok || perr != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return ign
}

// relRun is berth under qemu-user as PID 1 of a new PID namespace (unshare --pid --fork).
type relRun = bgRun

func relQemuPID1(t *testing.T, qemu, berth string, env []string, command ...string) *relRun {
	t.Helper()
	argv := append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child", qemu, berth, "-control-socket", "off", "--"}, command...)
	return startBackground(t, env, argv...)
}

// berthPid is berth's host pid: the child unshare forked.
func (r *relRun) berthPid(t *testing.T) int {
	t.Helper()
	var pid int
	harness.Eventually(t, 30*time.Second, "berth started inside unshare", func() bool {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", r.cmd.Process.Pid, r.cmd.Process.Pid))
		f := strings.Fields(string(data))
		if len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
		}
		return pid > 0
	})
	return pid
}

// waitGrandchild waits until berth runs a child called comm and returns its host pid.
func (r *relRun) waitGrandchild(t *testing.T, comm string) int {
	t.Helper()
	berth := r.berthPid(t)
	var pid int
	harness.Eventually(t, 30*time.Second, "berth started "+comm, func() bool {
		var kids []string // children lists a thread's own: berth may fork from any of its threads
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", berth))
		for _, path := range tasks {
			data, _ := os.ReadFile(path)
			kids = append(kids, strings.Fields(string(data))...)
		}
		for _, f := range kids {
			p, _ := strconv.Atoi(f)
			if c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); strings.TrimSpace(string(c)) == comm {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

func (r *relRun) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(r.berthPid(t), sig); err != nil {
		t.Fatal(err)
	}
}

func (r *relRun) wait(t *testing.T) (int, string, string) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("berth under qemu did not exit within 60s\n%s", r.stderr.String())
	}
	return r.code, r.stdout.String(), r.stderr.String()
}

// An OCI image layout read from an archive (oci-archive): index.json and blobs/sha256/.
type relOCI struct {
	index  relIndex
	docker []struct {
		Config           string
		RepoTags, Layers []string
	} // manifest.json, docker load's
	blobs map[string][]byte // "sha256:…" → content
}

type relDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform"`
}

type relIndex struct {
	Manifests []relDescriptor `json:"manifests"`
}

type relManifest struct {
	Config relDescriptor   `json:"config"`
	Layers []relDescriptor `json:"layers"`
}

type relFile struct {
	mode     fs.FileMode
	uid, gid int
	data     []byte
}

func relReadOCI(t *testing.T, path string) *relOCI {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := &relOCI{blobs: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case name == "index.json":
			if err := json.Unmarshal(data, &o.index); err != nil {
				t.Fatalf("%s: index.json: %v", path, err)
			}
		case name == "manifest.json":
			if err := json.Unmarshal(data, &o.docker); err != nil {
				t.Fatalf("%s: manifest.json: %v", path, err)
			}
		case strings.HasPrefix(name, "blobs/sha256/") && h.Typeflag == tar.TypeReg:
			digest := "sha256:" + strings.TrimPrefix(name, "blobs/sha256/")
			if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != digest {
				t.Fatalf("%s: blob %s does not match its digest", path, digest)
			}
			o.blobs[digest] = data
		}
	}
	return o
}

func (o *relOCI) json(t *testing.T, digest string, v any) {
	t.Helper()
	data, ok := o.blobs[digest]
	if !ok {
		t.Fatalf("blob %s is missing", digest)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
}

func (o *relOCI) manifest(t *testing.T, digest string) relManifest {
	t.Helper()
	var m relManifest
	o.json(t, digest, &m)
	return m
}

// layer returns a gzip'd tar layer's entries by path (directories end in /).
func (o *relOCI) layer(t *testing.T, digest string) map[string]relFile {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(o.blobs[digest]))
	if err != nil {
		t.Fatalf("layer %s: %v", digest, err)
	}
	files := map[string]relFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("layer %s: %v", digest, err)
		}
		data, _ := io.ReadAll(tr)
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir && !strings.HasSuffix(name, "/") {
			name += "/"
		}
		files[name] = relFile{mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid, data: data}
	}
}

// TestReleaseDockerfile: make release builds the root Dockerfile's final stage with buildah and stands in for
// its build stage; what that stage does for docker users must stay what release/release.sh does instead. Its
// Go is go.mod's: `make build` runs with GOTOOLCHAIN=local, so an older golang image fails the build ("go.mod
// requires go >= ...") instead of downloading a toolchain, and the example app's Dockerfile uses the same one.
func TestReleaseDockerfile(t *testing.T) {
	root := harness.RepoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM --platform=$BUILDPLATFORM golang:", "ARG TARGETARCH", "GOARCH=$TARGETARCH make build",
		`VERSION="$VERSION" COMMIT="$COMMIT"`, "/rootfs/usr/local/bin/berth", "sh release/rootfs.sh /rootfs",
		"\nFROM scratch\n", "COPY --from=build /rootfs/ /", `ENTRYPOINT ["/usr/local/bin/berth"]`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".tools", "dist", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(mod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	for _, name := range []string{"Dockerfile", "examples/dockerfile/Dockerfile"} {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(data)
		switch {
		case m == nil:
			t.Errorf("%s has no ARG GO_VERSION=", name)
		case string(m[1]) != string(goLine[1]):
			t.Errorf("%s: GO_VERSION=%s, go.mod says go %s (make build exports GOTOOLCHAIN=local)", name, m[1], goLine[1])
		}
		if !strings.Contains(string(data), "golang:${GO_VERSION}") {
			t.Errorf("%s: the build stage is not FROM golang:${GO_VERSION}", name)
		}
	}
}
