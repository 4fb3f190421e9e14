//! Pending authorization requests are bounded (issue 14): unauthenticated `/authorize`
//! requests stored 33,441 rows in 20 s. A cap on pending requests and a per-address
//! allowance per minute answer `temporarily_unavailable` at the redirect URI (RFC 6749
//! §4.1.2.1) instead of storing another row; a request whose challenge idp never reads
//! expires after `authorize.unresumed_ttl` (and the periodic purge deletes it).

use std::net::IpAddr;

use diesel::QueryableByName;
use storage::Database;
use storage::diesel_async::RunQueryDsl;
use storage::testing::TestDatabase;

use crate::flow_env::*;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn pending_rows(db: &TestDatabase) -> i64 {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let count: Count = storage::with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT COUNT(*) AS n FROM authorization_requests"
    )
    .get_result(c)
    .await)
    .unwrap();
    count.n
}

/// A fresh browser from `from` asks for a code: it needs a login, so a pending request.
async fn ask(env: &Env, from: IpAddr) -> Seen {
    let (_, challenge) = pkce();
    Browser::from_address(env, from)
        .authorize(&code_request("web", WEB_CB, "openid", &challenge, &[]))
        .await
}

fn refused(seen: &Seen) {
    let reply = seen.redirected_to(WEB_CB);
    assert_eq!(reply["error"], "temporarily_unavailable", "{reply:?}");
    assert_eq!(reply["state"], "st-123");
}

async fn the_pending_requests_are_capped(db: TestDatabase) {
    let env = start_with(&db, |c| {
        c.authorize.max_pending_requests = 3;
        c.authorize.pending_requests_per_address = 100;
    })
    .await;
    let local: IpAddr = [127, 0, 0, 1].into();
    for _ in 0..3 {
        ask(&env, local)
            .await
            .redirected_to(&format!("{IDP_URL}/login"));
    }
    refused(&ask(&env, local).await);
    refused(&ask(&env, [127, 0, 0, 2].into()).await);
    assert_eq!(pending_rows(&db).await, 3, "no row beyond the cap");

    // Once they expire (and are purged or not), new requests are admitted again.
    env.clock.advance(601);
    ask(&env, local)
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
}

async fn one_address_is_limited_while_another_gets_through(db: TestDatabase) {
    let env = start_with(&db, |c| c.authorize.pending_requests_per_address = 2).await;
    let noisy: IpAddr = [127, 0, 0, 1].into();
    for _ in 0..2 {
        ask(&env, noisy)
            .await
            .redirected_to(&format!("{IDP_URL}/login"));
    }
    refused(&ask(&env, noisy).await);
    // A forged X-Forwarded-For is not believed: still the same address.
    let (_, challenge) = pkce();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(code_request("web", WEB_CB, "openid", &challenge, &[]))
        .finish();
    let forged = env
        .http
        .get(format!("http://{}/authorize?{q}", env.addrs.http))
        .header("x-forwarded-for", "203.0.113.9")
        .header("forwarded", "for=203.0.113.9")
        .send()
        .await
        .unwrap();
    let location = forged.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(WEB_CB) && location.contains("error=temporarily_unavailable"),
        "{location}"
    );
    ask(&env, [127, 0, 0, 2].into())
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
    assert_eq!(pending_rows(&db).await, 3);

    // The next minute the address is admitted again.
    env.clock.advance(60);
    ask(&env, noisy)
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
}

async fn a_request_nobody_follows_up_expires_after_unresumed_ttl(db: TestDatabase) {
    let env = start_with(&db, |c| {
        c.authorize.max_pending_requests = 2;
        c.authorize.unresumed_ttl = std::time::Duration::from_secs(120);
    })
    .await;
    let local: IpAddr = [127, 0, 0, 1].into();
    let abandoned = ask(&env, local)
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
    let followed = ask(&env, local)
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
    refused(&ask(&env, local).await);
    // The browser reached idp's login page for one of them: idp read its challenge.
    env.get_login(&followed["login_challenge"]).await.unwrap();

    env.clock.advance(121);
    assert_eq!(
        env.get_login(&abandoned["login_challenge"])
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound,
        "never followed up: expired after unresumed_ttl"
    );
    // The abandoned one no longer counts against the cap; the followed one is still alive
    // (request_ttl, 10m) and can be answered.
    ask(&env, local)
        .await
        .redirected_to(&format!("{IDP_URL}/login"));
    env.accept_login(&followed["login_challenge"], "alice", "idp-a", env.now())
        .await
        .unwrap();
}

storage::backend_tests!(
    authz::MIGRATIONS;
    the_pending_requests_are_capped,
    one_address_is_limited_while_another_gets_through,
    a_request_nobody_follows_up_expires_after_unresumed_ttl,
);
