package discovery

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// newClient builds the Consul client: api.DefaultConfig() (CONSUL_HTTP_* variables) overridden by every
// non-empty field of the `consul {}` block. c has its defaults applied. Every call site gives its request a
// context deadline (RequestTimeout, or blockingDeadline for a blocking query); the transport's
// response-header timeout is the net under them, so no request to a Consul that accepts connections and never
// answers can outlive the longest blocking query.
func newClient(c ConsulConfig) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Transport != nil {
		cfg.Transport.ResponseHeaderTimeout = c.blockingDeadline(c.BlockingWait)
	}
	if c.Address != "" {
		cfg.Address = c.Address
	}
	if c.Scheme != "" {
		cfg.Scheme = c.Scheme
	}
	if c.Token != "" {
		cfg.Token = c.Token
	}
	if c.TokenFile != "" {
		cfg.TokenFile = c.TokenFile
	}
	if c.Datacenter != "" {
		cfg.Datacenter = c.Datacenter
	}
	if c.CACert != "" {
		cfg.TLSConfig.CAFile = c.CACert
	}
	if c.CAPath != "" {
		cfg.TLSConfig.CAPath = c.CAPath
	}
	if c.ClientCert != "" {
		cfg.TLSConfig.CertFile = c.ClientCert
	}
	if c.ClientKey != "" {
		cfg.TLSConfig.KeyFile = c.ClientKey
	}
	if c.TLSServerName != "" {
		cfg.TLSConfig.Address = c.TLSServerName
	}
	if c.InsecureSkipVerify {
		cfg.TLSConfig.InsecureSkipVerify = true
	}
	if c.WrapTransport != nil && !strings.HasPrefix(cfg.Address, "unix://") {
		hc, err := api.NewHttpClient(cfg.Transport, cfg.TLSConfig)
		if err != nil {
			return nil, err
		}
		hc.Transport = c.WrapTransport(hc.Transport)
		cfg.HttpClient = hc
	}
	return api.NewClient(cfg)
}

// blockingDeadline is how long a blocking query with this wait may take: the wait, Consul's jitter of up to
// wait/16, and RequestTimeout as the margin for the answer itself. A plain query (wait 0) gets RequestTimeout.
func (c ConsulConfig) blockingDeadline(wait time.Duration) time.Duration {
	return wait + wait/16 + c.RequestTimeout
}

// unanswered reports whether err means Consul did not answer at all (refused, reset, timed out, or a proxy
// or load balancer in between answering 502/504 for it) rather than answering with an error status. A
// cancellation is neither: berth gave up on the request itself.
func unanswered(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusBadGateway || se.Code == http.StatusGatewayTimeout
	}
	return true
}

// describe shortens a request error for logs and status: a timeout says so with its bound instead of the
// whole URL net/http puts in front of "context deadline exceeded".
func describe(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return timeoutError{timeout}
	}
	return err
}

// short is err for status and one-line logs: a timeout or the transport error without the request's URL.
func short(err error) string {
	var te timeoutError
	switch {
	case errors.As(err, &te):
		return te.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return firstLine(err.Error())
}

// timeoutError is a request Consul did not answer within its deadline.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string { return "no answer within " + e.d.String() }

func (e timeoutError) Unwrap() error { return context.DeadlineExceeded }

// backoff yields exponentially growing waits with ±20% jitter, so a fleet of tasks that lost the same agent
// does not retry in lock-step.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	j := time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
	return j
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx is done; it reports whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isNotFound reports whether Consul answered that the check or service is unknown to the agent, which means
// the agent lost our registration (agent restart, dev mode, manual deregistration).
func isNotFound(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		if se.Code == http.StatusNotFound {
			return true
		}
		b := strings.ToLower(se.Body)
		return strings.Contains(b, "unknown check") || strings.Contains(b, "unknown service") ||
			strings.Contains(b, "does not have associated ttl")
	}
	return false
}

// splitHostPort is net.SplitHostPort that also accepts ":port".
func splitHostPort(s string) (string, string, error) {
	return net.SplitHostPort(s)
}
