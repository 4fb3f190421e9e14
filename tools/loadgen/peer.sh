#!/usr/bin/env bash
# `make bench-peer`: the same ../shared/bench/bench.sh (wrk, every response checked) against
# our authz and against node-oidc-provider, one after the other in one run, each server
# pinned to CPU 0 and wrk to CPU 1. Needs wrk (apt-get install wrk) and Node.js with npm.
# Results: target/peer-bench/results/<stamp>-<label>/, a table from summarize.py and the
# chart docs/bench/peer.svg (tools/loadgen/chart.py) that the README links.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v wrk >/dev/null || { echo "bench-peer: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
BENCH=target/peer-bench
if [ ! -d "$BENCH" ]; then
    cp -r ../shared/bench "$BENCH"
    chmod -R u+w "$BENCH"
fi
(cd "$BENCH/node-oidc" && [ -d node_modules ] || npm ci --no-audit --no-fund)
cargo build --quiet --release -p authz
AUTHZ=$ROOT/target/release/authz
PORT=3110

ours() { # label format alg
    local label=$1 format=$2 alg=$3 data
    data=$(mktemp -d)
    export AUTHZ__ISSUER="http://127.0.0.1:$PORT" AUTHZ__HTTP__PORT=$PORT AUTHZ__GRPC__PORT=0 AUTHZ__ADMIN__PORT=0 \
        AUTHZ__DATABASE__URL="sqlite://$data/authz.db" AUTHZ__KEYS__ENCRYPTION_KEY="$($AUTHZ keys new-kek)" \
        AUTHZ__KEYS__DEFAULT_ALG=$alg AUTHZ__KEYS__ALGORITHMS="[$alg]" AUTHZ__RUNTIME__WORKER_THREADS=1 \
        AUTHZ__TELEMETRY__LOG_FILTER=warn RUST_LOG=warn
    printf 'bench-secret' > "$data/secret"
    "$AUTHZ" migrate > /dev/null
    "$AUTHZ" clients create --id bench-cc --name bench --scope "api:read api:write" \
        --audience https://api.example.test --introspect true --token-format "$format" \
        --secret-file "$data/secret" --json > /dev/null
    (cd "$data" && exec taskset -c 0 "$AUTHZ" serve > "$data/out" 2> "$data/log") &
    local pid=$!
    for _ in $(seq 1 100); do grep -q listening "$data/out" 2>/dev/null && break; sleep 0.1; done
    SERVER_PID=$pid SERVER_CPU=0 SCOPE='api:read api:write' LABEL=$label \
        "$BENCH/bench.sh" "http://127.0.0.1:$PORT" bench-cc bench-secret https://api.example.test || true
    kill -TERM $pid; wait $pid || true
    rm -rf "$data"
}

ours authz-jwt-rs256 jwt RS256
ours authz-opaque opaque RS256
ours authz-jwt-es256 jwt ES256
"$BENCH/run-node-peer.sh" jwt RS256 || true
"$BENCH/run-node-peer.sh" opaque || true
"$BENCH/run-node-peer.sh" jwt ES256 || true
python3 "$BENCH/summarize.py"
# The chart the README links: this run's req/s per endpoint, ours beside the peer.
python3 tools/loadgen/chart.py "$BENCH/results" docs/bench/peer.svg
