package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/supervisor"
)

// Block is one `secret "NAME" {}` block of the config file: exactly one source, one or more destinations.
type Block struct {
	// Name is the block label; messages say `secret "NAME"`.
	Name string
	// KMSFile is the path of a ciphertext file baked into the image: a raw KMS blob or the envelope format
	// written by `berth secrets encrypt` (see doc.go).
	KMSFile string
	// SecretsManager is a secret name or ARN (GetSecretValue).
	SecretsManager string
	// VersionStage picks a Secrets Manager version by stage (default AWSCURRENT).
	VersionStage string
	// VersionID picks a Secrets Manager version by id.
	VersionID string
	// SSM is one parameter name (always decrypted); "NAME:VERSION" selects a version or label.
	SSM string
	// SSMPath is a path whose parameters are all read, recursively and decrypted.
	SSMPath string
	// S3 is an `s3://bucket/key` dotenv file (SSE-KMS is transparent to the reader).
	S3 string
	// EncryptionContext is the KMS encryption context for KMSFile. For an envelope file, empty means "the
	// context recorded in the file"; set it to insist on a context.
	EncryptionContext map[string]string
	// Env receives the whole value.
	Env string
	// EnvMap maps VAR -> key: a JSON key of the value, a dotenv key (s3), or a parameter path relative to
	// SSMPath ("db/password") or a full parameter name.
	EnvMap map[string]string
	// EnvPrefix exports every key (JSON object, dotenv file, parameters under SSMPath) as PREFIX+EnvName(key).
	EnvPrefix string
	// File receives the value (for ssm_path a JSON object of relative name -> value), written atomically.
	File string
	// Mode is the permission of File; 0 means 0400.
	Mode os.FileMode
	// UID and GID own File; -1 means don't chown (berth's own user). The integrator sets the process's user.
	UID, GID int
	// Refresh re-reads the source this often (0 = never); see Resolver.Run.
	Refresh time.Duration
	// OnChange is applied when a refresh sees a new version: "none" (default), "restart" or "signal:SIGHUP".
	OnChange string
}

func (b Block) label() string { return fmt.Sprintf("secret %q", b.Name) }

// sources lists the configured sources by their config key.
func (b Block) sources() []string {
	var s []string
	for _, kv := range []struct{ name, v string }{
		{"kms_file", b.KMSFile}, {"secretsmanager", b.SecretsManager}, {"ssm", b.SSM},
		{"ssm_path", b.SSMPath}, {"s3", b.S3},
	} {
		if kv.v != "" {
			s = append(s, kv.name)
		}
	}
	return s
}

// Validate checks the block; its errors are one line and name the block. The config package prefixes them
// with file:line:col.
func (b Block) Validate() error {
	if b.Name == "" {
		return fmt.Errorf("secret block: empty name")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", b.label(), fmt.Sprintf(format, args...))
	}
	src := b.sources()
	switch len(src) {
	case 0:
		return fail("no source: set one of kms_file, secretsmanager, ssm, ssm_path, s3")
	case 1:
	default:
		return fail("more than one source (%s): set exactly one", strings.Join(src, ", "))
	}
	if b.Env == "" && len(b.EnvMap) == 0 && b.EnvPrefix == "" && b.File == "" {
		return fail("no destination: set env, env_prefix or file")
	}
	if (b.VersionStage != "" || b.VersionID != "") && b.SecretsManager == "" {
		return fail("version_stage and version_id apply to secretsmanager only")
	}
	if len(b.EncryptionContext) > 0 && b.KMSFile == "" {
		return fail("encryption_context applies to kms_file only")
	}
	if b.SecretsManager != "" {
		ref, ok, err := ParseRef("secretsmanager:" + b.SecretsManager)
		if !ok || err != nil || ref.JSONKey != "" || ref.VersionStage != "" || ref.VersionID != "" {
			return fail("secretsmanager: want a secret name or ARN")
		}
		if b.VersionStage != "" && !syntax().stage.MatchString(b.VersionStage) {
			return fail("bad version_stage")
		}
		if b.VersionID != "" && !syntax().versionID.MatchString(b.VersionID) {
			return fail("bad version_id")
		}
	}
	if b.SSM != "" {
		if _, _, err := ParseRef("ssm:" + b.SSM); err != nil {
			return fail("ssm: %v", err)
		}
	}
	if b.SSMPath != "" {
		if !strings.HasPrefix(b.SSMPath, "/") || (b.SSMPath != "/" && checkSSMName(strings.TrimSuffix(b.SSMPath, "/")) != nil) {
			return fail("ssm_path: want an absolute parameter path such as /prod/app")
		}
	}
	if b.S3 != "" {
		if _, _, err := parseS3URL(b.S3); err != nil {
			return fail("s3: %v", err)
		}
	}
	if b.KMSFile != "" && !filepath.IsAbs(b.KMSFile) {
		return fail("kms_file must be an absolute path")
	}
	if b.Env != "" && !validEnvName(b.Env) {
		return fail("env: bad variable name %q", b.Env)
	}
	for _, v := range sortedKeys(b.EnvMap) {
		if !validEnvName(v) {
			return fail("env: bad variable name %q", v)
		}
		if b.EnvMap[v] == "" {
			return fail("env: %s maps to an empty key", v)
		}
	}
	if b.EnvPrefix != "" && !validEnvName(b.EnvPrefix) {
		return fail("env_prefix: bad prefix %q", b.EnvPrefix)
	}
	if b.File != "" && !filepath.IsAbs(b.File) {
		return fail("file must be an absolute path")
	}
	if b.Mode&^os.ModePerm != 0 {
		return fail("mode %o: only permission bits are allowed", uint32(b.Mode))
	}
	if b.File == "" && (b.Mode != 0) {
		return fail("mode applies to file only")
	}
	if b.UID < -1 || b.GID < -1 {
		return fail("bad uid/gid")
	}
	if b.Refresh < 0 {
		return fail("refresh must not be negative")
	}
	if _, err := parseOnChange(b.OnChange); err != nil {
		return fail("%v", err)
	}
	if b.OnChange != "" && b.OnChange != "none" && b.Refresh == 0 {
		return fail("on_change needs refresh")
	}
	return nil
}

// parseOnChange normalises "", "none", "restart", "signal:SIGHUP" (any name supervisor.ParseSignal accepts).
func parseOnChange(s string) (string, error) {
	switch {
	case s == "" || s == "none":
		return "none", nil
	case s == "restart":
		return s, nil
	case strings.HasPrefix(s, "signal:"):
		sig, err := supervisor.ParseSignal(strings.TrimPrefix(s, "signal:"))
		if err != nil {
			return "", fmt.Errorf("on_change %q: %w", s, err)
		}
		return "signal:" + supervisor.SignalName(sig), nil
	}
	return "", fmt.Errorf("on_change %q: want none, restart or signal:SIGNAME", s)
}

func parseS3URL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("want s3://bucket/key")
	}
	bucket, key, ok = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("want s3://bucket/key")
	}
	return bucket, key, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' || c == 0 || c == ' ' || c == '\t' || c == '\n' {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
