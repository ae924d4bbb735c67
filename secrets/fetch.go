package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/sync/errgroup"
)

// unitKind is what one fetch unit reads.
type unitKind int

const (
	unitSM unitKind = iota + 1
	unitSSM
	unitSSMPath
	unitS3
	unitKMSRef
	unitKMSFile
)

// maxS3Object bounds an S3 dotenv file read into memory.
const maxS3Object = 16 << 20

// unit is one distinct thing to fetch: a (secret, version), a parameter, a path, an object, a ciphertext.
// Every reference and block that needs the same unit shares it, so it is fetched once.
type unit struct {
	key     string
	kind    unitKind
	ref     Ref               // unitSM, unitSSM, unitKMSRef
	path    string            // unitSSMPath (parameter path), unitKMSFile (file)
	bucket  string            // unitS3
	object  string            // unitS3
	format  string            // unitS3: FormatEnvFile or FormatDotenv
	encCtx  map[string]string // unitKMSFile; nil = recorded in the envelope
	region  string            // per-call region override ("" = configured region)
	display string            // the reference as messages show it
	user    string            // first variable or block that needs it, for messages
	unitOf  string            // the unit whose env block holds user ("" = shared environment or a block)
	item    *item             // the result, set by a successful fetch
}

// item is a fetched value. It holds plaintext: it never reaches a log line or an error.
type item struct {
	raw     []byte
	keys    map[string]string // ssm_path: relative name -> value
	format  string            // raw is an env file (s3): FormatEnvFile or FormatDotenv
	version string            // version id / number / ETag / digest, shown in status
}

func (u *unit) fail(code int, err error) error {
	return &Error{Var: u.user, Unit: u.unitOf, Ref: u.display, Code: code, Err: err}
}

// plan collects the units of one resolution.
type plan struct {
	units map[string]*unit
	order []*unit
}

func newPlan() *plan { return &plan{units: map[string]*unit{}} }

func (p *plan) add(u *unit) *unit {
	if have, ok := p.units[u.key]; ok {
		return have
	}
	p.units[u.key] = u
	p.order = append(p.order, u)
	return u
}

// refUnit is the unit of a parsed reference.
func refUnit(ref Ref, user, unitOf string) *unit {
	u := &unit{ref: ref, region: ref.Region, display: ref.String(), user: user, unitOf: unitOf}
	switch ref.Kind {
	case KindSecretsManager:
		u.kind = unitSM
		u.key = strings.Join([]string{"sm", ref.Region, ref.ID, ref.VersionStage, ref.VersionID}, "\x00")
	case KindSSM:
		u.kind = unitSSM
		u.key = strings.Join([]string{"ssm", ref.Region, ref.ID, ref.SSMSelector}, "\x00")
	case KindKMS:
		u.kind = unitKMSRef
		sum := sha256.Sum256(ref.Ciphertext)
		u.key = "kms\x00" + string(sum[:])
	}
	return u
}

// blockUnit is the unit of a validated block.
func blockUnit(b Block) *unit {
	user := b.label()
	switch {
	case b.SecretsManager != "":
		ref, _, _ := ParseRef("secretsmanager:" + b.SecretsManager)
		ref.VersionStage, ref.VersionID = b.VersionStage, b.VersionID
		ref.Raw = b.SecretsManager
		return refUnit(ref, user, "")
	case b.SSM != "":
		ref, _, _ := ParseRef("ssm:" + b.SSM)
		ref.Raw = b.SSM
		return refUnit(ref, user, "")
	case b.SSMPath != "":
		return &unit{kind: unitSSMPath, key: "ssmpath\x00" + b.SSMPath, path: b.SSMPath, display: "ssm_path " + b.SSMPath, user: user}
	case b.S3 != "":
		bucket, object, _ := parseS3URL(b.S3)
		format := b.Format
		if format == "" {
			format = FormatEnvFile
		}
		return &unit{kind: unitS3, key: "s3\x00" + format + "\x00" + b.S3, bucket: bucket, object: object, format: format,
			display: b.S3, user: user}
	default:
		ctxJSON, _ := json.Marshal(b.EncryptionContext) // sorted keys: a stable key
		return &unit{kind: unitKMSFile, key: "kmsfile\x00" + b.KMSFile + "\x00" + string(ctxJSON), path: b.KMSFile,
			encCtx: b.EncryptionContext, display: "kms_file " + b.KMSFile, user: user}
	}
}

// Back-off between attempts: a uniform wait in [d/2, 3d/2), d doubling from its base to 5s. Throttling
// starts at 1s rather than 100ms (as the SDK's retry behaviour does): a throttled herd of tasks must spread
// its requests out. Measured and simulated against a 40 TPS token bucket (bench/FLEET.md), the 1s base sends
// 38% fewer requests for 1,000 tasks at the same p99; full jitter ([0, d)) and larger caps sent more requests
// or had longer tails.
const (
	retryBase    = 100 * time.Millisecond
	throttleBase = time.Second
	retryCap     = 5 * time.Second
)

// ThrottleFactor bounds a throttled resolution: past Config.Timeout, berth keeps retrying for as long as AWS
// answers with throttling (it is up, and rationing), until ThrottleFactor × Timeout (2m by default).
const ThrottleFactor = 4

// fetcher runs units against AWS with retries inside the caller's budget.
type fetcher struct {
	c           *clients
	concurrency int
	log         logger
	observe     func(source string, d time.Duration, err error)
	// soft is the end of secrets.timeout. The context fetches run under ends at the throttling bound
	// (ThrottleFactor × timeout); past soft only throttled answers are retried.
	soft      time.Time
	throttled atomic.Bool // logged that throttling outlasted secrets.timeout
}

// logger is the part of hclog.Logger the fetcher uses.
type logger interface {
	Trace(msg string, args ...any)
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
}

// run fetches every unit with a pool of f.concurrency workers. SSM parameters are batched 10 names a call
// (GetParameters' limit), per region. It fails fast: the first error cancels the rest.
func (f *fetcher) run(ctx context.Context, p *plan) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.concurrency)
	ssmByRegion := map[string][]*unit{}
	var regions []string
	for _, u := range p.order {
		if u.kind == unitSSM {
			if _, ok := ssmByRegion[u.region]; !ok {
				regions = append(regions, u.region)
			}
			ssmByRegion[u.region] = append(ssmByRegion[u.region], u)
			continue
		}
		g.Go(func() error { return f.fetchOne(gctx, ctx, u) })
	}
	for _, region := range regions {
		us := ssmByRegion[region]
		for i := 0; i < len(us); i += 10 {
			batch := us[i:min(i+10, len(us))]
			g.Go(func() error { return f.fetchSSMBatch(gctx, ctx, region, batch) })
		}
	}
	return g.Wait()
}

// withRetry calls fn until it succeeds, fails for good, or the budget ends. budget is the context that
// carries the throttling bound (without the fail-fast cancellation of the worker group), used to tell "out of
// time" (69) from "cancelled because another fetch failed". A transient failure other than throttling is
// retried until f.soft (secrets.timeout); a throttled one until budget's deadline.
func (f *fetcher) withRetry(ctx, budget context.Context, u *unit, fn func(context.Context) error) error {
	start := time.Now()
	delay, tdelay := retryBase, throttleBase
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		actx, cancel := context.WithTimeout(ctx, f.attemptTimeout(ctx))
		err := fn(actx)
		cancel()
		if f.observe != nil {
			f.observe(u.kind.source(), time.Since(t0), err)
		}
		if err == nil {
			return nil
		}
		var se *Error
		if errors.As(err, &se) {
			return err
		}
		c := classify(err)
		if c != classRetry {
			return u.fail(codeOf(c), describe(c, err))
		}
		if ctx.Err() != nil {
			return f.ended(ctx, budget, u, start, err)
		}
		var wait time.Duration
		wctx, wcancel := ctx, context.CancelFunc(func() {})
		if isThrottle(err) {
			wait = jitter(tdelay)
			tdelay = min(2*tdelay, retryCap)
			if !time.Now().Before(f.soft) && f.throttled.CompareAndSwap(false, true) {
				dl, _ := budget.Deadline()
				f.log.Info("AWS is throttling past secrets.timeout; retrying while it throttles",
					"ref", u.display, "for_at_most", time.Until(dl).Round(time.Second))
			}
			f.log.Debug("secret fetch throttled, retrying", "ref", u.display, "attempt", attempt, "in", wait.Round(time.Millisecond))
		} else {
			if !time.Now().Before(f.soft) {
				return f.ended(ctx, budget, u, start, err)
			}
			wait = jitter(delay)
			delay = min(2*delay, retryCap)
			wctx, wcancel = context.WithDeadline(ctx, f.soft)
			f.log.Debug("secret fetch failed, retrying", "ref", u.display, "attempt", attempt, "error", err)
		}
		select {
		case <-wctx.Done():
			wcancel()
			return f.ended(ctx, budget, u, start, err)
		case <-time.After(wait):
			wcancel()
		}
	}
}

// jitter is a random wait in [d/2, 3d/2).
func jitter(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d))) + d/2 }

// isThrottle reports whether err is a throttling answer (the SDK's list of throttle codes, HTTP 429).
func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// attemptTimeout bounds one request: a third of what is left of secrets.timeout (of the throttling bound once
// that has passed), at least 2s and at most 10s, so a connection that never answers (a black-holed endpoint)
// costs one attempt, not the whole budget.
func (f *fetcher) attemptTimeout(ctx context.Context) time.Duration {
	left := time.Until(f.soft)
	if dl, ok := ctx.Deadline(); ok && left <= 0 {
		left = time.Until(dl)
	}
	return min(max(left/3, 2*time.Second), 10*time.Second)
}

// ended is the error of a unit whose retries stopped: out of time (69), berth stopping (69), or another unit's
// failure cancelled the group (context.Canceled: that unit's error is the one reported).
func (f *fetcher) ended(ctx, budget context.Context, u *unit, start time.Time, last error) error {
	switch {
	case errors.Is(budget.Err(), context.DeadlineExceeded):
	case budget.Err() != nil:
		return u.fail(ExitUnavailable, fmt.Errorf("cancelled: %w", budget.Err()))
	case ctx.Err() != nil:
		return context.Canceled
	}
	return u.fail(ExitUnavailable, fmt.Errorf("unavailable after retrying for %s: %w", time.Since(start).Round(time.Millisecond), last))
}

func (k unitKind) source() string {
	switch k {
	case unitSM:
		return "secretsmanager"
	case unitSSM, unitSSMPath:
		return "ssm"
	case unitS3:
		return "s3"
	}
	return "kms"
}

func (f *fetcher) fetchOne(ctx, budget context.Context, u *unit) error {
	start := time.Now()
	err := f.withRetry(ctx, budget, u, func(ctx context.Context) error {
		it, err := f.fetch(ctx, u)
		if err == nil {
			u.item = it
		}
		return err
	})
	if err == nil {
		f.log.Trace("secret fetched", "ref", u.display, "version", u.item.version, "duration", time.Since(start))
	}
	return err
}

// fetch reads one non-SSM unit once.
func (f *fetcher) fetch(ctx context.Context, u *unit) (*item, error) {
	switch u.kind {
	case unitSM:
		in := &secretsmanager.GetSecretValueInput{SecretId: &u.ref.ID}
		if u.ref.VersionStage != "" {
			in.VersionStage = &u.ref.VersionStage
		}
		if u.ref.VersionID != "" {
			in.VersionId = &u.ref.VersionID
		}
		out, err := f.c.sm.GetSecretValue(ctx, in, smRegion(u.region))
		if err != nil {
			return nil, err
		}
		it := &item{version: deref(out.VersionId)}
		if out.SecretString != nil {
			it.raw = []byte(*out.SecretString)
		} else {
			it.raw = out.SecretBinary
		}
		return it, nil
	case unitSSMPath:
		return f.fetchSSMPath(ctx, u)
	case unitS3:
		out, err := f.c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &u.bucket, Key: &u.object})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(out.Body, maxS3Object+1))
		if err != nil {
			return nil, err
		}
		if len(raw) > maxS3Object {
			return nil, u.fail(ExitConfig, fmt.Errorf("object larger than %d MiB", maxS3Object>>20))
		}
		v := deref(out.VersionId)
		if v == "" {
			v = strings.Trim(deref(out.ETag), `"`)
		}
		return &item{raw: raw, format: u.format, version: v}, nil
	case unitKMSRef:
		out, err := f.c.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: u.ref.Ciphertext})
		if err != nil {
			return nil, err
		}
		return &item{raw: out.Plaintext}, nil
	case unitKMSFile:
		data, err := os.ReadFile(u.path)
		if err != nil {
			return nil, u.fail(ExitConfig, fmt.Errorf("read kms_file: %w", err))
		}
		pt, _, err := decryptKMSBlob(ctx, f.c.kms, data, u.encCtx)
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Var, se.Ref = u.user, u.display
			}
			return nil, err
		}
		return &item{raw: pt, version: digest(data)}, nil
	}
	return nil, fmt.Errorf("unknown unit kind %d", u.kind)
}

func (f *fetcher) fetchSSMPath(ctx context.Context, u *unit) (*item, error) {
	path := u.path
	t := true
	pager := ssm.NewGetParametersByPathPaginator(f.c.ssm, &ssm.GetParametersByPathInput{
		Path: &path, Recursive: &t, WithDecryption: &t,
	})
	keys := map[string]string{}
	var versions []string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Parameters {
			name := deref(p.Name)
			rel := strings.TrimPrefix(strings.TrimPrefix(name, strings.TrimSuffix(path, "/")), "/")
			keys[rel] = deref(p.Value)
			versions = append(versions, name+"="+strconv.FormatInt(p.Version, 10))
		}
	}
	if len(keys) == 0 {
		return nil, u.fail(ExitUnavailable, errors.New("not found: no parameters under this path"))
	}
	sort.Strings(versions)
	raw, _ := json.Marshal(keys)
	return &item{raw: raw, keys: keys, version: digest([]byte(strings.Join(versions, "\n")))}, nil
}

// fetchSSMBatch reads up to 10 parameters with one GetParameters call (retried as a whole).
func (f *fetcher) fetchSSMBatch(ctx, budget context.Context, region string, batch []*unit) error {
	names := make([]string, len(batch))
	byName := map[string]*unit{}
	for i, u := range batch {
		names[i] = u.ref.ID
		if u.ref.SSMSelector != "" {
			names[i] += ":" + u.ref.SSMSelector
		}
		byName[names[i]] = u
	}
	t := true
	return f.withRetry(ctx, budget, batch[0], func(ctx context.Context) error {
		out, err := f.c.ssm.GetParameters(ctx, &ssm.GetParametersInput{Names: names, WithDecryption: &t}, ssmRegion(region))
		if err != nil {
			return err
		}
		for _, bad := range out.InvalidParameters {
			if u := byName[bad]; u != nil {
				return u.fail(ExitUnavailable, errors.New("not found (ssm InvalidParameters)"))
			}
			return batch[0].fail(ExitUnavailable, errors.New("not found (ssm InvalidParameters)"))
		}
		for _, p := range out.Parameters {
			name := deref(p.Name)
			var u *unit
			if p.Selector != nil {
				u = byName[name+*p.Selector]
			} else {
				// No Selector in the answer (moto): the same name may come back once per requested version, so
				// match the version number first, then the unversioned request, then any label.
				version := strconv.FormatInt(p.Version, 10)
				for _, want := range []func(*unit) bool{
					func(c *unit) bool { return c.ref.SSMSelector == version },
					func(c *unit) bool { return c.ref.SSMSelector == "" },
					func(c *unit) bool { return true },
				} {
					for _, c := range batch {
						if u == nil && c.ref.ID == name && c.item == nil && want(c) {
							u = c
						}
					}
				}
			}
			if u != nil {
				u.item = &item{raw: []byte(deref(p.Value)), version: strconv.FormatInt(p.Version, 10)}
			}
		}
		for _, u := range batch {
			if u.item == nil {
				return u.fail(ExitUnavailable, errors.New("not found (missing from ssm GetParameters answer)"))
			}
			f.log.Trace("secret fetched", "ref", u.display, "version", u.item.version)
		}
		return nil
	})
}

// digest is a short, non-reversible version tag of data (a ciphertext or a version list, never plaintext).
func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// jsonObject reads a value as a JSON object: string members as they are, any other member as its compact
// JSON text (what ECS does for a non-string JSON key). The error never quotes the value.
func jsonObject(raw []byte) (map[string]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("value is not a JSON object")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, errors.New("value is not a JSON object")
			}
		} else {
			var b bytes.Buffer
			if err := json.Compact(&b, v); err != nil {
				return nil, errors.New("value is not a JSON object")
			}
			s = b.String()
		}
		out[k] = s
	}
	return out, nil
}

// keysOf returns the named members of a fetched value: the parameters of an ssm_path, the entries of a
// dotenv file, else the members of a JSON object.
func (it *item) keysOf() (map[string]string, error) {
	switch {
	case it.keys != nil:
		return it.keys, nil
	case it.format != "":
		parse := ParseEnvFile
		if it.format == FormatDotenv {
			parse = ParseDotenv
		}
		entries, err := parse(it.raw)
		if err != nil {
			return nil, err
		}
		m := make(map[string]string, len(entries))
		for _, e := range entries {
			m[e.Key] = e.Value
		}
		return m, nil
	}
	return jsonObject(it.raw)
}
