#!/usr/bin/env bash
# Footprint of berth (issue 15) side by side with tini, dumb-init, catatonit and two Go floors, printed as
# markdown for bench/RESULTS.md:
#   - start-up of `X -- /bin/true`: interleaved rounds (bench/interleave), wall, CPU, peak RSS and page faults
#     from each child's rusage;
#   - idle RSS while supervising `sleep`;
#   - resident RSS with a Consul service, an HTTP check every 2s and DogStatsD on (real consul agent -dev);
#   - the release binary's size and what it is made of;
#   - where the floor is: bench/gobaseline (os/exec and nothing else), bench/godeps-required (the required
#     dependencies blank-imported), bench/godeps (everything berth links), `berth version` (berth's runtime
#     and package initialisation, no child), and where the pages go: each binary's mappings resident at the
#     end of a run (smaps, read by the child) and the 64 KiB blocks of text holding the init functions that ran;
#   - bench/leancore, a prototype of a lean PID-1 core that execs berth only for a run with flags or secrets.
# Usage: bench/footprint.sh [rounds, default 300]. Needs bin/berth (make build) and .tools/bin/consul.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-300}
BERTH=$PWD/bin/berth
CONSUL=$PWD/.tools/bin/consul
[[ -x $BERTH && -x $CONSUL ]] || { echo "bench/footprint.sh: needs bin/berth and .tools/bin/consul (make build tools)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in gobaseline godeps godeps-required interleave leancore; do
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$p" ./bench/$p
done
# the same builds with symbols, for the page attribution below (the loaded segments are laid out identically)
CGO_ENABLED=0 go build -trimpath -o "$tmp/godeps-syms" ./bench/godeps
CGO_ENABLED=0 go build -trimpath -ldflags "-E=berth_rt0" -o "$tmp/berth-syms" ./cmd/berth
CGO_ENABLED=0 go build -o "$tmp/testapp" ./tests/testapp
TRUE=$(type -P true)
TINI=$(type -P tini)
DUMB=$(type -P dumb-init)
CATA=$(type -P catatonit)

echo "== footprint: start-up, interleaved ($ROUNDS rounds)" >&2
# leancore finds the agent through LEANCORE_AGENT (interleave passes its environment on)
LEANCORE_AGENT=$BERTH "$tmp/interleave" -runs "$ROUNDS" -warmup 20 -rss-runs 21 -- "$TRUE" "$TINI -s -- $TRUE" "$DUMB $TRUE" "$CATA -- $TRUE" \
  "$tmp/gobaseline $TRUE" "$tmp/godeps-required $TRUE" "$tmp/godeps $TRUE" "$BERTH version" \
  "$BERTH -control-socket off -- $TRUE" "$BERTH -- $TRUE" \
  "$tmp/leancore -- $TRUE" "$tmp/leancore -control-socket off -- $TRUE" > "$tmp/start.json"

echo "== footprint: where the pages go" >&2
# Each binary's mappings as its child sees them at the end of a run (berth and godeps wait for it), and the
# packages whose initialisation ran (GODEBUG=inittrace=1), for the init functions' 64 KiB blocks.
# shellcheck disable=SC2016 # $PPID is the child's
"$tmp/berth-syms" -control-socket off -- /bin/sh -c 'cat /proc/$PPID/smaps' > "$tmp/smaps.berth"
# shellcheck disable=SC2016
"$tmp/godeps-syms" /bin/sh -c 'cat /proc/$PPID/smaps' > "$tmp/smaps.godeps"
GODEBUG=inittrace=1 "$BERTH" version 2>&1 >/dev/null | awk '/^init / {print $2}' > "$tmp/inits.berth"
GODEBUG=inittrace=1 "$tmp/godeps" "$TRUE" 2>&1 >/dev/null | awk '/^init / && !seen[$2]++ {print $2}' > "$tmp/inits.godeps"
go tool nm "$tmp/berth-syms" > "$tmp/nm.berth"
go tool nm "$tmp/godeps-syms" > "$tmp/nm.godeps"

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
      "default configuration, datadog-go, go-hclog, oklog/run) and HCL; `godeps` with everything berth links; "
      "`berth version` is berth's runtime and package initialisation with no child; `leancore` the lean-core "
      "prototype below (the second row execs berth). "
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
v, lc0, lc1 = r["berth version"], r["leancore -- true"], r["leancore -control-socket off -- true"]
mib = lambda kib: kib / 1024

def smaps(path, exe):
    """Resident KiB of a process's mappings by kind, and the binary's segment sizes, from a smaps dump."""
    out, size, kind, prev = collections.Counter(), collections.Counter(), None, None
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and "-" in f[0] and len(f[1]) == 4:
            name = f[5] if len(f) > 5 else ""
            if os.path.basename(name) == exe:
                kind = {"r-xp": "text", "r--p": "rodata", "rw-p": "data"}.get(f[1], "other")
            elif name == "" and prev == "data":
                kind = "bss"
            else:
                kind = "anon" if name in ("", "[heap]", "[stack]") else "other"
            prev = kind
        elif f and f[0] == "Rss:":
            out[kind] += int(f[1])
        elif f and f[0] == "Size:" and kind in ("text", "rodata"):
            size[kind] += int(f[1])
    return out, size

def init_blocks(nm, inits):
    """Distinct 64 KiB blocks of text that hold the init functions of the packages whose init ran."""
    ran, blocks, funcs = set(open(inits).read().split()), set(), 0
    for line in open(nm):
        f = line.split()
        if len(f) < 3 or f[1] != "T":
            continue
        m = re.match(r"^(.*)\.(init(\.\d+)?|map\.init\.\d+)$", f[2])
        if m and m.group(1) in ran:
            blocks.add(int(f[0], 16) >> 16); funcs += 1
    return len(ran), funcs, len(blocks)

bs, bsize = smaps(os.path.join(tmp, "smaps.berth"), "berth-syms")
gs, gsize = smaps(os.path.join(tmp, "smaps.godeps"), "godeps-syms")
bpk, bfn, bbl = init_blocks(os.path.join(tmp, "nm.berth"), os.path.join(tmp, "inits.berth"))
gpk, gfn, gbl = init_blocks(os.path.join(tmp, "nm.godeps"), os.path.join(tmp, "inits.godeps"))
print("**The floor, page by page.** `berth version` starts the Go runtime, runs the initialisation of the "
      f"{bpk} packages berth links and prints a line: {v['wall_ms'] / tini:.1f}× tini's wall time, "
      f"{mib(v['max_rss_kib']):.1f} MiB peak and {v['minor_faults']} page faults, before a line of berth's own start path "
      "has run; both targets are out of reach there already. berth's own path (flags, the logger, the reaper, "
      "the signal handlers, fork, exec and wait of the child, exit) adds the rest: "
      f"{b['wall_ms'] - v['wall_ms']:.1f} ms, {mib(b['max_rss_kib'] - v['max_rss_kib']):.1f} MiB and "
      f"{b['minor_faults'] - v['minor_faults']} faults (`berth -control-socket off -- true` against `berth version`). "
      f"godeps, the same initialisation ({gpk} packages) in a {os.path.getsize(os.path.join(tmp, 'godeps')) / 1048576:.1f} MiB "
      f"binary, ends its whole run at {mib(d['max_rss_kib']):.1f} MiB.\n")
print("Resident at the end of a zero-config run, by mapping (KiB; smaps of berth while its child runs):\n")
print("| mapping | berth | of the binary's | godeps | of the binary's |\n|---|---|---|---|---|")
label = {"text": "text", "rodata": "read-only data and pclntab", "data": ".data", "bss": ".bss",
         "anon": "anonymous: heap, goroutine and thread stacks, runtime metadata", "other": "vdso, vvar"}
for k in ("text", "rodata", "data", "bss", "anon", "other"):
    ofb = f"{bsize[k]}" if k in bsize else ""
    ofg = f"{gsize[k]}" if k in gsize else ""
    print(f"| {label[k]} | {bs[k]} | {ofb} | {gs[k]} | {ofg} |")
print(f"| **total** | **{sum(bs.values())}** | | **{sum(gs.values())}** | |\n")
print("Why the same initialisation costs more in berth: Linux maps a page fault on a file in the 64 KiB block "
      "around it (fault-around), so every init function that runs brings its block in. berth's "
      f"{bfn} init functions lie in {bbl} distinct 64 KiB blocks of its text ({bbl * 64 / 1024:.1f} MiB), godeps' "
      f"{gfn} in {gbl} ({gbl * 64 / 1024:.1f} MiB): godeps' text is "
      f"{bsize['text'] / max(gsize['text'], 1):.1f}× smaller because dead-code elimination removed everything no "
      "code of its own calls, so its inits sit close together. Measured once with `perf record -e page-faults` "
      "(2026-12-02): 74 of berth's 86 faults on text were the first instruction of a package's init function, "
      "5 were berth's own path (main, the logger, the streamer, the reaper, the reference parser): a zero-config "
      "run builds no AWS configuration, HCL context, Consul client, HTTP transport, template or control server. "
      "A timeline of that path (a debug build, once, six runs): flags and assembly 0.2–0.3 ms, the signal "
      "handlers 0.1 ms, Prepare 0.07 ms, the child's fork, run and reap 0.7–0.9 ms, "
      "shutdown and exit 0.1 ms. The read-only "
      "data the start touches: every itab in the binary (the runtime's itabsinit, 16 faults), the type "
      "descriptors of what the inits allocate, and pclntab, which the runtime reads when a goroutine's stack "
      "grows (each frame's tables; 26 faults, 10 of them in berth's goroutines after main), when a goroutine "
      "starts (its function's name) and for the one memory-profile sample the runtime takes before it turns "
      "profiling off. No GC cycle runs during the start (runtime/metrics: 0 cycles): GOGC=off changes nothing "
      "(measured: same peak and faults), and a lower GOGC or a GOMEMLIMIT can only add a cycle.\n")
print("What cannot go, and what it would take. The inits are the libraries' (the AWS SDK's endpoint tables and "
      "regular expressions, smithy schemas, cty and HCL function tables, crypto/x509, net/http, datadog-go) and "
      "run before main, so nothing in berth's code after main reaches them; the Go linker has no option to "
      "place init functions together (`go tool link` offers -randlayout only); fault-around is one system-wide "
      "kernel setting (debugfs `fault_around_bytes`), and `madvise(MADV_RANDOM)` on the binary from berth's entry "
      "point does not turn it off (measured: same peak). Measured once (2026-12-02) and not kept: dropping the binary's pages at "
      "the top of main (`MADV_DONTNEED`, before berth's own path touches them again) holds the peak at the "
      "initialisation's, −1.5 MiB, but costs 1.6 ms of wall time (a fifth of the start) in the zap and the "
      "faults that follow; GOMAXPROCS=1 saves 0.4 MiB and 60 faults, but only as an environment variable (the "
      "Ps exist before main). One process that links these libraries starts at or above `berth version`'s figures.\n")
print("**A lean PID-1 core** (`bench/leancore`, a prototype, not shipped): a small Go binary that supervises a "
      "zero-config run itself (starts the child, forwards every signal, reaps orphans, returns the exit code) and "
      "execs berth, the same arguments, for any run with a flag, a BERTH_* variable or a secret reference. "
      f"Zero-config `leancore -- true`: {lc0['wall_ms'] / tini:.1f}× tini's wall time, {mib(lc0['max_rss_kib']):.1f} MiB, "
      f"{lc0['minor_faults']} faults ("
      + ("both targets met" if lc0['wall_ms'] / tini <= 3 and lc0['max_rss_kib'] * 1024 <= 9e6 else "targets: ≤ 3.0× and ≤ 9 MB")
      + "). A feature run pays its exec of berth on top: "
      f"`leancore -control-socket off -- true` {lc1['wall_ms']:.2f} ms against berth's {b['wall_ms']:.2f} ms "
      f"({lc1['wall_ms'] - b['wall_ms']:+.1f} ms, {lc1['minor_faults'] - b['minor_faults']:+d} faults; peak "
      f"{mib(lc1['max_rss_kib']):.1f} MiB against {mib(b['max_rss_kib']):.1f}). "
      "Shipping it means two executables, or one that carries the agent and execs itself into it, and the zero-config "
      "features (stop-signal and exit-code rewriting, kill grace, the inherited-signal shim, the control "
      "socket) written twice; berth stays one static binary, and once started it drops the start-up's pages "
      "(the 8 s row).\n")
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
