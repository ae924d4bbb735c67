package secrets

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/ecsmeta"
	"github.com/berth-dev/berth/telemetry"
)

// clients are the AWS service clients, created once, lazily, the first time a reference needs one.
type clients struct {
	region string
	sm     *secretsmanager.Client
	ssm    *ssm.Client
	s3     *s3.Client
	kms    *kms.Client
}

// loadAWS builds the clients: cfgOverride or the SDK default chain (env, shared config, ECS task role, IMDS,
// AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>). The region falls back from the chain (AWS_REGION,
// AWS_DEFAULT_REGION, profile) to regionHint (the region of an ARN reference) to the ECS task ARN region.
// The SDK's own retries are off: berth retries within secrets.timeout itself (see withRetry). The SDK's log
// lines go to log (berth's stderr is the application's log stream: nothing unprefixed may reach it), and
// the SDK logs no requests.
func loadAWS(ctx context.Context, cfgOverride *aws.Config, regionHint string, meta *ecsmeta.Cache, log hclog.Logger) (*clients, error) {
	sdkLog := telemetry.AWSLogger(log)
	var cfg aws.Config
	if cfgOverride != nil {
		cfg = cfgOverride.Copy()
	} else {
		var err error
		// The logger must be given here: the credential chain (IMDS) is built with it.
		cfg, err = config.LoadDefaultConfig(ctx, config.WithLogger(sdkLog))
		if err != nil {
			return nil, &Error{Code: ExitConfig, Err: fmt.Errorf("aws configuration: %w", err)}
		}
	}
	if cfg.Region == "" {
		cfg.Region = regionHint
	}
	if cfg.Region == "" && meta != nil {
		task, err := meta.Fetch(ctx)
		if err != nil {
			return nil, &Error{Code: ExitUnavailable, Err: fmt.Errorf("aws region from ECS task metadata: %w", err)}
		}
		cfg.Region = task.Region() // "" for a nil task: reported below
	}
	if cfg.Region == "" {
		return nil, &Error{Code: ExitConfig, Err: fmt.Errorf("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")}
	}
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	cfg.Logger = sdkLog
	cfg.ClientLogMode = 0
	// Local S3 look-alikes (moto, MinIO, LocalStack) behind a custom endpoint want path-style addressing.
	pathStyle := cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	return &clients{
		region: cfg.Region,
		sm:     secretsmanager.NewFromConfig(cfg),
		ssm:    ssm.NewFromConfig(cfg),
		s3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle }),
		kms:    kms.NewFromConfig(cfg),
	}, nil
}

// Per-call region overrides for ARN references in another region than the configured one.
func smRegion(region string) func(*secretsmanager.Options) {
	return func(o *secretsmanager.Options) {
		if region != "" {
			o.Region = region
		}
	}
}

func ssmRegion(region string) func(*ssm.Options) {
	return func(o *ssm.Options) {
		if region != "" {
			o.Region = region
		}
	}
}
