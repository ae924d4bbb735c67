#!/usr/bin/env bash
# make demo: berth end to end on one machine, with the real components and nothing faked.
#
#   - a local Consul agent (consul agent -dev) and a local moto_server (AWS Secrets Manager);
#   - a NATS auth token stored in Secrets Manager;
#   - three nats-servers, each under its own berth, that
#       * get the token injected from Secrets Manager (NATS_TOKEN=secretsmanager:demo/nats:token; berth's own
#         environment keeps the reference, output is redacted),
#       * register their cluster port in Consul as service "nats" with a TCP check berth runs,
#       * find each other through a berth `peers` block that renders the nats-server config (cluster routes)
#         and SIGHUPs nats-server when the membership changes.
#
# Interactive: prints what to look at, then waits for Ctrl-C and cleans up. Non-interactive (stdin is not a
# terminal, or DEMO_NONINTERACTIVE=1): prints the same and exits 0. Needs bin/berth and .tools/bin (make build
# tools), moto_server, aws or python3 with boto3, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BERTH=${BERTH:-$ROOT/bin/berth} # the test passes its own build
CONSUL=$ROOT/.tools/bin/consul
NATS=$ROOT/.tools/bin/nats-server
NODES=3
WAIT_PEERS=3s

if [[ -t 1 ]]; then B=$'\033[1m' R=$'\033[31m' N=$'\033[0m'; else B='' R='' N=''; fi
red() { printf '%s%s%s\n' "$R" "$*" "$N"; }
bold() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
die() { red "demo: $*" >&2; exit 1; }

for f in "$BERTH" "$CONSUL" "$NATS"; do [[ -x $f ]] || die "$f is missing: run \`make build tools\` (or just \`make demo\`)"; done
command -v moto_server >/dev/null || die "moto_server is missing: run \`make deps\`"
command -v curl >/dev/null || die "curl is missing"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-demo.XXXXXX")
PIDS=()        # background components, stopped in reverse order
BERTH_PIDS=()
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  trap '' PIPE # stdout may be gone (demo | head): cleaning up must still finish
  set +e
  echo
  echo "demo: cleaning up"
  # berth first: each deregisters from Consul, then stops its nats-server (SIGTERM → drain → stop)
  for p in "${BERTH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BERTH_PIDS[@]}"; do
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [[ $code -ne 0 && -d $WORK ]]; then
    echo "demo: failed; last lines of each log:" >&2
    for l in "$WORK"/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done
  fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# freeport prints a free loopback port that this demo has not handed out before ($WORK/ports): ports taken one
# at a time could repeat, and Consul refuses equal serf LAN and WAN ports.
freeport() {
  python3 - "$WORK/ports" <<'PY'
import socket, sys
used = set(open(sys.argv[1]).read().split()) if __import__("os").path.exists(sys.argv[1]) else set()
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = str(s.getsockname()[1]); s.close()
    if p not in used:
        break
open(sys.argv[1], "a").write(p + "\n"); print(p)
PY
}

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every 0.2s until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what not ready within ${secs}s"
    sleep 0.2
  done
}

bold "starting Consul and moto_server"
CONSUL_PORT=$(freeport)
"$CONSUL" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -http-port "$CONSUL_PORT" -dns-port -1 -grpc-port -1 \
  -grpc-tls-port -1 -serf-lan-port "$(freeport)" -serf-wan-port "$(freeport)" -server-port "$(freeport)" \
  -log-level warn -node berth-demo >"$WORK/consul.log" 2>&1 &
PIDS+=($!)
export CONSUL_HTTP_ADDR=127.0.0.1:$CONSUL_PORT
has_leader() { curl -fsS "http://$CONSUL_HTTP_ADDR/v1/status/leader" | grep -q '[0-9]'; }
wait_for 60 "Consul (leader election)" has_leader
echo "consul      http://$CONSUL_HTTP_ADDR/ui"

MOTO_PORT=$(freeport)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
wait_for 60 "moto_server" curl -fsS "$AWS_ENDPOINT_URL/moto-api/"
echo "moto_server $AWS_ENDPOINT_URL"

bold "storing the NATS auth token in Secrets Manager (moto)"
TOKEN=demo-$(python3 -c 'import secrets; print(secrets.token_hex(12))')
if command -v aws >/dev/null; then
  aws secretsmanager create-secret --name demo/nats --secret-string "{\"token\":\"$TOKEN\"}" >/dev/null
else
  python3 -c 'import boto3,sys; boto3.client("secretsmanager").create_secret(Name="demo/nats", SecretString=sys.argv[1])' \
    "{\"token\":\"$TOKEN\"}"
fi
echo "secret demo/nats created (the demo keeps the value to itself; berth resolves it for the servers)"

# node_config I: the berth config of node I. The peers template renders the whole nats-server config; the
# token stays a nats variable ($NATS_TOKEN, from the environment berth resolved).
declare -a CLIENT CLUSTER MON
node_config() {
  local i=$1
  cat <<EOF
control_socket = "$WORK/n$i.sock"

service "nats" {
  port    = ${CLUSTER[i]}
  address = "127.0.0.1"
  tags    = ["demo"]
  meta    = { node = "n$i", client_port = "${CLIENT[i]}", monitor_port = "${MON[i]}" }
  check {
    tcp      = "127.0.0.1:${CLUSTER[i]}"
    interval = "2s"
  }
}

peers "routes" {
  service   = "nats"
  min       = 2
  wait      = "$WAIT_PEERS"
  file      = "$WORK/n$i-nats.conf"
  on_change = "signal:SIGHUP"
  template  = <<EOT
server_name: n$i
port: ${CLIENT[i]}
http: "127.0.0.1:${MON[i]}"
authorization { token: \$NATS_TOKEN }
cluster {
  name: berth-demo
  listen: "127.0.0.1:${CLUSTER[i]}"
  pool_size: -1
  routes: [
{{range .}}    "nats-route://{{.Address}}:{{.Port}}"
{{end}}  ]
}
EOT
}
EOF
}

start_node() {
  local i=$1
  CLIENT[i]=$(freeport) CLUSTER[i]=$(freeport) MON[i]=$(freeport)
  node_config "$i" >"$WORK/n$i.hcl"
  "$BERTH" validate -config "$WORK/n$i.hcl" >/dev/null || die "berth validate rejected $WORK/n$i.hcl"
  NATS_TOKEN=secretsmanager:demo/nats:token "$BERTH" run -config "$WORK/n$i.hcl" -- "$NATS" -c "$WORK/n$i-nats.conf" \
    >"$WORK/n$i.log" 2>&1 &
  BERTH_PIDS+=($!)
  echo "n$i: berth pid $!, nats client :${CLIENT[i]}, cluster :${CLUSTER[i]}, monitoring http://127.0.0.1:${MON[i]}"
}

passing_count() {
  curl -fsS "http://$CONSUL_HTTP_ADDR/v1/health/service/nats?passing" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
passing_at_least() { [[ $(passing_count) -ge $1 ]]; }
routes_of() { curl -fsS "http://127.0.0.1:${MON[$1]}/routez" | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_routes"])'; }
all_routed() {
  for i in $(seq "$NODES"); do [[ $(routes_of "$i") -eq $((NODES - 1)) ]] || return 1; done
}

bold "starting $NODES nats-servers under berth"
echo "(n1 finds no peers and starts alone after wait = $WAIT_PEERS; the others find it in Consul)"
start_node 1
wait_for 60 "n1 passing in Consul" passing_at_least 1
for i in $(seq 2 "$NODES"); do start_node "$i"; done
wait_for 60 "$NODES instances passing in Consul" passing_at_least "$NODES"
wait_for 60 "a full mesh of routes" all_routed

bold "Consul: service nats (curl http://$CONSUL_HTTP_ADDR/v1/health/service/nats)"
curl -fsS "http://$CONSUL_HTTP_ADDR/v1/health/service/nats" | python3 -c "$(cat <<'PY'
import json, sys
print("%-34s %-18s %-8s %s" % ("ID", "address", "status", "check output (berth's TTL note)"))
for e in json.load(sys.stdin):
    s = e["Service"]
    mine = [c for c in e["Checks"] if c["ServiceID"] == s["ID"]]
    worst = "passing"
    for c in e["Checks"]:
        if c["Status"] != "passing":
            worst = c["Status"]
    out = mine[0]["Output"] if mine else ""
    print("%-34s %-18s %-8s %s" % (s["ID"], "%s:%d" % (s["Address"], s["Port"]), worst, out))
PY
)"

bold "NATS routes (GET /routez on each server's monitoring port)"
for i in $(seq "$NODES"); do
  curl -fsS "http://127.0.0.1:${MON[i]}/routez" | python3 -c "$(cat <<'PY'
import json, sys
r = json.load(sys.stdin)
peers = ", ".join("%s (%s:%d)" % (x["remote_name"], x["ip"], x["port"]) for x in r["routes"])
print("%s: %d routes -> %s" % (r["server_name"], r["num_routes"], peers))
PY
)"
done
echo
# n1 rendered its first, empty list at start; a peers watch lets a burst of changes settle (about 1 s of
# quiet, at most 4 s) before it asks for the list again, so the other nodes reach its file a moment after
# they dialled n1 themselves.
routes_rendered() { [[ $(grep -c nats-route "$WORK/n1-nats.conf") -eq $((NODES - 1)) ]]; }
wait_for 30 "n1's routes rendered from Consul" routes_rendered
echo "n1's cluster routes, rendered by its berth from Consul ($WORK/n1-nats.conf):"
grep nats-route "$WORK/n1-nats.conf" | sed 's/^/  /'

bold "the token from Secrets Manager works (a NATS client connects to n1 with it; a wrong one is refused)"
nats_connect() {
  python3 - "$1" "$2" <<'PY'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b"CONNECT " + json.dumps({"auth_token": sys.argv[2], "verbose": False}).encode() + b"\r\nPING\r\n")
print(f.readline().decode().strip())
PY
}
echo "with the token:  $(nats_connect "${CLIENT[1]}" "$TOKEN")"
echo "with a bad one:  $(nats_connect "${CLIENT[1]}" wrong-token)"
if grep -q -- "$TOKEN" "$WORK"/n*.log; then die "the token appeared in berth's output"; fi
echo "the token appears in no berth output, and berth's own environment holds only the reference:"
tr '\0' '\n' <"/proc/${BERTH_PIDS[0]}/environ" | grep '^NATS_TOKEN=' | sed 's/^/  /'

bold "berth ctl status of n1 (BERTH_CONTROL_SOCKET=$WORK/n1.sock berth ctl status)"
BERTH_CONTROL_SOCKET=$WORK/n1.sock "$BERTH" ctl status
echo
echo "berth health of n1: $(BERTH_CONTROL_SOCKET=$WORK/n1.sock "$BERTH" health >/dev/null 2>&1 && echo healthy || echo unhealthy)"

if [[ ${DEMO_NONINTERACTIVE:-} == 1 || ! -t 0 ]]; then
  bold "done (non-interactive)"
  exit 0
fi
bold "running — try:"
cat <<EOF
  curl -s http://$CONSUL_HTTP_ADDR/v1/health/service/nats?pretty     # or the UI: http://$CONSUL_HTTP_ADDR/ui
  curl -s http://127.0.0.1:${MON[1]}/routez
  kill -TERM ${BERTH_PIDS[2]}     # stop n3: it leaves Consul first, and n1/n2 re-render their routes (SIGHUP)
  BERTH_CONTROL_SOCKET=$WORK/n1.sock $BERTH ctl maintenance on
  tail -f $WORK/n1.log
Ctrl-C stops everything.
EOF
while true; do sleep 1; done
