// Package telemetry owns what berth emits about itself and its processes: berth's own log (go-hclog), the
// stdout/stderr of every supervised process (Streamer), and metrics to DogStatsD and Prometheus (Metrics).
// It decides nothing about processes; the supervisor calls it.
//
// # berth's own log
//
// NewLogger builds the go-hclog logger from -log-level (trace, debug, info, warn, error; default info) and
// -log-format ("text" or "json": one JSON object per line). An unknown value is an error naming it.
//
// # One JSON schema (README "Logs")
//
// berth's JSON lines and the JSON process lines (logs.format = "json") share one schema, read by Datadog's
// JSON preprocessing and CloudWatch Logs Insights without a remapper:
//
//	{"timestamp":"2026-11-20T10:15:06.125730412Z","level":"warn","logger":"berth.consul","message":"…","error":"…"}
//	{"timestamp":"2026-11-20T10:15:06.125730412Z","level":"info","job":"main","stream":"stdout","message":"…"}
//
// timestamp is RFC 3339 in UTC with nanoseconds; level is trace, debug, info, warn or error (a process line:
// info for stdout, error for stderr, as the Datadog Agent marks the streams it tails); logger is the berth
// component (berth lines only); job and stream are the process's (process lines only, though berth's lines
// about a job carry job too). The key-value fields of a berth line follow, sorted; a field named like a
// schema field or a Datadog reserved attribute (status, service, host, source, date, trace_id, …) is written
// as arg_NAME. hclog's own JSON names (@timestamp, @message) are re-encoded by a writer (logjson.go; about
// 5 µs per berth line, BenchmarkOwnLogJSON). LogFields.SetECS adds ecs_cluster, ecs_task_arn,
// ecs_family, ecs_revision and ecs_container_name to every JSON line of both kinds once the task
// metadata is known; cmd/berth fetches it beside the start-up, so lines before that go without.
//
// # Process output (README)
//
// Each supervised process gets pipes for stdout and stderr; Streamer.Stream copies each pipe to berth's own
// stdout or stderr:
//
//   - line by line, nothing dropped or truncated: a line is held until its newline arrives, up to
//     logs.max_line bytes (StreamConfig.MaxLine, default 1 MiB). At that point the head of the line is
//     written and only a tail one byte shorter than the longest redaction value is kept, so memory stays
//     bounded for a process that never writes a newline, and a value that straddles the cut is still
//     redacted (its part in the tail is dropped too, no mark written twice). In raw mode the output stays
//     byte-identical (no newline is added at the cut); with prefix or json each piece becomes a line or
//     object of its own, cut at a UTF-8 boundary. The buffer shrinks back to 64 KiB after a long line;
//   - the final line without a newline is written at EOF, nothing is dropped when the process exits;
//   - lines of one stream keep their order; lines of different processes going to the same sink never
//     interleave inside a line (one lock per sink, held for a whole block of complete lines);
//   - a slow sink blocks the writers (back-pressure), nothing is dropped; if the sink fails (EPIPE), the
//     stream is still drained to EOF so the process never blocks, and Stream returns the write error.
//
// Knobs: logs.format = "raw" (default; bytes as written) | "json" (one
// {"timestamp":RFC3339Nano UTC,"level":"info"|"error","job":...,"stream":"stdout"|"stderr","message":...}
// object per line, the schema above, valid JSON for any bytes: control bytes escaped, invalid UTF-8 →
// U+FFFD); logs.prefix = true writes "JOB | " before
// each line in raw mode; redact (default true) replaces each value given to SetRedactions of 6 bytes or more
// with "[REDACTED]". Redaction works on complete lines (and on pieces of max_line bytes plus the tail), so a
// value split across two read()s of one line is still caught; a multi-line value (a PEM key) is redacted line
// by line. In raw mode the final partial line is
// written as is (byte-identical output); with prefix or json it is terminated by a newline.
//
// The caveat of line buffering: a partial line (a prompt, a progress bar drawn with \r) appears only when its
// newline arrives, the line reaches max_line, or the process exits. When Passthrough reports true (raw, no prefix, no redaction values) the supervisor hands
// berth's own file descriptors to the child instead, which also is the TTY case.
//
// # Metrics (README)
//
// See Metrics and MetricsConfig. DogStatsD (github.com/DataDog/datadog-go/v5) is on when
// telemetry.dogstatsd, DD_DOGSTATSD_URL or DD_AGENT_HOST is set:
//
//   - DD_DOGSTATSD_URL: udp://HOST:PORT or unix:///PATH (unixgram; unixgram:// and unixstream:// too);
//   - DD_AGENT_HOST (with DD_DOGSTATSD_PORT, default 8125): the agent's host;
//   - DD_ENV, DD_SERVICE, DD_VERSION become the global tags env:, service:, version:; DD_TAGS (comma or
//     space separated key:value) adds more; DD_ENTITY_ID is used by datadog-go itself;
//   - ECS_CONTAINER_METADATA_URI_V4 adds ecs_cluster, task_family, task_version, container_name.
//
// No other environment value ever becomes a tag, so secret values cannot leak into tags. (datadog-go itself
// also reads DD_ENV, DD_SERVICE, DD_VERSION and DD_ENTITY_ID from the process environment; berth does not
// send those tags twice.)
//
// Metrics, with their units:
//
//   - berth.process.starts, berth.process.exits (tags job, exit_code; 128+N for signal N),
//     berth.process.restarts (tag job): counters; a Datadog event (alert type error, or warning for a clean
//     exit that is restarted) on every non-zero exit and every restart;
//   - berth.process.cpu (tag job): percent of one core used by the job's process tree over the last sample
//     interval (100 = one full core; utime+stime+cutime+cstime from /proc/PID/stat, USER_HZ 100);
//   - berth.process.rss (tag job): resident bytes summed over the tree (the root pid from
//     MetricsConfig.Processes and its descendants by ppid); shared pages count once per process, as in ps;
//   - berth.check.status (tags check, service): 0 passing, 1 warning, 2 critical, 3 unknown (the Datadog
//     service check codes), plus the Datadog service check "berth.check" with the same tags;
//   - berth.secrets.fetch.duration: seconds (DogStatsD histogram, Prometheus histogram);
//   - berth.secrets.errors, berth.consul.errors: counters;
//   - berth.lock.acquisitions, berth.lock.losses (tag job): a singleton's Consul lock taken, and lost while
//     held (its process was then stopped);
//   - berth.uptime: seconds since berth started (sent every sample interval, computed at scrape);
//   - user gauges from `berth ctl putmetric NAME=VALUE` (NAME: letters, digits, '_', '.'; "berth." reserved).
//
// CPU and RSS are sampled every MetricsConfig.SampleInterval (default 10s). DogStatsD counts are aggregated
// client side (datadog-go's default) and flushed by Close, which Run calls on its way out.
//
// Prometheus (telemetry.prometheus / -prometheus ADDR) serves /metrics with the same metrics, '.' replaced
// by '_' (so counters carry no _total suffix: berth_process_exits{job,exit_code}), plus the Go runtime and
// process collectors on a private registry, and /status (JSON from MetricsConfig.Status).
package telemetry
