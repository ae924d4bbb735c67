package discovery

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/ecsmeta"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/sys/unix"
)

// Defaults (SPEC §5).
const (
	DefaultCheckInterval           = 10 * time.Second
	DefaultCheckTimeout            = 5 * time.Second
	DefaultDeregisterCriticalAfter = time.Minute
	DefaultPeersWait               = 30 * time.Second
	DefaultConsulTimeout           = 30 * time.Second
	DefaultRequestTimeout          = 5 * time.Second
	DefaultRetryMin                = 500 * time.Millisecond
	DefaultRetryMax                = 5 * time.Second
	DefaultBlockingWait            = 5 * time.Minute
	// AddressAuto asks berth to find the task's address (ECS metadata, interface, hostname).
	AddressAuto = "auto"
)

// Check kinds and on_change actions.
const (
	OnChangeNone    = "none"
	OnChangeRestart = "restart"
	// OnChangeSignalPrefix starts an on_change value that sends a signal: "signal:SIGHUP".
	OnChangeSignalPrefix = "signal:"
)

// Config is everything discovery needs. The zero value of every optional field means "default".
type Config struct {
	// Consul is how to reach the local Consul agent (the `consul {}` block, CONSUL_HTTP_* for what it leaves empty).
	Consul ConsulConfig
	// Services are the services this berth registers (`service "NAME" {}` blocks, or -service/-port).
	Services []ServiceConfig
	// Peers are the peer lists this berth looks up and follows (`peers "NAME" {}` blocks, or -peers-*).
	Peers []PeersConfig
	// MetadataURI is the value of ECS_CONTAINER_METADATA_URI_V4; "" means "not on ECS".
	MetadataURI string
	// Metadata, when set, is the berth-wide cache of the task metadata at MetadataURI (fetched once for
	// discovery, telemetry and secrets); nil fetches from MetadataURI directly.
	Metadata *ecsmeta.Cache
	// Exec runs an exec check's argv and returns its exit code and combined output. cmd/berth backs it with the
	// supervisor (which owns the only wait4 loop); it is required when a check has `exec`.
	Exec func(ctx context.Context, argv []string) (exitCode int, output []byte, err error)
	// OnCheck, when set, is called (synchronously, so keep it quick) whenever a check's status changes, and once
	// with each check's initial status when Run starts. It feeds metrics and `after` ordering.
	OnCheck func(CheckState)
}

// ConsulConfig is the `consul {}` block. Empty fields fall back to api.DefaultConfig(), which reads
// CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN(_FILE), CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT,
// CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME and CONSUL_HTTP_SSL_VERIFY.
type ConsulConfig struct {
	// Address is the agent's HTTP address, "host:port" or a URL ("https://host:8501", "unix:///path").
	Address string
	// Scheme is "http" or "https".
	Scheme string
	// Token is the ACL token.
	Token string
	// TokenFile is a file holding the ACL token (wins over Token).
	TokenFile string
	// Datacenter is the datacenter of peer queries ("" = the agent's).
	Datacenter string
	// CACert is a PEM file of CA certificates to verify the agent.
	CACert string
	// CAPath is a directory of PEM CA certificates.
	CAPath string
	// ClientCert is a PEM client certificate for mTLS.
	ClientCert string
	// ClientKey is the key of ClientCert.
	ClientKey string
	// TLSServerName is the server name to verify in the agent's certificate.
	TLSServerName string
	// InsecureSkipVerify disables verification of the agent's certificate.
	InsecureSkipVerify bool
	// Required makes Register fail (exit code 69) when Consul does not answer within Timeout; when false
	// (default) the application starts anyway and registration is retried in the background.
	Required bool
	// Timeout bounds Register when Required (default 30s).
	Timeout time.Duration
	// RequestTimeout bounds each non-blocking request to the agent (default 5s), and is the margin a blocking
	// query gets beyond its wait.
	RequestTimeout time.Duration
	// RetryMin is the first back-off step after a failed request (default 500ms); steps double with ±20%
	// jitter up to RetryMax.
	RetryMin time.Duration
	// RetryMax is the largest back-off step (default 5s). Registration retries are further capped at the
	// shortest check interval, so a registration lands within one interval of Consul answering.
	RetryMax time.Duration
	// BlockingWait is the wait time of each peers blocking query (default 5m; Consul caps it at 10m). The
	// query's deadline is BlockingWait + BlockingWait/16 (Consul's jitter) + RequestTimeout.
	BlockingWait time.Duration
	// WrapTransport, when set, wraps the HTTP transport of the Consul client (tests count requests with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// ServiceConfig is one `service "NAME" {}` block.
type ServiceConfig struct {
	// Name is the Consul service name; "" on ECS means the lower-cased task family.
	Name string
	// ID is the service ID; "" means NAME-<task id or hostname>-<port>, unique per task.
	ID string
	// Port is the service port (0 = none).
	Port int
	// Address is the advertised address; "" or "auto" means ECS task IPv4, else the first non-loopback
	// interface address, else the hostname.
	Address string
	// Tags are the Consul tags.
	Tags []string
	// Meta is the Consul service meta; on ECS berth adds ecs_cluster, ecs_task_arn, ecs_family, ecs_revision and
	// availability_zone (keys set here win).
	Meta map[string]string
	// Checks are the checks berth runs and reports to Consul TTL checks. A service without checks gets one TTL
	// check that berth keeps passing every 10s, so a SIGKILLed task still disappears after
	// DeregisterCriticalAfter.
	Checks []CheckConfig
	// DeregisterCriticalAfter removes the service from Consul once its checks have been critical this long
	// (default 1m; Consul's minimum is 1m).
	DeregisterCriticalAfter time.Duration
}

// CheckConfig is one `check {}` block: exactly one of HTTP, TCP, Exec.
type CheckConfig struct {
	// Name names the check in Consul and in status ("" = "http", "tcp" or "exec", numbered when repeated).
	Name string
	// HTTP is a URL fetched with GET; 2xx and 3xx pass (redirects are not followed), anything else is critical.
	HTTP string
	// TCP is a host:port that must accept a connection.
	TCP string
	// Exec is a command run through Config.Exec: exit 0 passing, 1 warning, anything else critical.
	Exec []string
	// Interval is the time between runs (default 10s). The Consul TTL is 3 × Interval.
	Interval time.Duration
	// Timeout bounds one run (default 5s, at most Interval).
	Timeout time.Duration
	// InitialStatus is the status before the first run: "passing", "warning" or "critical" (default).
	InitialStatus string
	// SuccessBeforePassing is how many consecutive successes turn the check passing (default 1).
	SuccessBeforePassing int
	// FailuresBeforeCritical is how many consecutive failures turn the check warning/critical (default 1).
	FailuresBeforeCritical int
}

// PeersConfig is one `peers "NAME" {}` block.
type PeersConfig struct {
	// Name names the block (logs, onChange).
	Name string
	// Service is the Consul service to look up.
	Service string
	// Tag keeps only instances with this tag ("" = all).
	Tag string
	// PassingOnly keeps only instances whose checks all pass; nil means true (the default), so a config
	// loader sets it only when the user wrote passing_only.
	PassingOnly *bool
	// IncludeSelf keeps this berth's own instance in the list (added even before its checks pass, so the
	// list always contains it); false (default) removes it.
	IncludeSelf bool
	// Min is how many peers the initial lookup waits for (default 0).
	Min int
	// Wait bounds the initial wait for Min peers (default 30s); after it the first member of a new cluster
	// starts with what it found.
	Wait time.Duration
	// Env is the environment variable that gets the rendered list.
	Env string
	// File is a file that gets the rendered list (written atomically, mode 0644).
	File string
	// Template is a text/template executed with a []Peer; "" means comma-separated host:port.
	Template string
	// OnChange is what to do when the list changes after start: "none" (default), "signal:SIGHUP" (any
	// signal) or "restart".
	OnChange string
}

func (p PeersConfig) passingOnly() bool { return p.PassingOnly == nil || *p.PassingOnly }

// Validate checks the configuration without touching the network. Messages name the block and field.
func (c Config) Validate() error {
	var errs []error
	if c.Consul.Address != "" {
		if strings.Contains(c.Consul.Address, "://") {
			if _, err := url.Parse(c.Consul.Address); err != nil {
				errs = append(errs, fmt.Errorf("consul.address: %w", err))
			}
		}
	}
	if c.Consul.Scheme != "" && c.Consul.Scheme != "http" && c.Consul.Scheme != "https" {
		errs = append(errs, fmt.Errorf("consul.scheme: %q is not http or https", c.Consul.Scheme))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Consul.Timeout}, {"request_timeout", c.Consul.RequestTimeout}, {"retry_min", c.Consul.RetryMin},
		{"retry_max", c.Consul.RetryMax}, {"blocking_wait", c.Consul.BlockingWait}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("consul.%s: must not be negative", d.name))
		}
	}
	ids := map[string]bool{}
	for i, s := range c.Services {
		where := fmt.Sprintf("service %q", s.Name)
		if s.Name == "" {
			where = fmt.Sprintf("service #%d", i+1)
			if c.MetadataURI == "" {
				errs = append(errs, fmt.Errorf("%s: a name is required when not running on ECS (ECS_CONTAINER_METADATA_URI_V4 unset)", where))
			}
		}
		if s.Name != "" {
			if err := ValidName(s.Name); err != nil {
				errs = append(errs, fmt.Errorf("%s: name: %w", where, err))
			}
		}
		if s.ID != "" {
			if err := ValidName(s.ID); err != nil {
				errs = append(errs, fmt.Errorf("%s: id: %w", where, err))
			}
		}
		if s.Port < 0 || s.Port > 65535 {
			errs = append(errs, fmt.Errorf("%s: port %d out of range", where, s.Port))
		}
		key := s.ID
		if key == "" {
			key = fmt.Sprintf("%s\x00%d", s.Name, s.Port)
		}
		if ids[key] {
			errs = append(errs, fmt.Errorf("%s: duplicate service (same id, or same name and port)", where))
		}
		ids[key] = true
		if s.DeregisterCriticalAfter < 0 {
			errs = append(errs, fmt.Errorf("%s: deregister_critical_after must not be negative", where))
		} else if s.DeregisterCriticalAfter > 0 && s.DeregisterCriticalAfter < time.Minute {
			errs = append(errs, fmt.Errorf("%s: deregister_critical_after %s is below Consul's minimum of 1m", where, s.DeregisterCriticalAfter))
		}
		names := map[string]bool{}
		for j, ch := range s.Checks {
			cw := fmt.Sprintf("%s check #%d", where, j+1)
			kinds := 0
			if ch.HTTP != "" {
				kinds++
				if u, err := url.Parse(ch.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					errs = append(errs, fmt.Errorf("%s: http %q is not an http(s) URL", cw, ch.HTTP))
				}
			}
			if ch.TCP != "" {
				kinds++
				if _, port, err := splitHostPort(ch.TCP); err != nil || port == "" {
					errs = append(errs, fmt.Errorf("%s: tcp %q is not host:port", cw, ch.TCP))
				}
			}
			if len(ch.Exec) > 0 {
				kinds++
				if c.Exec == nil {
					errs = append(errs, fmt.Errorf("%s: exec check needs an exec runner (internal: Config.Exec is nil)", cw))
				}
			}
			if kinds != 1 {
				errs = append(errs, fmt.Errorf("%s: exactly one of http, tcp, exec is required", cw))
			}
			if ch.Interval < 0 || ch.Timeout < 0 {
				errs = append(errs, fmt.Errorf("%s: interval and timeout must not be negative", cw))
			}
			if ch.Interval > 0 && ch.Interval < 100*time.Millisecond {
				errs = append(errs, fmt.Errorf("%s: interval %s is below 100ms", cw, ch.Interval))
			}
			switch ch.InitialStatus {
			case "", api.HealthPassing, api.HealthWarning, api.HealthCritical:
			default:
				errs = append(errs, fmt.Errorf("%s: initial_status %q is not passing, warning or critical", cw, ch.InitialStatus))
			}
			if ch.SuccessBeforePassing < 0 || ch.FailuresBeforeCritical < 0 {
				errs = append(errs, fmt.Errorf("%s: success_before_passing and failures_before_critical must not be negative", cw))
			}
			if ch.Name != "" {
				if names[ch.Name] {
					errs = append(errs, fmt.Errorf("%s: duplicate check name %q", cw, ch.Name))
				}
				names[ch.Name] = true
			}
		}
	}
	pnames := map[string]bool{}
	for i, p := range c.Peers {
		where := fmt.Sprintf("peers %q", p.Name)
		if p.Name == "" {
			where = fmt.Sprintf("peers #%d", i+1)
			errs = append(errs, fmt.Errorf("%s: a name is required", where))
		} else if pnames[p.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate peers block", where))
		}
		pnames[p.Name] = true
		if p.Service == "" {
			errs = append(errs, fmt.Errorf("%s: service is required", where))
		} else if err := ValidName(p.Service); err != nil {
			errs = append(errs, fmt.Errorf("%s: service: %w", where, err))
		}
		if p.Min < 0 {
			errs = append(errs, fmt.Errorf("%s: min must not be negative", where))
		}
		if p.Wait < 0 {
			errs = append(errs, fmt.Errorf("%s: wait must not be negative", where))
		}
		if p.Env == "" && p.File == "" {
			errs = append(errs, fmt.Errorf("%s: env or file is required", where))
		}
		if p.Template != "" {
			if _, err := template.New(p.Name).Funcs(templateFuncs()).Parse(p.Template); err != nil {
				errs = append(errs, fmt.Errorf("%s: template: %w", where, err))
			}
		}
		if err := validOnChange(p.OnChange); err != nil {
			errs = append(errs, fmt.Errorf("%s: on_change: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

// ValidName checks a Consul service name or ID the way berth accepts them, from flags and config files alike:
// letters, digits, '-', '_', '.' and ':', and not "." or "..". Service names and IDs go into the URL path of
// the agent API (/v1/agent/service/deregister/ID, /v1/health/service/NAME), where a '/', '%', '?', '#' or a
// dot segment would address another entry — and leave a ghost behind while berth logs "deregistered".
func ValidName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%q is a path segment, not a name", s)
	}
	if len(s) > 256 {
		return fmt.Errorf("%d bytes long; at most 256", len(s))
	}
	for _, r := range s {
		if !nameRune(r) {
			return fmt.Errorf("%q contains %q; use letters, digits, '-', '_', '.' and ':' only", s, r)
		}
	}
	return nil
}

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
}

func validOnChange(s string) error {
	switch {
	case s == "", s == OnChangeNone, s == OnChangeRestart:
		return nil
	case strings.HasPrefix(s, OnChangeSignalPrefix):
		// Same rules as supervisor.ParseSignal (name with or without SIG, any case), without depending on the
		// supervisor package.
		name := strings.ToUpper(strings.TrimSpace(strings.TrimPrefix(s, OnChangeSignalPrefix)))
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if unix.SignalNum(name) == 0 {
			return fmt.Errorf("unknown signal in %q", s)
		}
		return nil
	}
	return fmt.Errorf("%q is not none, restart or signal:NAME", s)
}
