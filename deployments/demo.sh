#!/usr/bin/env bash
# `make demo`: builds authz, idp and rs, runs them on SQLite under ./data with the
# documented configs/*.yaml, waits until all three are ready and prints where they are.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p authz -p idp -p rs
mkdir -p data
bin=target/debug
# Demo only: authz needs a key-encryption key for its signing keys; create one for the
# demo data directory (a real deployment mounts its own as keys.encryption_key_file).
if [ ! -s data/authz.kek ]; then
    (umask 077 && "$bin/authz" keys new-kek > data/authz.kek)
    echo "demo: created data/authz.kek (key-encryption key of the demo's signing keys)"
fi
export AUTHZ__KEYS__ENCRYPTION_KEY_FILE=data/authz.kek
pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
    echo "stopped."
}
trap stop INT TERM EXIT

for svc in authz idp rs; do
    env "${svc^^}__TELEMETRY__LOG_FORMAT=pretty" "$bin/$svc" serve --config "configs/$svc.yaml" > >(sed -u "s/^/[$svc] /") 2> >(sed -u "s/^/[$svc] /" >&2) &
    pids+=($!)
done

for admin in 9080 9081 9082; do
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null
done

cat <<MSG

  All three services are ready.

  authz  http://localhost:8080   gRPC localhost:50051   admin http://localhost:9080
  idp    http://localhost:8081   gRPC localhost:50052   admin http://localhost:9081
  rs     http://localhost:8082                          admin http://localhost:9082

  Try:  curl -s http://localhost:8080/.well-known/openid-configuration
        curl -s http://localhost:8080/.well-known/jwks.json
        curl -s http://localhost:9080/metrics | grep http_requests_total

  Ctrl-C stops all three.
MSG
wait
