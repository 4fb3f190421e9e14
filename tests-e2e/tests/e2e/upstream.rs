//! Sign-in through an upstream OpenID provider that is a second, real authz+idp pair
//! ("Corp SSO"): the first pair's idp lists it on its login page; a user signs in through
//! it (the upstream's own login and consent pages), goes through the first-login setup
//! step, and the relying party of the first pair receives an ID token with the local `sub`
//! (not the upstream's) and `amr: ["fed"]`. Then the provider signs the user in directly,
//! `kc_idp_hint` skips the login page, and `/account/providers` links and unlinks.
//!
//! The two pairs run on different hosts of the loopback (`localhost` and `127.0.0.1`), as
//! two sites would, so their cookies stay apart in the scripted browser.

use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};

use demo::browser::{self, Browser, Page};
use issuer::Algorithm;
use issuer::jws::{Expect, Verifiers, verify};

use crate::code_flow::{authz_keys, cli, migrate, pairs, random, sha256_b64, write};
use crate::harness::{Service, TEST_KEK, free_port};

pub(crate) const REDIRECT_URI: &str = "http://127.0.0.1/cb";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// One authz+idp pair.
pub(crate) struct Pair {
    _authz: Service,
    _idp: Service,
    pub(crate) issuer: String,
    pub(crate) idp_url: String,
    /// `idp users …` environment (its database).
    pub(crate) idp_db: Vec<(String, String)>,
}

/// Starts a pair on `host`; `clients` registers clients at its authz before the start
/// (returning whatever the test needs from them), `idp_env` configures its idp.
pub(crate) async fn pair(
    dir: &std::path::Path,
    host: &str,
    idp_http: u16,
    clients: impl FnOnce(&[(String, String)]),
    idp_env: &[(String, String)],
) -> Pair {
    let (authz_http, authz_grpc, idp_grpc) = (free_port(), free_port(), free_port());
    let issuer = format!("http://{host}:{authz_http}");
    let idp_url = format!("http://{host}:{idp_http}");
    let idp_secret = write(dir, "idp-secret", "idp-calls-authz-loginflow-0123456789");
    let authz_secret = write(dir, "authz-secret", "authz-calls-idp-sessions-0123456789");
    let mut authz_env = authz_keys();
    authz_env.extend(pairs(&[
        (
            "AUTHZ__DATABASE__URL",
            &format!("sqlite://{}/authz.db", dir.display()),
        ),
        ("AUTHZ__KEYS__ENCRYPTION_KEY", TEST_KEK),
    ]));
    migrate("authz", &authz_env);
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
    clients(&authz_env);
    let idp_db = pairs(&[(
        "IDP__DATABASE__URL",
        &format!("sqlite://{}/idp.db", dir.display()),
    )]);
    migrate("idp", &idp_db);
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
    let authz = Service::start("authz", dir, &authz_env).await;
    let mut env = idp_db.clone();
    env.extend(pairs(&[
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
    ]));
    env.extend_from_slice(idp_env);
    let idp = Service::start("idp", dir, &env).await;
    Pair {
        _authz: authz,
        _idp: idp,
        issuer,
        idp_url,
        idp_db,
    }
}

fn create_user(
    pair_db: &[(String, String)],
    dir: &std::path::Path,
    name: &str,
    email: &str,
) -> String {
    let password = write(dir, "password", PASSWORD);
    cli(
        "idp",
        pair_db,
        &[
            "users",
            "create",
            "--username",
            name,
            "--email",
            email,
            "--email-verified",
            "--password-file",
            &password,
            "--json",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn see_other(page: &Page, prefix: &str) -> Url {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{page:?}");
    let to = page.location.clone().unwrap();
    assert!(
        to.as_str().starts_with(prefix),
        "expected {prefix}…, got {to}"
    );
    to
}

pub(crate) fn form_to(page: &Page, path: &str) -> browser::Form {
    browser::forms(&page.url, &page.body)
        .unwrap()
        .into_iter()
        .find(|f| f.action.path() == path)
        .unwrap_or_else(|| panic!("no form posting to {path} in {}", page.body))
}

pub(crate) struct Rp {
    pub(crate) issuer: String,
    pub(crate) secret: String,
    pub(crate) http: reqwest::Client,
}

impl Rp {
    pub(crate) fn authorize(&self, extra: &[(&str, &str)]) -> (Url, String, String) {
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = sha256_b64(verifier.as_bytes());
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let url = Url::parse_with_params(&format!("{}/authorize", self.issuer), params).unwrap();
        (url, nonce, verifier)
    }

    /// Redeems the code of `to` and returns the verified ID token claims.
    pub(crate) async fn id_token(
        &self,
        to: &Url,
        nonce: &str,
        verifier: &str,
    ) -> Map<String, Value> {
        let code = to
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code in {to}"))
            .1
            .into_owned();
        let tokens: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth("rp", Some(&self.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let doc: Value = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwks: Value = self
            .http
            .get(doc["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut keys = Verifiers::new();
        keys.extend_from_jwks(&jwks);
        let claims = verify(
            tokens["id_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{tokens}")),
            &keys,
            &Expect {
                algorithms: &[Algorithm::ES256],
                typ: Some("JWT"),
            },
        )
        .unwrap()
        .claims;
        assert_eq!(claims["nonce"], nonce);
        claims
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_a_second_real_pair() {
    let upstream_dir = tempfile::tempdir().unwrap();
    let main_dir = tempfile::tempdir().unwrap();
    let main_idp_http = free_port();
    let callback = format!("http://localhost:{main_idp_http}/upstream/corp/callback");

    // The upstream pair, on 127.0.0.1: it knows the first pair's idp as a client.
    let mut corp_secret = String::new();
    let upstream = pair(
        upstream_dir.path(),
        "127.0.0.1",
        free_port(),
        |env| {
            corp_secret = cli(
                "authz",
                env,
                &[
                    "clients",
                    "create",
                    "--id",
                    "main-idp",
                    "--name",
                    "Main idp",
                    "--grant-type",
                    "authorization_code",
                    "--scope",
                    "openid profile email",
                    "--redirect-uri",
                    &callback,
                    "--json",
                ],
            )["client_secret"]
                .as_str()
                .unwrap()
                .to_owned();
        },
        &[],
    )
    .await;
    let carol_upstream = create_user(
        &upstream.idp_db,
        upstream_dir.path(),
        "carol",
        "carol@corp.example",
    );
    let dave_upstream = create_user(
        &upstream.idp_db,
        upstream_dir.path(),
        "dave",
        "dave@corp.example",
    );
    let secret_file = write(main_dir.path(), "corp-secret", &corp_secret);

    // The first pair, on localhost, with "Demo Corp SSO" as upstream.
    let mut rp_secret = String::new();
    let main = pair(
        main_dir.path(),
        "localhost",
        main_idp_http,
        |env| {
            rp_secret = cli(
                "authz",
                env,
                &[
                    "clients",
                    "create",
                    "--id",
                    "rp",
                    "--name",
                    "Example RP",
                    "--grant-type",
                    "authorization_code",
                    "--scope",
                    "openid profile email",
                    "--redirect-uri",
                    REDIRECT_URI,
                    "--json",
                ],
            )["client_secret"]
                .as_str()
                .unwrap()
                .to_owned();
        },
        &pairs(&[
            ("IDP__UPSTREAMS__PROVIDERS__CORP__KIND", "oidc"),
            (
                "IDP__UPSTREAMS__PROVIDERS__CORP__DISPLAY_NAME",
                "Demo Corp SSO",
            ),
            ("IDP__UPSTREAMS__PROVIDERS__CORP__ISSUER", &upstream.issuer),
            ("IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_ID", "main-idp"),
            (
                "IDP__UPSTREAMS__PROVIDERS__CORP__CLIENT_SECRET_FILE",
                &secret_file,
            ),
        ]),
    )
    .await;
    let alice = create_user(&main.idp_db, main_dir.path(), "alice", "alice@example.test");
    let rp = Rp {
        issuer: main.issuer.clone(),
        secret: rp_secret,
        http: reqwest::Client::new(),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // 1. First login through the button, with the setup step.
    let mut b = Browser::new(http.clone());
    let (url, nonce, verifier) = rp.authorize(&[]);
    let to = see_other(
        &b.get(&url).await.unwrap(),
        &format!("{}/login?", main.idp_url),
    );
    let login = b.get(&to).await.unwrap();
    assert!(
        login.body.contains("Sign in with Demo Corp SSO"),
        "{}",
        login.body
    );
    let button = form_to(&login, "/upstream/start");
    let at_corp = b.submit(&button, &[("provider", "corp")]).await.unwrap();
    let to = see_other(&at_corp, &format!("{}/authorize?", upstream.issuer));
    let res = b.get(&to).await.unwrap();
    let (back, filled) = b
        .through_login(res, &callback, "carol", PASSWORD)
        .await
        .unwrap();
    assert_eq!(filled[0], "login", "the upstream's own login page");
    let setup = see_other(
        &b.get(&back).await.unwrap(),
        &format!("{}/upstream/setup?pending=", main.idp_url),
    );
    let page = b.get(&setup).await.unwrap();
    assert!(page.body.contains("Finish signing up"), "{}", page.body);
    assert!(
        page.body.contains("carol@corp.example"),
        "the verified email prefilled"
    );
    let form = form_to(&page, "/upstream/setup");
    let done = b
        .submit(&form, &[("username", "carol-main"), ("action", "create")])
        .await
        .unwrap();
    let res = b.get(&see_other(&done, &main.issuer)).await.unwrap();
    let (to, filled) = b.through_login(res, REDIRECT_URI, "", "").await.unwrap();
    assert_eq!(filled, vec!["consent"]);
    let id = rp.id_token(&to, &nonce, &verifier).await;
    let carol_sub = id["sub"].as_str().unwrap().to_owned();
    assert_ne!(carol_sub, carol_upstream, "the upstream's sub never leaks");
    assert_eq!(id["amr"], serde_json::json!(["fed"]), "{id:?}");
    assert_eq!(id["acr"], "1");

    // 2. kc_idp_hint in a fresh browser: no login page, the upstream signs carol in, the
    // linked account answers directly with the same sub.
    let mut b2 = Browser::new(http.clone());
    let (url, nonce, verifier) = rp.authorize(&[("kc_idp_hint", "corp")]);
    let to = see_other(
        &b2.get(&url).await.unwrap(),
        &format!("{}/login?", main.idp_url),
    );
    assert!(to.as_str().contains("kc_idp_hint=corp"), "{to}");
    let to = see_other(
        &b2.get(&to).await.unwrap(),
        &format!("{}/authorize?", upstream.issuer),
    );
    let res = b2.get(&to).await.unwrap();
    let (back, _) = b2
        .through_login(res, &callback, "carol", PASSWORD)
        .await
        .unwrap();
    let res = b2.get(&back).await.unwrap();
    let (to, _) = b2.through_login(res, REDIRECT_URI, "", "").await.unwrap();
    let id = rp.id_token(&to, &nonce, &verifier).await;
    assert_eq!(id["sub"], carol_sub.as_str());

    // 3. carol cannot unlink her only way to sign in.
    let providers = Url::parse(&format!("{}/account/providers", main.idp_url)).unwrap();
    let page = b2.get(&providers).await.unwrap();
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let unlink = form_to(&page, "/account/providers");
    let refused = b2.submit(&unlink, &[("action", "unlink")]).await.unwrap();
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

    // 4. alice (password) links dave's corp account, then unlinks it.
    let mut b3 = Browser::new(http.clone());
    let (url, _, _) = rp.authorize(&[]);
    let res = b3.get(&url).await.unwrap();
    b3.through_login(res, REDIRECT_URI, "alice", PASSWORD)
        .await
        .unwrap();
    let page = b3.get(&providers).await.unwrap();
    assert!(
        page.body.contains("No provider is linked yet."),
        "{}",
        page.body
    );
    let link = form_to(&page, "/account/providers");
    let at_corp = b3.submit(&link, &[("provider", "corp")]).await.unwrap();
    let res = b3
        .get(&see_other(&at_corp, &upstream.issuer))
        .await
        .unwrap();
    let (back, _) = b3
        .through_login(res, &callback, "dave", PASSWORD)
        .await
        .unwrap();
    let linked = b3.get(&back).await.unwrap();
    let to = see_other(
        &linked,
        &format!("{}/account/providers?result=linked", main.idp_url),
    );
    let page = b3.get(&to).await.unwrap();
    assert!(page.body.contains("dave@corp.example"), "{}", page.body);
    // dave's corp account now signs alice in.
    let mut b4 = Browser::new(http.clone());
    let (url, nonce, verifier) = rp.authorize(&[("kc_idp_hint", "corp")]);
    let res = b4.get(&url).await.unwrap();
    let res = b4.get(&see_other(&res, &main.idp_url)).await.unwrap();
    let res = b4.get(&see_other(&res, &upstream.issuer)).await.unwrap();
    let (back, _) = b4
        .through_login(res, &callback, "dave", PASSWORD)
        .await
        .unwrap();
    let res = b4.get(&back).await.unwrap();
    let (to, _) = b4.through_login(res, REDIRECT_URI, "", "").await.unwrap();
    let id = rp.id_token(&to, &nonce, &verifier).await;
    assert_eq!(id["sub"], alice.as_str());
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    assert_ne!(id["sub"], dave_upstream.as_str());
    // alice has a password: she may unlink.
    let unlink = form_to(&page, "/account/providers");
    let unlinked = b3.submit(&unlink, &[("action", "unlink")]).await.unwrap();
    assert_eq!(unlinked.status, StatusCode::OK, "{}", unlinked.body);
    assert!(unlinked.body.contains("No provider is linked yet."));
}
