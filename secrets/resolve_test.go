package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/onchange"

	"github.com/berth-dev/berth/tests/harness"
)

func mustNew(t testing.TB, cfg Config, log hclog.Logger) *Resolver {
	t.Helper()
	r, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestResolveReferences(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()

	dbARN, v1 := a.secret(t, "prod/db", `{"username":"app","password":"pw-version-1","port":5432}`)
	v2 := a.putSecret(t, "prod/db", `{"username":"app","password":"pw-staged-2"}`, "STAGED")
	v3 := a.putSecret(t, "prod/db", `{"username":"app","password":"pw-current-3"}`)
	if _, err := a.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: []byte("binary\x01secret")}); err != nil {
		t.Fatal(err)
	}
	a.param(t, "/prod/app/key", "param-old-value", true)
	a.param(t, "/prod/app/key", "param-new-value", true)
	a.param(t, "plainparam", "plain-param-value", false)
	keyID := a.key(t)
	enc, err := a.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("kms-plaintext-value")})
	if err != nil {
		t.Fatal(err)
	}
	kmsRef := "kms:" + base64.StdEncoding.EncodeToString(enc.CiphertextBlob)

	in := map[string]string{
		"SM_WHOLE":     "secretsmanager:bin",
		"SM_KEY":       "secretsmanager:prod/db:password",
		"SM_NUMBER":    "secretsmanager:prod/db:port:AWSPREVIOUS",
		"SM_STAGE":     "secretsmanager:prod/db:password:STAGED",
		"SM_PREVIOUS":  "secretsmanager:prod/db:password:AWSPREVIOUS",
		"SM_VERSIONID": "secretsmanager:prod/db:password::" + v1,
		"SM_ARN":       dbARN + ":password::",
		"SM_ARN_V2":    dbARN + ":password::" + v2,
		"SM_SHORT_ARN": "secretsmanager:" + dbARN + ":username",
		"SSM_PATH":     "ssm:/prod/app/key",
		"SSM_VERSION":  "ssm:/prod/app/key:1",
		"SSM_PLAIN":    "ssm:plainparam",
		"SSM_ARN":      "arn:aws:ssm:us-east-1:123456789012:parameter/prod/app/key",
		"SSM_ARN_ONE":  "arn:aws:ssm:us-east-1:123456789012:parameter/plainparam",
		"KMS":          kmsRef,
		"URL":          "postgres://app:" + Marker("secretsmanager:prod/db:password") + "@db/" + Marker("ssm:plainparam") + "?x=y",
		"SKIPPED":      "ssm:/prod/app/key",
		"OTHER_ARN":    "arn:aws:iam::123456789012:role/app",
		"QUOTED":       `a="b" 'c' = $HOME`,
	}
	want := map[string]string{
		"SM_WHOLE":     "binary\x01secret",
		"SM_KEY":       "pw-current-3",
		"SM_NUMBER":    "5432",
		"SM_STAGE":     "pw-staged-2",
		"SM_PREVIOUS":  "pw-version-1",
		"SM_VERSIONID": "pw-version-1",
		"SM_ARN":       "pw-current-3",
		"SM_ARN_V2":    "pw-staged-2",
		"SM_SHORT_ARN": "app",
		"SSM_PATH":     "param-new-value",
		"SSM_VERSION":  "param-old-value",
		"SSM_PLAIN":    "plain-param-value",
		"SSM_ARN":      "param-new-value",
		"SSM_ARN_ONE":  "plain-param-value",
		"KMS":          "kms-plaintext-value",
		"URL":          "postgres://app:pw-current-3@db/plain-param-value?x=y",
		"SKIPPED":      "ssm:/prod/app/key",
		"OTHER_ARN":    "arn:aws:iam::123456789012:role/app",
		"QUOTED":       `a="b" 'c' = $HOME`,
	}
	var env []string
	for _, k := range sortedKeys(in) {
		env = append(env, k+"="+in[k])
	}
	r := mustNew(t, Config{SkipEnv: []string{"SKIPPED"}}, nil)
	res, err := r.Resolve(ctx, Env{Shared: env})
	if err != nil {
		t.Fatal(err)
	}
	have := envMap(res.Env.Shared)
	for k, w := range want {
		if have[k] != w {
			t.Errorf("%s: want %q, have %q", k, w, have[k])
		}
	}
	if len(res.Env.Shared) != len(env) {
		t.Errorf("want %d variables, have %d", len(env), len(res.Env.Shared))
	}
	for _, v := range []string{"pw-current-3", "pw-staged-2", "pw-version-1", "param-old-value", "kms-plaintext-value", "plain-param-value", "binary\x01secret"} {
		if !slices.Contains(res.Values, v) {
			t.Errorf("want %q among Result.Values", v)
		}
	}
	versions := map[string]string{}
	for _, s := range res.Refs {
		versions[s.Var] = s.Version
	}
	for k, w := range map[string]string{"SM_KEY": v3, "SM_STAGE": v2, "SM_VERSIONID": v1, "SSM_VERSION": "1", "SSM_PATH": "2"} {
		if versions[k] != w {
			t.Errorf("status of %s: want version %q, have %q", k, w, versions[k])
		}
	}
	st, _ := json.Marshal(r.Status())
	for _, v := range res.Values {
		if len(v) >= 8 && bytes.Contains(st, []byte(v)) { // short ones ("app") occur in reference names
			t.Errorf("status holds the value %q", v)
		}
	}
}

func TestResolveBlocks(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	dir := t.TempDir()

	// 25 parameters under /svc (more than one GetParameters batch or GetParametersByPath page), nested paths.
	wantPrefix := map[string]string{}
	for i := range 22 {
		name := fmt.Sprintf("/svc/app/p%02d", i)
		a.param(t, name, fmt.Sprintf("path-value-%02d", i), i%2 == 0)
		wantPrefix[fmt.Sprintf("APP_P%02d", i)] = fmt.Sprintf("path-value-%02d", i)
	}
	a.param(t, "/svc/app/db/password", "nested-db-pw", true)
	a.param(t, "/svc/app/db/deeper/api-key", "nested-api-key", true)
	a.param(t, "/svc/other/x", "not-under-path", false)
	wantPrefix["APP_DB_PASSWORD"] = "nested-db-pw"
	wantPrefix["APP_DB_DEEPER_API_KEY"] = "nested-api-key"

	a.secret(t, "prod/db", `{"username":"dbuser","password":"db-pass-123","api-key":"k-456789"}`)
	a.param(t, "/single/param", "single-param-value", true)

	// S3 dotenv with SSE-KMS.
	keyID := a.key(t)
	if _, err := a.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("cfg")}); err != nil {
		t.Fatal(err)
	}
	dotenv := "# config\nexport S3_USER=s3user\nS3_PASS=\"s3-pass # not a comment\"\nS3_MULTI='line1\nline2'\n"
	if _, err := a.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("cfg"), Key: aws.String("prod/app.env"), Body: strings.NewReader(dotenv),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: &keyID,
	}); err != nil {
		t.Fatal(err)
	}

	blocks := []Block{
		{Name: "path", SSMPath: "/svc/app", EnvPrefix: "APP_", EnvMap: map[string]string{"DBPW": "db/password", "FULL": "/svc/app/p03"},
			File: filepath.Join(dir, "nested", "params.json"), UID: -1, GID: -1},
		{Name: "db", SecretsManager: "prod/db", EnvMap: map[string]string{"DB_USER": "username", "DB_PASSWORD": "password"}, UID: -1, GID: -1},
		{Name: "dbprefix", SecretsManager: "prod/db", EnvPrefix: "DBX_", UID: -1, GID: -1},
		{Name: "single", SSM: "/single/param", Env: "SINGLE", File: filepath.Join(dir, "single"), Mode: 0o440, UID: os.Getuid(), GID: os.Getgid()},
		{Name: "s3", S3: "s3://cfg/prod/app.env", Format: FormatDotenv, EnvPrefix: "CFG_", EnvMap: map[string]string{"PASS": "S3_PASS"}, File: filepath.Join(dir, "app.env"), UID: -1, GID: -1},
	}
	r := mustNew(t, Config{Blocks: blocks}, nil)
	res, err := r.Resolve(ctx, Env{Shared: []string{"DB_USER=overridden", "KEEP=1"}})
	if err != nil {
		t.Fatal(err)
	}
	have := envMap(res.Env.Shared)
	want := map[string]string{
		"KEEP": "1", "DB_USER": "dbuser", "DB_PASSWORD": "db-pass-123", "DBPW": "nested-db-pw", "FULL": "path-value-03",
		"DBX_USERNAME": "dbuser", "DBX_PASSWORD": "db-pass-123", "DBX_API_KEY": "k-456789", "SINGLE": "single-param-value",
		"CFG_S3_USER": "s3user", "CFG_S3_PASS": "s3-pass # not a comment", "CFG_S3_MULTI": "line1\nline2", "PASS": "s3-pass # not a comment",
	}
	for k, v := range wantPrefix {
		want[k] = v
	}
	for k, w := range want {
		if have[k] != w {
			t.Errorf("%s: want %q, have %q", k, w, have[k])
		}
	}
	if len(have) != len(want) {
		t.Errorf("want %d variables, have %d: %v", len(want), len(have), sortedKeys(have))
	}
	if n := strings.Count(strings.Join(res.Env.Shared, "\n"), "DB_USER="); n != 1 {
		t.Errorf("want DB_USER once, have %d", n)
	}

	var params map[string]string
	b, err := os.ReadFile(filepath.Join(dir, "nested", "params.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &params); err != nil || len(params) != 24 || params["db/deeper/api-key"] != "nested-api-key" {
		t.Errorf("params.json: want 24 relative names, have %d (%v)", len(params), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "app.env")); err != nil || string(b) != dotenv {
		t.Errorf("app.env: want the object's bytes, have %q, %v", b, err)
	}
	for name, mode := range map[string]os.FileMode{"single": 0o440, "app.env": 0o400, "nested/params.json": 0o400} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: want mode %o, have %v, %v", name, mode, fi.Mode(), err)
		}
	}
	if len(res.Files) != 3 {
		t.Errorf("want 3 files, have %v", res.Files)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, ".*berth-*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
	for _, v := range []string{"nested-api-key", "k-456789", "s3user", "line1\nline2", "single-param-value"} {
		if !slices.Contains(res.Values, v) {
			t.Errorf("want %q among Result.Values", v)
		}
	}

	t.Run("missing key writes nothing", func(t *testing.T) {
		out := filepath.Join(dir, "never")
		r := mustNew(t, Config{Blocks: []Block{
			{Name: "f", SSM: "/single/param", File: out, UID: -1, GID: -1},
			{Name: "bad", SecretsManager: "prod/db", EnvMap: map[string]string{"X": "nope"}, UID: -1, GID: -1},
		}}, nil)
		_, err := r.Resolve(ctx, Env{})
		t.Logf("message: %v", err)
		if exitCode(err) != ExitUnavailable || !strings.Contains(err.Error(), `secret "bad"`) || !strings.Contains(err.Error(), `"nope"`) {
			t.Fatalf("want 69 naming the block and key, have %v", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("want no file written on failure, have %v", err)
		}
	})

	// The source answered; this host cannot hold the file: 73 (EX_CANTCREAT), never 69, and nothing written.
	t.Run("local write failure is 73", func(t *testing.T) {
		notDir := filepath.Join(dir, "plain-file")
		if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		isDir := filepath.Join(dir, "a-directory")
		if err := os.MkdirAll(filepath.Join(isDir, "inside"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{filepath.Join(notDir, "sub", "token"), isDir} {
			other := filepath.Join(dir, "other-"+filepath.Base(target))
			r := mustNew(t, Config{Blocks: []Block{
				{Name: "ok", SSM: "/single/param", File: other, UID: -1, GID: -1},
				{Name: "f", SSM: "/single/param", File: target, UID: -1, GID: -1},
			}}, nil)
			_, err := r.Resolve(ctx, Env{})
			t.Logf("message: %v", err)
			if exitCode(err) != ExitCantCreate || !strings.Contains(err.Error(), `secret "f"`) || strings.Contains(err.Error(), "single-param-value") {
				t.Fatalf("%s: want 73 naming the block, have %d: %v", target, exitCode(err), err)
			}
			if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the other block's file was committed: %v", err)
			}
		}
	})
}

func TestKMSFileAndCLI(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	dir := t.TempDir()
	keyID := a.key(t)

	plain := make([]byte, 20<<10)
	if _, err := rand.Read(plain); err != nil {
		t.Fatal(err)
	}
	in, enc := filepath.Join(dir, "config.json"), filepath.Join(dir, "config.json.enc")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := RunCLI(ctx, []string{"encrypt", "-key", keyID, "-context", "app=web", "-context", "env=prod", "-in", in, "-out", enc}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("encrypt: exit %d: %s", code, stderr.String())
	}
	envelope, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEnvelope(envelope) || bytes.Contains(envelope, plain[:64]) {
		t.Fatal("want an envelope without the plaintext")
	}

	for _, tc := range []struct {
		name     string
		ctx      map[string]string
		wantCode int
	}{
		{name: "recorded context", ctx: nil},
		{name: "explicit context", ctx: map[string]string{"app": "web", "env": "prod"}},
		{name: "wrong context", ctx: map[string]string{"app": "web", "env": "dev"}, wantCode: ExitAccessDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name, "config.json")
			r := mustNew(t, Config{Timeout: 10 * time.Second, Blocks: []Block{{Name: "cfg", KMSFile: enc, EncryptionContext: tc.ctx, File: out, UID: -1, GID: -1}}}, nil)
			res, err := r.Resolve(ctx, Env{})
			if tc.wantCode != 0 {
				t.Logf("message: %v", err)
				if exitCode(err) != tc.wantCode || !strings.Contains(err.Error(), `secret "cfg"`) || !strings.Contains(err.Error(), "encryption context") {
					t.Fatalf("want exit %d with a clear message, have %d: %v", tc.wantCode, exitCode(err), err)
				}
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("want no file, have %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			have, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(have, plain) {
				t.Fatalf("want the 20 KiB plaintext byte for byte, have %d bytes, %v", len(have), err)
			}
			fi, _ := os.Stat(out)
			if fi.Mode().Perm() != 0o400 {
				t.Errorf("want mode 0400, have %v", fi.Mode())
			}
			if len(res.Refs) != 1 || !strings.HasPrefix(res.Refs[0].Version, "sha256:") {
				t.Errorf("want a ciphertext digest as version, have %+v", res.Refs)
			}
		})
	}

	t.Run("cli decrypt", func(t *testing.T) {
		stdout.Reset()
		stderr.Reset()
		if code := RunCLI(ctx, []string{"decrypt", "-in", enc}, nil, &stdout, &stderr); code != 0 || !bytes.Equal(stdout.Bytes(), plain) {
			t.Fatalf("decrypt: exit %d, %d bytes: %s", code, stdout.Len(), stderr.String())
		}
		stderr.Reset()
		code := RunCLI(ctx, []string{"decrypt", "-context", "app=other", "-in", enc}, nil, &stdout, &stderr)
		if code != ExitAccessDenied || !strings.HasPrefix(stderr.String(), "berth: secrets decrypt: ") || strings.Count(stderr.String(), "\n") != 1 ||
			strings.Contains(stderr.String(), "decrypt: secrets") {
			t.Fatalf("decrypt with a wrong context: want 77 and one line, have %d: %q", code, stderr.String())
		}
	})

	t.Run("cli -ref and raw blob", func(t *testing.T) {
		stdout.Reset()
		stderr.Reset()
		if code := RunCLI(ctx, []string{"encrypt", "-key", keyID, "-ref"}, strings.NewReader("small-secret-value"), &stdout, &stderr); code != 0 {
			t.Fatalf("encrypt -ref: exit %d: %s", code, stderr.String())
		}
		ref := strings.TrimSpace(stdout.String())
		r := mustNew(t, Config{}, nil)
		res, err := r.Resolve(ctx, Env{Shared: []string{"TOKEN=" + ref}})
		if err != nil || envMap(res.Env.Shared)["TOKEN"] != "small-secret-value" {
			t.Fatalf("want the kms: reference to resolve, have %v", err)
		}
		var out bytes.Buffer
		if code := RunCLI(ctx, []string{"decrypt"}, strings.NewReader(ref+"\n"), &out, &stderr); code != 0 || out.String() != "small-secret-value" {
			t.Fatalf("decrypt of a kms: reference: exit %d, %q", code, out.String())
		}
		// A raw blob (ciphertext bytes) as kms_file.
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ref, "kms:"))
		blob := filepath.Join(dir, "raw.bin")
		if err := os.WriteFile(blob, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		r = mustNew(t, Config{Blocks: []Block{{Name: "raw", KMSFile: blob, Env: "RAW", UID: -1, GID: -1}}}, nil)
		if res, err := r.Resolve(ctx, Env{}); err != nil || envMap(res.Env.Shared)["RAW"] != "small-secret-value" {
			t.Fatalf("raw kms_file: %v", err)
		}
	})

	t.Run("cli usage", func(t *testing.T) {
		for _, args := range [][]string{nil, {"rotate"}, {"encrypt"}, {"encrypt", "-key", keyID, "-ref", "-context", "a=b"}, {"decrypt", "-context", "novalue"}, {"decrypt", "extra"}} {
			if code := RunCLI(ctx, args, strings.NewReader(""), &stdout, &stderr); code != ExitUsage {
				t.Errorf("%q: want exit 64, have %d", args, code)
			}
		}
		if code := RunCLI(ctx, []string{"encrypt", "-key", keyID, "-ref"}, bytes.NewReader(make([]byte, MaxRawKMS+1)), &stdout, &stderr); code != ExitConfig {
			t.Errorf("-ref over 4 KiB: want 78, have %d", code)
		}
		if code := RunCLI(ctx, []string{"decrypt", "-in", filepath.Join(dir, "missing")}, nil, &stdout, &stderr); code != ExitNoInput {
			t.Errorf("missing -in: want 66, have %d", code)
		}
	})
}

// TestNoValueLeaks resolves successfully and unsuccessfully with a trace-level logger and checks that no
// value reaches the log, an error, or the status.
func TestNoValueLeaks(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	const value = "Leak-Canary-8c1f2e"
	a.secret(t, "canary", `{"k":"`+value+`"}`)
	a.secret(t, "plain-canary", value)
	a.param(t, "/canary", value, true)
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &logs})

	r := mustNew(t, Config{Blocks: []Block{{Name: "b", SecretsManager: "canary", EnvPrefix: "C_", UID: -1, GID: -1}}}, log)
	res, err := r.Resolve(ctx, Env{Shared: []string{"A=secretsmanager:canary:k", "B=ssm:/canary", "C=secretsmanager:canary"}})
	if err != nil {
		t.Fatal(err)
	}
	if envMap(res.Env.Shared)["A"] != value {
		t.Fatal("the canary did not resolve")
	}
	st, _ := json.Marshal(r.Status())
	if bytes.Contains(st, []byte(value)) {
		t.Error("status holds the value")
	}
	for _, env := range [][]string{
		{"A=secretsmanager:canary:missing"},   // key not in the JSON
		{"A=secretsmanager:plain-canary:k"},   // value is not JSON
		{"A=secretsmanager:canary:k:NOSTAGE"}, // no such stage
	} {
		_, err := mustNew(t, Config{Timeout: 5 * time.Second}, log).Resolve(ctx, Env{Shared: env})
		if err == nil {
			t.Fatalf("%v: want an error", env)
		}
		if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), "Leak-Canary") {
			t.Errorf("error leaks the value: %v", err)
		}
		if exitCode(err) != ExitUnavailable {
			t.Errorf("%v: want 69, have %d (%v)", env, exitCode(err), err)
		}
	}
	blk := Block{Name: "nojson", SecretsManager: "plain-canary", EnvMap: map[string]string{"X": "y"}, UID: -1, GID: -1}
	_, err = mustNew(t, Config{Blocks: []Block{blk}}, log).Resolve(ctx, Env{})
	if err == nil || strings.Contains(err.Error(), value) {
		t.Errorf("want an error without the value, have %v", err)
	}
	if logs.Len() == 0 {
		t.Fatal("want trace output to check")
	}
	if strings.Contains(logs.String(), value) || strings.Contains(logs.String(), "Leak-Canary") {
		t.Errorf("the log holds the value:\n%s", logs.String())
	}
}

func TestFetchOncePerSecretAndRetries(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	for i := range 5 {
		a.secret(t, fmt.Sprintf("s%d", i), fmt.Sprintf(`{"a":"s%d-a","b":"s%d-b"}`, i, i))
	}
	rec := startRecorder(t, a.moto.URL)
	t.Setenv("AWS_ENDPOINT_URL", rec.URL)
	const target = "secretsmanager.GetSecretValue"
	var env []string
	for i := range 50 {
		key := []string{"a", "b", ""}[i%3]
		env = append(env, fmt.Sprintf("V%02d=secretsmanager:s%d:%s", i, i%5, key))
	}

	t.Run("50 references to 5 secrets", func(t *testing.T) {
		before := rec.count(target)
		res, err := mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: env})
		if err != nil {
			t.Fatal(err)
		}
		if have := rec.count(target) - before; have != 5 {
			t.Errorf("want 5 GetSecretValue calls, have %d", have)
		}
		if have := envMap(res.Env.Shared)["V07"]; have != "s2-b" {
			t.Errorf("V07: want s2-b, have %q", have)
		}
	})

	t.Run("ssm parameters batched 10 a call", func(t *testing.T) {
		var env []string
		for i := range 23 {
			a.param(t, fmt.Sprintf("/batch/p%02d", i), fmt.Sprintf("batch-value-%02d", i), true)
			env = append(env, fmt.Sprintf("P%02d=ssm:/batch/p%02d", i, i), fmt.Sprintf("Q%02d=ssm:/batch/p%02d", i, i))
		}
		const get = "AmazonSSM.GetParameters"
		before := rec.count(get)
		res, err := mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: env})
		if err != nil {
			t.Fatal(err)
		}
		if have := rec.count(get) - before; have != 3 {
			t.Errorf("want 3 GetParameters calls for 23 names, have %d", have)
		}
		m := envMap(res.Env.Shared)
		if m["P17"] != "batch-value-17" || m["Q22"] != "batch-value-22" {
			t.Errorf("want batched values, have %q %q", m["P17"], m["Q22"])
		}
	})

	throttle := func(status int, body string, first int) func(string, int) (int, string) {
		return func(tg string, n int) (int, string) {
			if tg == target && n < first {
				return status, body
			}
			return 0, ""
		}
	}
	const throttled = `{"__type":"ThrottlingException","message":"Rate exceeded"}`

	t.Run("throttled then success", func(t *testing.T) {
		rec.setInject(nil)
		base := rec.count(target)
		rec.setInject(throttle(400, throttled, base+4))
		t.Cleanup(func() { rec.setInject(nil) })
		res, err := mustNew(t, Config{Concurrency: 1}, nil).Resolve(ctx, Env{Shared: []string{"X=secretsmanager:s1:a"}})
		if err != nil {
			t.Fatal(err)
		}
		if envMap(res.Env.Shared)["X"] != "s1-a" {
			t.Error("want the value after retries")
		}
		if have := rec.count(target) - base; have != 5 {
			t.Errorf("want 4 throttled calls and 1 success, have %d calls", have)
		}
	})

	t.Run("500 then success", func(t *testing.T) {
		base := rec.count(target)
		rec.setInject(throttle(500, `{"__type":"InternalServiceError","message":"boom"}`, base+2))
		t.Cleanup(func() { rec.setInject(nil) })
		if _, err := mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: []string{"X=secretsmanager:s1:a"}}); err != nil {
			t.Fatal(err)
		}
		if have := rec.count(target) - base; have != 3 {
			t.Errorf("want 3 calls, have %d", have)
		}
	})

	t.Run("always throttled gives 69 after ThrottleFactor × the timeout", func(t *testing.T) {
		rec.setInject(throttle(400, throttled, 1<<30))
		t.Cleanup(func() { rec.setInject(nil) })
		start := time.Now()
		_, err := mustNew(t, Config{Timeout: 2 * time.Second}, nil).Resolve(ctx, Env{Shared: []string{"DB_PASSWORD=secretsmanager:s1:a"}})
		elapsed := time.Since(start)
		t.Logf("message: %v", err)
		if exitCode(err) != ExitUnavailable {
			t.Fatalf("want 69, have %d: %v", exitCode(err), err)
		}
		for _, s := range []string{"DB_PASSWORD", "secretsmanager:s1:a", "ThrottlingException"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("want %q in %q", s, err)
			}
		}
		if bound := ThrottleFactor * 2 * time.Second; elapsed < bound || elapsed > bound+5*time.Second {
			t.Errorf("want failure at the throttling bound (%s for a 2s timeout), have %s", bound, elapsed)
		}
	})

	// throttledFor throttles every call of the first d (from now), then answers with after (0: moto's).
	throttledFor := func(d time.Duration, after int, body string) func(string, int) (int, string) {
		until := time.Now().Add(d)
		return func(tg string, _ int) (int, string) {
			switch {
			case tg != target:
				return 0, ""
			case time.Now().Before(until):
				return 400, throttled
			case after != 0:
				return after, body
			}
			return 0, ""
		}
	}

	t.Run("throttled past the timeout, then success", func(t *testing.T) {
		// 3s timeout, so a bound of 12s; throttled for 4s: the waits are at most 1.5s, 3s, 6s (1s doubling,
		// ±50%), so the first attempt after 4s comes at most 10s in, inside the bound, and after the timeout.
		rec.setInject(throttledFor(4*time.Second, 0, ""))
		t.Cleanup(func() { rec.setInject(nil) })
		start := time.Now()
		res, err := mustNew(t, Config{Timeout: 3 * time.Second, Concurrency: 1}, nil).Resolve(ctx, Env{Shared: []string{"X=secretsmanager:s1:a"}})
		if err != nil {
			t.Fatalf("want success while only throttled, have %v", err)
		}
		if d := time.Since(start); d < 4*time.Second {
			t.Errorf("resolved in %s, before the throttling ended", d)
		}
		if envMap(res.Env.Shared)["X"] != "s1-a" {
			t.Error("want the value after the throttling")
		}
	})

	t.Run("a 500 past the timeout ends the throttling extension", func(t *testing.T) {
		// Throttled for 3.5s, then 500s: the first 500 comes after the 3s timeout (at most 9.5s in) and fails
		// at once, where 500s alone would be retried until the bound (12s).
		rec.setInject(throttledFor(3500*time.Millisecond, 500, `{"__type":"InternalServiceError","message":"boom"}`))
		t.Cleanup(func() { rec.setInject(nil) })
		start := time.Now()
		_, err := mustNew(t, Config{Timeout: 3 * time.Second, Concurrency: 1}, nil).Resolve(ctx, Env{Shared: []string{"DB_PASSWORD=secretsmanager:s1:a"}})
		elapsed := time.Since(start)
		t.Logf("message after %s: %v", elapsed.Round(time.Millisecond), err)
		if exitCode(err) != ExitUnavailable || !strings.Contains(err.Error(), "DB_PASSWORD") || !strings.Contains(err.Error(), "InternalServiceError") {
			t.Fatalf("want 69 naming DB_PASSWORD and the 500, have %d: %v", exitCode(err), err)
		}
		if elapsed > 11*time.Second {
			t.Errorf("want the failure at the first 500 past the 3s timeout (≤ 9.5s), have %s", elapsed)
		}
	})

	t.Run("not found is 69 without retries", func(t *testing.T) {
		base := rec.count(target)
		_, err := mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: []string{"GONE=secretsmanager:nope"}})
		t.Logf("message: %v", err)
		if exitCode(err) != ExitUnavailable || !strings.Contains(err.Error(), "GONE=secretsmanager:nope") || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("want 69 naming the variable, have %v", err)
		}
		if have := rec.count(target) - base; have != 1 {
			t.Errorf("want exactly 1 call, have %d", have)
		}
		_, err = mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: []string{"P=ssm:/nope"}})
		if exitCode(err) != ExitUnavailable {
			t.Errorf("ssm: want 69, have %v", err)
		}
	})

	t.Run("access denied is 77", func(t *testing.T) {
		rec.setInject(func(tg string, n int) (int, string) {
			if tg == target {
				return 400, `{"__type":"AccessDeniedException","message":"not authorized"}`
			}
			return 0, ""
		})
		t.Cleanup(func() { rec.setInject(nil) })
		_, err := mustNew(t, Config{}, nil).Resolve(ctx, Env{Shared: []string{"X=secretsmanager:s1"}})
		if exitCode(err) != ExitAccessDenied || !strings.Contains(err.Error(), "access denied") {
			t.Fatalf("want 77, have %v", err)
		}
	})
}

func TestRegionFallback(t *testing.T) {
	a := startAWS(t)
	a.param(t, "p", "region-value", false)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")

	t.Run("ECS task metadata", func(t *testing.T) {
		r := mustNew(t, Config{MetadataURI: harness.ServeECSMetadata(t)}, nil)
		// The recorded task runs in us-east-1, where the parameter is (moto keeps regions apart).
		res, err := r.Resolve(t.Context(), Env{Shared: []string{"P=ssm:p"}})
		if err != nil || envMap(res.Env.Shared)["P"] != "region-value" || r.clients.region != "us-east-1" {
			t.Fatalf("want the task ARN's region, have %v", err)
		}
	})
	t.Run("ARN reference", func(t *testing.T) {
		r := mustNew(t, Config{}, nil)
		res, err := r.Resolve(t.Context(), Env{Shared: []string{"P=arn:aws:ssm:us-east-1:123456789012:parameter/p"}})
		if err != nil || envMap(res.Env.Shared)["P"] != "region-value" || r.clients.region != "us-east-1" {
			t.Fatalf("want the ARN's region, have %v", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		_, err := mustNew(t, Config{}, nil).Resolve(t.Context(), Env{Shared: []string{"P=ssm:p"}})
		if exitCode(err) != ExitConfig || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Fatalf("want 78 asking for AWS_REGION, have %v", err)
		}
	})
}

func TestRefresh(t *testing.T) {
	a := startAWS(t)
	a.secret(t, "rot", "version-one-value")
	out := filepath.Join(t.TempDir(), "rot")
	var newValues []string
	valuesSeen := make(chan struct{}, 10)
	r := mustNew(t, Config{
		Blocks:    []Block{{Name: "rot", SecretsManager: "rot", Env: "ROT", File: out, Refresh: 100 * time.Millisecond, OnChange: onchange.Action{Signal: syscall.SIGHUP}, UID: -1, GID: -1}},
		NewValues: func(v []string) { newValues = v; valuesSeen <- struct{}{} },
	}, nil)
	if err := r.Run(t.Context(), nil); err == nil {
		t.Fatal("want Run before Resolve to fail")
	}
	if _, err := r.Resolve(t.Context(), Env{Units: map[string][]string{"job": {"MODE=slow"}}}); err != nil {
		t.Fatal(err)
	}
	r.SetUnits(map[string][]string{"job": {"MODE=fast"}, "added": {"ADDED=yes"}}, nil) // as a reload does
	changes := make(chan [2]string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(block string, action onchange.Action) { changes <- [2]string{block, action.String()} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case c := <-changes:
		t.Fatalf("want no change before a new version, have %v", c)
	case <-time.After(500 * time.Millisecond):
	}
	a.putSecret(t, "rot", "version-two-value")
	select {
	case c := <-changes:
		if c != [2]string{"rot", "signal:SIGHUP"} {
			t.Errorf("want rot signal:SIGHUP, have %v", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no change reported within 30s")
	}
	<-valuesSeen
	if !slices.Contains(newValues, "version-two-value") {
		t.Errorf("want the new value handed to NewValues, have %d values", len(newValues))
	}
	if b, _ := os.ReadFile(out); string(b) != "version-two-value" {
		t.Errorf("want the file rewritten, have %q", b)
	}
	if envMap(r.Env().Shared)["ROT"] != "version-two-value" {
		t.Error("want Env updated")
	}
	if u := r.Env().Units; !slices.Equal(u["job"], []string{"MODE=fast"}) || !slices.Equal(u["added"], []string{"ADDED=yes"}) {
		t.Errorf("a refresh must keep the units' variables as a reload set them, have %v", u)
	}
}

// TestUnitsShareOneResolution: the units' env blocks are resolved with berth's environment in one pass: a
// secret read by the shared environment and two units is fetched once, each unit gets its own variables
// back, the status names the unit, and an error names the unit and its variable (not a value).
func TestUnitsShareOneResolution(t *testing.T) {
	a := startAWS(t)
	ctx := t.Context()
	a.secret(t, "shared/db", `{"user":"app","password":"unit-pw-77"}`)
	var mu sync.Mutex
	fetches := map[string]int{}
	r := mustNew(t, Config{SkipEnv: []string{"RAW"}, Observe: func(source string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		fetches[source]++
	}}, nil)
	in := Env{
		Shared: []string{"PATH=/bin", "DB_USER=secretsmanager:shared/db:user"},
		Units: map[string][]string{
			"main": {"DB_PASSWORD=secretsmanager:shared/db:password", "RAW=secretsmanager:shared/db"},
			"web":  {"URL=postgres://app:" + Marker("secretsmanager:shared/db:password") + "@db/x", "PLAIN=1"},
		},
	}
	res, err := r.Resolve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if fetches["secretsmanager"] != 1 {
		t.Errorf("secretsmanager fetched %d times, want once for three users", fetches["secretsmanager"])
	}
	if got := strings.Join(res.Env.Shared, " "); got != "PATH=/bin DB_USER=app" {
		t.Errorf("shared: %q", got)
	}
	if got := strings.Join(res.Env.Units["main"], " "); got != "DB_PASSWORD=unit-pw-77 RAW=secretsmanager:shared/db" {
		t.Errorf("main (RAW is in skip_env): %q", got)
	}
	if got := strings.Join(res.Env.Units["web"], " "); got != "URL=postgres://app:unit-pw-77@db/x PLAIN=1" {
		t.Errorf("web: %q", got)
	}
	if in.Units["main"][0] != "DB_PASSWORD=secretsmanager:shared/db:password" {
		t.Error("Resolve changed its input")
	}
	units := map[string]string{}
	for _, s := range res.Refs {
		units[s.Var] = s.Unit
	}
	if units["DB_USER"] != "" || units["DB_PASSWORD"] != "main" || units["URL"] != "web" {
		t.Errorf("status units: %v", units)
	}
	if got := r.Env().Units["web"]; len(got) != 2 || got[0] != res.Env.Units["web"][0] {
		t.Errorf("Resolver.Env: %v", got)
	}

	_, err = mustNew(t, Config{}, nil).Resolve(ctx, Env{Units: map[string][]string{"web": {"TOKEN=secretsmanager:shared/db:nokey"}}})
	var se *Error
	if !errors.As(err, &se) || se.Code != ExitUnavailable {
		t.Fatalf("missing key: %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "web: secret TOKEN=secretsmanager:shared/db:nokey: ") || strings.Contains(msg, "unit-pw-77") {
		t.Errorf("error: %q", msg)
	}
}
