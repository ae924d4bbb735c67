package harness

import (
	"context"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/time/rate"
)

// AWS holds SDK clients a test seeds moto with. The clients get an explicit configuration (us-east-1, the
// dummy credentials of Moto.Env), so building them reads and changes nothing in the process environment:
// what the code under test sees stays up to the test.
type AWS struct {
	// Config is the configuration the clients were built from, for a client with other options (another
	// region).
	Config         aws.Config
	SecretsManager *secretsmanager.Client
	SSM            *ssm.Client
	// S3 uses path-style addressing, which moto needs for buckets on 127.0.0.1.
	S3  *s3.Client
	KMS *kms.Client
}

// AWSClients returns clients for the AWS API at endpoint (a moto_server, or an AWSProxy in front of one).
func AWSClients(t testing.TB, endpoint string) *AWS {
	t.Helper()
	if endpoint == "" {
		t.Fatal("harness: AWSClients needs an endpoint (an empty one would send the requests to AWS itself)")
	}
	cfg := aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		}),
	}
	return &AWS{
		Config:         cfg,
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		SSM:            ssm.NewFromConfig(cfg),
		S3:             s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		KMS:            kms.NewFromConfig(cfg),
	}
}

// Secret creates a Secrets Manager string secret and returns its ARN and version id.
func (a *AWS) Secret(t testing.TB, name, value string) (arn, version string) {
	t.Helper()
	out, err := a.SecretsManager.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value})
	if err != nil {
		t.Fatal(err)
	}
	return *out.ARN, *out.VersionId
}

// PutSecret adds a version (AWSCURRENT unless stages are given) and returns its id.
func (a *AWS) PutSecret(t testing.TB, name, value string, stages ...string) string {
	t.Helper()
	out, err := a.SecretsManager.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: &name, SecretString: &value, VersionStages: stages})
	if err != nil {
		t.Fatal(err)
	}
	return *out.VersionId
}

// Param creates or overwrites an SSM parameter, a SecureString when secure.
func (a *AWS) Param(t testing.TB, name, value string, secure bool) {
	t.Helper()
	typ := ssmtypes.ParameterTypeString
	if secure {
		typ = ssmtypes.ParameterTypeSecureString
	}
	if _, err := a.SSM.PutParameter(t.Context(), &ssm.PutParameterInput{Name: &name, Value: &value, Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// Key creates a KMS key and returns its id.
func (a *AWS) Key(t testing.TB) string {
	t.Helper()
	out, err := a.KMS.CreateKey(t.Context(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return *out.KeyMetadata.KeyId
}

// AWSProxy is a reverse proxy in front of moto that counts requests by X-Amz-Target (or "METHOD /path" for
// REST services), can delay every request (a WAN round trip), and can answer a request itself with an
// injected error (throttling, 5xx), a connection reset (InjectReset) or no answer at all (InjectStall) —
// everything else is moto's real answer.
type AWSProxy struct {
	URL string

	stop   chan struct{} // closed at cleanup: releases the requests a stall holds
	mu     sync.Mutex
	counts map[string]int
	delay  time.Duration
	inject func(target string, n int) (status int, body string)
}

// StartAWSProxy starts an AWSProxy in front of motoURL; t.Cleanup stops it.
func StartAWSProxy(t testing.TB, motoURL string) *AWSProxy {
	t.Helper()
	u, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &AWSProxy{counts: map[string]int{}, stop: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client that gave up (its attempt deadline) is not worth a line
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if target == "" {
			target = r.Method + " " + r.URL.Path
		}
		p.mu.Lock()
		n := p.counts[target]
		p.counts[target]++
		inject, delay := p.inject, p.delay
		p.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		if inject != nil {
			switch status, body := inject(target, n); status {
			case 0:
			case InjectReset:
				resetConn(w)
				return
			case InjectStall:
				select { // read, never answered: the client's own deadline is all that ends it
				case <-r.Context().Done():
				case <-p.stop:
				}
				return
			default:
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(body))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(p.stop)
		srv.CloseClientConnections()
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// Statuses an inject function may return for faults below HTTP.
const (
	// InjectReset drops the connection with a TCP RST instead of answering (ECONNRESET for the client).
	InjectReset = -1
	// InjectStall reads the request and never answers, until the client gives up or the proxy stops.
	InjectStall = -2
)

// resetConn closes the request's connection with SO_LINGER 0, so the client sees a reset, not an orderly close.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Count is how many requests for target (an X-Amz-Target, or "METHOD /path") the proxy has seen, injected
// answers included.
func (p *AWSProxy) Count(target string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[target]
}

// Counts returns a copy of every target's count.
func (p *AWSProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// SetInject makes the proxy answer a request itself when f returns a status other than 0 (an HTTP status
// with body as the answer, or InjectReset / InjectStall): f gets the target and how many requests for it came
// before. nil passes every request on to moto.
func (p *AWSProxy) SetInject(f func(target string, n int) (status int, body string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inject = f
}

// ThrottlingException is what AWS JSON services (SSM, Secrets Manager, KMS) answer, with HTTP 400, to a
// request beyond a rate quota.
const ThrottlingException = `{"__type":"ThrottlingException","message":"Rate exceeded"}`

// Quota is a token bucket a proxy enforces on some targets (see AWSProxy.Throttle).
type Quota struct {
	lim               *rate.Limiter
	served, throttled atomic.Int64
}

// Served is how many requests the quota let through to moto.
func (q *Quota) Served() int64 { return q.served.Load() }

// Throttled is how many requests the quota answered with ThrottlingException.
func (q *Quota) Throttled() int64 { return q.throttled.Load() }

// Throttle makes the proxy enforce a quota of perSecond requests a second (a token bucket holding burst)
// shared by targets (X-Amz-Target values, e.g. "AmazonSSM.GetParameters"), as AWS enforces its API rate
// quotas per account and region: a request beyond it is answered 400 ThrottlingException and never reaches
// moto. It replaces any SetInject function; SetInject(nil) lifts it.
func (p *AWSProxy) Throttle(perSecond float64, burst int, targets ...string) *Quota {
	q := &Quota{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
	p.SetInject(func(target string, _ int) (int, string) {
		if !slices.Contains(targets, target) {
			return 0, ""
		}
		if !q.lim.Allow() {
			q.throttled.Add(1)
			return 400, ThrottlingException
		}
		q.served.Add(1)
		return 0, ""
	})
	return q
}

// SetDelay delays every request by d before it is answered (or injected).
func (p *AWSProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}
