#!/usr/bin/env bash
# `make demo`: builds authz, idp and rs, runs them on SQLite under ./data with the
# documented configs/*.yaml, waits until all three are ready and prints where they are.
# Ctrl-C (or SIGTERM) stops all three gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

# DEMO_DATA: the data directory (default ./data); the e2e test points it at a temp dir.
# --reset-demo: delete the directory's databases and secrets first and seed from scratch.
data="${DEMO_DATA:-data}"
reset=no
for arg in "$@"; do
    case "$arg" in
        --reset-demo) reset=yes ;;
        *) echo "usage: $0 [--reset-demo]" >&2; exit 2 ;;
    esac
done
if [ "$reset" = yes ]; then
    rm -f "$data"/authz.db* "$data"/idp.db* "$data"/authz.kek "$data"/*.secret \
        "$data"/idp-csrf.key "$data"/demo-user.password
    echo "demo: reset $data (databases and secrets deleted)"
fi
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
        (umask 077 && openssl rand -base64 32 | tr -d '\n' > "$data/$1")
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

# Demo data, created only when missing, so a second start keeps what is there.
authz_cli() { "$bin/authz" "$@" --config configs/authz.yaml; }
idp_cli() { "$bin/idp" "$@" --config configs/idp.yaml; }
if ! authz_cli clients show idp >/dev/null 2>&1; then
    authz_cli clients create --id idp --name "Identity provider (LoginFlow)" \
        --secret-file "$data"/idp-loginflow.secret >/dev/null
    echo "demo: registered client idp (idp's LoginFlow credentials)"
fi
if ! authz_cli clients show demo-client >/dev/null 2>&1; then
    (umask 077 && printf demo-secret > "$data"/demo-client.secret)
    authz_cli clients create --id demo-client --name "Demo web app" \
        --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials \
        --scope "openid profile email offline_access items:read items:write" \
        --redirect-uri http://localhost:3000/callback --post-logout-redirect-uri http://localhost:3000/ \
        --audience http://localhost:8082 --secret-file "$data"/demo-client.secret >/dev/null
    echo "demo: registered client demo-client / demo-secret"
fi
if ! authz_cli clients show demo-spa >/dev/null 2>&1; then
    authz_cli clients create --id demo-spa --name "Demo single-page app" --auth-method none \
        --grant-type authorization_code --grant-type refresh_token \
        --scope "openid profile email offline_access items:read items:write" \
        --redirect-uri http://localhost:3000/spa/callback --post-logout-redirect-uri http://localhost:3000/ \
        --audience http://localhost:8082 >/dev/null
    echo "demo: registered public client demo-spa (PKCE, no secret)"
fi
if ! authz_cli clients show demo-rs >/dev/null 2>&1; then
    (umask 077 && printf demo-rs-secret > "$data"/demo-rs.secret)
    authz_cli clients create --id demo-rs --name "Demo resource server (rs)" --introspect true \
        --secret-file "$data"/demo-rs.secret >/dev/null
    echo "demo: registered client demo-rs / demo-rs-secret (may introspect)"
fi
if ! idp_cli users show demo >/dev/null 2>&1; then
    (umask 077 && printf demo-password > "$data"/demo-user.password)
    idp_cli users create --username demo --email demo@example.com --email-verified \
        --name "Demo User" --password-file "$data"/demo-user.password >/dev/null
    echo "demo: created user demo / demo-password"
fi
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
    if curl -fsS -o /dev/null http://127.0.0.1:3000/ 2>/dev/null; then break; fi
    sleep 0.1
done
curl -fsS -o /dev/null http://127.0.0.1:3000/

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
