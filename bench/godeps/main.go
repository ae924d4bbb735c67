package main

import (
	"github.com/berth-dev/berth/bench/internal/execwrap"

	_ "github.com/DataDog/datadog-agent/pkg/template/text"
	_ "github.com/DataDog/datadog-go/v5/statsd"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/hcl/v2/hclsyntax"
	_ "github.com/hashicorp/hcl/v2/json"
	_ "github.com/oklog/run"

	_ "github.com/aws/aws-sdk-go-v2/service/kms"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	_ "github.com/aws/aws-sdk-go-v2/service/ssm"
)

func main() { execwrap.Main() }
