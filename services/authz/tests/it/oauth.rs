//! The machine-to-machine half through the in-process server: token endpoint errors
//! (RFC 6749 §5.2), client_credentials, RFC 9068 access tokens, secret rotation,
//! introspection over HTTP and gRPC (RFC 7662), revocation (RFC 7009).

use std::sync::Arc;
use std::time::Duration;

use authz::clients::{Client, Clients, NewClient};
use authz::{Addresses, Application, AuthzConfig};
use base64::Engine;
use domain::{AccessTokenFormat, ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::{Clock, ManualClock};
use proto::authz::v1::introspection_client::IntrospectionClient;
use proto::authz::v1::{IntrospectBatchRequest, IntrospectRequest};
use reqwest::StatusCode;
use runtime::{GrpcListenConfig, ListenConfig, Shutdown};
use serde_json::Value;
use storage::Database;
use storage::testing::TestDatabase;

use crate::cli::TEST_KEK;

const SECRET: &str = "s3cret+with:odd%chars";

struct Server {
    addrs: Addresses,
    keys: Arc<authz::keys::KeyStore>,
    clock: ManualClock,
    clients: Clients,
    shutdown: Shutdown,
    http: reqwest::Client,
    _running: tokio::task::JoinHandle<Result<(), authz::AuthzError>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn client(id: &str) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.to_owned(),
        auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("api:read api:write").unwrap(),
        audiences: vec![
            "https://api.example.test".into(),
            "https://other.example.test".into(),
        ],
        access_token_format: AccessTokenFormat::Jwt,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        id_token_ttl: 600,
        signing_alg: None,
        first_party: false,
        can_introspect: false,
        created_at: 0,
        updated_at: 0,
        allowed_origins: Vec::new(),
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        token_exchange: Default::default(),
        // clientauth
        jwks: None,
        jwks_uri: None,
        token_endpoint_auth_signing_alg: None,
        tls_client_auth: None,
        require_pushed_authorization_requests: false,
    }
}

async fn start(db: &TestDatabase) -> Server {
    let mut config = AuthzConfig {
        issuer: "http://127.0.0.1:9/".to_owned(),
        http: ListenConfig::loopback(0),
        grpc: GrpcListenConfig::loopback(0),
        admin: ListenConfig::loopback(0),
        database: db.config().clone(),
        ..AuthzConfig::default()
    };
    config.keys.encryption_key = Some(config::Secret::new(TEST_KEK.to_owned()));
    config.keys.algorithms = vec![issuer::Algorithm::ES256, issuer::Algorithm::RS256];
    config.keys.default_alg = issuer::Algorithm::ES256;
    config.clients.cache_ttl = Duration::ZERO;
    let clock = ManualClock::new(1_800_000_000);
    let shutdown = Shutdown::new();
    let app = Application::build_with_clock(config, shutdown.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let addrs = app.addresses();
    let keys = Arc::clone(app.keys());
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(clock.clone()), Duration::ZERO);
    for (id, f) in [
        ("svc:a+b", (|_c: &mut Client| {}) as fn(&mut Client)),
        ("rs", |c: &mut Client| c.can_introspect = true),
        ("opaque", |c: &mut Client| {
            c.access_token_format = AccessTokenFormat::Opaque
        }),
        ("poster", |c: &mut Client| {
            c.auth_method = TokenEndpointAuthMethod::ClientSecretPost
        }),
        ("coder", |c: &mut Client| {
            c.grant_types = vec![GrantType::AuthorizationCode]
        }),
        ("rsa", |c: &mut Client| {
            c.signing_alg = Some(issuer::Algorithm::RS256)
        }),
        ("long", |c: &mut Client| c.access_token_ttl = 30 * 86_400),
        ("spa", |c: &mut Client| {
            // Misconfigured on purpose: a public client with the introspection flag.
            c.auth_method = TokenEndpointAuthMethod::None;
            c.grant_types = vec![GrantType::AuthorizationCode];
            c.can_introspect = true;
        }),
    ] {
        let mut c = client(id);
        f(&mut c);
        let secret = (c.auth_method != TokenEndpointAuthMethod::None).then(|| SECRET.to_owned());
        clients
            .create(NewClient { client: c, secret })
            .await
            .unwrap();
    }
    Server {
        addrs,
        keys,
        clock,
        clients,
        shutdown,
        http: reqwest::Client::new(),
        _running: tokio::spawn(app.run()),
    }
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
use domain::basic::encode as basic;

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addrs.http)
    }

    async fn post(
        &self,
        path: &str,
        auth: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = auth {
            req = req.header("authorization", basic(id, secret));
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn token(&self, id: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let (status, _, body) = self.post("/token", Some((id, SECRET)), &form).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn introspect_http(&self, token: &str) -> Value {
        let (status, headers, body) = self
            .post("/introspect", Some(("rs", SECRET)), &[("token", token)])
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }

    async fn grpc(&self) -> IntrospectionClient<tonic::transport::Channel> {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addrs.grpc.unwrap()))
                .unwrap()
                .connect()
                .await
                .unwrap();
        IntrospectionClient::new(channel)
    }

    async fn introspect_grpc(
        &self,
        token: &str,
        auth: Option<(&str, &str)>,
    ) -> Result<proto::authz::v1::IntrospectResponse, tonic::Status> {
        let mut req = tonic::Request::new(IntrospectRequest {
            token: token.to_owned(),
            token_type_hint: String::new(),
        });
        if let Some((id, secret)) = auth {
            req.metadata_mut()
                .insert("authorization", basic(id, secret).parse().unwrap());
        }
        self.grpc()
            .await
            .introspect(req)
            .await
            .map(tonic::Response::into_inner)
    }
}

fn assert_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    want_status: u16,
    want: &str,
) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"], want, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
}

async fn token_endpoint_errors(db: TestDatabase) {
    let s = start(&db).await;
    let cc = [("grant_type", "client_credentials")];

    let res = s.http.get(s.url("/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");

    let res = s
        .http
        .post(s.url("/token"))
        .header("authorization", basic("svc:a+b", SECRET))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let (st, h) = (res.status(), res.headers().clone());
    assert_error(st, &h, &res.json().await.unwrap(), 400, "invalid_request");

    // No client authentication at all: 401, with the Basic challenge every 401 carries
    // (RFC 7235 §3.1), naming the scheme the client may use.
    let (st, h, b) = s.post("/token", None, &cc).await;
    assert_error(st, &h, &b, 401, "invalid_client");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    // Wrong secret over Basic: 401 with the challenge.
    let (st, h, b) = s.post("/token", Some(("svc:a+b", "wrong")), &cc).await;
    assert_error(st, &h, &b, 401, "invalid_client");
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    // Unknown client in the body: 401, same message as a wrong secret.
    let (st, h, b) = s
        .post(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "ghost"),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_error(st, &h, &b, 401, "invalid_client");
    assert_eq!(b["error_description"], "client authentication failed");
    // clientauth: a client_secret_post client may send its secret with Basic as well
    // (RFC 6749 §2.3.1: the server MUST support Basic).
    let (st, _, b) = s.post("/token", Some(("poster", SECRET)), &cc).await;
    assert_eq!(st, 200, "{b}");
    // Two authentication methods at once.
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_error(st, &h, &b, 400, "invalid_request");
    // Missing and repeated grant_type.
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[("scope", "api:read")],
        )
        .await;
    assert_error(st, &h, &b, 400, "invalid_request");
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_error(st, &h, &b, 400, "invalid_request");
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("repeated")
    );
    // Unknown grant type, and one the client may not use.
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[("grant_type", "password")],
        )
        .await;
    assert_error(st, &h, &b, 400, "unsupported_grant_type");
    let (st, h, b) = s.post("/token", Some(("coder", SECRET)), &cc).await;
    assert_error(st, &h, &b, 400, "unauthorized_client");
    // Scopes: not allowed, malformed.
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api:read admin"),
            ],
        )
        .await;
    assert_error(st, &h, &b, 400, "invalid_scope");
    let (st, h, b) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api:read  api:write"),
            ],
        )
        .await;
    assert_error(st, &h, &b, 400, "invalid_scope");
    // Resource indicators: not allowed, fragment, relative.
    for resource in [
        "https://evil.example.test",
        "https://api.example.test#x",
        "/relative",
    ] {
        let (st, h, b) = s
            .post(
                "/token",
                Some(("svc:a+b", SECRET)),
                &[("grant_type", "client_credentials"), ("resource", resource)],
            )
            .await;
        assert_error(st, &h, &b, 400, "invalid_target");
    }
}

async fn client_credentials_issue_rfc9068_tokens(db: TestDatabase) {
    let s = start(&db).await;
    let (status, headers, body) = s
        .post(
            "/token",
            Some(("svc:a+b", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api:read"),
                ("resource", "https://api.example.test"),
                ("resource", "https://other.example.test"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "api:read", "down-scoped");
    let token = body["access_token"].as_str().unwrap();

    let jwks: Value = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys = issuer::jws::Verifiers::new();
    keys.extend_from_jwks(&jwks);
    let v = issuer::jws::verify(
        token,
        &keys,
        &issuer::jws::Expect {
            algorithms: &issuer::Algorithm::ALL,
            typ: Some("at+jwt"),
        },
    )
    .unwrap();
    assert_eq!(v.header["alg"], "ES256", "keys.default_alg");
    let c = &v.claims;
    assert_eq!(c["iss"], "http://127.0.0.1:9/");
    assert_eq!(c["sub"], "svc:a+b");
    assert_eq!(c["client_id"], "svc:a+b");
    assert_eq!(
        c["aud"],
        serde_json::json!(["https://api.example.test", "https://other.example.test"])
    );
    assert_eq!(c["scope"], "api:read");
    assert_eq!(c["iat"], s.clock.now());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert!(c["jti"].as_str().unwrap().len() >= 22);

    // Without scope and resource: every allowed scope, the default audience.
    let (_, _, body) = s
        .post(
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "poster"),
                ("client_secret", SECRET),
            ],
        )
        .await;
    assert_eq!(body["scope"], "api:read api:write");
    // A client pinned to RS256 gets RS256 tokens.
    let rsa = s.token("rsa", &[]).await;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rsa.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
}

async fn secret_rotation_grace(db: TestDatabase) {
    let s = start(&db).await;
    let new = s
        .clients
        .rotate_secret("svc:a+b", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(new.len() >= 43, "256-bit generated secret");
    let cc = [("grant_type", "client_credentials")];
    assert_eq!(
        s.post("/token", Some(("svc:a+b", SECRET)), &cc).await.0,
        200,
        "old secret during grace"
    );
    assert_eq!(
        s.post("/token", Some(("svc:a+b", &new)), &cc).await.0,
        200,
        "new secret"
    );
    s.clock.advance(3600);
    assert_eq!(
        s.post("/token", Some(("svc:a+b", SECRET)), &cc).await.0,
        401,
        "old secret after grace"
    );
    assert_eq!(s.post("/token", Some(("svc:a+b", &new)), &cc).await.0, 200);
}

async fn introspection_and_revocation_on_both_transports(db: TestDatabase) {
    let s = start(&db).await;
    let jwt = s.token("svc:a+b", &[("scope", "api:write")]).await;
    let opaque = s.token("opaque", &[]).await;
    // 12 hex digits of issue time (orders storage keys), then 256 random bits.
    assert_eq!(opaque.len(), 12 + 43, "{opaque}");
    assert!(
        opaque[..12].bytes().all(|b| b.is_ascii_hexdigit()),
        "{opaque}"
    );
    assert!(!opaque.contains('.'));
    let later = s.token("opaque", &[]).await;
    assert!(later[..12] >= opaque[..12], "prefixes follow issue order");
    // Only the whole token matches: same prefix with other random bits, or the same
    // random bits with another prefix, are unknown tokens.
    let other_random = format!("{}{}", &opaque[..12], &later[12..]);
    let other_prefix = format!(
        "{}{}",
        &later[..12].replace(|c| c != '0', "0"),
        &opaque[12..]
    );
    for forged in [&other_random, &other_prefix] {
        assert_eq!(s.introspect_http(forged).await["active"], false, "{forged}");
    }

    // Who may introspect.
    let (st, h, b) = s.post("/introspect", None, &[("token", &jwt)]).await;
    assert_error(st, &h, &b, 401, "invalid_client");
    let (st, _, b) = s
        .post("/introspect", Some(("svc:a+b", SECRET)), &[("token", &jwt)])
        .await;
    assert_eq!(st, 403, "{b}");
    // A public client, even one flagged for introspection, proves nothing with its id.
    let (st, h, b) = s
        .post(
            "/introspect",
            None,
            &[("token", &jwt), ("client_id", "spa")],
        )
        .await;
    assert_error(st, &h, &b, 401, "invalid_client");
    let (st, h, b) = s.post("/introspect", Some(("rs", SECRET)), &[]).await;
    assert_error(st, &h, &b, 400, "invalid_request");
    assert_eq!(
        s.introspect_grpc(&jwt, None).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        s.introspect_grpc(&jwt, Some(("rs", "wrong")))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        s.introspect_grpc(&jwt, Some(("svc:a+b", SECRET)))
            .await
            .unwrap_err()
            .code(),
        tonic::Code::PermissionDenied
    );

    // Active tokens, both kinds, both transports.
    let j = s.introspect_http(&jwt).await;
    assert_eq!(j["active"], true);
    assert_eq!(j["scope"], "api:write");
    assert_eq!(j["client_id"], "svc:a+b");
    assert_eq!(j["sub"], "svc:a+b");
    assert_eq!(j["iss"], "http://127.0.0.1:9/");
    assert_eq!(j["aud"], serde_json::json!(["https://api.example.test"]));
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["exp"], s.clock.now() + 600);
    let o = s.introspect_http(&opaque).await;
    assert_eq!(o["active"], true);
    assert_eq!(o["client_id"], "opaque");
    let g = s
        .introspect_grpc(&opaque, Some(("rs", SECRET)))
        .await
        .unwrap();
    assert!(g.active);
    assert_eq!(g.client_id, "opaque");
    assert_eq!(g.aud, vec!["https://api.example.test".to_owned()]);

    // Unknown and garbage are just inactive.
    for t in ["nope", "a.b.c", &format!("{jwt}x")] {
        assert_eq!(
            s.introspect_http(t).await,
            serde_json::json!({"active": false})
        );
    }

    // Another client cannot revoke them: refused with an RFC 6749 §5.2 error (RFC 7009
    // §2.1), and they stay active; unknown tokens answer 200.
    for t in [&jwt, &opaque] {
        let (st, h, b) = s
            .post("/revoke", Some(("rs", SECRET)), &[("token", t)])
            .await;
        assert_error(st, &h, &b, 400, "unauthorized_client");
    }
    assert_eq!(
        s.post("/revoke", Some(("rs", SECRET)), &[("token", "unknown")])
            .await
            .0,
        200
    );
    assert_eq!(s.introspect_http(&jwt).await["active"], true);
    assert_eq!(s.introspect_http(&opaque).await["active"], true);
    let (st, h, b) = s
        .post("/revoke", Some(("svc:a+b", "wrong")), &[("token", &jwt)])
        .await;
    assert_error(st, &h, &b, 401, "invalid_client");

    // The owner revokes: inactive on both transports at once.
    assert_eq!(
        s.post(
            "/revoke",
            Some(("svc:a+b", SECRET)),
            &[("token", &jwt), ("token_type_hint", "access_token")]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        s.post("/revoke", Some(("opaque", SECRET)), &[("token", &opaque)])
            .await
            .0,
        200
    );
    for t in [&jwt, &opaque] {
        assert_eq!(
            s.introspect_http(t).await,
            serde_json::json!({"active": false})
        );
        assert!(
            !s.introspect_grpc(t, Some(("rs", SECRET)))
                .await
                .unwrap()
                .active
        );
    }

    // Expiry.
    let later = s.token("svc:a+b", &[]).await;
    let later_opaque = s.token("opaque", &[]).await;
    s.clock.advance(600);
    assert_eq!(s.introspect_http(&later).await["active"], false);
    assert_eq!(s.introspect_http(&later_opaque).await["active"], false);
}

async fn grpc_batch(db: TestDatabase) {
    let s = start(&db).await;
    let a = s.token("svc:a+b", &[]).await;
    let b = s.token("opaque", &[]).await;
    let tokens: [String; 4] = [a.clone(), "junk".into(), b.clone(), a];
    let mut req = tonic::Request::new(IntrospectBatchRequest {
        tokens: tokens
            .iter()
            .map(|t| IntrospectRequest {
                token: t.clone(),
                token_type_hint: String::new(),
            })
            .collect(),
    });
    req.metadata_mut()
        .insert("authorization", basic("rs", SECRET).parse().unwrap());
    let res = s
        .grpc()
        .await
        .introspect_batch(req)
        .await
        .unwrap()
        .into_inner();
    let active: Vec<bool> = res.results.iter().map(|r| r.active).collect();
    assert_eq!(
        active,
        vec![true, false, true, true],
        "results in request order"
    );
    assert_eq!(res.results[2].client_id, "opaque");

    let mut too_many = tonic::Request::new(IntrospectBatchRequest {
        tokens: (0..101)
            .map(|_| IntrospectRequest {
                token: "x".into(),
                token_type_hint: String::new(),
            })
            .collect(),
    });
    too_many
        .metadata_mut()
        .insert("authorization", basic("rs", SECRET).parse().unwrap());
    assert_eq!(
        s.grpc()
            .await
            .introspect_batch(too_many)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::InvalidArgument
    );
}

async fn removed_keys_stop_verifying_even_after_introspection(db: TestDatabase) {
    let s = start(&db).await;
    // Lives longer than a retired key is kept.
    let token = s.token("long", &[]).await;
    assert_eq!(s.introspect_http(&token).await["active"], true);
    let kid = s
        .keys
        .ring()
        .signer(issuer::Algorithm::ES256, s.clock.now())
        .unwrap()
        .kid()
        .to_owned();
    s.keys.retire(&kid).await.unwrap();
    assert_eq!(
        s.introspect_http(&token).await["active"],
        true,
        "retired keys still verify"
    );
    s.clock
        .advance(AuthzConfig::default().keys.retired_retention.as_secs() as i64);
    s.keys.maintain().await.unwrap();
    assert_eq!(
        s.introspect_http(&token).await,
        serde_json::json!({"active": false}),
        "a removed key's tokens are inactive, however often they were introspected"
    );
}

/// `Basic` credentials for `id` and `secret`, encoded per RFC 6749 §2.3.1, followed by
/// `&junk=1` inside the base64: what a parser that splits at `&` would cut off.
fn basic_with_junk(id: &str, secret: &str) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let encoded = basic(id, secret);
    let pair = engine
        .decode(encoded.strip_prefix("Basic ").unwrap())
        .unwrap();
    let pair = String::from_utf8(pair).unwrap();
    format!("Basic {}", engine.encode(format!("{pair}&junk=1")))
}

async fn basic_credentials_are_decoded_exactly(db: TestDatabase) {
    let s = start(&db).await;
    let cc = [("grant_type", "client_credentials")];
    // A secret with every character form-urlencoding treats specially.
    let odd = "p&ss=w+rd: 100% ü";
    let mut c = client("amp");
    c.can_introspect = true;
    s.clients
        .create(NewClient {
            client: c,
            secret: Some(odd.to_owned()),
        })
        .await
        .unwrap();

    let (st, _, b) = s.post("/token", Some(("amp", odd)), &cc).await;
    assert_eq!(st, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_owned();
    let answer = s.introspect_grpc(&token, Some(("amp", odd))).await.unwrap();
    assert!(answer.active);

    // The registered secret followed by `&junk=1` is a different secret.
    for (id, secret) in [("svc:a+b", SECRET), ("amp", odd)] {
        let res = s
            .http
            .post(s.url("/token"))
            .header("authorization", basic_with_junk(id, secret))
            .form(&cc)
            .send()
            .await
            .unwrap();
        let (st, h) = (res.status(), res.headers().clone());
        assert_error(st, &h, &res.json().await.unwrap(), 401, "invalid_client");
        assert!(h.contains_key("www-authenticate"));

        let mut req = tonic::Request::new(IntrospectRequest {
            token: token.clone(),
            token_type_hint: String::new(),
        });
        req.metadata_mut().insert(
            "authorization",
            basic_with_junk(id, secret).parse().unwrap(),
        );
        let status = s.grpc().await.introspect(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{id}");
    }
}

async fn concurrent_opaque_tokens_are_all_stored(db: TestDatabase) {
    let s = Arc::new(start(&db).await);
    let issued = futures_util::future::join_all((0..40).map(|_| {
        let s = Arc::clone(&s);
        async move { s.token("opaque", &[]).await }
    }))
    .await;
    let distinct: std::collections::HashSet<&String> = issued.iter().collect();
    assert_eq!(distinct.len(), 40);
    for t in &issued {
        assert_eq!(s.introspect_http(t).await["active"], true);
    }
}

/// Concurrent introspections of JWT and opaque tokens, every other one revoked, each get
/// their own verdict on both transports (on PostgreSQL their look-ups share queries).
async fn concurrent_introspections_each_see_their_own_revocation(db: TestDatabase) {
    let s = start(&db).await;
    // Token i belongs to client i % 4 / 2: JWTs and opaque tokens, interleaved.
    let owner = |i: usize| if i % 4 < 2 { "svc:a+b" } else { "opaque" };
    let tokens = futures_util::future::join_all((0..48).map(|i| s.token(owner(i), &[]))).await;
    for (i, t) in tokens.iter().enumerate().step_by(2) {
        let (st, _, b) = s
            .post("/revoke", Some((owner(i), SECRET)), &[("token", t)])
            .await;
        assert_eq!(st, 200, "{b}");
    }
    for _ in 0..3 {
        let http =
            futures_util::future::join_all(tokens.iter().map(|t| s.introspect_http(t))).await;
        let grpc = futures_util::future::join_all(
            tokens
                .iter()
                .map(|t| s.introspect_grpc(t, Some(("rs", SECRET)))),
        )
        .await;
        for (i, (h, g)) in http.iter().zip(&grpc).enumerate() {
            let active = i % 2 == 1;
            assert_eq!(h["active"], active, "token {i} over HTTP: {h}");
            if active {
                assert_eq!(h["client_id"], owner(i), "token {i}: {h}");
            }
            let g = g.as_ref().map(|g| (g.active, g.client_id.clone()));
            let expected = if active { owner(i) } else { "" };
            assert_eq!(
                g.ok(),
                Some((active, expected.to_owned())),
                "token {i} over gRPC"
            );
        }
    }
}

storage::backend_tests!(
    authz::MIGRATIONS;
    token_endpoint_errors,
    concurrent_introspections_each_see_their_own_revocation,
    client_credentials_issue_rfc9068_tokens,
    secret_rotation_grace,
    introspection_and_revocation_on_both_transports,
    grpc_batch,
    removed_keys_stop_verifying_even_after_introspection,
    concurrent_opaque_tokens_are_all_stored,
    basic_credentials_are_decoded_exactly,
);
