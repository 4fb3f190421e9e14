//! The login throttle (OWASP ASVS V2.2.1) over HTTP, on SQLite and PostgreSQL: one counter
//! per resolved account whatever spelling is typed, a soft account limit the owner's device
//! cookie gets past, a hard address limit, attempts while blocked counted, counters that
//! decay, and one limit across replicas sharing the database.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use storage::testing::TestDatabase;

use crate::harness::{Browser, Idp, PASSWORD, Page, replica, start};

/// A client address on the loopback network (Linux routes all of 127.0.0.0/8 locally).
fn addr(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, a, b, c))
}

/// One login with a fresh challenge, in `browser`.
async fn login(idp: &Idp, browser: &mut Browser, who: &str, password: &str) -> Page {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let challenge = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
    idp.authz.login(&challenge);
    browser.login(&challenge, who, password).await
}

/// One login from a fresh browser (no cookies) at `from`.
async fn fresh(idp: &Idp, from: IpAddr, who: &str, password: &str) -> Page {
    login(idp, &mut Browser::from_address(idp, from), who, password).await
}

/// A browser at `from` that signed in as `who` (and so holds a device cookie), with its
/// session cookie dropped, as after the session ended: the next login shows the form.
async fn owner(idp: &Idp, from: IpAddr, who: &str) -> Browser {
    let mut browser = Browser::from_address(idp, from);
    let done = login(idp, &mut browser, who, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        browser.cookies.contains_key("idp_device"),
        "a device cookie"
    );
    browser.cookies.remove("idp_session");
    browser
}

/// `demo`, `DEMO@example.com` and ` Demo ` are one account: their failures add up, and the
/// block holds for every spelling. Unknown names are counted per normalised name and
/// answered exactly like known ones.
async fn every_spelling_of_an_account_shares_one_counter(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 3;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(30);
    })
    .await;
    idp.user("dave").await;
    let here = addr(0, 0, 1);
    for who in ["dave", "DAVE@example.com", " Dave ", "dave@example.com"] {
        assert_eq!(fresh(&idp, here, who, "wrong password").await.status, 200);
    }
    for who in ["dave", "dave@example.com"] {
        let refused = fresh(&idp, here, who, PASSWORD).await;
        assert_eq!(refused.status, 429, "{who}: the account is blocked");
        assert!(refused.body.contains("Too many failed attempts"));
        assert!(refused.set_cookie("idp_session").is_none());
    }
    for who in ["ghost", "GHOST", " ghost", "Ghost"] {
        assert_eq!(fresh(&idp, here, who, "wrong password").await.status, 200);
    }
    let unknown = fresh(&idp, here, "ghost", "wrong password").await;
    assert_eq!(unknown.status, 429, "unknown names back off the same way");
    assert_eq!(unknown.headers["retry-after"], "60");
    assert!(idp.authz.calls().is_empty(), "nobody signed in");
}

/// The owner's browser, which signed in before from 127.0.2.x, still signs in with the
/// right password while an attacker at 127.0.0.1 keeps the account blocked; a fresh
/// browser (even in the owner's network), the owner's cookie from another network or for
/// another account, and the attacker stay refused.
async fn a_device_cookie_lets_the_owner_past_an_account_block(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 3;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    let erin = idp.user("erin").await;
    idp.user("fred").await;
    let home = addr(0, 2, 10);
    let mut owner = owner(&idp, home, "erin").await;

    let attacker = addr(0, 0, 1);
    for n in 0..6 {
        let who = if n % 2 == 0 {
            "erin"
        } else {
            "erin@example.com"
        };
        let page = fresh(&idp, attacker, who, "wrong password").await;
        assert_eq!(page.status, if n < 4 { 200 } else { 429 }, "attempt {n}");
    }
    assert_eq!(fresh(&idp, attacker, "erin", PASSWORD).await.status, 429);

    // The owner: same browser, same network (another address in its /24).
    let mut owner_moved = Browser::from_address(&idp, addr(0, 2, 11));
    owner_moved.cookies.clone_from(&owner.cookies);
    let done = login(&idp, &mut owner_moved, "erin", PASSWORD).await;
    assert_eq!(done.status, 303, "the owner signs in: {}", done.body);
    assert!(done.set_cookie("idp_session").is_some());
    let accepted: Vec<_> = idp.authz.calls();
    assert!(
        accepted.iter().any(|c| matches!(c,
            crate::fake_authz::Call::AcceptLogin(a) if a.subject == erin.id)),
        "{accepted:?}"
    );
    // The owner's success does not lift the attacker's block.
    assert_eq!(fresh(&idp, attacker, "erin", PASSWORD).await.status, 429);
    // A fresh browser in the owner's network has no device cookie: refused.
    assert_eq!(
        fresh(&idp, addr(0, 2, 12), "erin", PASSWORD).await.status,
        429
    );
    // The owner's (old) device cookie from another network: refused.
    let mut elsewhere = Browser::from_address(&idp, addr(0, 3, 10));
    elsewhere.cookies.clone_from(&owner.cookies);
    elsewhere.cookies.remove("idp_session");
    assert_eq!(
        login(&idp, &mut elsewhere, "erin", PASSWORD).await.status,
        429
    );
    // The login replaced the owner's device cookie: the old one no longer counts.
    owner.cookies.remove("idp_session");
    assert_eq!(login(&idp, &mut owner, "erin", PASSWORD).await.status, 429);
    // The current one does, but only for its own account.
    owner_moved.cookies.remove("idp_session");
    for _ in 0..4 {
        fresh(&idp, attacker, "fred", "wrong password").await;
    }
    assert_eq!(
        login(&idp, &mut owner_moved, "fred", PASSWORD).await.status,
        429,
        "erin's device cookie does not open fred's blocked account"
    );
    // A wrong password through the soft path is an ordinary failure.
    assert_eq!(
        login(&idp, &mut owner_moved, "erin", "wrong password")
            .await
            .status,
        200
    );
    assert_eq!(
        login(&idp, &mut owner_moved, "erin", PASSWORD).await.status,
        303
    );
    assert!(
        idp.metric(r#"idp_login_throttled_total{scope="account"}"#)
            .await
            >= 6.0
    );
}

/// A blocked address is refused even with the owner's device cookie; its refusals extend
/// the address's block, not the account's.
async fn the_address_limit_is_hard(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 1;
        c.login_throttle.address_free_failures = 2;
        c.login_throttle.base_delay = Duration::from_secs(60);
    })
    .await;
    idp.user("gina").await;
    let home = addr(0, 4, 1);
    let mut owner = owner(&idp, home, "gina").await;
    for who in ["a", "b", "c"] {
        assert_eq!(fresh(&idp, home, who, "wrong password").await.status, 200);
    }
    let refused = login(&idp, &mut owner, "gina", PASSWORD).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.headers["retry-after"], "120",
        "the refused attempt counted"
    );
    let again = fresh(&idp, home, "gina", "wrong password").await;
    assert_eq!(again.status, 429);
    assert_eq!(again.headers["retry-after"], "240");
    assert_eq!(
        fresh(&idp, addr(0, 4, 2), "gina", PASSWORD).await.status,
        303,
        "another address is not blocked, nor is the account (one free failure)"
    );
    assert!(
        idp.metric(r#"idp_login_throttled_total{scope="address"}"#)
            .await
            >= 1.0
    );
}

/// Attempts while blocked count (the block doubles up to `max_delay`, so hammering gains
/// nothing); the block never exceeds `max_delay`; a counter without failures for
/// `reset_after` is forgotten, so the owner is not locked out for good.
async fn attempts_while_blocked_count_and_counters_decay(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 1;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(10);
        c.login_throttle.max_delay = Duration::from_secs(40);
        c.login_throttle.reset_after = Duration::from_secs(60);
    })
    .await;
    idp.user("hana").await;
    let here = addr(0, 5, 1);
    assert_eq!(fresh(&idp, here, "hana", "wrong").await.status, 200);
    assert_eq!(fresh(&idp, here, "hana", "wrong").await.status, 200);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let page = fresh(&idp, here, "hana", PASSWORD).await;
        assert_eq!(page.status, 429);
        waits.push(page.headers["retry-after"].to_str().unwrap().to_owned());
    }
    assert_eq!(waits, ["20", "40", "40", "40"], "doubling, capped");
    // The block ends max_delay after the last attempt.
    idp.clock.advance(Duration::from_secs(41));
    assert_eq!(fresh(&idp, here, "hana", PASSWORD).await.status, 303);
    // A success cleared the counter: one free failure again.
    assert_eq!(fresh(&idp, here, "hana", "wrong").await.status, 200);
    assert_eq!(fresh(&idp, here, "hana", PASSWORD).await.status, 303);

    // Without a success, a counter decays after reset_after without failures.
    for _ in 0..3 {
        fresh(&idp, here, "hana", "wrong").await;
    }
    assert_eq!(fresh(&idp, here, "hana", PASSWORD).await.status, 429);
    idp.clock.advance(Duration::from_secs(61));
    assert_eq!(
        fresh(&idp, here, "hana", "wrong").await.status,
        200,
        "a free failure again"
    );
    assert_eq!(
        fresh(&idp, here, "hana", PASSWORD).await.status,
        303,
        "forgotten: one failure is not enough to block"
    );
}

/// Two replicas on one database: failures made on either add up to one limit, and the
/// block holds on both.
async fn replicas_share_one_limit(db: TestDatabase) {
    let tweak = |c: &mut idp::IdpConfig| {
        c.login_throttle.account_free_failures = 3;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(60);
    };
    let database = db.config().clone();
    let a = start(db, tweak).await;
    let b = replica(&database, tweak).await;
    a.user("ivan").await;
    let here = addr(0, 6, 1);
    for n in 0..4 {
        let idp = if n % 2 == 0 { &a } else { &b };
        assert_eq!(fresh(idp, here, "ivan", "wrong").await.status, 200);
    }
    assert_eq!(fresh(&a, here, "ivan", PASSWORD).await.status, 429);
    assert_eq!(fresh(&b, here, "ivan", PASSWORD).await.status, 429);
}

/// An account keeps the standing of its 20 newest device cookies: signing in from a 21st
/// browser takes it from the oldest, while the others still get past an account block.
async fn only_the_newest_device_cookies_keep_their_standing(db: TestDatabase) {
    let idp = start(db, |c| {
        c.login_throttle.account_free_failures = 3;
        c.login_throttle.address_free_failures = 100;
        c.login_throttle.base_delay = Duration::from_secs(600);
    })
    .await;
    idp.user("gail").await;
    let mut devices = Vec::new();
    for n in 1..=21 {
        // One second apart: the newest are told apart by their time.
        idp.clock.advance(Duration::from_secs(1));
        devices.push(owner(&idp, addr(0, 4, n), "gail").await);
    }
    let attacker = addr(0, 0, 9);
    for _ in 0..5 {
        fresh(&idp, attacker, "gail", "wrong password").await;
    }
    assert_eq!(fresh(&idp, attacker, "gail", PASSWORD).await.status, 429);
    let oldest = login(&idp, &mut devices[0], "gail", PASSWORD).await;
    assert_eq!(
        oldest.status, 429,
        "the 21st newest device lost its standing"
    );
    let second = login(&idp, &mut devices[1], "gail", PASSWORD).await;
    assert_eq!(
        second.status, 303,
        "the 20th newest still counts: {}",
        second.body
    );
    let newest = login(&idp, &mut devices[20], "gail", PASSWORD).await;
    assert_eq!(newest.status, 303, "{}", newest.body);
}

storage::backend_tests!(idp::MIGRATIONS;
    every_spelling_of_an_account_shares_one_counter,
    only_the_newest_device_cookies_keep_their_standing,
    a_device_cookie_lets_the_owner_past_an_account_block,
    the_address_limit_is_hard,
    attempts_while_blocked_count_and_counters_decay,
    replicas_share_one_limit,
);
