#!/usr/bin/env python3
"""Validates an ID token as a relying party must (OpenID Connect Core 1.0 §3.1.3.7), with
the Python standard library for everything but the signature, which `openssl` checks:

    python3 docs/guides/verify_id_token.py --issuer URL --client-id ID --nonce NONCE \
        [--access-token AT] ID_TOKEN

1. the signature: the key whose `kid` the header names, from the JWKS that the issuer's
   discovery document (`<issuer>/.well-known/openid-configuration`) points at, with the
   algorithm the key is for (RS256, PS256, ES256 or EdDSA; never `none`);
2. `iss` equals the issuer exactly; `aud` contains the client id (and `azp` names it when
   there are several audiences);
3. `exp` is in the future and `iat` is not (60 s of clock skew allowed);
4. `nonce` equals the one the client sent in the authorization request;
5. `at_hash`, when an access token came with it (§3.2.2.9): the base64url of the left half
   of the access token's SHA-256 (SHA-512 for EdDSA).

Prints one line per check and exits 0, or prints `invalid: <reason>` and exits 1.
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

SKEW = 60


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def fail(reason):
    print(f"invalid: {reason}")
    sys.exit(1)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


# DER, just enough to hand openssl a public key (SubjectPublicKeyInfo) and an ECDSA signature.
def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def integer(raw):
    raw = raw.lstrip(b"\0") or b"\0"
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return tlv(0x02, raw)


RSA = bytes.fromhex("06092a864886f70d0101010500")
EC_P256 = bytes.fromhex("06072a8648ce3d020106082a8648ce3d030107")
ED25519 = bytes.fromhex("06032b6570")


def public_key_pem(jwk):
    kty = jwk.get("kty")
    if kty == "RSA":
        key = tlv(0x30, integer(b64url(jwk["n"])) + integer(b64url(jwk["e"])))
        spki = tlv(0x30, tlv(0x30, RSA) + tlv(0x03, b"\0" + key))
    elif kty == "EC" and jwk.get("crv") == "P-256":
        point = b"\x04" + b64url(jwk["x"]) + b64url(jwk["y"])
        spki = tlv(0x30, tlv(0x30, EC_P256) + tlv(0x03, b"\0" + point))
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        spki = tlv(0x30, tlv(0x30, ED25519) + tlv(0x03, b"\0" + b64url(jwk["x"])))
    else:
        fail(f"unsupported key type {kty}")
    body = base64.encodebytes(spki).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def verify_signature(alg, jwk, signed, signature):
    expected = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
    if alg not in expected:
        fail(f"algorithm {alg!r} is not accepted")
    if jwk.get("kty") != expected[alg] or jwk.get("alg", alg) != alg:
        fail(f"key {jwk.get('kid')} is not an {alg} key")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name) for name in ("key.pem", "data", "sig")}
        if alg == "ES256":
            half = len(signature) // 2
            signature = tlv(0x30, integer(signature[:half]) + integer(signature[half:]))
        for name, content in (("key.pem", public_key_pem(jwk).encode()), ("data", signed), ("sig", signature)):
            with open(paths[name], "wb") as f:
                f.write(content)
        if alg == "EdDSA":
            cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"],
                   "-rawin", "-in", paths["data"], "-sigfile", paths["sig"]]
        else:
            cmd = ["openssl", "dgst", "-sha256", "-verify", paths["key.pem"], "-signature", paths["sig"]]
            if alg == "PS256":
                cmd[2:2] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
            cmd.append(paths["data"])
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            fail("bad signature")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--issuer", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--nonce", required=True)
    p.add_argument("--access-token")
    p.add_argument("id_token")
    args = p.parse_args()

    parts = args.id_token.split(".")
    if len(parts) != 3:
        fail("not a signed JWT (three base64url parts)")
    header = json.loads(b64url(parts[0]))
    alg, kid = header.get("alg"), header.get("kid")

    discovery = get_json(args.issuer.rstrip("/") + "/.well-known/openid-configuration")
    keys = get_json(discovery["jwks_uri"]).get("keys", [])
    jwk = next((k for k in keys if k.get("kid") == kid), None)
    if jwk is None:
        fail(f"no key {kid} in {discovery['jwks_uri']}")
    verify_signature(alg, jwk, f"{parts[0]}.{parts[1]}".encode(), b64url(parts[2]))
    print(f"signature: {alg}, key {kid} from {discovery['jwks_uri']}")
    claims = json.loads(b64url(parts[1]))  # only read once the signature holds

    if claims.get("iss") != args.issuer:
        fail(f"iss {claims.get('iss')!r} is not {args.issuer!r}")
    print(f"iss: {claims['iss']}")
    aud = claims.get("aud")
    aud = [aud] if isinstance(aud, str) else aud or []
    if args.client_id not in aud or (len(aud) > 1 and claims.get("azp") != args.client_id):
        fail(f"aud {aud} is not for {args.client_id!r}")
    print(f"aud: {args.client_id}")
    now = time.time()
    if not isinstance(claims.get("exp"), int) or claims["exp"] + SKEW <= now:
        fail("expired")
    if not isinstance(claims.get("iat"), int) or claims["iat"] - SKEW > now:
        fail("issued in the future")
    print("exp, iat: valid now")
    if claims.get("nonce") != args.nonce:
        fail(f"nonce {claims.get('nonce')!r} is not the one sent")
    print(f"nonce: {args.nonce}")
    if args.access_token is not None:
        digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(args.access_token.encode()).digest()
        at_hash = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
        if claims.get("at_hash") != at_hash:
            fail("at_hash does not match the access token")
        print("at_hash: matches the access token")
    print(f"valid: the ID token of subject {claims.get('sub')}")


if __name__ == "__main__":
    main()
