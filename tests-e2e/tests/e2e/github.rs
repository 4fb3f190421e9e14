//! Sign-in through GitHub against the real authz+idp binaries, with GitHub played by a small
//! local server that follows GitHub's documented API (no network here): the OAuth web flow
//! ("Authorizing OAuth apps": `GET /login/oauth/authorize`, `POST
//! /login/oauth/access_token` answering JSON on `Accept: application/json`, errors as 200
//! with an `error` member) and the REST API (`GET /user`, `GET /user/emails`, which want
//! `Authorization: Bearer`, `Accept: application/vnd.github+json` and a `User-Agent`).
//! A user signs in (first-login setup step, `amr: ["fed"]` at the relying party); an account
//! without a verified primary email is refused and nothing is created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use demo::browser::Browser;

use crate::code_flow::{cli, pairs, random, sha256_b64, write};
use crate::harness::free_port;
use crate::upstream::{REDIRECT_URI, Rp, form_to, pair, see_other};

const CLIENT_ID: &str = "Iv1.e2e0123456789";
const CLIENT_SECRET: &str = "github-secret-for-e2e-0123456789";

/// GitHub accounts by login: (numeric id, name, `/user/emails` answer).
type Accounts = HashMap<String, (u64, String, Value)>;

#[derive(Default)]
struct GhState {
    users: Accounts,
    /// Authorization codes: login, PKCE challenge, redirect_uri.
    codes: HashMap<String, (String, String, String)>,
    tokens: HashMap<String, String>,
}

type Gh = web::Data<Arc<Mutex<GhState>>>;

/// Starts the GitHub-shaped server; returns its base URL (the API under `/api`, as on
/// GitHub Enterprise Server).
fn start_github(users: Accounts) -> String {
    let state = Arc::new(Mutex::new(GhState {
        users,
        ..GhState::default()
    }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .route("/login/oauth/authorize", web::get().to(authorize))
            .route("/login/oauth/access_token", web::post().to(access_token))
            .route("/api/user", web::get().to(user))
            .route("/api/user/emails", web::get().to(emails))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("http://{addr}")
}

/// The user "signs in at GitHub" as `login` (GitHub's own `login` parameter names the
/// account to use) and authorizes the app: back to `redirect_uri` with `code` and `state`.
async fn authorize(state: Gh, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let q = query.into_inner();
    let Some(mut to) = q.get("redirect_uri").and_then(|u| Url::parse(u).ok()) else {
        return HttpResponse::BadRequest().body("redirect_uri");
    };
    let mut s = state.lock().unwrap();
    let login = q.get("login").cloned().unwrap_or_default();
    if s.users.contains_key(&login) && q.get("client_id").map(String::as_str) == Some(CLIENT_ID) {
        let code = random();
        let challenge = q.get("code_challenge").cloned().unwrap_or_default();
        s.codes
            .insert(code.clone(), (login, challenge, to.as_str().to_owned()));
        to.query_pairs_mut().append_pair("code", &code);
    } else {
        to.query_pairs_mut().append_pair("error", "access_denied");
    }
    to.query_pairs_mut()
        .append_pair("state", q.get("state").map_or("", String::as_str));
    HttpResponse::Found()
        .insert_header(("location", to.as_str()))
        .finish()
}

async fn access_token(
    state: Gh,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let f = form.into_inner();
    let wants_json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if !wants_json {
        // GitHub's default is application/x-www-form-urlencoded; idp must ask for JSON.
        return HttpResponse::NotAcceptable().finish();
    }
    let mut s = state.lock().unwrap();
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return HttpResponse::Ok().json(json!({ "error": "incorrect_client_credentials" }));
    }
    let Some((login, challenge, redirect_uri)) = f.get("code").and_then(|c| s.codes.remove(c))
    else {
        return HttpResponse::Ok().json(json!({ "error": "bad_verification_code" }));
    };
    if f.get("code_verifier").map(|v| sha256_b64(v.as_bytes())) != Some(challenge)
        || f.get("redirect_uri").is_some_and(|r| *r != redirect_uri)
    {
        return HttpResponse::Ok().json(json!({ "error": "bad_verification_code" }));
    }
    let token = format!("gho_{}", random());
    s.tokens.insert(token.clone(), login);
    HttpResponse::Ok().json(
        json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,user:email" }),
    )
}

fn caller(s: &GhState, req: &HttpRequest) -> Option<String> {
    let token = req
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let has_agent = req.headers().get("user-agent").is_some();
    let api = req.headers().get("accept").and_then(|v| v.to_str().ok())
        == Some("application/vnd.github+json");
    (has_agent && api)
        .then(|| s.tokens.get(token).cloned())
        .flatten()
}

async fn user(state: Gh, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    let Some(login) = caller(&s, &req) else {
        return HttpResponse::Unauthorized().json(json!({ "message": "Requires authentication" }));
    };
    let (id, name, _) = &s.users[&login];
    HttpResponse::Ok().json(json!({ "login": login, "id": id, "name": name, "type": "User" }))
}

async fn emails(state: Gh, req: HttpRequest) -> HttpResponse {
    let s = state.lock().unwrap();
    let Some(login) = caller(&s, &req) else {
        return HttpResponse::Unauthorized().json(json!({ "message": "Requires authentication" }));
    };
    HttpResponse::Ok().json(s.users[&login].2.clone())
}

/// `url` with GitHub's `login` parameter added: the account the user signs in with there.
fn as_github_user(url: &Url, login: &str) -> Url {
    let mut url = url.clone();
    url.query_pairs_mut().append_pair("login", login);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_a_github_shaped_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut users = Accounts::new();
    users.insert(
        "octocat".into(),
        (
            583_231,
            "The Octocat".into(),
            json!([
                { "email": "octo@users.noreply.github.com", "primary": false, "verified": true, "visibility": null },
                { "email": "octocat@github.example", "primary": true, "verified": true, "visibility": "public" },
            ]),
        ),
    );
    users.insert(
        "unverified".into(),
        (
            9_000_001,
            "Not Verified".into(),
            json!([
                { "email": "unverified@github.example", "primary": true, "verified": false, "visibility": "public" },
                { "email": "other@github.example", "primary": false, "verified": true, "visibility": null },
            ]),
        ),
    );
    let github = start_github(users);
    let secret_file = write(dir.path(), "github-secret", CLIENT_SECRET);
    let mut rp_secret = String::new();
    let main = pair(
        dir.path(),
        "localhost",
        free_port(),
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
            ("IDP__UPSTREAMS__PROVIDERS__GITHUB__KIND", "github"),
            ("IDP__UPSTREAMS__PROVIDERS__GITHUB__DISPLAY_NAME", "GitHub"),
            ("IDP__UPSTREAMS__PROVIDERS__GITHUB__CLIENT_ID", CLIENT_ID),
            (
                "IDP__UPSTREAMS__PROVIDERS__GITHUB__CLIENT_SECRET_FILE",
                &secret_file,
            ),
            ("IDP__UPSTREAMS__PROVIDERS__GITHUB__GITHUB_URL", &github),
            (
                "IDP__UPSTREAMS__PROVIDERS__GITHUB__GITHUB_API_URL",
                &format!("{github}/api"),
            ),
        ]),
    )
    .await;
    let rp = Rp {
        issuer: main.issuer.clone(),
        secret: rp_secret,
        http: reqwest::Client::new(),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = format!("{}/upstream/github/callback", main.idp_url);

    // 1. octocat: the button, GitHub, the setup step with the verified primary email, then
    // the relying party gets the local sub with amr ["fed"].
    let mut b = Browser::new(http.clone());
    let (url, nonce, verifier) = rp.authorize(&[]);
    let to = see_other(
        &b.get(&url).await.unwrap(),
        &format!("{}/login?", main.idp_url),
    );
    let login = b.get(&to).await.unwrap();
    assert!(login.body.contains("Sign in with GitHub"), "{}", login.body);
    let button = form_to(&login, "/upstream/start");
    let at_github = b.submit(&button, &[("provider", "github")]).await.unwrap();
    let to = see_other(&at_github, &format!("{github}/login/oauth/authorize?"));
    let query: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], callback);
    assert_eq!(query["code_challenge_method"], "S256");
    let res = b.get(&as_github_user(&to, "octocat")).await.unwrap();
    assert_eq!(res.status, StatusCode::FOUND, "{res:?}");
    let back = res.location.clone().unwrap();
    assert!(back.as_str().starts_with(&callback), "{back}");
    let setup = see_other(
        &b.get(&back).await.unwrap(),
        &format!("{}/upstream/setup?pending=", main.idp_url),
    );
    let page = b.get(&setup).await.unwrap();
    assert!(page.body.contains("Finish signing up"), "{}", page.body);
    assert!(
        page.body.contains("octocat@github.example"),
        "the verified primary email: {}",
        page.body
    );
    assert!(
        !page.body.contains("octo@users.noreply.github.com"),
        "not the primary email"
    );
    let form = form_to(&page, "/upstream/setup");
    let done = b
        .submit(&form, &[("username", "octocat"), ("action", "create")])
        .await
        .unwrap();
    let res = b.get(&see_other(&done, &main.issuer)).await.unwrap();
    let (to, filled) = b.through_login(res, REDIRECT_URI, "", "").await.unwrap();
    assert_eq!(filled, vec!["consent"]);
    let id = rp.id_token(&to, &nonce, &verifier).await;
    assert_eq!(id["amr"], json!(["fed"]), "{id:?}");
    assert_ne!(id["sub"], "583231", "GitHub's id never leaks as sub");
    let user = cli("idp", &main.idp_db, &["users", "show", "octocat", "--json"]);
    assert_eq!(id["sub"], user["id"], "{user}");

    // 2. An account whose primary email is not verified is refused: an error page, and no
    // account appears.
    let mut b2 = Browser::new(http.clone());
    let (url, _, _) = rp.authorize(&[]);
    let to = see_other(
        &b2.get(&url).await.unwrap(),
        &format!("{}/login?", main.idp_url),
    );
    let login = b2.get(&to).await.unwrap();
    let button = form_to(&login, "/upstream/start");
    let at_github = b2.submit(&button, &[("provider", "github")]).await.unwrap();
    let to = see_other(&at_github, &format!("{github}/login/oauth/authorize?"));
    let res = b2.get(&as_github_user(&to, "unverified")).await.unwrap();
    let back = res.location.clone().unwrap();
    let refused = b2.get(&back).await.unwrap();
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{refused:?}");
    assert!(refused.location.is_none(), "{refused:?}");
    assert!(
        refused.body.contains("no verified primary email"),
        "{}",
        refused.body
    );
    let listed = cli("idp", &main.idp_db, &["users", "list", "--json"]);
    let listed = listed.as_array().unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(listed.len(), 1, "only octocat: {listed:?}");
}
