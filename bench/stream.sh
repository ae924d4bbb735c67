#!/usr/bin/env bash
# Output streaming throughput (issue 7): BYTES (default 1 GiB) of 100-byte lines written by `testapp -spew`
# through berth into /dev/null, against the same generator piped through `cat` (one pipe hop and a copier,
# like berth) and written straight to /dev/null. berth hands its own stdout to the child when there is
# nothing to transform (raw, no prefix, no redaction value), so the pipe path is measured with a secret value
# resolved from a real moto_server (1 value, and 20 values), and with logs { format = "json" } and
# logs { prefix = true }. Prints a markdown section on stdout (bench/go-benchmarks.sh appends it to
# bench/RESULTS.md); progress goes to stderr. Best of RUNS (default 3) runs per row.
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${BYTES:-1073741824}
RUNS=${RUNS:-3}
tmp=$(mktemp -d)
moto_pid=
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -ldflags=-E=berth_rt0 -o "$tmp/berth" ./cmd/berth
CGO_ENABLED=0 go build -o "$tmp/testapp" ./tests/testapp
BERTH=$tmp/berth
APP=$tmp/testapp

# moto_server with 20 SSM parameters: their values are what berth redacts
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
  sleep 0.2
done
put() {
  curl -fs "http://127.0.0.1:$port/" -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'X-Amz-Target: AmazonSSM.PutParameter' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0' \
    -d "{\"Name\":\"$1\",\"Value\":\"$2\",\"Type\":\"SecureString\",\"Overwrite\":true}" >/dev/null
}
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
one_env=()
twenty_env=()
for i in $(seq 1 20); do
  put "/bench/v$i" "bench-secret-value-$i-$RANDOM$RANDOM"
  twenty_env+=("BENCH_SECRET_$i=ssm:/bench/v$i")
done
one_env=("BENCH_SECRET_1=ssm:/bench/v1")

printf 'logs {\n  format = "json"\n}\n' >"$tmp/json.hcl"
printf 'logs {\n  prefix = true\n}\n' >"$tmp/prefix.hcl"
B=(-control-socket off -log-level warn)

# best wall time in seconds of RUNS runs of "$@" (a shell snippet), output to /dev/null
best() {
  local best_ns=
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    bash -c "$1" >/dev/null
    t1=$(date +%s%N)
    local d=$((t1 - t0))
    if [ -z "$best_ns" ] || [ "$d" -lt "$best_ns" ]; then best_ns=$d; fi
  done
  python3 -c "print($best_ns/1e9)"
}

declare -a names cmds
add() { names+=("$1"); cmds+=("$2"); }
add "direct: testapp > /dev/null" "'$APP' -spew $BYTES"
add "pipe: testapp | cat > /dev/null" "'$APP' -spew $BYTES | cat"
add "berth raw, passthrough (no redaction value)" "'$BERTH' ${B[*]} -- '$APP' -spew $BYTES"
add "berth raw, pipe path, 1 redaction value" "env ${one_env[*]} '$BERTH' ${B[*]} -- '$APP' -spew $BYTES"
add "berth raw, pipe path, 20 redaction values" "env ${twenty_env[*]} '$BERTH' ${B[*]} -- '$APP' -spew $BYTES"
add "berth logs.prefix = true" "'$BERTH' ${B[*]} -config '$tmp/prefix.hcl' -- '$APP' -spew $BYTES"
add "berth logs.format = json" "'$BERTH' ${B[*]} -config '$tmp/json.hcl' -- '$APP' -spew $BYTES"

declare -a secs
for i in "${!names[@]}"; do
  echo "== stream: ${names[$i]}" >&2
  secs[$i]=$(best "${cmds[$i]}")
done

mib=$(python3 -c "print($BYTES/1048576)")
echo "## Output streaming throughput ($(python3 -c "print(f'{$mib:.0f}')") MiB of 100-byte lines into /dev/null, best of $RUNS)"
echo
echo "Ratios are throughput relative to \`testapp | cat > /dev/null\` (one pipe hop and a copier, as through berth)"
echo "and to writing straight to /dev/null. Issue 7 targets: ≥ 0.95× raw, ≥ 0.8× with redaction."
echo
echo "| path | seconds | MiB/s | × pipe | × direct |"
echo "|---|---|---|---|---|"
for i in "${!names[@]}"; do
  python3 - "${names[$i]}" "${secs[$i]}" "${secs[1]}" "${secs[0]}" "$mib" <<'PY'
import sys
name, s, pipe, direct, mib = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"| {name} | {s:.2f} | {mib/s:.0f} | {pipe/s:.2f} | {direct/s:.2f} |")
PY
done
echo
