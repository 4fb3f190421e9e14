//! The OpenID Connect authorization code flow through real authz, idp and rs processes,
//! driven by a scripted browser: an HTTP client that follows no redirect by itself, keeps
//! its own cookie jar and fills in idp's login and consent forms (hidden inputs and CSRF
//! token included).
//!
//! One set of processes runs, in order: code + PKCE sign-in of a confidential client (ID
//! token checked against the JWKS, userinfo, rs), refresh rotation and reuse detection, a
//! replayed code revoking its tokens, `prompt=none` with and without a session,
//! `max_age=0` forcing a new login, RP-initiated logout ending SSO at authz and idp (and
//! reaching the RP's back-channel logout receiver, a slow one the logout does not wait
//! for, with a logout token verified against the JWKS), and
//! `idp users disable` revoking the user's grants for good (re-enabling does not revive
//! an old refresh token).

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers, verify};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};

use demo::browser;

use crate::harness::{Service, TEST_KEK, free_port, workspace};

/// The resource identifier of rs: the audience of the RP's access tokens.
const RS_AUD: &str = "https://rs.example.test";
/// The RP's registered redirect URI and post-logout redirect URI.
const REDIRECT_URI: &str = "http://127.0.0.1/cb";
const LOGOUT_URI: &str = "http://127.0.0.1/bye";
const SCOPE: &str = "openid profile email offline_access items:read";
pub(crate) const USERNAME: &str = "alice";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// authz signs with ES256 only: no RSA keys to generate at start.
pub(crate) fn authz_keys() -> Vec<(String, String)> {
    pairs(&[
        ("AUTHZ__KEYS__ALGORITHMS", "[ES256]"),
        ("AUTHZ__KEYS__DEFAULT_ALG", "ES256"),
    ])
}

/// Runs a service's CLI (the built binary `<name> args…`) and parses its JSON output.
pub(crate) fn cli(name: &str, env: &[(String, String)], args: &[&str]) -> Value {
    let out = Command::new(crate::harness::binary(name))
        .current_dir(workspace())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `<name> migrate` (`cargo run -p <name> -- migrate`). Only `serve` and `migrate`
/// create a database, so a test that registers clients or users before starting the
/// service migrates first.
pub(crate) fn migrate(name: &str, env: &[(String, String)]) {
    let out = cli_output(name, env, &["migrate"]);
    assert!(
        out.status.success(),
        "{name} migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a service's CLI (the built binary `<name> args…`) and returns what it printed and
/// its exit status, whatever it was.
fn cli_output(name: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new(crate::harness::binary(name))
        .current_dir(workspace())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

pub(crate) fn random() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn sha256_b64(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, input))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The first form of a page, which must post: its action and hidden inputs.
fn hidden_form(page: &Url, html: &str) -> (Url, Vec<(String, String)>) {
    let form = browser::forms(page, html)
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no form in\n{html}"));
    assert_eq!(form.method, "post");
    (form.action, form.hidden)
}

/// What the browser got for one request.
pub(crate) type Response = browser::Page;

pub(crate) trait SeeOther {
    /// The `Location` of a 303, which must start with `prefix`.
    fn see_other(&self, prefix: &str) -> Url;
}

impl SeeOther for Response {
    fn see_other(&self, prefix: &str) -> Url {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{self:?}");
        let to = self.location.clone().unwrap();
        assert!(
            to.as_str().starts_with(prefix),
            "expected a redirect to {prefix}…, got {to}"
        );
        to
    }
}

/// The demo's scripted browser (no automatic redirects, its own cookie jar), visiting only
/// `localhost`, where its cookies live.
pub(crate) struct Browser(browser::Browser);

impl Browser {
    pub(crate) fn new() -> Self {
        Self(browser::Browser::new(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        ))
    }

    fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }

    pub(crate) async fn get(&mut self, url: &Url) -> Response {
        assert_eq!(url.host_str(), Some("localhost"), "{url}");
        self.0.get(url).await.unwrap()
    }

    async fn post(&mut self, url: &Url, form: &[(String, String)]) -> Response {
        assert_eq!(url.host_str(), Some("localhost"), "{url}");
        self.0.post(url, form).await.unwrap()
    }

    /// Fills in and submits idp's login form shown in `page`.
    pub(crate) async fn log_in(&mut self, page: &Response) -> Response {
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
        let (action, mut fields) = hidden_form(&page.url, &page.body);
        assert!(fields.iter().any(|(n, v)| n == "csrf" && !v.is_empty()));
        assert!(fields.iter().any(|(n, _)| n == "login_challenge"));
        fields.extend(pairs(&[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("action", "login"),
        ]));
        self.post(&action, &fields).await
    }

    /// Allows (and remembers) everything on idp's consent form shown in `page`.
    pub(crate) async fn consent(&mut self, page: &Response) -> Response {
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let (action, mut fields) = hidden_form(&page.url, &page.body);
        assert!(fields.iter().any(|(n, v)| n == "csrf" && !v.is_empty()));
        assert!(fields.iter().any(|(n, _)| n == "consent_challenge"));
        fields.extend(pairs(&[("remember", "yes"), ("action", "allow")]));
        self.post(&action, &fields).await
    }
}

/// One authorization request of the RP: its `state`, `nonce` and PKCE verifier.
struct Request {
    url: Url,
    state: String,
    nonce: String,
    verifier: String,
}

/// The addresses the RP knows, from discovery.
struct Op {
    issuer: String,
    idp: String,
    doc: Value,
    http: reqwest::Client,
    client_secret: String,
}

impl Op {
    fn endpoint(&self, name: &str) -> String {
        self.doc[name].as_str().unwrap().to_owned()
    }

    fn authorize(&self, extra: &[(&str, &str)]) -> Request {
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = sha256_b64(verifier.as_bytes());
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let url = Url::parse_with_params(&self.endpoint("authorization_endpoint"), params).unwrap();
        Request {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// The parameters of the redirect to the RP: it must go to the registered URI, echo
    /// `state` and name the issuer (RFC 9207).
    fn callback(&self, req: &Request, to: &Url) -> Map<String, Value> {
        assert!(
            to.as_str().starts_with(&format!("{REDIRECT_URI}?")),
            "not the registered redirect URI: {to}"
        );
        let params: Map<String, Value> = to
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        assert_eq!(params["state"], req.state.as_str(), "{to}");
        assert_eq!(params["iss"], self.issuer.as_str(), "{to}");
        params
    }

    fn code(&self, req: &Request, to: &Url) -> String {
        let params = self.callback(req, to);
        assert!(!params.contains_key("error"), "{to}");
        params["code"].as_str().unwrap().to_owned()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let res = self
            .http
            .post(self.endpoint("token_endpoint"))
            .basic_auth("rp", Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn redeem(&self, req: &Request, code: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &req.verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn active(&self, token: &str, secret: &str) -> bool {
        let res: Value = self
            .http
            .post(self.endpoint("introspection_endpoint"))
            .basic_auth("introspector", Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["active"].as_bool().unwrap()
    }

    /// Verifies an ID token against the JWKS; `nonce` is the request's, or `None` for a
    /// refreshed ID token, which carries none (OpenID Connect Core 1.0 §12.2).
    async fn id_token(&self, nonce: Option<&str>, tokens: &Value) -> Map<String, Value> {
        let jwks: Value = self
            .http
            .get(self.endpoint("jwks_uri"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut keys = Verifiers::new();
        assert!(keys.extend_from_jwks(&jwks) > 0, "{jwks}");
        let verified = verify(
            tokens["id_token"].as_str().unwrap(),
            &keys,
            &Expect {
                algorithms: &[Algorithm::ES256],
                typ: Some("JWT"),
            },
        )
        .unwrap();
        let claims = verified.claims;
        let now = unix_now();
        assert_eq!(claims["iss"], self.issuer.as_str());
        let aud = &claims["aud"];
        assert!(aud == "rp" || aud.as_array().is_some_and(|a| a.contains(&"rp".into())));
        assert_eq!(claims.get("nonce").and_then(Value::as_str), nonce);
        assert!(claims["exp"].as_i64().unwrap() > now);
        assert!(claims["iat"].as_i64().unwrap() <= now + 1);
        assert!(claims["auth_time"].as_i64().unwrap() <= now + 1);
        // at_hash: the left half of SHA-256 of the access token (ES256), OIDC Core §3.1.3.6.
        let access = tokens["access_token"].as_str().unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, access.as_bytes());
        assert_eq!(
            claims["at_hash"],
            URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]).as_str()
        );
        claims
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (authz_http, authz_grpc, idp_http, idp_grpc) =
        (free_port(), free_port(), free_port(), free_port());
    let issuer = format!("http://localhost:{authz_http}");
    let idp_url = format!("http://localhost:{idp_http}");

    // Credentials between the services, and the user's password.
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
    let password = write(dir, "password", PASSWORD);

    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}/authz.db", dir.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    migrate("authz", &authz_env);
    // logout: the RP's back-channel logout endpoint, answering only after 3 s.
    let receiver = crate::logout::Receiver::start(std::time::Duration::from_secs(3)).await;
    cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "idp",
            "--name",
            "idp",
            "--secret-file",
            &idp_secret,
            "--json",
        ],
    );
    let rp_secret = cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "rp",
            "--name",
            "Example RP",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            SCOPE,
            "--redirect-uri",
            REDIRECT_URI,
            "--post-logout-redirect-uri",
            LOGOUT_URI,
            "--audience",
            RS_AUD,
            "--backchannel-logout-uri",
            &receiver.url,
            "--backchannel-logout-session-required",
            "true",
            "--json",
        ],
    )["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspector_secret = cli(
        "authz",
        &authz_env,
        &[
            "clients",
            "create",
            "--id",
            "introspector",
            "--name",
            "introspector",
            "--introspect",
            "true",
            "--json",
        ],
    )["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let idp_db = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}/idp.db", dir.display()),
    )]);
    migrate("idp", &idp_db);
    let user = cli(
        "idp",
        &idp_db,
        &[
            "users",
            "create",
            "--username",
            USERNAME,
            "--email",
            "alice@example.test",
            "--email-verified",
            "--name",
            "Alice Example",
            "--given-name",
            "Alice",
            "--family-name",
            "Example",
            "--password-file",
            &password,
            "--json",
        ],
    );
    let user_id = user["id"].as_str().unwrap().to_owned();
    // `idp users …` while idp and authz run: the same database, and authz's LoginFlow.
    let idp_cli_env = pairs(&[
        (
            "IDP__DATABASE__URL",
            &format!("sqlite://{}/idp.db", dir.display()),
        ),
        (
            "IDP__AUTHZ__GRPC_URL",
            &format!("http://127.0.0.1:{authz_grpc}"),
        ),
        ("IDP__AUTHZ__CLIENT_ID", "idp"),
        ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
    ]);

    authz_env.extend(pairs(&[
        ("AUTHZ__ISSUER", &issuer),
        ("AUTHZ__HTTP__PORT", &authz_http.to_string()),
        ("AUTHZ__GRPC__PORT", &authz_grpc.to_string()),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", "idp"),
        ("AUTHZ__IDP__PUBLIC_URL", &idp_url),
        (
            "AUTHZ__IDP__GRPC_URL",
            &format!("http://127.0.0.1:{idp_grpc}"),
        ),
        ("AUTHZ__IDP__CLIENT_ID", "authz"),
        ("AUTHZ__IDP__CLIENT_SECRET_FILE", &authz_secret),
    ]));
    let _authz = Service::start("authz", dir, &authz_env).await;
    let _idp = Service::start(
        "idp",
        dir,
        &pairs(&[
            ("IDP__PUBLIC_URL", &idp_url),
            ("IDP__HTTP__PORT", &idp_http.to_string()),
            ("IDP__GRPC__PORT", &idp_grpc.to_string()),
            (
                "IDP__AUTHZ__GRPC_URL",
                &format!("http://127.0.0.1:{authz_grpc}"),
            ),
            ("IDP__AUTHZ__CLIENT_ID", "idp"),
            ("IDP__AUTHZ__CLIENT_SECRET_FILE", &idp_secret),
            ("IDP__SESSIONS_API__CLIENT_ID", "authz"),
            ("IDP__SESSIONS_API__CLIENT_SECRET_FILE", &authz_secret),
            ("IDP__CSRF__KEY", &STANDARD.encode([7u8; 32])),
        ]),
    )
    .await;
    let rs = Service::start(
        "rs",
        dir,
        &pairs(&[
            ("RS__GUARD__MODE", "jwt"),
            ("RS__GUARD__ISSUER", &issuer),
            ("RS__GUARD__AUDIENCE", RS_AUD),
        ]),
    )
    .await;

    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], issuer.as_str());
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    let op = Op {
        issuer: issuer.clone(),
        idp: idp_url.clone(),
        doc,
        http,
        client_secret: rp_secret,
    };
    let login_page = format!("{}/login?login_challenge=", op.idp);
    let consent_page = format!("{}/consent?consent_challenge=", op.idp);
    let resume = format!("{issuer}/authorize/resume?request=");

    // 1. Code + PKCE: authorize → idp login → resume → idp consent → resume → code.
    let mut browser = Browser::new();
    let before_login = unix_now();
    let req = op.authorize(&[]);
    let to = browser.get(&req.url).await.see_other(&login_page);
    let form = browser.get(&to).await;
    let to = browser.log_in(&form).await.see_other(&resume);
    assert!(browser.has("idp_session"));
    let to = browser.get(&to).await.see_other(&consent_page);
    assert!(browser.has("authz_session"));
    let form = browser.get(&to).await;
    assert!(form.body.contains("Example RP"), "{}", form.body);
    let to = browser.consent(&form).await.see_other(&resume);
    let to = browser.get(&to).await.see_other(REDIRECT_URI);
    let code = op.code(&req, &to);

    let (status, first) = op.redeem(&req, &code).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    let granted: Vec<&str> = first["scope"].as_str().unwrap().split(' ').collect();
    for scope in SCOPE.split(' ') {
        assert!(granted.contains(&scope), "{first}");
    }
    let id = op.id_token(Some(&req.nonce), &first).await;
    assert_eq!(id["sub"], user_id.as_str());
    let auth_time = id["auth_time"].as_i64().unwrap();
    assert!(auth_time >= before_login, "{id:?}");
    assert!(id["sid"].is_string(), "{id:?}");
    assert_eq!(id["acr"], "1", "{id:?}");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]), "{id:?}");
    let access = first["access_token"].as_str().unwrap();

    let info = op
        .http
        .get(op.endpoint("userinfo_endpoint"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "alice@example.test");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Alice Example");
    assert_eq!(info["given_name"], "Alice");
    assert_eq!(info["family_name"], "Example");

    let me = op
        .http
        .get(format!("{}/api/v1/me", rs.url("http")))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["sub"], user_id.as_str());
    assert_eq!(me["client_id"], "rp");
    assert_eq!(me["aud"], serde_json::json!([RS_AUD]));

    // 2. Refresh rotation; reusing the rotated token revokes the whole family.
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let (status, second) = op.refresh(old_refresh).await;
    assert_eq!(status, 200, "{second}");
    let newest_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(newest_refresh, old_refresh);
    assert_ne!(second["access_token"], first["access_token"]);
    let refreshed_id = op.id_token(None, &second).await;
    assert_eq!(refreshed_id["sub"], user_id.as_str());
    assert_eq!(
        refreshed_id["auth_time"], auth_time,
        "the original auth_time"
    );
    // A live refresh token introspects as active with its metadata (RFC 7662 §2.1-§2.2);
    // the rotated one does not.
    let answer: Value = op
        .http
        .post(op.endpoint("introspection_endpoint"))
        .basic_auth("introspector", Some(&introspector_secret))
        .form(&[
            ("token", newest_refresh),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "refresh_token");
    assert_eq!(answer["client_id"], "rp");
    assert_eq!(answer["sub"], user_id.as_str());
    assert_eq!(answer["iss"], op.issuer.as_str());
    assert!(answer["exp"].as_i64() > answer["iat"].as_i64(), "{answer}");
    assert!(!op.active(old_refresh, &introspector_secret).await);
    // Another confidential client cannot revoke it (RFC 7009 §2.1): refused, still active.
    let refused = op
        .http
        .post(op.endpoint("revocation_endpoint"))
        .basic_auth("introspector", Some(&introspector_secret))
        .form(&[("token", newest_refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "unauthorized_client", "{refused}");
    assert!(op.active(newest_refresh, &introspector_secret).await);

    let (status, reused) = op.refresh(old_refresh).await;
    assert_eq!(status, 400, "{reused}");
    assert_eq!(reused["error"], "invalid_grant");
    let (status, after) = op.refresh(newest_refresh).await;
    assert_eq!(status, 400, "the family is revoked: {after}");
    assert_eq!(after["error"], "invalid_grant");

    // 3. A replayed code revokes what the code gave: SSO and remembered consent give the
    // code at once.
    let req = op.authorize(&[]);
    let to = browser.get(&req.url).await.see_other(REDIRECT_URI);
    let code = op.code(&req, &to);
    let (status, third) = op.redeem(&req, &code).await;
    assert_eq!(status, 200, "{third}");
    let access = third["access_token"].as_str().unwrap();
    assert!(op.active(access, &introspector_secret).await);
    let (status, replay) = op.redeem(&req, &code).await;
    assert_eq!(status, 400, "{replay}");
    assert_eq!(replay["error"], "invalid_grant");
    assert!(!op.active(access, &introspector_secret).await);

    // 4. prompt=none: a code with the session, login_required without.
    let req = op.authorize(&[("prompt", "none")]);
    let to = browser.get(&req.url).await.see_other(REDIRECT_URI);
    let code = op.code(&req, &to);
    let (status, fourth) = op.redeem(&req, &code).await;
    assert_eq!(status, 200, "{fourth}");
    assert_eq!(
        op.id_token(Some(&req.nonce), &fourth).await["auth_time"],
        auth_time
    );

    let mut stranger = Browser::new();
    let req = op.authorize(&[("prompt", "none")]);
    let to = stranger.get(&req.url).await.see_other(REDIRECT_URI);
    let params = op.callback(&req, &to);
    assert_eq!(params["error"], "login_required", "{to}");
    assert!(!params.contains_key("code"));

    // 5. max_age=0: the login form again despite the session, then a new auth_time; right
    // after that login (the same second) max_age=0 still asks again.
    let mut newest = Value::Null;
    for _ in 0..2 {
        let req = op.authorize(&[("max_age", "0")]);
        let to = browser.get(&req.url).await.see_other(&login_page);
        let form = browser.get(&to).await;
        let to = browser.log_in(&form).await.see_other(&resume);
        let to = browser.get(&to).await.see_other(REDIRECT_URI);
        let code = op.code(&req, &to);
        let (status, tokens) = op.redeem(&req, &code).await;
        assert_eq!(status, 200, "{tokens}");
        let id = op.id_token(Some(&req.nonce), &tokens).await;
        assert!(id["auth_time"].as_i64().unwrap() >= auth_time, "{id:?}");
        newest = tokens;
    }

    // 6. RP-initiated logout ends SSO at authz and the session at idp.
    let logout = Url::parse_with_params(
        &op.endpoint("end_session_endpoint"),
        [
            ("id_token_hint", newest["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "bye-state"),
        ],
    )
    .unwrap();
    let started = std::time::Instant::now();
    let res = browser.get(&logout).await;
    let took = started.elapsed();
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{res:?}");
    assert_eq!(
        res.location.as_ref().unwrap().as_str(),
        format!("{LOGOUT_URI}?state=bye-state")
    );
    // The RP's back-channel receiver gets a logout token for this session; the logout
    // did not wait for the receiver's slow answer.
    assert!(
        took < std::time::Duration::from_millis(2_500),
        "the logout waited for the back-channel receiver: {took:?}"
    );
    let logout_token = receiver.first().await;
    let jwks: Value = op
        .http
        .get(op.endpoint("jwks_uri"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = crate::logout::verified_logout_token(&logout_token, &jwks, &issuer, "rp");
    let id_payload = newest["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let id: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(id_payload).unwrap()).unwrap();
    assert_eq!(claims["sid"], id["sid"], "the session that ended");
    assert_eq!(claims["sub"], user_id.as_str());

    let req = op.authorize(&[("prompt", "none")]);
    let to = browser.get(&req.url).await.see_other(REDIRECT_URI);
    assert_eq!(op.callback(&req, &to)["error"], "login_required", "{to}");
    // Without prompt=none idp asks for the password: its session cookie no longer counts.
    let req = op.authorize(&[]);
    let to = browser.get(&req.url).await.see_other(&login_page);
    let form = browser.get(&to).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"password\""), "{}", form.body);

    // 7. Disabling the user revokes its grants at authz; enabling it again does not bring
    // an old refresh token back.
    let to = browser.log_in(&form).await.see_other(&resume);
    let to = browser.get(&to).await.see_other(REDIRECT_URI);
    let code = op.code(&req, &to);
    let (status, seventh) = op.redeem(&req, &code).await;
    assert_eq!(status, 200, "{seventh}");
    let refresh = seventh["refresh_token"].as_str().unwrap();
    let access = seventh["access_token"].as_str().unwrap();
    assert!(op.active(access, &introspector_secret).await);
    // Its offline_access grant outlived the logout.
    let offline = newest["refresh_token"].as_str().unwrap();
    let (status, still) = op.refresh(offline).await;
    assert_eq!(status, 200, "{still}");
    let offline = still["refresh_token"].as_str().unwrap();

    let out = cli_output("idp", &idp_cli_env, &["users", "disable", USERNAME]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every unrevoked grant of alice (steps 4, 5 and 7), not only this one.
    let printed = String::from_utf8_lossy(&out.stdout);
    let grants: u32 = printed
        .split("authz revoked ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(grants >= 2, "{printed}");
    assert!(!op.active(access, &introspector_secret).await);
    for token in [refresh, offline] {
        let (status, body) = op.refresh(token).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    let out = cli_output("idp", &idp_cli_env, &["users", "enable", USERNAME]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for token in [refresh, offline] {
        let (status, body) = op.refresh(token).await;
        assert_eq!(status, 400, "the old refresh token stays dead: {body}");
        assert_eq!(body["error"], "invalid_grant");
    }
}
