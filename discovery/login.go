package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/consul/api"
)

// ACL login with the task's IAM role (consul { login { … } }): berth signs an STS GetCallerIdentity request
// with the task role's credentials (the login data of HashiCorp's consul-awsauth, see awsiam.go), trades it for an ACL token
// at POST /v1/acl/login (Consul's aws-iam auth method), uses that token for every request, and logs out when
// Run returns, at the end of shutdown.

// ExitDenied is berth's exit code for access denied (README "Exit codes").
const ExitDenied = 77

// DeniedError reports a login Consul refused (the auth method or its binding rules deny this role).
type DeniedError struct{ Err error }

func (e *DeniedError) Error() string { return "consul login denied: " + e.Err.Error() }
func (e *DeniedError) Unwrap() error { return e.Err }

// ExitCode maps the error to berth's exit code 77.
func (e *DeniedError) ExitCode() int { return ExitDenied }

// LoginConfig is the `login {}` block inside `consul {}`.
type LoginConfig struct {
	// Method is the name of the Consul auth method (type aws-iam).
	Method string
	// Meta is the token's meta (Consul puts it into the token description).
	Meta map[string]string
	// STSEndpoint is the STS endpoint the request is signed for ("" = the SDK's default for STSRegion). The
	// auth method's STSEndpoint must be the same.
	STSEndpoint string
	// STSRegion is the region of the signature ("" = AWS_REGION, else us-east-1).
	STSRegion string
	// ServerIDHeaderValue is the auth method's ServerIDHeaderValue, when it requires one.
	ServerIDHeaderValue string
	// IncludeIAMEntity signs the IAM GetRole/GetUser request too (the auth method's EnableIAMEntityDetails).
	IncludeIAMEntity bool
}

// tokenTransport puts the login token on every request to Consul.
type tokenTransport struct {
	base  http.RoundTripper
	token *atomic.Pointer[string]
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok := t.token.Load(); tok != nil && *tok != "" && r.Header.Get("X-Consul-Token") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Consul-Token", *tok)
	}
	return t.base.RoundTrip(r)
}

// loginToken returns the token from the last login ("" before it, and after a logout).
func (a *Agent) loginToken() string {
	if p := a.token.Load(); p != nil {
		return *p
	}
	return ""
}

// login logs in when the config asks for it and there is no token yet. A refusal is a *DeniedError; Consul
// unreachable or without a leader ("No cluster leader", 500) is an unanswered-like error the caller retries.
func (a *Agent) login(ctx context.Context) error {
	lc := a.cfg.Consul.Login
	if lc == nil || a.loginToken() != "" {
		return nil
	}
	a.loginMu.Lock()
	defer a.loginMu.Unlock()
	if a.loginToken() != "" {
		return nil
	}
	data, err := iamLoginData(ctx, lc, nil, a.log.Named("aws"))
	if err != nil {
		return fmt.Errorf("consul login: %w", err)
	}
	bearer, err := json.Marshal(data)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.RequestTimeout)
	defer cancel()
	tok, _, err := a.client.ACL().Login(&api.ACLLoginParams{AuthMethod: lc.Method, BearerToken: string(bearer),
		Meta: lc.Meta}, (&api.WriteOptions{}).WithContext(rctx))
	a.observe(ctx, err)
	if err != nil {
		if denied(err) {
			return &DeniedError{Err: fmt.Errorf("auth method %q: %w", lc.Method, err)}
		}
		return fmt.Errorf("consul login with auth method %q: %w", lc.Method, describe(err, a.cfg.Consul.RequestTimeout))
	}
	a.token.Store(&tok.SecretID)
	a.log.Info("logged in to consul", "method", lc.Method, "accessor", tok.AccessorID)
	return nil
}

// registerLogin logs in before the first registration: with consul.required retried until consul.timeout
// (then exit 69), a refusal at once (exit 77); otherwise one attempt, and registration retries it.
func (a *Agent) registerLogin(ctx context.Context) error {
	if a.cfg.Consul.Login == nil {
		return nil
	}
	if !a.cfg.Consul.Required {
		if err := a.login(ctx); err != nil {
			a.log.Warn("consul login failed; the application starts anyway and berth keeps trying", "error", err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Consul.Timeout)
	defer cancel()
	err := a.loginUntil(ctx)
	var d *DeniedError
	switch {
	case err == nil, errors.As(err, &d):
		return err
	}
	return &UnavailableError{What: "consul", Err: fmt.Errorf("required = true, no login within %s: %w", a.cfg.Consul.Timeout, err)}
}

// loginUntil is login for Register: retried with back-off while Consul does not answer or has no leader,
// until ctx ends; a refusal ends it at once.
func (a *Agent) loginUntil(ctx context.Context) error {
	b := backoff{min: a.cfg.Consul.RetryMin, max: a.cfg.Consul.RetryMax}
	for {
		err := a.login(ctx)
		var d *DeniedError
		if err == nil || errors.As(err, &d) {
			return err
		}
		a.log.Warn("consul login failed; retrying", "error", err)
		if !sleep(ctx, b.next()) {
			return err
		}
	}
}

// tokenGone drops a token Consul no longer knows (expired by the auth method's max_token_ttl, or deleted), so
// the next registration attempt logs in again. Some calls (session renewal) report a 403 without Consul's
// message; the token's own read tells "ACL not found" from a policy that denies the call, which a new login
// would not fix (and would only pile up tokens).
func (a *Agent) tokenGone(err error) bool {
	if a.cfg.Consul.Login == nil || err == nil || a.loginToken() == "" {
		return false
	}
	msg := err.Error()
	gone := strings.Contains(msg, "ACL not found")
	if !gone && strings.Contains(msg, "403") {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Consul.RequestTimeout)
		_, _, rerr := a.client.ACL().TokenReadSelf((&api.QueryOptions{}).WithContext(ctx))
		cancel()
		gone = rerr != nil && strings.Contains(rerr.Error(), "ACL not found")
	}
	if !gone {
		return false
	}
	if a.token.Swap(nil) != nil {
		a.log.Warn("consul login token no longer valid; logging in again", "error", firstLine(msg))
	}
	return true
}

// logout destroys the login token (end of shutdown, when Run returns). Bounded by RequestTimeout.
func (a *Agent) logout() {
	tok := a.loginToken()
	if tok == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Consul.RequestTimeout)
	defer cancel()
	if _, err := a.client.ACL().Logout((&api.WriteOptions{Token: tok}).WithContext(ctx)); err != nil {
		a.log.Warn("consul logout failed; the token stays until the auth method's max_token_ttl", "error", err)
		return
	}
	a.token.Store(nil)
	a.log.Info("logged out of consul")
}

// denied reports whether Consul refused the login itself, as opposed to not answering or having no leader.
// Consul answers an aws-iam refusal with 500, like "No cluster leader", so the message decides: a principal
// the auth method does not trust, no matching binding rule, or STS refusing the signed request (a 403 from
// STS: bad, expired or unsigned credentials) is a refusal; anything else is retried.
func denied(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusForbidden || se.Code == http.StatusUnauthorized) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"is not trusted", "Permission denied", "error code 403", "InvalidClientTokenId",
		"SignatureDoesNotMatch", "ExpiredToken", "AccessDenied", "Unexpected response code: 403"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
