package telemetry

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogConfig configures berth's own log (not the output of supervised processes, see Streamer).
type LogConfig struct {
	// Level is the minimum level logged: "trace", "debug", "info", "warn" or "error" (case-insensitive).
	// Empty means "info". Set by -log-level / BERTH_LOG_LEVEL / log_level.
	Level string
	// Format is "text" (hclog's human format) or "json" (one JSON object per line). Empty means "text".
	// Set by -log-format / BERTH_LOG_FORMAT / log_format.
	Format string
	// Output receives the log lines; nil means os.Stderr.
	Output io.Writer
	// Name is the logger name written into every line; empty means "berth".
	Name string
	// Fields are appended to every JSON line (the ECS task's, once known); nil adds nothing.
	Fields *LogFields
}

// ParseLevel returns the hclog level for a -log-level value, or an error naming the value. "" is info.
func ParseLevel(s string) (hclog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return hclog.Info, nil
	case "trace":
		return hclog.Trace, nil
	case "debug":
		return hclog.Debug, nil
	case "info":
		return hclog.Info, nil
	case "warn", "warning":
		return hclog.Warn, nil
	case "error":
		return hclog.Error, nil
	}
	return hclog.NoLevel, fmt.Errorf("log level %q: want one of trace, debug, info, warn, error", s)
}

// NewLogger returns berth's own logger. An unknown level or format is an error naming the value; it never
// falls back silently to a default.
func NewLogger(cfg LogConfig) (hclog.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	var json bool
	switch strings.ToLower(strings.TrimSpace(cfg.Format)) {
	case "", "text":
	case "json":
		json = true
	default:
		return nil, fmt.Errorf("log format %q: want text or json", cfg.Format)
	}
	out := cfg.Output
	if out == nil {
		out = os.Stderr
	}
	name := cfg.Name
	if name == "" {
		name = "berth"
	}
	opts := &hclog.LoggerOptions{
		Name:   name,
		Level:  level,
		Output: out,
		// Color is never wanted: the output is read by a log driver, not a terminal, in the normal case.
		Color: hclog.ColorOff,
	}
	if json {
		// hclog's JSON, re-encoded into the schema the process lines share (logjson.go): UTC RFC 3339 times
		// with nanoseconds, and no HTML escaping (process lines have none either).
		opts.JSONFormat, opts.JSONEscapeDisabled = true, true
		opts.TimeFormat, opts.TimeFn = time.RFC3339Nano, func() time.Time { return time.Now().UTC() }
		opts.Output = &schemaWriter{w: out, fields: cfg.Fields}
	}
	return hclog.New(opts), nil
}
