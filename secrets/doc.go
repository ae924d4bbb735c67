// Package secrets owns berth's secrets: it turns secret references in environment variables and `secret "NAME" {}`
// config blocks into values for the child's environment and into files, before any job or the main command
// starts, and re-reads refreshable blocks afterwards. It also implements `berth secrets encrypt|decrypt`.
// It never logs, returns in an error, or stores in berth's own environment a secret value: messages name the
// variable or block and the reference only.
//
// # References (whole environment values only)
//
//	arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]
//	arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME
//	secretsmanager:ID[:JSON_KEY[:VERSION_STAGE[:VERSION_ID]]]     (ID = name or ARN)
//	ssm:NAME[:VERSION]                                            (NAME may be a path; VERSION a number or label)
//	kms:BASE64_CIPHERTEXT                                          (standard base64 of a raw KMS blob)
//
// The ARN forms are ECS `secrets.valueFrom` verbatim: empty segments are allowed, partitions aws, aws-cn and
// aws-us-gov. An SSM ARN is turned into its parameter name (parameter/prod/key → /prod/key, parameter/key →
// key), so it must name a parameter of this account. Other ARNs and other values are left alone; a value with
// one of these prefixes that does not parse is a config error (exit 78) naming the variable. A variable in
// Config.SkipEnv is never touched. Values are passed byte for byte; a value containing NUL cannot go into an
// environment (78: deliver it to a file). A JSON key whose member is not a string yields the member's compact
// JSON text, as ECS does.
//
// Inside a longer value a reference is embedded by the config file's secret("REF") function, which returns
// Marker(REF): private-use Unicode delimiters around the base64url of REF. Resolve replaces markers in every
// variable (even one in SkipEnv: a marker is always an explicit request).
//
// # Blocks
//
// A Block has one source (kms_file, secretsmanager [+ version_stage / version_id], ssm, ssm_path, s3) and
// one or more destinations:
//   - env: the whole value (for ssm_path, a JSON object of relative name → value; for s3, the file text);
//   - env map { VAR = "key" }: a JSON member, a dotenv key (s3), or a parameter under ssm_path given relative
//     to the path ("db/password") or as its full name;
//   - env_prefix: every key, named PREFIX + EnvName(key): the key upper-cased, with every byte outside
//     [A-Z0-9_] replaced by '_' and a leading '/' dropped (ssm_path "/prod/app" + "/prod/app/db/pass" →
//     PREFIX + "DB_PASS"; JSON key "api-key" → PREFIX + "API_KEY");
//   - file: the raw value, written to a temporary file in the same directory (created 0755 if missing),
//     fsynced, chmod `mode` (default 0400), chowned to UID/GID when >= 0, then renamed over the destination.
//     Files are only renamed into place once every reference and block has resolved.
//
// Block variables replace variables of the same name from the environment.
//
// # Fetching
//
// Every distinct (secret, version stage, version id), parameter (name, selector), path, object and ciphertext
// is fetched once, by a pool of Config.Concurrency workers (default 8). SSM parameters go 10 names per
// GetParameters call; ssm_path uses GetParametersByPath, recursive, paginated, WithDecryption. After an
// optional random start-up delay in [0, Config.Jitter), the whole resolution has Config.Timeout (default
// 30s). The AWS clients are created on the first resolution that needs one (berth without secrets never
// loads AWS configuration): the SDK default chain (env, shared config, ECS task role, IMDS) including
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>; S3 uses path-style addressing when a custom endpoint is
// set. The region is AWS_REGION, else AWS_DEFAULT_REGION (or the shared profile), else the region of the
// first ARN reference, else the region of the task ARN in the ECS task metadata (Config.MetadataURI); ARN
// references are always fetched in their own region.
//
// # Failures (exit codes of the README, via Error.ExitCode)
//
//   - Transient — throttling codes, HTTP 5xx, connection errors (the SDK's retry.DefaultRetryables), and any
//     non-service error such as the credential chain not answering — are retried with jittered exponential
//     back-off (a wait in [d/2, 3d/2), d doubling to 5s from 100ms, from 1s after a throttling answer) until
//     Timeout, then 69. The SDK's own retryer is disabled so that one budget governs everything. Each attempt
//     has its own deadline, a third of what is left of Timeout (2s to 10s), so a request that is never
//     answered costs one attempt, not the whole budget.
//   - Throttling — the SDK's throttle codes (ThrottlingException, TooManyRequestsException, SlowDown, …) and
//     HTTP 429 — is the one transient answer retried past Timeout: while every answer is throttling, retries
//     go on until ThrottleFactor × Timeout (2m by default), then 69. A throttled answer means the service is up
//     and rationing a quota; SSM's default is 40 GetParameter(s)/GetParametersByPath a second per account and
//     region, so N tasks starting at once need at least N/40 s between them, and a fleet of 1,000 needs
//     about 25s: close to the whole default Timeout, which is still what a failure of any other kind gets.
//     The first non-throttling failure past Timeout ends the retries. The 1s base sends a third fewer
//     requests than 100ms for a herd of 1,000 at the same p99 start delay (bench/FLEET.md).
//   - Not found — ResourceNotFoundException, ParameterNotFound, ParameterVersionNotFound, SSM
//     InvalidParameters, NoSuchKey, NoSuchBucket, KMS NotFoundException, a missing JSON/dotenv/path key, an
//     empty ssm_path — 69 at once, not retried.
//   - Access denied — AccessDenied*, invalid or expired credentials, Secrets Manager DecryptionFailure, and
//     KMS InvalidCiphertextException / IncorrectKeyException — 77. KMS answers a wrong encryption context (and
//     a ciphertext of a key in another account) with InvalidCiphertextException, indistinguishable from a
//     damaged blob; berth reports it as access denied because in practice it is a policy/context mismatch,
//     and the message says "KMS cannot decrypt with this key and encryption context".
//   - Malformed — a bad reference or block, ValidationException / InvalidParameterException from a service,
//     an unreadable kms_file, a corrupt envelope or dotenv file — 78.
//   - Local write failure — a file destination that cannot be written: its directory cannot be created (a
//     path under a regular file, a read-only file system), the temporary file cannot be created, written,
//     chmod'ed, chowned or synced, or the rename fails (the destination is a directory) — 73 (EX_CANTCREAT),
//     not 69: the source answered, this host refused. No file is left half written, and nothing starts. A
//     failure on refresh keeps the current file and logs a warning. `berth secrets -out` uses 73 too.
//
// # Refresh
//
// Resolver.Run re-reads each block with Refresh > 0 on its interval. A new version (Secrets Manager version
// id, SSM version, digest of the ssm_path versions, S3 version id or ETag, digest of the kms_file ciphertext)
// rewrites the file, updates Resolver.Env, passes the new plaintexts to Config.NewValues, and calls
// onChange(block, "restart" | "signal:SIGNAME"). References in environment variables are read once.
//
// # Env files (s3 sources)
//
// By default (format = "env-file") an S3 object is read as docker's --env-file, which is what ECS does with
// environmentFiles: one VAR=VALUE per line, the value everything after the first '=' taken literally (quotes,
// '#' and trailing spaces are part of it), leading white space ignored, lines whose first other character is
// '#' comments, blank lines skipped, lines without '=' skipped, CRLF and a BOM accepted. A password holding
// " #" arrives whole. The dotenv dialect below is used only with format = "dotenv".
//
// # Dotenv dialect (s3 sources with format = "dotenv")
//
// UTF-8 text, LF or CRLF line ends, an optional BOM. Blank lines and lines starting with '#' (after
// whitespace) are ignored. An entry is `[export ]KEY=VALUE` with KEY matching [A-Za-z_][A-Za-z0-9_.-]* and
// whitespace around '=' ignored. An unquoted VALUE is trimmed and ends at " #" (an inline comment). 'single
// quotes' are literal; "double quotes" understand \n \r \t \" \\ \$ (other backslashes stay); either kind may
// span lines; after the closing quote only whitespace or a comment may follow. There is no variable expansion
// ($ is literal). A later duplicate key wins. Errors give the line number only, never content.
//
// # Envelope format (`berth secrets encrypt`, kms_file)
//
// For files of any size (KMS Encrypt stops at 4 KiB):
//
//	berth-envelope v1\n
//	{"alg":"AES-256-GCM","key_id":"<key ARN>","context":{"k":"v"},"data_key":"<base64>","nonce":"<base64>"}\n
//	<AES-256-GCM ciphertext of the plaintext, followed by the 16-byte tag>
//
// data_key is the KMS ciphertext of a fresh 256-bit key from GenerateDataKey (KeySpec AES_256, with the
// encryption context); nonce is 12 random bytes; the GCM additional data is everything before the binary
// part (both header lines, newlines included), so editing the recorded key id or context breaks decryption.
// To decrypt, KMS Decrypt(data_key, context) yields the AES key. The context used is the kms_file block's
// encryption_context (or `decrypt -context`) when given, else the one recorded in the header. A file that
// does not start with "berth-envelope v" is taken as a raw KMS ciphertext blob. The version digit lets a
// future format coexist; this berth reads v1 only.
//
// `berth secrets encrypt -ref` prints `kms:BASE64` from a raw KMS Encrypt instead (≤ 4096 bytes, no
// context). `berth secrets decrypt` reads an envelope, a raw blob, or a `kms:` reference. RunCLI exit codes:
// 64 usage, 66 unreadable -in, 73 unwritable -out, otherwise as above.
package secrets
