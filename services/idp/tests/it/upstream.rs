//! Sign-in through upstream providers against local stand-ins that follow the providers'
//! documented APIs (`upstream_fakes`): first login with the setup step, linking by password
//! on a verified email, every bad callback, GitHub, `/account/providers`, `kc_idp_hint`.

use std::time::Duration;

use idp::upstream::{ProviderConfig, ProviderKind};
use proto::authz::v1::{AcceptLoginRequest, LoginRequest};
use serde_json::json;
use storage::testing::TestDatabase;

use crate::fake_authz::{Call, client};
use crate::harness::{Browser, Idp, PASSWORD, Page, start};
use crate::upstream_fakes::{CLIENT_ID, CLIENT_SECRET, FakeGithub, FakeOp, Spoil};

const RESUME: &str = "https://authz.test/resume";

fn oidc_provider(issuer: &str) -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Oidc,
        display_name: "Corp SSO".into(),
        issuer: Some(issuer.parse().unwrap()),
        client_id: CLIENT_ID.into(),
        client_secret: Some(config::Secret::new(CLIENT_SECRET.into())),
        ..ProviderConfig::default()
    }
}

async fn with_op(db: TestDatabase) -> (Idp, FakeOp) {
    let op = FakeOp::start().await;
    let issuer = op.issuer.clone();
    let idp = start(db, move |c| {
        c.upstreams
            .providers
            .insert("corp".into(), oidc_provider(&issuer));
    })
    .await;
    (idp, op)
}

fn login(idp: &Idp, challenge: &str) {
    idp.authz.add_login(
        LoginRequest {
            challenge: challenge.into(),
            client: client("Demo App"),
            ..LoginRequest::default()
        },
        &format!("{RESUME}?login={challenge}"),
    );
}

fn accepted(idp: &Idp) -> Vec<AcceptLoginRequest> {
    idp.authz
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::AcceptLogin(a) => Some(a),
            _ => None,
        })
        .collect()
}

/// The value of hidden input `name` in the form posting to `action`.
fn hidden_in(page: &Page, action: &str, name: &str) -> String {
    let at = page
        .body
        .find(&format!(r#"action="/{action}""#))
        .unwrap_or_else(|| panic!("no form {action} in {}", page.body));
    let rest = Page {
        body: page.body[at..].to_owned(),
        status: page.status,
        location: None,
        set_cookies: Vec::new(),
        headers: page.headers.clone(),
    };
    rest.hidden(name)
}

/// Clicks the provider button of the login page of `challenge`: the 303 to the upstream.
async fn click_provider(browser: &mut Browser, challenge: &str, provider: &str) -> String {
    let form = browser
        .get(&format!("/login?login_challenge={challenge}"))
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains(&format!(r#"id="provider-{provider}""#)),
        "{}",
        form.body
    );
    let csrf = hidden_in(&form, "upstream/start", "csrf");
    let started = browser
        .post(
            "/upstream/start",
            &[
                ("csrf", &csrf),
                ("login_challenge", challenge),
                ("provider", provider),
            ],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location.unwrap()
}

/// The upstream signs `who` in (`login_hint` for the OpenID fake, `login` for GitHub) and
/// answers with the redirect back to idp: returned as a path of idp.
async fn upstream_answers(idp: &Idp, authorize: &str, param: &str, who: &str) -> String {
    let url = format!("{authorize}&{param}={who}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    // The registered redirect URI is below public_url; the test reaches idp directly.
    assert_eq!(
        to.as_str().split('?').next().unwrap(),
        format!("{}{}", idp_public(idp), to.path())
    );
    format!("{}?{}", to.path(), to.query().unwrap_or_default())
}

/// A full first sign-in through `corp` up to the callback's answer.
async fn callback(idp: &Idp, browser: &mut Browser, challenge: &str, who: &str) -> Page {
    login(idp, challenge);
    let authorize = click_provider(browser, challenge, "corp").await;
    let back = upstream_answers(idp, &authorize, "login_hint", who).await;
    browser.get(&back).await
}

async fn first_login_creates_an_account_after_setup(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user(
        "up-123",
        json!({"preferred_username": "Carol.Up", "email": "carol@corp.example", "email_verified": true, "name": "Carol Up"}),
    );
    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    let authorize = click_provider(&mut browser, "c1", "corp").await;
    let url = url::Url::parse(&authorize).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert!(authorize.starts_with(&format!("{}/authorize?", op.issuer)));
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/upstream/corp/callback", idp_public(&idp))
    );
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32);

    let back = upstream_answers(&idp, &authorize, "login_hint", "up-123").await;
    let setup = browser.get(&back).await;
    assert_eq!(setup.status, 303, "{}", setup.body);
    let setup_url = setup.location.unwrap();
    assert!(
        setup_url.starts_with("/upstream/setup?pending="),
        "{setup_url}"
    );
    assert!(
        accepted(&idp).is_empty(),
        "nothing is accepted before the setup"
    );

    let page = browser.get(&setup_url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Finish signing up"));
    assert!(
        page.body.contains(r#"value="carol.up""#),
        "username proposed: {}",
        page.body
    );
    assert!(
        page.body.contains("carol@corp.example"),
        "verified email prefilled"
    );
    let pending = page.hidden("pending");
    let csrf = page.hidden("csrf");

    // No CSRF token: refused, nothing created.
    let forged = browser
        .post(
            "/upstream/setup",
            &[
                ("pending", &pending),
                ("username", "carol"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    // A taken username is asked again.
    idp.user("taken").await;
    let taken = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "taken"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(taken.status, 200);
    assert!(
        taken.body.contains("That username is taken"),
        "{}",
        taken.body
    );
    assert!(
        idp.users.get("carol@corp.example").await.is_err(),
        "no half-created account"
    );

    let done = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "carol"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(&*format!("{RESUME}?login=c1"))
    );
    assert!(done.set_cookie("idp_session").is_some());
    let carol = idp.users.get("carol").await.unwrap();
    assert_eq!(carol.profile.email.as_deref(), Some("carol@corp.example"));
    assert!(carol.profile.email_verified);
    let a = &accepted(&idp)[0];
    assert_eq!(a.subject, carol.id);
    assert_ne!(a.subject, "up-123", "the upstream sub never leaks");
    assert_eq!(a.amr, vec!["fed".to_owned()], "RFC 8176 fed");
    assert_eq!(a.acr, "1");
    // The account has no password: password sign-in fails.
    let mut other = Browser::new(&idp);
    login(&idp, "c-pw");
    let pw = other.login("c-pw", "carol", "").await;
    assert_eq!(pw.status, 200);

    // Completing the setup again: gone.
    let again = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "carol2"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(again.status, 410);

    // The next sign-in through corp goes straight through, in a fresh browser.
    let mut fresh = Browser::new(&idp);
    let next = callback(&idp, &mut fresh, "c2", "up-123").await;
    assert_eq!(next.status, 303, "{}", next.body);
    assert_eq!(
        next.location.as_deref(),
        Some(&*format!("{RESUME}?login=c2"))
    );
    assert_eq!(accepted(&idp).last().unwrap().subject, carol.id);
}

fn idp_public(_idp: &Idp) -> String {
    // The harness keeps the default public_url.
    "http://localhost:8081".to_owned()
}

async fn verified_email_of_an_account_links_only_with_its_password(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    let alice = idp.user("alice").await;
    op.add_user(
        "up-alice",
        json!({"preferred_username": "al", "email": "ALICE@example.com", "email_verified": true}),
    );
    let mut browser = Browser::new(&idp);
    let cb = callback(&idp, &mut browser, "c1", "up-alice").await;
    let page = browser.get(&cb.location.unwrap()).await;
    assert!(page.body.contains("Link your account"), "{}", page.body);
    assert!(page.body.contains(r#"type="password""#));
    let (pending, csrf) = (page.hidden("pending"), page.hidden("csrf"));
    let wrong = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("password", "wrong password"),
                ("action", "link"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert!(accepted(&idp).is_empty());
    // Creating a new account instead is not offered: the email is taken.
    let create = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "al"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(create.status, 400);
    let ok = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("password", PASSWORD),
                ("action", "link"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(accepted(&idp)[0].subject, alice.id);
    // Now linked: the next upstream login signs alice in directly.
    let mut fresh = Browser::new(&idp);
    let next = callback(&idp, &mut fresh, "c2", "up-alice").await;
    assert_eq!(next.status, 303);
    assert_eq!(
        next.location.as_deref(),
        Some(&*format!("{RESUME}?login=c2"))
    );
    let last = accepted(&idp).last().unwrap().clone();
    assert_eq!(last.subject, alice.id);
    assert_eq!(last.amr, vec!["fed".to_owned()]);
}

async fn unverified_email_is_never_trusted(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    idp.user("alice").await;
    op.add_user(
        "up-mallory",
        json!({"preferred_username": "alice", "email": "alice@example.com", "email_verified": false}),
    );
    let mut browser = Browser::new(&idp);
    let cb = callback(&idp, &mut browser, "c1", "up-mallory").await;
    let page = browser.get(&cb.location.unwrap()).await;
    assert!(
        page.body.contains("Finish signing up"),
        "no linking offer: {}",
        page.body
    );
    assert!(!page.body.contains("alice@example.com"), "{}", page.body);
    let (pending, csrf) = (page.hidden("pending"), page.hidden("csrf"));
    let done = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &csrf),
                ("pending", &pending),
                ("username", "mallory"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mallory = idp.users.get("mallory").await.unwrap();
    assert_eq!(mallory.profile.email, None);
    assert_ne!(
        accepted(&idp)[0].subject,
        idp.users.get("alice").await.unwrap().id
    );
}

/// Each spoilt ID token or token answer: a 502 page, nothing accepted, no setup.
async fn bad_id_tokens_and_token_errors(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user(
        "up-1",
        json!({"email": "x@corp.example", "email_verified": true}),
    );
    for (i, spoil) in [
        Spoil::Issuer,
        Spoil::Audience,
        Spoil::Nonce,
        Spoil::Signature,
        Spoil::Expired,
        Spoil::TokenError,
    ]
    .into_iter()
    .enumerate()
    {
        op.spoil(spoil.clone());
        let mut browser = Browser::new(&idp);
        let page = callback(&idp, &mut browser, &format!("c{i}"), "up-1").await;
        assert_eq!(page.status, 502, "{spoil:?}: {}", page.body);
        assert!(page.location.is_none());
        assert!(
            page.body.contains("not valid") || page.body.contains("refused"),
            "{spoil:?}: {}",
            page.body
        );
    }
    assert!(accepted(&idp).is_empty());
    assert!(idp.users.list().await.unwrap().is_empty(), "no account");
}

async fn bad_callbacks(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user("up-1", json!({}));
    let mut browser = Browser::new(&idp);
    // A good sign-in, up to the setup step: its code is redeemed.
    login(&idp, "c1");
    let authorize = click_provider(&mut browser, "c1", "corp").await;
    let back = upstream_answers(&idp, &authorize, "login_hint", "up-1").await;
    let good = browser.get(&back).await;
    assert_eq!(good.status, 303, "{}", good.body);

    login(&idp, "c0");
    let authorize0 = click_provider(&mut browser, "c0", "corp").await;
    let back0 = upstream_answers(&idp, &authorize0, "login_hint", "up-1").await;
    // Wrong state.
    let url = url::Url::parse(&format!("http://x{back}")).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let wrong = browser
        .get("/upstream/corp/callback?state=forged&code=abc")
        .await;
    assert_eq!(wrong.status, 400);
    // The callback of a finished flow again: its state is spent.
    let spent = browser.get(&back).await;
    assert_eq!(spent.status, 400, "the state is single use");
    // Another browser with the right state: refused, and the state is spent.
    let mut other = Browser::new(&idp);
    let stolen = other.get(&back0).await;
    assert_eq!(stolen.status, 400);
    assert_eq!(browser.get(&back0).await.status, 400);

    // A replayed code with a fresh state: the upstream refuses it.
    login(&idp, "c2");
    let authorize = click_provider(&mut browser, "c2", "corp").await;
    let fresh = url::Url::parse(&authorize).unwrap();
    let state = fresh
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let calls = op.token_calls();
    let replay = browser
        .get(&format!(
            "/upstream/corp/callback?state={state}&code={}&iss={}",
            q["code"],
            urlencode(&q["iss"])
        ))
        .await;
    assert_eq!(replay.status, 502, "{}", replay.body);
    assert!(replay.body.contains("refused"), "{}", replay.body);
    assert_eq!(op.token_calls(), calls + 1);

    // RFC 9207: a missing or foreign iss is refused before the code is redeemed.
    for iss in ["", "&iss=http%3A%2F%2Fevil.example"] {
        login(&idp, "c3");
        let authorize = click_provider(&mut browser, "c3", "corp").await;
        let back = upstream_answers(&idp, &authorize, "login_hint", "up-1").await;
        let without: String = back
            .split('&')
            .filter(|p| !p.starts_with("iss="))
            .collect::<Vec<_>>()
            .join("&");
        let calls = op.token_calls();
        let page = browser.get(&format!("{without}{iss}")).await;
        assert_eq!(page.status, 502, "{iss}: {}", page.body);
        assert!(page.body.contains("issuer"), "{}", page.body);
        assert_eq!(op.token_calls(), calls, "the code is not sent anywhere");
    }

    // The upstream answers with an error.
    login(&idp, "c4");
    let authorize = click_provider(&mut browser, "c4", "corp").await;
    let back = upstream_answers(&idp, &authorize, "login_hint", "nobody").await;
    let page = browser.get(&back).await;
    assert_eq!(page.status, 502);
    assert!(page.body.contains("cancelled or refused"), "{}", page.body);

    // CSRF on the provider button.
    login(&idp, "c5");
    let none = browser
        .post(
            "/upstream/start",
            &[("login_challenge", "c5"), ("provider", "corp")],
        )
        .await;
    assert_eq!(none.status, 403);
    assert!(accepted(&idp).is_empty());
    assert!(idp.users.list().await.unwrap().is_empty());
}

async fn upstream_down_or_slow(db: TestDatabase) {
    let op = FakeOp::start().await;
    op.add_user("up-1", json!({}));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let issuer = op.issuer.clone();
    let idp = start(db, move |c| {
        c.upstreams.timeout = Duration::from_millis(500);
        c.upstreams
            .providers
            .insert("corp".into(), oidc_provider(&issuer));
        c.upstreams
            .providers
            .insert("down".into(), oidc_provider(&format!("http://{closed}")));
    })
    .await;
    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    let form = browser.get("/login?login_challenge=c1").await;
    let csrf = hidden_in(&form, "upstream/start", "csrf");
    let down = browser
        .post(
            "/upstream/start",
            &[
                ("csrf", &csrf),
                ("login_challenge", "c1"),
                ("provider", "down"),
            ],
        )
        .await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(
        down.body.contains("temporarily unavailable"),
        "{}",
        down.body
    );
    assert_eq!(down.headers["retry-after"], "1");

    op.spoil(Spoil::Slow(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let page = callback(&idp, &mut browser, "c2", "up-1").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up at the timeout"
    );
    assert!(accepted(&idp).is_empty());
    assert!(idp.users.list().await.unwrap().is_empty());
}

async fn github_sign_in(db: TestDatabase) {
    let gh = FakeGithub::start().await;
    gh.add_user(
        "octocat",
        583_231,
        Some("The Octocat"),
        json!([
            {"email": "octo@old.example", "primary": false, "verified": true, "visibility": null},
            {"email": "octocat@github.example", "primary": true, "verified": true, "visibility": "public"}
        ]),
    );
    gh.add_user(
        "unverified",
        42,
        None,
        json!([{"email": "u@github.example", "primary": true, "verified": false, "visibility": null}]),
    );
    let base = gh.url.clone();
    let idp = start(db, move |c| {
        c.upstreams.providers.insert(
            "github".into(),
            ProviderConfig {
                kind: ProviderKind::Github,
                display_name: "GitHub".into(),
                client_id: CLIENT_ID.into(),
                client_secret: Some(config::Secret::new(CLIENT_SECRET.into())),
                github_url: Some(base.parse().unwrap()),
                github_api_url: Some(format!("{base}/api").parse().unwrap()),
                ..ProviderConfig::default()
            },
        );
    })
    .await;
    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    let authorize = click_provider(&mut browser, "c1", "github").await;
    assert!(authorize.starts_with(&format!("{}/login/oauth/authorize?", gh.url)));
    assert!(
        authorize.contains("scope=read%3Auser+user%3Aemail"),
        "{authorize}"
    );
    let back = upstream_answers(&idp, &authorize, "login", "octocat").await;
    let cb = browser.get(&back).await;
    assert_eq!(cb.status, 303, "{}", cb.body);
    let page = browser.get(&cb.location.unwrap()).await;
    assert!(page.body.contains(r#"value="octocat""#), "{}", page.body);
    assert!(
        page.body.contains("octocat@github.example"),
        "the verified primary email"
    );
    assert!(!page.body.contains("octo@old.example"));
    let done = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &page.hidden("csrf")),
                ("pending", &page.hidden("pending")),
                ("username", "octocat"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let user = idp.users.get("octocat").await.unwrap();
    assert_eq!(
        user.profile.email.as_deref(),
        Some("octocat@github.example")
    );
    assert_eq!(user.profile.name.as_deref(), Some("The Octocat"));
    assert_ne!(accepted(&idp)[0].subject, "583231");

    // No verified primary email: refused with a clear page, nothing created.
    let mut other = Browser::new(&idp);
    login(&idp, "c2");
    let authorize = click_provider(&mut other, "c2", "github").await;
    let back = upstream_answers(&idp, &authorize, "login", "unverified").await;
    let refused = other.get(&back).await;
    assert_eq!(refused.status, 502);
    assert!(
        refused.body.contains("no verified primary email"),
        "{}",
        refused.body
    );
    assert_eq!(idp.users.list().await.unwrap().len(), 1);
}

async fn link_and_unlink_on_the_providers_page(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user(
        "up-bob",
        json!({"email": "bob@corp.example", "email_verified": true}),
    );
    op.add_user("up-dave", json!({"preferred_username": "dave"}));
    let bob = idp.user("bob").await;
    let mut anonymous = Browser::new(&idp);
    assert_eq!(anonymous.get("/account/providers").await.status, 401);

    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    assert_eq!(browser.login("c1", "bob", PASSWORD).await.status, 303);
    let page = browser.get("/account/providers").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No provider is linked yet."));
    assert!(page.body.contains(r#"id="link-corp""#));
    let csrf = page.hidden("csrf");
    let forged = browser
        .post(
            "/account/providers",
            &[("action", "link"), ("provider", "corp")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let started = browser
        .post(
            "/account/providers",
            &[("csrf", &csrf), ("action", "link"), ("provider", "corp")],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let back = upstream_answers(&idp, &started.location.unwrap(), "login_hint", "up-bob").await;
    let linked = browser.get(&back).await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    assert_eq!(
        linked.location.as_deref(),
        Some("/account/providers?result=linked")
    );
    let page = browser.get("/account/providers?result=linked").await;
    assert!(page.body.contains("bob@corp.example"), "{}", page.body);
    assert!(page.body.contains(r#"id="unlink-corp""#));

    // The linked identity now signs bob in.
    let mut fresh = Browser::new(&idp);
    assert_eq!(callback(&idp, &mut fresh, "c2", "up-bob").await.status, 303);
    assert_eq!(accepted(&idp).last().unwrap().subject, bob.id);

    // dave signs up through corp; linking bob's upstream account to dave is refused.
    let mut dave_browser = Browser::new(&idp);
    let cb = callback(&idp, &mut dave_browser, "c3", "up-dave").await;
    let setup = dave_browser.get(&cb.location.unwrap()).await;
    let done = dave_browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &setup.hidden("csrf")),
                ("pending", &setup.hidden("pending")),
                ("username", "dave"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = dave_browser.get("/account/providers").await;
    let dave_csrf = page.hidden("csrf");
    // dave's only way to sign in cannot be unlinked.
    let last = dave_browser
        .post(
            "/account/providers",
            &[
                ("csrf", &dave_csrf),
                ("action", "unlink"),
                ("provider", "corp"),
                ("subject", "up-dave"),
            ],
        )
        .await;
    assert_eq!(last.status, 409);
    assert!(last.body.contains("only way to sign in"), "{}", last.body);
    // dave cannot unlink bob's identity either.
    let foreign = dave_browser
        .post(
            "/account/providers",
            &[
                ("csrf", &dave_csrf),
                ("action", "unlink"),
                ("provider", "corp"),
                ("subject", "up-bob"),
            ],
        )
        .await;
    assert_eq!(foreign.status, 404);
    let idp_bob = idp.users.get("bob").await.unwrap();
    assert_eq!(idp_bob.id, bob.id);

    // Bob links dave's corp account: already linked to someone else.
    let page = browser.get("/account/providers").await;
    assert!(
        !page.body.contains(r#"id="link-corp""#),
        "corp is linked already"
    );
    // Unlink bob's (he has a password), then try to link dave's upstream account.
    let csrf = page.hidden("csrf");
    let unlinked = browser
        .post(
            "/account/providers",
            &[
                ("csrf", &csrf),
                ("action", "unlink"),
                ("provider", "corp"),
                ("subject", "up-bob"),
            ],
        )
        .await;
    assert_eq!(unlinked.status, 200, "{}", unlinked.body);
    assert!(unlinked.body.contains("No provider is linked yet."));
    let started = browser
        .post(
            "/account/providers",
            &[("csrf", &csrf), ("action", "link"), ("provider", "corp")],
        )
        .await;
    let back = upstream_answers(&idp, &started.location.unwrap(), "login_hint", "up-dave").await;
    let taken = browser.get(&back).await;
    assert_eq!(
        taken.location.as_deref(),
        Some("/account/providers?result=taken")
    );
    let page = browser.get("/account/providers?result=taken").await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("already linked to another account"));
    // up-bob is unlinked: it is a new identity again.
    let mut fresh = Browser::new(&idp);
    let cb = callback(&idp, &mut fresh, "c4", "up-bob").await;
    assert!(cb.location.unwrap().starts_with("/upstream/setup"));
}

async fn kc_idp_hint_redirects_to_the_provider(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user("up-1", json!({}));
    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    let hinted = browser
        .get("/login?login_challenge=c1&kc_idp_hint=corp")
        .await;
    assert_eq!(hinted.status, 303, "{}", hinted.body);
    assert!(
        hinted
            .location
            .clone()
            .unwrap()
            .starts_with(&format!("{}/authorize?", op.issuer))
    );
    assert!(
        hinted.set_cookie("idp_csrf").is_some(),
        "the flow is bound to a new CSRF cookie"
    );
    let unknown = browser
        .get("/login?login_challenge=c1&kc_idp_hint=nope")
        .await;
    assert_eq!(unknown.status, 200, "an unknown hint shows the login page");
}

/// A provider's stored-token row: `(provider, subject, sealed tokens)`.
#[derive(diesel::QueryableByName)]
struct StoredTokens {
    #[diesel(sql_type = diesel::sql_types::Text)]
    provider: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    subject: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    tokens: Option<String>,
}

/// The rows of `table` (`upstream_identities` or `upstream_pending`) as stored.
async fn stored(idp: &Idp, table: &str) -> Vec<StoredTokens> {
    use storage::diesel_async::RunQueryDsl;
    let mut conn = idp.db.get().await.unwrap();
    let query = format!("SELECT provider, subject, tokens FROM {table} ORDER BY subject");
    storage::with_conn!(&mut conn, |c| diesel::sql_query(query.clone())
        .load(c)
        .await)
    .unwrap()
}

/// `sealed` holds none of the tokens of the upstream's token `response`, in any encoding
/// a reader might try.
fn assert_sealed(sealed: &str, response: &serde_json::Value) {
    use base64::Engine;
    for name in ["access_token", "refresh_token", "id_token"] {
        let token = response[name].as_str().unwrap();
        assert!(!sealed.contains(token), "{name} stored in the clear");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .unwrap();
        assert!(
            !decoded.windows(token.len()).any(|w| w == token.as_bytes()),
            "{name} readable in the stored bytes"
        );
    }
}

/// The tokens a sign-in answered with, opened from `sealed` with `key`: they are those of
/// the upstream's `response`.
fn assert_opens_to(key: &issuer::Kek, subject: &str, sealed: &str, response: &serde_json::Value) {
    let opened = idp::upstream::open_tokens(key, "corp", subject, sealed).unwrap();
    assert_eq!(
        opened.access_token.as_deref(),
        response["access_token"].as_str()
    );
    assert_eq!(
        opened.refresh_token.as_deref(),
        response["refresh_token"].as_str()
    );
    assert_eq!(opened.id_token.as_deref(), response["id_token"].as_str());
    assert!(opened.expires_at.is_some(), "expires_in kept as expires_at");
    let shown = format!("{opened:?}");
    assert!(
        !shown.contains(response["access_token"].as_str().unwrap()),
        "{shown}"
    );
}

/// `store_tokens` (issue 20): the upstream's tokens are kept sealed with
/// `upstreams.token_key` through the first-login setup, replaced on each sign-in, opened
/// only with that key for that identity, shown on no page, and deleted with the account
/// and on unlink.
async fn tokens_are_kept_sealed_when_configured(db: TestDatabase) {
    let key = issuer::Kek::generate_base64().unwrap();
    let kek = issuer::Kek::from_base64(&key).unwrap();
    let op = FakeOp::start().await;
    let op_issuer = op.issuer.clone();
    let idp = start(db, move |c| {
        c.upstreams.providers.insert(
            "corp".into(),
            ProviderConfig {
                store_tokens: true,
                ..oidc_provider(&op_issuer)
            },
        );
        c.upstreams.token_key = Some(config::Secret::new(key));
    })
    .await;
    op.add_user(
        "up-123",
        json!({"preferred_username": "carol", "email": "carol@corp.example", "email_verified": true}),
    );
    op.add_user("up-bob", json!({"preferred_username": "bobby"}));

    // First login: parked for the setup step with the tokens sealed.
    let mut browser = Browser::new(&idp);
    let cb = callback(&idp, &mut browser, "c1", "up-123").await;
    assert_eq!(cb.status, 303, "{}", cb.body);
    let first = op.issued()[0].clone();
    let pending = stored(&idp, "upstream_pending").await;
    assert_eq!(pending.len(), 1);
    let parked = pending[0].tokens.clone().expect("pending tokens sealed");
    assert_sealed(&parked, &first);
    assert_opens_to(&kek, "up-123", &parked, &first);

    let setup = browser.get(&cb.location.unwrap()).await;
    assert_eq!(setup.status, 200);
    assert!(!setup.body.contains(first["access_token"].as_str().unwrap()));
    let done = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &setup.hidden("csrf")),
                ("pending", &setup.hidden("pending")),
                ("username", "carol"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let rows = stored(&idp, "upstream_identities").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].provider.as_str(), rows[0].subject.as_str()),
        ("corp", "up-123")
    );
    let kept = rows[0]
        .tokens
        .clone()
        .expect("tokens kept with the identity");
    assert_sealed(&kept, &first);
    assert_opens_to(&kek, "up-123", &kept, &first);
    // Another key, or another identity's row, does not open them.
    let other = issuer::Kek::from_base64(&issuer::Kek::generate_base64().unwrap()).unwrap();
    assert!(idp::upstream::open_tokens(&other, "corp", "up-123", &kept).is_err());
    assert!(idp::upstream::open_tokens(&kek, "corp", "up-bob", &kept).is_err());

    // The next sign-in replaces them.
    let mut fresh = Browser::new(&idp);
    let next = callback(&idp, &mut fresh, "c2", "up-123").await;
    assert_eq!(next.status, 303, "{}", next.body);
    let second = op.issued()[1].clone();
    assert_ne!(first["access_token"], second["access_token"]);
    let rows = stored(&idp, "upstream_identities").await;
    let replaced = rows[0].tokens.clone().unwrap();
    assert_ne!(replaced, kept);
    assert_sealed(&replaced, &second);
    assert_opens_to(&kek, "up-123", &replaced, &second);
    // No page shows them.
    let page = fresh.get("/account/providers").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for name in ["access_token", "refresh_token", "id_token"] {
        assert!(
            !page.body.contains(second[name].as_str().unwrap()),
            "{name} shown"
        );
    }

    // Deleting the account deletes them.
    idp.users.delete("carol").await.unwrap();
    assert!(stored(&idp, "upstream_identities").await.is_empty());

    // Linked from the providers page: kept; unlinked: gone.
    idp.user("bob").await;
    let mut bob = Browser::new(&idp);
    login(&idp, "c3");
    assert_eq!(bob.login("c3", "bob", PASSWORD).await.status, 303);
    let page = bob.get("/account/providers").await;
    let csrf = page.hidden("csrf");
    let started = bob
        .post(
            "/account/providers",
            &[("csrf", &csrf), ("action", "link"), ("provider", "corp")],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.body);
    let back = upstream_answers(&idp, &started.location.unwrap(), "login_hint", "up-bob").await;
    let linked = bob.get(&back).await;
    assert_eq!(
        linked.location.as_deref(),
        Some("/account/providers?result=linked")
    );
    let third = op.issued().last().unwrap().clone();
    let rows = stored(&idp, "upstream_identities").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].subject, "up-bob");
    let kept = rows[0].tokens.clone().expect("tokens kept on linking");
    assert_sealed(&kept, &third);
    assert_opens_to(&kek, "up-bob", &kept, &third);
    let unlinked = bob
        .post(
            "/account/providers",
            &[
                ("csrf", &csrf),
                ("action", "unlink"),
                ("provider", "corp"),
                ("subject", "up-bob"),
            ],
        )
        .await;
    assert_eq!(unlinked.status, 200, "{}", unlinked.body);
    assert!(stored(&idp, "upstream_identities").await.is_empty());
    assert!(stored(&idp, "upstream_pending").await.is_empty());
}

/// Without `store_tokens` (the default) no upstream token is kept anywhere, though the
/// upstream issued them.
async fn tokens_are_not_kept_by_default(db: TestDatabase) {
    let (idp, op) = with_op(db).await;
    op.add_user("up-7", json!({"preferred_username": "gus"}));
    let mut browser = Browser::new(&idp);
    let cb = callback(&idp, &mut browser, "c1", "up-7").await;
    assert_eq!(cb.status, 303, "{}", cb.body);
    let pending = stored(&idp, "upstream_pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].tokens, None);
    let setup = browser.get(&cb.location.unwrap()).await;
    let done = browser
        .post(
            "/upstream/setup",
            &[
                ("csrf", &setup.hidden("csrf")),
                ("pending", &setup.hidden("pending")),
                ("username", "gus"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mut fresh = Browser::new(&idp);
    assert_eq!(callback(&idp, &mut fresh, "c2", "up-7").await.status, 303);
    assert_eq!(op.issued().len(), 2, "the upstream did issue tokens");
    let rows = stored(&idp, "upstream_identities").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].tokens, None);
}

/// `backchannel_url`: the issuer URL is for browsers only (nothing answers it here); idp
/// reads discovery, redeems the code, fetches the JWKS and user info through the back
/// channel, and still requires the public issuer in discovery, `iss` and the ID token.
async fn backchannel_url_reaches_an_issuer_only_browsers_use(db: TestDatabase) {
    const PUBLIC: &str = "http://localhost:1";
    let op = FakeOp::start().await;
    let real = op.issuer.clone();
    op.publish_as(PUBLIC);
    op.add_user("up-1", json!({"preferred_username": "erin"}));
    let back = real.clone();
    let idp = start(db, move |c| {
        c.upstreams.providers.insert(
            "corp".into(),
            ProviderConfig {
                backchannel_url: Some(back.parse().unwrap()),
                ..oidc_provider(PUBLIC)
            },
        );
    })
    .await;
    let mut browser = Browser::new(&idp);
    login(&idp, "c1");
    let authorize = click_provider(&mut browser, "c1", "corp").await;
    assert!(
        authorize.starts_with(&format!("{PUBLIC}/authorize?")),
        "the browser goes to the public issuer: {authorize}"
    );
    // The browser's way to the public issuer.
    let via = authorize.replacen(PUBLIC, &real, 1);
    let back = upstream_answers(&idp, &via, "login_hint", "up-1").await;
    let done = browser.get(&back).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        done.location
            .unwrap()
            .starts_with("/upstream/setup?pending="),
        "signed in through the back channel"
    );
    assert_eq!(op.token_calls(), 1);

    // Without the back channel the issuer cannot be reached: 503, nothing started.
    let op_issuer = PUBLIC.to_owned();
    let other = start(
        TestDatabase::sqlite(&idp::MIGRATIONS).await.unwrap(),
        move |c| {
            c.upstreams
                .providers
                .insert("corp".into(), oidc_provider(&op_issuer));
        },
    )
    .await;
    let mut browser = Browser::new(&other);
    login(&other, "c2");
    let form = browser.get("/login?login_challenge=c2").await;
    let csrf = hidden_in(&form, "upstream/start", "csrf");
    let started = browser
        .post(
            "/upstream/start",
            &[
                ("csrf", &csrf),
                ("login_challenge", "c2"),
                ("provider", "corp"),
            ],
        )
        .await;
    assert_eq!(started.status, 503, "{}", started.body);
}

storage::backend_tests!(idp::MIGRATIONS;
    first_login_creates_an_account_after_setup,
    verified_email_of_an_account_links_only_with_its_password,
    unverified_email_is_never_trusted,
    link_and_unlink_on_the_providers_page,
    bad_id_tokens_and_token_errors,
    tokens_are_kept_sealed_when_configured,
    tokens_are_not_kept_by_default,
);

crate::login::sqlite_tests!(
    bad_callbacks,
    upstream_down_or_slow,
    github_sign_in,
    kc_idp_hint_redirects_to_the_provider,
    backchannel_url_reaches_an_issuer_only_browsers_use,
);

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
