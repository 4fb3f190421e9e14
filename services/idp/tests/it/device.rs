//! The device verification page (RFC 8628 §3.3) against the fake authz, on SQLite and
//! PostgreSQL: the code form (prefilled from `verification_uri_complete`, never approved
//! without the user), sign-in, the confirmation with the client and scopes, approve and
//! deny, wrong and used codes, CSRF, and the throttle on guessing (per browser, per
//! address).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use storage::testing::TestDatabase;

use crate::fake_authz::Call;
use crate::harness::{Browser, Idp, PASSWORD, Page, start};

const CODE: &str = "BCDF-GHJK";
const WRONG: &str = "That code is not valid.";
const THROTTLED: &str = "Too many wrong codes.";

fn addr(c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, c))
}

/// Opens the code form (with `?user_code=` when given) and submits `typed`.
async fn submit(browser: &mut Browser, prefill: Option<&str>, typed: &str) -> Page {
    let path = prefill.map_or("/device".to_owned(), |p| format!("/device?user_code={p}"));
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    browser
        .post(
            "/device",
            &[
                ("csrf", &form.hidden("csrf")),
                ("user_code", typed),
                ("action", "submit"),
            ],
        )
        .await
}

/// Posts `action` on the sign-in or confirmation `page`.
async fn act(browser: &mut Browser, page: &Page, action: &str, extra: &[(&str, &str)]) -> Page {
    let csrf = page.hidden("csrf");
    let code = page.hidden("user_code");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("user_code", code.as_str()),
        ("action", action),
    ];
    form.extend_from_slice(extra);
    browser.post("/device", &form).await
}

fn device_calls(idp: &Idp) -> Vec<Call> {
    idp.authz
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::AcceptDevice(_) | Call::RejectDevice(_)))
        .collect()
}

async fn a_user_signs_in_and_approves_a_device(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let leo = idp.user("leo").await;
    idp.authz.device(CODE);
    let mut browser = Browser::new(&idp);

    // From verification_uri_complete: the code is prefilled, nothing is approved yet.
    let form = browser.get("/device?user_code=bcdf-ghjk").await;
    assert_eq!(form.status, 200);
    assert_eq!(form.headers["cache-control"], "no-store");
    assert_eq!(form.hidden("user_code"), "bcdf-ghjk");
    assert!(device_calls(&idp).is_empty());

    // A valid code (typed in lower case, with a space) asks for a sign-in.
    let sign_in = submit(&mut browser, Some("bcdf-ghjk"), "bcdf ghjk").await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    assert!(sign_in.body.contains("Demo TV"), "{}", sign_in.body);
    assert!(sign_in.body.contains(CODE));
    assert!(sign_in.body.contains(r#"name="password""#));

    let failed = act(
        &mut browser,
        &sign_in,
        "login",
        &[("username", "leo"), ("password", "wrong password")],
    )
    .await;
    assert_eq!(failed.status, 200);
    assert!(failed.body.contains("Incorrect username or password."));

    let confirm = act(
        &mut browser,
        &failed,
        "login",
        &[("username", "leo"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.set_cookie("idp_session").is_some());
    for text in [
        "Connect this device?",
        "Demo TV",
        CODE,
        "Confirm your identity",
        "See your profile",
        "Signed in as leo",
    ] {
        assert!(confirm.body.contains(text), "{text}: {}", confirm.body);
    }
    assert!(device_calls(&idp).is_empty(), "not approved before Allow");

    let done = act(&mut browser, &confirm, "allow", &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let calls = device_calls(&idp);
    let [Call::AcceptDevice(accepted)] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert_eq!(accepted.user_code, CODE);
    assert_eq!(accepted.subject, leo.id);
    assert!(!accepted.session_id.is_empty());
    assert_eq!(accepted.amr, ["pwd"]);
    assert_eq!(accepted.acr, "1");

    // The code works once: the same confirmation again is a clear "expired or used" page.
    let again = act(&mut browser, &confirm, "allow", &[]).await;
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(
        again.body.contains("expired or was already used"),
        "{}",
        again.body
    );
    assert_eq!(device_calls(&idp).len(), 1);
    // And typed again it is a wrong code.
    let used = submit(&mut browser, None, CODE).await;
    assert_eq!(used.status, 400);
    assert!(used.body.contains(WRONG));
}

async fn a_signed_in_user_can_deny_a_device(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("mia").await;
    let mut browser = Browser::new(&idp);
    idp.authz.login("l1");
    assert_eq!(browser.login("l1", "mia", PASSWORD).await.status, 303);
    idp.authz.device(CODE);
    // With a session the code leads straight to the confirmation.
    let confirm = submit(&mut browser, None, CODE).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Signed in as mia"));
    let done = act(&mut browser, &confirm, "deny", &[]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Device not connected"), "{}", done.body);
    let calls = device_calls(&idp);
    assert!(
        matches!(calls.as_slice(), [Call::RejectDevice(r)] if r.user_code == CODE),
        "{calls:?}"
    );
}

async fn forms_need_their_csrf_token(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("leo").await;
    idp.authz.login("l1");
    let mut browser = Browser::new(&idp);
    assert_eq!(browser.login("l1", "leo", PASSWORD).await.status, 303);
    idp.authz.device(CODE);
    idp.authz.device("XZXZ-XZXZ");
    let no_token = browser
        .post("/device", &[("user_code", CODE), ("action", "submit")])
        .await;
    assert_eq!(no_token.status, 403);
    let confirm = submit(&mut browser, None, CODE).await;
    assert_eq!(confirm.status, 200);
    // The confirmation's token is bound to its code: it cannot approve another one.
    let other = browser
        .post(
            "/device",
            &[
                ("csrf", &confirm.hidden("csrf")),
                ("user_code", "XZXZ-XZXZ"),
                ("action", "allow"),
            ],
        )
        .await;
    assert_eq!(other.status, 403);
    assert!(device_calls(&idp).is_empty());
}

async fn guessing_codes_is_throttled(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 3;
        c.login_throttle.address_free_failures = 6;
        c.login_throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    idp.user("nia").await;
    idp.authz.device(CODE);
    // A neighbour on the same address signed in before (so holds a device cookie).
    let mut neighbour = Browser::from_address(&idp, addr(1));
    idp.authz.login("n1");
    assert_eq!(neighbour.login("n1", "nia", PASSWORD).await.status, 303);
    assert!(neighbour.cookies.contains_key("idp_device"));
    let mut guesser = Browser::from_address(&idp, addr(1));
    for typed in ["ZZZZ-ZZZZ", "0000-0000", "nonsense", "BCDF-GHJX"] {
        let page = submit(&mut guesser, None, typed).await;
        assert_eq!(page.status, 400, "{typed}: {}", page.body);
        assert!(page.body.contains(WRONG));
    }
    // Blocked now, even for the right code, which is not even looked up.
    let refused = submit(&mut guesser, None, CODE).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains(THROTTLED));
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((60..=900).contains(&retry), "{retry}");
    // A browser with its own device cookie on the same address is counted apart (until
    // the address limit)...
    let page = submit(&mut neighbour, None, CODE).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Connect this device?"));
    // ...but the address's own limit is hard: two more wrong codes from there (seven
    // failures with the refused attempt) block it for everyone.
    for _ in 0..2 {
        assert_eq!(submit(&mut neighbour, None, "ZZZZ-ZZZZ").await.status, 400);
    }
    let blocked = submit(&mut Browser::from_address(&idp, addr(1)), None, CODE).await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    // Elsewhere the code still works.
    let mut owner = Browser::from_address(&idp, addr(2));
    assert_eq!(submit(&mut owner, None, CODE).await.status, 200);
    // The block ends.
    idp.clock.advance(Duration::from_secs(3600));
    assert_eq!(submit(&mut guesser, None, CODE).await.status, 200);
}

storage::backend_tests!(
    idp::MIGRATIONS;
    a_user_signs_in_and_approves_a_device,
    a_signed_in_user_can_deny_a_device,
    forms_need_their_csrf_token,
    guessing_codes_is_throttled,
);
