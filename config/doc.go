// Package config reads berth's configuration file, shared by `berth run -config` and
// `berth validate`. The blocks other packages own come out as those packages' own types, defaults filled in
// by their WithDefaults and checked by their Validate: main and job blocks as supervisor.JobSpec (checked
// together by supervisor.ValidateGraph, their singleton and once as discovery's LockConfig and OnceConfig),
// service, check, peers and consul as discovery's ServiceConfig, CheckConfig, PeersConfig and ConsulConfig,
// secret blocks as secrets.Block, the secrets block as secrets.Config, the telemetry block as
// telemetry.MetricsConfig, the logs block as telemetry.StreamConfig, hooks as supervisor.Hook, on_change as
// onchange.Action (of the package configs, only the fields a file sets: cmd/berth wires the rest). This package
// decodes (types, positions, env() and secret()) and puts file:line:col in front of what those Validates
// report (field.Error names the key); it never checks those blocks a second time, so `validate` and `run`
// accept and refuse the same files. cmd/berth merges the top-level keys with flags and BERTH_* variables,
// and gives the processes what the top level sets and their blocks leave unset (supervisor.Spec.Inherit).
//
// # Syntax
//
// A file whose name ends in ".json" is HCL's JSON syntax with the same structure (blocks with a label are
// objects keyed by the label: {"job": {"migrate": {"command": ["..."]}}}); any other file is HCL native
// syntax. As an extension to HCL, a single-line block may hold several arguments separated by commas, as in
// the README's `check { http = "...", interval = "10s", timeout = "2s" }`.
//
// # Limits
//
// A file is refused (one problem, exit 78) before HCL parses it when it is larger than MaxFileSize (512 KiB)
// or nested deeper than MaxDepth (64 levels). Every open bracket, brace, parenthesis, quote, heredoc and
// template sequence ("${", "%{"), every %{if} and %{for}, and every operator (unary, binary, "?", "." and
// [index]) of the expressions around a point counts one level there; a comma, or a newline in a block or an
// object, ends an expression and its operators. A real configuration is a few KiB and nests fewer than ten
// levels (`service "x" { check { exec = ["sh", "-c", "${env("CHECK")}"] } }` is seven), so the limits only stop
// files that would crash the parser (HCL recurses once per level) or cost hundreds of MB to parse. A file
// holds at most MaxBlocks (10,000) blocks of each labelled type: job, secret, service, peers. Loading is
// linear in the size of the file; HCL holds every token of it at once, so a file of 10,000 jobs takes about
// 0.4 s and 80 MB, and the worst file at the size limit (a token per byte) up to about 200 MB while it is read.
//
// Unknown keys and blocks are errors. Every problem is reported as one line "file:line:col: message";
// Load and Parse return them all in an *Error (exit code 78), not only the first. A null value is the same as
// leaving the key out.
//
// Durations are strings for time.ParseDuration ("500ms", "10s", "1h30m"); negative durations are errors.
// Signals are names with or without "SIG" ("SIGTERM", "TERM") or numbers ("15"). Users are "name", "uid",
// "name:group" or "uid:gid" and must resolve (through /etc/passwd and /etc/group) when the file is loaded.
// Modes and umasks are octal strings ("0400", "0022"); a number is rejected because HCL reads 0022 as
// twenty-two. Names of jobs, secrets, services and peers are letters, digits, '_', '.' and '-', starting with
// a letter or digit, unique per block type.
//
// # Functions
//
//	env("NAME")            the value of an environment variable of berth; an error at the call if unset
//	env("NAME", "default") the value, or "default" when unset
//	secret("REF")          a secret reference (the README's reference syntax) inside a longer value, resolved before any
//	                       process starts: DATABASE_URL = "postgres://app:${secret("secretsmanager:db:password")}@db/app"
//
// # Top level
//
// These may also be set by flags and BERTH_* variables, which win; when a key is left out, File holds its
// zero value (or nil) and the default applies.
//
//	log_level      = "trace" | "debug" | "info" (default) | "warn" | "error"
//	log_format     = "text" (default) | "json"
//	stop_signal    = "SIGTERM"            default stop signal of every process (default SIGTERM)
//	stop_timeout   = "10s"                default stop timeout of every process (default 10s)
//	kill_grace     = "3s"                 SIGTERM→SIGKILL grace for leftover processes at exit (default 3s)
//	drain_delay    = "0s"                 wait after Consul deregistration before stopping (default 0s)
//	signal_rewrite = { TERM = "QUIT" }    received signal → forwarded signal
//	signal_scope   = "group" | "child"    what a signal to the main command reaches: its process group
//	                                      (default) or the main command alone
//	pdeathsig      = "SIGTERM"            signal berth gets when its parent dies (default none)
//	user           = "app"                default user of main and of every job without one
//	control_socket = "/var/run/berth.sock"
//	redact         = true                 replace resolved secret values in process output (default true)
//	exit_code_map  = { 143 = 0 }          the main command's exit code → berth's, codes 0-255 (its own exit
//	                                      status or 128+signal only; never 126/127 for a command that could not
//	                                      be started, nor a code of berth's own)
//	pristine       = false                processes get only what berth gives them: the inherited variables that
//	                                      hold a reference berth resolved, their env block, the secret blocks'
//	                                      variables, peers, putenv (and HOME with user); nothing else of berth's
//	                                      environment (no PATH: a command is found in the default PATH)
//
// # main (at most one)
//
// The main command. Its command may be left out: a COMMAND on berth's command line replaces it, and with
// neither berth runs as a sidecar (README "Sidecar mode").
//
//	main {
//	  command      = ["java", "-jar", "/app/app.jar"]
//	  env          = { JAVA_OPTS = "-Xmx1g" }     added to the inherited environment
//	  dir          = "/app"                         working directory (default: berth's)
//	  user         = "app"                          (default: top-level user, else berth's)
//	  umask        = "0022"                         (default: berth's)
//	  rlimits      = { nofile = 65536, core = "0:unlimited", memlock = "unlimited" }
//	  stop_signal  = "SIGTERM"                      (default: top-level stop_signal)
//	  stop_timeout = "25s"                          (default: top-level stop_timeout)
//	  after        = ["migrate"]                    jobs to wait for
//	  singleton    = false                          run only while this berth holds a Consul lock (below)
//	  lock_key     = "berth/singleton/app/main"     (default berth/singleton/<scope>/<name>)
//	  session_ttl  = "15s"                          TTL of the lock's session (10s–24h, default 15s)
//	  lock_delay   = "10s"                          Consul lock-delay (default: stop_timeout, at most 60s)
//	  pre_start { command = ["/app/warm"], timeout = "30s" }
//	  pre_stop  { command = ["/app/drain"] }
//	  post_stop { command = ["/app/cleanup"] }
//	}
//
// rlimits values are a whole number (soft = hard), "soft:hard" or "unlimited"; names are those of
// setrlimit(2) without RLIMIT_ (nofile, nproc, core, memlock, stack, ...).
//
// Hooks are blocks named pre_start, pre_stop and post_stop, at most one of each per process; command is
// required, timeout defaults to 30s. A hook runs with its process's env, dir, user, umask and rlimits.
//
// # job "NAME" (any number)
//
// Every key of main, plus:
//
//	type         = "oneshot" | "service"   default "oneshot" when every is set, else "service"
//	command      = [...]                   required
//	every        = "1h"                    run a oneshot periodically, never overlapping (not for services)
//	restart      = "never" | "on-failure" | "always"  default "never" for oneshot, "always" for service;
//	                                       "always" is not allowed for a oneshot
//	max_restarts = 0                       0 (default) means unlimited
//	optional     = false                   when true, the job giving up does not stop berth (else exit 70)
//	once         = env("IMAGE_TAG")        oneshot only: run once per key across every berth of the Consul
//	                                       datacenter (below)
//	wait         = "10m"                   with once: how long to wait for the berth running it (default 10m)
//	session_ttl  = "15s"                   with once: TTL of the running berth's session
//
// # Cluster coordination: singleton and once
//
// Both need Consul: a consul block, or CONSUL_HTTP_ADDR (a config error, 78, otherwise); with
// consul.required a Consul that does not answer within consul.timeout ends berth with 69.
//
// singleton = true (main or a job) starts the process only while this berth holds a Consul lock (consul/api's
// Lock on a session of session_ttl with lock_delay). The other berths wait as hot standbys with blocking
// queries. The default key is berth/singleton/<scope>/<name>, scope being the first service block's name or
// the lower-cased ECS task family (berth/singleton/<name> without either). When the lock is lost (Consul
// said so, or no session renewal was accepted within session_ttl minus a margin), the process is stopped with
// its stop signal and stop_timeout; lock_delay (default: that stop_timeout) keeps every other berth from
// taking the lock until then. Failover after the holder died: at most 2 × session_ttl (Consul invalidates a
// session between one and two TTLs after its last renewal) + lock_delay rounded up to consul/api's 5s lock
// retry. A graceful stop hands over at once: the lock is released after the process is gone.
//
// once = "KEY" (a oneshot, not periodic, not also singleton) runs the job on the first berth to take the lock
// berth/once/KEY/.lock; the others wait (at most wait) for its result in berth/once/KEY: "ok" (they continue,
// the job counting as succeeded for after, and every later berth with that key runs nothing) or
// "failed:<code>" (every waiting berth exits with that code and starts nothing; a berth that starts later runs
// it again). berth/once/KEY/info records who ran it and when. A holder that dies mid-run releases the lock
// through its session and one waiter runs the job again, so the job must be idempotent, as migration tools
// assume.
//
// after lists job names only: a oneshot is waited for until it exits 0, a service until it is healthy. The
// main command cannot be waited for, and "main" is not a job name. Unknown names, repeats and cycles are
// errors; File.JobOrder gives a start order.
//
// # secret "NAME" (any number)
//
// Exactly one source:
//
//	kms_file       = "/app/config.json.enc"  KMS ciphertext or `berth secrets encrypt` envelope (absolute path)
//	  encryption_context = { app = "x" }     (kms_file only)
//	secretsmanager = "prod/app/db"           name or ARN
//	  version_stage = "AWSCURRENT"           (secretsmanager only)
//	  version_id    = "..."                  (secretsmanager only)
//	ssm            = "/prod/app/key"         one parameter, decrypted
//	ssm_path       = "/prod/app/"            every parameter under the path, recursively
//	s3             = "s3://bucket/app.env"   an env file, read as docker --env-file and ECS environmentFiles
//	  format        = "env-file" (default) | "dotenv"   (s3 only; dotenv: quotes, escapes, inline # comments)
//
// At least one destination:
//
//	env        = "VAR"                        the whole value (not with ssm_path)
//	env        = { DB_USER = "username" }     VAR = JSON key (env file key for s3, parameter name for ssm_path)
//	env_prefix = "APP_"                       every key / parameter, prefixed
//	file       = "/run/secrets/config.json"   absolute path, written atomically (exit 73 if it cannot be)
//	mode       = "0400"                       (file only; default "0400"; Mode is 0 without file)
//	user       = "app"                        owner (file only; default: the main command's user)
//
// And:
//
//	refresh   = "15m"                          re-read period (default: never)
//	on_change = "none" (default) | "restart" | "signal:SIGHUP"   (anything but "none" needs refresh)
//
// # secrets (at most one)
//
//	secrets {
//	  timeout     = "30s"     retry budget for transient errors (default 30s); throttling is retried up to 4 × it
//	  jitter      = "0s"      largest random delay before the first fetch at start, so a fleet does not hit the APIs at once (default 0s)
//	  concurrency = 8         fetches in flight, 1..1000 (default 8)
//	  skip_env    = ["VAR"]   never resolve these variables, even when they look like references
//	}
//
// # service "NAME" (any number)
//
//	service "app" {
//	  id      = "app-1"               default NAME-<task id or hostname>-<port>
//	  port    = 8080                  1..65535; left out, the service has no port
//	  address = "auto"                default "auto" (ECS task IP, else first non-loopback address)
//	  tags    = ["v1"]
//	  meta    = { team = "x" }
//	  deregister_critical_after = "1m"  (default 1m)
//	  check {                          any number
//	    name     = "http"              (default chosen by discovery)
//	    http     = "http://127.0.0.1:8080/health"   exactly one of http (URL),
//	    tcp      = "127.0.0.1:8080"                 tcp (host:port)
//	    exec     = ["/app/check"]                   and exec (argv)
//	    interval = "10s"               (default 10s)
//	    timeout  = "2s"                at most interval (default 5s, or interval when shorter)
//	    initial_status = "critical"    "passing" | "warning" | "critical" (default)
//	    success_before_passing   = 1   consecutive successes to turn passing, 1..1000 (default 1)
//	    failures_before_critical = 1   consecutive failures to turn critical, 1..1000 (default 1)
//	  }
//	}
//
// # peers "NAME" (any number)
//
//	peers "cluster" {
//	  service      = "app-hz"   required
//	  tag          = "hz"
//	  passing_only = true       (default true)
//	  include_self = false      (default false)
//	  min          = 0          peers to wait for (default 0)
//	  wait         = "30s"      (default 30s)
//	  env          = "HZ_MEMBERS"         at least one of env
//	  file         = "/run/peers.txt"     and file
//	  template     = "{{range .}}{{.Address}}:{{.Port}}\n{{end}}"  text/template syntax, checked at load;
//	                            fields ID Name Address Port Tags Meta Node HostPort, func join, no method
//	                            calls (default: comma-separated host:port)
//	  on_change    = "none" (default) | "restart" | "signal:SIGHUP"
//	}
//
// # consul (at most one)
//
// Keys left out fall back to the CONSUL_HTTP_* variables, as the official client reads them.
//
//	consul {
//	  address    = "127.0.0.1:8500"
//	  token      = "..."                (or token_file = "/run/secrets/consul-token")
//	  scheme     = "http" | "https"
//	  ca_file    = "/etc/consul/ca.pem" (or ca_path = "/etc/consul/ca.d")
//	  client_cert = "/etc/consul/cert.pem"
//	  client_key  = "/etc/consul/key.pem"
//	  tls_server_name      = "consul.internal"
//	  insecure_skip_verify = false
//	  datacenter = "dc1"
//	  required   = false     when true, start fails (exit 69) if Consul does not answer within timeout
//	  timeout    = "30s"     (default 30s)
//	  mode       = "agent" (default) | "catalog"   catalog: agentless, the task is a catalog node (-consul-mode)
//	  node       = "..."     catalog node name (default: the ECS task id, else the hostname)
//	  session_ttl = "15s"    catalog mode's liveness session (10s..24h); a SIGKILLed task is reaped about
//	                         2×session_ttl after its last renewal by another instance of the service
//	  login {                ACL login with the task's IAM role (Consul auth method of type aws-iam)
//	    method       = "aws"                  the auth method's name (required)
//	    meta         = { team = "x" }         token meta (Consul puts it in the token's description)
//	    sts_endpoint = "https://sts.eu-west-1.amazonaws.com"   the auth method's STSEndpoint, if it sets one
//	    sts_region   = "eu-west-1"            (default AWS_REGION, else us-east-1)
//	    server_id_header_value = "consul.internal"   when the auth method requires it
//	    include_iam_entity     = false        the auth method's EnableIAMEntityDetails
//	  }                      denied: exit 77 with required = true; logout at the end of shutdown
//	}
//
// # telemetry and logs (at most one each)
//
//	telemetry {
//	  dogstatsd  = "127.0.0.1:8125"     or unix:///var/run/datadog/dsd.socket
//	  prometheus = "127.0.0.1:9102"     listen address for /metrics
//	  tags       = ["team:x"]
//	}
//	logs {
//	  format   = "raw" (default) | "json"   json wraps each line with timestamp, level, job and stream (README "Logs")
//	  prefix   = false                       put the job name before each line (default false)
//	  max_line = 1048576                     bytes of one line held before they are written (default 1 MiB,
//	                                         1024..1073741824); a longer line is written in pieces, nothing
//	                                         is dropped (see telemetry: raw output stays byte-identical)
//	}
package config
