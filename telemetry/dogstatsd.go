package telemetry

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/ecsmeta"
)

// defaultDogStatsDPort is the agent's DogStatsD port when DD_DOGSTATSD_PORT is not set.
const defaultDogStatsDPort = "8125"

// ResolveDogStatsD returns the address for datadog-go ("host:port", or "unix:///path",
// "unixgram:///path", "unixstream:///path") from the telemetry.dogstatsd setting, else DD_DOGSTATSD_URL,
// else DD_AGENT_HOST with DD_DOGSTATSD_PORT (default 8125). It returns "" when none is set (DogStatsD off).
// An unusable value is an error naming where it came from.
func ResolveDogStatsD(setting string, env func(string) string) (string, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	if setting != "" {
		addr, err := parseDogStatsDAddr(setting)
		if err != nil {
			return "", fmt.Errorf("telemetry.dogstatsd %q: %w", setting, err)
		}
		return addr, nil
	}
	if u := env("DD_DOGSTATSD_URL"); u != "" {
		addr, err := parseDogStatsDAddr(u)
		if err != nil {
			return "", fmt.Errorf("DD_DOGSTATSD_URL %q: %w", u, err)
		}
		return addr, nil
	}
	host := strings.TrimSpace(env("DD_AGENT_HOST"))
	if host == "" {
		return "", nil
	}
	if strings.Contains(host, "://") {
		addr, err := parseDogStatsDAddr(host)
		if err != nil {
			return "", fmt.Errorf("DD_AGENT_HOST %q: %w", host, err)
		}
		return addr, nil
	}
	port := defaultDogStatsDPort
	if p := strings.TrimSpace(env("DD_DOGSTATSD_PORT")); p != "" {
		if err := checkPort(p); err != nil {
			return "", fmt.Errorf("DD_DOGSTATSD_PORT %q: %w", p, err)
		}
		port = p
	}
	// DD_AGENT_HOST=host:port: the port given there wins.
	addr, err := hostPort(host, port)
	if err != nil {
		return "", fmt.Errorf("DD_AGENT_HOST %q: %w", host, err)
	}
	return addr, nil
}

// hostPort validates HOST:PORT, [IPV6]:PORT, HOST, IPV6 or [IPV6] and returns host:port, with port
// defaultPort when none is given.
func hostPort(v, defaultPort string) (string, error) {
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		h, p = v, defaultPort
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			h = v[1 : len(v)-1]
		}
	}
	if err := checkHost(h); err != nil {
		return "", err
	}
	if err := checkPort(p); err != nil {
		return "", err
	}
	return net.JoinHostPort(h, p), nil
}

// checkHost accepts a DNS name or an IP address (IPv6 with an optional %zone).
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("missing host")
	}
	if strings.Contains(h, ":") {
		ip, zone, hasZone := strings.Cut(h, "%")
		if net.ParseIP(ip) == nil || hasZone && !isName(zone) {
			return fmt.Errorf("host %q is neither a name nor an IP address; want udp://HOST:PORT", h)
		}
		return nil
	}
	if !isName(h) {
		return fmt.Errorf("host %q is neither a name nor an IP address; want udp://HOST:PORT", h)
	}
	return nil
}

// isName reports whether s is a non-empty run of letters, digits, '.', '-' and '_'.
func isName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// parseDogStatsDAddr accepts udp://HOST[:PORT], unix:///PATH (and unixgram://, unixstream://), HOST:PORT
// and HOST.
func parseDogStatsDAddr(v string) (string, error) {
	v = strings.TrimSpace(v)
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok {
		scheme, rest = "udp", v
	}
	switch scheme {
	case "unix", "unixgram", "unixstream":
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("want an absolute socket path, as in unix:///var/run/datadog/dsd.socket")
		}
		return scheme + "://" + rest, nil
	case "udp":
		rest = strings.TrimSuffix(rest, "/")
		if rest == "" {
			return "", fmt.Errorf("missing host")
		}
		return hostPort(rest, defaultDogStatsDPort)
	}
	return "", fmt.Errorf("unknown scheme %q: want udp:// or unix://", scheme)
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number between 1 and 65535", p)
	}
	return nil
}

// GlobalTags returns the tags put on every DogStatsD metric, event and service check: env:, service:,
// version: from DD_ENV, DD_SERVICE, DD_VERSION; the tags of DD_TAGS (separated by commas or spaces); and
// ecs_cluster, task_family, task_version, container_name from task (may be nil). No other environment value
// becomes a tag.
func GlobalTags(env func(string) string, task *ecsmeta.Task) []string {
	if env == nil {
		env = func(string) string { return "" }
	}
	var tags []string
	// The unified service tagging variables.
	for _, m := range [...]struct{ env, tag string }{{"DD_ENV", "env"}, {"DD_SERVICE", "service"}, {"DD_VERSION", "version"}} {
		if v := strings.TrimSpace(env(m.env)); v != "" {
			tags = append(tags, m.tag+":"+v)
		}
	}
	for _, t := range strings.FieldsFunc(env("DD_TAGS"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		tags = append(tags, t)
	}
	if task != nil {
		for _, kv := range [...][2]string{
			{"ecs_cluster", task.ClusterName()},
			{"task_family", task.Family},
			{"task_version", task.Revision},
			{"container_name", task.ContainerName},
		} {
			if kv[1] != "" {
				tags = append(tags, kv[0]+":"+kv[1])
			}
		}
	}
	return tags
}
