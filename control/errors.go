package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// RejectedError is returned by a Backend to refuse a request without changing anything — typically a reload
// whose new configuration does not load (the old one keeps running). The server answers 409 Conflict.
type RejectedError struct {
	// Err says why; it is sent to the client verbatim, so it must not contain secret values.
	Err error
}

func (e *RejectedError) Error() string { return e.Err.Error() }

func (e *RejectedError) Unwrap() error { return e.Err }

// InvalidError is returned by a Backend when the request itself is wrong (for example a metric the backend
// does not accept). The server answers 400 Bad Request.
type InvalidError struct {
	// Err says why; it is sent to the client verbatim, so it must not contain secret values.
	Err error
}

func (e *InvalidError) Error() string { return e.Err.Error() }

func (e *InvalidError) Unwrap() error { return e.Err }

// InUseError is returned by Listen when the control socket answers: another berth (or something else) is
// serving on it, and berth refuses to take it over.
type InUseError struct {
	// Socket is the path of the control socket.
	Socket string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("another berth is running: control socket %s is in use", e.Socket)
}

// UnreachableError is returned by the Client when berth cannot be reached over the socket at all: the socket
// does not exist, nobody listens, permission is denied, or berth did not answer in time. RunCtl and RunHealth
// exit 69 for it.
type UnreachableError struct {
	// Socket is the path of the control socket.
	Socket string
	// Err is the transport error.
	Err error
	// After is set when berth accepted the request but did not answer within this client timeout: berth
	// runs, and is busy or wedged.
	After time.Duration
}

func (e *UnreachableError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("berth at control socket %s did not answer within %s", e.Socket, e.After)
	}
	return fmt.Sprintf("cannot reach berth at control socket %s: %s", e.Socket, describeTransportError(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// APIError is an error answer of berth's control plane: the HTTP status and the "error" field of the body.
type APIError struct {
	// StatusCode is the HTTP status code (400, 409, 500, ...).
	StatusCode int
	// Message is the server's error text.
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Rejected reports whether berth refused the request and kept its state (409 Conflict).
func (e *APIError) Rejected() bool { return e.StatusCode == 409 }

// describeTransportError strips the layers net/http and net add ("Post \"http://berth/v1/reload\": dial unix
// /var/run/berth.sock: connect: ...") so a one-line message names the socket once.
func describeTransportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return oneLine(err.Error())
}

// oneLine flattens a multi-line message (a reload rejected for several config errors) for a one-line report.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
