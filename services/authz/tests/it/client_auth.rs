//! clientauth: client authentication through the in-process server, as a client sees it:
//! `private_key_jwt` with an inline `jwks` and with a fetched `jwks_uri` (RFC 7523 §2.2,
//! OpenID Connect Core §9), `client_secret_jwt` (HS256 under the sealed secret), every
//! bad assertion of issue 17, single-use `jti` across two replicas on one database,
//! `client_secret_post` for a secret client, and `invalid_client` naming the registered
//! method.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authz::clients::{Client, Clients, NewClient};
use authz::{Addresses, Application, AuthzConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::jws::Signer;
use issuer::{Algorithm, Clock, ManualClock, PrivateKey};
use reqwest::StatusCode;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use serde_json::{Value, json};
use storage::Database;
use storage::testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::TEST_KEK;

const ISSUER: &str = "http://127.0.0.1:9";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Replica {
    addrs: Addresses,
    shutdown: Shutdown,
    _running: tokio::task::JoinHandle<Result<(), authz::AuthzError>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

struct Env {
    replica: Replica,
    clients: Clients,
    clock: ManualClock,
    http: reqwest::Client,
}

async fn replica(db: &TestDatabase, clock: &ManualClock) -> Replica {
    replica_with(db, clock, |_| {}).await
}

async fn replica_with(
    db: &TestDatabase,
    clock: &ManualClock,
    tweak: impl FnOnce(&mut AuthzConfig),
) -> Replica {
    let mut config = AuthzConfig {
        issuer: ISSUER.to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    config.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    config.keys.algorithms = vec![Algorithm::ES256];
    config.keys.default_alg = Algorithm::ES256;
    config.clients.cache_ttl = Duration::ZERO;
    config.client_auth.jwks_refetch_interval = Duration::from_secs(60);
    tweak(&mut config);
    let shutdown = Shutdown::new();
    let app = Application::build_with_clock(config, shutdown.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    Replica {
        addrs: app.addresses(),
        shutdown,
        _running: tokio::spawn(app.run()),
    }
}

async fn start(db: &TestDatabase) -> Env {
    let clock = ManualClock::new(1_800_000_000);
    let replica = replica(db, &clock).await;
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(clock.clone()), Duration::ZERO).with_client_auth(
        &Default::default(),
        Some(issuer::Kek::from_base64(TEST_KEK).unwrap()),
    );
    Env {
        replica,
        clients,
        clock,
        http: reqwest::Client::new(),
    }
}

fn client(id: &str, method: TokenEndpointAuthMethod) -> Client {
    let mut c = Client::new(ClientId::parse(id).unwrap(), id.to_owned());
    c.auth_method = method;
    c.grant_types = vec![GrantType::ClientCredentials];
    c.scopes = ScopeSet::parse("api:read").unwrap();
    c.can_introspect = true;
    c
}

fn jwks(keys: &[&PrivateKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| Value::Object(k.public_jwk().clone())).collect::<Vec<_>>() })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// An HS256 JWS of `header`/`claims` under `key`.
fn hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let sig = ring::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.replica.addrs.http)
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// RFC 7523 §3 claims of a good assertion by `id` for `aud`.
    fn claims(&self, id: &str, aud: &str, jti: &str) -> Value {
        json!({
            "iss": id, "sub": id, "aud": aud, "jti": jti,
            "iat": self.now(), "exp": self.now() + 60,
        })
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        post(&self.http, &self.url(path), form).await
    }

    async fn with_assertion(&self, path: &str, assertion: &str) -> (StatusCode, Value) {
        let mut form = vec![
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        match path {
            "/token" => form.push(("grant_type", "client_credentials")),
            _ => form.push(("token", "not-a-token")),
        }
        self.post(path, &form).await
    }
}

async fn post(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = http.post(url).form(form).send().await.unwrap();
    let status = res.status();
    if status == StatusCode::UNAUTHORIZED {
        assert!(res.headers().contains_key("www-authenticate"));
    }
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_invalid_client(got: (StatusCode, Value), description_has: &str) {
    let (status, body) = got;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    let d = body["error_description"].as_str().unwrap_or_default();
    assert!(
        d.contains(description_has),
        "{d:?} lacks {description_has:?}"
    );
}

/// A local HTTP server publishing a JWKS document, counting its fetches.
struct JwksServer {
    url: String,
    doc: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

async fn jwks_server(doc: Value) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let doc = Arc::new(Mutex::new(doc));
    let hits = Arc::new(AtomicUsize::new(0));
    let (d, h) = (Arc::clone(&doc), Arc::clone(&hits));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (d, h) = (Arc::clone(&d), Arc::clone(&h));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let body = d.lock().unwrap().to_string();
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/jwk-set+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(res.as_bytes()).await;
            });
        }
    });
    JwksServer { url, doc, hits }
}

async fn private_key_jwt_inline_jwks_and_every_bad_assertion(db: TestDatabase) {
    let env = start(&db).await;
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let rsa = PrivateKey::generate(Algorithm::RS256, 2048).unwrap();
    let mut c = client("pkj", TokenEndpointAuthMethod::PrivateKeyJwt);
    c.jwks = Some(jwks(&[&key, &rsa]));
    let (_, secret) = env
        .clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();
    assert!(secret.is_none(), "a private_key_jwt client gets no secret");
    let signer = Signer::new(&key).unwrap();
    let token_url = format!("{ISSUER}/token");
    let sign = |claims: &Value| signer.sign_jwt("JWT", claims).unwrap();

    // A good assertion, aud = token endpoint: tokens. The same one again: replay.
    let good = sign(&env.claims("pkj", &token_url, "j-1"));
    let (status, body) = env.with_assertion("/token", &good).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    assert_invalid_client(env.with_assertion("/token", &good).await, "already used");
    // aud = the issuer, as an array; with client_id in the form as well.
    let a = sign(&json!({
        "iss": "pkj", "sub": "pkj", "aud": ["https://elsewhere.test", ISSUER], "jti": "j-2",
        "exp": env.now() + 60,
    }));
    let (status, body) = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "pkj"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &a),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Expired, beyond the 30s skew.
    let mut c = env.claims("pkj", &token_url, "j-exp");
    c["exp"] = json!(env.now() - 120);
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "expired");
    // Without exp.
    let mut c = env.claims("pkj", &token_url, "j-noexp");
    c.as_object_mut().unwrap().remove("exp");
    assert_invalid_client(
        env.with_assertion("/token", &sign(&c)).await,
        "exp is required",
    );
    // exp too far ahead (default bound 5m).
    let mut c = env.claims("pkj", &token_url, "j-far");
    c["exp"] = json!(env.now() + 3600);
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "too far");
    // Future-dated: nbf and iat ahead of the clock.
    let mut c = env.claims("pkj", &token_url, "j-nbf");
    c["nbf"] = json!(env.now() + 600);
    assert_invalid_client(
        env.with_assertion("/token", &sign(&c)).await,
        "not valid yet",
    );
    let mut c = env.claims("pkj", &token_url, "j-iat");
    c["iat"] = json!(env.now() + 600);
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "iat");
    // Wrong aud, wrong iss, wrong sub, no jti.
    let c = env.claims("pkj", "https://other.example.test/token", "j-aud");
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "aud");
    let mut c = env.claims("pkj", &token_url, "j-iss");
    c["iss"] = json!("someone-else");
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "iss");
    let mut c = env.claims("pkj", &token_url, "j-nojti");
    c.as_object_mut().unwrap().remove("jti");
    assert_invalid_client(env.with_assertion("/token", &sign(&c)).await, "jti");
    // client_id in the form that is not the assertion's sub.
    let a = sign(&env.claims("pkj", &token_url, "j-cid"));
    let got = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "other"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &a),
            ],
        )
        .await;
    assert_invalid_client(got, "sub must be the client_id");

    // Wrongly signed: another key, presenting the registered key's kid.
    let intruder = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let forged = Signer::new(&intruder)
        .unwrap()
        .sign_jwt("JWT", &env.claims("pkj", &token_url, "j-forged"))
        .unwrap();
    let mut parts: Vec<String> = forged.split('.').map(str::to_owned).collect();
    parts[0] = b64(&json!({"alg": "ES256", "kid": key.kid(), "typ": "JWT"}));
    let forged = parts.join(".");
    assert_invalid_client(
        env.with_assertion("/token", &forged).await,
        "invalid signature",
    );
    // alg none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": key.kid()})),
        b64(&env.claims("pkj", &token_url, "j-none"))
    );
    assert_invalid_client(env.with_assertion("/token", &none).await, "algorithm");
    // HMAC with the public key as the secret (RFC 8725 §2.1).
    let public = serde_json::to_vec(rsa.public_jwk()).unwrap();
    let confused = hs256(
        &json!({"alg": "HS256", "kid": rsa.kid()}),
        &env.claims("pkj", &token_url, "j-hmac"),
        &public,
    );
    assert_invalid_client(env.with_assertion("/token", &confused).await, "algorithm");
    // An unknown kid (inline jwks: nothing to refetch).
    let stranger = Signer::new(&intruder)
        .unwrap()
        .sign_jwt("JWT", &env.claims("pkj", &token_url, "j-kid"))
        .unwrap();
    assert_invalid_client(env.with_assertion("/token", &stranger).await, "no key");
    // A malformed assertion and an unsupported assertion type.
    assert_invalid_client(env.with_assertion("/token", "a.b.c").await, "malformed");
    let got = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "pkj"),
                ("client_assertion_type", "urn:example:saml"),
                ("client_assertion", &good),
            ],
        )
        .await;
    assert_invalid_client(got, "unsupported client_assertion_type");
    // A secret is not how this client authenticates: the error names its method.
    let got = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "pkj"),
                ("client_secret", "guess"),
            ],
        )
        .await;
    assert_invalid_client(got, "registered for private_key_jwt");

    // Introspection and revocation accept assertions too, aud = their own URL.
    let a = sign(&env.claims("pkj", &format!("{ISSUER}/introspect"), "j-intro"));
    let (status, body) = env.with_assertion("/introspect", &a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let a = sign(&env.claims("pkj", &format!("{ISSUER}/revoke"), "j-rev"));
    let (status, body) = env.with_assertion("/revoke", &a).await;
    assert_eq!(status, 200, "{body}");
    // ...but not an assertion for the revocation endpoint at introspection.
    let a = sign(&env.claims("pkj", &format!("{ISSUER}/revoke"), "j-cross"));
    assert_invalid_client(env.with_assertion("/introspect", &a).await, "aud");

    // RSA keys without an alg serve RS256 and PS256; a pinned alg refuses the other.
    let rs = Signer::new(&rsa)
        .unwrap()
        .sign_jwt("JWT", &env.claims("pkj", &token_url, "j-rs"))
        .unwrap();
    let (status, body) = env.with_assertion("/token", &rs).await;
    assert_eq!(status, 200, "{body}");
    let (mut c, _) = env.clients.get("pkj").await.unwrap().unwrap();
    c.token_endpoint_auth_signing_alg = Some("ES256".into());
    env.clients.update(c).await.unwrap();
    let rs = Signer::new(&rsa)
        .unwrap()
        .sign_jwt("JWT", &env.claims("pkj", &token_url, "j-rs2"))
        .unwrap();
    assert_invalid_client(env.with_assertion("/token", &rs).await, "algorithm");

    // Expired jtis are purged; the live ones stay.
    env.clock.advance(3600);
    assert!(env.clients.purge_assertion_jtis().await.unwrap() >= 4);
    assert_eq!(env.clients.purge_assertion_jtis().await.unwrap(), 0);
}

async fn private_key_jwt_jwks_uri_is_cached_and_refetched_once(db: TestDatabase) {
    let env = start(&db).await;
    let a = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let b = PrivateKey::generate(Algorithm::EdDSA, 2048).unwrap();
    let c = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let server = jwks_server(jwks(&[&a])).await;
    let mut reg = client("remote", TokenEndpointAuthMethod::PrivateKeyJwt);
    reg.jwks_uri = Some(server.url.clone());
    env.clients
        .create(NewClient {
            client: reg,
            secret: None,
        })
        .await
        .unwrap();
    let token_url = format!("{ISSUER}/token");
    let sign = |k: &PrivateKey, jti: &str| {
        Signer::new(k)
            .unwrap()
            .sign_jwt("JWT", &env.claims("remote", &token_url, jti))
            .unwrap()
    };
    let (status, body) = env.with_assertion("/token", &sign(&a, "1")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env.with_assertion("/token", &sign(&a, "2")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "cached");
    // The client rotates to key b: its unknown kid makes authz fetch again, once the
    // refetch interval (60s here) has passed since the last fetch.
    *server.doc.lock().unwrap() = jwks(&[&b]);
    assert_invalid_client(
        env.with_assertion("/token", &sign(&b, "3a")).await,
        "no key",
    );
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        1,
        "not within the interval"
    );
    env.clock.advance(61);
    let (status, body) = env.with_assertion("/token", &sign(&b, "3")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "refetched on unknown kid"
    );
    // Another unknown kid within the refetch interval: refused without fetching.
    assert_invalid_client(env.with_assertion("/token", &sign(&c, "4")).await, "no key");
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "at most once per interval"
    );

    // An unreachable jwks_uri: invalid_client saying so.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_url = format!("http://{}/jwks", gone.local_addr().unwrap());
    drop(gone);
    let mut reg = client("unreachable", TokenEndpointAuthMethod::PrivateKeyJwt);
    reg.jwks_uri = Some(gone_url);
    env.clients
        .create(NewClient {
            client: reg,
            secret: None,
        })
        .await
        .unwrap();
    let a = Signer::new(&c)
        .unwrap()
        .sign_jwt("JWT", &env.claims("unreachable", &token_url, "5"))
        .unwrap();
    assert_invalid_client(
        env.with_assertion("/token", &a).await,
        "jwks_uri could not be fetched",
    );
}

async fn client_secret_jwt_uses_the_sealed_secret(db: TestDatabase) {
    let env = start(&db).await;
    let (_, secret) = env
        .clients
        .create(NewClient {
            client: client("hs", TokenEndpointAuthMethod::ClientSecretJwt),
            secret: None,
        })
        .await
        .unwrap();
    let secret = secret.unwrap();
    // Stored sealed, never in clear.
    let (_, stored) = env.clients.get("hs").await.unwrap().unwrap();
    let sealed = stored[0].sealed.clone().expect("sealed secret");
    assert!(!sealed.contains(&secret));
    let token_url = format!("{ISSUER}/token");
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let a = hs256(
        &header,
        &env.claims("hs", &token_url, "h1"),
        secret.as_bytes(),
    );
    let (status, body) = env.with_assertion("/token", &a).await;
    assert_eq!(status, 200, "{body}");
    assert_invalid_client(env.with_assertion("/token", &a).await, "already used");
    // Another secret; HS512; RS256; none.
    let a = hs256(
        &header,
        &env.claims("hs", &token_url, "h2"),
        b"not the secret",
    );
    assert_invalid_client(env.with_assertion("/token", &a).await, "invalid signature");
    let a = hs256(
        &json!({"alg": "HS512"}),
        &env.claims("hs", &token_url, "h3"),
        secret.as_bytes(),
    );
    assert_invalid_client(env.with_assertion("/token", &a).await, "algorithm");
    let rsa = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let a = Signer::new(&rsa)
        .unwrap()
        .sign_jwt("JWT", &env.claims("hs", &token_url, "h4"))
        .unwrap();
    assert_invalid_client(env.with_assertion("/token", &a).await, "algorithm");
    // The secret itself is not accepted: the client is registered for assertions.
    let got = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "hs"),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_invalid_client(got, "registered for client_secret_jwt");
    // After a rotation without grace, the new secret signs and the old one does not.
    let fresh = env
        .clients
        .rotate_secret("hs", Duration::ZERO)
        .await
        .unwrap();
    let a = hs256(
        &header,
        &env.claims("hs", &token_url, "h5"),
        fresh.as_bytes(),
    );
    let (status, body) = env.with_assertion("/token", &a).await;
    assert_eq!(status, 200, "{body}");
    env.clock.advance(1);
    let a = hs256(
        &header,
        &env.claims("hs", &token_url, "h6"),
        secret.as_bytes(),
    );
    assert_invalid_client(env.with_assertion("/token", &a).await, "invalid signature");
}

async fn secret_clients_use_basic_or_post_and_errors_name_the_method(db: TestDatabase) {
    let env = start(&db).await;
    for (id, method) in [
        ("basic", TokenEndpointAuthMethod::ClientSecretBasic),
        ("poster", TokenEndpointAuthMethod::ClientSecretPost),
    ] {
        env.clients
            .create(NewClient {
                client: client(id, method),
                secret: Some("the-secret".into()),
            })
            .await
            .unwrap();
    }
    // openid-client v6 defaults to client_secret_post: a Basic-registered client works.
    for id in ["basic", "poster"] {
        let (status, body) = env
            .post(
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", "the-secret"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{id}: {body}");
        let res = env
            .http
            .post(env.url("/token"))
            .header("authorization", domain::basic::encode(id, "the-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{id} with Basic");
    }
    // Discovery lists every method and assertion algorithm (RFC 8414 §2).
    let meta: Value = env
        .http
        .get(env.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none"
    ]);
    assert_eq!(meta["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(meta["revocation_endpoint_auth_methods_supported"], methods);
    assert_eq!(
        meta["introspection_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt"
        ])
    );
    let algs = json!(["RS256", "PS256", "ES256", "EdDSA", "HS256"]);
    for k in ["token", "introspection", "revocation"] {
        assert_eq!(
            meta[format!("{k}_endpoint_auth_signing_alg_values_supported")],
            algs
        );
    }
    // A wrong secret still says nothing more.
    let got = env
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "basic"),
                ("client_secret", "wrong"),
            ],
        )
        .await;
    assert_eq!(got.1["error_description"], "client authentication failed");
    // No secret at all, or an assertion: the description names the registered method.
    let got = env
        .post(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "basic")],
        )
        .await;
    assert_invalid_client(got, "registered for client_secret_basic, not none");
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let a = Signer::new(&key)
        .unwrap()
        .sign_jwt("JWT", &env.claims("poster", ISSUER, "x"))
        .unwrap();
    assert_invalid_client(
        env.with_assertion("/token", &a).await,
        "registered for client_secret_post",
    );
}

async fn an_assertion_is_single_use_across_replicas(db: TestDatabase) {
    let env = start(&db).await;
    let second = replica(&db, &env.clock).await;
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let mut c = client("pkj", TokenEndpointAuthMethod::PrivateKeyJwt);
    c.jwks = Some(jwks(&[&key]));
    env.clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();
    let a = Signer::new(&key)
        .unwrap()
        .sign_jwt("JWT", &env.claims("pkj", ISSUER, "once"))
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", a.as_str()),
    ];
    let (status, body) = env.post("/token", &form).await;
    assert_eq!(status, 200, "{body}");
    let got = post(
        &env.http,
        &format!("http://{}/token", second.addrs.http),
        &form,
    )
    .await;
    assert_invalid_client(got, "already used");
}

async fn client_key_settings_are_validated(db: TestDatabase) {
    let env = start(&db).await;
    let create = |c: Client| {
        env.clients.create(NewClient {
            client: c,
            secret: None,
        })
    };
    let c = client("nokeys", TokenEndpointAuthMethod::PrivateKeyJwt);
    let e = create(c).await.unwrap_err().to_string();
    assert!(e.contains("needs jwks or jwks_uri"), "{e}");
    let mut c = client("both", TokenEndpointAuthMethod::PrivateKeyJwt);
    c.jwks = Some(json!({"keys": []}));
    c.jwks_uri = Some("https://rp.example.test/jwks".into());
    let e = create(c).await.unwrap_err().to_string();
    assert!(e.contains("mutually exclusive"), "{e}");
    let mut c = client("plain", TokenEndpointAuthMethod::PrivateKeyJwt);
    c.jwks_uri = Some("http://rp.example.test/jwks".into());
    let e = create(c).await.unwrap_err().to_string();
    assert!(e.contains("https"), "{e}");
    let c = client("tls", TokenEndpointAuthMethod::TlsClientAuth);
    let e = create(c).await.unwrap_err().to_string();
    assert!(e.contains("tls_client_auth needs"), "{e}");
    let mut c = client("hsalg", TokenEndpointAuthMethod::ClientSecretJwt);
    c.token_endpoint_auth_signing_alg = Some("RS256".into());
    let e = create(c).await.unwrap_err().to_string();
    assert!(e.contains("not allowed"), "{e}");
    assert!(
        env.clients.list().await.unwrap().is_empty(),
        "nothing stored"
    );
}

/// A replica whose `client_auth.certificate_header` is `x-client-cert`, trusted from
/// `proxy` (RFC 8705 §2 behind a TLS-terminating proxy).
async fn mtls_replica(db: &TestDatabase, clock: &ManualClock, proxy: &str) -> Replica {
    replica_with(db, clock, |c| {
        c.client_auth.certificate_header = Some("x-client-cert".into());
        c.client_auth.trusted_proxies = vec![proxy.parse().unwrap()];
    })
    .await
}

/// URL-encoded PEM of a DER certificate, as nginx's `$ssl_client_escaped_cert`.
fn escaped_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    // Percent-encoding as nginx does: a space is %20, never `+`.
    url::form_urlencoded::byte_serialize(pem.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn mtls_client_auth_through_a_trusted_proxy(db: TestDatabase) {
    let env = start(&db).await;
    let mtls = mtls_replica(&db, &env.clock, "127.0.0.1").await;
    let untrusted = mtls_replica(&db, &env.clock, "10.9.9.9").await;
    let pki = runtime::test_pki::TestPki::new("clients").unwrap();
    let good = pki
        .issue(
            "svc",
            &["svc.example.test"],
            runtime::test_pki::Validity::Current,
        )
        .unwrap();
    let other = pki
        .issue(
            "other",
            &["other.example.test"],
            runtime::test_pki::Validity::Current,
        )
        .unwrap();
    let expired = pki
        .issue(
            "old",
            &["svc.example.test"],
            runtime::test_pki::Validity::Expired,
        )
        .unwrap();
    for (id, subject) in [
        (
            "by-san",
            authz::clients::TlsClientAuthSubject::SanDns("svc.example.test".into()),
        ),
        (
            "by-dn",
            authz::clients::TlsClientAuthSubject::SubjectDn("CN=svc.example.test".into()),
        ),
    ] {
        let mut c = client(id, TokenEndpointAuthMethod::TlsClientAuth);
        c.tls_client_auth = Some(subject);
        env.clients
            .create(NewClient {
                client: c,
                secret: None,
            })
            .await
            .unwrap();
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw();
    let self_signed = rcgen::CertificateParams::new(vec!["self.example.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut c = client("self", TokenEndpointAuthMethod::SelfSignedTlsClientAuth);
    c.jwks = Some(json!({"keys": [{
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    }]}));
    env.clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();

    let token = |replica: &Replica, id: &str, cert: Option<&[u8]>| {
        let mut req = env
            .http
            .post(format!("http://{}/token", replica.addrs.http))
            .form(&[("grant_type", "client_credentials"), ("client_id", id)]);
        if let Some(der) = cert {
            req = req.header("x-client-cert", escaped_pem(der));
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for id in ["by-san", "by-dn"] {
        let (status, body) = token(&mtls, id, Some(&good.der)).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_invalid_client(
            token(&mtls, id, Some(&other.der)).await,
            "does not match the registered subject",
        );
    }
    assert_invalid_client(
        token(&mtls, "by-san", Some(&expired.der)).await,
        "validity period",
    );
    assert_invalid_client(
        token(&mtls, "by-san", None).await,
        "registered for tls_client_auth, not none",
    );
    let (status, body) = token(&mtls, "self", Some(self_signed.der())).await;
    assert_eq!(status, 200, "{body}");
    assert_invalid_client(
        token(&mtls, "self", Some(&good.der)).await,
        "key is not in the client's jwks",
    );
    // From an address that is not a trusted proxy the header is ignored.
    assert_invalid_client(
        token(&untrusted, "by-san", Some(&good.der)).await,
        "registered for tls_client_auth, not none",
    );
    // The header without mTLS configured is ignored as well.
    assert_invalid_client(
        token(&env.replica, "by-san", Some(&good.der)).await,
        "registered for tls_client_auth, not none",
    );
    // Discovery lists the mTLS methods where a proxy forwards certificates.
    let meta: Value = env
        .http
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            mtls.addrs.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("\"tls_client_auth\""), "{methods}");
    assert!(methods.contains("self_signed_tls_client_auth"), "{methods}");
}

/// An HTTPS client of a TLS listener whose certificate comes from `pki`, presenting
/// `identity` (PEM certificate and key) when given; it never follows redirects.
fn tls_client(pki: &runtime::test_pki::TestPki, identity: Option<String>) -> reqwest::Client {
    let ca = std::fs::read(pki.ca_file()).unwrap();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// The PEM certificate chain and key of a certificate issued by a test PKI.
fn identity_of(issued: &runtime::test_pki::Issued) -> String {
    let cert = std::fs::read_to_string(&issued.cert_file).unwrap();
    let key = std::fs::read_to_string(&issued.key_file).unwrap();
    format!("{cert}{key}")
}

/// A self-signed certificate with a fresh P-256 key: its PEM identity and its public key
/// as a JWK.
fn self_signed(name: &str) -> (String, Value) {
    let key = rcgen::KeyPair::generate().unwrap();
    let raw = key.public_key_raw();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    });
    (format!("{}{}", cert.pem(), key.serialize_pem()), jwk)
}

/// authz serving TLS itself with `client_auth.handshake_certificates` (RFC 8705 §2 on its
/// own handshake), `http.tls.client_ca_file` the CA of `pki`; `x-client-cert` is configured
/// but trusted only from 10.9.9.9, which no test connects from.
async fn handshake_replica(
    db: &TestDatabase,
    clock: &ManualClock,
    pki: &runtime::test_pki::TestPki,
    tweak: impl FnOnce(&mut AuthzConfig),
) -> Replica {
    let mut tls = pki.server_tls("authz").unwrap();
    tls.client_ca_file = Some(pki.ca_file().to_owned());
    replica_with(db, clock, |c| {
        c.http = ListenConfig::loopback(0).with_tls(tls);
        c.client_auth.handshake_certificates = true;
        c.client_auth.certificate_header = Some("x-client-cert".into());
        c.client_auth.trusted_proxies = vec!["10.9.9.9".parse().unwrap()];
        tweak(c);
    })
    .await
}

/// The token endpoint over a real TLS connection authenticates `tls_client_auth` (subject
/// DN) and `self_signed_tls_client_auth` clients by the certificate of the handshake:
/// the right certificate gets a token, none, another subject, a certificate of another CA
/// with the right subject, or another self-signed key gets 401 `invalid_client`; a
/// certificate header from an address outside `trusted_proxies` is ignored, whether the
/// handshake carried a certificate or not.
async fn mtls_client_auth_on_authz_own_handshake(db: TestDatabase) {
    let env = start(&db).await;
    let pki = runtime::test_pki::TestPki::new("clients").unwrap();
    let replica = handshake_replica(&db, &env.clock, &pki, |_| {}).await;
    let current = runtime::test_pki::Validity::Current;
    let good = pki.issue("svc", &["svc.example.test"], current).unwrap();
    let other = pki
        .issue("other", &["other.example.test"], current)
        .unwrap();
    let rogue_pki = runtime::test_pki::TestPki::new("rogue").unwrap();
    let rogue = rogue_pki
        .issue("svc", &["svc.example.test"], current)
        .unwrap();
    let mut c = client("by-dn", TokenEndpointAuthMethod::TlsClientAuth);
    c.tls_client_auth = Some(authz::clients::TlsClientAuthSubject::SubjectDn(
        "CN=svc.example.test".into(),
    ));
    env.clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();
    let (registered, jwk) = self_signed("self.example.test");
    let (unregistered, _) = self_signed("self.example.test");
    let mut c = client("self", TokenEndpointAuthMethod::SelfSignedTlsClientAuth);
    c.jwks = Some(json!({ "keys": [jwk] }));
    env.clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();

    let url = format!("https://127.0.0.1:{}/token", replica.addrs.http.port());
    let token = |identity: Option<String>, id: &'static str, header: Option<&[u8]>| {
        let http = tls_client(&pki, identity);
        let mut req = http
            .post(url.clone())
            .form(&[("grant_type", "client_credentials"), ("client_id", id)]);
        if let Some(der) = header {
            req = req.header("x-client-cert", escaped_pem(der));
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            if status == StatusCode::UNAUTHORIZED {
                assert!(res.headers().contains_key("www-authenticate"));
            }
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = token(Some(identity_of(&good)), "by-dn", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_invalid_client(
        token(None, "by-dn", None).await,
        "registered for tls_client_auth, not none",
    );
    assert_invalid_client(
        token(Some(identity_of(&other)), "by-dn", None).await,
        "does not match the registered subject",
    );
    assert_invalid_client(
        token(Some(identity_of(&rogue)), "by-dn", None).await,
        "not issued by a CA this server trusts",
    );
    let (status, body) = token(Some(registered.clone()), "self", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert_invalid_client(
        token(Some(unregistered), "self", None).await,
        "key is not in the client's jwks",
    );
    // A certificate header from 127.0.0.1 (not a trusted proxy) is ignored: without a
    // handshake certificate the client presented none, and with one, that one counts.
    assert_invalid_client(
        token(None, "by-dn", Some(&good.der)).await,
        "registered for tls_client_auth, not none",
    );
    assert_invalid_client(
        token(Some(identity_of(&other)), "by-dn", Some(&good.der)).await,
        "does not match the registered subject",
    );
    // The same certificate on the plaintext replica (no handshake) authenticates nobody.
    assert_invalid_client(
        post(
            &env.http,
            &format!("http://{}/token", env.replica.addrs.http),
            &[("grant_type", "client_credentials"), ("client_id", "by-dn")],
        )
        .await,
        "registered for tls_client_auth, not none",
    );
}

async fn discovery_of(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Discovery lists the mTLS methods when authz's own listener requests certificates,
/// without `mtls_endpoint_aliases` (the ordinary endpoints serve mTLS); with
/// `client_auth.mtls_base_url` it publishes the aliases of RFC 8705 §5 under that base;
/// without mTLS it lists neither.
async fn discovery_publishes_mtls_endpoint_aliases_per_config(db: TestDatabase) {
    let env = start(&db).await;
    let pki = runtime::test_pki::TestPki::new("clients").unwrap();
    let own = handshake_replica(&db, &env.clock, &pki, |_| {}).await;
    let meta = discovery_of(
        &tls_client(&pki, None),
        &format!("https://127.0.0.1:{}", own.addrs.http.port()),
    )
    .await;
    let methods = meta["token_endpoint_auth_methods_supported"].to_string();
    assert!(methods.contains("\"tls_client_auth\""), "{methods}");
    assert!(methods.contains("self_signed_tls_client_auth"), "{methods}");
    assert!(meta.get("mtls_endpoint_aliases").is_none(), "{meta}");

    let aliased = replica_with(&db, &env.clock, |c| {
        c.client_auth.certificate_header = Some("x-client-cert".into());
        c.client_auth.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.client_auth.mtls_base_url = Some("https://mtls.example.test/".into());
    })
    .await;
    let meta = discovery_of(&env.http, &format!("http://{}", aliased.addrs.http)).await;
    assert_eq!(
        meta["mtls_endpoint_aliases"],
        json!({
            "token_endpoint": "https://mtls.example.test/token",
            "introspection_endpoint": "https://mtls.example.test/introspect",
            "revocation_endpoint": "https://mtls.example.test/revoke",
            "pushed_authorization_request_endpoint": "https://mtls.example.test/par",
            "device_authorization_endpoint": "https://mtls.example.test/device_authorization",
            "userinfo_endpoint": "https://mtls.example.test/userinfo",
        }),
        "{meta}"
    );
    // The ordinary endpoints stay on the issuer.
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/token"));
    // A client assertion may name the alias it is sent to as its audience; another host
    // is still refused.
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let mut c = client("pkj", TokenEndpointAuthMethod::PrivateKeyJwt);
    c.jwks = Some(jwks(&[&key]));
    env.clients
        .create(NewClient {
            client: c,
            secret: None,
        })
        .await
        .unwrap();
    let with_aud = |aud: &str, jti: &str| {
        Signer::new(&key)
            .unwrap()
            .sign_jwt("JWT", &env.claims("pkj", aud, jti))
            .unwrap()
    };
    let aliased_token = format!("http://{}/token", aliased.addrs.http);
    let a = with_aud("https://mtls.example.test/token", "alias");
    let (status, body) = post(
        &env.http,
        &aliased_token,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", a.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let a = with_aud("https://elsewhere.example.test/token", "elsewhere");
    assert_invalid_client(
        post(
            &env.http,
            &aliased_token,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", a.as_str()),
            ],
        )
        .await,
        "aud must contain",
    );

    let plain = discovery_of(&env.http, &format!("http://{}", env.replica.addrs.http)).await;
    assert!(plain.get("mtls_endpoint_aliases").is_none(), "{plain}");
    let methods = plain["token_endpoint_auth_methods_supported"].to_string();
    assert!(!methods.contains("tls_client_auth"), "{methods}");
}

/// A browser without a client certificate loads `/authorize` over the listener that
/// requests certificates (the certificate is optional): it is sent on to idp's login page.
async fn a_browser_without_a_certificate_loads_authorize_over_mtls(db: TestDatabase) {
    use crate::flow_env::{IDP_URL, WEB_CB, code_request, pkce, start_with};
    let pki = runtime::test_pki::TestPki::new("clients").unwrap();
    let mut tls = pki.server_tls("authz").unwrap();
    tls.client_ca_file = Some(pki.ca_file().to_owned());
    let env = start_with(&db, |c| {
        c.http = ListenConfig::loopback(0).with_tls(tls);
        c.client_auth.handshake_certificates = true;
    })
    .await;
    let (_, challenge) = pkce();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(code_request("web", WEB_CB, "openid", &challenge, &[]))
        .finish();
    let res = tls_client(&pki, None)
        .get(format!(
            "https://127.0.0.1:{}/authorize?{q}",
            env.addrs.http.port()
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{IDP_URL}/login?")),
        "{location}"
    );
}

/// Bad mTLS settings stop the start with one line naming the key: certificates from the
/// handshake without TLS on `http`, an unreadable `http.tls.client_ca_file`, and an
/// `mtls_base_url` that is not https or that nothing serves.
#[test]
fn mtls_settings_are_validated() {
    use config::Validate;
    let pki = runtime::test_pki::TestPki::new("clients").unwrap();
    let check = |tweak: &dyn Fn(&mut AuthzConfig)| {
        let mut c = AuthzConfig::default();
        c.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
        tweak(&mut c);
        c.validate().err().map(|e| e.to_string())
    };
    let with_tls = |c: &mut AuthzConfig| {
        c.http.tls = pki.server_tls("authz").unwrap();
        c.client_auth.handshake_certificates = true;
    };
    assert_eq!(check(&with_tls), None);
    let e = check(&|c| c.client_auth.handshake_certificates = true).unwrap();
    assert!(
        e.starts_with("client_auth.handshake_certificates: needs TLS"),
        "{e}"
    );
    let e = check(&|c| {
        with_tls(c);
        c.http.tls.client_ca_file = Some("/nonexistent/ca.pem".into());
    })
    .unwrap();
    assert!(e.starts_with("http.tls.client_ca_file: cannot read"), "{e}");
    let e =
        check(&|c| c.client_auth.mtls_base_url = Some("https://mtls.example.test".into())).unwrap();
    assert!(
        e.starts_with("client_auth.mtls_base_url: needs certificate_header"),
        "{e}"
    );
    let e = check(&|c| {
        with_tls(c);
        c.client_auth.mtls_base_url = Some("http://mtls.example.test".into());
    })
    .unwrap();
    assert!(
        e.starts_with("client_auth.mtls_base_url: must be an https URL"),
        "{e}"
    );
    assert_eq!(
        check(&|c| {
            with_tls(c);
            c.client_auth.mtls_base_url = Some("https://mtls.example.test:8443/".into());
        }),
        None
    );
}

storage::backend_tests!(
    authz::MIGRATIONS;
    private_key_jwt_inline_jwks_and_every_bad_assertion,
    private_key_jwt_jwks_uri_is_cached_and_refetched_once,
    client_secret_jwt_uses_the_sealed_secret,
    secret_clients_use_basic_or_post_and_errors_name_the_method,
    an_assertion_is_single_use_across_replicas,
    client_key_settings_are_validated,
    mtls_client_auth_through_a_trusted_proxy,
    mtls_client_auth_on_authz_own_handshake,
    discovery_publishes_mtls_endpoint_aliases_per_config,
    a_browser_without_a_certificate_loads_authorize_over_mtls,
);

/// `authz clients create` takes the key and certificate settings (issue 17: `--auth-method
/// private_key_jwt --jwks-file` / `--jwks-uri`, `tls_client_auth --tls-subject-dn`), shows
/// them, and refuses private keys and incoherent settings before storing anything.
#[test]
fn cli_registers_key_and_certificate_clients() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/authz.db", dir.path().display());
    let env = [("AUTHZ__DATABASE__URL", url.as_str())];
    let run = |args: &[&str]| crate::cli::authz_in(dir.path(), args, &env);
    assert_eq!(run(&["migrate"]).status.code(), Some(0));
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks(&[&key]).to_string()).unwrap();
    let out = run(&[
        "clients",
        "create",
        "--id",
        "signer",
        "--name",
        "Signer",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_path.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["client_secret"].is_null(), "{created}");
    let shown: Value =
        serde_json::from_slice(&run(&["clients", "show", "signer", "--json"]).stdout).unwrap();
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"]["keys"][0]["kid"], key.kid());

    let out = run(&[
        "clients",
        "create",
        "--id",
        "mtls",
        "--name",
        "mTLS",
        "--auth-method",
        "tls_client_auth",
        "--tls-subject-dn",
        "CN=mtls,O=Example",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value =
        serde_json::from_slice(&run(&["clients", "show", "mtls", "--json"]).stdout).unwrap();
    assert_eq!(
        shown["tls_client_auth"],
        json!({"tls_client_auth_subject_dn": "CN=mtls,O=Example"})
    );

    let out = run(&[
        "clients",
        "create",
        "--id",
        "hs",
        "--name",
        "HS",
        "--auth-method",
        "client_secret_jwt",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(created["client_secret"].is_string(), "{created}");

    let private = dir.path().join("private.json");
    std::fs::write(
        &private,
        json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"}]}).to_string(),
    )
    .unwrap();
    for (args, why) in [
        (
            vec!["--auth-method", "private_key_jwt"],
            "needs jwks or jwks_uri",
        ),
        (
            vec![
                "--auth-method",
                "private_key_jwt",
                "--jwks-file",
                private.to_str().unwrap(),
            ],
            "private key",
        ),
        (
            vec![
                "--auth-method",
                "private_key_jwt",
                "--jwks-uri",
                "http://rp.example.test/jwks",
            ],
            "https",
        ),
        (
            vec!["--auth-method", "tls_client_auth"],
            "tls_client_auth needs",
        ),
        (
            vec![
                "--auth-method",
                "tls_client_auth",
                "--tls-subject-dn",
                "CN=a",
                "--tls-san-dns",
                "a.example",
            ],
            "give one of",
        ),
    ] {
        let mut full = vec!["clients", "create", "--id", "bad", "--name", "Bad"];
        full.extend(args);
        let out = run(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{why}");
        assert!(stderr.contains(why), "{why}: {stderr}");
    }
    let listed = String::from_utf8_lossy(&run(&["clients", "list"]).stdout).into_owned();
    assert!(!listed.contains("bad"), "{listed}");
}
