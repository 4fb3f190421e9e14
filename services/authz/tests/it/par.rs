//! PAR (RFC 9126) and JAR (RFC 9101) through the in-process server: pushing, the
//! single-use short-lived `request_uri` bound to its client, global and per-client
//! `require_pushed_authorization_requests`, request objects by value and through PAR, and
//! the bad input of issue 17 (a `request_uri` used twice, after expiry or by another
//! client; a request object signed by another client). On SQLite and PostgreSQL.

use authz::clients::{Client, NewClient};
use domain::{ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};
use issuer::jws::Signer;
use issuer::{Algorithm, PrivateKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage::testing::TestDatabase;

use crate::registration::{Server, start};

const ISSUER: &str = "http://127.0.0.1:9";
const SECRET: &str = "par-test-secret-0123456789";
const REDIRECT: &str = "https://app.example.test/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn add(s: &Server, id: &str, tune: impl FnOnce(&mut Client)) {
    let mut c = Client::new(ClientId::parse(id).unwrap(), id.into());
    c.grant_types = vec![GrantType::AuthorizationCode];
    c.redirect_uris = vec![REDIRECT.into()];
    c.scopes = ScopeSet::parse("openid profile").unwrap();
    tune(&mut c);
    let secret = c.auth_method.uses_secret().then(|| SECRET.to_owned());
    s.clients
        .create(NewClient { client: c, secret })
        .await
        .unwrap();
}

fn request_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st-1"),
    ]
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Server {
    async fn push(
        &self,
        auth: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.post(self.url("/par")).form(form);
        if let Some((id, secret)) = auth {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// `GET /authorize` with `query`: the status, the Location and the body text.
    async fn authorize(&self, query: &[(&str, &str)]) -> (StatusCode, String, String) {
        let res = no_redirects()
            .get(self.url("/authorize"))
            .query(query)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, res.text().await.unwrap())
    }
}

/// A response that sends the browser on to idp's login page (the request was accepted).
fn assert_to_login(r: &(StatusCode, String, String)) {
    assert_eq!(r.0, StatusCode::SEE_OTHER, "{}", r.2);
    assert!(
        r.1.starts_with("http://localhost:8081/login?login_challenge="),
        "{}",
        r.1
    );
}

/// An error page naming `code`.
fn assert_page(r: &(StatusCode, String, String), code: &str) {
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.2);
    assert!(r.1.is_empty(), "nothing is redirected: {}", r.1);
    assert!(r.2.contains(code), "{code} in {}", r.2);
}

async fn pushed_request_uris_are_single_use_short_lived_and_bound(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    add(&s, "web", |_| {}).await;
    add(&s, "other", |_| {}).await;
    let params = request_params();
    let (status, headers, body) = s.push(Some(("web", SECRET)), &params).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    // Used by another client: refused, and left for its owner.
    let r = s
        .authorize(&[("client_id", "other"), ("request_uri", &uri)])
        .await;
    assert_page(&r, "invalid_request_uri");
    // Its owner: accepted (other query parameters are ignored, RFC 9126 §4).
    let r = s
        .authorize(&[
            ("client_id", "web"),
            ("request_uri", &uri),
            ("scope", "profile"),
        ])
        .await;
    assert_to_login(&r);
    // Used twice.
    let r = s
        .authorize(&[("client_id", "web"), ("request_uri", &uri)])
        .await;
    assert_page(&r, "invalid_request_uri");
    // After expiry.
    let (_, _, body) = s.push(Some(("web", SECRET)), &params).await;
    let late = body["request_uri"].as_str().unwrap().to_owned();
    s.clock.advance(61);
    let r = s
        .authorize(&[("client_id", "web"), ("request_uri", &late)])
        .await;
    assert_page(&r, "invalid_request_uri");
    // Unknown.
    let r = s
        .authorize(&[
            ("client_id", "web"),
            ("request_uri", "urn:ietf:params:oauth:request_uri:nope"),
        ])
        .await;
    assert_page(&r, "invalid_request_uri");
    // A request_uri elsewhere is not fetched: request_uri_not_supported, redirected since
    // the redirect URI is registered.
    let mut query = request_params();
    query.push(("client_id", "web"));
    query.push(("request_uri", "https://attacker.example/request.jwt"));
    let r = s.authorize(&query).await;
    assert_eq!(r.0, StatusCode::SEE_OTHER);
    assert!(r.1.starts_with(REDIRECT), "{}", r.1);
    assert!(r.1.contains("error=request_uri_not_supported"), "{}", r.1);
}

async fn pushing_checks_the_client_and_the_request(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    add(&s, "web", |_| {}).await;
    let params = request_params();
    let (status, headers, body) = s.push(None, &params).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = s.push(Some(("web", "wrong-secret")), &params).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let with = |name: &'static str, value: &'static str| {
        let mut p: Vec<(&str, &str)> = request_params()
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect();
        if !value.is_empty() {
            p.push((name, value));
        }
        p
    };
    for (what, form, code) in [
        (
            "unregistered redirect_uri",
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
        ),
        ("no PKCE", with("code_challenge", ""), "invalid_request"),
        (
            "scope not allowed",
            with("scope", "openid email"),
            "invalid_scope",
        ),
        (
            "implicit",
            with("response_type", "token"),
            "unsupported_response_type",
        ),
        (
            "request_uri pushed",
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            "invalid_request",
        ),
        (
            "another client_id",
            with("client_id", "other"),
            "invalid_request",
        ),
    ] {
        let (status, headers, body) = s.push(Some(("web", SECRET)), &form).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], code, "{what}: {body}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    }
    let res = s.http.get(s.url("/par")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

async fn a_client_can_be_required_to_push(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    add(&s, "strict", |c| {
        c.require_pushed_authorization_requests = true
    })
    .await;
    add(&s, "relaxed", |_| {}).await;
    let mut query = request_params();
    query.push(("client_id", "strict"));
    let r = s.authorize(&query).await;
    assert_eq!(r.0, StatusCode::SEE_OTHER);
    assert!(r.1.starts_with(REDIRECT), "{}", r.1);
    assert!(r.1.contains("error=invalid_request"), "{}", r.1);
    let (_, _, body) = s.push(Some(("strict", SECRET)), &request_params()).await;
    let r = s
        .authorize(&[
            ("client_id", "strict"),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ])
        .await;
    assert_to_login(&r);
    let mut query = request_params();
    query.push(("client_id", "relaxed"));
    assert_to_login(&s.authorize(&query).await);
}

async fn every_client_can_be_required_to_push(db: TestDatabase) {
    let s = start(&db, |c| c.par.require = true).await;
    add(&s, "web", |_| {}).await;
    let discovery: Value = s
        .http
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["require_pushed_authorization_requests"], true);
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        format!("{ISSUER}/par")
    );
    let mut query = request_params();
    query.push(("client_id", "web"));
    let r = s.authorize(&query).await;
    assert!(r.1.contains("error=invalid_request"), "{}", r.1);
    let (_, _, body) = s.push(Some(("web", SECRET)), &request_params()).await;
    let r = s
        .authorize(&[
            ("client_id", "web"),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ])
        .await;
    assert_to_login(&r);
}

fn jwks(key: &PrivateKey) -> Value {
    json!({ "keys": [Value::Object(key.public_jwk().clone())] })
}

fn request_object(now: i64, tune: impl FnOnce(&mut Value)) -> Value {
    let mut claims = json!({
        "iss": "signed",
        "aud": ISSUER,
        "client_id": "signed",
        "exp": now + 300,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "from-the-object",
        "max_age": 600,
    });
    tune(&mut claims);
    claims
}

async fn request_objects_by_value_and_through_par(db: TestDatabase) {
    let s = start(&db, |_| {}).await;
    let key = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    let intruder = PrivateKey::generate(Algorithm::ES256, 2048).unwrap();
    add(&s, "signed", |c| {
        c.auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        c.jwks = Some(jwks(&key));
    })
    .await;
    add(&s, "intruder", |c| {
        c.auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        c.jwks = Some(jwks(&intruder));
    })
    .await;
    let now = 1_800_000_000;
    let sign = |k: &PrivateKey, claims: &Value| {
        Signer::new(k)
            .unwrap()
            .sign_jwt("oauth-authz-req+jwt", claims)
            .unwrap()
    };
    let good = sign(&key, &request_object(now, |_| {}));
    // By value: the object's parameters win (the query's redirect_uri and scope are not
    // used, RFC 9101 §6.3).
    let r = s
        .authorize(&[
            ("client_id", "signed"),
            ("request", &good),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "admin"),
        ])
        .await;
    assert_to_login(&r);
    // Signed by another client, with a wrong iss, aud or client_id, expired, or with
    // alg none: invalid_request_object on a page.
    let none = format!(
        "{}.{}.",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none"}"#
        ),
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            request_object(now, |_| {}).to_string()
        )
    );
    for (what, jwt) in [
        (
            "another client's key",
            sign(&intruder, &request_object(now, |_| {})),
        ),
        (
            "iss",
            sign(&key, &request_object(now, |c| c["iss"] = "intruder".into())),
        ),
        (
            "aud",
            sign(
                &key,
                &request_object(now, |c| c["aud"] = "https://other.example".into()),
            ),
        ),
        (
            "client_id",
            sign(
                &key,
                &request_object(now, |c| c["client_id"] = "intruder".into()),
            ),
        ),
        (
            "expired",
            sign(
                &key,
                &request_object(now, |c| c["exp"] = (now - 120).into()),
            ),
        ),
        ("alg none", none),
    ] {
        let r = s
            .authorize(&[("client_id", "signed"), ("request", &jwt)])
            .await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST, "{what}: {}", r.2);
        assert!(r.2.contains("invalid_request_object"), "{what}: {}", r.2);
    }
    // The intruder's own object presented under the victim's client_id.
    let theirs = sign(
        &intruder,
        &request_object(now, |c| {
            c["iss"] = "intruder".into();
            c["client_id"] = "intruder".into();
        }),
    );
    let r = s
        .authorize(&[("client_id", "signed"), ("request", &theirs)])
        .await;
    assert_page(&r, "invalid_request_object");

    // Through PAR, the client authenticating with private_key_jwt.
    let assertion = |jti: &str| {
        sign(
            &key,
            &json!({"iss": "signed", "sub": "signed", "aud": format!("{ISSUER}/par"), "jti": jti, "exp": now + 60}),
        )
    };
    let push = |jti: &'static str, request: String| {
        let s = &s;
        let a = assertion(jti);
        async move {
            let res = s
                .http
                .post(s.url("/par"))
                .form(&[
                    ("client_id", "signed"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &a),
                    ("request", &request),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = push("a-1", good.clone()).await;
    assert_eq!(status, 201, "{body}");
    let r = s
        .authorize(&[
            ("client_id", "signed"),
            ("request_uri", body["request_uri"].as_str().unwrap()),
        ])
        .await;
    assert_to_login(&r);
    let (status, body) = push("a-2", sign(&intruder, &request_object(now, |_| {}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request_object");
    let (status, body) = push(
        "a-3",
        sign(
            &key,
            &request_object(now, |c| {
                c["redirect_uri"] = "https://evil.example/cb".into()
            }),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    let discovery: Value = s
        .http
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["request_parameter_supported"], true);
    assert_eq!(
        discovery["request_object_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
}

storage::backend_tests!(authz::MIGRATIONS;
    pushed_request_uris_are_single_use_short_lived_and_bound,
    pushing_checks_the_client_and_the_request,
    a_client_can_be_required_to_push,
    every_client_can_be_required_to_push,
    request_objects_by_value_and_through_par,
);
