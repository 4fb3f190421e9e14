#!/usr/bin/env bash
# `make demo`: builds authz, idp and rs, runs them on SQLite under ./data with the
# documented configs/*.yaml, waits until all three are ready and prints where they are.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

# DEMO_DATA: the data directory (default ./data); the e2e test points it at a temp dir.
# The demo data (clients demo-client, demo-spa, demo-rs; user demo) is seeded by the
# services themselves, `serve --demo`, each only when missing. --reset-demo starts them with
# `serve --reset-demo` instead: they delete their demo data, with the tokens, codes, consents,
# grants and sessions that hang off it, and seed it afresh. Anything else in the databases
# (signing keys, other clients and users) is kept; `make clean-data` deletes everything.
data="${DEMO_DATA:-data}"
demo=--demo
for arg in "$@"; do
    case "$arg" in
        --reset-demo) demo=--reset-demo ;;
        *) echo "usage: $0 [--reset-demo]" >&2; exit 2 ;;
    esac
done
cargo build --quiet -p authz -p idp -p rs
mkdir -p "$data"
bin="${CARGO_TARGET_DIR:-target}/debug"
export AUTHZ__DATABASE__URL="sqlite://$data/authz.db"
export IDP__DATABASE__URL="sqlite://$data/idp.db"
# Demo only: authz needs a key-encryption key for its signing keys; create one for the
# demo data directory (a real deployment mounts its own as keys.encryption_key_file).
if [ ! -s "$data"/authz.kek ]; then
    (umask 077 && "$bin/authz" keys new-kek > "$data"/authz.kek)
    echo "demo: created $data/authz.kek (key-encryption key of the demo's signing keys)"
fi
export AUTHZ__KEYS__ENCRYPTION_KEY_FILE="$data"/authz.kek

# Demo only: the secrets authz and idp use with each other and idp's CSRF key, generated
# once per data directory (a deployment mounts its own through the *_file keys).
secret() {
    if [ ! -s "$data/$1" ]; then
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' > "$data/$1")
        echo "demo: created $data/$1"
    fi
}
secret idp-loginflow.secret
secret authz-sessions.secret
secret idp-csrf.key
export AUTHZ__IDP__CLIENT_SECRET_FILE="$data"/authz-sessions.secret
export IDP__SESSIONS_API__CLIENT_SECRET_FILE="$data"/authz-sessions.secret
export IDP__AUTHZ__CLIENT_SECRET_FILE="$data"/idp-loginflow.secret
export IDP__CSRF__KEY_FILE="$data"/idp-csrf.key

# Wiring, not demo data: idp's LoginFlow credentials at authz, registered once per data
# directory with the generated secret.
authz_cli() { "$bin/authz" "$@" --config configs/authz.yaml; }
if ! authz_cli clients show idp >/dev/null 2>&1; then
    authz_cli clients create --id idp --name "Identity provider (LoginFlow)" \
        --secret-file "$data"/idp-loginflow.secret >/dev/null
    echo "demo: registered client idp (idp's LoginFlow credentials)"
fi
# Earlier versions of this script kept the demo credentials in files; the services hold them.
rm -f "$data"/demo-client.secret "$data"/demo-rs.secret "$data"/demo-user.password

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

# authz and idp seed their demo data (printing `[svc] demo: …` lines) before they serve.
for svc in authz idp rs; do
    args=(serve --config "configs/$svc.yaml")
    if [ "$svc" != rs ]; then args+=("$demo"); fi
    env "${svc^^}__TELEMETRY__LOG_FORMAT=pretty" "$bin/$svc" "${args[@]}" > >(sed -u "s/^/[$svc] /") 2> >(sed -u "s/^/[$svc] /" >&2) &
    pids+=($!)
done

# The demo's web application: the relying party behind the demo clients' redirect URIs.
"$bin/authz" demo-app > >(sed -u "s/^/[demo-app] /") 2> >(sed -u "s/^/[demo-app] /" >&2) &
pids+=($!)

for admin in 9080 9081 9082; do
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null
done
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null http://127.0.0.1:3000/healthz 2>/dev/null; then break; fi
    sleep 0.1
done
curl -fsS -o /dev/null http://127.0.0.1:3000/healthz

cat <<MSG

  All three services are ready.

  Open http://localhost:3000/ and sign in as demo / demo-password.

  authz  http://localhost:8080   gRPC localhost:50051   admin http://localhost:9080
  idp    http://localhost:8081   gRPC localhost:50052   admin http://localhost:9081
  rs     http://localhost:8082                          admin http://localhost:9082
  app    http://localhost:3000   (the demo web app: demo-client, or demo-spa)

  Clients demo-client / demo-secret, demo-spa (public, PKCE), demo-rs / demo-rs-secret.

  Next steps:
    1. cargo run -q -p authz -- demo          # walks every flow, one line per step
    2. curl -s -u demo-client:demo-secret -d grant_type=client_credentials \\
         -d scope=items:read http://localhost:8080/token
    3. curl -s http://localhost:8080/.well-known/openid-configuration

  Ctrl-C stops everything.
MSG
wait
