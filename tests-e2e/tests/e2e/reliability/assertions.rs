//! clientauth (issue 17): a JWT client assertion (RFC 7523 §3: `jti` single-use) replayed
//! against a second authz replica on the same PostgreSQL database is refused there; the
//! replay store is the shared database, not a replica's memory.

use serde_json::{Value, json};
use storage::testing::TestDatabase;

use super::wiring;
use crate::code_flow::{cli, migrate, pairs};
use crate::harness::Service;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

mod an_assertion_replayed_at_another_replica_is_refused {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(db) = TestDatabase::postgres(&authz::MIGRATIONS).await.unwrap() else {
            eprintln!(
                "skipped: {} is not set",
                storage::testing::TEST_POSTGRES_URL
            );
            return;
        };
        let url = db.config().url.expose();
        // Both replicas present one issuer, as behind a load balancer.
        let issuer = "http://127.0.0.1:9";
        let mut env = wiring::authz_base(url);
        env.extend(pairs(&[("AUTHZ__ISSUER", issuer)]));
        migrate("authz", &env);
        let dir = tempfile::tempdir().unwrap();
        let key = issuer::PrivateKey::generate(issuer::Algorithm::ES256, 2048).unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(
            &jwks,
            json!({"keys": [Value::Object(key.public_jwk().clone())]}).to_string(),
        )
        .unwrap();
        cli(
            "authz",
            &env,
            &[
                "clients",
                "create",
                "--id",
                "signer",
                "--name",
                "Signer",
                "--auth-method",
                "private_key_jwt",
                "--jwks-file",
                jwks.to_str().unwrap(),
                "--json",
            ],
        );
        let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::harness::build_once();
        let (s0, s1) = tokio::join!(
            Service::start("authz", d0.path(), &env),
            Service::start("authz", d1.path(), &env),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let assertion = issuer::jws::Signer::new(&key)
            .unwrap()
            .sign_jwt(
                "JWT",
                &json!({
                    "iss": "signer", "sub": "signer", "aud": issuer,
                    "jti": "replayed-once", "iat": now, "exp": now + 60,
                }),
            )
            .unwrap();
        let http = reqwest::Client::new();
        let token = |base: String| {
            let http = http.clone();
            let assertion = assertion.clone();
            async move {
                let res = http
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", JWT_BEARER),
                        ("client_assertion", assertion.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap())
            }
        };
        let (status, body) = token(s0.url("http")).await;
        assert_eq!(status, 200, "first use at replica #1: {body}");
        assert!(body["access_token"].is_string(), "{body}");
        let (status, body) = token(s1.url("http")).await;
        assert_eq!(status, 401, "replayed at replica #2: {body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(
            body["error_description"],
            "client assertion rejected: the assertion (jti) was already used"
        );
        // And at the first replica as well.
        let (status, _) = token(s0.url("http")).await;
        assert_eq!(status, 401);
        drop((s0, s1));
    }
}
