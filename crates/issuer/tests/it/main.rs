//! issuer integration tests: the published JWKS against an independent verifier, and one
//! key walked through its whole lifecycle with a controllable clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fuzz;

use issuer::Clock;
use issuer::jws::{Expect, Signer, verify};
use issuer::lifecycle::{Policy, apply, plan};
use issuer::{Algorithm, Kek, KeyRecord, KeyRing, KeyState, ManualClock, PrivateKey};
use proptest::prelude::*;

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Verifies with josekit directly on the published JWKS, not with our verifier.
fn verify_independently(token: &str, jwks: &[u8]) -> serde_json::Value {
    let set = josekit::jwk::JwkSet::from_bytes(jwks).unwrap();
    let verifiers: Vec<(String, Box<dyn josekit::jws::JwsVerifier>)> = set
        .keys()
        .into_iter()
        .map(|jwk| {
            let v: Box<dyn josekit::jws::JwsVerifier> = match jwk.algorithm() {
                Some("RS256") => Box::new(josekit::jws::RS256.verifier_from_jwk(jwk).unwrap()),
                Some("PS256") => Box::new(josekit::jws::PS256.verifier_from_jwk(jwk).unwrap()),
                Some("ES256") => Box::new(josekit::jws::ES256.verifier_from_jwk(jwk).unwrap()),
                Some("EdDSA") => Box::new(josekit::jws::EdDSA.verifier_from_jwk(jwk).unwrap()),
                other => panic!("unexpected alg {other:?}"),
            };
            (jwk.key_id().unwrap().to_owned(), v)
        })
        .collect();
    let (payload, _header) = josekit::jwt::decode_with_verifier_selector(token, |header| {
        Ok(verifiers
            .iter()
            .find(|(kid, _)| Some(kid.as_str()) == header.key_id())
            .map(|(_, v)| v.as_ref()))
    })
    .unwrap();
    serde_json::Value::Object(payload.claims_set().clone())
}

fn record(key: &PrivateKey, kek: &Kek, generation: i64, activates_at: i64) -> KeyRecord {
    KeyRecord {
        kid: key.kid().to_owned(),
        alg: key.alg(),
        generation,
        state: KeyState::Next,
        public_jwk: serde_json::to_string(key.public_jwk()).unwrap(),
        private_key: kek.seal(key.kid(), key.alg(), key.pkcs8_der()).unwrap(),
        created_at: 0,
        activates_at,
        retired_at: None,
        remove_after: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn jwks_is_public_only_and_verifies_every_algorithm(
        alg_index in 0usize..4,
        bits in prop::sample::select(vec![2048u32, 3072]),
        sub in "[a-zA-Z0-9_-]{1,40}",
        scope in "[a-z: ]{0,30}",
    ) {
        let alg = Algorithm::ALL[alg_index];
        let kek = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
        let key = PrivateKey::generate(alg, bits).unwrap();
        let ring = KeyRing::build(&[record(&key, &kek, 1, 0)], &kek, 10).unwrap();
        let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks()).unwrap();
        for jwk in jwks["keys"].as_array().unwrap() {
            for member in PRIVATE_MEMBERS {
                prop_assert!(jwk.get(member).is_none(), "{member} published for {alg}");
            }
            prop_assert_eq!(jwk["use"].as_str(), Some("sig"));
            prop_assert_eq!(jwk["alg"].as_str(), Some(alg.as_str()));
        }
        let claims = serde_json::json!({ "sub": sub, "scope": scope });
        let token = ring.signer(alg, 10).unwrap().sign_jwt("at+jwt", &claims).unwrap();
        let verified = verify_independently(&token, &ring.jwks());
        prop_assert_eq!(&verified["sub"], &claims["sub"]);
        prop_assert_eq!(&verified["scope"], &claims["scope"]);
    }
}

#[test]
fn one_key_walks_through_every_state() {
    const HOUR: i64 = 3600;
    let clock = ManualClock::new(1_000_000);
    let kek = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
    let policy = Policy {
        algorithms: vec![Algorithm::ES256],
        rotation_period: Some(24 * HOUR),
        publish_ahead: 2 * HOUR,
        retired_retention: 6 * HOUR,
    };
    let expect = Expect {
        algorithms: &[Algorithm::ES256],
        typ: Some("at+jwt"),
    };
    let mut records: Vec<KeyRecord> = Vec::new();
    let step = |records: &mut Vec<KeyRecord>, now: i64| {
        for _ in 0..3 {
            let changes = plan(records, &policy, now);
            apply(records, &changes, |alg, generation, activates_at| {
                record(
                    &PrivateKey::generate(alg, 2048).unwrap(),
                    &kek,
                    generation,
                    activates_at,
                )
            });
        }
        KeyRing::build(records, &kek, now).unwrap()
    };
    let published = |ring: &KeyRing, kid: &str| {
        let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks()).unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    };

    // Start: the first key signs at once.
    let ring = step(&mut records, clock.now());
    let first: std::sync::Arc<Signer> = ring.signer(Algorithm::ES256, clock.now()).unwrap();
    let first_kid = first.kid().to_owned();
    let old_token = first
        .sign_jwt("at+jwt", &serde_json::json!({"sub": "u"}))
        .unwrap();

    // 22 h later the successor is created: in the JWKS before it signs anything.
    clock.advance(22 * HOUR);
    let ring = step(&mut records, clock.now());
    let next = records
        .iter()
        .find(|r| r.generation == 2)
        .expect("next key created");
    assert_eq!(next.state, KeyState::Next);
    let next_kid = next.kid.clone();
    assert!(published(&ring, &next_kid), "next key published ahead");
    assert_eq!(
        ring.signer(Algorithm::ES256, clock.now()).unwrap().kid(),
        first_kid
    );

    // At 24 h it becomes current; the old key is retired but still published, and a token
    // it signed still verifies, with our verifier and independently.
    clock.advance(2 * HOUR);
    let ring = step(&mut records, clock.now());
    assert_eq!(
        ring.signer(Algorithm::ES256, clock.now()).unwrap().kid(),
        next_kid
    );
    let retired = records.iter().find(|r| r.kid == first_kid).unwrap();
    assert_eq!(retired.state, KeyState::Retired);
    assert!(published(&ring, &first_kid));
    assert!(verify(&old_token, ring.verifiers(), &expect).is_ok());
    assert_eq!(verify_independently(&old_token, &ring.jwks())["sub"], "u");

    // Just before the retention ends it is still there; after, it is gone.
    clock.advance(6 * HOUR - 1);
    let ring = step(&mut records, clock.now());
    assert!(published(&ring, &first_kid));
    clock.advance(1);
    let ring = step(&mut records, clock.now());
    assert!(!published(&ring, &first_kid), "removed key gone from JWKS");
    assert!(
        !records.iter().any(|r| r.kid == first_kid),
        "removed key deleted"
    );
    assert!(verify(&old_token, ring.verifiers(), &expect).is_err());
}

#[test]
fn a_wrong_kek_or_tampered_row_yields_no_keys() {
    let kek = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
    let other = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
    let key = PrivateKey::generate(Algorithm::EdDSA, 2048).unwrap();
    let good = record(&key, &kek, 1, 0);
    let err = KeyRing::build(std::slice::from_ref(&good), &other, 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong key-encryption key or tampered data"),
        "{err}"
    );

    // A sealed key swapped into another row fails too.
    let key2 = PrivateKey::generate(Algorithm::EdDSA, 2048).unwrap();
    let mut swapped = record(&key2, &kek, 2, 0);
    swapped.private_key = good.private_key.clone();
    assert!(KeyRing::build(&[good, swapped], &kek, 1).is_err());
}
