#!/usr/bin/env bash
# Creates the files behind compose.yaml's `secrets:` (default: deployments/compose/secrets/,
# git-ignored). Only missing files are created, so running it again keeps existing secrets
# (and the data encrypted or hashed with them). Usage: gen-secrets.sh [DIR]
#
# rs_client_secret is demo-rs-secret, the fixed, documented secret of the client demo-rs
# that authz seeds with `serve --demo` (as it does demo-client / demo-secret and idp the
# user demo / demo-password, which need no file here); everything else is random.
# Compose bind-mounts each file into containers that run as another user, so the files are
# readable (0644) and the directory is private to you (0700).
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
