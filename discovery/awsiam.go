package discovery

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/hashicorp/go-hclog"

	"github.com/berth-dev/berth/telemetry"
)

// Consul's aws-iam auth method takes a bearer token that is a signed, unsent STS GetCallerIdentity request;
// the Consul server sends it to STS and trusts the identity STS answers with. This builds exactly the login
// data of HashiCorp's consul-awsauth (GenerateLoginData: iam_http_request_method, iam_request_url,
// iam_request_headers, iam_request_body, base64), with aws-sdk-go-v2's signer and credential chain, which
// berth already carries for secrets. consul-awsauth signs with aws-sdk-go v1, whose endpoints table alone
// costs every berth start 8 ms and 2.2 MB of package init, whether or not login is configured.

// Header names of the aws-iam auth method (Consul's defaults, as consul-awsauth uses them).
const (
	iamServerIDHeader      = "X-Consul-IAM-ServerID"
	iamEntityMethodHeader  = "X-Consul-IAM-GetEntity-Method"
	iamEntityURLHeader     = "X-Consul-IAM-GetEntity-URL"
	iamEntityHeadersHeader = "X-Consul-IAM-GetEntity-Headers"
	iamEntityBodyHeader    = "X-Consul-IAM-GetEntity-Body"
)

// iamLoginData signs the STS GetCallerIdentity request of an aws-iam login with the task's credentials (the
// SDK's default chain: environment, ECS task role, IMDS). The region is sts_region, else the SDK's (AWS_REGION,
// profile), else us-east-1; sts_endpoint "" is STS's regional endpoint for it. The SDK's log lines (the IMDS
// credential provider's) go to log.
func iamLoginData(ctx context.Context, lc *LoginConfig, client *http.Client, log hclog.Logger) (map[string]any, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(telemetry.AWSLogger(log))}
	if lc.STSRegion != "" {
		opts = append(opts, awsconfig.WithRegion(lc.STSRegion))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w", err)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w", err)
	}
	endpoint := lc.STSEndpoint
	if endpoint == "" {
		endpoint = "https://sts." + region + ".amazonaws.com"
	}
	signer := v4.NewSigner()
	sign := func(method, rawURL, body, service, signRegion string, extra http.Header) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, rawURL, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		for k, vs := range extra {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		sum := sha256.Sum256([]byte(body))
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), service, signRegion, time.Now()); err != nil {
			return nil, err
		}
		return req, nil
	}
	extra := http.Header{}
	if lc.ServerIDHeaderValue != "" {
		extra.Set(iamServerIDHeader, lc.ServerIDHeaderValue)
	}
	if lc.IncludeIAMEntity {
		entity, err := iamEntityRequest(ctx, sign, endpoint, region, lc, client)
		if err != nil {
			return nil, err
		}
		headers, err := json.Marshal(entity.Header)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(entity.Body)
		extra.Set(iamEntityMethodHeader, entity.Method)
		extra.Set(iamEntityURLHeader, entity.URL.String())
		extra.Set(iamEntityHeadersHeader, string(headers))
		extra.Set(iamEntityBodyHeader, string(body))
	}
	const body = "Action=GetCallerIdentity&Version=2011-06-15"
	req, err := sign(http.MethodPost, endpoint+"/", body, "sts", region, extra)
	if err != nil {
		return nil, fmt.Errorf("sign the STS request: %w", err)
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"iam_http_request_method": req.Method,
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(req.URL.String())),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
		"iam_request_body":        base64.StdEncoding.EncodeToString([]byte(body)),
	}, nil
}

type signFunc func(method, rawURL, body, service, region string, extra http.Header) (*http.Request, error)

// iamEntityRequest asks STS who berth is and signs the iam:GetRole (or GetUser) request for that entity,
// which the auth method's include_iam_entity (bound IAM tags or paths) needs.
func iamEntityRequest(ctx context.Context, sign signFunc, endpoint, region string, lc *LoginConfig, client *http.Client) (*http.Request, error) {
	const body = "Action=GetCallerIdentity&Version=2011-06-15"
	req, err := sign(http.MethodPost, endpoint+"/", body, "sts", region, nil)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("STS GetCallerIdentity: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Arn string `xml:"GetCallerIdentityResult>Arn"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("STS GetCallerIdentity: %s", resp.Status)
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("STS GetCallerIdentity: %w", err)
	}
	// arn:aws:sts::123:assumed-role/NAME/session, arn:aws:iam::123:role/path/NAME, arn:aws:iam::123:user/NAME
	parts := strings.SplitN(out.Arn, ":", 6)
	if len(parts) != 6 {
		return nil, fmt.Errorf("STS GetCallerIdentity: unexpected ARN %q", out.Arn)
	}
	res := strings.Split(parts[5], "/")
	var action, param, name string
	switch {
	case res[0] == "assumed-role" && len(res) >= 2:
		action, param, name = "GetRole", "RoleName", res[1]
	case res[0] == "role" && len(res) >= 2:
		action, param, name = "GetRole", "RoleName", res[len(res)-1]
	case res[0] == "user" && len(res) >= 2:
		action, param, name = "GetUser", "UserName", res[len(res)-1]
	default:
		return nil, fmt.Errorf("entity %q is not an IAM role or IAM user", parts[5])
	}
	form := url.Values{"Action": {action}, param: {name}, "Version": {"2010-05-08"}}
	extra := http.Header{}
	if lc.ServerIDHeaderValue != "" {
		extra.Set(iamServerIDHeader, lc.ServerIDHeaderValue)
	}
	return sign(http.MethodPost, "https://iam.amazonaws.com/", form.Encode(), "iam", "us-east-1", extra)
}
