//! The login page over HTTP against the fake authz: success, failures that all look alike,
//! CSRF, back-off, session reuse, `prompt` and `max_age`.

use std::time::{Duration, Instant};

use proto::authz::v1::{AcceptLoginRequest, LoginRequest, RejectRequest};
use storage::testing::TestDatabase;

use crate::fake_authz::{Call, client};
use crate::harness::{Browser, Idp, PASSWORD, start};

fn accepted(calls: &[Call]) -> Vec<AcceptLoginRequest> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::AcceptLogin(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn login_success_sets_a_session(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.authz.add_login(
        LoginRequest {
            challenge: "c1".into(),
            client: client("Demo <App>"),
            login_hint: "alice".into(),
            ..LoginRequest::default()
        },
        "https://authz.test/resume?login=c1",
    );
    let mut browser = Browser::new(&idp);

    let form = browser.get("/login?login_challenge=c1").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("Demo &#60;App&#62;"),
        "client name, escaped"
    );
    assert!(
        form.body.contains(r#"value="alice""#),
        "login_hint prefilled"
    );
    assert!(form.body.contains(r#"<label for="password">"#));
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(
        form.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let csrf_cookie = form.set_cookie("idp_csrf").expect("a CSRF cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(csrf_cookie.contains(attr), "{csrf_cookie}");
    }
    assert!(
        !csrf_cookie.contains("Secure"),
        "http public_url: {csrf_cookie}"
    );

    let started = unix_now();
    let done = browser
        .post(
            "/login",
            &[
                ("csrf", &form.hidden("csrf")),
                ("login_challenge", "c1"),
                ("username", "ALICE@example.com"),
                ("password", PASSWORD),
                ("action", "login"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("https://authz.test/resume?login=c1")
    );
    let cookie = done.set_cookie("idp_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let secret = browser.cookies["idp_session"].clone();

    let accepted = accepted(&idp.authz.calls());
    assert_eq!(accepted.len(), 1);
    let a = &accepted[0];
    assert_eq!(a.login_challenge, "c1");
    assert_eq!(a.subject, alice.id);
    assert_eq!(a.amr, vec!["pwd".to_owned()]);
    assert_eq!(a.acr, "1", "a password login is ISO/IEC 29115 level 1");
    assert!(!a.session_id.is_empty());
    assert_ne!(a.session_id, secret, "authz never sees the cookie secret");
    assert!((started..=unix_now()).contains(&a.auth_time));

    // Every LoginFlow call carried a deadline and a trace context.
    let seen = idp.authz.seen();
    assert!(seen.iter().any(|s| s.method == "AcceptLogin"));
    for s in &seen {
        assert!(s.grpc_timeout.is_some(), "{s:?}");
    }

    assert!(idp.metric(r#"idp_logins_total{result="success"}"#).await >= 1.0);
    assert!(idp.metrics().await.contains("idp_sessions_active "));
    assert!(idp.metric(r#"grpc_client_requests_total{service="authz.v1.LoginFlow",method="AcceptLogin",code="OK"}"#).await >= 1.0);
}

/// The page after a failed login, with the typed name blanked out.
fn normalised(body: &str, typed: &str) -> String {
    body.replace(&format!(r#"value="{typed}""#), r#"value="""#)
}

async fn failures_look_alike(db: TestDatabase) {
    let idp = start(db, |c| {
        // Argon2 must dominate the timing, and nothing may be throttled.
        c.passwords.memory_kib = 16_384;
        c.passwords.iterations = 2;
        c.login_throttle.account_free_failures = 100;
        c.login_throttle.address_free_failures = 100;
    })
    .await;
    idp.user("bob").await;
    let carol = idp.user("carol").await;
    idp.users.set_disabled(&carol.id, true).await.unwrap();
    let mut browser = Browser::new(&idp);

    let mut attempt = async |n: usize, who: &str, password: &str| {
        let challenge = format!("f{n}");
        idp.authz.login(&challenge);
        let started = Instant::now();
        let page = browser.login(&challenge, who, password).await;
        (page, started.elapsed())
    };
    let (wrong, _) = attempt(0, "bob", "not the password").await;
    let (unknown, _) = attempt(1, "nobody", "not the password").await;
    let (disabled, _) = attempt(2, "carol", PASSWORD).await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("Incorrect username or password."));
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(disabled.status, wrong.status);
    // Same page apart from the name typed (and the per-challenge form fields).
    let strip = |p: &crate::harness::Page, typed: &str, n: usize| {
        normalised(&p.body, typed)
            .replace(&p.hidden("csrf"), "CSRF")
            .replace(&format!(r#"value="f{n}""#), r#"value="CHALLENGE""#)
    };
    assert_eq!(strip(&unknown, "nobody", 1), strip(&wrong, "bob", 0));
    assert_eq!(strip(&disabled, "carol", 2), strip(&wrong, "bob", 0));
    for p in [&wrong, &unknown, &disabled] {
        assert!(p.set_cookie("idp_session").is_none());
    }
    assert!(accepted(&idp.authz.calls()).is_empty(), "nobody signed in");

    // Similar time: unknown users cost an argon2id verification too.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..5 {
        known.push(attempt(10 + 2 * n, "bob", "not the password").await.1);
        unknown.push(attempt(11 + 2 * n, "nobody", "not the password").await.1);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2].as_secs_f64(), unknown[2].as_secs_f64());
    assert!(
        u > k * 0.5 && u < k * 2.0,
        "median wrong-password {k:.4}s vs unknown-user {u:.4}s"
    );
    assert!(idp.metric(r#"idp_logins_total{result="failure"}"#).await >= 13.0);
}

async fn csrf_is_required(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("dave").await;
    idp.authz.login("c1");
    let mut browser = Browser::new(&idp);
    let form = browser.get("/login?login_challenge=c1").await;
    let token = form.hidden("csrf");
    let post = async |browser: &mut Browser, csrf: Option<&str>, challenge: &str| {
        let mut fields = vec![
            ("login_challenge", challenge),
            ("username", "dave"),
            ("password", PASSWORD),
        ];
        if let Some(t) = csrf {
            fields.push(("csrf", t));
        }
        browser.post("/login", &fields).await
    };
    // Missing token, wrong token, a token of another flow: 403 and nothing happens.
    idp.authz.login("c2");
    let other_flow = browser
        .get("/login?login_challenge=c2")
        .await
        .hidden("csrf");
    for csrf in [None, Some("forged"), Some(other_flow.as_str())] {
        let refused = post(&mut browser, csrf, "c1").await;
        assert_eq!(refused.status, 403, "{csrf:?}");
        assert!(refused.body.contains("This form has expired"));
        assert!(refused.set_cookie("idp_session").is_none());
    }
    // The right token from a browser without the CSRF cookie (a cross-site post).
    let mut stranger = Browser::new(&idp);
    assert_eq!(post(&mut stranger, Some(&token), "c1").await.status, 403);
    assert!(idp.authz.calls().is_empty(), "no login, no reject");
    assert!(idp.metric(r#"idp_csrf_rejected_total{form="login"}"#).await >= 4.0);
    // The genuine form still works.
    assert_eq!(post(&mut browser, Some(&token), "c1").await.status, 303);

    // Consent and logout forms refuse a post without the token too.
    let refused = browser
        .post(
            "/consent",
            &[("consent_challenge", "k"), ("action", "allow")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let refused = browser.post("/logout", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(accepted(&idp.authz.calls()).len(), 1);
}

async fn back_off_after_failures(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 2;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(30);
    })
    .await;
    idp.user("erin").await;
    let mut n = 0;
    // A fresh browser each time: a session from a success would skip the form.
    let mut attempt = async |who: &str, password: &str| {
        n += 1;
        let challenge = format!("b{n}");
        idp.authz.login(&challenge);
        Browser::new(&idp).login(&challenge, who, password).await
    };
    // Reset on success: two failures, a success, two failures: never blocked.
    for _ in 0..2 {
        assert_eq!(attempt("erin", "wrong password").await.status, 200);
    }
    assert_eq!(attempt("erin", PASSWORD).await.status, 303);
    for _ in 0..2 {
        assert_eq!(attempt("erin", "wrong password").await.status, 200);
    }
    // The third failure in a row starts a 30 s back-off: even the right password is refused
    // without being checked, and the refused attempt counts as the fourth failure, so the
    // back-off doubles to 60 s.
    assert_eq!(attempt("erin", "wrong password").await.status, 200);
    let blocked = attempt("erin", PASSWORD).await;
    assert_eq!(blocked.status, 429);
    assert!(blocked.body.contains("Too many failed attempts"));
    assert_eq!(blocked.headers["retry-after"], "60");
    assert!(blocked.set_cookie("idp_session").is_none());
    // Unknown names back off exactly the same way.
    for _ in 0..3 {
        attempt("nobody", "wrong password").await;
    }
    assert_eq!(attempt("nobody", "wrong password").await.status, 429);
    // After the window the right password works again.
    idp.clock.advance(Duration::from_secs(61));
    assert_eq!(attempt("erin", PASSWORD).await.status, 303);
    assert!(
        idp.metric(r#"idp_login_throttled_total{scope="account"}"#)
            .await
            >= 2.0
    );
    assert!(idp.metric(r#"idp_logins_total{result="throttled"}"#).await >= 2.0);
    assert_eq!(accepted(&idp.authz.calls()).len(), 2);
}

async fn back_off_per_address(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 100;
        c.login_throttle.address_free_failures = 3;
        c.login_throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    idp.user("frank").await;
    let mut browser = Browser::new(&idp);
    for (n, who) in ["a", "b", "c", "d"].iter().enumerate() {
        let challenge = format!("p{n}");
        idp.authz.login(&challenge);
        assert_eq!(
            browser
                .login(&challenge, who, "wrong password")
                .await
                .status,
            200
        );
    }
    idp.authz.login("p9");
    let blocked = browser.login("p9", "frank", PASSWORD).await;
    assert_eq!(blocked.status, 429, "this address is in back-off");
    assert!(
        idp.metric(r#"idp_login_throttled_total{scope="address"}"#)
            .await
            >= 1.0
    );
}

/// A success from an address clears the address's counter, like the account's: its
/// back-off ends, and the doubling starts over from `base_delay`.
async fn back_off_per_address_resets_on_success(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 100;
        c.login_throttle.address_free_failures = 3;
        c.login_throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    idp.user("gina").await;
    let mut n = 0;
    // A fresh browser each time (a session would skip the form), all from 127.0.0.1; every
    // failure under another name, so only the address's counter grows.
    let mut attempt = async |who: &str, password: &str| {
        n += 1;
        let challenge = format!("r{n}");
        idp.authz.login(&challenge);
        Browser::new(&idp).login(&challenge, who, password).await
    };
    for who in ["a", "b", "c", "d"] {
        assert_eq!(attempt(who, "wrong password").await.status, 200, "{who}");
    }
    let blocked = attempt("gina", PASSWORD).await;
    assert_eq!(
        blocked.status, 429,
        "the fourth failure started the back-off"
    );
    assert_eq!(
        blocked.headers["retry-after"], "120",
        "the refused attempt counted as the fifth failure"
    );

    idp.clock.advance(Duration::from_secs(121));
    assert_eq!(attempt("gina", PASSWORD).await.status, 303);
    // Without the reset the next failure would be the address's fifth: 120 s of back-off.
    for who in ["e", "f", "g", "h"] {
        assert_eq!(
            attempt(who, "wrong password").await.status,
            200,
            "{who}: the success cleared the address's failures"
        );
    }
    let blocked = attempt("gina", PASSWORD).await;
    assert_eq!(blocked.status, 429, "counted afresh from the success");
    assert_eq!(
        blocked.headers["retry-after"], "120",
        "the doubling starts over"
    );
    assert_eq!(accepted(&idp.authz.calls()).len(), 1);
}

/// Attributes of a `Set-Cookie` value, after the name=value pair.
fn attributes(set_cookie: &str) -> Vec<&str> {
    set_cookie.split(';').skip(1).map(str::trim).collect()
}

/// The `Set-Cookie` values of one visit: the CSRF cookie of the login form, the session
/// cookie of the login and its removal at logout, and the device cookie of the login,
/// named `{prefix}idp_csrf`, `{prefix}idp_session` and `{prefix}idp_device`.
async fn cookies_of_a_visit(idp: &Idp, prefix: &str) -> [String; 4] {
    let (csrf_name, session_name) = (format!("{prefix}idp_csrf"), format!("{prefix}idp_session"));
    idp.user("hana").await;
    idp.authz.login("c1");
    let mut browser = Browser::new(idp);
    let form = browser.get("/login?login_challenge=c1").await;
    let csrf = form
        .set_cookie(&csrf_name)
        .expect("a CSRF cookie")
        .to_owned();
    let done = browser
        .post(
            "/login",
            &[
                ("csrf", &form.hidden("csrf")),
                ("login_challenge", "c1"),
                ("username", "hana"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done
        .set_cookie(&session_name)
        .expect("a session cookie")
        .to_owned();
    let device = done
        .set_cookie(&format!("{prefix}idp_device"))
        .expect("a device cookie")
        .to_owned();
    assert!(
        attributes(&device).contains(&"Max-Age=2592000"),
        "login_throttle.device_lifetime: {device}"
    );
    let confirm = browser.get("/logout").await;
    let out = browser
        .post("/logout", &[("csrf", &confirm.hidden("csrf"))])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let cleared = out
        .set_cookie(&session_name)
        .expect("the session cookie removed")
        .to_owned();
    assert!(attributes(&cleared).contains(&"Max-Age=0"), "{cleared}");
    [csrf, session, cleared, device]
}

/// Behind an https `public_url` every cookie, including the one that removes the session,
/// is `Secure` and `__Host-` prefixed (so browsers require `Secure`, `Path=/`, no `Domain`).
async fn cookies_are_secure_behind_https(db: TestDatabase) {
    let idp = start(db, |c| {
        c.public_url = "https://login.example.test/".parse().unwrap();
    })
    .await;
    for cookie in cookies_of_a_visit(&idp, "__Host-").await {
        let attrs = attributes(&cookie);
        for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(attrs.contains(&attr), "{attr} missing: {cookie}");
        }
        assert!(
            !attrs
                .iter()
                .any(|a| a.to_ascii_lowercase().starts_with("domain")),
            "{cookie}"
        );
    }
}

/// Over an http `public_url` (local development) no cookie is `Secure`, or the browser
/// would drop it, and none carries the `__Host-` prefix, which requires `Secure`.
async fn cookies_are_not_secure_over_http(db: TestDatabase) {
    let idp = start(db, |c| {
        c.public_url = "http://localhost:8081/".parse().unwrap();
    })
    .await;
    for cookie in cookies_of_a_visit(&idp, "").await {
        let attrs = attributes(&cookie);
        assert!(!attrs.contains(&"Secure"), "{cookie}");
        assert!(attrs.contains(&"HttpOnly"), "{cookie}");
    }
}

async fn session_reuse_prompt_and_max_age(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let grace = idp.user("grace").await;
    let mut browser = Browser::new(&idp);
    idp.authz.login("c1");
    assert_eq!(browser.login("c1", "grace", PASSWORD).await.status, 303);
    let first = accepted(&idp.authz.calls())[0].clone();
    let first_secret = browser.cookies["idp_session"].clone();

    // A second authorization request: accepted at once, same session and auth_time.
    idp.clock.advance(Duration::from_secs(600));
    idp.authz.login("c2");
    let reused = browser.get("/login?login_challenge=c2").await;
    assert_eq!(reused.status, 303, "{}", reused.body);
    assert_eq!(
        reused.location.as_deref(),
        Some("https://authz.test/resume?login=c2")
    );
    let second = accepted(&idp.authz.calls())[1].clone();
    assert_eq!(second.subject, grace.id);
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(
        second.auth_time, first.auth_time,
        "the original authentication time"
    );

    // Another browser has no session: it gets the form.
    let mut other = Browser::new(&idp);
    idp.authz.login("c3");
    assert_eq!(other.get("/login?login_challenge=c3").await.status, 200);

    // prompt=login forces the form despite the session.
    idp.authz.add_login(
        LoginRequest {
            challenge: "c4".into(),
            prompt: vec!["login".into()],
            ..LoginRequest::default()
        },
        "https://authz.test/resume?login=c4",
    );
    let form = browser.get("/login?login_challenge=c4").await;
    assert_eq!(form.status, 200, "prompt=login shows the form");
    let relogin = browser
        .post(
            "/login",
            &[
                ("csrf", &form.hidden("csrf")),
                ("login_challenge", "c4"),
                ("username", "grace"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(relogin.status, 303);
    let third = accepted(&idp.authz.calls())[2].clone();
    assert_eq!(third.session_id, first.session_id, "the session is renewed");
    assert!(
        third.auth_time >= first.auth_time + 600,
        "a fresh auth_time"
    );
    assert_ne!(
        browser.cookies["idp_session"], first_secret,
        "a new secret at every sign-in"
    );
    let mut stale = Browser::new(&idp);
    stale
        .cookies
        .insert("idp_session".into(), first_secret.clone());
    idp.authz.login("c5");
    assert_eq!(
        stale.get("/login?login_challenge=c5").await.status,
        200,
        "the old secret opens nothing"
    );

    // max_age: exceeded → form; within → accepted at once; 0 → form (like prompt=login).
    idp.clock.advance(Duration::from_secs(120));
    for (challenge, max_age, status) in [("m1", 60, 200), ("m2", 3600, 303), ("m3", 0, 200)] {
        idp.authz.add_login(
            LoginRequest {
                challenge: challenge.into(),
                max_age: Some(max_age),
                ..LoginRequest::default()
            },
            "https://authz.test/resume",
        );
        let page = browser
            .get(&format!("/login?login_challenge={challenge}"))
            .await;
        assert_eq!(page.status, status, "max_age={max_age}");
    }

    // A disabled user's session is not reused.
    idp.users.set_disabled(&grace.id, true).await.unwrap();
    idp.authz.login("d1");
    assert_eq!(browser.get("/login?login_challenge=d1").await.status, 200);
    assert!(idp.metric(r#"idp_logins_total{result="reused"}"#).await >= 2.0);
}

async fn cancel_prompt_none_and_bad_challenges(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let mut browser = Browser::new(&idp);

    // Cancel → RejectLogin(access_denied) and on to where authz says.
    idp.authz.login("c1");
    let form = browser.get("/login?login_challenge=c1").await;
    let cancelled = browser
        .post(
            "/login",
            &[
                ("csrf", &form.hidden("csrf")),
                ("login_challenge", "c1"),
                ("action", "cancel"),
            ],
        )
        .await;
    assert_eq!(cancelled.status, 303);
    assert_eq!(
        cancelled.location.as_deref(),
        Some("https://client.test/cb?error=access_denied")
    );

    // prompt=none without a session → login_required, no form.
    idp.authz.add_login(
        LoginRequest {
            challenge: "n1".into(),
            prompt: vec!["none".into()],
            ..LoginRequest::default()
        },
        "https://authz.test/resume",
    );
    let none = browser.get("/login?login_challenge=n1").await;
    assert_eq!(none.status, 303);
    let calls = idp.authz.calls();
    let rejects: Vec<&RejectRequest> = calls
        .iter()
        .filter_map(|c| match c {
            Call::RejectLogin(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rejects.len(), 2);
    assert_eq!(rejects[0].error, "access_denied");
    assert_eq!(rejects[1].challenge, "n1");
    assert_eq!(rejects[1].error, "login_required");

    // An unknown, expired or used challenge: a friendly page, not a crash.
    let gone = browser.get("/login?login_challenge=c1").await;
    assert_eq!(gone.status, 410);
    assert!(
        gone.body.contains("expired or was already completed"),
        "{}",
        gone.body
    );
    assert!(gone.body.contains(r#"<html lang="en">"#));
    let missing = browser.get("/login").await;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("login_challenge"));
    let gone = browser.get("/consent?consent_challenge=nope").await;
    assert_eq!(gone.status, 410);
}

/// POST /login does not ask authz again whether the request is pending: the form's CSRF
/// token vouches for the expiry authz gave when the form was served. Past it, the answer is
/// the "expired" page before any password work; the vouched time cannot be moved; and a
/// request answered meanwhile is refused by AcceptLogin.
async fn the_form_vouches_for_the_request_expiry(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("alice").await;
    let now = unix_now();
    idp.authz.add_login(
        LoginRequest {
            challenge: "e1".into(),
            client: client("Demo App"),
            expires_at: now + 60,
            ..LoginRequest::default()
        },
        "https://authz.test/resume?login=e1",
    );
    let mut browser = Browser::new(&idp);
    let form = browser.get("/login?login_challenge=e1").await;
    assert_eq!(form.status, 200);
    let token = form.hidden("csrf");
    assert!(
        token.starts_with(&format!("{}.", now + 60)),
        "the token carries the expiry: {token}"
    );
    let gets = |idp: &Idp| {
        idp.authz
            .seen()
            .iter()
            .filter(|s| s.method == "GetLoginRequest")
            .count()
    };
    let hashes = async |idp: &Idp| {
        idp.metric(r#"idp_password_hash_duration_seconds_count{op="verify"}"#)
            .await
    };
    let post = async |browser: &mut Browser, token: &str, challenge: &str| {
        browser
            .post(
                "/login",
                &[
                    ("csrf", token),
                    ("login_challenge", challenge),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("action", "login"),
                ],
            )
            .await
    };

    // A later time under the same tag is a forged token.
    let (_, tag) = token.split_once('.').unwrap();
    let moved = post(&mut browser, &format!("{}.{tag}", now + 3600), "e1").await;
    assert_eq!(moved.status, 403);

    // Past the expiry: 410, no password check, no session, nothing asked of authz.
    let (gets_before, hashes_before) = (gets(&idp), hashes(&idp).await);
    idp.clock.advance(Duration::from_secs(61));
    let late = post(&mut browser, &token, "e1").await;
    assert_eq!(late.status, 410, "{}", late.body);
    assert!(late.body.contains("expired or was already completed"));
    assert!(late.set_cookie("idp_session").is_none());
    assert_eq!(hashes(&idp).await, hashes_before, "no password work");
    assert_eq!(gets(&idp), gets_before);
    assert!(accepted(&idp.authz.calls()).is_empty());

    // Within the expiry: signed in with one call to authz, AcceptLogin.
    let mut browser = Browser::new(&idp);
    idp.authz.login("e2");
    let form = browser.get("/login?login_challenge=e2").await;
    let gets_before = gets(&idp);
    let token = form.hidden("csrf");
    let done = post(&mut browser, &token, "e2").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        gets(&idp),
        gets_before,
        "no GetLoginRequest before the password"
    );
    assert_eq!(accepted(&idp.authz.calls()).len(), 1);

    // The same form again: the request was answered, AcceptLogin refuses it. The password
    // was right, so the browser is signed in anew (the session it keeps) all the same.
    let again = post(&mut browser, &token, "e2").await;
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(again.set_cookie("idp_session").is_some());
    assert!(again.body.contains("expired or was already completed"));
    assert_eq!(accepted(&idp.authz.calls()).len(), 1);
}

/// authz refusing idp's credentials is an error page, not a crash or a login.
async fn wrong_authz_credentials(db: TestDatabase) {
    let idp = start(db, |c| {
        c.authz.client_secret = Some(config::Secret::new("not-the-secret".into()));
    })
    .await;
    idp.authz.login("c1");
    let mut browser = Browser::new(&idp);
    let page = browser.get("/login?login_challenge=c1").await;
    assert_eq!(page.status, 502);
    assert!(page.body.contains("problem on our side"));
    assert!(idp.metric(r#"grpc_client_requests_total{service="authz.v1.LoginFlow",method="GetLoginRequest",code="UNAUTHENTICATED"}"#).await >= 1.0);
}

/// More concurrent logins than one hashing worker and a queue of one hold: the overflow is
/// answered at once with the 503 page and Retry-After (back-pressure, not an unbounded
/// pile of argon2 memory), the refusals are counted, and the others sign in.
async fn a_full_hashing_queue_answers_503(db: TestDatabase) {
    let idp = start(db, |c| {
        // Slow enough per hash (about half a second) that the posts overlap even though
        // the database work before each hash (throttle, user lookup) runs one at a time
        // in an unoptimised debug SQLite: a cheaper hash let every post through alone.
        c.passwords.memory_kib = 32_768;
        c.passwords.iterations = 24;
        c.passwords.workers = 1;
        c.passwords.queue = 1;
    })
    .await;
    idp.user("alice").await;
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..12 {
        let challenge = format!("q{n}");
        idp.authz.login(&challenge);
        let mut browser = Browser::new(&idp);
        let form = browser
            .get(&format!("/login?login_challenge={challenge}"))
            .await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.hidden("csrf");
        posts.spawn(async move {
            browser
                .post(
                    "/login",
                    &[
                        ("csrf", &csrf),
                        ("login_challenge", &challenge),
                        ("username", "alice"),
                        ("password", PASSWORD),
                        ("action", "login"),
                    ],
                )
                .await
        });
    }
    let (mut signed_in, mut busy) = (0, 0);
    while let Some(page) = posts.join_next().await {
        let page = page.unwrap();
        match page.status {
            303 => signed_in += 1,
            503 => {
                assert_eq!(page.headers.get("retry-after").unwrap(), "1");
                assert!(page.body.contains("try again"), "{}", page.body);
                busy += 1;
            }
            other => panic!("{other}: {}", page.body),
        }
    }
    assert!(signed_in >= 1, "{signed_in} signed in, {busy} refused");
    assert!(busy >= 1, "{signed_in} signed in, {busy} refused");
    assert!(idp.metric("idp_password_hash_queue_full_total").await >= f64::from(busy));
    assert!(
        idp.metrics()
            .await
            .contains("idp_password_hashes_in_flight "),
        "the in-flight gauge is exported"
    );
}

storage::backend_tests!(idp::MIGRATIONS;
    login_success_sets_a_session,
    session_reuse_prompt_and_max_age,
);

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = storage::testing::TestDatabase::sqlite(&idp::MIGRATIONS)
                        .await
                        .unwrap();
                    super::$name(db).await;
                }
            }
        )*
    };
}
pub(crate) use sqlite_tests;

sqlite_tests!(
    failures_look_alike,
    csrf_is_required,
    back_off_after_failures,
    back_off_per_address,
    back_off_per_address_resets_on_success,
    cookies_are_secure_behind_https,
    cookies_are_not_secure_over_http,
    cancel_prompt_none_and_bad_challenges,
    the_form_vouches_for_the_request_expiry,
    wrong_authz_credentials,
    a_full_hashing_queue_answers_503,
);
