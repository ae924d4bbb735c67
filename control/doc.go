// Package control is berth's control plane: HTTP/JSON over a unix socket, served by the running
// berth, and the client behind `berth ctl` and `berth health`.
//
// # Socket
//
// Config.Socket (flag -control-socket, env BERTH_CONTROL_SOCKET; default /var/run/berth.sock) with
// Config.Mode (default 0600: only berth's user may connect; there is no other authentication). Listen creates
// it so that start-up fails before the application is started:
//
//   - a socket file nobody answers on (left by a berth that was SIGKILLed) is removed and replaced;
//   - a socket that answers is an *InUseError, "another berth is running: control socket PATH is in use";
//   - any other file at the path is an error and is left untouched;
//   - the socket is bound in a private 0700 directory beside PATH, chmod-ed, then renamed into place, so it is
//     never reachable with the umask's permissions (when that temporary path would exceed the 107-byte socket
//     address limit berth binds at PATH directly and chmods);
//   - Run removes the file when it returns, unless another process has replaced it meanwhile.
//
// Two berths started at the same instant on the same path can race between the stale check and the rename;
// give each berth its own socket.
//
// Run serves until its context is done, then stops accepting, cancels the context of in-flight backend calls,
// waits at most Config.ShutdownTimeout (default 5s) for them and closes what is left: shutdown is bounded.
//
// # Endpoints
//
// Every answer is JSON, errors included: {"error": "..."} with the status below. Paths match exactly (404
// otherwise, never a redirect) and a wrong method is 405 with Allow. Request bodies are JSON objects of at most
// 64 KiB (413 above); unknown fields, missing required fields, trailing data and wrong types are 400.
//
//	GET  /v1/status       200, Backend.Status() — processes, pids, restarts, checks, registrations, secret
//	                      references with versions, never values; every field snake_case (README "Control
//	                      plane: berth ctl status" lists them)
//	GET  /v1/health       200 when healthy, 503 when not; body Backend.Health()'s detail (a HealthReport)
//	POST /v1/reload       body empty or {}; 200 {"ok":true}; 409 when the new config was rejected (the old one
//	                      keeps running); 500 on other failures
//	POST /v1/maintenance  {"enable":true,"reason":"deploy"}; "enable" is required; 200 {"ok":true}
//	POST /v1/env          {"key":"K","value":"V"}: set K for the next start of jobs; K must match
//	                      [A-Za-z_][A-Za-z0-9_]*, V must not contain NUL; 200 {"ok":true}
//	POST /v1/metric       {"name":"queue.depth","value":1.5}: record a gauge; the name must match
//	                      [A-Za-z0-9_.]+; 200 {"ok":true}
//
// Backend errors map to 400 (*InvalidError), 409 (*RejectedError), 503 (cancelled because berth is shutting
// down) or 500, and their text is sent to the client verbatim: backends must never put secret values in errors.
// The server itself never echoes or logs a putenv value, and its JSON decoding errors give positions and field
// names, never input.
//
// # Concurrency
//
// Requests are served concurrently and Status, Health, PutEnv and PutMetric may run in parallel. Reload calls
// are serialized: a reload arriving while another runs waits for it to finish and then runs itself (it is not
// coalesced and not answered 409, so `berth ctl reload` after an edit always applies that edit); a waiting
// request gives up with 503 when its client disconnects or berth shuts down. Maintenance calls are serialized
// the same way, independently of reloads. Backend calls that change state (reload, maintenance) get a context
// that ends at shutdown, not when the client hangs up, so a reload is never abandoned half-way by an
// interrupted `berth ctl`.
//
// # Client and CLI
//
// NewClient speaks to the socket with a 2s connect timeout, 10s per query, 30s for maintenance and 60s for
// reload, and never uses HTTP_PROXY. Transport failures are *UnreachableError; error answers are *APIError.
// An UnreachableError with After set is a berth that accepted the request but did not answer within the
// client's timeout: its message says so instead of suggesting berth is not running. Maintenance talks to
// Consul, which discovery bounds at its 5s request timeout, so a hung Consul makes `berth ctl maintenance`
// fail after about 5s with an error naming Consul, long before the client's 30s.
//
// RunCtl implements `berth ctl [-socket PATH] status | reload | maintenance on|off [-reason TEXT] |
// putenv KEY=VALUE | putmetric NAME=VALUE` (flags may also follow the command). status prints the document as
// indented JSON. Exit codes: 0 done, 1 berth answered with an error (a rejected reload prints why), 64 bad
// usage, 69 berth unreachable (the message names the socket).
//
// RunHealth implements `berth health [-socket PATH] [-json]`: 0 healthy, 1 unhealthy (the checks that are not
// passing are printed to stdout, one per line, where Docker keeps them in the health log), 64 bad usage, 69
// berth unreachable. Docker HEALTHCHECK and ECS healthCheck treat every non-zero code as unhealthy; 69 tells
// a human "berth is not there" apart from "berth says unhealthy".
//
// Both write each error as one line on stderr prefixed "berth: ". The caller passes the socket from
// -control-socket / BERTH_CONTROL_SOCKET; -socket overrides it.
package control
