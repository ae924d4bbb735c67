#!/usr/bin/env bash
# Footprint of berth (issue 15) side by side with tini, dumb-init, catatonit and two Go floors, printed as
# markdown for bench/RESULTS.md:
#   - start-up of `X -- /bin/true`: interleaved rounds (bench/interleave), wall, CPU, peak RSS and page faults
#     from each child's rusage;
#   - idle RSS while supervising `sleep`;
#   - resident RSS with a Consul service, an HTTP check every 2s and DogStatsD on (real consul agent -dev);
#   - the release binary's size and what it is made of;
#   - where the floor is: bench/gobaseline (os/exec and nothing else), bench/godeps-required (the required
#     dependencies blank-imported), bench/godeps (everything berth links).
# Usage: bench/footprint.sh [rounds, default 300]. Needs bin/berth (make build) and .tools/bin/consul.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-300}
BERTH=$PWD/bin/berth
CONSUL=$PWD/.tools/bin/consul
[[ -x $BERTH && -x $CONSUL ]] || { echo "bench/footprint.sh: needs bin/berth and .tools/bin/consul (make build tools)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in gobaseline godeps godeps-required interleave; do
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$p" ./bench/$p
done
CGO_ENABLED=0 go build -o "$tmp/testapp" ./tests/testapp
TRUE=$(type -P true)
TINI=$(type -P tini)
DUMB=$(type -P dumb-init)
CATA=$(type -P catatonit)

echo "== footprint: start-up, interleaved ($ROUNDS rounds)" >&2
"$tmp/interleave" -runs "$ROUNDS" -warmup 20 -rss-runs 21 -- "$TRUE" "$TINI -s -- $TRUE" "$DUMB $TRUE" "$CATA -- $TRUE" \
  "$tmp/gobaseline $TRUE" "$tmp/godeps-required $TRUE" "$tmp/godeps $TRUE" \
  "$BERTH -control-socket off -- $TRUE" "$BERTH -- $TRUE" > "$tmp/start.json"

idle() { # VmRSS (KiB) of "$@ sleep 10" after 1.5 s and after 8 s (berth trims its resident set at 5 s)
  "$@" "$(type -P sleep)" 10 & local pid=$!
  sleep 1.5
  local early
  early=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  sleep 6.5
  echo "$early/$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
  wait $pid || true
}
echo "== footprint: idle RSS" >&2
IDLE_BERTH=$(idle "$BERTH" -control-socket off --)
IDLE_TINI=$(idle "$TINI" -s --)
IDLE_DUMB=$(idle "$DUMB")
IDLE_CATA=$(idle "$CATA" --)
"$BERTH" -control-socket off -- sleep 10 & pid=$!
sleep 1.5
SPLIT=$(grep -E '^(Rss|Pss_Anon|Pss_File)' /proc/$pid/smaps_rollup | awk '{printf "%s %s KiB, ", $1, $2}')
sleep 6.5
SPLIT="at 1.5 s: ${SPLIT%, }; at 8 s: $(grep -E '^(Rss|Pss_Anon|Pss_File)' /proc/$pid/smaps_rollup | awk '{printf "%s %s KiB, ", $1, $2}')"
wait $pid || true

echo "== footprint: resident with Consul" >&2
RESIDENT=$(python3 - "$BERTH" "$CONSUL" "$tmp/testapp" <<'PY'
import json, os, signal, socket, subprocess, sys, time, urllib.request
berth, consul, testapp = sys.argv[1:4]
sys.dont_write_bytecode = True; sys.path.insert(0, "bench")
from ports import freeports
ports = freeports(6)
c = subprocess.Popen([consul, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-http-port", str(ports[0]),
    "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1", "-serf-lan-port", str(ports[1]), "-serf-wan-port",
    str(ports[2]), "-server-port", str(ports[3]), "-log-level", "error", "-node", "fp-" + str(ports[0])],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); statsd.bind(("127.0.0.1", ports[5]))
try:
    addr = f"127.0.0.1:{ports[0]}"
    for _ in range(600):
        try:
            if json.loads(urllib.request.urlopen(f"http://{addr}/v1/status/leader", timeout=1).read()): break
        except Exception: pass
        time.sleep(0.1)
    app = ports[4]
    env = dict(os.environ, CONSUL_HTTP_ADDR=addr, DD_AGENT_HOST="127.0.0.1", DD_DOGSTATSD_PORT=str(ports[5]))
    b = subprocess.Popen([berth, "-control-socket", "off", "-service", "web", "-port", str(app),
        "-check-http", f"http://127.0.0.1:{app}/health", "-check-interval", "2s", "--", testapp, "-http", f"127.0.0.1:{app}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    passing = None
    for _ in range(200):
        st = [ch["Status"] for e in json.loads(urllib.request.urlopen(f"http://{addr}/v1/health/service/web").read()) for ch in e["Checks"]]
        if st and all(s == "passing" for s in st):
            passing = time.time(); break
        time.sleep(0.05)
    time.sleep(15)  # several check intervals, TTL updates and DogStatsD flushes
    status = dict(l.split(":", 1) for l in open(f"/proc/{b.pid}/status") if ":" in l)
    rollup = dict(l.split(":", 1) for l in open(f"/proc/{b.pid}/smaps_rollup") if ":" in l and not l.startswith("5"))
    kib = lambda d, k: int(d[k].split()[0])
    statsd.settimeout(0.1); got = 0
    try:
        while True: statsd.recv(65536); got += 1
    except OSError: pass
    print(json.dumps({"rss": kib(status, "VmRSS"), "hwm": kib(status, "VmHWM"), "anon": kib(rollup, "Pss_Anon"),
        "file": kib(rollup, "Pss_File"), "passing": passing is not None, "datagrams": got}))
    b.send_signal(signal.SIGTERM); b.wait(20)
finally:
    c.send_signal(signal.SIGTERM); c.wait(30)
PY
)

echo "== footprint: binary" >&2
GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -E=berth_rt0" -o "$tmp/berth-arm64" ./cmd/berth
CGO_ENABLED=0 go build -trimpath -ldflags "-E=berth_rt0" -o "$tmp/berth-syms" ./cmd/berth

python3 - "$tmp/start.json" "$BERTH" "$tmp" "$IDLE_BERTH" "$IDLE_TINI" "$IDLE_DUMB" "$IDLE_CATA" "$SPLIT" "$RESIDENT" \
  "$tmp/berth-arm64" "$tmp/berth-syms" <<'PY'
import collections, json, os, re, subprocess, sys
start, berth, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
idle = dict(zip(["berth", "tini", "dumb-init", "catatonit"], sys.argv[4:8]))
split, resident = sys.argv[8], json.loads(sys.argv[9])
arm64, syms = sys.argv[10], sys.argv[11]

def name(c):
    c = c.replace(berth, "berth").replace(tmp + "/", "")
    return re.sub(r"\S*/(tini|dumb-init|catatonit|true)\b", r"\1", c)
r = {name(x["command"]): x for x in start}
bare, tini = r["true"]["wall_ms"], r["tini -s -- true"]["wall_ms"]
print(f"## Start-up and memory, side by side ({start[0]['runs']} interleaved rounds)\n")
print("Each round runs every command once, the order reversed every other round (`bench/interleave`), so load "
      "from other work on the machine falls on all of them alike; medians. `gobaseline` is os/exec and nothing "
      "else; `godeps-required` the same with the required dependencies blank-imported (Consul API, the AWS SDK's "
      "default configuration, datadog-go, go-hclog, oklog/run) and HCL; `godeps` with everything berth links. "
      "Peak RSS and minor page faults: medians of 21 more rounds under `/usr/bin/time` (`%M`, `%R`; with `/bin/true`'s own).\n")
print("| command | wall ms | ÷ tini's wall | overhead over /bin/true ms | ÷ tini's overhead | user+sys ms | peak RSS KiB | minor faults |")
print("|---|---|---|---|---|---|---|---|")
for c, x in r.items():
    ov = x["wall_ms"] - bare
    ratio = "-" if c == "true" else f"{ov / (tini - bare):.2f}"
    print(f"| `{c}` | {x['wall_ms']:.2f} | {x['wall_ms'] / tini:.2f} | {ov:.2f} | {ratio} | {x['user_ms'] + x['sys_ms']:.2f} | {x['max_rss_kib']} | {x['minor_faults']} |")
b = r["berth -control-socket off -- true"]
print()
print(f"berth without a control socket: {b['wall_ms'] / tini:.1f}× tini's wall time (target ≤ 3.0×, goal ≤ 2×), "
      f"{b['max_rss_kib'] / 1024:.1f} MiB peak RSS (target ≤ 9 MB, goal ≤ 4 MB).\n")
print("| idle RSS while supervising `sleep` (KiB) | berth | tini | dumb-init | catatonit |\n|---|---|---|---|---|")
for k, label in ((0, "VmRSS after 1.5 s"), (1, "VmRSS after 8 s (berth trimmed at 5 s)")):
    print(f"| {label} | " + " | ".join(idle[n].split("/")[k] for n in ("berth", "tini", "dumb-init", "catatonit")) + " |")
print()
print(f"berth's idle resident set, split (smaps_rollup): {split.rstrip(', ')}.\n")
g, d, req = r["gobaseline true"], r["godeps true"], r["godeps-required true"]
print("**The floor.** `godeps-required` links the required dependencies and HCL into a wrapper that does nothing "
      f"else, and already takes {req['wall_ms'] / tini:.1f}× tini's wall time and {req['max_rss_kib'] / 1024:.1f} MiB "
      f"({req['minor_faults']} page faults; os/exec alone: {g['wall_ms'] / tini:.1f}×, {g['max_rss_kib'] / 1024:.1f} MiB). "
      "Every Go package linked runs its initialisation on every start (the AWS SDK's default configuration brings "
      "the sts, sso, ssooidc and signin clients, each compiling its endpoint regular expressions; datadog-go compiles "
      "its container-id expressions), and Linux maps every page a start touches in 64 KiB fault-around blocks, so "
      "the peak resident set follows the size of what the start touches. berth's own code makes the binary "
      f"{os.path.getsize(berth) / os.path.getsize(os.path.join(tmp, 'godeps')):.1f}× godeps' size and adds "
      f"{b['wall_ms'] - d['wall_ms']:.1f} ms and {(b['max_rss_kib'] - d['max_rss_kib']) / 1024:.1f} MiB to it. "
      "So ≤ 3× tini and ≤ 9 MB at start are out of reach for one process that links these libraries. The issue's "
      "way past it, a lean PID-1 core that starts the agent only when a run needs it, would be a second executable "
      "(the core at about gobaseline's figures, the agent at berth's for every run that uses Consul, secrets or "
      "metrics, plus a second exec); it was not built: berth ships as one static binary, and once started berth "
      "drops the start-up's pages (the 8 s row).\n")
print("## Resident with a Consul service, an HTTP check and DogStatsD\n")
print("`berth -service web -port P -check-http http://127.0.0.1:P/health -check-interval 2s -- testapp -http …` "
      "with CONSUL_HTTP_ADDR at a real `consul agent -dev` and DD_AGENT_HOST at a UDP socket; measured 15 s after "
      "the check first passed in Consul (10 s after berth trimmed the start-up's pages; VmHWM is the peak before).\n")
print("| VmRSS KiB | VmHWM (peak) KiB | Pss_Anon KiB | Pss_File KiB | check passing | DogStatsD datagrams in 15 s |\n|---|---|---|---|---|---|")
print(f"| {resident['rss']} | {resident['hwm']} | {resident['anon']} | {resident['file']} | {resident['passing']} | {resident['datagrams']} |\n")
print(f"Target ≤ 11 MB (ContainerPilot supervising `sleep`: 11.4 MB in issue 15's measurement on this machine).\n")

print("## Binary\n")
mib = lambda p: os.path.getsize(p) / 1048576
print(f"| build | size |\n|---|---|")
print(f"| release linux/amd64 (`make build`, `-s -w -E=berth_rt0 -trimpath`) | {mib(berth):.1f} MiB |")
print(f"| release linux/arm64 | {mib(arm64):.1f} MiB |")
for p in ["gobaseline", "godeps-required", "godeps"]:
    print(f"| bench/{p} | {mib(os.path.join(tmp, p)):.1f} MiB |")
print()
# What the binary is made of: symbol sizes (text, data, type and func data) grouped by module or package.
out = subprocess.run(["go", "tool", "nm", "-size", syms], capture_output=True, text=True, check=True).stdout
agg = collections.Counter()
for line in out.splitlines():
    f = line.split()
    if len(f) < 4 or not f[1].isdigit() or f[2] in ("U",) or f[3] == "crypto/internal/fips140/drbg.memory":
        continue  # drbg.memory: 32 MiB of .noptrbss, not in the file
    s = re.sub(r"^(type:\.?(eq|hash)?\.?|go:itab\.\*?|go:)", "", f[3]).lstrip("*[]")
    i = s.rfind("/"); j = s.find(".", i + 1)
    p = s[:j] if j > 0 else s
    for pre in ["github.com/aws/aws-sdk-go-v2/service/", "github.com/berth-dev/berth/"]:
        if p.startswith(pre):
            p = pre + p[len(pre):].split("/")[0]; break
    else:
        m = re.match(r"(github\.com/[^/]+/[^/]+|golang\.org/x/[^/]+|google\.golang\.org/[^/]+)", p)
        if m: p = m.group(1)
        elif "." not in p.split("/")[0]: p = "std " + p.split("/")[0]
    agg[p] += int(f[1])
total = sum(agg.values())
print(f"What it is made of: symbol sizes of the same build with symbols ({total / 1048576:.1f} MiB; the file adds "
      "the pclntab, about 0.7× text). Top 20:\n")
print("| module or package | KiB | share |\n|---|---|---|")
for k, v in agg.most_common(20):
    print(f"| {k} | {v // 1024} | {100 * v / total:.1f} % |")
print()
PY
