#!/usr/bin/env python3
"""Runs every benchmark of BENCHMARKS.md in one go and prints the tables.

Servers, measured in the same run with the same load generator (`wamp-cli bench`):
  router   our router (`wamp-bench` router-server: wamp_server::serve, echo + open chat topic)
  ceiling  the minimal tokio-tungstenite + serde_json v1 server (`wamp-bench` ceiling-server)
  autobahn the AutobahnPython 0.8.15 v1 server of the interop suite (skipped with --no-autobahn)
  router+tls  our router over wss:// (router-server --tls-cert, a throwaway CA and certificate
           made with the openssl command; skipped with --no-tls or when wamp-cli has no --ca-file)

Usage: python3 scripts/bench.py [--runs 3] [--duration 5] [--no-autobahn] [--no-tls] [--quick]
Results: a Markdown table on stdout and every raw report in target/bench/results.json.
Only loopback addresses are used; every process is bounded in time and stopped at the end.
"""

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
ECHO = "http://wamptutorial/rpc#echo"
CHAT = "http://wamptutorial/event#chat"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.url = f"{scheme}://127.0.0.1:{self.port}/ws"

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

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


def servers(args):
    """(name, argv for a port, ready pattern, URL scheme, extra wamp-cli/idle-sessions args)"""
    router = [str(RELEASE / "router-server")]
    yield "router", lambda p: [*router, "--port", str(p)], r"listening on", "ws", []
    yield "ceiling", lambda p: [str(RELEASE / "ceiling-server"), "--port", str(p)], r"listening on", "ws", []
    if not args.no_tls:
        if not cli_has_tls():
            print("== router+tls skipped: this wamp-cli has no --ca-file (no wss://)", file=sys.stderr)
        else:
            tls = make_test_cert(TARGET / "bench" / "tls")
            tls_args = ["--tls-cert", str(tls / "cert.pem"), "--tls-key", str(tls / "key.pem")]
            yield ("router+tls", lambda p: [*router, "--port", str(p), *tls_args], r"listening on",
                   "wss", ["--ca-file", str(tls / "ca.pem")])
    if not args.no_autobahn:
        venv = subprocess.run(
            ["bash", str(ROOT / "tests/interop/python/setup.sh")],
            check=True, capture_output=True, text=True, timeout=600,
        ).stdout.strip().splitlines()[-1]
        py = str(Path(venv) / "bin/python")
        ab = str(ROOT / "tests/interop/python/ab_server.py")
        yield "autobahn", lambda p: [py, ab, "--port", str(p), "--lifetime", "3000"], r"^READY", "ws", []


def scenarios(args):
    d = f"{args.duration}s"
    rpc = ["bench", "rpc", "--procedure", ECHO, "--duration", d, "--json"]
    fan = ["bench", "fanout", "--topic", CHAT, "--publishers", "1", "--duration", d, "--json"]
    yield "rpc 1x1", rpc + ["--connections", "1", "--in-flight", "1"]
    yield "rpc 4x16", rpc + ["--connections", "4", "--in-flight", "16"]
    yield "rpc 100x1", rpc + ["--connections", "100", "--in-flight", "1"]
    yield "fanout 1->100", fan + ["--subscribers", "100"]
    if not args.quick:
        yield "fanout 1->1000", fan + ["--subscribers", "1000"]


def run_cli(url, argv, timeout, extra=()):
    out = subprocess.run(
        [str(RELEASE / "wamp-cli"), "--url", url, *extra, *argv],
        capture_output=True, text=True, timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wamp-cli {' '.join(argv)} failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout)


def idle_memory(server, sessions, extra=()):
    base = server.rss_kib()
    holder = subprocess.Popen(
        [str(RELEASE / "idle-sessions"), "--url", server.url, "--sessions", str(sessions), *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    try:
        line = ""
        deadline = time.time() + 180
        while time.time() < deadline:
            line = holder.stdout.readline()
            if line.startswith("READY") or not line:
                break
        if not line.startswith("READY"):
            return None
        time.sleep(1)
        return (server.rss_kib() - base) * 1024 / sessions
    finally:
        holder.stdin.close()
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(holder.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--no-autobahn", action="store_true")
    ap.add_argument("--no-tls", action="store_true", help="skip our router over wss://")
    ap.add_argument("--quick", action="store_true", help="skip 1000 subscribers")
    import bench_wave2  # the wave-2 sections: cluster, proxy and publish API, counters
    bench_wave2.add_arguments(ap)
    args = ap.parse_args()
    if args.wave2_only:
        return bench_wave2.run(args)

    subprocess.run(
        ["cargo", "build", "--release", "-p", "wamp-bench", "-p", "wamp-cli"],
        cwd=ROOT, check=True, timeout=1800,
    )
    results = {}
    for name, argv, ready, scheme, extra in servers(args):
        print(f"== {name}", file=sys.stderr)
        for scenario, cli_args in scenarios(args):
            reports = []
            for run in range(args.runs):
                server = Server(name, argv, ready, scheme)
                try:
                    reports.append(run_cli(server.url, cli_args, timeout=args.duration * 4 + 120,
                                           extra=extra))
                except Exception as e:  # a server that cannot do a scenario gets n/a
                    print(f"   {scenario} run {run}: {e}", file=sys.stderr)
                finally:
                    server.stop()
            results.setdefault(name, {})[scenario] = reports
            print(f"   {scenario}: {len(reports)} runs", file=sys.stderr)
        server = Server(name, argv, ready, scheme)
        try:
            results[name]["idle"] = idle_memory(server, args.sessions, extra)
        finally:
            server.stop()
        print(f"   idle: {results[name]['idle']}", file=sys.stderr)

    out = TARGET / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(results, args)
    bench_wave2.run(args)


def median(reports, key):
    values = [key(r) for r in reports]
    return statistics.median(values) if values else None


def print_tables(results, args):
    names = list(results)

    def cell(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def ratio(v, base):
        return "" if v is None or not base else f" ({v / base:.0%})"

    print(f"Median of {args.runs} runs of {args.duration} s; ratios are to the ceiling server.\n")
    print("| scenario | metric | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for scenario, _ in scenarios(args):
        if scenario.startswith("rpc"):
            rows = [("calls/s", lambda r: r["calls_per_s"], ",.0f"),
                    ("p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
                    ("p99 µs", lambda r: r["latency_us"]["p99"], ",.0f")]
        else:
            rows = [("deliveries/s", lambda r: r["deliveries_per_s"], ",.0f"),
                    ("p50 µs", lambda r: r["latency_us"]["p50"], ",.0f"),
                    ("p99 µs", lambda r: r["latency_us"]["p99"], ",.0f")]
        for metric, key, fmt in rows:
            base = median(results.get("ceiling", {}).get(scenario, []), key)
            cells = []
            for n in names:
                v = median(results[n].get(scenario, []), key)
                cells.append(cell(v, fmt) + ratio(v, base))
            print(f"| {scenario} | {metric} | " + " | ".join(cells) + " |")
    cells = [cell(results[n].get("idle") and results[n]["idle"] / 1024, ".1f") for n in names]
    print(f"| {args.sessions} idle sessions | KiB per session | " + " | ".join(cells) + " |")
    if "router+tls" in results and "router" in results:
        print("\nThe cost of TLS: our router over wss:// against ws:// in the same run.\n")
        print("| scenario | metric | ws:// | wss:// | wss/ws |")
        print("|---|---|---|---|---|")
        for scenario, metric, key in [
            ("rpc 4x16", "calls/s", lambda r: r["calls_per_s"]),
            ("fanout 1->100", "deliveries/s", lambda r: r["deliveries_per_s"]),
        ]:
            ws = median(results["router"].get(scenario, []), key)
            wss = median(results["router+tls"].get(scenario, []), key)
            share = "n/a" if not ws or wss is None else f"{wss / ws:.0%}"
            print(f"| {scenario} | {metric} | {cell(ws, ',.0f')} | {cell(wss, ',.0f')} | {share} |")
        ws, wss = results["router"].get("idle"), results["router+tls"].get("idle")
        added = None if ws is None or wss is None else (wss - ws) / 1024
        print(f"| {args.sessions} idle sessions | KiB per session | {cell(ws and ws / 1024, '.1f')} "
              f"| {cell(wss and wss / 1024, '.1f')} | +{cell(added, '.1f')} KiB |")


if __name__ == "__main__":
    main()
