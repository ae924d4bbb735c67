package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	template "github.com/DataDog/datadog-agent/pkg/template/text"
	"github.com/hashicorp/consul/api"

	"github.com/berth-dev/berth/ecsmeta"
	"github.com/berth-dev/berth/field"
	"github.com/berth-dev/berth/onchange"
)

// Defaults (README).
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
	// DefaultSessionTTL is the TTL of catalog mode's session (Consul's minimum is 10s; it invalidates a
	// session 2×TTL after its last renewal).
	DefaultSessionTTL = 15 * time.Second
	// AddressAuto asks berth to find the task's address (ECS metadata, interface, hostname).
	AddressAuto = "auto"
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

// Consul modes (ConsulConfig.Mode).
const (
	// ModeAgent registers with the local Consul agent (/v1/agent/service/register, TTL checks).
	ModeAgent = "agent"
	// ModeCatalog registers the task as a catalog node with the servers, agentless (catalog.go).
	ModeCatalog = "catalog"
)

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
	// Mode is ModeAgent (default, "" means it) or ModeCatalog (`mode`, -consul-mode, BERTH_CONSUL_MODE).
	Mode string
	// Node is catalog mode's node name ("" = the ECS task id, else the hostname).
	Node string
	// SessionTTL is the TTL of catalog mode's liveness session (default 15s, 10s..24h). A SIGKILLed task's
	// entries are reaped about 2×SessionTTL after its last renewal, while another instance of the service runs.
	SessionTTL time.Duration
	// Login, when set, logs in with the task's IAM role through an aws-iam auth method and uses the token
	// (login.go); Token and TokenFile then only serve requests before the login.
	Login *LoginConfig
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
	// interface address, else the hostname. In ECS bridge network mode (agent mode) "auto" registers no address
	// and the host port Docker maps Port to (doc.go); any other value is registered as written, with Port.
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
	// OnChange is what to do when the list changes after start (zero: none).
	OnChange onchange.Action
}

func (p PeersConfig) passingOnly() bool { return p.PassingOnly == nil || *p.PassingOnly }

// WithDefaults fills in the defaults of what the block leaves unset (Timeout).
func (c ConsulConfig) WithDefaults() ConsulConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultConsulTimeout
	}
	if c.Mode == "" {
		c.Mode = ModeAgent
	}
	return c
}

// WithDefaults fills in the defaults of what the block leaves unset (Address, DeregisterCriticalAfter and
// those of every check).
func (s ServiceConfig) WithDefaults() ServiceConfig {
	if s.Address == "" {
		s.Address = AddressAuto
	}
	if s.DeregisterCriticalAfter == 0 {
		s.DeregisterCriticalAfter = DefaultDeregisterCriticalAfter
	}
	s.Checks = slices.Clone(s.Checks)
	for i := range s.Checks {
		s.Checks[i] = s.Checks[i].WithDefaults()
	}
	return s
}

// WithDefaults fills in the defaults of what the block leaves unset: interval 10s, timeout 5s but at most
// the interval, initial status critical, one success before passing and one failure before critical.
func (c CheckConfig) WithDefaults() CheckConfig {
	if c.Interval == 0 {
		c.Interval = DefaultCheckInterval
	}
	if c.Timeout == 0 {
		c.Timeout = min(DefaultCheckTimeout, c.Interval)
	}
	if c.InitialStatus == "" {
		c.InitialStatus = api.HealthCritical
	}
	if c.SuccessBeforePassing == 0 {
		c.SuccessBeforePassing = 1
	}
	if c.FailuresBeforeCritical == 0 {
		c.FailuresBeforeCritical = 1
	}
	return c
}

// WithDefaults fills in the defaults of what the block leaves unset (PassingOnly true, Wait 30s).
func (p PeersConfig) WithDefaults() PeersConfig {
	if p.PassingOnly == nil {
		yes := true
		p.PassingOnly = &yes
	}
	if p.Wait == 0 {
		p.Wait = DefaultPeersWait
	}
	return p
}

// Validate checks the configuration without touching the network. It returns every problem, each a
// *field.Error naming the block and the key (the config package puts file:line:col in front of them).
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.Consul.validate())
	ids := map[string]bool{}
	for i, s := range c.Services {
		errs = append(errs, s.validate(i, c.MetadataURI != "", c.Exec != nil, ids))
	}
	pnames := map[string]bool{}
	for i, p := range c.Peers {
		errs = append(errs, p.validate(i, pnames))
	}
	return joinAll(errs)
}

// joinAll joins the problems of every block into one line.
func joinAll(errs []error) error {
	var b field.Block
	for _, e := range errs {
		b.Add(field.All(e)...)
	}
	return b.Err()
}

func (c ConsulConfig) validate() error {
	v := &field.Block{Name: "consul"}
	if c.Address != "" && strings.Contains(c.Address, "://") {
		if _, err := url.Parse(c.Address); err != nil {
			v.Valuef("address", "address: %v", err)
		}
	}
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		v.Valuef("scheme", "scheme: %q is not one of %q", c.Scheme, []string{"http", "https"})
	}
	switch c.Mode {
	case "", ModeAgent, ModeCatalog:
	default:
		v.Valuef("mode", "mode: %q is not one of %q", c.Mode, []string{ModeAgent, ModeCatalog})
	}
	if c.Node != "" {
		if err := ValidName(c.Node); err != nil {
			v.Valuef("node", "node: %v", err)
		}
	}
	if c.SessionTTL != 0 && (c.SessionTTL < 10*time.Second || c.SessionTTL > 24*time.Hour) {
		v.Valuef("session_ttl", "session_ttl %s is outside Consul's range 10s..24h", c.SessionTTL)
	}
	if c.Login != nil && c.Login.Method == "" {
		v.Valuef("login.method", "login: method is required (the name of the aws-iam auth method)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"request_timeout", c.RequestTimeout}, {"retry_min", c.RetryMin},
		{"retry_max", c.RetryMax}, {"blocking_wait", c.BlockingWait}} {
		if d.v < 0 {
			v.Valuef(d.name, "%s must not be negative", d.name)
		}
	}
	return v.Err()
}

// validate checks service number i; onECS allows an empty name, hasExec an exec check, ids holds the
// services seen so far.
func (s ServiceConfig) validate(i int, onECS, hasExec bool, ids map[string]bool) error {
	where := fmt.Sprintf("service %q", s.Name)
	if s.Name == "" {
		where = fmt.Sprintf("service #%d", i+1)
	}
	v := &field.Block{Name: where}
	if s.Name == "" && !onECS {
		v.Blockf("%s: a name is required when not running on ECS (ECS_CONTAINER_METADATA_URI_V4 unset)", where)
	}
	if s.Name != "" {
		if err := ValidName(s.Name); err != nil {
			v.Blockf("%s: name: %v", where, err)
		}
	}
	if s.ID != "" {
		if err := ValidName(s.ID); err != nil {
			v.Valuef("id", "id: %v", err)
		}
	}
	if s.Port < 0 || s.Port > 65535 {
		v.Valuef("port", "port %d out of range", s.Port)
	}
	key := s.ID
	if key == "" {
		key = fmt.Sprintf("%s\x00%d", s.Name, s.Port)
	}
	if ids[key] {
		v.Blockf("%s: duplicate service (same id, or same name and port)", where)
	}
	ids[key] = true
	if s.DeregisterCriticalAfter < 0 {
		v.Valuef("deregister_critical_after", "deregister_critical_after must not be negative")
	} else if s.DeregisterCriticalAfter > 0 && s.DeregisterCriticalAfter < time.Minute {
		v.Valuef("deregister_critical_after", "deregister_critical_after %s is below Consul's minimum of 1m", s.DeregisterCriticalAfter)
	}
	names := map[string]bool{}
	for j, ch := range s.Checks {
		at := fmt.Sprintf("check.%d", j) // a check's problems are its service's, at check.J.KEY
		var kinds []string
		if ch.HTTP != "" {
			kinds = append(kinds, "http")
			if u, err := url.Parse(ch.HTTP); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.Valuef(at+".http", "http: %q is not an http:// or https:// URL", ch.HTTP)
			}
		}
		if ch.TCP != "" {
			kinds = append(kinds, "tcp")
			if _, port, err := splitHostPort(ch.TCP); err != nil || port == "" {
				v.Valuef(at+".tcp", "tcp: %q is not host:port", ch.TCP)
			}
		}
		if len(ch.Exec) > 0 {
			kinds = append(kinds, "exec")
			if !hasExec {
				v.Valuef(at+".exec", "exec check needs an exec runner (internal: Config.Exec is nil)")
			}
		}
		switch len(kinds) {
		case 0:
			v.Valuef(at, "check: needs one of http, tcp or exec")
		case 1:
		default:
			v.Keyf(at+"."+kinds[1], "check: %s and %s both set; a check has exactly one kind", kinds[0], kinds[1])
		}
		if ch.Interval < 0 || ch.Timeout < 0 {
			v.Valuef(at, "interval and timeout must not be negative")
		}
		if ch.Interval > 0 && ch.Interval < 100*time.Millisecond {
			v.Valuef(at+".interval", "interval %s is below 100ms", ch.Interval)
		}
		if ch.Interval > 0 && ch.Timeout > ch.Interval {
			v.Valuef(at+".timeout", "timeout must not exceed interval (%s)", ch.Interval)
		}
		switch ch.InitialStatus {
		case "", api.HealthPassing, api.HealthWarning, api.HealthCritical:
		default:
			v.Valuef(at+".initial_status", "initial_status: %q is not one of %q", ch.InitialStatus,
				[]string{api.HealthPassing, api.HealthWarning, api.HealthCritical})
		}
		if ch.SuccessBeforePassing < 0 || ch.FailuresBeforeCritical < 0 {
			v.Valuef(at, "success_before_passing and failures_before_critical must not be negative")
		}
		if ch.Name != "" {
			if names[ch.Name] {
				v.Valuef(at+".name", "duplicate check name %q", ch.Name)
			}
			names[ch.Name] = true
		}
	}
	return v.Err()
}

// validate checks peers block number i; names holds the blocks seen so far.
func (p PeersConfig) validate(i int, names map[string]bool) error {
	where := fmt.Sprintf("peers %q", p.Name)
	if p.Name == "" {
		where = fmt.Sprintf("peers #%d", i+1)
	}
	v := &field.Block{Name: where}
	if p.Name == "" {
		v.Blockf("%s: a name is required", where)
	} else if names[p.Name] {
		v.Blockf("%s: duplicate peers block", where)
	}
	names[p.Name] = true
	if p.Service == "" {
		v.Blockf("%s: service is required", where)
	} else if err := ValidName(p.Service); err != nil {
		v.Valuef("service", "service: %v", err)
	}
	if p.Min < 0 {
		v.Valuef("min", "min must not be negative")
	}
	if p.Wait < 0 {
		v.Valuef("wait", "wait must not be negative")
	}
	if p.Env == "" && p.File == "" {
		v.Blockf("%s: needs a destination: env or file", where)
	}
	if strings.ContainsAny(p.Env, "=\x00") {
		v.Valuef("env", "env: %q is not a valid variable name", p.Env)
	}
	if p.Template != "" {
		if _, err := template.New(p.Name).Funcs(templateFuncs()).Parse(p.Template); err != nil {
			v.Valuef("template", "template: %v", err)
		}
	}
	return v.Err()
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
