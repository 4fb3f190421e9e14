#!/usr/bin/env python3
"""Signs a client assertion for `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9)
with the Python standard library and `openssl` (RS256: RSASSA-PKCS1-v1_5 with SHA-256):

    python3 docs/guides/client_assertion.py jwks KEY.pem        # the public JWKS to register
    python3 docs/guides/client_assertion.py sign KEY.pem CLIENT_ID AUDIENCE [LIFETIME]

`sign` prints a JWT with `iss` = `sub` = CLIENT_ID, `aud` = AUDIENCE (the issuer or the URL
of the endpoint called), a fresh random `jti`, `iat` = now and `exp` = now + LIFETIME
seconds (default 60; authz accepts at most `client_auth.assertion_max_lifetime`, 5 min).
The key's `kid` is its RFC 7638 thumbprint, so authz finds it in the registered JWKS.
"""

import base64
import hashlib
import json
import secrets
import subprocess
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key_file: str) -> dict:
    out = subprocess.run(
        ["openssl", "rsa", "-in", key_file, "-noout", "-modulus"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    n = bytes.fromhex(out.split("=", 1)[1])
    members = {"e": b64url((65537).to_bytes(3, "big")), "kty": "RSA", "n": b64url(n)}
    # RFC 7638 §3: SHA-256 of the required members, sorted, no whitespace.
    thumbprint = hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    ).digest()
    return {**members, "kid": b64url(thumbprint), "alg": "RS256", "use": "sig"}


def sign(key_file: str, client_id: str, audience: str, lifetime: int) -> str:
    jwk = public_jwk(key_file)
    now = int(time.time())
    header = {"alg": "RS256", "kid": jwk["kid"], "typ": "JWT"}
    claims = {
        "iss": client_id, "sub": client_id, "aud": audience,
        "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + lifetime,
    }
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key_file],
        input=signing_input.encode(), check=True, capture_output=True,
    ).stdout
    return f"{signing_input}.{b64url(signature)}"


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "jwks":
        print(json.dumps({"keys": [public_jwk(args[1])]}))
    elif len(args) in (4, 5) and args[0] == "sign":
        print(sign(args[1], args[2], args[3], int(args[4]) if len(args) == 5 else 60))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
