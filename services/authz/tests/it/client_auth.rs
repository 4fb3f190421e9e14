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

storage::backend_tests!(
    authz::MIGRATIONS;
    private_key_jwt_inline_jwks_and_every_bad_assertion,
    private_key_jwt_jwks_uri_is_cached_and_refetched_once,
    client_secret_jwt_uses_the_sealed_secret,
    secret_clients_use_basic_or_post_and_errors_name_the_method,
    an_assertion_is_single_use_across_replicas,
    client_key_settings_are_validated,
);
