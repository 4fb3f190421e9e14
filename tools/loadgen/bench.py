#!/usr/bin/env python3
"""`make bench`: authz (release build, one worker thread) pinned to CPU 0, the workspace's
`loadgen` pinned to CPU 1, one endpoint at a time; on SQLite and, when BENCH_POSTGRES_URL
(or TEST_POSTGRES_URL) names a PostgreSQL server whose role may create databases, on a
fresh PostgreSQL database too. Prints a markdown table.

Env: DUR (default 15s), WARMUP (3s), CONNS (32), ONLY (comma-separated row labels; `rs` for
the guard rows).
Loopback only; every run is bounded in time.
"""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DUR = os.environ.get("DUR", "15s")
WARMUP = os.environ.get("WARMUP", "3s")
CONNS = os.environ.get("CONNS", "32")
ONLY = [x for x in os.environ.get("ONLY", "").split(",") if x]
PG = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
PIN = len(os.sched_getaffinity(0)) >= 2
TICKS = os.sysconf("SC_CLK_TCK")
AUTHZ = os.path.join(ROOT, "target", "release", "authz")
RS = os.path.join(ROOT, "target", "release", "rs")
LOADGEN = os.path.join(ROOT, "target", "release", "loadgen")
SECRET = "bench-secret"
RESOURCE = "https://api.example.test"
SCOPE = "api:read api:write"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pinned(cpu, cmd):
    return (["taskset", "-c", str(cpu)] if PIN else []) + cmd


def token(http, client, extra=None):
    form = {"grant_type": "client_credentials", "scope": SCOPE, "resource": RESOURCE}
    form.update(extra or {})
    req = urllib.request.Request(http + "/token", data=urllib.parse.urlencode(form).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{client}:{SECRET}".encode()).decode())
    with urllib.request.urlopen(req) as res:
        return json.load(res)["access_token"]


def fresh_postgres_url(admin_url):
    name = "authz_bench"
    subprocess.run(["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
    subprocess.run(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    parsed = urllib.parse.urlparse(admin_url)
    return urllib.parse.urlunparse(parsed._replace(path="/" + name))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl_speed(alg):
    """Signatures per second of one core (CPU 0, the server's core) with `openssl speed`."""
    out = subprocess.run(pinned(0, ["openssl", "speed", "-seconds", "5", alg]), capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if alg == "rsa2048" and line.startswith("rsa 2048 bits"):
            return float(fields[5])
        if alg == "ecdsap256" and "nistp256" in line and "sign/s" not in line:
            return float(fields[-2])
    return None


def run_once(label, url, args, pid, metrics=None):
    """One loadgen run against `url`; adds the server's CPU share (process `pid`)."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    out = subprocess.run(pinned(1, [LOADGEN, url, "--connections", CONNS, "--duration", DUR,
                                    "--warmup", WARMUP, "--label", label] + (metrics or []) + args),
                         capture_output=True, text=True)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    if out.returncode != 0:
        sys.exit(f"bench: {label}: {out.stderr.strip()} {out.stdout.strip()}")
    r = json.loads(out.stdout)
    r["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / (t1 - t0)
    return r


def run_guard(http, data):
    """rs in `jwt` mode against the running authz: CPU per request of `GET /api/v1/me` with a
    valid RS256 JWT, against the public `GET /api/v1/status`, one worker pinned to CPU 0."""
    env = dict(os.environ)
    env.update({
        "RS__GUARD__MODE": "jwt",
        "RS__GUARD__ISSUER": http,
        "RS__GUARD__AUDIENCE": RESOURCE,
        "RS__HTTP__PORT": "0",
        "RS__ADMIN__PORT": "0",
        "RS__RUNTIME__WORKER_THREADS": "1",
        "RS__TELEMETRY__LOG_FILTER": "warn",
        "RUST_LOG": "warn",
    })
    server = subprocess.Popen(pinned(0, [RS, "serve"]), cwd=data, env=env, stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        addrs = dict(re.findall(r"(\w+)=(\S+)", server.stdout.readline()))
        if "http" not in addrs:
            sys.exit("bench: rs did not start")
        if PIN:
            subprocess.run(["taskset", "-a", "-cp", "0", str(server.pid)], check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{addrs['admin']}/readyz") as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("bench: rs never became ready")
            time.sleep(0.1)
        api = f"http://{addrs['http']}/api/v1"
        jwt = token(http, "bench-cc")
        for label, path, args in [
            ("rs /api/v1/status (no token)", "/status", ["--expect", '"service"']),
            ("rs /api/v1/me (RS256 JWT, jwt mode)", "/me", ["--expect", '"sub"',
                                                             "--header", f"Authorization: Bearer {jwt}"]),
        ]:
            r = run_once(label, api + path, args, server.pid)
            r["backend"] = "rs"
            rows.append(r)
            print(f"  {'rs':<10} {label:<34} {r['rps']:>9.0f} req/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=15)
    return rows


def run_backend(backend, db_url, data):
    kek = subprocess.run([AUTHZ, "keys", "new-kek"], check=True, capture_output=True, text=True).stdout.strip()
    env = dict(os.environ)
    port = free_port()
    env.update({
        "AUTHZ__ISSUER": f"http://127.0.0.1:{port}",
        "AUTHZ__KEYS__ENCRYPTION_KEY": kek,
        "AUTHZ__KEYS__ALGORITHMS": "[RS256, ES256]",
        "AUTHZ__DATABASE__URL": db_url,
        "AUTHZ__HTTP__PORT": str(port),
        "AUTHZ__GRPC__PORT": "0",
        "AUTHZ__ADMIN__PORT": "0",
        "AUTHZ__RUNTIME__WORKER_THREADS": "1",
        "AUTHZ__TELEMETRY__LOG_FILTER": "warn",
        "RUST_LOG": "warn",
    })
    secret_file = os.path.join(data, "secret")
    with open(secret_file, "w") as f:
        f.write(SECRET)
    subprocess.run([AUTHZ, "migrate"], env=env, check=True, capture_output=True, cwd=data)
    for client, extra in [("bench-cc", []), ("bench-es", ["--signing-alg", "ES256"]),
                          ("bench-opaque", ["--token-format", "opaque"])]:
        subprocess.run([AUTHZ, "clients", "create", "--id", client, "--name", client, "--scope", SCOPE,
                        "--audience", RESOURCE, "--introspect", "true", "--secret-file", secret_file, "--json"]
                       + extra, env=env, check=True, capture_output=True, cwd=data)
    server = subprocess.Popen(pinned(0, [AUTHZ, "serve"]), cwd=data, env=env, stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        line = server.stdout.readline()
        addrs = dict(re.findall(r"(\w+)=(\S+)", line))
        if "http" not in addrs:
            sys.exit(f"bench: authz did not start: {line!r}")
        if PIN:
            subprocess.run(["taskset", "-a", "-cp", "0", str(server.pid)], check=True, capture_output=True)
        http, admin, grpc = f"http://{addrs['http']}", f"http://{addrs['admin']}", f"http://{addrs['grpc']}"
        basic = ["--basic", f"bench-cc:{SECRET}"]
        form_cc = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE, "resource": RESOURCE})
        es_jwt = token(http, "bench-es")
        opaque = token(http, "bench-opaque")
        cases = [
            ("token RS256 JWT", http + "/token", ["--method", "POST", "--form", form_cc, "--basic", f"bench-cc:{SECRET}",
                                                  "--expect", '"access_token"', "--route", "/token"]),
            ("token ES256 JWT", http + "/token", ["--method", "POST", "--form", form_cc, "--basic", f"bench-es:{SECRET}",
                                                  "--expect", '"access_token"', "--route", "/token"]),
            ("token opaque", http + "/token", ["--method", "POST", "--form", form_cc, "--basic", f"bench-opaque:{SECRET}",
                                               "--expect", '"access_token"', "--route", "/token"]),
            ("introspect HTTP (JWT)", http + "/introspect", ["--method", "POST", "--form", "token=" + es_jwt,
                                                              "--expect", '"active":true', "--route", "/introspect"] + basic),
            ("introspect HTTP (opaque)", http + "/introspect", ["--method", "POST", "--form", "token=" + opaque,
                                                                 "--expect", '"active":true', "--route", "/introspect"] + basic),
            ("introspect gRPC (JWT)", grpc, ["--grpc-introspect", es_jwt] + basic),
            ("introspect gRPC batch 100 (JWT)", grpc, ["--grpc-introspect", es_jwt, "--batch", "100"] + basic),
            ("jwks", http + "/.well-known/jwks.json", ["--expect", '"keys"', "--route", "/.well-known/jwks.json"]),
            ("discovery", http + "/.well-known/openid-configuration", ["--expect", '"issuer"',
                                                                       "--route", "/.well-known/openid-configuration"]),
        ]
        for label, url, args in cases:
            if ONLY and label not in ONLY:
                continue
            metrics = ["--metrics", admin + "/metrics"] if "--route" in args else []
            r = run_once(label, url, args, server.pid, metrics)
            r["backend"] = backend
            rows.append(r)
            print(f"  {backend:<10} {label:<34} {r['rps']:>9.0f} req/s", file=sys.stderr)
        if backend == "SQLite" and (not ONLY or "rs" in ONLY):
            rows += run_guard(http, data)
    finally:
        server.terminate()
        server.wait(timeout=15)
    return rows


def main():
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "authz", "-p", "rs", "-p", "loadgen"],
                   cwd=ROOT, check=True)
    rsa, ec = openssl_speed("rsa2048"), openssl_speed("ecdsap256")
    rows = []
    with tempfile.TemporaryDirectory() as data:
        rows += run_backend("SQLite", f"sqlite://{data}/authz.db", data)
    if PG:
        with tempfile.TemporaryDirectory() as data:
            rows += run_backend("PostgreSQL", fresh_postgres_url(PG), data)
    else:
        print("bench: BENCH_POSTGRES_URL / TEST_POSTGRES_URL not set: PostgreSQL rows skipped", file=sys.stderr)
    print()
    print(f"authz release build, 1 worker thread{' pinned to CPU 0' if PIN else ''}; loadgen{' on CPU 1' if PIN else ''}, "
          f"{CONNS} connections, {DUR} after {WARMUP} warm-up, every response checked; RS256 keys RSA-2048")
    print()
    print("| store | endpoint | req/s | tokens/s | p50 ms | p99 ms | errors | server CPU | in-server latency |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        errors = r["bad_status"] + r["bad_body"] + r["socket_errors"]
        st = r["server_us_per_request"]
        print(f"| {r['backend']} | {r['label']} | {r['rps']:.0f} | {r['items_per_s']:.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {errors} | {r['server_cpu_pct']:.0f}% | {f'{st} µs' if st is not None else '-'} |")
    print()
    if rsa and ec:
        print(f"Signing limit of CPU 0 in this run (openssl speed, 5 s, core 1 idle): RSA-2048 {rsa:,.0f} signs/s, "
              f"ECDSA P-256 {ec:,.0f} signs/s.")
        for r in rows:
            if r["label"] == "token RS256 JWT":
                print(f"- {r['backend']}: token RS256 JWT = {100 * r['rps'] / rsa:.0f}% of the RSA-2048 signing limit")
    guard = {r["label"]: r for r in rows if r["backend"] == "rs"}
    if len(guard) == 2:
        open_, jwt = guard["rs /api/v1/status (no token)"], guard["rs /api/v1/me (RS256 JWT, jwt mode)"]
        cpu = lambda r: r["server_cpu_pct"] / 100 / r["rps"] * 1e6
        print(f"- rs CPU per request: {cpu(open_):.1f} µs unprotected, {cpu(jwt):.1f} µs with a verified JWT "
              f"(+{100 * (cpu(jwt) / cpu(open_) - 1):.0f}%)")


if __name__ == "__main__":
    main()
