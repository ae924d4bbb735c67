package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// Exit codes (README "Exit codes") that secrets errors map to.
const (
	ExitUnavailable  = 69 // dependency unavailable after retries, or a secret/parameter/key that does not exist
	ExitAccessDenied = 77 // access denied to a secret or KMS key (includes KMS InvalidCiphertextException)
	ExitConfig       = 78 // malformed reference or secret block
	ExitCantCreate   = 73 // a secret file cannot be written here (EX_CANTCREAT): a local failure, not the source's
)

// Error is a secrets failure. Its message names the variable or block and the reference, never a value.
type Error struct {
	// Var is the environment variable ("DB_PASSWORD") or block ("secret \"db\"") the failure belongs to.
	Var string
	// Unit is the unit (main command or job) whose own env block holds Var; "" for berth's environment.
	Unit string
	// Ref is the reference as it may be shown (Ref.String()), or "" when not applicable.
	Ref string
	// Code is the berth exit code (ExitUnavailable, ExitAccessDenied, ExitConfig, ExitCantCreate).
	Code int
	// Err is the cause; its text never contains a secret value.
	Err error
}

func (e *Error) Error() string {
	if e.Unit != "" { // a unit's env block: "main: secret DB=ssm:/db: ..." like the supervisor's "main: cannot run"
		c := *e
		c.Unit = ""
		return e.Unit + ": " + c.Error()
	}
	switch {
	case strings.HasPrefix(e.Var, "secret \"") && e.Ref != "": // a block: secret "db" (prod/db): ...
		return fmt.Sprintf("%s (%s): %v", e.Var, e.Ref, e.Err)
	case strings.HasPrefix(e.Var, "secret \""):
		return fmt.Sprintf("%s: %v", e.Var, e.Err)
	case e.Var != "" && e.Ref != "":
		return fmt.Sprintf("secret %s=%s: %v", e.Var, e.Ref, e.Err)
	case e.Var != "":
		return fmt.Sprintf("secret %s: %v", e.Var, e.Err)
	case e.Ref != "":
		return fmt.Sprintf("secret %s: %v", e.Ref, e.Err)
	}
	return fmt.Sprintf("secrets: %v", e.Err)
}

// ExitCode is the berth exit code for this failure (README "Exit codes").
func (e *Error) ExitCode() int { return e.Code }

func (e *Error) Unwrap() error { return e.Err }

// errClass is how a fetch error is handled.
type errClass int

const (
	classRetry    errClass = iota // transient: throttling, 5xx, network; retried within secrets.timeout
	classNotFound                 // 69 at once
	classDenied                   // 77 at once
	classConfig                   // 78 at once (the service rejected the name/format we sent)
	classFatal                    // 69 at once (anything else the service refused)
)

// classOfCode maps a service error code (smithy.APIError.ErrorCode(), never message text) to a class;
// ok=false for codes it does not know.
func classOfCode(code string) (c errClass, ok bool) {
	switch code {
	case "ResourceNotFoundException", // secretsmanager
		"ParameterNotFound", "ParameterVersionNotFound", // ssm
		"NoSuchKey", "NoSuchBucket", "NotFound", // s3
		"NotFoundException": // kms: the key does not exist
		return classNotFound, true
	case "AccessDeniedException", "AccessDenied", "AllAccessDisabled",
		"InvalidCiphertextException", "IncorrectKeyException", // kms: wrong encryption context or key — see doc.go
		"DecryptionFailure", // secretsmanager could not use its KMS key
		"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"ExpiredToken", "ExpiredTokenException":
		return classDenied, true
	case "ValidationException", "InvalidParameterException", "InvalidKeyId", "InvalidKeyUsageException":
		return classConfig, true
	}
	return 0, false
}

// classify decides how a fetch error is handled, using the SDK's own retryable checks (throttle codes, 5xx,
// connection errors) for the transient class.
func classify(err error) errClass {
	if err == nil {
		return classFatal
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if c, ok := classOfCode(apiErr.ErrorCode()); ok {
			return c
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classRetry // the caller looks at its own context to tell shutdown from budget exhaustion
	}
	if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary {
		return classRetry
	}
	var respErr interface{ HTTPStatusCode() int }
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500 {
		return classRetry
	}
	if apiErr == nil {
		// Not a service answer at all (credential chain, DNS, TLS): treat as unavailable and retry; the budget
		// bounds it.
		return classRetry
	}
	return classFatal
}

func codeOf(c errClass) int {
	switch c {
	case classDenied:
		return ExitAccessDenied
	case classConfig:
		return ExitConfig
	}
	return ExitUnavailable
}

// describe is a one-line cause without the SDK's request ids: "not found (ResourceNotFoundException)".
func describe(c errClass, err error) error {
	var apiErr smithy.APIError
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	switch c {
	case classNotFound:
		return fmt.Errorf("not found (%s): %w", code, err)
	case classDenied:
		if code == "InvalidCiphertextException" || code == "IncorrectKeyException" {
			return fmt.Errorf("access denied: KMS cannot decrypt with this key and encryption context (%s): %w", code, err)
		}
		return fmt.Errorf("access denied (%s): %w", code, err)
	case classConfig:
		return fmt.Errorf("rejected by the service (%s): %w", code, err)
	}
	return err
}
