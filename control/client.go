package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"
)

// Client timeouts. A reload restarts jobs and may wait for their stop timeouts; maintenance talks to Consul.
const (
	dialTimeout        = 2 * time.Second
	queryTimeout       = 10 * time.Second
	maintenanceTimeout = 30 * time.Second
	reloadTimeout      = 60 * time.Second
	// maxResponseBytes bounds what the client reads; a status document of a busy berth is a few KiB.
	maxResponseBytes = 16 << 20
)

// Client talks to a running berth over its control socket. It is safe for concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the control socket at path (DefaultSocket when empty). It does not connect yet.
func NewClient(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	dialer := &net.Dialer{Timeout: dialTimeout}
	transport := &http.Transport{
		// Proxy stays nil: HTTP_PROXY in a container's environment must not capture unix-socket requests.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: transport}}
}

// Socket returns the path of the control socket.
func (c *Client) Socket() string { return c.socket }

// Status returns berth's status document (GET /v1/status).
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	code, body, err := c.do(ctx, queryTimeout, http.MethodGet, "/v1/status", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, apiError(code, body)
	}
	return body, nil
}

// Health reports whether berth is healthy (GET /v1/health: 200 healthy, 503 unhealthy) with the detail
// document, usually a HealthReport.
func (c *Client) Health(ctx context.Context) (bool, json.RawMessage, error) {
	code, body, err := c.do(ctx, queryTimeout, http.MethodGet, "/v1/health", nil)
	if err != nil {
		return false, nil, err
	}
	switch code {
	case http.StatusOK:
		return true, body, nil
	case http.StatusServiceUnavailable:
		return false, body, nil
	default:
		return false, nil, apiError(code, body)
	}
}

// Reload asks berth to re-read its configuration (POST /v1/reload). A configuration berth rejected (the old one
// keeps running) is an *APIError with Rejected() true.
func (c *Client) Reload(ctx context.Context) error {
	return c.post(ctx, reloadTimeout, "/v1/reload", struct{}{})
}

// Maintenance puts berth's services into or out of maintenance mode (POST /v1/maintenance).
func (c *Client) Maintenance(ctx context.Context, on bool, reason string) error {
	return c.post(ctx, maintenanceTimeout, "/v1/maintenance", maintenanceRequest{Enable: &on, Reason: reason})
}

// PutEnv sets an environment variable for the next start of berth's jobs (POST /v1/env).
func (c *Client) PutEnv(ctx context.Context, key, value string) error {
	return c.post(ctx, queryTimeout, "/v1/env", envRequest{Key: key, Value: &value})
}

// PutMetric records a gauge in berth's telemetry (POST /v1/metric).
func (c *Client) PutMetric(ctx context.Context, name string, value float64) error {
	return c.post(ctx, queryTimeout, "/v1/metric", metricRequest{Name: name, Value: &value})
}

func (c *Client) post(ctx context.Context, timeout time.Duration, path string, req any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err) // NaN or ±Inf in PutMetric
	}
	code, resp, err := c.do(ctx, timeout, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return apiError(code, resp)
	}
	return nil
}

// do performs one request and returns the status and the body. Transport failures are *UnreachableError.
func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, body []byte) (int, json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// The host is ignored by the dialer; "berth" only makes the URL well-formed.
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	// A deadline that passes after the connection was made means berth runs but did not answer in time.
	var connected atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	}))
	resp, err := c.http.Do(req)
	if err != nil {
		u := &UnreachableError{Socket: c.socket, Err: err}
		if connected.Load() && errors.Is(err, context.DeadlineExceeded) {
			u.After = timeout
		}
		return 0, nil, u
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return 0, nil, &UnreachableError{Socket: c.socket, Err: err}
	}
	if len(data) > maxResponseBytes {
		return 0, nil, fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponseBytes)
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusServiceUnavailable {
		if !json.Valid(data) {
			return 0, nil, fmt.Errorf("%s %s: answer is not JSON (is %s a berth control socket?)", method, path, c.socket)
		}
	}
	return resp.StatusCode, bytes.TrimSpace(data), nil
}

// apiError builds the error of a non-success answer from its {"error": "..."} body.
func apiError(code int, body []byte) error {
	var e errorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(code)
		}
		return &APIError{StatusCode: code, Message: fmt.Sprintf("HTTP %d: %s", code, msg)}
	}
	return &APIError{StatusCode: code, Message: e.Error}
}

// isUnreachable reports whether err means berth could not be reached at all.
func isUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
