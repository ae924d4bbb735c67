package tests

// End-to-end proof of issue 4 (README): the real berth binary resolves secrets against a real moto_server
// before the application starts, delivers them to the child's environment and to files, fails closed, and
// never leaks a value. The helpers here are prefixed "sec" because every tests/*_test.go shares the package.
//
// Secret values never reach the test output: failures name variables and lengths, and berth's stderr is
// scrubbed of the known values before it is printed (see secScrub).

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/berth-dev/berth/tests/harness"
)

// secAccount is moto's default account id, as it appears in the ARNs moto returns.
const secAccount = "123456789012"

// secAWS is a moto_server plus the harness's SDK clients that seed it. The test process's own environment is
// left alone (no t.Setenv): berth gets moto's variables through BerthOpts.Env.
type secAWS struct {
	*harness.AWS
	moto *harness.Moto
}

func secStartAWS(t testing.TB) *secAWS {
	t.Helper()
	m := harness.StartMoto(t)
	return &secAWS{AWS: harness.AWSClients(t, m.URL), moto: m}
}

// env is the environment that points berth's SDK default chain at endpoint (moto, or a proxy in front of it).
func (a *secAWS) env(endpoint string, extra ...string) []string {
	if endpoint == "" {
		endpoint = a.moto.URL
	}
	env := []string{"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
	for _, kv := range a.moto.Env() {
		if strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") {
			kv = "AWS_ENDPOINT_URL=" + endpoint
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

const (
	secTargetGetSecret = "secretsmanager.GetSecretValue"
	secThrottled       = `{"__type":"ThrottlingException","message":"Rate exceeded"}`
	secInternal        = `{"__type":"InternalServiceError","message":"injected 500"}`
)

// secBerth runs berth with -control-socket off (unless args already choose a socket) and the AWS env.
func secBerth(t testing.TB, pid1 bool, env []string, args ...string) *harness.BerthRun {
	t.Helper()
	if !slices.Contains(args, "-control-socket") {
		if len(args) > 0 && args[0] == "run" {
			args = append([]string{"run", "-control-socket", "off"}, args[1:]...)
		} else {
			args = append([]string{"-control-socket", "off"}, args...)
		}
	}
	return harness.RunBerth(t, harness.BerthOpts{PID1: pid1, Env: env, Args: args})
}

// secEncrypt runs the real `berth secrets encrypt` and returns its stdout.
func secEncrypt(t testing.TB, a *secAWS, args ...string) string {
	t.Helper()
	b := harness.RunBerth(t, harness.BerthOpts{Env: a.env(""), Args: append([]string{"secrets", "encrypt"}, args...)})
	if code := b.Wait(60 * time.Second); code != 0 {
		t.Fatalf("berth secrets encrypt: exit %d\n%s", code, b.Stderr.String())
	}
	return b.Stdout.String()
}

// secChildEnv reads what testapp -env-json wrote: the child's view of its environment.
func secChildEnv(t testing.TB, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the child did not write its environment: %v", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("child env: %v", err)
	}
	return m
}

// secCompare checks the child's variables against want without printing values (only names and lengths).
func secCompare(t testing.TB, have, want map[string]string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, ok := have[k]
		switch {
		case !ok:
			t.Errorf("%s: not set in the child", k)
		case v != want[k]:
			t.Errorf("%s: wrong value in the child (want %d bytes, have %d bytes; first difference at byte %d)", k, len(want[k]), len(v), secFirstDiff(v, want[k]))
		}
	}
}

func secFirstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// secScrub replaces every known secret value in s, so berth's output can go into a failure message.
func secScrub(s string, values ...string) string {
	values = slices.Clone(values)
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	for _, v := range values {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "<secret>")
		}
	}
	return s
}

// secNoValues fails when any of values occurs in text (named what).
func secNoValues(t testing.TB, what, text string, values ...string) {
	t.Helper()
	for i, v := range values {
		if strings.Contains(text, v) {
			t.Errorf("%s holds secret value #%d (%d bytes)", what, i, len(v))
		}
	}
}

// secBerthLines are the lines berth wrote about its own failure ("berth: ...").
func secBerthLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "berth: ") {
			out = append(out, l)
		}
		if strings.HasPrefix(l, "goroutine ") || strings.HasPrefix(l, "panic:") {
			out = append(out, "STACK TRACE: "+l)
		}
	}
	return out
}

// secNotStarted asserts the main command (testapp -log path) never ran.
func secNotStarted(t testing.TB, logPath string) {
	t.Helper()
	if _, err := os.Stat(logPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the main command was started (its log %s exists: %v)", logPath, err)
	}
}

func secWriteFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecretsEnvReferences: every reference syntax of the README in berth's environment reaches the child as the
// right value, byte for byte; -no-resolve and non-reference values stay untouched; a malformed reference is
// exit 78 naming the variable, with the main command never started.
func TestSecretsEnvReferences(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)

	dbARN, v1 := a.Secret(t, "prod/db", `{"username":"app-user","password":"pw-version-1","port":5432}`)
	v2 := a.PutSecret(t, "prod/db", `{"username":"app-user","password":"pw-staged-2"}`, "STAGED")
	a.PutSecret(t, "prod/db", `{"username":"app-user","password":"pw-current-3"}`) // v1 becomes AWSPREVIOUS
	tricky := "He said \"hi\" = 'x'  a=b==c  $HOME `id` \\n \t tab ü\nsecond line  "
	trickyARN, _ := a.Secret(t, "tricky", tricky)
	if _, err := a.SecretsManager.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("binary"), SecretBinary: []byte("binary\x01secret ü")}); err != nil {
		t.Fatal(err)
	}
	a.Param(t, "/prod/app/key", "param-old-value", true)
	a.Param(t, "/prod/app/key", "param-new-value", true)
	a.Param(t, "plainparam", "plain-param-value", false)
	key := a.Key(t)
	plainFile := secWriteFile(t, filepath.Join(t.TempDir(), "plain"), "kms-plaintext = 'value'")
	kmsRef := strings.TrimSpace(secEncrypt(t, a, "-key", key, "-ref", "-in", plainFile))
	if !strings.HasPrefix(kmsRef, "kms:") {
		t.Fatalf("berth secrets encrypt -ref printed no kms: reference (%d bytes)", len(kmsRef))
	}

	in := map[string]string{
		// ECS secrets.valueFrom, verbatim
		"ECS_SM_WHOLE":   trickyARN,
		"ECS_SM_KEY":     dbARN + ":password::",
		"ECS_SM_STAGE":   dbARN + ":password:AWSPREVIOUS:",
		"ECS_SM_VERSION": dbARN + ":password::" + v2,
		"ECS_SSM_PATH":   "arn:aws:ssm:us-east-1:" + secAccount + ":parameter/prod/app/key",
		"ECS_SSM_NAME":   "arn:aws:ssm:us-east-1:" + secAccount + ":parameter/plainparam",
		// short forms
		"SM_NAME":       "secretsmanager:tricky",
		"SM_BINARY":     "secretsmanager:binary",
		"SM_KEY":        "secretsmanager:prod/db:password",
		"SM_NUMBER":     "secretsmanager:prod/db:port:AWSPREVIOUS",
		"SM_STAGE":      "secretsmanager:prod/db:password:STAGED",
		"SM_VERSION_ID": "secretsmanager:prod/db:password::" + v1,
		"SM_BY_ARN":     "secretsmanager:" + dbARN + ":username",
		"SSM_PATH":      "ssm:/prod/app/key",
		"SSM_VERSION":   "ssm:/prod/app/key:1",
		"SSM_NAME":      "ssm:plainparam",
		"KMS":           kmsRef,
		// left alone
		"NO_RESOLVE": "ssm:/prod/app/key",
		"OTHER_ARN":  "arn:aws:iam::" + secAccount + ":role/app",
		"NOT_A_REF":  `x=ssm:/prod/app/key "quoted" = 'single'  `,
	}
	want := map[string]string{
		"ECS_SM_WHOLE":   tricky,
		"ECS_SM_KEY":     "pw-current-3",
		"ECS_SM_STAGE":   "pw-version-1",
		"ECS_SM_VERSION": "pw-staged-2",
		"ECS_SSM_PATH":   "param-new-value",
		"ECS_SSM_NAME":   "plain-param-value",
		"SM_NAME":        tricky,
		"SM_BINARY":      "binary\x01secret ü",
		"SM_KEY":         "pw-current-3",
		"SM_NUMBER":      "5432",
		"SM_STAGE":       "pw-staged-2",
		"SM_VERSION_ID":  "pw-version-1",
		"SM_BY_ARN":      "app-user",
		"SSM_PATH":       "param-new-value",
		"SSM_VERSION":    "param-old-value",
		"SSM_NAME":       "plain-param-value",
		"KMS":            "kms-plaintext = 'value'",
		"NO_RESOLVE":     in["NO_RESOLVE"],
		"OTHER_ARN":      in["OTHER_ARN"],
		"NOT_A_REF":      in["NOT_A_REF"],
	}
	values := []string{tricky, "binary\x01secret ü", "pw-current-3", "pw-version-1", "pw-staged-2", "param-new-value", "param-old-value", "plain-param-value", "kms-plaintext = 'value'"}

	dir := t.TempDir()
	out := filepath.Join(dir, "env.json")
	var env []string
	var names []string
	for k, v := range in {
		env = append(env, k+"="+v)
		names = append(names, k)
	}
	sort.Strings(names)
	b := secBerth(t, false, a.env("", env...), "-no-resolve", "NO_RESOLVE", "--",
		app, "-env", strings.Join(names, ","), "-env-json", out)
	if code := b.Wait(60 * time.Second); code != 0 {
		t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
	}
	secCompare(t, secChildEnv(t, out), want)
	secNoValues(t, "berth's stderr", b.Stderr.String(), values...)

	t.Run("region of the ARN and partitions", func(t *testing.T) {
		// ARN references are fetched in their own region (and partition), whatever AWS_REGION says.
		var env, names []string
		want := map[string]string{}
		for _, region := range []string{"eu-west-1", "cn-north-1", "us-gov-west-1"} {
			sm := secretsmanager.NewFromConfig(a.Config, func(o *secretsmanager.Options) { o.Region = region })
			value := "value-in-" + region
			out, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("regional/db"),
				SecretString: aws.String(`{"password":"` + value + `"}`)})
			if err != nil {
				t.Fatal(err)
			}
			name := "PW_" + strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
			env = append(env, name+"="+*out.ARN+":password::")
			names = append(names, name)
			want[name] = value
		}
		// moto names the partition of each region as AWS does: the references cover all three partitions
		for i, p := range []string{"=arn:aws:secretsmanager:eu-west-1:", "=arn:aws-cn:secretsmanager:cn-north-1:", "=arn:aws-us-gov:secretsmanager:us-gov-west-1:"} {
			if !strings.Contains(env[i], p) {
				t.Fatalf("want a reference containing %q, have %s", p, env[i])
			}
		}
		out := filepath.Join(t.TempDir(), "env.json")
		b := secBerth(t, false, a.env("", env...), "--", app, "-env", strings.Join(names, ","), "-env-json", out)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, b.Stderr.String())
		}
		secCompare(t, secChildEnv(t, out), want)
	})

	t.Run("region from ECS task metadata", func(t *testing.T) {
		// ECS on EC2 sets no AWS_REGION: the task ARN in the task metadata gives it (us-east-1 in the fixture).
		var env []string
		for _, kv := range a.env("", "PARAM=ssm:plainparam") {
			if !strings.HasPrefix(kv, "AWS_REGION=") && !strings.HasPrefix(kv, "AWS_DEFAULT_REGION=") {
				env = append(env, kv)
			}
		}
		out := filepath.Join(t.TempDir(), "env.json")
		b := secBerth(t, false, append(env, "ECS_CONTAINER_METADATA_URI_V4="+harness.ServeECSMetadata(t)),
			"--", app, "-env", "PARAM", "-env-json", out)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		secCompare(t, secChildEnv(t, out), map[string]string{"PARAM": "plain-param-value"})

		log := filepath.Join(t.TempDir(), "main.log")
		b = secBerth(t, false, env, "--", app, "-log", log)
		if code := b.Wait(60 * time.Second); code != 78 {
			t.Fatalf("without a region anywhere want exit 78, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		if lines := secBerthLines(b.Stderr.String()); len(lines) != 1 || !strings.Contains(lines[0], "AWS_REGION") {
			t.Errorf("want one berth: line telling to set AWS_REGION, have %q", lines)
		}
		secNotStarted(t, log)
	})

	t.Run("malformed", func(t *testing.T) {
		for _, c := range []struct{ name, value, why string }{
			{"empty secretsmanager id", "secretsmanager:", ""},
			{"bad region", "arn:aws:secretsmanager:nowhere:" + secAccount + ":secret:prod/db", "region"},
			{"unknown partition", "arn:aws-mars:ssm:us-east-1:" + secAccount + ":parameter/x", "partition"},
			{"kms not base64", "kms:not*base64!", ""},
			{"too many segments", "secretsmanager:prod/db:password:STAGED:" + v1 + ":extra", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				log := filepath.Join(t.TempDir(), "main.log")
				b := secBerth(t, false, a.env("", "GOOD=secretsmanager:prod/db:password", "BROKEN_REF="+c.value),
					"--", app, "-log", log)
				if code := b.Wait(60 * time.Second); code != 78 {
					t.Fatalf("want exit 78, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
				}
				lines := secBerthLines(b.Stderr.String())
				if len(lines) != 1 || !strings.Contains(lines[0], "BROKEN_REF") || !strings.Contains(lines[0], c.why) {
					t.Errorf("want one berth: line naming BROKEN_REF (and %q), have %q", c.why, lines)
				}
				secNotStarted(t, log)
				secNoValues(t, "berth's stderr", b.Stderr.String(), values...)
			})
		}
	})
}

// TestSecretsConfigBlocks: secret blocks of a config file — secretsmanager into an env map, ssm_path (> 10
// parameters, nested) into env_prefix, an SSE-KMS dotenv file from S3, a 20 KiB file encrypted by the real
// `berth secrets encrypt` and baked in as kms_file, and secret() inside a longer value.
func TestSecretsConfigBlocks(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	ctx := t.Context()
	dir := t.TempDir()

	a.Secret(t, "app/db", `{"username":"db-user-name","password":"db-pass \"q\" = 'w'","port":5432}`)
	wantPath := map[string]string{}
	for i := 1; i <= 11; i++ {
		name := fmt.Sprintf("/svc/app/p%02d", i)
		a.Param(t, name, fmt.Sprintf("path-value-%02d", i), i%2 == 0)
		wantPath[fmt.Sprintf("APP_P%02d", i)] = fmt.Sprintf("path-value-%02d", i)
	}
	for name, v := range map[string]string{
		"/svc/app/db/host":       "db.internal:5432",
		"/svc/app/db/pass":       "nested pass = \"x\"",
		"/svc/app/deep/a/b/leaf": "deep-leaf-value",
		"/svc/app/api-key":       "api-key-value-1",
	} {
		a.Param(t, name, v, true)
	}
	wantPath["APP_DB_HOST"] = "db.internal:5432"
	wantPath["APP_DB_PASS"] = "nested pass = \"x\""
	wantPath["APP_DEEP_A_B_LEAF"] = "deep-leaf-value"
	wantPath["APP_API_KEY"] = "api-key-value-1"
	a.Param(t, "/svc/other/outside", "outside-value", false) // not under the path

	// S3 dotenv, SSE-KMS
	s3Key := a.Key(t)
	if _, err := a.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("berth-config")}); err != nil {
		t.Fatal(err)
	}
	dotenv := "# app settings\r\nexport TOKEN=\"tok \\\"quoted\\\" = v\"\r\nPLAIN = plain value with spaces # comment\nSINGLE='literal $HOME \\n'\n"
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("berth-config"), Key: aws.String("prod/app.env"),
		Body: strings.NewReader(dotenv), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: &s3Key}); err != nil {
		t.Fatal(err)
	}
	// the default format: docker --env-file, as ECS environmentFiles (values literal, only whole-line comments)
	envFile := "# ecs env file\r\n  PASSWORD=pa ss #not-a-comment \"q\" \r\nURL=postgres://a:b@h/db?x=1\nEMPTY=\nNO_EQUALS_SIGN\n"
	if _, err := a.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("berth-config"), Key: aws.String("prod/ecs.env"),
		Body: strings.NewReader(envFile), ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: &s3Key}); err != nil {
		t.Fatal(err)
	}
	head, err := a.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("berth-config"), Key: aws.String("prod/app.env")})
	if err != nil || head.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms {
		t.Fatalf("want the dotenv object stored with SSE-KMS, have %v (%v)", head, err)
	}

	// 20 KiB baked config, envelope-encrypted by the CLI
	fileKey := a.Key(t)
	plain := make([]byte, 20<<10)
	if _, err := rand.Read(plain); err != nil {
		t.Fatal(err)
	}
	plainPath, encPath := filepath.Join(dir, "config.bin"), filepath.Join(dir, "config.bin.enc")
	if err := os.WriteFile(plainPath, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	secEncrypt(t, a, "-key", fileKey, "-context", "app=web", "-in", plainPath, "-out", encPath)
	if enc, _ := os.ReadFile(encPath); !bytes.HasPrefix(enc, []byte("berth-envelope v1\n")) || bytes.Contains(enc, plain[:64]) {
		t.Fatal("want an envelope file without the plaintext")
	}
	secretFile := filepath.Join(dir, "run", "secrets", "config.bin") // parent directories do not exist yet

	out := filepath.Join(dir, "env.json")
	want := map[string]string{
		"DB_USER":      "db-user-name",
		"DB_PASSWORD":  "db-pass \"q\" = 'w'",
		"DATABASE_URL": "postgres://app:db-pass \"q\" = 'w'@db/app",
		"WHOLE_REF":    "db-user-name",
		"DOT_TOKEN":    "tok \"quoted\" = v",
		"DOT_PLAIN":    "plain value with spaces",
		"DOT_SINGLE":   "literal $HOME \\n",
		"S3_TOKEN":     "tok \"quoted\" = v",
		"ENV_PASSWORD": "pa ss #not-a-comment \"q\" ",
		"ENV_URL":      "postgres://a:b@h/db?x=1",
		"ENV_EMPTY":    "",
	}
	for k, v := range wantPath {
		want[k] = v
	}
	names := []string{"APP_OTHER_OUTSIDE", "APP_OUTSIDE", "ENV_NO_EQUALS_SIGN"}
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	argv, _ := json.Marshal([]string{app, "-env", strings.Join(names, ","), "-env-json", out})
	cfg := fmt.Sprintf(`
main {
  command = %s
  env = {
    DATABASE_URL = "postgres://app:${secret("secretsmanager:app/db:password")}@db/app"
    WHOLE_REF    = "secretsmanager:app/db:username"
  }
}

secret "db" {
  secretsmanager = "app/db"
  env            = { DB_USER = "username", DB_PASSWORD = "password" }
}

secret "params" {
  ssm_path   = "/svc/app/"
  env_prefix = "APP_"
}

secret "dotenv" {
  s3         = "s3://berth-config/prod/app.env"
  format     = "dotenv"
  env_prefix = "DOT_"
  env        = { S3_TOKEN = "TOKEN" }
}

secret "envfile" {
  s3         = "s3://berth-config/prod/ecs.env"
  env_prefix = "ENV_"
}

secret "baked" {
  kms_file           = %q
  encryption_context = { app = "web" }
  file               = %q
}
`, argv, encPath, secretFile)
	cfgPath := secWriteFile(t, filepath.Join(dir, "berth.hcl"), cfg)
	values := []string{"db-user-name", "db-pass \"q\" = 'w'", "tok \"quoted\" = v", "plain value with spaces", "nested pass = \"x\"", "deep-leaf-value", "api-key-value-1"}

	b := secBerth(t, false, a.env(""), "run", "-config", cfgPath)
	if code := b.Wait(60 * time.Second); code != 0 {
		t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
	}
	have := secChildEnv(t, out)
	secCompare(t, have, want)
	for _, k := range []string{"APP_OTHER_OUTSIDE", "APP_OUTSIDE", "ENV_NO_EQUALS_SIGN"} {
		if _, ok := have[k]; ok {
			t.Errorf("%s is set: a parameter outside ssm_path leaked in", k)
		}
	}
	n := 0
	for k := range have {
		if strings.HasPrefix(k, "APP_") {
			n++
		}
	}
	if n != 15 {
		t.Errorf("want 15 APP_ variables from ssm_path (11 + 4 nested), have %d", n)
	}
	data, err := os.ReadFile(secretFile)
	if err != nil || !bytes.Equal(data, plain) {
		t.Errorf("want the 20 KiB kms_file plaintext byte for byte in %s, have %d bytes (%v)", secretFile, len(data), err)
	}
	if fi, err := os.Stat(secretFile); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("want mode 0400 on %s, have %v (%v)", secretFile, fi.Mode(), err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Getuid()) {
		t.Errorf("want the file owned by berth's user %d, have uid %d", os.Getuid(), st.Uid)
	}
	secNoValues(t, "berth's stderr", b.Stderr.String(), values...)
}

// TestSecretsFetchOnce: 50 env references to 5 secrets make exactly 5 GetSecretValue calls (counted by a
// proxy in front of moto), and each variable gets its own JSON key.
func TestSecretsFetchOnce(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	proxy := harness.StartAWSProxy(t, a.moto.URL)
	env, want := secFanout(t, a, "fo")
	out := filepath.Join(t.TempDir(), "env.json")
	names := slices.Sorted(maps.Keys(want))
	b := secBerth(t, false, a.env(proxy.URL, env...), "--", app, "-env", strings.Join(names, ","), "-env-json", out)
	if code := b.Wait(60 * time.Second); code != 0 {
		t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), slices.Collect(maps.Values(want))...))
	}
	secCompare(t, secChildEnv(t, out), want)
	if have := proxy.Count(secTargetGetSecret); have != 5 {
		t.Errorf("want exactly 5 GetSecretValue calls for 50 references to 5 secrets, have %d", have)
	}
}

// secFanout creates 5 JSON secrets PREFIX/s0..s4 of 10 keys each and returns 50 env references to them
// (V_<secret>_<key>=secretsmanager:PREFIX/sI:kJ) with the value each must resolve to.
func secFanout(t testing.TB, a *secAWS, prefix string) (env []string, want map[string]string) {
	t.Helper()
	want = map[string]string{}
	for i := range 5 {
		doc := map[string]string{}
		for j := range 10 {
			v := fmt.Sprintf("value-%s-%d-%d", prefix, i, j)
			doc[fmt.Sprintf("k%d", j)] = v
			name := fmt.Sprintf("V_%d_%d", i, j)
			want[name] = v
			env = append(env, fmt.Sprintf("%s=secretsmanager:%s/s%d:k%d", name, prefix, i, j))
		}
		js, _ := json.Marshal(doc)
		a.Secret(t, fmt.Sprintf("%s/s%d", prefix, i), string(js))
	}
	return env, want
}

// TestSecretsFailClosed: a missing secret, a throttling service past secrets.timeout, and a wrong KMS
// encryption context each stop berth with the documented code and one clear line, before anything starts.
func TestSecretsFailClosed(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	const existing = "existing-value-must-not-leak"
	a.Secret(t, "present", existing)
	a.Secret(t, "present/json", `{"user":"json-user-must-not-leak"}`)
	a.Param(t, "/present/param", "param-value-must-not-leak", true)
	values := []string{existing, "param-value-must-not-leak", "json-user-must-not-leak"}

	t.Run("not found", func(t *testing.T) {
		for _, c := range []struct{ name, ref string }{
			{"secretsmanager", "secretsmanager:no/such/secret"},
			{"secretsmanager ARN", "arn:aws:secretsmanager:us-east-1:" + secAccount + ":secret:no/such/secret-AbCdEf"},
			{"json key", "secretsmanager:present/json:no_such_key"},
			{"not a json secret", "secretsmanager:present:no_such_key"},
			{"ssm", "ssm:/no/such/param"},
		} {
			t.Run(c.name, func(t *testing.T) {
				log := filepath.Join(t.TempDir(), "main.log")
				start := time.Now()
				b := secBerth(t, false, a.env("", "A_PRESENT=secretsmanager:present", "A_USER=secretsmanager:present/json:user",
					"B_PARAM=ssm:/present/param", "DB_PASSWORD="+c.ref),
					"--", app, "-log", log)
				code := b.Wait(60 * time.Second)
				stderr := b.Stderr.String()
				if code != 69 {
					t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(stderr, values...))
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("not found must not be retried until the 30s timeout; berth took %s", d)
				}
				lines := secBerthLines(stderr)
				if len(lines) != 1 || !strings.Contains(lines[0], "DB_PASSWORD") || !strings.Contains(lines[0], c.ref) {
					t.Errorf("want one berth: line naming DB_PASSWORD and %s, have %q", c.ref, lines)
				}
				t.Logf("message: %s", lines[0])
				secNoValues(t, "berth's stderr", stderr, values...)
				secNotStarted(t, log)
			})
		}
	})

	t.Run("env block of a job names the job", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "main.log")
		cfg := secWriteFile(t, filepath.Join(dir, "berth.hcl"), `job "migrate" {
  command = ["/bin/true"]
  env = { DB_PASSWORD = "secretsmanager:no/such/secret", OK = "secretsmanager:present" }
}
main {
  env = { A_USER = "secretsmanager:present/json:user" }
}
`)
		b := secBerth(t, false, a.env(""), "run", "-config", cfg, "--", app, "-log", log)
		code := b.Wait(60 * time.Second)
		stderr := b.Stderr.String()
		if code != 69 {
			t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(stderr, values...))
		}
		lines := secBerthLines(stderr)
		want := "berth: migrate: secret DB_PASSWORD=secretsmanager:no/such/secret: "
		if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
			t.Errorf("want one line starting %q, have %q", want, lines)
		}
		secNoValues(t, "berth's stderr", stderr, values...)
		secNotStarted(t, log)
	})

	t.Run("throttled past the timeout", func(t *testing.T) {
		proxy := harness.StartAWSProxy(t, a.moto.URL)
		proxy.SetInject(func(string, int) (int, string) { return 400, secThrottled })
		dir := t.TempDir()
		log := filepath.Join(dir, "main.log")
		cfg := secWriteFile(t, filepath.Join(dir, "berth.hcl"), "secrets {\n  timeout = \"2s\"\n}\n")
		start := time.Now()
		b := secBerth(t, false, a.env(proxy.URL, "DB_PASSWORD=secretsmanager:present"),
			"run", "-config", cfg, "--", app, "-log", log)
		code := b.Wait(60 * time.Second)
		elapsed := time.Since(start)
		stderr := b.Stderr.String()
		if code != 69 {
			t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(stderr, values...))
		}
		// secrets.timeout = 2s, not the 30s default: a generous bound well under the default
		if elapsed > 20*time.Second {
			t.Errorf("want berth to give up after secrets.timeout (2s), it took %s", elapsed)
		}
		if n := proxy.Count(secTargetGetSecret); n < 2 {
			t.Errorf("want throttled requests retried, have %d GetSecretValue calls", n)
		}
		lines := secBerthLines(stderr)
		if len(lines) != 1 || !strings.Contains(lines[0], "DB_PASSWORD") || !strings.Contains(lines[0], "secretsmanager:present") {
			t.Errorf("want one berth: line naming DB_PASSWORD and its reference, have %q", lines)
		}
		t.Logf("message after %s and %d attempts: %s", elapsed.Round(time.Millisecond), proxy.Count(secTargetGetSecret), strings.Join(lines, " | "))
		secNoValues(t, "berth's stderr", stderr, values...)
		secNotStarted(t, log)
	})

	t.Run("throttling and 500s retried then success", func(t *testing.T) {
		proxy := harness.StartAWSProxy(t, a.moto.URL)
		proxy.SetInject(func(target string, n int) (int, string) {
			switch {
			case target == secTargetGetSecret && n < 3:
				return 400, secThrottled
			case target == secTargetGetSecret && n < 5:
				return 500, secInternal
			}
			return 0, ""
		})
		out := filepath.Join(t.TempDir(), "env.json")
		b := secBerth(t, false, a.env(proxy.URL, "DB_PASSWORD=secretsmanager:present"),
			"--", app, "-env", "DB_PASSWORD", "-env-json", out)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0 after retries, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		secCompare(t, secChildEnv(t, out), map[string]string{"DB_PASSWORD": existing})
		if n := proxy.Count(secTargetGetSecret); n != 6 {
			t.Errorf("want 3 throttled + 2 failed + 1 good GetSecretValue calls, have %d", n)
		}
	})

	t.Run("wrong encryption context", func(t *testing.T) {
		dir := t.TempDir()
		key := a.Key(t)
		plainPath, encPath := filepath.Join(dir, "config.json"), filepath.Join(dir, "config.json.enc")
		const content = `{"api_token":"file-secret-must-not-leak"}`
		secWriteFile(t, plainPath, content)
		secEncrypt(t, a, "-key", key, "-context", "app=web", "-in", plainPath, "-out", encPath)
		dest := filepath.Join(dir, "out", "config.json")
		log := filepath.Join(dir, "main.log")
		cfg := secWriteFile(t, filepath.Join(dir, "berth.hcl"), fmt.Sprintf(`
secret "cfg" {
  kms_file           = %q
  encryption_context = { app = "other" }
  file               = %q
}
`, encPath, dest))
		b := secBerth(t, false, a.env(""), "run", "-config", cfg, "--", app, "-log", log)
		code := b.Wait(60 * time.Second)
		stderr := b.Stderr.String()
		// secrets/doc.go: KMS answers a wrong context with InvalidCiphertextException, reported as access denied
		if code != 77 {
			t.Fatalf("want exit 77 (access denied), have %d\nstderr:\n%s", code, secScrub(stderr, content, "file-secret-must-not-leak"))
		}
		lines := secBerthLines(stderr)
		if len(lines) != 1 || !strings.Contains(lines[0], `secret "cfg"`) || !strings.Contains(lines[0], "encryption context") {
			t.Errorf(`want one berth: line naming secret "cfg" and the encryption context, have %q`, lines)
		}
		t.Logf("message: %s", strings.Join(lines, " | "))
		secNoValues(t, "berth's stderr", stderr, "file-secret-must-not-leak")
		if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("want no file written, have %v", err)
		}
		secNotStarted(t, log)
	})
}

// TestSecretsThrottledHerd: 30 berths start at once, each resolving one SSM parameter, against an SSM that
// allows 3 GetParameters a second (a token bucket, ThrottlingException beyond it): about 9s of work for the
// quota, with secrets.timeout = 7s. Every berth retries its throttled fetch until it succeeds — past the
// timeout, which would otherwise fail the last ones, but within ThrottleFactor × it — and starts its main
// command with the value; no value appears in any berth's debug log.
func TestSecretsThrottledHerd(t *testing.T) {
	const n, perSecond = 30, 3
	app := harness.TestApp(t)
	harness.Berth(t)
	a := secStartAWS(t)
	const value = "herd-param-value-3f9a-never-logged"
	a.Param(t, "/herd/param", value, true)
	proxy := harness.StartAWSProxy(t, a.moto.URL)
	dir := t.TempDir()
	cfg := secWriteFile(t, filepath.Join(dir, "berth.hcl"), "secrets {\n  timeout = \"7s\"\n}\n")
	quota := proxy.Throttle(perSecond, perSecond, "AmazonSSM.GetParameters")
	start := time.Now()
	berths := make([]*harness.BerthRun, n)
	for i := range berths {
		out := filepath.Join(dir, fmt.Sprintf("env-%d.json", i))
		berths[i] = secBerth(t, false, a.env(proxy.URL, "DB_PASSWORD=ssm:/herd/param"),
			"run", "-config", cfg, "-log-level", "debug", "--", app, "-env", "DB_PASSWORD", "-env-json", out)
	}
	var longest time.Duration // the longest resolution, from berth's own debug line
	retries := 0
	for i, b := range berths {
		code := b.Wait(2 * time.Minute)
		stderr := b.Stderr.String()
		secNoValues(t, fmt.Sprintf("berth %d's log", i), b.Stdout.String()+stderr, value)
		if code != 0 {
			t.Errorf("berth %d: exit %d, want 0 (throttling is retried)\n%s", i, code, secScrub(stderr, value))
			continue
		}
		secCompare(t, secChildEnv(t, filepath.Join(dir, fmt.Sprintf("env-%d.json", i))), map[string]string{"DB_PASSWORD": value})
		m := secResolvedRE.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("berth %d: no 'secrets resolved ... duration=' line at debug level", i)
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, d)
		retries += strings.Count(stderr, "secret fetch throttled, retrying")
	}
	t.Logf("%d berths resolved in %s: %d GetParameters served, %d throttled (%d retries logged); the longest resolution took %s",
		n, time.Since(start).Round(time.Millisecond), quota.Served(), quota.Throttled(), retries, longest.Round(time.Millisecond))
	if quota.Served() != n {
		t.Errorf("want one served GetParameters per berth (%d), have %d", n, quota.Served())
	}
	if quota.Throttled() == 0 || retries == 0 {
		t.Errorf("want throttled requests and berth's debug log showing their retries, have %d and %d lines", quota.Throttled(), retries)
	}
	if longest <= 7*time.Second {
		t.Errorf("want some berth to have resolved after retrying past secrets.timeout (7s; the quota needs about 9s for %d), the longest took %s", n, longest)
	}
}

// TestSecretsNeverLeaked: berth as PID 1 at trace level keeps values out of its stderr, its own environment
// (/proc/<pid>/environ holds the references) and `berth ctl status`; the child printing a value shows
// [REDACTED], unless -redact=false.
func TestSecretsNeverLeaked(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	const token = "tok-7f3a9c1e-never-leak"
	const dbPass = "db-pass-5b2e-never-leak"
	const param = "param-c41d-never-leak"
	a.Secret(t, "leak/token", token)
	a.Secret(t, "leak/db", `{"user":"app","password":"`+dbPass+`"}`)
	a.Param(t, "/leak/param", param, true)
	values := []string{token, dbPass, param}
	refs := []string{"API_TOKEN=secretsmanager:leak/token", "DB_PASSWORD=secretsmanager:leak/db:password", "PARAM=ssm:/leak/param"}

	t.Run("pid1 trace redact", func(t *testing.T) {
		dir := t.TempDir()
		log, sock := filepath.Join(dir, "main.log"), filepath.Join(dir, "berth.sock")
		b := secBerth(t, true, a.env("", refs...), "-log-level", "trace", "-control-socket", sock, "--",
			app, "-env", "API_TOKEN,DB_PASSWORD,PARAM", "-log", log, "-exit-on", "TERM:0")
		harness.WaitFile(t, log, "ready", 60*time.Second)

		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", b.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		vars := strings.Split(string(environ), "\x00")
		for _, r := range refs {
			if !slices.Contains(vars, r) {
				t.Errorf("/proc/<berth pid>/environ lacks the reference %s", r)
			}
		}
		secNoValues(t, "/proc/<berth pid>/environ", string(environ), values...)

		st := harness.RunBerth(t, harness.BerthOpts{Env: []string{"BERTH_CONTROL_SOCKET=" + sock}, Args: []string{"ctl", "status"}})
		if code := st.Wait(30 * time.Second); code != 0 {
			t.Errorf("berth ctl status: exit %d: %s", code, secScrub(st.Stderr.String(), values...))
		}
		if !strings.Contains(st.Stdout.String(), "secretsmanager:leak/token") {
			t.Errorf("berth ctl status does not list the reference:\n%s", secScrub(st.Stdout.String(), values...))
		}
		secNoValues(t, "berth ctl status", st.Stdout.String()+st.Stderr.String(), values...)

		b.Signal(syscall.SIGTERM)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		stdout, stderr := b.Stdout.String(), b.Stderr.String()
		secNoValues(t, "the child's output on berth's stdout", stdout, values...)
		for _, l := range []string{"API_TOKEN=[REDACTED] set=true", "DB_PASSWORD=[REDACTED] set=true", "PARAM=[REDACTED] set=true"} {
			if !strings.Contains(stdout, l) {
				t.Errorf("stdout lacks %q:\n%s", l, secScrub(stdout, values...))
			}
		}
		secNoValues(t, "berth's trace-level stderr", stderr, values...)
		if !strings.Contains(stderr, "[TRACE]") && !strings.Contains(stderr, "[DEBUG]") {
			t.Errorf("want berth's debug/trace log on stderr (the leak check would prove nothing), have:\n%s", secScrub(stderr, values...))
		}
		if !strings.Contains(stderr, "secrets resolved") {
			t.Errorf("want the resolution logged at debug level, have:\n%s", secScrub(stderr, values...))
		}
	})

	t.Run("redact=false", func(t *testing.T) {
		b := secBerth(t, false, a.env("", refs...), "-redact=false", "--", app, "-env", "API_TOKEN,DB_PASSWORD,PARAM")
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), values...))
		}
		stdout := b.Stdout.String()
		for _, l := range []string{"API_TOKEN=" + token + " set=true", "DB_PASSWORD=" + dbPass + " set=true", "PARAM=" + param + " set=true"} {
			if !strings.Contains(stdout, l) {
				name, _, _ := strings.Cut(l, "=")
				t.Errorf("with -redact=false the child's line for %s must pass unchanged:\n%s", name, secScrub(stdout, values...))
			}
		}
		secNoValues(t, "berth's stderr", b.Stderr.String(), values...)
	})
}

// TestSecretsSidecar: README "Sidecar mode" — `berth run -config` with no main command and only secret blocks writes the
// files and exits 0 (ECS dependsOn COMPLETE); a failing secret exits 69 and writes nothing.
func TestSecretsSidecar(t *testing.T) {
	a := secStartAWS(t)
	const value = "sidecar-token-value-1234"
	a.Secret(t, "sidecar/token", value)

	t.Run("writes and exits 0", func(t *testing.T) {
		dir := t.TempDir()
		dest := filepath.Join(dir, "shared", "token")
		cfg := secWriteFile(t, filepath.Join(dir, "sidecar.hcl"), fmt.Sprintf(`
secret "token" {
  secretsmanager = "sidecar/token"
  file           = %q
  mode           = "0440"
}
`, dest))
		b := secBerth(t, false, a.env(""), "run", "-config", cfg)
		if code := b.Wait(60 * time.Second); code != 0 {
			t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), value))
		}
		data, err := os.ReadFile(dest)
		if err != nil || string(data) != value {
			t.Fatalf("want the secret in %s, have %d bytes (%v)", dest, len(data), err)
		}
		if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o440 {
			t.Errorf("want mode 0440, have %v", fi.Mode())
		}
		secNoValues(t, "berth's output", b.Stdout.String()+b.Stderr.String(), value)
	})

	t.Run("missing secret", func(t *testing.T) {
		dir := t.TempDir()
		dest, other := filepath.Join(dir, "shared", "missing"), filepath.Join(dir, "shared", "token")
		cfg := secWriteFile(t, filepath.Join(dir, "sidecar.hcl"), fmt.Sprintf(`
secret "token" {
  secretsmanager = "sidecar/token"
  file           = %q
}
secret "missing" {
  secretsmanager = "sidecar/missing"
  file           = %q
}
`, other, dest))
		b := secBerth(t, false, a.env(""), "run", "-config", cfg)
		if code := b.Wait(60 * time.Second); code != 69 {
			t.Fatalf("want exit 69, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), value))
		}
		lines := secBerthLines(b.Stderr.String())
		if len(lines) != 1 || !strings.Contains(lines[0], `secret "missing"`) {
			t.Errorf(`want one berth: line naming secret "missing", have %q`, lines)
		}
		for _, p := range []string{dest, other} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("want no file written when a block fails (%s: %v)", p, err)
			}
		}
	})
}

// TestSecretsRefresh: a refreshable block rewrites its file when the secret gets a new version and signals
// the main command (on_change = "signal:SIGHUP").
func TestSecretsRefresh(t *testing.T) {
	app := harness.TestApp(t)
	a := secStartAWS(t)
	a.Secret(t, "rot/token", "token-version-one")
	dir := t.TempDir()
	dest, log := filepath.Join(dir, "secrets", "token"), filepath.Join(dir, "main.log")
	cfg := secWriteFile(t, filepath.Join(dir, "berth.hcl"), fmt.Sprintf(`
secret "rot" {
  secretsmanager = "rot/token"
  file           = %q
  refresh        = "1s"
  on_change      = "signal:SIGHUP"
}
`, dest))
	b := secBerth(t, false, a.env(""), "run", "-config", cfg, "--", app, "-trap", "HUP", "-exit-on", "TERM:0", "-log", log)
	harness.WaitFile(t, log, "ready", 60*time.Second)
	if data, err := os.ReadFile(dest); err != nil || string(data) != "token-version-one" {
		t.Fatalf("want the first version in %s before the main command starts (%v)", dest, err)
	}
	if data, _ := os.ReadFile(log); strings.Contains(string(data), "signal HUP") {
		t.Fatal("SIGHUP before the secret changed")
	}
	a.PutSecret(t, "rot/token", "token-version-two")
	// waited on here rather than with harness.WaitFile, which would print the file (a secret) on failure
	if !harness.Within(30*time.Second, func() bool { data, _ := os.ReadFile(dest); return string(data) == "token-version-two" }) {
		t.Fatalf("%s was not rewritten with the new version within 30s", dest)
	}
	harness.WaitFile(t, log, "signal HUP", 30*time.Second)
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("want the rewritten file with mode 0400, have %v (%v)", fi, err)
	}
	b.Signal(syscall.SIGTERM)
	if code := b.Wait(60 * time.Second); code != 0 {
		t.Fatalf("want exit 0, have %d\nstderr:\n%s", code, secScrub(b.Stderr.String(), "token-version-one", "token-version-two"))
	}
	secNoValues(t, "berth's output", b.Stdout.String()+b.Stderr.String(), "token-version-one", "token-version-two")
}

var secResolvedRE = regexp.MustCompile(`secrets resolved.*duration=([0-9.]+[a-zµ]+)`)

// TestSecretsBench measures `berth run -config c.hcl -- true` resolving 50 env references over 5 secrets,
// with the default worker pool and with secrets { concurrency = 1 }, against moto directly and through a
// proxy adding 20 ms per request (a WAN round trip to the AWS API). Run by bench/secrets.sh; skipped unless
// BERTH_BENCH=1. With BERTH_BENCH_OUT it writes a markdown table there.
func TestSecretsBench(t *testing.T) {
	if os.Getenv("BERTH_BENCH") != "1" {
		t.Skip("set BERTH_BENCH=1 (bench/secrets.sh)")
	}
	runs := 15
	a := secStartAWS(t)
	env, _ := secFanout(t, a, "bench")
	slow := harness.StartAWSProxy(t, a.moto.URL)
	slow.SetDelay(20 * time.Millisecond)
	dir := t.TempDir()
	cfgDefault := secWriteFile(t, filepath.Join(dir, "default.hcl"), "# default concurrency (8)\n")
	cfgSeq := secWriteFile(t, filepath.Join(dir, "seq.hcl"), "secrets {\n  concurrency = 1\n}\n")

	type result struct{ wall, resolve []time.Duration }
	measure := func(endpoint, cfg string) (time.Duration, time.Duration) {
		var r result
		for i := 0; i < runs+1; i++ {
			start := time.Now()
			b := secBerth(t, false, a.env(endpoint, env...), "run", "-config", cfg, "-log-level", "debug", "--", "true")
			if code := b.Wait(60 * time.Second); code != 0 {
				t.Fatalf("exit %d: %s", code, b.Stderr.String())
			}
			wall := time.Since(start)
			m := secResolvedRE.FindStringSubmatch(b.Stderr.String())
			if m == nil {
				t.Fatalf("no 'secrets resolved ... duration=' line at debug level:\n%s", b.Stderr.String())
			}
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				continue // warm-up
			}
			r.wall, r.resolve = append(r.wall, wall), append(r.resolve, d)
		}
		return secMedian(r.wall), secMedian(r.resolve)
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "## Secrets resolution: 50 env references over 5 Secrets Manager secrets (median of %d runs)\n\n", runs)
	fmt.Fprintf(&tbl, "`berth run -config c.hcl -- true` against moto_server; \"resolve\" is berth's own debug-logged resolution time, \"wall\" the whole process. Each secret is fetched once (5 GetSecretValue calls).\n\n")
	fmt.Fprintf(&tbl, "| endpoint | concurrency 8 (default): resolve / wall ms | concurrency 1 (sequential): resolve / wall ms | sequential ÷ parallel (resolve) |\n|---|---|---|---|\n")
	for _, e := range []struct{ name, url string }{{"moto direct", a.moto.URL}, {"moto + 20 ms per request", slow.URL}} {
		pw, pr := measure(e.url, cfgDefault)
		sw, sr := measure(e.url, cfgSeq)
		fmt.Fprintf(&tbl, "| %s | %.1f / %.1f | %.1f / %.1f | %.2f |\n", e.name, secMs(pr), secMs(pw), secMs(sr), secMs(sw), float64(sr)/float64(pr))
	}
	tbl.WriteString("\nOn loopback moto answers each call in about a millisecond, so the resolution time is mostly loading the SDK configuration and the pool gains little; the 20 ms row is the shape of a real AWS region, where the five fetches overlap.\n\n")
	t.Log("\n" + tbl.String())
	if p := os.Getenv("BERTH_BENCH_OUT"); p != "" {
		if err := os.WriteFile(p, []byte(tbl.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func secMedian(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func secMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
