#!/usr/bin/env bash
# Creates the files behind compose.yaml's `secrets:` (default: deployments/compose/secrets/,
# git-ignored). Only missing files are created, so running it again keeps existing secrets
# (and the data encrypted or hashed with them). Usage: gen-secrets.sh [DIR]
#
# rs_client_secret is demo-rs-secret, the fixed, documented secret of the client demo-rs
# that authz seeds with `serve --demo` (as it does demo-client / demo-secret and idp the
# user demo / demo-password, which need no file here); everything else is random.
# Compose bind-mounts each file into containers that run as another user, so the files are
# readable (0644) and the directory is private to you (0700); that holds for the TLS keys
# too (tools/pki writes them 0600 under DIR/pki; the mounted copies are 0644).
#
# TLS (docs/guides/tls.md): a demo CA (DIR/pki, made once with the workspace's dev PKI tool:
# $PKI if set, else `cargo run -p pki`) and one certificate per service (DNS names the
# service's name and localhost, IP 127.0.0.1, server and client usage), copied to the
# secrets tls_ca, <service>_tls_cert (leaf + intermediates) and <service>_tls_key for the
# mutual TLS on the gRPC links. Trust DIR/pki/ca.pem to call the services' gRPC ports.
# rs_client_secret and corp_carol_password are the demo's documented values (demo-rs-secret,
# carol-password).
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"

put() { # NAME VALUE: writes VALUE (no newline) to DIR/NAME unless it exists
    if [ ! -s "$dir/$1" ]; then
        printf '%s' "$2" > "$dir/$1"
        chmod 644 "$dir/$1"
        echo "created $dir/$1"
    fi
}

put postgres_password "$(openssl rand -hex 24)"
pg_password=$(cat "$dir/postgres_password")
put authz_database_url "postgres://postgres:${pg_password}@postgres:5432/authz"
put idp_database_url "postgres://postgres:${pg_password}@postgres:5432/idp"
put authz_kek "$(openssl rand -base64 32)"            # keys.encryption_key: 32 bytes, base64
put authz_idp_secret "$(openssl rand -base64 32)"     # authz -> idp.v1.Sessions
put idp_authz_client_secret "$(openssl rand -base64 32)"  # idp -> authz.v1.LoginFlow (client idp)
put idp_csrf_key "$(openssl rand -base64 32)"         # csrf.key: at least 32 bytes, base64
put rs_client_secret demo-rs-secret
# Demo Corp SSO (the demo profile's second authz + idp pair): its own databases, KEK and
# secrets; corp_demo_idp_secret is the secret of the client demo-idp that corp-authz-seed
# registers and idp uses as upstream `corp`; carol's password is the demo's documented one.
put corp_authz_database_url "postgres://postgres:${pg_password}@postgres:5432/corp_authz"
put corp_idp_database_url "postgres://postgres:${pg_password}@postgres:5432/corp_idp"
put corp_authz_kek "$(openssl rand -base64 32)"
put corp_authz_idp_secret "$(openssl rand -base64 32)"
put corp_idp_authz_client_secret "$(openssl rand -base64 32)"
put corp_idp_csrf_key "$(openssl rand -base64 32)"
put corp_demo_idp_secret "$(openssl rand -base64 32)"
put corp_carol_password carol-password

repo=$(cd "$(dirname "$0")/../.." && pwd)
pki() {
    if [ -n "${PKI:-}" ]; then "$PKI" "$@"; else cargo run --quiet --manifest-path "$repo/Cargo.toml" -p pki -- "$@"; fi
}
copy() { # FILE NAME: DIR/NAME becomes a readable copy of FILE (kept when equal)
    if ! cmp -s "$1" "$dir/$2"; then
        cp "$1" "$dir/$2"
        chmod 644 "$dir/$2"
        echo "created $dir/$2"
    fi
}
if [ ! -s "$dir/pki/ca.pem" ]; then
    pki init --dir "$dir/pki" >/dev/null
    echo "created $dir/pki (the demo CA)"
fi
for svc in authz idp rs; do
    if [ ! -s "$dir/pki/$svc/fullchain.pem" ]; then
        pki issue --dir "$dir/pki" --name "$svc" --dns "$svc" --dns localhost --ip 127.0.0.1 >/dev/null
    fi
    copy "$dir/pki/$svc/fullchain.pem" "${svc}_tls_cert"
    copy "$dir/pki/$svc/key.pem" "${svc}_tls_key"
done
# Demo Corp SSO's certificates name the service (the other containers) and 127.0.0.1 (the
# browser's host for that pair), not localhost (the first pair's browser host).
for svc in corp-authz corp-idp; do
    if [ ! -s "$dir/pki/$svc/fullchain.pem" ]; then
        pki issue --dir "$dir/pki" --name "$svc" --dns "$svc" --ip 127.0.0.1 >/dev/null
    fi
    copy "$dir/pki/$svc/fullchain.pem" "${svc//-/_}_tls_cert"
    copy "$dir/pki/$svc/key.pem" "${svc//-/_}_tls_key"
done
copy "$dir/pki/ca.pem" tls_ca
