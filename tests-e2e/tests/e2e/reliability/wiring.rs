//! What the reliability tests that need a sign-in share: the clients and the user they
//! register with the real CLIs, the environment that wires authz and idp together, and a
//! scripted browser login whose every hop can be sent to a chosen replica.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use demo::browser::{self, Browser, Page};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::code_flow::{authz_keys, cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::TEST_KEK;

/// The relying party's registered redirect URI and post-logout redirect URI.
pub const REDIRECT_URI: &str = "http://127.0.0.1/cb";
pub const LOGOUT_URI: &str = "http://127.0.0.1/bye";
/// The resource identifier of rs: the audience of every client's access tokens.
pub const RS_AUD: &str = "https://rs.example.test";
/// What the RP may ask for (it may also use client_credentials, which never grants
/// `openid`).
pub const SCOPE: &str = "openid profile offline_access items:write";
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
/// The client authz registers for idp (LoginFlow), and idp's Sessions API client.
pub const IDP_CLIENT: &str = "idp";
pub const AUTHZ_CLIENT: &str = "authz";
/// The same CSRF key on every idp replica: a form shown by one is posted to another.
const CSRF_KEY: [u8; 32] = [7; 32];

/// What [`register`] created.
pub struct Registered {
    /// `rp`'s secret (confidential client: code, refresh, client_credentials).
    pub rp_secret: String,
    /// `introspector`'s secret (may introspect, RFC 7662).
    pub introspector_secret: String,
    /// idp's secret at authz (LoginFlow), in a file.
    pub idp_secret_file: String,
    /// authz's secret at idp (Sessions API), in a file.
    pub authz_secret_file: String,
    /// The same secret, as text.
    pub authz_secret: String,
}

/// authz's database, KEK and keys (ES256 only), for the CLI and `serve`.
pub fn authz_base(db_url: &str) -> Vec<(String, String)> {
    let mut env = authz_keys();
    env.extend(pairs(&[
        ("AUTHZ__DATABASE__URL", db_url),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    env
}

/// Migrates authz's database and registers `idp`, `rp` and `introspector` with the real
/// CLI; with `idp_db`, migrates idp's and creates alice.
pub fn register(dir: &Path, authz_db: &str, idp_db: Option<&str>) -> Registered {
    let idp_secret = "idp-calls-authz-loginflow-0123456789";
    let authz_secret = "authz-calls-idp-sessions-0123456789";
    let idp_secret_file = write(dir, "idp-secret", idp_secret);
    let authz_secret_file = write(dir, "authz-secret", authz_secret);
    let env = authz_base(authz_db);
    migrate("authz", &env);
    cli(
        "authz",
        &env,
        &[
            "clients",
            "create",
            "--id",
            IDP_CLIENT,
            "--name",
            "idp",
            "--secret-file",
            &idp_secret_file,
            "--json",
        ],
    );
    let rp_secret = client(
        &env,
        &[
            "--id",
            "rp",
            "--name",
            "Example RP",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
            "--scope",
            SCOPE,
            "--redirect-uri",
            REDIRECT_URI,
            "--post-logout-redirect-uri",
            LOGOUT_URI,
            "--audience",
            RS_AUD,
        ],
    );
    let introspector_secret = client(
        &env,
        &[
            "--id",
            "introspector",
            "--name",
            "introspector",
            "--introspect",
            "true",
        ],
    );
    if let Some(idp_db) = idp_db {
        let idp_env = pairs(&[("IDP__DATABASE__URL", idp_db)]);
        migrate("idp", &idp_env);
        let password = write(dir, "password", PASSWORD);
        cli(
            "idp",
            &idp_env,
            &[
                "users",
                "create",
                "--username",
                USERNAME,
                "--email",
                "alice@example.test",
                "--password-file",
                &password,
                "--json",
            ],
        );
    }
    Registered {
        rp_secret,
        introspector_secret,
        idp_secret_file,
        authz_secret_file,
        authz_secret: authz_secret.to_owned(),
    }
}

/// Registers one more client with `authz clients create <args> --json` and returns its
/// generated secret.
pub fn client(env: &[(String, String)], args: &[&str]) -> String {
    let mut all = vec!["clients", "create"];
    all.extend_from_slice(args);
    all.push("--json");
    cli("authz", env, &all)["client_secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// authz's `serve` environment: its database, `issuer`, and idp at `idp_public` (the
/// browser's) and `idp_grpc` (Sessions API).
pub fn authz_env(
    reg: &Registered,
    db_url: &str,
    issuer: &str,
    idp_public: &str,
    idp_grpc: &str,
) -> Vec<(String, String)> {
    let mut env = authz_base(db_url);
    env.extend(pairs(&[
        ("AUTHZ__ISSUER", issuer),
        ("AUTHZ__LOGIN__IDP_CLIENT_ID", IDP_CLIENT),
        ("AUTHZ__IDP__PUBLIC_URL", idp_public),
        ("AUTHZ__IDP__GRPC_URL", idp_grpc),
        ("AUTHZ__IDP__CLIENT_ID", AUTHZ_CLIENT),
        ("AUTHZ__IDP__CLIENT_SECRET_FILE", &reg.authz_secret_file),
    ]));
    env
}

/// idp's `serve` environment: its database, `public_url`, and authz's LoginFlow at
/// `authz_grpc`.
pub fn idp_env(
    reg: &Registered,
    db_url: &str,
    public_url: &str,
    authz_grpc: &str,
) -> Vec<(String, String)> {
    pairs(&[
        ("IDP__DATABASE__URL", db_url),
        ("IDP__PUBLIC_URL", public_url),
        ("IDP__AUTHZ__GRPC_URL", authz_grpc),
        ("IDP__AUTHZ__CLIENT_ID", IDP_CLIENT),
        ("IDP__AUTHZ__CLIENT_SECRET_FILE", &reg.idp_secret_file),
        ("IDP__SESSIONS_API__CLIENT_ID", AUTHZ_CLIENT),
        (
            "IDP__SESSIONS_API__CLIENT_SECRET_FILE",
            &reg.authz_secret_file,
        ),
        ("IDP__CSRF__KEY", &STANDARD.encode(CSRF_KEY)),
    ])
}

/// The scripted browser of the demo: no automatic redirects, its own cookie jar.
pub fn browser() -> Browser {
    Browser::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    )
}

/// One authorization request of the RP (code + PKCE S256, RFC 7636): its URL below
/// `authorize` (the authorization endpoint), `state` and verifier.
pub struct Request {
    pub url: Url,
    pub state: String,
    pub verifier: String,
}

impl Request {
    pub fn new(authorize: &str, extra: &[(&str, &str)]) -> Self {
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
        Self {
            url: Url::parse_with_params(authorize, params).unwrap(),
            state,
            verifier,
        }
    }

    /// The code in the redirect `to` the RP (which must echo `state`).
    pub fn code(&self, to: &Url) -> String {
        assert!(to.as_str().starts_with(REDIRECT_URI), "{to}");
        let params: std::collections::HashMap<String, String> =
            to.query_pairs().into_owned().collect();
        assert_eq!(params.get("state"), Some(&self.state), "{to}");
        params
            .get("code")
            .unwrap_or_else(|| panic!("no code in {to}"))
            .clone()
    }
}

/// Runs the browser from `req` through idp's login and consent forms (alice, allow and
/// remember) until authz redirects to the RP, sending every request where `route` says
/// (it sees each URL the browser is about to visit or post to). Returns that redirect.
pub async fn sign_in(
    browser: &mut Browser,
    req: &Request,
    mut route: impl FnMut(&Url) -> Url,
) -> Url {
    let mut res = browser.get(&route(&req.url)).await.unwrap();
    for _ in 0..browser::MAX_HOPS {
        if res.status == StatusCode::SEE_OTHER || res.status == StatusCode::FOUND {
            let to = res.location.clone().unwrap();
            if to.as_str().starts_with(REDIRECT_URI) {
                return to;
            }
            res = browser.get(&route(&to)).await.unwrap();
        } else if res.status == StatusCode::OK && res.body.contains("name=\"password\"") {
            res = submit(
                browser,
                &res,
                &[
                    ("username", USERNAME),
                    ("password", PASSWORD),
                    ("action", "login"),
                ],
                &mut route,
            )
            .await;
        } else if res.status == StatusCode::OK && res.body.contains("consent_challenge") {
            res = submit(
                browser,
                &res,
                &[("remember", "yes"), ("action", "allow")],
                &mut route,
            )
            .await;
        } else {
            panic!("unexpected page {res:?}");
        }
    }
    panic!("no redirect to the RP after {} hops", browser::MAX_HOPS);
}

async fn submit(
    browser: &mut Browser,
    page: &Page,
    extra: &[(&str, &str)],
    route: &mut impl FnMut(&Url) -> Url,
) -> Page {
    let form = browser::forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no form in {page:?}"));
    assert_eq!(form.method, "post");
    let mut fields = form.hidden.clone();
    fields.extend(pairs(extra));
    browser.post(&route(&form.action), &fields).await.unwrap()
}

/// POSTs `form` to `url` with `rp`'s Basic credentials: status and JSON body.
pub async fn rp_post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let res = http
        .post(url)
        .basic_auth("rp", Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// Whether `token` is active per authz's RFC 7662 endpoint at `base`.
pub async fn active(http: &reqwest::Client, base: &str, reg: &Registered, token: &str) -> bool {
    let res: Value = http
        .post(format!("{base}/introspect"))
        .basic_auth("introspector", Some(&reg.introspector_secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["active"].as_bool().unwrap()
}
