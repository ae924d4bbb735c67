package telemetry

import (
	"fmt"
	"strings"

	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-hclog"
)

// AWSLogger routes the AWS SDK's log (aws.Config.Logger, config.WithLogger) into log, so that the SDK's
// lines ("falling back to IMDSv1", a skipped checksum) carry berth's format instead of going to stderr as
// "SDK 2026/01/02 15:04:05 WARN ...". The SDK's Warn is hclog's Warn, its Debug is Debug.
func AWSLogger(log hclog.Logger) logging.Logger { return awsLogger{log} }

type awsLogger struct{ log hclog.Logger }

func (l awsLogger) Logf(c logging.Classification, format string, v ...any) {
	level := hclog.Info
	switch c {
	case logging.Warn:
		level = hclog.Warn
	case logging.Debug:
		level = hclog.Debug
	}
	if !l.log.IsDebug() && level == hclog.Debug {
		return // skip the formatting
	}
	l.log.Log(level, strings.TrimRight(fmt.Sprintf(format, v...), "\n"))
}
