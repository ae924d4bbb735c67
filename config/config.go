package config

import (
	"syscall"
	"time"

	"github.com/berth-dev/berth/discovery"
	"github.com/berth-dev/berth/secrets"
	"github.com/berth-dev/berth/supervisor"
	"github.com/berth-dev/berth/telemetry"
)

// The defaults and bounds of every block are those of the package that owns it (supervisor, secrets,
// discovery, telemetry: their Default* constants and WithDefaults); the loader applies them. Top-level
// settings that a flag can override (log_level, stop_timeout, ...) are not filled in: their zero value or nil
// pointer means "not set in the file" so that cmd/berth can apply flag > env > file > default.

// MainName is the name under which the main command appears in JobOrder (supervisor.MainName). It cannot be
// used as a job name and cannot appear in `after`.
const MainName = supervisor.MainName

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
	// SignalScope is signal_scope: what a signal to the main command reaches; "" when not set (the default
	// is supervisor.SignalGroup).
	SignalScope supervisor.SignalScope
	// ParentDeathSignal is pdeathsig: the signal berth gets when its parent dies; 0 when not set.
	ParentDeathSignal syscall.Signal
	// ExitCodeMap is exit_code_map: the main command's exit code → berth's exit code; nil when not set.
	ExitCodeMap map[int]int
	// Pristine is pristine: processes get only the variables berth gives them, not berth's environment;
	// nil when not set (the default is false).
	Pristine *bool
	// User is the default user of the main command and of every job that sets none; "" when not set.
	User string
	// Credential is User resolved at load time; nil when User is "".
	Credential *supervisor.Credential
	// ControlSocket is the path of the control-plane socket; "" when not set.
	ControlSocket string
	// Redact is redact; nil when not set (the default is true).
	Redact *bool

	// Main is the main block as the supervisor takes it (see Jobs); Argv is empty when the block sets no
	// command (the command line gives it), Type and Restart are unset (the main command is not restarted),
	// GateConfig is its singleton. nil when the file has none.
	Main *supervisor.JobSpec
	// Jobs are the job blocks in file order, as the supervisor takes them, defaults filled in and checked
	// (JobSpec.WithDefaults, Validate, ValidateGraph). Of each Spec, Env is the env block as written (sorted
	// KEY=VALUE, secret() markers and references unresolved: cmd/berth resolves them and sets the complete
	// environment); User, StopSignal and StopTimeout are zero where the block sets none, so that the merged
	// top-level settings apply (Spec.Inherit). GateConfig is a *discovery.LockConfig (singleton) or
	// *discovery.OnceConfig (once), nil without either.
	Jobs []supervisor.JobSpec
	// Secrets are the secret blocks in file order, defaults filled in. UID and GID are -1 unless the block
	// sets user (cmd/berth then gives the file to the main command's user).
	Secrets []secrets.Block
	// SecretsOptions is the secrets block as the resolver takes it: Timeout, Jitter, Concurrency (defaults
	// filled in: secrets.Config.WithDefaults) and SkipEnv. The secret blocks are Secrets; cmd/berth adds
	// them, the -no-resolve names and the rest of the resolver's wiring.
	SecretsOptions secrets.Config
	// Services are the service blocks in file order, defaults filled in.
	Services []discovery.ServiceConfig
	// Peers are the peers blocks in file order, defaults filled in.
	Peers []discovery.PeersConfig
	// Consul is the consul block, defaults filled in; nil when the file has none.
	Consul *discovery.ConsulConfig
	// Telemetry is the telemetry block as the metrics take it: DogStatsD, Prometheus and Tags, "" and nil
	// when not set (zero when the block is absent). cmd/berth merges Prometheus with -prometheus and adds
	// the rest of the wiring.
	Telemetry telemetry.MetricsConfig
	// Logs is the logs block as the output streamer takes it: Format, Prefix and MaxLine, defaults filled in
	// (telemetry.StreamConfig.WithDefaults). cmd/berth adds the writers, Redact and Fields.
	Logs telemetry.StreamConfig

	// Positions holds "file:line:col" of the blocks other packages own, by the name messages give them:
	// `job "migrate"`, `main`, `secret "db"`, `service "app"`, `peers "cluster"`, `consul`.
	Positions map[string]string
}
