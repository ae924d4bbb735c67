package secrets

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/berth-dev/berth/tests/harness"
)

// awsEnv is a moto_server with the harness's SDK clients for seeding it. The process environment points the
// SDK default chain at moto (t.Setenv), so the code under test uses config.LoadDefaultConfig as in
// production; the seeding clients keep talking to moto itself even when a test later points
// AWS_ENDPOINT_URL at a proxy.
type awsEnv struct {
	*harness.AWS
	moto *harness.Moto
	sm   *secretsmanager.Client
	s3   *s3.Client
	kms  *kms.Client
}

func startAWS(t testing.TB) *awsEnv {
	t.Helper()
	m := harness.StartMoto(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c := harness.AWSClients(t, m.URL)
	return &awsEnv{AWS: c, moto: m, sm: c.SecretsManager, s3: c.S3, kms: c.KMS}
}

// The lower-case helpers are this package's names for harness.AWS's.

func (a *awsEnv) secret(t testing.TB, name, value string) (arn, version string) {
	t.Helper()
	return a.Secret(t, name, value)
}

func (a *awsEnv) putSecret(t testing.TB, name, value string, stages ...string) string {
	t.Helper()
	return a.PutSecret(t, name, value, stages...)
}

func (a *awsEnv) param(t testing.TB, name, value string, secure bool) {
	t.Helper()
	a.Param(t, name, value, secure)
}

func (a *awsEnv) key(t testing.TB) string {
	t.Helper()
	return a.Key(t)
}

// recorder is harness.AWSProxy (request counts by X-Amz-Target, injected errors) under this package's names.
type recorder struct{ *harness.AWSProxy }

func startRecorder(t testing.TB, motoURL string) recorder {
	t.Helper()
	return recorder{harness.StartAWSProxy(t, motoURL)}
}

func (r recorder) count(target string) int { return r.Count(target) }

func (r recorder) setInject(f func(target string, n int) (int, string)) { r.SetInject(f) }

// envMap turns KEY=VALUE pairs into a map (last wins).
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
