//! Fuzz target for JWS compact parsing and verification (RFC 7515 §7.1, RFC 8725 §3.1),
//! property-based: whatever string arrives, [`verify`] returns without panicking, accepts
//! no token but the issued one, and never hands back claims that were not signed.
//!
//! `FUZZ_CASES` sets the cases per property (default 256; `make test` stays fast).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use issuer::jws::{Expect, Signer, Verifiers, verify};
use issuer::{Algorithm, PrivateKey};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// One ES256 and one RS256 key, a token signed by the first, and verifiers for both.
struct Fixture {
    token: String,
    claims: serde_json::Map<String, Value>,
    kids: Vec<String>,
    keys: Verifiers,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let es = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
        let rs = PrivateKey::generate(Algorithm::RS256, 2048).unwrap();
        let mut keys = Verifiers::new();
        keys.insert(Algorithm::ES256, es.public_jwk()).unwrap();
        keys.insert(Algorithm::RS256, rs.public_jwk()).unwrap();
        let claims =
            serde_json::json!({"sub": "alice", "scope": "api:read", "exp": 4_000_000_000_i64});
        let token = Signer::new(&es)
            .unwrap()
            .sign_jwt("at+jwt", &claims)
            .unwrap();
        Fixture {
            token,
            claims: claims.as_object().unwrap().clone(),
            kids: vec![es.kid().to_owned(), rs.kid().to_owned()],
            keys,
        }
    })
}

const EXPECT: Expect<'static> = Expect {
    algorithms: &[Algorithm::ES256, Algorithm::RS256],
    typ: Some("at+jwt"),
};

/// The property every input must satisfy: refused, unless it verifies to exactly the
/// signed claims (then it is the issued token, byte for byte).
fn check(input: &str) -> Result<(), TestCaseError> {
    let f = fixture();
    if let Ok(verified) = verify(input, &f.keys, &EXPECT) {
        prop_assert_eq!(&verified.claims, &f.claims);
        prop_assert_eq!(input, f.token.as_str());
    }
    Ok(())
}

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[test]
fn the_issued_token_verifies() {
    let f = fixture();
    let verified = verify(&f.token, &f.keys, &EXPECT).unwrap();
    assert_eq!(verified.claims, f.claims);
}

/// Arbitrary text, and text shaped like a compact JWS (three base64url-ish parts).
#[test]
fn arbitrary_strings_are_refused() {
    let shaped = "[A-Za-z0-9_=+/-]{0,60}\\.[A-Za-z0-9_=+/-]{0,60}\\.[A-Za-z0-9_=+/-]{0,90}";
    runner()
        .run(&prop_oneof![".{0,300}", shaped], |s| check(&s))
        .unwrap();
}

/// The issued token with one character replaced, inserted or removed, truncated, or with
/// its parts rearranged: never accepted (a change to the signature's last character that
/// only touches unused bits is refused too, as the base64url decoding is strict).
#[test]
fn mutations_of_a_valid_token_are_refused() {
    let f = fixture();
    let len = f.token.len();
    let alphabet: Vec<char> = format!("{B64URL}.=+/ %").chars().collect();
    let mutation = prop_oneof![
        (0..len, prop::sample::select(alphabet.clone())).prop_map(move |(i, c)| {
            let mut t: Vec<char> = fixture().token.chars().collect();
            t[i] = c;
            t.into_iter().collect::<String>()
        }),
        (0..=len, prop::sample::select(alphabet)).prop_map(|(i, c)| {
            let mut t = fixture().token.clone();
            t.insert(i, c);
            t
        }),
        (0..len).prop_map(|i| {
            let mut t = fixture().token.clone();
            t.remove(i);
            t
        }),
        (0..len).prop_map(|i| fixture().token[..i].to_owned()),
        prop::sample::select(vec![
            [0usize, 2, 1],
            [1, 0, 2],
            [2, 1, 0],
            [0, 0, 2],
            [0, 1, 1]
        ])
        .prop_map(|order| {
            let parts: Vec<&str> = fixture().token.split('.').collect();
            order
                .iter()
                .map(|&i| parts[i])
                .collect::<Vec<_>>()
                .join(".")
        }),
    ];
    runner().run(&mutation, |t| check(&t)).unwrap();
}

/// Forged headers and payloads with a random signature: `alg` none, HMAC, another key's
/// algorithm, a kid that exists or not, `crit`, odd `typ`, JSON that is not an object.
#[test]
fn forged_tokens_are_refused() {
    let f = fixture();
    let alg = prop::sample::select(vec![
        "none", "HS256", "ES256", "RS256", "PS256", "EdDSA", "", "es256",
    ]);
    let kid = prop_oneof![prop::sample::select(f.kids.clone()), ".{0,10}",];
    let header = (
        alg,
        kid,
        prop::option::of("[a-z+/]{0,10}"),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(alg, kid, typ, crit, not_object)| {
            if not_object {
                return b"[\"ES256\"]".to_vec();
            }
            let mut h = serde_json::json!({"alg": alg, "kid": kid});
            if let Some(typ) = typ {
                h["typ"] = typ.into();
            }
            if crit {
                h["crit"] = serde_json::json!(["exp"]);
            }
            serde_json::to_vec(&h).unwrap()
        });
    let payload = prop_oneof![
        Just(serde_json::to_vec(&f.claims).unwrap()),
        prop::collection::vec(any::<u8>(), 0..60),
    ];
    let signature = prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..300),
        Just(
            URL_SAFE_NO_PAD
                .decode(f.token.rsplit('.').next().unwrap())
                .unwrap()
        ),
    ];
    runner()
        .run(&(header, payload, signature), |(h, p, s)| {
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(p),
                URL_SAFE_NO_PAD.encode(s)
            );
            check(&token)
        })
        .unwrap();
}
