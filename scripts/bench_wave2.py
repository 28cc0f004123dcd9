#!/usr/bin/env python3
"""The wave-2 rows of BENCHMARKS.md, run from scripts/bench.py (`--wave2 LIST`, `--wave2-only`):

  counters  RPC 4x16 and fan-out 1->1000 on router-server with the counters compiled in and
            compiled out (RUSTFLAGS="--cfg wamp_no_stats", built into TARGET/nostats), runs
            alternating A B A B; throughput and the server's CPU per operation (utime+stime
            from /proc/PID/stat around each run).
  proxy     RPC 4x16 and 1x1 through the standalone router's [[rpc.proxy]] to rpc-backend (a
            local HTTP echo) against router-server's in-process echo, alternating; the proxy's
            added p50. Then POST /api/publish under http-load (keep-alive connections) with one
            WebSocket subscriber counting the events.
  cluster   redis-server on a free loopback port and cluster-node processes: fan-out 1->1000 on
            one node alone, and on two nodes with the subscribers on the publisher's node, split,
            and all on the remote node; latency at a light fixed rate local vs remote; then
            several nodes each limited to 20,000 open files, every session subscribed, one
            publish reaching all of them (idle-sessions' probes).
Every process is bounded in time and stopped at the end; only loopback addresses are used.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from bench import ECHO, RELEASE, ROOT, TARGET, Server, free_port, run_cli

NOSTATS = TARGET / "nostats"
BENCH_TOPIC = "http://wamptutorial/event#bench"
CHAT = "http://wamptutorial/event#chat"
API_KEY = "bench-api-key-0123456789abcdef"
TICK = os.sysconf("SC_CLK_TCK")
ALL = ("counters", "proxy", "cluster")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def build(selected, args):
    """The release binaries (the same feature set as bench.py's build, so router-server is the
    same binary), cluster-node with the `redis` feature, and router-server without counters."""
    if args.no_build:
        return
    release = ["cargo", "build", "--release"]
    subprocess.run([*release, "-p", "wamp-bench", "-p", "wamp-cli", "-p", "wamp-server"],
                   cwd=ROOT, check=True, timeout=3600)
    if "cluster" in selected:
        subprocess.run([*release, "-p", "wamp-bench", "--features", "redis", "--bin", "cluster-node"],
                       cwd=ROOT, check=True, timeout=3600)
    if "counters" in selected:
        flags = (os.environ.get("RUSTFLAGS", "") + " --cfg wamp_no_stats").strip()
        subprocess.run([*release, "-p", "wamp-bench", "--bin", "router-server",
                        "--target-dir", str(NOSTATS)],
                       cwd=ROOT, env=dict(os.environ, RUSTFLAGS=flags), check=True, timeout=3600)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def measured(server, url, argv, args, ops_key, extra=()):
    """One wamp-cli run with the server's CPU seconds around it; adds cpu_us_per_op."""
    before = cpu_ticks(server.proc.pid)
    report = run_cli(url, argv, timeout=args.duration * 4 + 120, extra=extra)
    cpu = (cpu_ticks(server.proc.pid) - before) / TICK
    ops = report.get(ops_key) or 0
    report["server_cpu_s"] = cpu
    report["cpu_us_per_op"] = cpu * 1e6 / ops if ops else None
    return report


def med(reports, key):
    values = [key(r) for r in reports if key(r) is not None]
    return statistics.median(values) if values else None


def fmt(v, f=",.0f"):
    return "n/a" if v is None else format(v, f)


def rpc_argv(args, conns, inflight):
    return ["bench", "rpc", "--procedure", ECHO, "--duration", f"{args.duration}s", "--json",
            "--connections", str(conns), "--in-flight", str(inflight)]


def fanout_argv(args, topic, subs, extra=()):
    return ["bench", "fanout", "--topic", topic, "--publishers", "1", "--subscribers", str(subs),
            "--duration", f"{args.duration}s", "--json", *extra]


def alternate(variants, scenarios, args):
    """variants: name -> (start() -> (server, url)); scenarios: name -> (argv, ops key).
    Runs every scenario args.runs times per variant, alternating the variants each round,
    each run on a fresh server. Returns {variant: {scenario: [reports]}}."""
    out = {v: {s: [] for s in scenarios} for v in variants}
    for scenario, (argv, ops) in scenarios.items():
        for run in range(args.runs):
            for variant, start in variants.items():
                server, url = start()
                try:
                    out[variant][scenario].append(measured(server, url, argv, args, ops))
                except Exception as e:
                    log(f"   {variant} {scenario} run {run}: {e}")
                finally:
                    server.stop()
        log(f"   {scenario}: done")
    return out


def rpc_rows(scenario):
    return [("calls/s", lambda r: r["calls_per_s"], ",.0f"),
            ("p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
            ("p99 µs", lambda r: r["latency_us"]["p99"], ",.0f"),
            ("server CPU µs/call", lambda r: r["cpu_us_per_op"], ",.2f")]


def fan_rows(scenario):
    return [("deliveries/s", lambda r: r["deliveries_per_s"], ",.0f"),
            ("p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
            ("p99 µs", lambda r: r["latency_us"]["p99"], ",.0f"),
            ("server CPU µs/delivery", lambda r: r["cpu_us_per_op"], ",.3f")]


def table(results, base, other, title_cols, args):
    print(f"| scenario | metric | {title_cols[0]} | {title_cols[1]} | difference |")
    print("|---|---|---|---|---|")
    for scenario in results[base]:
        rows = rpc_rows(scenario) if scenario.startswith("rpc") else fan_rows(scenario)
        for metric, key, f in rows:
            a, b = med(results[base][scenario], key), med(results[other][scenario], key)
            diff = "n/a" if a is None or b is None or not a else f"{(b - a) / a:+.1%}"
            print(f"| {scenario} | {metric} | {fmt(a, f)} | {fmt(b, f)} | {diff} |")


# ---- counters (#18) ----

def counters(args, results):
    log("== counters: router-server with and without the counters (alternating)")
    def start(binary):
        return lambda: (lambda s: (s, s.url))(
            Server("router", lambda p: [str(binary), "--port", str(p)], r"listening on"))
    variants = {"stats": start(RELEASE / "router-server"),
                "nostats": start(NOSTATS / "release" / "router-server")}
    scenarios = {"rpc 4x16": (rpc_argv(args, 4, 16), "calls"),
                 "fanout 1->1000": (fanout_argv(args, CHAT, 1000), "delivered")}
    results["counters"] = alternate(variants, scenarios, args)
    print(f"\n### The cost of the counters (median of {args.runs} alternating runs of {args.duration} s)\n")
    table(results["counters"], "stats", "nostats", ("counters in", "compiled out"), args)


# ---- proxy and publish API (#17) ----

def write_config(path, api_port, backend_url):
    path.write_text(f"""
[server]
bind = "127.0.0.1"
port = 0
page = false

[prefixes]
rpc = "http://wamptutorial/rpc#"
event = "http://wamptutorial/event#"

[[topics]]
uri = "event:chat"
subscribe = true
publish = true

[auth]
timeout = 0

[auth.unauthenticated]
rpc = [{{ uri = "rpc:echo", call = true }}]
pubsub = [{{ uri = "event:chat", pub = true, sub = true }}]

[[rpc.proxy]]
uri = "rpc:echo"
url = "{backend_url}"
timeout = 10

[api]
bind = "127.0.0.1:{api_port}"
key = "{API_KEY}"
""")


class ConfigRouter:
    """wamp-server --config with the RPC proxy to a fresh rpc-backend, and its API port."""

    def __init__(self):
        self.backend = Server("rpc-backend", lambda p: [str(RELEASE / "rpc-backend"), "--port", str(p)],
                              r"listening on")
        self.api_port = free_port()
        cfg = TARGET / "bench" / "wave2-router.toml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        write_config(cfg, self.api_port, f"http://127.0.0.1:{self.backend.port}/rpc")
        try:
            self.router = Server("wamp-server --config", lambda p: [
                str(RELEASE / "wamp-server"), "--config", str(cfg), "--port", str(p)], r"listening")
        except Exception:
            self.backend.stop()
            raise
        self.proc = self.router.proc
        self.url = self.router.url
        deadline = time.time() + 30
        while not port_open(self.api_port):
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("the publish API did not start listening")
            time.sleep(0.05)

    def stop(self):
        self.router.stop()
        self.backend.stop()


def port_open(port):
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def proxy(args, results):
    log("== proxy: RPC through [[rpc.proxy]] against the in-process echo (alternating)")
    def in_process():
        s = Server("router", lambda p: [str(RELEASE / "router-server"), "--port", str(p)], r"listening on")
        return s, s.url
    def proxied():
        c = ConfigRouter()
        return c, c.url
    variants = {"in-process": in_process, "proxy": proxied}
    scenarios = {"rpc 4x16": (rpc_argv(args, 4, 16), "calls"),
                 "rpc 1x1": (rpc_argv(args, 1, 1), "calls")}
    results["proxy"] = alternate(variants, scenarios, args)
    print(f"\n### RPC proxy against the in-process echo (median of {args.runs} alternating runs of "
          f"{args.duration} s; server CPU is the router's alone, not the backend's)\n")
    table(results["proxy"], "in-process", "proxy", ("in-process echo", "through the proxy"), args)
    for scenario in scenarios:
        a = med(results["proxy"]["in-process"][scenario], lambda r: r["latency_us"]["p50"])
        b = med(results["proxy"]["proxy"][scenario], lambda r: r["latency_us"]["p50"])
        added = None if a is None or b is None else b - a
        print(f"\nThe proxy adds {fmt(added, ',.0f')} µs to the p50 of {scenario} (goal: at most 150 µs).")

    log("== publish API: POST /api/publish with one subscriber")
    reports = []
    for run in range(args.runs):
        c = ConfigRouter()
        try:
            out = subprocess.run([str(RELEASE / "http-load"), "--url",
                                  f"http://127.0.0.1:{c.api_port}/api/publish", "--api-key", API_KEY,
                                  "--topic", CHAT, "--subscribe", c.url, "--connections",
                                  str(args.http_connections), "--duration", str(args.duration)],
                                 capture_output=True, text=True, timeout=args.duration * 4 + 60)
            if out.returncode != 0:
                log(f"   publish API run {run} FAILED: {out.stderr.strip()[-400:]} {out.stdout.strip()}")
            else:
                reports.append(json.loads(out.stdout))
        finally:
            c.stop()
    results["publish_api"] = reports
    print(f"\n### Publish API, {args.http_connections} keep-alive connections, one subscriber "
          f"(median of {len(reports)} runs; every response 200, every event received)\n")
    print("| requests/s | p50 µs | p99 µs | events received / requests |")
    print("|---|---|---|---|")
    print(f"| {fmt(med(reports, lambda r: r['requests_per_s']))} "
          f"| {fmt(med(reports, lambda r: r['latency_us']['p50']))} "
          f"| {fmt(med(reports, lambda r: r['latency_us']['p99']))} "
          f"| {sum(r['events_received'] for r in reports):,} / {sum(r['requests'] for r in reports):,} |")


# ---- cluster (#16) ----

class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 20
        while not port_open(self.port):
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def node(redis, name, files=None):
    """A cluster-node (on `redis`, or alone); `files`: its open-file limit (prlimit)."""
    limit = ["prlimit", f"--nofile={files}:{files}"] if files else []
    return Server(f"cluster-node {name}", lambda p: [
        *limit, str(RELEASE / "cluster-node"), "--port", str(p), "--node-name", name,
        *(["--redis-url", redis.url] if redis else [])], r"listening on")


def cluster(args, results):
    if not os.path.exists("/usr/bin/redis-server"):
        log("!! == cluster SKIPPED: /usr/bin/redis-server is missing (apt-get install redis-server)")
        print("\n### Cluster on Redis: SKIPPED (no /usr/bin/redis-server)\n")
        return
    subs = args.cluster_subscribers
    log(f"== cluster: fan-out 1->{subs}: one node alone, two nodes local / split / remote")
    res = {k: [] for k in ("single", "local", "split", "remote", "light local", "light remote")}
    light = ["--rate", str(args.light_rate)]
    for run in range(args.runs):
        for layout in ("single", "local", "split", "remote"):
            redis = Redis() if layout != "single" else None
            a = node(redis, "a")
            b = node(redis, "b") if redis else None
            try:
                extra = {"single": [], "local": [],
                         "split": ["--subscriber-url", a.url, "--subscriber-url", b.url] if b else [],
                         "remote": ["--subscriber-url", b.url] if b else []}[layout]
                res[layout].append(measured(a, a.url, fanout_argv(args, BENCH_TOPIC, subs, extra), args,
                                            "delivered"))
                if layout in ("local", "remote"):
                    res[f"light {layout}"].append(run_cli(a.url, fanout_argv(
                        args, BENCH_TOPIC, 10, extra + light), timeout=args.duration * 4 + 120))
            except Exception as e:
                log(f"   {layout} run {run}: {e}")
            finally:
                for s in (a, b):
                    if s:
                        s.stop()
                if redis:
                    redis.stop()
        log(f"   run {run}: done")
    results["cluster"] = res
    base = med(res["single"], lambda r: r["deliveries_per_s"])
    print(f"\n### Cluster on Redis: fan-out 1->{subs} (median of {args.runs} runs of {args.duration} s)\n")
    print("| layout | deliveries/s | of single node | p50 µs | p99 µs | lost |")
    print("|---|---|---|---|---|---|")
    for layout in ("single", "local", "split", "remote"):
        v = med(res[layout], lambda r: r["deliveries_per_s"])
        share = "n/a" if v is None or not base else f"{v / base:.0%}"
        print(f"| {layout} | {fmt(v)} | {share} | {fmt(med(res[layout], lambda r: r['latency_us']['p50']))} "
              f"| {fmt(med(res[layout], lambda r: r['latency_us']['p99']))} "
              f"| {sum(r['lost'] for r in res[layout]):,} |")
    lp = [med(res[f"light {k}"], lambda r: r["latency_us"]["p50"]) for k in ("local", "remote")]
    l99 = [med(res[f"light {k}"], lambda r: r["latency_us"]["p99"]) for k in ("local", "remote")]
    print(f"\nAt {args.light_rate} events/s to 10 subscribers: p50 local {fmt(lp[0])} µs, remote "
          f"{fmt(lp[1])} µs (p99 {fmt(l99[0])} / {fmt(l99[1])} µs); the remote hop adds "
          f"{fmt(None if None in lp else lp[1] - lp[0])} µs to p50 (goal: under 500 µs). "
          "Goal for split and remote: at least 80% of single.")
    capacity(args, results)


def capacity(args, results):
    n, per = args.cluster_nodes, args.cluster_sessions
    log(f"== cluster capacity: {n} nodes x {per} subscribed sessions, each node at 20,000 files")
    redis = Redis()
    nodes, holders = [], []
    try:
        nodes = [node(redis, f"n{i}", files=20_000) for i in range(n)]
        for s in nodes:
            holders.append(subprocess.Popen(
                [str(RELEASE / "idle-sessions"), "--url", s.url, "--sessions", str(per),
                 "--subscribe", BENCH_TOPIC, "--probe-timeout", "60", "--warm-up-timeout", "300"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=True))
        opened = []
        for h in holders:
            line = read_line(h, "READY", 400)
            opened.append(int(line.split()[1]) if line else 0)
            if line and "failed" in line:
                log(f"   {line.strip()}")
        token = f"t{int(time.time())}"
        for h in holders[1:]:
            h.stdin.write(f"expect {token}\n")
            h.stdin.flush()
            read_line(h, "ARMED", 30)
        holders[0].stdin.write(f"publish {token}\n")
        holders[0].stdin.flush()
        probes = [read_line(h, "PROBE", 120) for h in holders]
        probes = [json.loads(p.split(" ", 1)[1]) for p in probes if p]
        results["capacity"] = {"nodes": n, "per_node": per, "opened": opened, "probes": probes}
        sent = probes[0].get("sent_unix_ns") if probes else None
        reached = sum(p.get("reached", 0) for p in probes)
        last = max((p.get("last_unix_ns") or 0) for p in probes) if probes else 0
        took = (last - sent) / 1e9 if sent and last else None
        print(f"\n### Cluster capacity: {n} nodes, each limited to 20,000 open files\n")
        print("| sessions held (all nodes) | reached by one publish | time to the last | deliveries/s |")
        print("|---|---|---|---|")
        print(f"| {sum(opened):,} | {reached:,} | {fmt(took and took * 1000, ',.1f')} ms "
              f"| {fmt(reached / took if took else None)} |")
    except Exception as e:
        log(f"   capacity: {e}")
    finally:
        for h in holders:
            try:
                h.stdin.close()
                h.wait(30)
            except Exception:
                os.killpg(h.pid, 9)
        for s in nodes:
            s.stop()
        redis.stop()


def read_line(proc, prefix, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if line.startswith(prefix):
            return line
    return None


def add_arguments(ap):
    ap.add_argument("--wave2", default=",".join(ALL),
                    help="wave-2 sections to run: any of counters,proxy,cluster, or none")
    ap.add_argument("--wave2-only", action="store_true", help="run only the wave-2 sections")
    ap.add_argument("--http-connections", type=int, default=4, help="publish API load connections")
    ap.add_argument("--cluster-subscribers", type=int, default=1000)
    ap.add_argument("--light-rate", type=int, default=200, help="events/s for the latency rows")
    ap.add_argument("--cluster-nodes", type=int, default=3)
    ap.add_argument("--cluster-sessions", type=int, default=19_000, help="subscribed sessions per node")


def run(args):
    """Runs the selected sections; returns their raw results (also in target/bench/wave2.json)."""
    selected = [s for s in args.wave2.split(",") if s in ALL]
    if not selected:
        return {}
    build(selected, args)
    results = {}
    for section in selected:
        {"counters": counters, "proxy": proxy, "cluster": cluster}[section](args, results)
    out = TARGET / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "wave2.json").write_text(json.dumps(results, indent=1))
    return results
