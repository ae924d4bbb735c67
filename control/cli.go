package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Exit codes of RunCtl and RunHealth (README "Exit codes"; Docker and ECS treat any non-zero health code as unhealthy).
const (
	exitOK          = 0
	exitFailure     = 1  // berth answered with an error, or is unhealthy
	exitUsage       = 64 // bad arguments
	exitUnavailable = 69 // berth cannot be reached over the socket
)

// Check statuses in a HealthReport.
const (
	CheckPassing  = "passing"
	CheckWarning  = "warning"
	CheckCritical = "critical"
)

// HealthReport is the detail document a Backend should return from Health; `berth health` prints the checks
// that are not passing.
type HealthReport struct {
	// Healthy repeats the verdict: every check and every service job is healthy.
	Healthy bool `json:"healthy"`
	// Checks lists every check, including pseudo-checks for service jobs ("job:proxy").
	Checks []CheckResult `json:"checks"`
}

// CheckResult is the latest result of one check.
type CheckResult struct {
	// Name identifies the check, e.g. "service:web:http" or "job:proxy".
	Name string `json:"name"`
	// Status is CheckPassing, CheckWarning or CheckCritical.
	Status string `json:"status"`
	// Output is the check's last output (HTTP status line, error, command output).
	Output string `json:"output,omitempty"`
}

const ctlUsage = `usage: berth ctl [-socket PATH] COMMAND
  status                              print berth's status as JSON
  reload                              re-read the config file; restart only what changed
  maintenance on|off [-reason TEXT]   put this berth's services into or out of maintenance
  putenv KEY=VALUE                    set an environment variable for the next start of jobs
  putmetric NAME=VALUE                record a gauge
The socket defaults to -control-socket / BERTH_CONTROL_SOCKET (/var/run/berth.sock).
`

const healthUsage = `usage: berth health [-socket PATH] [-json]
Exit 0 when every check and every service job of the running berth is healthy, 1 when not, 69 when berth
cannot be reached. Prints the failing checks; -json prints the whole health document.
`

// RunCtl runs `berth ctl ARGS...` (args exclude "ctl") against the control socket and returns the exit code:
// 0 done, 1 berth answered with an error (a rejected reload prints why), 64 bad usage, 69 berth unreachable.
// Errors are one line on stderr, prefixed "berth: ".
func RunCtl(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) int {
	fs, sockp := newFlagSet("ctl", socket)
	reason := fs.String("reason", "", "maintenance reason (with maintenance on)")
	rest, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, ctlUsage)
		return exitOK
	}
	if err != nil {
		return failf(stderr, exitUsage, "ctl: %v", err)
	}
	if len(rest) == 0 {
		return failf(stderr, exitUsage, "ctl: missing command (status, reload, maintenance, putenv, putmetric)")
	}
	cmd, rest := rest[0], rest[1:]
	if *reason != "" && cmd != "maintenance" {
		return failf(stderr, exitUsage, "ctl %s: -reason applies only to maintenance", cmd)
	}
	wantArgs := func(n int, form string) bool {
		if len(rest) != n {
			failf(stderr, exitUsage, "ctl %s: usage: berth ctl %s", cmd, form)
			return false
		}
		return true
	}
	c := NewClient(*sockp)

	switch cmd {
	case "status":
		if !wantArgs(0, "status") {
			return exitUsage
		}
		doc, err := c.Status(ctx)
		if err != nil {
			return failErr(stderr, "status", err)
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return failf(stderr, exitFailure, "status: berth answered malformed JSON: %v", err)
		}
		buf.WriteByte('\n')
		_, _ = stdout.Write(buf.Bytes())
		return exitOK

	case "reload":
		if !wantArgs(0, "reload") {
			return exitUsage
		}
		if err := c.Reload(ctx); err != nil {
			var api *APIError
			if errors.As(err, &api) && api.Rejected() {
				return failf(stderr, exitFailure, "reload rejected, the running configuration is unchanged: %s", oneLine(api.Message))
			}
			return failErr(stderr, "reload", err)
		}
		fmt.Fprintln(stdout, "reloaded")
		return exitOK

	case "maintenance":
		if !wantArgs(1, "maintenance on|off [-reason TEXT]") {
			return exitUsage
		}
		var on bool
		switch rest[0] {
		case "on":
			on = true
		case "off":
		default:
			return failf(stderr, exitUsage, "ctl maintenance: want on or off, not %q", rest[0])
		}
		if err := c.Maintenance(ctx, on, *reason); err != nil {
			return failErr(stderr, "maintenance", err)
		}
		fmt.Fprintln(stdout, "maintenance", rest[0])
		return exitOK

	case "putenv":
		if !wantArgs(1, "putenv KEY=VALUE") {
			return exitUsage
		}
		key, value, err := ParseEnvAssignment(rest[0])
		if err != nil {
			return failf(stderr, exitUsage, "ctl putenv: %v", err)
		}
		if err := c.PutEnv(ctx, key, value); err != nil {
			return failErr(stderr, "putenv", err)
		}
		fmt.Fprintln(stdout, "set", key)
		return exitOK

	case "putmetric":
		if !wantArgs(1, "putmetric NAME=VALUE") {
			return exitUsage
		}
		name, value, err := ParseMetricAssignment(rest[0])
		if err != nil {
			return failf(stderr, exitUsage, "ctl putmetric: %v", err)
		}
		if err := c.PutMetric(ctx, name, value); err != nil {
			return failErr(stderr, "putmetric", err)
		}
		fmt.Fprintln(stdout, "recorded", name)
		return exitOK

	default:
		return failf(stderr, exitUsage, "ctl: unknown command %q (want status, reload, maintenance, putenv, putmetric)", cmd)
	}
}

// RunHealth runs `berth health ARGS...` (args exclude "health"): exit 0 when berth is healthy, 1 when it is not
// (the failing checks are printed to stdout, where Docker keeps them in the container's health log) or answered
// with an error, 64 on bad usage, and 69 when berth cannot be reached — any non-zero code is "unhealthy" to
// Docker HEALTHCHECK and ECS healthCheck.
func RunHealth(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) int {
	fs, sockp := newFlagSet("health", socket)
	asJSON := fs.Bool("json", false, "print the whole health document")
	rest, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, healthUsage)
		return exitOK
	}
	if err != nil {
		return failf(stderr, exitUsage, "health: %v", err)
	}
	if len(rest) != 0 {
		return failf(stderr, exitUsage, "health: unexpected argument %q", rest[0])
	}
	ok, detail, err := NewClient(*sockp).Health(ctx)
	if err != nil {
		return failErr(stderr, "health", err)
	}
	code := exitOK
	if !ok {
		code = exitFailure
	}
	if *asJSON {
		var buf bytes.Buffer
		if json.Indent(&buf, detail, "", "  ") != nil {
			buf.Reset()
			buf.Write(detail)
		}
		buf.WriteByte('\n')
		_, _ = stdout.Write(buf.Bytes())
		return code
	}
	writeHealth(stdout, ok, detail)
	return code
}

// writeHealth prints the verdict and, for a HealthReport, every check that is not passing (one line each).
func writeHealth(w io.Writer, ok bool, detail json.RawMessage) {
	verdict := "healthy"
	if !ok {
		verdict = "unhealthy"
	}
	var report HealthReport
	dec := json.NewDecoder(bytes.NewReader(detail))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&report); err != nil || report.Checks == nil {
		// Not a HealthReport: print the backend's document as it is.
		if len(detail) == 0 || string(detail) == "null" {
			fmt.Fprintln(w, verdict)
			return
		}
		fmt.Fprintf(w, "%s: %s\n", verdict, oneLine(string(detail)))
		return
	}
	var failing []CheckResult
	for _, c := range report.Checks {
		if c.Status != CheckPassing {
			failing = append(failing, c)
		}
	}
	fmt.Fprintf(w, "%s: %d of %d checks passing\n", verdict, len(report.Checks)-len(failing), len(report.Checks))
	for _, c := range failing {
		line := fmt.Sprintf("  %s %s", c.Status, c.Name)
		if out := oneLine(c.Output); out != "" {
			if len(out) > 200 {
				out = out[:200] + "..."
			}
			line += ": " + out
		}
		fmt.Fprintln(w, line)
	}
}

// ParseEnvAssignment splits a putenv argument KEY=VALUE at the first "=" and checks the key. The value may be
// empty and may contain "="; it is never part of an error message.
func ParseEnvAssignment(arg string) (key, value string, err error) {
	key, value, found := strings.Cut(arg, "=")
	if !found {
		// The argument is not quoted: it may be a value typed without its key.
		return "", "", errors.New(`want KEY=VALUE (the argument has no "=")`)
	}
	if err := validateEnv(key, &value); err != nil {
		return "", "", err
	}
	return key, value, nil
}

// ParseMetricAssignment splits a putmetric argument NAME=VALUE and parses the value as a finite number.
func ParseMetricAssignment(arg string) (name string, value float64, err error) {
	name, raw, found := strings.Cut(arg, "=")
	if !found {
		return "", 0, fmt.Errorf("want NAME=VALUE, got %q", arg)
	}
	value, err = strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return "", 0, fmt.Errorf("metric %s: value %q is not a finite number", name, raw)
	}
	if err := validateMetric(name, &value); err != nil {
		return "", 0, err
	}
	return name, value, nil
}

// newFlagSet returns a flag set with -socket defaulting to socket (DefaultSocket when empty). Errors are
// reported by the caller as one line, so the flag package prints nothing.
func newFlagSet(name, socket string) (*flag.FlagSet, *string) {
	if socket == "" {
		socket = DefaultSocket
	}
	fs := flag.NewFlagSet("berth "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("socket", socket, "control socket path")
}

// parseInterspersed parses flags anywhere among the arguments (`berth ctl maintenance on -reason deploy`) and
// returns the positional ones; "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// fs.Parse stops at the first non-flag, or after "--" (which it consumes).
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// failErr reports a client error: 69 when berth is unreachable, 1 for anything berth answered.
func failErr(w io.Writer, op string, err error) int {
	var u *UnreachableError
	if errors.As(err, &u) && u.After > 0 {
		return failf(w, exitUnavailable, "%s: %v", op, err) // berth runs: the hint would mislead
	}
	if isUnreachable(err) {
		return failf(w, exitUnavailable, "%s: %v (is berth running? set -socket or BERTH_CONTROL_SOCKET)", op, err)
	}
	return failf(w, exitFailure, "%s: %s", op, oneLine(err.Error()))
}

func failf(w io.Writer, code int, format string, a ...any) int {
	fmt.Fprintf(w, "berth: %s\n", oneLine(fmt.Sprintf(format, a...)))
	return code
}
