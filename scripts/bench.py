#!/usr/bin/env python3
"""Runs every benchmark of BENCHMARKS.md in one go and prints the tables.

Servers, measured in the same run with the same load generator (`wamp-cli bench`):
  router   our router (`wamp-bench` router-server: wamp_server::serve, echo + open chat topic)
  tutorial the `wamp-server` binary users run (the tutorial on the axum mount), default flags
           but --max-connections 100000 (kept below the open-file limit by the binary)
  ceiling  the minimal tokio-tungstenite + serde_json v1 server (`wamp-bench` ceiling-server)
  autobahn the AutobahnPython 0.8.15 v1 server of the interop suite (--no-autobahn skips it)
  wampio   wamp.io 0.0.4, the Node v1 server of the interop suite on Node's `ws`
           (tests/interop/node/wampio_server.js; --no-wampio skips it, as does a missing npm)
  router+tls  our router over wss:// (router-server --tls-cert, a throwaway CA and certificate
           made with the openssl command; skipped with --no-tls or when wamp-cli has no --ca-file)

Scenarios (names for --scenarios):
  rpc1x1 rpc4x16 rpc100x1   RPC: connections x calls in flight, as fast as answers come
  rpc50                     RPC 4x16 paced at 50% of the ceiling's rpc4x16 rate (--pace-own:
                            of each server's own), for latency under a fixed load
  fanout100 fanout1000      fan-out, 1 publisher to 100 / 1,000 subscribers
  fanout4x1000              fan-out, 4 publishers to 1,000 subscribers
  fanout50                  fan-out 1 -> 100 paced at 50% of the ceiling's fanout100 rate
  connect                   connection setup: 8 loops of connect, WELCOME, close
  sessions                  --sessions (19,000) subscribed idle sessions from 2 processes:
                            how many the server holds, memory per session (its VmRSS growth / n)
                            and the time for one publish to reach all of them (once per server)

Every RPC, fan-out and connect run reports the SERVER's own CPU time per operation (µs per call,
delivery or session): utime + stime of the server's process group from /proc, sampled when
`wamp-cli bench --mark` prints `MEASURE start` and `MEASURE stop` around its measuring window
(set-up and tear-down are left out).

Usage: python3 scripts/bench.py [--runs 3] [--duration 5] [--only SERVER,..]
         [--scenarios NAME,..] [--sessions 19000] [--quick] [--no-autobahn] [--no-wampio]
         [--no-tls] [--pace-own]
Results: Markdown tables on stdout, progress on stderr, every raw report in
target/bench/results.json. Only loopback addresses are used; every process is bounded in time
and stopped at the end.
"""

import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
ECHO = "http://wamptutorial/rpc#echo"
CHAT = "http://wamptutorial/event#chat"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
# Column order of the tables.
ORDER = ["router", "tutorial", "ceiling", "autobahn", "wampio", "router+tls"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_pids(pgid):
    """The processes of process group `pgid` (a server started with start_new_session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            pids.append((int(entry), fields))
    return pids


class Server:
    """A benchmark server process on a free loopback port."""

    def __init__(self, name, argv_for_port, ready_pattern, scheme="ws"):
        self.name = name
        self.port = free_port()
        self.proc = subprocess.Popen(
            argv_for_port(self.port),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if re.search(ready_pattern, line):
                break
        else:
            self.stop()
            raise RuntimeError(f"{name} did not start")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start")
        # Keep reading its stdout so that a chatty server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.url = f"{scheme}://127.0.0.1:{self.port}/ws"

    def cpu_seconds(self):
        """User + system CPU time of the server's process group so far, in seconds."""
        ticks = sum(int(f[11]) + int(f[12]) for _, f in group_pids(self.proc.pid))
        return ticks / CLK_TCK

    def rss_kib(self):
        """Resident memory of the server's process group, in KiB."""
        total = 0
        for pid, _ in group_pids(self.proc.pid):
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1]) * PAGE_KIB
            except OSError:
                pass
        return total

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def make_test_cert(out):
    """A throwaway CA and a server certificate it signed (localhost, 127.0.0.1) in `out`:
    ca.pem, cert.pem, key.pem. Returns the directory."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                 "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
         "-subj", "/CN=wamp bench CA", "-days", "2"],
        ["openssl", "req", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", "cert.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf"],
    ]
    for step in steps:
        subprocess.run(step, cwd=out, check=True, capture_output=True, timeout=60)
    return out


def cli_has_tls():
    out = subprocess.run([str(RELEASE / "wamp-cli"), "--help"], capture_output=True, text=True,
                         timeout=30)
    return "--ca-file" in out.stdout


def wampio_ready():
    """Installs the interop suite's Node packages as tests/interop/run.sh does; False (after a
    loud line) when npm is missing or the install fails."""
    node_dir = ROOT / "tests/interop/node"
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("== wampio SKIPPED: node or npm is not installed (install Node 20 + npm, or pass "
              "--no-wampio)", file=sys.stderr)
        return False
    if not (node_dir / "node_modules/wamp.io").is_dir():
        out = subprocess.run(
            ["npm", "ci", "--prefix", str(node_dir), "--no-audit", "--no-fund", "--loglevel=error"],
            capture_output=True, text=True, timeout=600,
        )
        if out.returncode != 0:
            print(f"== wampio SKIPPED: npm ci in {node_dir} failed: {out.stderr.strip()[-300:]}",
                  file=sys.stderr)
            return False
    return True


def servers(args):
    """(name, argv for a port, ready pattern, URL scheme, extra wamp-cli/idle-sessions args),
    the ceiling first: the paced scenarios use its rates."""
    router = [str(RELEASE / "router-server")]
    yield "ceiling", lambda p: [str(RELEASE / "ceiling-server"), "--port", str(p)], r"listening on", "ws", []
    yield "router", lambda p: [*router, "--port", str(p)], r"listening on", "ws", []
    # The binary users run, with its default flags but the session limit (its logs go to
    # /dev/null here).
    yield ("tutorial", lambda p: [str(RELEASE / "wamp-server"), "--port", str(p),
                                  "--max-connections", "100000"],
           r"listening", "ws", [])
    if "router+tls" in args.only_set and not args.no_tls:
        if not cli_has_tls():
            print("== router+tls skipped: this wamp-cli has no --ca-file (no wss://)", file=sys.stderr)
        else:
            tls = make_test_cert(TARGET / "bench" / "tls")
            tls_args = ["--tls-cert", str(tls / "cert.pem"), "--tls-key", str(tls / "key.pem")]
            yield ("router+tls", lambda p: [*router, "--port", str(p), *tls_args], r"listening on",
                   "wss", ["--ca-file", str(tls / "ca.pem")])
    if "autobahn" in args.only_set and not args.no_autobahn:
        venv = subprocess.run(
            ["bash", str(ROOT / "tests/interop/python/setup.sh")],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout.strip().splitlines()[-1]
        py = str(Path(venv) / "bin/python")
        ab = str(ROOT / "tests/interop/python/ab_server.py")
        yield "autobahn", lambda p: [py, ab, "--port", str(p), "--lifetime", "3000"], r"^READY", "ws", []
    if "wampio" in args.only_set and not args.no_wampio and wampio_ready():
        js = str(ROOT / "tests/interop/node/wampio_server.js")
        yield "wampio", lambda p: ["node", js, "--port", str(p), "--lifetime", "3000"], r"^READY", "ws", []


# name -> (label in the tables, kind, wamp-cli arguments without duration; None: built later)
SCENARIOS = {
    "rpc1x1": ("rpc 1x1", "rpc", ["--connections", "1", "--in-flight", "1"]),
    "rpc4x16": ("rpc 4x16", "rpc", ["--connections", "4", "--in-flight", "16"]),
    "rpc100x1": ("rpc 100x1", "rpc", ["--connections", "100", "--in-flight", "1"]),
    "rpc50": ("rpc 4x16 at 50%", "rpc", None),
    "fanout100": ("fanout 1->100", "fanout", ["--publishers", "1", "--subscribers", "100"]),
    "fanout1000": ("fanout 1->1000", "fanout", ["--publishers", "1", "--subscribers", "1000"]),
    "fanout4x1000": ("fanout 4->1000", "fanout", ["--publishers", "4", "--subscribers", "1000"]),
    "fanout50": ("fanout 1->100 at 50%", "fanout", None),
    "connect": ("connect", "connect", ["--concurrency", "8"]),
    "sessions": ("sessions", "sessions", None),
}
QUICK_SKIPS = {"fanout1000", "fanout4x1000"}
# The paced scenarios: (the scenario whose rate they take half of, the report's rate field).
PACED = {"rpc50": ("rpc4x16", "calls_per_s"), "fanout50": ("fanout100", "publishes_per_s")}


def selected_scenarios(args):
    names = args.scenario_list or [n for n in SCENARIOS if not (args.quick and n in QUICK_SKIPS)]
    return [n for n in SCENARIOS if n in names]


def cli_argv(kind, args_for_kind, duration):
    base = {"rpc": ["bench", "rpc", "--procedure", ECHO],
            "fanout": ["bench", "fanout", "--topic", CHAT],
            "connect": ["bench", "connect"]}[kind]
    return [*base, *args_for_kind, "--duration", f"{duration}s", "--json"]


def run_cli(url, argv, timeout, extra=(), server=None):
    """Runs `wamp-cli --url URL EXTRA ARGV` and returns its JSON report. With `server` (a
    Server) it adds `--mark` and puts the server's CPU time over the measuring window into the
    report: `server_cpu_s`, `window_s` and `server_cpu_us_per_op` (per call, delivery or
    session)."""
    cmd = [str(RELEASE / "wamp-cli"), "--url", url, *extra, *argv]
    if server is None:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"wamp-cli {' '.join(argv)} failed: {out.stderr.strip()[-300:]}")
        return json.loads(out.stdout)
    proc = subprocess.Popen([*cmd, "--mark"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    marks, errors = {}, []

    def watch_stderr():
        for line in proc.stderr:
            words = line.split()
            if len(words) == 2 and words[0] == "MEASURE":
                # Sampled as soon as the mark arrives: the CLI flushes it at the window's edge.
                marks[words[1]] = (server.cpu_seconds(), time.monotonic())
            else:
                errors.append(line)

    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    # stdout is read here and stderr by the watcher only (communicate() would read both).
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        stdout = proc.stdout.read()
        proc.wait()
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    watcher.join(10)
    if timed_out:
        raise RuntimeError(f"wamp-cli {' '.join(argv)} took more than {timeout} s")
    if proc.returncode != 0:
        raise RuntimeError(f"wamp-cli {' '.join(argv)} failed: {''.join(errors).strip()[-300:]}")
    report = json.loads(stdout)
    if "start" in marks and "stop" in marks:
        cpu = marks["stop"][0] - marks["start"][0]
        ops = report.get("calls") or report.get("delivered") or report.get("sessions") or 0
        report["server_cpu_s"] = cpu
        report["window_s"] = marks["stop"][1] - marks["start"][1]
        report["server_cpu_us_per_op"] = cpu * 1e6 / ops if ops else None
    return report


class Lines:
    """The stdout lines of a process, read on a thread, with a timeout per line."""

    def __init__(self, proc):
        self.queue = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc):
        for line in proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def next(self, timeout):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


def hold_sessions(server, sessions, extra=(), processes=2, timeout=600):
    """`sessions` idle sessions subscribed to the chat topic, from `processes` idle-sessions
    processes (each process may open 20,000 files here). Returns what the server held, its
    memory per session and the time one publish took to reach every session, or None."""
    base = server.rss_kib()
    shares = [sessions // processes + (1 if i < sessions % processes else 0)
              for i in range(processes)]
    holders = []
    try:
        for share in shares:
            proc = subprocess.Popen(
                [str(RELEASE / "idle-sessions"), "--url", server.url, "--sessions", str(share),
                 "--subscribe", CHAT, *extra],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, start_new_session=True,
            )
            holders.append((proc, Lines(proc)))
        held, failed, first_error = 0, 0, None
        deadline = time.time() + timeout
        for _, lines in holders:
            line = lines.next(max(1, deadline - time.time()))
            if not line or not line.startswith("READY"):
                print(f"   sessions: no READY ({line!r})", file=sys.stderr)
                return None
            words = line.split()
            held += int(words[1])
            if len(words) > 3 and words[2] == "failed":
                failed += int(words[3])
                first_error = first_error or line.split("first: ", 1)[-1]
        time.sleep(1)  # let the server's memory settle before reading it
        rss = server.rss_kib()
        result = {
            "requested": sessions,
            "held": held,
            "failed": failed,
            "first_error": first_error,
            "rss_growth_kib": rss - base,
            "kib_per_session": (rss - base) / held if held else None,
            "reached": None,
            "publish_to_all_ms": None,
            "probes": [],
        }
        # Every process but the first waits for the event the first one publishes.
        for proc, lines in holders[1:]:
            proc.stdin.write("expect probe\n")
            proc.stdin.flush()
            if lines.next(60) != "ARMED probe":
                print("   sessions: an idle-sessions process did not arm its probe", file=sys.stderr)
                return result
        holders[0][0].stdin.write("publish probe\n")
        holders[0][0].stdin.flush()
        for _, lines in holders:
            line = lines.next(120)
            if not line or not line.startswith("PROBE "):
                print(f"   sessions: no PROBE line ({line!r})", file=sys.stderr)
                return result
            result["probes"].append(json.loads(line[len("PROBE "):]))
        probes = result["probes"]
        sent = probes[0].get("sent_unix_ns")
        lasts = [p["last_unix_ns"] for p in probes if p.get("last_unix_ns")]
        result["reached"] = sum(p["reached"] for p in probes)
        # Only when it reached every session: else the figure is the probe's timeout.
        if sent and lasts and result["reached"] == sum(p["of"] for p in probes):
            result["publish_to_all_ms"] = (max(lasts) - sent) / 1e6
        return result
    finally:
        for proc, _ in holders:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc, _ in holders:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def median(reports, key):
    values = []
    for r in reports:
        try:
            v = key(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else None


def paced_argv(scenario, name, results, args, measure):
    """The wamp-cli arguments of a paced scenario: half the measured rate of its base scenario
    (the ceiling's in this run, or the server's own with --pace-own)."""
    base, field = PACED[scenario]
    source = name if args.pace_own or "ceiling" not in results else "ceiling"
    if not results.get(source, {}).get(base):
        # Its base scenario was not selected: measure it once for the rate.
        results.setdefault(source, {})[base] = [measure(source, base)] if source == name else []
    rate = median(results.get(source, {}).get(base, []), lambda r: r[field])
    if not rate:
        raise RuntimeError(f"no {base} rate of {source} to pace at")
    rate = max(1, int(rate / 2))
    if scenario == "rpc50":
        return ["--connections", "4", "--in-flight", "16", "--rate", str(rate)], rate
    return ["--publishers", "1", "--subscribers", "100", "--rate", str(rate)], rate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=19_000)
    ap.add_argument("--only", default="", help="servers, comma-separated (e.g. router,ceiling)")
    ap.add_argument("--scenarios", default="", help="scenarios, comma-separated (see above)")
    ap.add_argument("--no-autobahn", action="store_true")
    ap.add_argument("--no-wampio", action="store_true", help="skip the wamp.io (Node) server")
    ap.add_argument("--no-tls", action="store_true", help="skip our router over wss://")
    ap.add_argument("--quick", action="store_true", help="skip the 1,000-subscriber fan-outs")
    ap.add_argument("--pace-own", action="store_true",
                    help="pace rpc50/fanout50 at half each server's own rate, not the ceiling's")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    import bench_wave2  # the wave-2 sections: cluster, proxy and publish API, counters
    bench_wave2.add_arguments(ap)
    args = ap.parse_args()
    if args.wave2_only:
        return bench_wave2.run(args)
    aliases = {"wamp.io": "wampio", "tls": "router+tls"}
    only = [aliases.get(s.strip(), s.strip()) for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in ORDER]
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown += [s for s in args.scenario_list if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown server or scenario: {', '.join(unknown)} (servers: {', '.join(ORDER)}; "
                 f"scenarios: {', '.join(SCENARIOS)})")
    args.only_set = set(only or ORDER)

    began = time.monotonic()
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-p", "wamp-bench", "-p", "wamp-cli", "-p", "wamp-server"],
            cwd=ROOT, check=True, timeout=3600,
        )
    results = {}
    chosen = selected_scenarios(args)
    for name, argv, ready, scheme, extra in servers(args):
        if name not in args.only_set:
            continue
        print(f"== {name} ({time.monotonic() - began:.0f} s in)", file=sys.stderr)

        def measure(srv_name, scenario, cli_args=None):
            label, kind, fixed = SCENARIOS[scenario]
            server = Server(name, argv, ready, scheme)
            try:
                return run_cli(server.url, cli_argv(kind, cli_args or fixed, args.duration),
                               timeout=args.duration * 4 + 180, extra=extra, server=server)
            finally:
                server.stop()

        for scenario in chosen:
            label, kind, fixed = SCENARIOS[scenario]
            if kind == "sessions":
                server = Server(name, argv, ready, scheme)
                try:
                    results.setdefault(name, {})[scenario] = hold_sessions(server, args.sessions, extra)
                except Exception as e:
                    print(f"   sessions: {e}", file=sys.stderr)
                finally:
                    server.stop()
                s = results[name].get(scenario)
                if s:
                    print(f"   sessions: {s['held']} held ({s['failed']} refused), "
                          f"{s['kib_per_session'] or 0:.1f} KiB each, one publish reached "
                          f"{s['reached']} in {s['publish_to_all_ms']} ms", file=sys.stderr)
                continue
            reports = []
            for run in range(args.runs):
                try:
                    cli_args = fixed
                    if fixed is None:
                        cli_args, rate = paced_argv(scenario, name, results, args, measure)
                    report = measure(name, scenario, cli_args)
                    reports.append(report)
                    print(f"   {label} run {run + 1}: {headline(kind, report)}", file=sys.stderr)
                except Exception as e:  # a server that cannot do a scenario gets n/a
                    print(f"   {label} run {run + 1}: {e}", file=sys.stderr)
            results.setdefault(name, {})[scenario] = reports

    out = TARGET / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    elapsed = time.monotonic() - began
    print_tables(results, args, chosen)
    extra_sections(args, results)
    print(f"\n(the whole run took {elapsed / 60:.1f} min)")
    print(f"== done in {elapsed / 60:.1f} min; raw reports in {out / 'results.json'}", file=sys.stderr)


def headline(kind, r):
    """One progress line for a run."""
    cpu = r.get("server_cpu_us_per_op")
    cpu = "n/a" if cpu is None else f"{cpu:.2f}"
    if kind == "rpc":
        return f"{r['calls_per_s']:,.0f} calls/s, p99 {r['latency_us']['p99']:,.0f} µs, server {cpu} µs/call"
    if kind == "fanout":
        return (f"{r['deliveries_per_s']:,.0f} deliveries/s ({r['lost']} lost), "
                f"p99 {r['latency_us']['p99']:,.0f} µs, server {cpu} µs/delivery")
    return f"{r['sessions_per_s']:,.0f} sessions/s, p99 {r['latency_us']['p99']:,.0f} µs, server {cpu} µs/session"


def extra_sections(args, results):
    """Hook for scripts/bench_wave2.py: more tables after the main ones."""
    import bench_wave2
    bench_wave2.run(args)


def print_tables(results, args, chosen):
    names = [n for n in ORDER if n in results]

    def cell(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def ratio(v, base):
        return "" if v is None or not base else f" ({v / base:.0%})"

    latency = [("p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
               ("p99 µs", lambda r: r["latency_us"]["p99"], ",.0f"),
               ("p99.9 µs", lambda r: r["latency_us"]["p99_9"], ",.0f")]
    cpu = lambda r: r["server_cpu_us_per_op"]  # noqa: E731
    rows_by_kind = {
        "rpc": [("calls/s", lambda r: r["calls_per_s"], ",.0f"), *latency,
                ("server CPU µs/call", cpu, ".2f")],
        "fanout": [("deliveries/s", lambda r: r["deliveries_per_s"], ",.0f"), *latency,
                   ("server CPU µs/delivery", cpu, ".2f")],
        "connect": [("sessions/s", lambda r: r["sessions_per_s"], ",.0f"),
                    ("setup p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
                    ("setup p99 µs", lambda r: r["latency_us"]["p99"], ",.0f"),
                    ("setup p99.9 µs", lambda r: r["latency_us"]["p99_9"], ",.0f"),
                    ("server CPU µs/session", cpu, ".1f")],
    }
    print(f"Median of {args.runs} runs of {args.duration} s; ratios are to the ceiling server. "
          "Server CPU: the server's own user + system time over the measuring window, per "
          "operation.\n")
    print("| scenario | metric | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for scenario in chosen:
        label, kind, _ = SCENARIOS[scenario]
        if kind == "sessions":
            rows = [("sessions held", lambda s: s["held"], ",.0f"),
                    ("KiB per session", lambda s: s["kib_per_session"], ".1f"),
                    ("sessions 1 publish reached", lambda s: s["reached"], ",.0f"),
                    ("ms for 1 publish to reach all", lambda s: s["publish_to_all_ms"], ",.1f")]
            for metric, key, fmt in rows:
                def one(n):
                    s = results[n].get(scenario)
                    return median([s], key) if s else None
                base = one("ceiling") if "ceiling" in results else None
                cells = [cell(one(n), fmt) + ratio(one(n), base) for n in names]
                print(f"| {args.sessions:,} sessions | {metric} | " + " | ".join(cells) + " |")
            continue
        if scenario in PACED:
            src, field = PACED[scenario]
            rate = median(results.get("ceiling", {}).get(src, []), lambda r: r[field])
            if rate and not args.pace_own:
                label += f" ({int(rate / 2):,}/s)"
        for metric, key, fmt in rows_by_kind[kind]:
            base = median(results.get("ceiling", {}).get(scenario, []), key)
            cells = []
            for n in names:
                v = median(results[n].get(scenario, []), key)
                cells.append(cell(v, fmt) + ratio(v, base))
            print(f"| {label} | {metric} | " + " | ".join(cells) + " |")
    if "router+tls" in results and "router" in results:
        print("\nThe cost of TLS: our router over wss:// against ws:// in the same run.\n")
        print("| scenario | metric | ws:// | wss:// | wss/ws |")
        print("|---|---|---|---|---|")
        for scenario, metric, key, fmt in [
            ("rpc4x16", "calls/s", lambda r: r["calls_per_s"], ",.0f"),
            ("rpc4x16", "server CPU µs/call", cpu, ".2f"),
            ("fanout100", "deliveries/s", lambda r: r["deliveries_per_s"], ",.0f"),
            ("fanout100", "server CPU µs/delivery", cpu, ".2f"),
            ("connect", "server CPU µs/session", cpu, ".1f"),
        ]:
            ws = median(results["router"].get(scenario, []), key)
            wss = median(results["router+tls"].get(scenario, []), key)
            share = "n/a" if not ws or wss is None else f"{wss / ws:.0%}"
            print(f"| {SCENARIOS[scenario][0]} | {metric} | {cell(ws, fmt)} | {cell(wss, fmt)} "
                  f"| {share} |")
        ws = (results["router"].get("sessions") or {}).get("kib_per_session")
        wss = (results["router+tls"].get("sessions") or {}).get("kib_per_session")
        added = None if ws is None or wss is None else wss - ws
        print(f"| {args.sessions:,} sessions | KiB per session | {cell(ws, '.1f')} "
              f"| {cell(wss, '.1f')} | +{cell(added, '.1f')} KiB |")


if __name__ == "__main__":
    main()
