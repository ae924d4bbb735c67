package tests

// The examples as an ECS user takes them: every task definition in examples/ecs is valid input of ECS's
// RegisterTaskDefinition (botocore's API model, enums included) and follows the rules ECS applies when it
// runs a task (dependency conditions, volumes, log configuration, shutdown order); every BERTH_* variable it
// sets is a real berth flag; every config passes `berth validate`. Helpers are prefixed "ex".

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/harness"
)

// exValidateECS checks each task definition against RegisterTaskDefinition's input shape: botocore's
// ParamValidator (unknown keys, types, required members, ranges), plus the enums ParamValidator leaves out.
const exValidateECS = `
import json, sys, botocore.session
from botocore.validate import ParamValidator

shape = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape

def enums(value, shape, where, out):
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                enums(v, shape.members[k], where + "." + k, out)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            enums(v, shape.member, "%s[%d]" % (where, i), out)
    elif shape.type_name == "map" and isinstance(value, dict):
        for k, v in value.items():
            enums(v, shape.value, where + "." + k, out)
    elif shape.type_name == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        out.append("%s: %r is not one of %s" % (where, value, ", ".join(shape.enum)))

failed = False
for path in sys.argv[1:]:
    params = json.load(open(path))
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    enums(params, shape, "", problems)
    for p in problems:
        print("%s: %s" % (path, p))
        failed = True
sys.exit(1 if failed else 0)
`

type exTaskDef struct {
	NetworkMode             string   `json:"networkMode"`
	RequiresCompatibilities []string `json:"requiresCompatibilities"`
	Volumes                 []struct {
		Name string `json:"name"`
	} `json:"volumes"`
	ContainerDefinitions []exContainer `json:"containerDefinitions"`
}

type exContainer struct {
	Name         string   `json:"name"`
	Image        string   `json:"image"`
	Essential    *bool    `json:"essential"`
	EntryPoint   []string `json:"entryPoint"`
	Command      []string `json:"command"`
	PortMappings []exPort `json:"portMappings"`
	Environment  []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment"`
	MountPoints []struct {
		SourceVolume  string `json:"sourceVolume"`
		ContainerPath string `json:"containerPath"`
		ReadOnly      bool   `json:"readOnly"`
	} `json:"mountPoints"`
	DependsOn   []exDep `json:"dependsOn"`
	HealthCheck *struct {
		Command []string `json:"command"`
	} `json:"healthCheck"`
	LogConfiguration *struct {
		LogDriver string `json:"logDriver"`
	} `json:"logConfiguration"`
}

type exPort struct {
	ContainerPort int `json:"containerPort"`
	HostPort      int `json:"hostPort"`
}

type exDep struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

func (c exContainer) essential() bool { return c.Essential == nil || *c.Essential } // ECS's default: true

// berthArgs returns berth's arguments when the container runs berth: the release image's ENTRYPOINT is
// berth itself (command: ["run", …]); an application image names it in entryPoint.
func (c exContainer) berthArgs() ([]string, bool) {
	if len(c.EntryPoint) > 0 {
		if c.EntryPoint[0] == "/usr/local/bin/berth" {
			return append(c.EntryPoint[1:], c.Command...), true
		}
		return nil, false
	}
	if len(c.Command) > 0 && slices.Contains([]string{"run", "validate", "version", "health", "ctl", "secrets"}, c.Command[0]) {
		return c.Command, true
	}
	return nil, false
}

// writableMount returns the volume of c mounted read-write at a directory holding file.
func (c exContainer) writableMount(file string) (string, bool) {
	for _, m := range c.MountPoints {
		if !m.ReadOnly && strings.HasPrefix(file, strings.TrimSuffix(m.ContainerPath, "/")+"/") {
			return m.SourceVolume, true
		}
	}
	return "", false
}

func TestExamplesECS(t *testing.T) {
	root := harness.RepoRoot(t)
	defs, _ := filepath.Glob(filepath.Join(root, "examples/ecs/task-definition*.json"))
	if len(defs) < 2 {
		t.Fatalf("examples/ecs has %d task definitions, want the entrypoint and the sidecar one", len(defs))
	}

	t.Run("ECS API model", func(t *testing.T) {
		py := exec.Command("python3", append([]string{"-c", exValidateECS}, defs...)...)
		if out, err := py.CombinedOutput(); err != nil {
			t.Fatalf("RegisterTaskDefinition input (botocore): %v\n%s", err, out)
		}
	})

	flags := exBerthFlags(t)
	sidecarImage := exSidecarImageConfigs(t, root)
	for _, def := range defs {
		t.Run(filepath.Base(def), func(t *testing.T) {
			data, err := os.ReadFile(def)
			if err != nil {
				t.Fatal(err)
			}
			var td exTaskDef
			if err := json.Unmarshal(data, &td); err != nil {
				t.Fatal(err)
			}
			exCheckTask(t, td, flags, sidecarImage, root)
		})
	}
}

func exCheckTask(t *testing.T, td exTaskDef, flags map[string]bool, sidecarImage map[string]string, root string) {
	byName := map[string]exContainer{}
	for _, c := range td.ContainerDefinitions {
		byName[c.Name] = c
	}
	volumes := map[string]bool{}
	for _, v := range td.Volumes {
		volumes[v.Name] = true
	}
	fargate := slices.Contains(td.RequiresCompatibilities, "FARGATE")
	if fargate && td.NetworkMode != "awsvpc" {
		t.Errorf("Fargate needs networkMode awsvpc, have %q", td.NetworkMode)
	}
	// mountedBy[volume] lists the containers that mount it
	mountedBy := map[string][]string{}
	for _, c := range td.ContainerDefinitions {
		for _, m := range c.MountPoints {
			mountedBy[m.SourceVolume] = append(mountedBy[m.SourceVolume], c.Name)
		}
	}

	for _, c := range td.ContainerDefinitions {
		if c.LogConfiguration == nil || c.LogConfiguration.LogDriver == "" {
			t.Errorf("%s: no logConfiguration: its output (and berth's exit reason) would be lost", c.Name)
		}
		for _, m := range c.MountPoints {
			if !volumes[m.SourceVolume] {
				t.Errorf("%s: mounts volume %q, which the task does not declare", c.Name, m.SourceVolume)
			}
		}
		for _, p := range c.PortMappings {
			if td.NetworkMode == "awsvpc" || td.NetworkMode == "host" {
				if p.HostPort != 0 && p.HostPort != p.ContainerPort {
					t.Errorf("%s: hostPort %d must equal containerPort %d in %s mode", c.Name, p.HostPort, p.ContainerPort, td.NetworkMode)
				}
			}
		}
		for _, d := range c.DependsOn {
			dep, ok := byName[d.ContainerName]
			switch {
			case !ok:
				t.Errorf("%s: dependsOn %q, which is not a container of the task", c.Name, d.ContainerName)
			case (d.Condition == "SUCCESS" || d.Condition == "COMPLETE") && dep.essential():
				t.Errorf("%s: dependsOn %s %s, but ECS requires that container to be non-essential", c.Name, d.ContainerName, d.Condition)
			case d.Condition == "HEALTHY" && dep.HealthCheck == nil:
				t.Errorf("%s: dependsOn %s HEALTHY, which has no healthCheck", c.Name, d.ContainerName)
			}
			if _, isBerth := dep.berthArgs(); isBerth && d.Condition == "COMPLETE" {
				t.Errorf("%s: dependsOn %s COMPLETE starts the app after berth failed (69, 77, 73): fail closed with SUCCESS", c.Name, d.ContainerName)
			}
			for _, back := range dep.DependsOn {
				if back.ContainerName == c.Name {
					t.Errorf("%s and %s depend on each other", c.Name, dep.Name)
				}
			}
		}
		if hc := c.HealthCheck; hc != nil && len(hc.Command) > 1 && strings.Contains(strings.Join(hc.Command, " "), "berth") {
			if hc.Command[0] != "CMD" || hc.Command[1] != "/usr/local/bin/berth" || !slices.Contains(hc.Command, "health") {
				t.Errorf("%s: healthCheck %q, want [\"CMD\", \"/usr/local/bin/berth\", \"health\"] (where the image has berth)", c.Name, hc.Command)
			}
		}

		for _, e := range c.Environment {
			if strings.HasPrefix(e.Name, "BERTH_") && !flags[e.Name] {
				t.Errorf("%s: %s is not a berth flag (berth run -h)", c.Name, e.Name)
			}
		}

		args, isBerth := c.berthArgs()
		if !isBerth {
			continue
		}
		if len(c.EntryPoint) == 0 {
			// the release image's ENTRYPOINT ["/usr/local/bin/berth"] takes the command as berth's arguments
			if args[0] != "run" {
				t.Errorf("%s: berth command %q", c.Name, args)
			}
		} else if !slices.Equal(c.EntryPoint, []string{"/usr/local/bin/berth", "--"}) {
			t.Errorf("%s: entryPoint %q, want [\"/usr/local/bin/berth\", \"--\"] for an application image", c.Name, c.EntryPoint)
		}
		cfg := ""
		if i := slices.Index(args, "-config"); i >= 0 && i+1 < len(args) {
			cfg = args[i+1]
		}
		if cfg == "" {
			continue
		}
		if repo := path.Base(strings.SplitN(c.Image, ":", 2)[0]); repo == "berth" && strings.HasPrefix(cfg, "/etc/berth/") {
			t.Errorf("%s: image %s is the bare release image, which holds no %s: use the image of examples/sidecar/Dockerfile", c.Name, c.Image, cfg)
		}
		local, ok := sidecarImage[cfg]
		if !ok {
			t.Errorf("%s: -config %s is not in the sidecar image (examples/sidecar/Dockerfile copies %v)", c.Name, cfg, sidecarImage)
			continue
		}
		hcl, err := os.ReadFile(filepath.Join(root, local))
		if err != nil {
			t.Fatal(err)
		}
		// every file berth writes (secret files, peers files) is on a volume the app mounts too
		for _, m := range regexp.MustCompile(`(?m)^\s*file\s*=\s*"([^"]+)"`).FindAllStringSubmatch(string(hcl), -1) {
			vol, ok := c.writableMount(m[1])
			if !ok {
				t.Errorf("%s: %s writes %s, which is on no volume mounted read-write in this container", c.Name, cfg, m[1])
				continue
			}
			if others := slices.DeleteFunc(slices.Clone(mountedBy[vol]), func(n string) bool { return n == c.Name }); len(others) == 0 {
				t.Errorf("%s: %s writes %s on volume %q, which no other container mounts", c.Name, cfg, m[1], vol)
			}
		}
		// A berth that registers a service stops before the app it registers: ECS stops containers in
		// reverse dependency order, so it must depend on every container serving that port.
		for _, m := range regexp.MustCompile(`(?s)service\s+"[^"]+"\s*\{.*?\bport\s*=\s*(\d+)`).FindAllStringSubmatch(string(hcl), -1) {
			port, _ := strconv.Atoi(m[1])
			for _, other := range td.ContainerDefinitions {
				serves := slices.ContainsFunc(other.PortMappings, func(p exPort) bool { return p.ContainerPort == port })
				if serves && !slices.ContainsFunc(c.DependsOn, func(d exDep) bool { return d.ContainerName == other.Name }) {
					t.Errorf("%s registers port %d, served by %s, without dependsOn %s: at task stop ECS would not wait for the deregistration before it stops %s",
						c.Name, port, other.Name, other.Name, other.Name)
				}
			}
		}
	}
}

// exBerthFlags returns the BERTH_* names of berth's run flags, read from `berth run -h`.
func exBerthFlags(t *testing.T) map[string]bool {
	t.Helper()
	_, stdout, stderr := berthCmd(t, nil, "run", "-h")
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(stdout+stderr, -1) {
		flags["BERTH_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
	}
	for _, want := range []string{"BERTH_CONFIG", "BERTH_SERVICE", "BERTH_STOP_TIMEOUT"} {
		if !flags[want] {
			t.Fatalf("berth run -h does not list %s; it printed:\n%s%s", want, stdout, stderr)
		}
	}
	return flags
}

// exSidecarImageConfigs maps the paths examples/sidecar/Dockerfile puts configs at (/etc/berth/NAME) to the
// repository files.
func exSidecarImageConfigs(t *testing.T, root string) map[string]string {
	t.Helper()
	df, err := os.ReadFile(filepath.Join(root, "examples/sidecar/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]string{}
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--") {
			continue
		}
		dest := f[len(f)-1]
		for _, src := range f[1 : len(f)-1] {
			target := dest
			if strings.HasSuffix(dest, "/") {
				target = path.Join(dest, path.Base(src))
			}
			configs[target] = filepath.Join("examples/sidecar", src)
		}
	}
	if len(configs) == 0 {
		t.Fatal("examples/sidecar/Dockerfile copies no config")
	}
	return configs
}

// Every config of the examples passes `berth validate`.
func TestExamplesValidate(t *testing.T) {
	root := harness.RepoRoot(t)
	configs, _ := filepath.Glob(filepath.Join(root, "examples/*/*.hcl"))
	if len(configs) == 0 {
		t.Fatal("no example configs found")
	}
	for _, cfg := range configs {
		if code, stdout, stderr := berthCmd(t, nil, "validate", "-config", cfg); code != 0 {
			t.Errorf("berth validate -config %s: exit %d\n%s%s", cfg, code, stdout, stderr)
		}
	}
}

// The task role policy of examples/ecs grants what berth calls and nothing unrelated (README, IAM).
func TestExamplesIAMPolicy(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "examples/ecs/task-role-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   json.RawMessage
			Resource json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &policy); err != nil || policy.Version != "2012-10-17" || len(policy.Statement) == 0 {
		t.Fatalf("not an IAM policy document: %v", err)
	}
	known := []string{"secretsmanager:GetSecretValue", "ssm:GetParameters", "ssm:GetParametersByPath", "kms:Decrypt",
		"s3:GetObject", "ec2:DescribeInstances"} // the last: the Consul agent's -retry-join provider=aws
	have := map[string]bool{}
	for _, s := range policy.Statement {
		var actions []string
		if json.Unmarshal(s.Action, &actions) != nil {
			var one string
			if err := json.Unmarshal(s.Action, &one); err != nil {
				t.Fatalf("Action %s", s.Action)
			}
			actions = []string{one}
		}
		for _, a := range actions {
			if !slices.Contains(known, a) {
				t.Errorf("the policy grants %s, which berth does not call", a)
			}
			have[a] = true
		}
		if s.Effect != "Allow" || len(s.Resource) == 0 {
			t.Errorf("statement %s: Effect %q, Resource %s", s.Action, s.Effect, s.Resource)
		}
	}
	for _, a := range known {
		if !have[a] {
			t.Errorf("the policy lacks %s", a)
		}
	}
}

// The ECS sidecar pattern of examples/ecs/task-definition-sidecar.json in podman containers, from images built
// the way its comments say: the release image (make release), examples/sidecar/Dockerfile FROM it, and the
// application image of examples/dockerfile/Dockerfile. The containers of the task share one network
// namespace, as under awsvpc (--network container:…), with a Consul agent container in it, as consul-agent.
//
//   - secrets (sidecar.hcl): a failed fetch exits 69 and writes nothing, so dependsOn SUCCESS keeps the app
//     down; once the parameter exists it exits 0 with the file on the shared volume;
//   - app reads the file; berth (resident.hcl) registers it with a passing check (its healthCheck `berth
//     health` exits 0) and writes the peers file on the shared volume the app mounts;
//   - stop in ECS's order (berth dependsOn app, so berth first): berth deregisters and exits 0 while the app
//     runs untouched; then the app gets SIGTERM.
func TestExamplesSidecarPodman(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (%v): run `make deps`", err)
	}
	root := harness.RepoRoot(t)
	pid := os.Getpid()
	version := fmt.Sprintf("v0.0.0-e2e.%d.sidecar", pid)
	dist := t.TempDir()
	mk := exec.Command("make", "--no-print-directory", "release", "VERSION="+version, "DIST="+dist)
	mk.Dir = root
	mk.Env = append(os.Environ(), "ARCHES=amd64") // this machine's arch is all that runs here
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	release := "localhost/berth:" + version
	if out, code := podman(t, "load", "-i", filepath.Join(dist, "berth_"+version+"_image_linux_amd64.oci.tar")); code != 0 {
		t.Fatalf("podman load: %s", out)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", release) })

	sidecarImg := fmt.Sprintf("localhost/berth-e2e-sidecar-%d", pid)
	if out, code := podman(t, "build", "--isolation", "chroot", "--build-arg", "BERTH_IMAGE="+release, "-t", sidecarImg,
		filepath.Join(root, "examples/sidecar")); code != 0 {
		t.Fatalf("build examples/sidecar/Dockerfile: %s", out)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", sidecarImg) })
	// examples/dockerfile/Dockerfile, its golang build stage stood in for by the locally built app (no registry)
	appCtx := t.TempDir()
	if err := os.MkdirAll(filepath.Join(appCtx, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(harness.TestApp(t)); err != nil || os.WriteFile(filepath.Join(appCtx, "out/app"), data, 0o755) != nil {
		t.Fatalf("copy testapp: %v", err)
	}
	appImg := fmt.Sprintf("localhost/berth-e2e-app-%d", pid)
	if out, code := podman(t, "build", "--isolation", "chroot", "--build-arg", "BERTH_IMAGE="+release, "--build-context", "build="+appCtx,
		"-t", appImg, "-f", filepath.Join(root, "examples/dockerfile/Dockerfile"), t.TempDir()); code != 0 {
		t.Fatalf("build examples/dockerfile/Dockerfile: %s", out)
	}
	t.Cleanup(func() { podman(t, "rmi", "-f", appImg) })

	secretsVol, sharedVol := fmt.Sprintf("berth-e2e-secrets-%d", pid), fmt.Sprintf("berth-e2e-shared-%d", pid)
	for _, v := range []string{secretsVol, sharedVol} {
		if out, code := podman(t, "volume", "create", v); code != 0 {
			t.Fatalf("podman volume create: %s", out)
		}
		t.Cleanup(func() { podman(t, "volume", "rm", "-f", v) })
	}
	onVolume := func(vol, name string) string {
		mp, _ := podman(t, "volume", "inspect", "--format", "{{.Mountpoint}}", vol)
		return filepath.Join(strings.TrimSpace(mp), name)
	}

	// secrets: on the host network to reach moto (in the task it shares the task's network namespace)
	moto := harness.StartMoto(t)
	secretsRun := append([]string{"run", "--rm", "--network", "host", "-v", secretsVol + ":/run/secrets"}, ulimits...)
	for _, kv := range moto.Env() {
		secretsRun = append(secretsRun, "-e", kv)
	}
	secretsRun = append(secretsRun, sidecarImg, "run", "-config", "/etc/berth/sidecar.hcl")
	if out, code := podman(t, secretsRun...); code != 69 {
		t.Fatalf("secrets with the parameter missing: want exit 69 (dependsOn SUCCESS not met), have %d:\n%s", code, out)
	}
	if _, err := os.Stat(onVolume(secretsVol, "app.conf")); err == nil {
		t.Fatal("the failed fetch left app.conf on the shared volume")
	}
	const config = "listen=8080 token=sidecar-delivered-Ux3r"
	harness.AWSClients(t, moto.URL).Param(t, "/example/app/config", config, true)
	out, code := podman(t, secretsRun...)
	if code != 0 || strings.Contains(out, "sidecar-delivered") {
		t.Fatalf("secrets: want exit 0 and no value in its output, have %d:\n%s", code, strings.ReplaceAll(out, config, "<value>"))
	}
	if fi, err := os.Stat(onVolume(secretsVol, "app.conf")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("app.conf on the volume: %v %v, want mode 0444", err, fi)
	}

	// the task's network namespace: the consul-agent container's, joined by app and berth
	name := func(s string) string { return fmt.Sprintf("berth-e2e-%s-%d", s, pid) }
	consul, app, berth := name("consul"), name("app"), name("berth")
	for _, c := range []string{berth, app, consul} {
		t.Cleanup(func() { podman(t, "rm", "-f", "-t", "0", c) })
	}
	runD := func(args ...string) {
		t.Helper()
		if out, code := podman(t, append(append([]string{"run", "-d"}, ulimits...), args...)...); code != 0 {
			t.Fatalf("podman run %v: %s", args, out)
		}
	}
	runD("--name", consul, "--network", "none", "-v", harness.Tool(t, "consul")+":/consul:ro", "--entrypoint", "/consul", release,
		"agent", "-dev", "-client", "127.0.0.1", "-bind", "127.0.0.1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1", "-log-level", "warn")
	services := func() []string {
		out, code := podman(t, "exec", consul, "/consul", "catalog", "services")
		if code != 0 {
			return nil
		}
		return strings.Fields(out)
	}
	harness.Eventually(t, 60*time.Second, "consul agent answers", func() bool { return slices.Contains(services(), "consul") })

	runD("--name", app, "--network", "container:"+consul, "-v", secretsVol+":/run/secrets:ro", "-v", sharedVol+":/run/shared:ro",
		appImg, "/usr/local/bin/app", "-http", "127.0.0.1:8080", "-cat", "/run/secrets/app.conf", "-say", "started", "-exit-on", "TERM:0")
	harness.Eventually(t, 30*time.Second, "app started with its config", func() bool {
		logs, _ := podman(t, "logs", app)
		return strings.Contains(logs, "started") && strings.Contains(logs, config)
	})

	runD("--name", berth, "--network", "container:"+consul, "-v", sharedVol+":/run/shared", "-e", "CONSUL_HTTP_ADDR=127.0.0.1:8500",
		sidecarImg, "run", "-config", "/etc/berth/resident.hcl")
	waitBerthHealth(t, berth, "berth health (the container's healthCheck)")
	harness.Eventually(t, 30*time.Second, "app registered in Consul", func() bool { return slices.Contains(services(), "app") })

	// another task of the service: its address reaches the peers file the app mounts
	if out, code := podman(t, "exec", consul, "/consul", "services", "register", "-name", "app", "-id", "other-task", "-address", "10.0.0.9", "-port", "8080"); code != 0 {
		t.Fatalf("register another task: %s", out)
	}
	harness.WaitFile(t, onVolume(sharedVol, "peers"), "10.0.0.9:8080", 30*time.Second)
	if out, code := podman(t, "exec", consul, "/consul", "services", "deregister", "-id", "other-task"); code != 0 {
		t.Fatalf("deregister the other task: %s", out)
	}

	// ECS's stop order: berth first (it depends on app)
	if out, code := podman(t, "stop", "-t", "10", berth); code != 0 {
		t.Fatalf("podman stop berth: %s", out)
	}
	if have, _ := podman(t, "inspect", berth, "--format", "{{.State.ExitCode}}"); strings.TrimSpace(have) != "0" {
		logs, _ := podman(t, "logs", berth)
		t.Fatalf("berth after SIGTERM: exit %q, want 0\n%s", have, logs)
	}
	if slices.Contains(services(), "app") {
		t.Fatal("berth exited but app is still registered in Consul")
	}
	if running, _ := podman(t, "inspect", app, "--format", "{{.State.Running}}"); strings.TrimSpace(running) != "true" {
		t.Fatal("the app stopped with the sidecar")
	}
	if out, code := podman(t, "stop", "-t", "10", app); code != 0 {
		t.Fatalf("podman stop app: %s", out)
	}
	if have, _ := podman(t, "inspect", app, "--format", "{{.State.ExitCode}}"); strings.TrimSpace(have) != "0" {
		t.Fatalf("app after its SIGTERM: exit %q, want 0 (-exit-on TERM:0)", have)
	}
}
