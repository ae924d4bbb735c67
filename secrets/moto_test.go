package secrets

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/berth-dev/berth/tests/harness"
)

// awsEnv is a moto_server with SDK clients for seeding it. The process environment points the SDK default
// chain at moto (t.Setenv), so the code under test uses config.LoadDefaultConfig as in production.
type awsEnv struct {
	moto *harness.Moto
	sm   *secretsmanager.Client
	ssm  *ssm.Client
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
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &awsEnv{
		moto: m,
		sm:   secretsmanager.NewFromConfig(cfg),
		ssm:  ssm.NewFromConfig(cfg),
		s3:   s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		kms:  kms.NewFromConfig(cfg),
	}
}

// secret creates a Secrets Manager string secret and returns its ARN and version id.
func (a *awsEnv) secret(t testing.TB, name, value string) (arn, version string) {
	t.Helper()
	out, err := a.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value})
	if err != nil {
		t.Fatal(err)
	}
	return *out.ARN, *out.VersionId
}

// putSecret adds a version (AWSCURRENT unless stages are given) and returns its id.
func (a *awsEnv) putSecret(t testing.TB, name, value string, stages ...string) string {
	t.Helper()
	out, err := a.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &value, VersionStages: stages})
	if err != nil {
		t.Fatal(err)
	}
	return *out.VersionId
}

func (a *awsEnv) param(t testing.TB, name, value string, secure bool) {
	t.Helper()
	typ := ssmtypes.ParameterTypeString
	if secure {
		typ = ssmtypes.ParameterTypeSecureString
	}
	if _, err := a.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: &name, Value: &value, Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

func (a *awsEnv) key(t testing.TB) string {
	t.Helper()
	out, err := a.kms.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return *out.KeyMetadata.KeyId
}

// recorder is a reverse proxy in front of moto that counts requests by X-Amz-Target (or "METHOD /path" for
// REST services) and can answer the first requests of a target with an injected error.
type recorder struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
	// inject, when set, may answer a request instead of moto: it gets the target and how many requests for
	// it came before, and returns (status, body) or status 0 to pass the request on.
	inject func(target string, n int) (int, string)
}

func startRecorder(t testing.TB, motoURL string) *recorder {
	t.Helper()
	u, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{counts: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if target == "" {
			target = r.Method + " " + r.URL.Path
		}
		rec.mu.Lock()
		n := rec.counts[target]
		rec.counts[target]++
		inject := rec.inject
		rec.mu.Unlock()
		if inject != nil {
			if status, body := inject(target, n); status != 0 {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(body))
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

func (r *recorder) count(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[target]
}

func (r *recorder) setInject(f func(target string, n int) (int, string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inject = f
}

// envMap turns KEY=VALUE pairs into a map (last wins).
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
