#!/usr/bin/env python3
"""`make bench`: authz (release build, one worker thread) pinned to CPU 0 on a fresh SQLite
database, the workspace's `loadgen` pinned to CPU 1, one endpoint at a time; prints a
markdown table with req/s, latency, server CPU per request and server-side time per request.

Env: DUR (default 15s), WARMUP (3s), CONNS (32). Loopback only; every run is bounded.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DUR = os.environ.get("DUR", "15s")
WARMUP = os.environ.get("WARMUP", "3s")
CONNS = os.environ.get("CONNS", "32")
PIN = len(os.sched_getaffinity(0)) >= 2
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pinned(cpu, cmd):
    return (["taskset", "-c", str(cpu)] if PIN else []) + cmd


def main():
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "authz", "-p", "loadgen"], cwd=ROOT, check=True)
    authz = os.path.join(ROOT, "target", "release", "authz")
    loadgen = os.path.join(ROOT, "target", "release", "loadgen")
    with tempfile.TemporaryDirectory() as data:
        kek = subprocess.run([authz, "keys", "new-kek"], check=True, capture_output=True, text=True).stdout.strip()
        env = dict(os.environ)
        env.update({
            "AUTHZ__KEYS__ENCRYPTION_KEY": kek,
            "AUTHZ__DATABASE__URL": f"sqlite://{data}/authz.db",
            "AUTHZ__HTTP__PORT": "0",
            "AUTHZ__GRPC__PORT": "0",
            "AUTHZ__ADMIN__PORT": "0",
            "AUTHZ__RUNTIME__WORKER_THREADS": "1",
            "AUTHZ__TELEMETRY__LOG_FILTER": "warn",
            "RUST_LOG": "warn",
        })
        server = subprocess.Popen(pinned(0, [authz, "serve"]), cwd=data, env=env, stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            addrs = dict(re.findall(r"(\w+)=(\S+)", line))
            if "http" not in addrs:
                sys.exit(f"bench: authz did not start: {line!r}")
            if PIN:
                subprocess.run(["taskset", "-a", "-cp", "0", str(server.pid)], check=True, capture_output=True)
            http, admin = f"http://{addrs['http']}", f"http://{addrs['admin']}"
            rows = []
            for label, path, expect in [
                ("discovery", "/.well-known/openid-configuration", '"issuer"'),
                ("jwks", "/.well-known/jwks.json", '"keys"'),
            ]:
                cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
                out = subprocess.run(
                    pinned(1, [loadgen, http + path, "--expect", expect, "--connections", CONNS,
                               "--duration", DUR, "--warmup", WARMUP, "--metrics", admin + "/metrics",
                               "--route", path, "--label", label]),
                    capture_output=True, text=True)
                cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
                if out.returncode != 0:
                    sys.exit(f"bench: {label}: {out.stderr.strip()} {out.stdout.strip()}")
                r = json.loads(out.stdout)
                r["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / (t1 - t0)
                rows.append(r)
        finally:
            server.terminate()
            server.wait(timeout=15)
    print()
    print(f"authz (release, 1 worker thread{', pinned to CPU 0' if PIN else ''}), SQLite; "
          f"loadgen{' on CPU 1' if PIN else ''}: {CONNS} connections, {DUR} after {WARMUP} warm-up, every response checked")
    print()
    print("| endpoint | req/s | p50 ms | p99 ms | errors | server CPU | server time / req |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        errors = r["bad_status"] + r["bad_body"] + r["socket_errors"]
        server_us = r["server_us_per_request"]
        print(f"| {r['label']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {errors} | "
              f"{r['server_cpu_pct']:.0f}% | {server_us if server_us is not None else '-'} µs |")


if __name__ == "__main__":
    main()
