package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
)

// Exit codes of RunCLI besides those of Error.
const (
	ExitUsage     = 64             // bad flags
	ExitNoInput   = 66             // -in cannot be read
	ExitCantWrite = ExitCantCreate // -out cannot be written
)

// contextFlag collects repeated -context k=v.
type contextFlag map[string]string

func (c contextFlag) String() string {
	parts := make([]string, 0, len(c))
	for _, k := range sortedKeys(c) {
		parts = append(parts, k+"="+c[k])
	}
	return strings.Join(parts, ",")
}

func (c contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE")
	}
	if _, dup := c[k]; dup {
		return fmt.Errorf("context key %q given twice", k)
	}
	c[k] = v
	return nil
}

// RunCLI is `berth secrets encrypt|decrypt ...` (README "Use it"); args excludes the word "secrets". It returns the
// exit code: 0, 64 usage, 66 unreadable input, 73 unwritable output, 69/77/78 as for Resolve.
//
//	encrypt -key KEY_ID [-context k=v]... [-in FILE] [-out FILE] [-ref]
//	decrypt [-context k=v]... [-in FILE] [-out FILE]
//
// encrypt writes the envelope format (any size); with -ref it instead prints a `kms:BASE64` reference made by
// a raw KMS Encrypt (input ≤ 4096 bytes, no encryption context, since an env reference cannot carry one).
// decrypt reads an envelope, a raw KMS blob or a `kms:BASE64` reference; -context overrides the context
// recorded in an envelope. stdin/stdout are used when -in/-out are absent or "-".
func RunCLI(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "berth: secrets: %s (berth secrets encrypt -h, berth secrets decrypt -h)\n", msg)
		return ExitUsage
	}
	if len(args) == 0 {
		return usage("missing subcommand")
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help": // asked for: the two commands, to stdout, exit 0
		fmt.Fprint(stdout, `usage:
  berth secrets encrypt -key KEY_ID [-context k=v]... [-in FILE] [-out FILE] [-ref]
      encrypt with KMS: an envelope for a kms_file block (any size), or with -ref a kms:BASE64
      reference for an environment variable (at most 4 KiB, no -context)
  berth secrets decrypt [-context k=v]... [-in FILE] [-out FILE]
      decrypt an envelope, a raw KMS blob or a kms:BASE64 reference and write the plaintext
-in and -out default to stdin and stdout. Run 'berth secrets encrypt -h' or 'berth secrets decrypt -h' for the flags.
`)
		return 0
	}
	if cmd != "encrypt" && cmd != "decrypt" {
		return usage(fmt.Sprintf("unknown subcommand %q", cmd))
	}
	fs := flag.NewFlagSet("berth secrets "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	encCtx := contextFlag{}
	fs.Var(encCtx, "context", "KMS encryption context KEY=VALUE (repeatable)")
	in := fs.String("in", "-", "input file (- = stdin)")
	out := fs.String("out", "-", "output file (- = stdout)")
	var key *string
	var asRef *bool
	if cmd == "encrypt" {
		key = fs.String("key", "", "KMS key id, ARN or alias")
		asRef = fs.Bool("ref", false, "print a kms:BASE64 reference (raw KMS Encrypt, ≤ 4 KiB)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) { // asked for: the flags, to stdout, exit 0
			fmt.Fprintf(stdout, "usage: berth secrets %s [flags]\n", cmd)
			if cmd == "encrypt" {
				fmt.Fprintln(stdout, "Writes the envelope format (KMS GenerateDataKey + AES-256-GCM; any size) for a kms_file block,\nor with -ref a kms:BASE64 reference for an environment variable (raw KMS Encrypt, at most 4 KiB).")
			} else {
				fmt.Fprintln(stdout, "Reads an envelope, a raw KMS blob or a kms:BASE64 reference and writes the plaintext.")
			}
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return usage(err.Error())
	}
	if fs.NArg() > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if cmd == "encrypt" && *key == "" {
		return usage("encrypt needs -key")
	}
	if cmd == "encrypt" && *asRef && len(encCtx) > 0 {
		return usage("-ref cannot carry an encryption context; drop -context or write an envelope file")
	}
	fail := func(err error) int {
		msg := err.Error()
		if se, ok := err.(*Error); ok && se.Var == "" && se.Ref == "" {
			msg = se.Err.Error() // "secrets decrypt: secrets: ..." says it twice
		}
		fmt.Fprintf(stderr, "berth: secrets %s: %s\n", cmd, msg)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		return ExitUnavailable
	}

	var data []byte
	var err error
	if *in == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(*in)
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth: secrets %s: read input: %v\n", cmd, err)
		return ExitNoInput
	}

	hint := ""
	if key != nil && strings.HasPrefix(*key, "arn:") {
		if parts := strings.SplitN(*key, ":", 5); len(parts) == 5 {
			hint = parts[3]
		}
	}
	// The SDK's warnings (IMDSv1 fallback) in berth's text format on stderr; stdout carries the result.
	sdkLog := hclog.New(&hclog.LoggerOptions{Name: "berth.secrets.aws", Level: hclog.Warn, Output: stderr, Color: hclog.ColorOff})
	c, err := loadAWS(ctx, nil, hint, metadataCache(os.Getenv(ecsmeta.EnvVar)), sdkLog)
	if err != nil {
		return fail(err)
	}

	var result []byte
	var mode os.FileMode = 0o600
	switch {
	case cmd == "encrypt" && *asRef:
		if len(data) > MaxRawKMS {
			return fail(&Error{Code: ExitConfig, Err: fmt.Errorf("input is %d bytes; a kms: reference holds at most %d (write an envelope file instead)", len(data), MaxRawKMS)})
		}
		o, err := c.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: data})
		if err != nil {
			return fail(cliErr(*key, err))
		}
		result = []byte("kms:" + base64.StdEncoding.EncodeToString(o.CiphertextBlob) + "\n")
		mode = 0o644
	case cmd == "encrypt":
		var ectx map[string]string
		if len(encCtx) > 0 {
			ectx = encCtx
		}
		result, err = SealEnvelope(ctx, c.kms, *key, ectx, data)
		if err != nil {
			return fail(cliErr(*key, err))
		}
		mode = 0o644
	default:
		blob := data
		if t := bytes.TrimSpace(data); bytes.HasPrefix(t, []byte("kms:")) {
			ref, _, err := ParseRef(string(t))
			if err != nil {
				return fail(&Error{Code: ExitConfig, Err: err})
			}
			blob = ref.Ciphertext
		}
		var ectx map[string]string
		if len(encCtx) > 0 {
			ectx = encCtx
		}
		result, _, err = decryptKMSBlob(ctx, c.kms, blob, ectx)
		if err != nil {
			return fail(cliErr("", err))
		}
	}
	if *out == "-" {
		if _, err := stdout.Write(result); err != nil {
			fmt.Fprintf(stderr, "berth: secrets %s: write output: %v\n", cmd, err)
			return ExitCantWrite
		}
		return 0
	}
	if err := WriteFileAtomic(*out, result, mode); err != nil {
		fmt.Fprintf(stderr, "berth: secrets %s: write output: %v\n", cmd, err)
		return ExitCantWrite
	}
	return 0
}

// cliErr turns a KMS error into an *Error with the exit code Resolve would use.
func cliErr(key string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	cl := classify(err)
	e := &Error{Code: codeOf(cl), Err: describe(cl, err)}
	if key != "" {
		e.Ref = "kms key " + key
	}
	return e
}

// metadataCache is the ECS metadata for the region fallback, or nil when not on ECS.
func metadataCache(uri string) *ecsmeta.Cache {
	if uri == "" {
		return nil
	}
	return &ecsmeta.Cache{Client: ecsmeta.Client{URI: uri}}
}
