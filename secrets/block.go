package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/field"
	"github.com/berth-dev/berth/onchange"
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
	// S3 is an `s3://bucket/key` env file (SSE-KMS is transparent to the reader).
	S3 string
	// Format is how an S3 object is read: FormatEnvFile (default: docker's --env-file, as ECS
	// environmentFiles) or FormatDotenv (quotes, escapes, inline comments).
	Format string
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
	// Mode is the permission of File; 0 means DefaultFileMode (0400).
	Mode os.FileMode
	// UID and GID own File; -1 means don't chown (berth's own user). The integrator sets the process's user.
	UID, GID int
	// Refresh re-reads the source this often (0 = never); see Resolver.Run.
	Refresh time.Duration
	// OnChange is applied when a refresh sees a new version (zero: none).
	OnChange onchange.Action
}

// DefaultFileMode is the mode of a secret file when the block sets none.
const DefaultFileMode = os.FileMode(0o400)

// WithDefaults fills in what the block leaves unset: Mode 0400 when there is a File.
func (b Block) WithDefaults() Block {
	if b.File != "" && b.Mode == 0 {
		b.Mode = DefaultFileMode
	}
	return b
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

// Validate checks the block and returns every problem, each a *field.Error naming its key; Error() of each
// names the block. The config package puts file:line:col in front of them.
func (b Block) Validate() error {
	if b.Name == "" {
		return &field.Error{Msg: "secret block: empty name", Named: true}
	}
	v := &field.Block{Name: b.label()}
	src := b.sources()
	switch len(src) {
	case 0:
		v.Blockf("%s: needs one source: kms_file, secretsmanager, ssm, ssm_path or s3", b.label())
	case 1:
	default:
		v.Namedf(src[1], "%s: %s and %s both set; a secret block has exactly one source", b.label(), src[0], src[1])
	}
	if b.Env == "" && len(b.EnvMap) == 0 && b.EnvPrefix == "" && b.File == "" {
		v.Blockf("%s: needs a destination: env, env_prefix or file", b.label())
	}
	only := func(key string, set bool, source string, sourceSet bool) {
		if set && !sourceSet {
			v.Keyf(key, "%s goes only with %s", key, source)
		}
	}
	only("encryption_context", len(b.EncryptionContext) > 0, "kms_file", b.KMSFile != "")
	only("version_stage", b.VersionStage != "", "secretsmanager", b.SecretsManager != "")
	only("version_id", b.VersionID != "", "secretsmanager", b.SecretsManager != "")
	only("mode", b.Mode != 0, "file", b.File != "")
	only("format", b.Format != "", "s3", b.S3 != "")
	if b.Format != "" && b.Format != FormatEnvFile && b.Format != FormatDotenv {
		v.Valuef("format", "format: %q is not one of %q, %q", b.Format, FormatEnvFile, FormatDotenv)
	}
	if b.SecretsManager != "" {
		ref, ok, err := ParseRef("secretsmanager:" + b.SecretsManager)
		if !ok || err != nil || ref.JSONKey != "" || ref.VersionStage != "" || ref.VersionID != "" {
			v.Valuef("secretsmanager", "secretsmanager: want a secret name or ARN")
		}
		if b.VersionStage != "" && !syntax().stage.MatchString(b.VersionStage) {
			v.Valuef("version_stage", "bad version_stage")
		}
		if b.VersionID != "" && !syntax().versionID.MatchString(b.VersionID) {
			v.Valuef("version_id", "bad version_id")
		}
	}
	if b.SSM != "" {
		if _, _, err := ParseRef("ssm:" + b.SSM); err != nil {
			v.Valuef("ssm", "ssm: %v", err)
		}
	}
	if b.SSMPath != "" {
		if !strings.HasPrefix(b.SSMPath, "/") || (b.SSMPath != "/" && checkSSMName(strings.TrimSuffix(b.SSMPath, "/")) != nil) {
			v.Valuef("ssm_path", "ssm_path: want an absolute parameter path such as /prod/app")
		}
	}
	if b.S3 != "" {
		if _, _, err := parseS3URL(b.S3); err != nil {
			v.Valuef("s3", "s3: %q is not s3://bucket/key", b.S3)
		}
	}
	if b.KMSFile != "" && !filepath.IsAbs(b.KMSFile) {
		v.Valuef("kms_file", "kms_file: %q is not an absolute path", b.KMSFile)
	}
	if b.Env != "" {
		if !validEnvName(b.Env) {
			v.Valuef("env", "env: %q is not a valid variable name", b.Env)
		}
		if b.SSMPath != "" {
			v.Keyf("env", "env: ssm_path reads many parameters; use a map { VAR = \"name\" }, env_prefix or file")
		}
	}
	for _, name := range sortedKeys(b.EnvMap) {
		if !validEnvName(name) {
			v.Keyf("env."+name, "env: %q is not a valid variable name", name)
		}
		if b.EnvMap[name] == "" {
			v.Valuef("env."+name, "env: %s maps to an empty key", name)
		}
	}
	if b.EnvPrefix != "" && !validEnvName(b.EnvPrefix) {
		v.Valuef("env_prefix", "env_prefix: %q is not a valid variable name prefix", b.EnvPrefix)
	}
	if b.File != "" && !filepath.IsAbs(b.File) {
		v.Valuef("file", "file: %q is not an absolute path", b.File)
	}
	if b.Mode&^os.ModePerm != 0 {
		v.Valuef("mode", "mode %o: only permission bits are allowed", uint32(b.Mode))
	}
	if b.UID < -1 || b.GID < -1 {
		v.Valuef("user", "bad uid/gid")
	}
	if b.Refresh < 0 {
		v.Valuef("refresh", "refresh must not be negative")
	}
	if !b.OnChange.None() && b.Refresh == 0 {
		v.Keyf("on_change", "on_change needs refresh")
	}
	return v.Err()
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
