#!/usr/bin/env bash
# `make demo`: builds authz, idp, rs and the demo tool, runs the three services on SQLite
# under ./data with the documented configs/*.yaml and the demo web app (`demo app`), waits
# until all of them are ready and prints where they are. Ctrl-C (or SIGTERM) stops them
# gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

# DEMO_DATA: the data directory (default ./data); the e2e test points it at a temp dir.
# The demo data (clients demo-client, demo-spa, demo-rs; user demo) is seeded by the
# services themselves, `serve --demo`, each only when missing. --reset-demo starts them with
# `serve --reset-demo` instead: they delete their demo data, with the tokens, codes, consents,
# grants and sessions that hang off it, and seed it afresh. Anything else in the databases
# (signing keys, other clients and users) is kept; `make clean-data` deletes everything.
data="${DEMO_DATA:-data}"

# Ports: the documented defaults, each overridable (the e2e test picks free ones, so that
# `make test` passes while a `make demo` holds these). They go to the services as
# <SVC>__HTTP__PORT etc., and every URL that names a port follows: authz's issuer, idp's
# public_url, the gRPC links between the services, the demo app's URL, and the demo clients'
# redirect URIs (AUTHZ_DEMO_APP_URL, read by `authz serve --demo` as its --demo-app-url when it registers them:
# after changing DEMO_APP_PORT on an existing data directory, use --reset-demo). rs's
# audience stays http://localhost:8082 whatever its port: an identifier, not an address.
authz_port="${DEMO_AUTHZ_PORT:-8080}"
authz_grpc_port="${DEMO_AUTHZ_GRPC_PORT:-50051}"
authz_admin_port="${DEMO_AUTHZ_ADMIN_PORT:-9080}"
idp_port="${DEMO_IDP_PORT:-8081}"
idp_grpc_port="${DEMO_IDP_GRPC_PORT:-50052}"
idp_admin_port="${DEMO_IDP_ADMIN_PORT:-9081}"
rs_port="${DEMO_RS_PORT:-8082}"
rs_admin_port="${DEMO_RS_ADMIN_PORT:-9082}"
app_port="${DEMO_APP_PORT:-3000}"
issuer="http://localhost:$authz_port"
idp_url="http://localhost:$idp_port"
rs_url="http://localhost:$rs_port"
app_url="http://localhost:$app_port"
# "Demo Corp SSO": a second, real authz + idp pair the first idp offers as an upstream
# OpenID provider (docs/guides/upstream-login.md), on 127.0.0.1 rather than localhost:
# cookies are per host, not per port, so the two pairs' sessions stay apart in one browser.
sso_authz_port="${DEMO_SSO_AUTHZ_PORT:-8180}"
sso_authz_grpc_port="${DEMO_SSO_AUTHZ_GRPC_PORT:-50151}"
sso_authz_admin_port="${DEMO_SSO_AUTHZ_ADMIN_PORT:-9180}"
sso_idp_port="${DEMO_SSO_IDP_PORT:-8181}"
sso_idp_grpc_port="${DEMO_SSO_IDP_GRPC_PORT:-50152}"
sso_idp_admin_port="${DEMO_SSO_IDP_ADMIN_PORT:-9181}"
sso_issuer="http://127.0.0.1:$sso_authz_port"
sso_idp_url="http://127.0.0.1:$sso_idp_port"

demo=--demo
for arg in "$@"; do
    case "$arg" in
        --reset-demo) demo=--reset-demo ;;
        *) echo "usage: $0 [--reset-demo]" >&2; exit 2 ;;
    esac
done
cargo build --quiet -p authz -p idp -p rs -p demo -p pki
mkdir -p "$data"
bin="${CARGO_TARGET_DIR:-target}/debug"
export AUTHZ__DATABASE__URL="sqlite://$data/authz.db"
export IDP__DATABASE__URL="sqlite://$data/idp.db"

# Where everything listens, and how the services find each other.
export AUTHZ__ISSUER="$issuer"
export AUTHZ__HTTP__PORT="$authz_port" AUTHZ__GRPC__PORT="$authz_grpc_port" AUTHZ__ADMIN__PORT="$authz_admin_port"
export AUTHZ__IDP__PUBLIC_URL="$idp_url"
export AUTHZ__IDP__GRPC_URL="https://127.0.0.1:$idp_grpc_port"
export AUTHZ_DEMO_APP_URL="$app_url"
export IDP__PUBLIC_URL="$idp_url"
export IDP__HTTP__PORT="$idp_port" IDP__GRPC__PORT="$idp_grpc_port" IDP__ADMIN__PORT="$idp_admin_port"
export IDP__AUTHZ__GRPC_URL="https://127.0.0.1:$authz_grpc_port"
export IDP__ADMIN_API__ISSUER="$issuer"   # idp's admin API takes authz's access tokens
export RS__HTTP__PORT="$rs_port" RS__ADMIN__PORT="$rs_admin_port"
export RS__GUARD__ISSUER="$issuer"
export RS__GUARD__INTROSPECTION__ENDPOINT="https://127.0.0.1:$authz_grpc_port"
# rs checks tokens as in compose: hybrid (JWT signature locally, then introspection at
# authz) with the demo-rs introspection client seeded by `authz serve --demo` (its secret is
# the demo's public one), so a revoked token is refused (401) at once. Demo only: no
# introspection answer is cached (cache_ttl 0s); compose keeps the 30s default, the delay
# after which a revocation reaches rs.
export RS__GUARD__MODE=hybrid
export RS__GUARD__INTROSPECTION__CLIENT_ID=demo-rs
export RS__GUARD__INTROSPECTION__CLIENT_SECRET=demo-rs-secret
export RS__GUARD__INTROSPECTION__CACHE_TTL=0s
# token exchange (RFC 8693): rs's /api/v1/delegate calls its /api/v1/downstream with a token
# exchanged as demo-rs (seeded with the grant and the downstream audience).
export RS__EXCHANGE__ENABLED=true
export RS__EXCHANGE__CLIENT_ID=demo-rs
export RS__EXCHANGE__CLIENT_SECRET=demo-rs-secret
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

# Demo only: self-registration and "forgot password?" on, their mail written as one .eml
# file per message into $data/mail (no SMTP relay needed; docs/guides/email.md).
export IDP__MAIL__TRANSPORT=file IDP__MAIL__FILE_DIR="$data/mail"
export IDP__MAIL__FROM="Demo identity provider <no-reply@localhost>"
export IDP__SIGNUP__ENABLED=true IDP__PASSWORD_RESET__ENABLED=true

# Demo only: mutual TLS on every gRPC link (docs/guides/tls.md). A small CA (root ->
# intermediate -> issuing) and one certificate per service (DNS names the service's name and
# localhost, IP 127.0.0.1, server and client usage), made once per data directory by the
# dev PKI tool; a leaf that has expired or expires within a day is issued afresh. A
# deployment mounts certificates from its own PKI.
pki_dir="$data/pki"
if [ ! -s "$pki_dir/ca.pem" ]; then
    "$bin/pki" init --dir "$pki_dir" >/dev/null
    echo "demo: created the demo CA $pki_dir/ca.pem"
fi
for svc in authz idp rs; do
    force=()
    if [ -s "$pki_dir/$svc/cert.pem" ]; then
        if ! command -v openssl >/dev/null || openssl x509 -checkend 86400 -noout -in "$pki_dir/$svc/cert.pem" >/dev/null; then
            continue
        fi
        force=(--force)
    fi
    "$bin/pki" issue --dir "$pki_dir" --name "$svc" --dns "$svc" --dns localhost --ip 127.0.0.1 "${force[@]}" >/dev/null
    echo "demo: created $pki_dir/$svc/fullchain.pem (TLS certificate of $svc)"
done
# authz's and idp's gRPC listeners: TLS with their certificates, client certificates from
# the demo CA required, the certificates' SANs mapped to the callers' client ids, and no
# Basic credentials in metadata (grpc.basic_auth false: certificates only).
for svc in AUTHZ IDP; do
    name=${svc,,}
    export "${svc}__GRPC__TLS__CERT_FILE=$pki_dir/$name/fullchain.pem"
    export "${svc}__GRPC__TLS__KEY_FILE=$pki_dir/$name/key.pem"
    export "${svc}__GRPC__TLS__CLIENT_CA_FILE=$pki_dir/ca.pem"
    export "${svc}__GRPC__BASIC_AUTH=false"
done
export AUTHZ__GRPC__IDENTITIES__IDP=idp          # idp's certificate calls LoginFlow as client idp
export AUTHZ__GRPC__IDENTITIES__RS=demo-rs       # rs's certificate introspects as client demo-rs
export IDP__GRPC__IDENTITIES__AUTHZ=authz        # authz's certificate calls Sessions as authz
# The clients of those links: the demo CA for the server, their own certificate for mTLS.
tls_client() { # PREFIX SERVICE SERVER
    export "$1__CA_FILE=$pki_dir/ca.pem"
    export "$1__CERT_FILE=$pki_dir/$2/fullchain.pem"
    export "$1__KEY_FILE=$pki_dir/$2/key.pem"
    export "$1__SERVER_NAME=$3"
}
tls_client AUTHZ__IDP__TLS authz idp
tls_client IDP__AUTHZ__TLS idp authz
tls_client RS__GUARD__INTROSPECTION__TLS rs authz

# Wiring, not demo data: idp's LoginFlow credentials at authz, registered once per data
# directory with the generated secret.
authz_cli() { "$bin/authz" "$@" --config configs/authz.yaml; }
# Only serve and migrate create the database; the client commands below need it.
authz_cli migrate >/dev/null
if ! authz_cli clients show idp >/dev/null 2>&1; then
    authz_cli clients create --id idp --name "Identity provider (LoginFlow)" \
        --secret-file "$data"/idp-loginflow.secret >/dev/null
    echo "demo: registered client idp (idp's LoginFlow credentials)"
fi
# "Demo Corp SSO", the second pair: its own databases, KEK and secrets under $data/sso,
# plain gRPC with Basic credentials between its two services (loopback only), and none of
# the first pair's settings (sso_run starts a command with only its own AUTHZ__/IDP__ keys).
# It knows the first idp as client demo-idp (redirect URI <idp>/upstream/corp/callback,
# secret in $data/sso/demo-idp.secret) and has one user, carol / carol-password.
sso_data="$data/sso"
mkdir -p "$sso_data"
secret sso/idp-loginflow.secret
secret sso/authz-sessions.secret
secret sso/idp-csrf.key
secret sso/demo-idp.secret
if [ ! -s "$sso_data"/authz.kek ]; then
    (umask 077 && "$bin/authz" keys new-kek > "$sso_data"/authz.kek)
    echo "demo: created $sso_data/authz.kek (key-encryption key of Demo Corp SSO's signing keys)"
fi
sso_env=(
    AUTHZ__DATABASE__URL="sqlite://$sso_data/authz.db"
    AUTHZ__KEYS__ENCRYPTION_KEY_FILE="$sso_data/authz.kek"
    AUTHZ__ISSUER="$sso_issuer"
    AUTHZ__HTTP__PORT="$sso_authz_port" AUTHZ__GRPC__PORT="$sso_authz_grpc_port" AUTHZ__ADMIN__PORT="$sso_authz_admin_port"
    AUTHZ__IDP__PUBLIC_URL="$sso_idp_url"
    AUTHZ__IDP__GRPC_URL="http://127.0.0.1:$sso_idp_grpc_port"
    AUTHZ__IDP__CLIENT_SECRET_FILE="$sso_data/authz-sessions.secret"
    IDP__DATABASE__URL="sqlite://$sso_data/idp.db"
    IDP__PUBLIC_URL="$sso_idp_url"
    IDP__HTTP__PORT="$sso_idp_port" IDP__GRPC__PORT="$sso_idp_grpc_port" IDP__ADMIN__PORT="$sso_idp_admin_port"
    IDP__AUTHZ__GRPC_URL="http://127.0.0.1:$sso_authz_grpc_port"
    IDP__AUTHZ__CLIENT_SECRET_FILE="$sso_data/idp-loginflow.secret"
    IDP__SESSIONS_API__CLIENT_SECRET_FILE="$sso_data/authz-sessions.secret"
    IDP__CSRF__KEY_FILE="$sso_data/idp-csrf.key"
    IDP__ADMIN_API__ISSUER="$sso_issuer"
)
sso_run() {
    (
        for v in $(compgen -e); do
            case "$v" in AUTHZ__* | IDP__* | RS__* | AUTHZ_DEMO_*) unset "$v" ;; esac
        done
        export "${sso_env[@]}"
        exec "$@"
    )
}
sso_run "$bin/authz" migrate --config configs/authz.yaml >/dev/null
sso_run "$bin/idp" migrate --config configs/idp.yaml >/dev/null
if ! sso_run "$bin/authz" clients show idp --config configs/authz.yaml >/dev/null 2>&1; then
    sso_run "$bin/authz" clients create --id idp --name "Demo Corp SSO identity provider (LoginFlow)" \
        --secret-file "$sso_data"/idp-loginflow.secret --config configs/authz.yaml >/dev/null
    echo "demo: registered client idp at Demo Corp SSO (its idp's LoginFlow credentials)"
fi
sso_callback="$idp_url/upstream/corp/callback"
if ! sso_run "$bin/authz" clients show demo-idp --config configs/authz.yaml >/dev/null 2>&1; then
    sso_run "$bin/authz" clients create --id demo-idp --name "Demo identity provider" \
        --grant-type authorization_code --scope "openid profile email" \
        --redirect-uri "$sso_callback" --secret-file "$sso_data"/demo-idp.secret \
        --config configs/authz.yaml >/dev/null
    echo "demo: registered client demo-idp at Demo Corp SSO (the demo idp's upstream credentials)"
else
    # The first idp's port may have moved since: its callback follows.
    sso_run "$bin/authz" clients update demo-idp --redirect-uri "$sso_callback" \
        --config configs/authz.yaml >/dev/null
fi
if ! sso_run "$bin/idp" users show carol --config configs/idp.yaml >/dev/null 2>&1; then
    (umask 077 && printf carol-password > "$sso_data"/carol.password)
    sso_run "$bin/idp" users create --username carol --email carol@corp.example --email-verified \
        --name "Carol Corp" --password-file "$sso_data"/carol.password --config configs/idp.yaml >/dev/null
    rm -f "$sso_data"/carol.password
    echo "demo: created user carol / carol-password at Demo Corp SSO"
fi
# The first idp offers it on its login page as "Sign in with Demo Corp SSO".
export IDP__UPSTREAMS__PROVIDERS__CORP__KIND=oidc
export IDP__UPSTREAMS__PROVIDERS__CORP__DISPLAY_NAME="Demo Corp SSO"
export IDP__UPSTREAMS__PROVIDERS__CORP__ISSUER="$sso_issuer"
export IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_ID=demo-idp
export IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_SECRET_FILE="$sso_data"/demo-idp.secret

# Earlier versions of this script kept the demo credentials in files; the services hold them.
rm -f "$data"/demo-client.secret "$data"/demo-rs.secret "$data"/demo-user.password

# The processes' ids, one `name pid` line each, for whoever needs to stop one of them (the
# e2e test stops idp to see the walk go on without it); removed when demo.sh stops.
pidfile="$data/demo.pids"
pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait || true
    rm -f "$pidfile"
    echo "stopped."
}
trap stop INT TERM EXIT
: > "$pidfile"

# Demo Corp SSO first (the first idp discovers it), without demo data of its own.
for svc in authz idp; do
    sso_run env "${svc^^}__TELEMETRY__LOG_FORMAT=pretty" "$bin/$svc" serve --config "configs/$svc.yaml" \
        > >(sed -u "s/^/[sso-$svc] /") 2> >(sed -u "s/^/[sso-$svc] /" >&2) &
    pids+=($!)
    echo "sso-$svc $!" >> "$pidfile"
done

# authz and idp seed their demo data (printing `[svc] demo: …` lines) before they serve.
for svc in authz idp rs; do
    args=(serve --config "configs/$svc.yaml")
    if [ "$svc" != rs ]; then args+=("$demo"); fi
    env "${svc^^}__TELEMETRY__LOG_FORMAT=pretty" "$bin/$svc" "${args[@]}" > >(sed -u "s/^/[$svc] /") 2> >(sed -u "s/^/[$svc] /" >&2) &
    pids+=($!)
    echo "$svc $!" >> "$pidfile"
done

# The demo's web application: the relying party behind the demo clients' redirect URIs.
"$bin/demo" app --listen "127.0.0.1:$app_port" --public-url "$app_url" --issuer "$issuer" --rs "$rs_url" --idp "$idp_url" \
    > >(sed -u "s/^/[demo-app] /") 2> >(sed -u "s/^/[demo-app] /" >&2) &
pids+=($!)
echo "app $!" >> "$pidfile"

for admin in "$authz_admin_port" "$idp_admin_port" "$rs_admin_port" "$sso_authz_admin_port" "$sso_idp_admin_port"; do
    for _ in $(seq 1 100); do
        if curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null
done
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$app_port/healthz" 2>/dev/null; then break; fi
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$app_port/healthz"

# The walk's command line: its options only where a port moved from its default.
walk="cargo run -q -p demo -- walk"
if [ "$issuer" != http://localhost:8080 ]; then walk+=" --issuer $issuer"; fi
if [ "$rs_url" != http://localhost:8082 ]; then walk+=" --rs $rs_url"; fi
if [ "$app_url" != http://localhost:3000 ]; then walk+=" --app $app_url"; fi

cat <<MSG

  All three services are ready.

  Open $app_url/ and sign in as demo / demo-password, or with "Sign in with Demo Corp SSO"
  as carol / carol-password (a second authz + idp pair, the first idp's upstream provider).

  authz  $issuer   gRPC localhost:$authz_grpc_port   admin http://localhost:$authz_admin_port
  idp    $idp_url   gRPC localhost:$idp_grpc_port   admin http://localhost:$idp_admin_port
  rs     $rs_url                          admin http://localhost:$rs_admin_port
  app    $app_url   (the demo web app: demo-client, or demo-spa)
  Demo Corp SSO: authz $sso_issuer   idp $sso_idp_url   (client demo-idp, user carol)

  Clients demo-client / demo-secret, demo-spa (public, PKCE), demo-rs / demo-rs-secret.
  gRPC links: mutual TLS with the demo CA $pki_dir/ca.pem (docs/guides/tls.md).
  Sign-up and password reset are on: their mail lands in $data/mail/*.eml (docs/guides/email.md).

  Next steps:
    1. $walk   # walks every flow, one line per step
    2. curl -s -u demo-client:demo-secret -d grant_type=client_credentials \\
         -d scope=items:read $issuer/token
    3. curl -s $issuer/.well-known/openid-configuration

  Ctrl-C stops everything.
MSG
wait
