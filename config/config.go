package config

import (
	"os"
	"reflect"
	"syscall"
	"time"

	"github.com/berth-dev/berth/supervisor"
)

// Defaults the loader fills in where the file leaves a key out. Top-level settings that a flag can override
// (log_level, stop_timeout, ...) are not filled in: their zero value or nil pointer means "not set in the file"
// so that cmd/berth can apply flag > env > file > default.
const (
	DefaultHookTimeout             = 30 * time.Second
	DefaultSecretMode              = os.FileMode(0o400)
	DefaultSecretsTimeout          = 30 * time.Second
	DefaultSecretsConcurrency      = 8
	DefaultServiceAddress          = "auto"
	DefaultDeregisterCriticalAfter = time.Minute
	DefaultCheckInterval           = 10 * time.Second
	DefaultCheckTimeout            = 5 * time.Second // at most the interval
	DefaultCheckInitialStatus      = "critical"
	DefaultPeersWait               = 30 * time.Second
	DefaultConsulTimeout           = 30 * time.Second

	// MinMaxLine and MaxMaxLine bound logs.max_line (bytes).
	MinMaxLine = 1 << 10
	MaxMaxLine = 1 << 30
)

// Job types.
const (
	JobOneshot = "oneshot"
	JobService = "service"
)

// Restart policies.
const (
	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// MainName is the name under which the main command appears in JobOrder. It cannot be used as a job name
// and cannot appear in `after`.
const MainName = "main"

// File is one parsed and checked configuration file.
type File struct {
	// Filename is the name the file was loaded from, as given to Load or Parse.
	Filename string

	// LogLevel is log_level ("trace", "debug", "info", "warn", "error"); "" when not set.
	LogLevel string
	// LogFormat is log_format ("text" or "json"); "" when not set.
	LogFormat string
	// StopSignal is the default stop signal of every process; 0 when not set.
	StopSignal syscall.Signal
	// StopTimeout is the default stop timeout of every process; nil when not set.
	StopTimeout *time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL to leftover processes at exit; nil when
	// not set.
	KillGrace *time.Duration
	// DrainDelay is the wait between Consul deregistration and pre_stop hooks; nil when not set.
	DrainDelay *time.Duration
	// SignalRewrite maps a received signal to the one forwarded; nil when not set.
	SignalRewrite map[syscall.Signal]syscall.Signal
	// User is the default user of the main command and of every job that sets none; "" when not set.
	User string
	// Credential is User resolved at load time; nil when User is "".
	Credential *supervisor.Credential
	// ControlSocket is the path of the control-plane socket; "" when not set.
	ControlSocket string
	// Redact is redact; nil when not set (the default is true).
	Redact *bool

	// Main is the main block; nil when the file has none.
	Main *Process
	// Jobs are the job blocks in file order.
	Jobs []Job
	// Secrets are the secret blocks in file order.
	Secrets []Secret
	// SecretsOptions is the secrets block, with defaults filled in.
	SecretsOptions SecretsOptions
	// Services are the service blocks in file order.
	Services []Service
	// Peers are the peers blocks in file order.
	Peers []Peers
	// Consul is the consul block; nil when the file has none.
	Consul *Consul
	// Telemetry is the telemetry block (zero when absent).
	Telemetry Telemetry
	// Logs is the logs block, with defaults filled in.
	Logs Logs
}

// Process is what the main block and job blocks have in common.
type Process struct {
	// Pos is "file:line:col" of the block, for messages; ignored by Equal.
	Pos string
	// Command is the argv; empty only for a main block (the command then comes from the command line).
	Command []string
	// Env is added to the inherited environment; nil when empty.
	Env map[string]string
	// Dir is the working directory; "" inherits berth's.
	Dir string
	// User is "name", "uid", "name:group" or "uid:gid"; "" means the top-level user (or berth's own).
	User string
	// Credential is User resolved at load time; nil when User is "".
	Credential *supervisor.Credential
	// Umask is the process umask; nil inherits berth's.
	Umask *os.FileMode
	// Rlimits are the limits to set, sorted by name; nil when none.
	Rlimits []supervisor.Rlimit
	// StopSignal is the stop signal; 0 means the top-level stop_signal.
	StopSignal syscall.Signal
	// StopTimeout is the stop timeout; nil means the top-level stop_timeout.
	StopTimeout *time.Duration
	// After names jobs that must have exited 0 (oneshot) or be healthy (service) before this one starts.
	After []string
	// PreStart, PreStop and PostStop are the hooks; nil when absent.
	PreStart, PreStop, PostStop *Hook
}

// Hook is a pre_start, pre_stop or post_stop command. It runs with its process's env, dir, user and umask.
type Hook struct {
	Command []string
	Timeout time.Duration
}

// Job is a job block.
type Job struct {
	Name string
	// Type is JobOneshot or JobService.
	Type string
	// Every is the period of a periodic oneshot; 0 when it runs once.
	Every time.Duration
	// Restart is RestartNever, RestartOnFailure or RestartAlways.
	Restart string
	// MaxRestarts bounds restarts; 0 means unlimited.
	MaxRestarts int
	// Optional keeps berth running when the job gives up.
	Optional bool
	Process
}

// Equal reports whether two processes are the same apart from their position in the file.
func (p Process) Equal(o Process) bool {
	p.Pos, o.Pos = "", ""
	return reflect.DeepEqual(p, o)
}

// Equal reports whether two jobs are the same apart from their position in the file, so that a reload can
// restart only the jobs that changed.
func (j Job) Equal(o Job) bool {
	j.Pos, o.Pos = "", ""
	return reflect.DeepEqual(j, o)
}

// OnChange is what to do when a refreshed secret or a peer list changes.
type OnChange struct {
	// Action is "none", "restart" or "signal".
	Action string
	// Signal is the signal to send when Action is "signal".
	Signal syscall.Signal
}

// String is the on_change text the secrets and discovery packages take: "none", "restart" or
// "signal:SIGHUP".
func (o OnChange) String() string {
	if o.Action == "signal" {
		return "signal:" + supervisor.SignalName(o.Signal)
	}
	if o.Action == "" {
		return "none"
	}
	return o.Action
}

// Secret is a secret block. Exactly one source field is set.
type Secret struct {
	Name string
	Pos  string

	// Sources (exactly one is set).
	KMSFile        string
	SecretsManager string
	SSM            string
	SSMPath        string
	S3             string

	// EncryptionContext goes with KMSFile; nil when empty.
	EncryptionContext map[string]string
	// VersionStage and VersionID go with SecretsManager.
	VersionStage string
	VersionID    string

	// Destinations (at least one is set).
	// Env receives the whole value when env is a string.
	Env string
	// EnvKeys maps VAR to a JSON key when env is a map; nil otherwise.
	EnvKeys map[string]string
	// EnvPrefix receives every key of a JSON secret, dotenv file or parameter path, prefixed.
	EnvPrefix string
	// File is the path the value is written to.
	File string
	// Mode is the file's mode (default 0400 when File is set; 0 without File).
	Mode os.FileMode
	// User owns File; "" means the main command's user.
	User string
	// Credential is User resolved at load time; nil when User is "".
	Credential *supervisor.Credential

	// Refresh is the re-read period; 0 never re-reads.
	Refresh time.Duration
	// OnChange applies when a refresh finds a new version.
	OnChange OnChange
}

// SecretsOptions is the top-level secrets block.
type SecretsOptions struct {
	// Timeout bounds retries of transient errors (default 30s).
	Timeout time.Duration
	// Jitter is the largest random delay before the first fetch at start-up (default 0).
	Jitter time.Duration
	// Concurrency is the number of fetches in flight (default 8).
	Concurrency int
	// SkipEnv names environment variables never resolved even when they look like references.
	SkipEnv []string
}

// Service is a service block.
type Service struct {
	Name string
	Pos  string
	// ID is the Consul service ID; "" means NAME-<task id or hostname>-<port>.
	ID string
	// Port is 1..65535, or 0 when the service has no port.
	Port int
	// Address is "auto" (default) or an address.
	Address                 string
	Tags                    []string
	Meta                    map[string]string
	DeregisterCriticalAfter time.Duration
	Checks                  []Check
}

// Check is a check block inside a service block. Exactly one of HTTP, TCP and Exec is set.
type Check struct {
	Name string
	// Kind is "http", "tcp" or "exec".
	Kind                   string
	HTTP                   string
	TCP                    string
	Exec                   []string
	Interval               time.Duration
	Timeout                time.Duration
	InitialStatus          string
	SuccessBeforePassing   int
	FailuresBeforeCritical int
}

// Peers is a peers block.
type Peers struct {
	Name        string
	Pos         string
	Service     string
	Tag         string
	PassingOnly bool
	IncludeSelf bool
	Min         int
	Wait        time.Duration
	Env         string
	File        string
	// Template is a text/template over the peer list; "" means comma-separated host:port.
	Template string
	OnChange OnChange
}

// Consul is the consul block. Empty strings mean "as the official client reads CONSUL_HTTP_*".
type Consul struct {
	Pos                string
	Address            string
	Token              string
	TokenFile          string
	Scheme             string
	CAFile             string
	CAPath             string
	ClientCert         string
	ClientKey          string
	TLSServerName      string
	InsecureSkipVerify bool
	Datacenter         string
	Required           bool
	Timeout            time.Duration
}

// Telemetry is the telemetry block.
type Telemetry struct {
	DogStatsD  string
	Prometheus string
	Tags       []string
}

// Logs is the logs block.
type Logs struct {
	// Format is "raw" (default) or "json".
	Format string
	// Prefix puts the job name before each line.
	Prefix bool
	// MaxLine is the most bytes of one line berth holds before it writes them out (logs.max_line); 0 when
	// not set (the default of telemetry.StreamConfig.MaxLine applies, 1 MiB).
	MaxLine int
}
