#!/usr/bin/env bash
# Consul costs of berth (issue 5), against a real `consul agent -dev` on loopback, printed as markdown:
#   - SIGTERM → deregistered: from the SIGTERM to berth until Consul's catalog no longer lists the instance
#     (the test side polls the catalog every 2 ms; berth itself never polls);
#   - SIGTERM → exit: until berth has exited (app exits at once on TERM; no drain_delay);
#   - Consul HTTP requests per task-minute at steady state: one service with one HTTP check and one peers
#     watch, counted by a reverse proxy between berth and the agent;
#   - first check: from the app listening (the time testapp -ready-stamp wrote) until Consul shows the
#     instance passing, for apps that listen 0.5, 2.5 and 7 s after they start, with a 10 s interval.
# Usage: bench/consul.sh [N runs, default 15]. Needs bin/berth and .tools/bin/consul (make build tools).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-15}
BERTH=$PWD/bin/berth
CONSUL=$PWD/.tools/bin/consul
[[ -x $BERTH && -x $CONSUL ]] || { echo "bench/consul.sh: needs bin/berth and .tools/bin/consul (make build tools)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/testapp" ./tests/testapp

python3 - "$BERTH" "$CONSUL" "$tmp/testapp" "$RUNS" "$tmp" <<'PY'
import http.client, http.server, json, os, signal, socket, statistics, subprocess, sys, threading, time, urllib.request

berth, consul, testapp, runs, tmp = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
procs = []

sys.dont_write_bytecode = True; sys.path.insert(0, "bench")
from ports import freeports

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read() or b"null")

def wait(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench/consul.sh: {what} not within {timeout}s")

def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()

try:
    port, serf_lan, serf_wan, server = freeports(4)
    addr = f"127.0.0.1:{port}"
    procs.append(subprocess.Popen([consul, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
        "-http-port", str(port), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
        "-serf-lan-port", str(serf_lan), "-serf-wan-port", str(serf_wan), "-server-port", str(server),
        "-log-level", "error", "-node", "bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: get(f"http://{addr}/v1/status/leader"), 60, "consul leader")

    # counting reverse proxy (threads: blocking queries hold a connection each)
    counts, lock = {}, threading.Lock()
    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def do(self):
            path = self.path.split("?")[0]
            kind = "TTL update" if path.startswith("/v1/agent/check/update/") else \
                   ("peers query (blocking)" if "index=" in self.path and "index=0" not in self.path else "peers query (plain)") if path.startswith("/v1/health/service/") else \
                   f"{self.command} {path.rsplit('/', 1)[0] if path.count('/') > 3 else path}"
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            c = http.client.HTTPConnection(addr, timeout=700)
            c.request(self.command, self.path, body=body, headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
            r = c.getresponse(); data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data))); self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # berth stopped while its blocking query was held open (the end of the run)
        do_GET = do_PUT = do_POST = do_DELETE = do
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    proxy = f"127.0.0.1:{srv.server_address[1]}"

    def start(name, interval, via=addr, extra=(), app_extra=()):
        p, = freeports(1)  # the previous app has exited or still holds its own port
        env = dict(os.environ, CONSUL_HTTP_ADDR=via)
        b = subprocess.Popen([berth, "-control-socket", "off", "-log-level", "warn", "-service", name, "-port", str(p),
            "-check-http", f"http://127.0.0.1:{p}/health", "-check-interval", interval, *extra, "--",
            testapp, "-http", f"127.0.0.1:{p}", "-exit-on", "TERM:0", *app_extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(b)
        return b

    def passing(name):
        es = get(f"http://{addr}/v1/health/service/{name}?passing")
        return len(es) == 1

    # 1. SIGTERM → deregistered / exit
    dereg, exits = [], []
    for i in range(runs):
        name = f"lat{i}"
        b = start(name, "1s")
        wait(lambda: passing(name), 30, f"{name} passing")
        t0 = time.perf_counter()
        b.send_signal(signal.SIGTERM)
        td = None
        while td is None or b.poll() is None:
            if td is None and get(f"http://{addr}/v1/catalog/service/{name}") == []:
                td = time.perf_counter()
            if b.poll() is not None and td is None:
                td = time.perf_counter()  # gone by the time we looked again
            time.sleep(0.002)
        te = time.perf_counter()
        b.wait()
        dereg.append((td - t0) * 1000); exits.append((te - t0) * 1000)
        if get(f"http://{addr}/v1/catalog/service/{name}") != []:
            raise SystemExit(f"bench/consul.sh: {name} still registered after berth exited")

    # 2. steady state: one service, one check, one peers watch (on its own service: the watch is open, the
    #    list does not change). The check interval is scaled down to 2s and the rate extrapolated to 10s.
    interval, window = 2.0, 30.0
    b = start("steady", f"{interval:g}s", via=proxy, extra=("-peers-service", "steady", "-peers-wait", "1s"))
    wait(lambda: passing("steady"), 30, "steady passing")
    time.sleep(interval + 1)  # let start-up requests settle
    with lock:
        counts.clear()
    time.sleep(window)
    with lock:
        snap = dict(counts)

    print("## Consul (issue 5): drain latency and request cost\n")
    print(f"Real `consul agent -dev` on loopback, {runs} runs; app = tests/testapp (exits at once on SIGTERM), no drain_delay.\n")
    print("| measurement | median ms | min ms | max ms |")
    print("|---|---|---|---|")
    print(f"| SIGTERM → deregistered (catalog empty) | {statistics.median(dereg):.1f} | {min(dereg):.1f} | {max(dereg):.1f} |")
    print(f"| SIGTERM → berth exited | {statistics.median(exits):.1f} | {min(exits):.1f} | {max(exits):.1f} |")
    print()
    print(f"Steady state, one service + one HTTP check + one peers watch, counted by a proxy over {window:g}s with the "
          f"check interval scaled down to {interval:g}s; per task-minute at the default 10s interval = count × (60/{window:g}) × ({interval:g}/10) "
          "for TTL updates (they scale with the interval), × (60/" f"{window:g}) for everything else (it does not).\n")
    print("| request | counted | per minute at 2s | per task-minute at 10s |")
    print("|---|---|---|---|")
    total = 0.0
    for kind in sorted(set(snap) | {"TTL update", "peers query (blocking)", "peers query (plain)"}):
        n = snap.get(kind, 0)
        per_min = n * 60 / window
        at10 = per_min * interval / 10 if kind == "TTL update" else per_min
        total += at10
        print(f"| {kind} | {n} | {per_min:.1f} | {at10:.1f} |")
    print(f"| **total** | | | **{total:.1f}** |")
    print()

    # 3. first check: app listening → passing in Consul (the test side polls every 5 ms)
    b.send_signal(signal.SIGTERM); b.wait()
    first_runs = max(3, runs // 3)
    first = {}
    for after in (0.5, 2.5, 7.0):
        for i in range(first_runs):
            name, stamp = f"first{after:g}-{i}".replace(".", "_"), os.path.join(tmp, "ready")
            b = start(name, "10s", app_extra=("-listen-after", f"{after:g}s", "-ready-stamp", stamp))
            end = time.time() + 30
            while time.time() < end:
                if passing(name):
                    seen = time.time_ns(); break
                time.sleep(0.005)
            else:
                raise SystemExit(f"bench/consul.sh: {name} not passing within 30s")
            wait(lambda: os.path.getsize(stamp) > 0, 5, f"{name}'s ready stamp")  # written just after listen
            with open(stamp) as f:
                ready = int(f.read())
            os.remove(stamp)
            first.setdefault(after, []).append((seen - ready) / 1e6)
            b.send_signal(signal.SIGTERM); b.wait()
    print(f"First check, 10 s interval: from the app listening (the time it wrote itself) until Consul shows the instance passing; {first_runs} runs each.\n")
    print("| app listening after | ready → passing, median ms | min ms | max ms |")
    print("|---|---|---|---|")
    for after, ms in first.items():
        print(f"| {after:g} s | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} |")
    print()
finally:
    cleanup()
PY
