package secrets

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/onchange"
)

func TestBlockValidate(t *testing.T) {
	ok := Block{Name: "db", SecretsManager: "prod/db", Env: "DB", UID: -1, GID: -1}
	for _, tc := range []struct {
		name    string
		edit    func(*Block)
		wantErr string // substring; "" = valid
	}{
		{name: "valid", edit: func(*Block) {}},
		{name: "valid file with refresh", edit: func(b *Block) {
			b.File, b.Mode, b.Refresh, b.OnChange = "/run/s/x", 0o440, time.Minute, onchange.Action{Signal: syscall.SIGHUP}
		}},
		{name: "valid ssm_path prefix", edit: func(b *Block) { b.SecretsManager, b.SSMPath, b.Env, b.EnvPrefix = "", "/prod/app", "", "APP_" }},
		{name: "valid s3 map", edit: func(b *Block) { b.SecretsManager, b.S3, b.EnvMap = "", "s3://b/k.env", map[string]string{"X": "Y"} }},
		{name: "valid kms_file", edit: func(b *Block) {
			b.SecretsManager, b.KMSFile, b.EncryptionContext = "", "/app/c.enc", map[string]string{"a": "b"}
		}},
		{name: "no name", edit: func(b *Block) { b.Name = "" }, wantErr: "empty name"},
		{name: "no source", edit: func(b *Block) { b.SecretsManager = "" }, wantErr: `secret "db": needs one source`},
		{name: "two sources", edit: func(b *Block) { b.SSM = "x" }, wantErr: "secretsmanager and ssm both set"},
		{name: "no destination", edit: func(b *Block) { b.Env = "" }, wantErr: "needs a destination"},
		{name: "stage on ssm", edit: func(b *Block) { b.SecretsManager, b.SSM, b.VersionStage = "", "x", "AWSCURRENT" }, wantErr: "version_stage goes only with secretsmanager"},
		{name: "context on sm", edit: func(b *Block) { b.EncryptionContext = map[string]string{"a": "b"} }, wantErr: "encryption_context goes only with kms_file"},
		{name: "sm with key", edit: func(b *Block) { b.SecretsManager = "prod/db:password" }, wantErr: "want a secret name or ARN"},
		{name: "bad ssm", edit: func(b *Block) { b.SecretsManager, b.SSM = "", "/a/" }, wantErr: "ssm:"},
		{name: "relative ssm_path", edit: func(b *Block) { b.SecretsManager, b.SSMPath = "", "prod" }, wantErr: "absolute parameter path"},
		{name: "bad s3", edit: func(b *Block) { b.SecretsManager, b.S3 = "", "https://b/k" }, wantErr: "s3://bucket/key"},
		{name: "relative kms_file", edit: func(b *Block) { b.SecretsManager, b.KMSFile = "", "c.enc" }, wantErr: "absolute"},
		{name: "bad env", edit: func(b *Block) { b.Env = "A=B" }, wantErr: `env: "A=B" is not a valid variable name`},
		{name: "empty map key", edit: func(b *Block) { b.EnvMap = map[string]string{"A": ""} }, wantErr: "empty key"},
		{name: "relative file", edit: func(b *Block) { b.File = "x" }, wantErr: "absolute"},
		{name: "mode without file", edit: func(b *Block) { b.Mode = 0o400 }, wantErr: "mode goes only with file"},
		{name: "setuid mode", edit: func(b *Block) { b.File, b.Mode = "/x", 0o4755|1<<31 }, wantErr: "only permission bits"},
		{name: "on_change without refresh", edit: func(b *Block) { b.OnChange = onchange.Action{Restart: true} }, wantErr: "on_change needs refresh"},
		{name: "negative refresh", edit: func(b *Block) { b.Refresh = -1 }, wantErr: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ok
			tc.edit(&b)
			err := b.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want valid, have %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want an error containing %q, have %v", tc.wantErr, err)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("want a one-line error, have %q", err)
			}
		})
	}
}

func TestResolveWithoutReferencesNeedsNoAWS(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	r, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []string{"PATH=/bin", "ARN=arn:aws:iam::123456789012:role/x", "EMPTY=", "NOEQUALS"}
	res, err := r.Resolve(t.Context(), Env{Shared: in})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Env.Shared, "|") != strings.Join(in, "|") {
		t.Errorf("want the environment unchanged, have %q", res.Env.Shared)
	}
	if r.clients != nil {
		t.Error("want no AWS clients created without references")
	}
}

func TestResolveMalformedIsConfigError(t *testing.T) {
	r, err := New(Config{SkipEnv: []string{"SKIPPED"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Resolve(t.Context(), Env{Shared: []string{"SKIPPED=ssm:", "DB_URL=secretsmanager:a:b:c:d:e"}})
	var se *Error
	if !asError(err, &se) || se.ExitCode() != ExitConfig || !strings.Contains(err.Error(), "DB_URL") {
		t.Fatalf("want a 78 error naming DB_URL, have %v", err)
	}
	_, err = r.Resolve(t.Context(), Env{Shared: []string{"URL=x" + Marker("not-a-ref") + "y"}})
	if !asError(err, &se) || se.ExitCode() != ExitConfig || !strings.Contains(err.Error(), "URL") {
		t.Fatalf("want a 78 error naming URL, have %v", err)
	}
	if _, err := New(Config{Blocks: []Block{{Name: "x"}}}, nil); !asError(err, &se) || se.ExitCode() != ExitConfig {
		t.Fatalf("want a 78 error for an invalid block, have %v", err)
	}
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
