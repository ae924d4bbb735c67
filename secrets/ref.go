package secrets

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Kind is the source a reference points at.
type Kind int

const (
	// KindSecretsManager is a Secrets Manager secret (GetSecretValue).
	KindSecretsManager Kind = iota + 1
	// KindSSM is an SSM Parameter Store parameter (GetParameters, always decrypted).
	KindSSM
	// KindKMS is a KMS ciphertext decrypted in place (Decrypt).
	KindKMS
)

func (k Kind) String() string {
	switch k {
	case KindSecretsManager:
		return "secretsmanager"
	case KindSSM:
		return "ssm"
	case KindKMS:
		return "kms"
	}
	return "unknown"
}

// Ref is a parsed secret reference. It never holds a plaintext value.
type Ref struct {
	// Kind says which service resolves the reference.
	Kind Kind
	// Raw is the reference exactly as written.
	Raw string
	// ID is the Secrets Manager SecretId (name or ARN without the trailing ECS segments) or the SSM parameter
	// name (an SSM ARN is turned into its name). Empty for KindKMS.
	ID string
	// JSONKey selects one key of a JSON secret (Secrets Manager only); empty means the whole value.
	JSONKey string
	// VersionStage and VersionID pick a Secrets Manager version; empty means AWSCURRENT.
	VersionStage, VersionID string
	// SSMSelector is an SSM version number or label (`ssm:NAME:3`), empty for the latest version.
	SSMSelector string
	// Ciphertext is the decoded KMS ciphertext blob of a `kms:` reference.
	Ciphertext []byte
	// Region is the region segment of an ARN reference (also of an ARN used as a short-form ID), else "".
	Region string
}

// String is the reference as it may appear in logs and messages: `kms:` ciphertexts are shortened (they are
// not secret, only long).
func (r Ref) String() string {
	if r.Kind == KindKMS && len(r.Raw) > 24 {
		return r.Raw[:20] + "…(" + strconv.Itoa(len(r.Ciphertext)) + " bytes)"
	}
	return r.Raw
}

// refSyntax holds the regular expressions of the reference syntax.
type refSyntax struct {
	region, account, smName, ssmName, selector, versionID, stage *regexp.Regexp
}

// syntax compiles the reference syntax on first use; the result is never modified.
var syntax = sync.OnceValue(func() *refSyntax {
	return &refSyntax{
		region:    regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`),
		account:   regexp.MustCompile(`^[0-9]{12}$`),
		smName:    regexp.MustCompile(`^[A-Za-z0-9/_+=.@!-]+$`),
		ssmName:   regexp.MustCompile(`^[A-Za-z0-9/_.-]+$`),
		selector:  regexp.MustCompile(`^[A-Za-z0-9_.-]+$`),
		versionID: regexp.MustCompile(`^[A-Za-z0-9-]+$`),
		stage:     regexp.MustCompile(`^[A-Za-z0-9_.-]+$`),
	}
})

// ParseRef parses a whole environment value. ok=false means the value is not a reference and must be left
// alone; err != nil means it starts like a reference but is malformed (a config error, exit 78, which the
// caller reports together with the variable's name). The error never repeats a `kms:` ciphertext in full.
func ParseRef(s string) (ref Ref, ok bool, err error) {
	switch {
	case strings.HasPrefix(s, "secretsmanager:"):
		ref, err = parseSecretsManagerShort(s, strings.TrimPrefix(s, "secretsmanager:"))
	case strings.HasPrefix(s, "ssm:"):
		ref, err = parseSSMShort(s, strings.TrimPrefix(s, "ssm:"))
	case strings.HasPrefix(s, "kms:"):
		ref, err = parseKMS(s)
	case strings.HasPrefix(s, "arn:"):
		parts := strings.SplitN(s, ":", 4)
		if len(parts) < 4 || (parts[2] != "secretsmanager" && parts[2] != "ssm") {
			return Ref{}, false, nil // some other ARN: an ordinary value
		}
		if parts[2] == "secretsmanager" {
			ref, err = parseSecretsManagerARN(s, s)
		} else {
			ref, err = parseSSMARN(s)
		}
	default:
		return Ref{}, false, nil
	}
	if err != nil {
		return Ref{}, true, err
	}
	return ref, true, nil
}

// parseARNHead checks `arn:PARTITION:SERVICE:REGION:ACCOUNT:` and returns the region and the remainder.
func parseARNHead(arn, service string) (region, rest string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "", "", fmt.Errorf("malformed %s ARN: want arn:PARTITION:%s:REGION:ACCOUNT:...", service, service)
	}
	if p := parts[1]; p != "aws" && p != "aws-cn" && p != "aws-us-gov" {
		return "", "", fmt.Errorf("malformed %s ARN: unknown partition %q (want aws, aws-cn or aws-us-gov)", service, parts[1])
	}
	if parts[2] != service {
		return "", "", fmt.Errorf("malformed ARN: service %q is not %s", parts[2], service)
	}
	if !syntax().region.MatchString(parts[3]) {
		return "", "", fmt.Errorf("malformed %s ARN: bad region %q", service, parts[3])
	}
	if !syntax().account.MatchString(parts[4]) {
		return "", "", fmt.Errorf("malformed %s ARN: account must be 12 digits", service)
	}
	return parts[3], parts[5], nil
}

// parseSecretsManagerARN parses `arn:P:secretsmanager:R:A:secret:NAME[:KEY[:STAGE[:ID]]]` (ECS valueFrom).
func parseSecretsManagerARN(raw, arn string) (Ref, error) {
	region, rest, err := parseARNHead(arn, "secretsmanager")
	if err != nil {
		return Ref{}, err
	}
	segs := strings.Split(rest, ":")
	if segs[0] != "secret" || len(segs) < 2 {
		return Ref{}, fmt.Errorf("malformed secretsmanager ARN: want ...:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]")
	}
	name := segs[1]
	if !syntax().smName.MatchString(name) {
		return Ref{}, fmt.Errorf("malformed secretsmanager ARN: bad secret name")
	}
	id := strings.TrimSuffix(arn, rest) + "secret:" + name
	ref := Ref{Kind: KindSecretsManager, Raw: raw, ID: id, Region: region}
	if err := ref.setSecretsManagerTail(segs[2:]); err != nil {
		return Ref{}, err
	}
	return ref, nil
}

// parseSecretsManagerShort parses `secretsmanager:ID[:KEY[:STAGE[:VERSION_ID]]]`; ID may be an ARN.
func parseSecretsManagerShort(raw, rest string) (Ref, error) {
	if strings.HasPrefix(rest, "arn:") {
		return parseSecretsManagerARN(raw, rest)
	}
	segs := strings.Split(rest, ":")
	if segs[0] == "" {
		return Ref{}, fmt.Errorf("malformed secretsmanager reference: empty secret id")
	}
	if !syntax().smName.MatchString(segs[0]) {
		return Ref{}, fmt.Errorf("malformed secretsmanager reference: bad secret name")
	}
	ref := Ref{Kind: KindSecretsManager, Raw: raw, ID: segs[0]}
	if err := ref.setSecretsManagerTail(segs[1:]); err != nil {
		return Ref{}, err
	}
	return ref, nil
}

func (r *Ref) setSecretsManagerTail(segs []string) error {
	if len(segs) > 3 {
		return fmt.Errorf("malformed secretsmanager reference: too many segments (want NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]])")
	}
	for len(segs) < 3 {
		segs = append(segs, "")
	}
	r.JSONKey, r.VersionStage, r.VersionID = segs[0], segs[1], segs[2]
	if r.VersionStage != "" && !syntax().stage.MatchString(r.VersionStage) {
		return fmt.Errorf("malformed secretsmanager reference: bad version stage")
	}
	if r.VersionID != "" && !syntax().versionID.MatchString(r.VersionID) {
		return fmt.Errorf("malformed secretsmanager reference: bad version id")
	}
	if strings.ContainsAny(r.JSONKey, "\x00\n") {
		return fmt.Errorf("malformed secretsmanager reference: bad JSON key")
	}
	return nil
}

// parseSSMShort parses `ssm:NAME[:VERSION]`; NAME may be a path (/prod/app/key).
func parseSSMShort(raw, rest string) (Ref, error) {
	if strings.HasPrefix(rest, "arn:") {
		ref, err := parseSSMARN(rest)
		ref.Raw = raw
		return ref, err
	}
	name, sel, hasSel := strings.Cut(rest, ":")
	if name == "" {
		return Ref{}, fmt.Errorf("malformed ssm reference: empty parameter name")
	}
	if err := checkSSMName(name); err != nil {
		return Ref{}, err
	}
	if hasSel && !syntax().selector.MatchString(sel) {
		return Ref{}, fmt.Errorf("malformed ssm reference: bad version %q (want ssm:NAME[:VERSION])", sel)
	}
	return Ref{Kind: KindSSM, Raw: raw, ID: name, SSMSelector: sel}, nil
}

// parseSSMARN parses `arn:P:ssm:R:A:parameter/NAME`. The parameter name is what follows "parameter"; a name
// with more than one segment keeps its leading slash (parameter/prod/key → /prod/key), a single segment does
// not (parameter/key → key), which is how SSM builds ARNs.
func parseSSMARN(arn string) (Ref, error) {
	region, rest, err := parseARNHead(arn, "ssm")
	if err != nil {
		return Ref{}, err
	}
	if !strings.HasPrefix(rest, "parameter/") || len(rest) == len("parameter/") {
		return Ref{}, fmt.Errorf("malformed ssm ARN: want ...:parameter/NAME")
	}
	name := strings.TrimPrefix(rest, "parameter")
	if strings.Count(name, "/") == 1 {
		name = name[1:]
	}
	if err := checkSSMName(name); err != nil {
		return Ref{}, err
	}
	return Ref{Kind: KindSSM, Raw: arn, ID: name, Region: region}, nil
}

func checkSSMName(name string) error {
	if !syntax().ssmName.MatchString(name) || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return fmt.Errorf("malformed ssm reference: bad parameter name")
	}
	return nil
}

func parseKMS(s string) (Ref, error) {
	b64 := strings.TrimPrefix(s, "kms:")
	if b64 == "" {
		return Ref{}, fmt.Errorf("malformed kms reference: empty ciphertext")
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Ref{}, fmt.Errorf("malformed kms reference: ciphertext is not standard base64")
	}
	if len(ct) < 16 {
		return Ref{}, fmt.Errorf("malformed kms reference: ciphertext too short")
	}
	return Ref{Kind: KindKMS, Raw: s, Ciphertext: ct}, nil
}

// Marker delimiters: Unicode private-use code points (plane 15) that nobody types, around the base64url of
// the reference, so the reference text itself can never contain the closing delimiter.
const (
	markerOpen  = "\U000F0B00berth-secret:"
	markerClose = "\U000F0B01"
)

// Marker returns an opaque placeholder for a reference embedded in a longer string. The config package's HCL
// function secret("REF") returns Marker(REF) after validating REF with ParseRef; Resolve replaces every marker
// inside any env value with the resolved value. A marker is built from private-use Unicode code points, so a
// user never writes one by accident.
func Marker(ref string) string {
	return markerOpen + base64.RawURLEncoding.EncodeToString([]byte(ref)) + markerClose
}

// markerSpan is one marker found in a value.
type markerSpan struct {
	start, end int // byte offsets of the whole marker in the value
	ref        string
}

// findMarkers returns the markers in v, in order. A marker that cannot be decoded is an error.
func findMarkers(v string) ([]markerSpan, error) {
	var spans []markerSpan
	off := 0
	for {
		i := strings.Index(v[off:], markerOpen)
		if i < 0 {
			return spans, nil
		}
		start := off + i
		j := strings.Index(v[start+len(markerOpen):], markerClose)
		if j < 0 {
			return nil, fmt.Errorf("unterminated secret() marker")
		}
		enc := v[start+len(markerOpen) : start+len(markerOpen)+j]
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("corrupt secret() marker")
		}
		end := start + len(markerOpen) + j + len(markerClose)
		spans = append(spans, markerSpan{start: start, end: end, ref: string(b)})
		off = end
	}
}
