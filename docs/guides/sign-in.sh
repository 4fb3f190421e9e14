#!/usr/bin/env bash
# Plays the browser of the authorization code flow, for scripts and the runnable guides:
#
#   docs/guides/sign-in.sh AUTHORIZE_URL USERNAME PASSWORD
#
# It follows authz's redirects to idp's login page, signs in, allows the consent when idp
# asks for it, and prints the URL authz finally redirects to: the client's redirect URI with
# `code`, `state` and `iss` (or an `error`). It never follows that last redirect, so any
# registered redirect URI works. Needs curl; exits 1 when a page does not answer as expected
# (a wrong password shows the login form again).
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 AUTHORIZE_URL USERNAME PASSWORD" >&2
    exit 2
fi
url=$1 user=$2 password=$3
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

# The value of the hidden form field $1 in the page on stdin.
field() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n 1; }
# GET or POST (extra curl arguments) with the cookie jar; prints where the answer redirects.
next() { curl -sS -o /dev/null -w '%{redirect_url}' -b "$jar" -c "$jar" "$@"; }

for _ in 1 2 3 4 5 6 7 8; do
    case "$url" in
        */login\?login_challenge=*)
            page=$(curl -fsS -b "$jar" -c "$jar" "$url")
            url=$(next --data-urlencode "csrf=$(field csrf <<<"$page")" \
                --data-urlencode "login_challenge=$(field login_challenge <<<"$page")" \
                --data-urlencode "username=$user" --data-urlencode "password=$password" \
                -d action=login "${url%%\?*}")
            ;;
        */consent\?consent_challenge=*)
            page=$(curl -fsS -b "$jar" -c "$jar" "$url")
            url=$(next --data-urlencode "csrf=$(field csrf <<<"$page")" \
                --data-urlencode "consent_challenge=$(field consent_challenge <<<"$page")" \
                -d action=allow "${url%%\?*}")
            ;;
        */authorize\?* | */authorize/resume\?*)
            url=$(next "$url")
            ;;
        *)
            echo "$url"
            exit 0
            ;;
    esac
    if [ -z "$url" ]; then
        echo "sign-in: a page answered without redirecting (wrong password?)" >&2
        exit 1
    fi
done
echo "sign-in: too many redirects" >&2
exit 1
