//! The refresh token reuse interval (issue 14; RFC 9700 §4.14.2, OAuth 2.1 §6.1): a client
//! that presents a rotated refresh token again shortly after (a retry after a timeout, the
//! loser of a race) gets the same successor instead of losing its session; reuse after the
//! interval, or after the successor was used, still revokes the whole grant.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use storage::testing::TestDatabase;

use crate::flow_env::*;

const INTERVAL: u64 = 10;

async fn with_grace(db: &TestDatabase) -> Env {
    start_with(db, |c| {
        c.tokens.refresh_reuse_interval = Duration::from_secs(INTERVAL)
    })
    .await
}

/// Signs alice in and redeems the code: the first refresh token.
async fn first_refresh(env: &Env) -> String {
    let mut browser = Browser::new(env);
    let (code, verifier) = env
        .sign_in(&mut browser, "web", "openid profile", "alice", "idp-a")
        .await;
    let (status, _, body) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().unwrap().to_owned()
}

fn ok(result: &(StatusCode, reqwest::header::HeaderMap, Value)) -> (String, String) {
    let (status, _, body) = result;
    assert_eq!(*status, 200, "{body}");
    (
        body["refresh_token"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

fn invalid_grant(result: &(StatusCode, reqwest::header::HeaderMap, Value)) {
    let (status, _, body) = result;
    assert_eq!(*status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

async fn a_retry_within_the_interval_gets_the_same_successor(db: TestDatabase) {
    let env = with_grace(&db).await;
    let r0 = first_refresh(&env).await;
    let (r1, a1) = ok(&env.refresh("web", &r0).await);
    assert_ne!(r1, r0);

    // The response was lost; the client retries with the old token.
    env.clock.advance(INTERVAL as i64 - 1);
    let (again, a1b) = ok(&env.refresh("web", &r0).await);
    assert_eq!(again, r1, "the same successor, not a new family member");
    assert!(env.active(&a1).await, "nothing was revoked");
    assert!(env.active(&a1b).await);

    // The successor works, once; then the old token is a replay even within the interval.
    let (r2, a2) = ok(&env.refresh("web", &r1).await);
    invalid_grant(&env.refresh("web", &r0).await);
    invalid_grant(&env.refresh("web", &r2).await);
    for t in [&a1, &a1b, &a2] {
        assert!(!env.active(t).await, "revoked with its grant");
    }
}

async fn reuse_after_the_interval_still_revokes_the_grant(db: TestDatabase) {
    let env = with_grace(&db).await;
    let r0 = first_refresh(&env).await;
    let (r1, a1) = ok(&env.refresh("web", &r0).await);
    env.clock.advance(INTERVAL as i64);
    invalid_grant(&env.refresh("web", &r0).await);
    invalid_grant(&env.refresh("web", &r1).await);
    assert!(!env.active(&a1).await);
}

async fn concurrent_refreshes_within_the_interval_all_get_the_one_successor(db: TestDatabase) {
    let env = Arc::new(with_grace(&db).await);
    let r0 = first_refresh(&env).await;
    let results = futures_util::future::join_all((0..10).map(|_| {
        let env = Arc::clone(&env);
        let r0 = r0.clone();
        async move { env.refresh("web", &r0).await }
    }))
    .await;
    let pairs: Vec<(String, String)> = results.iter().map(ok).collect();
    let successor = &pairs[0].0;
    assert!(
        pairs.iter().all(|(r, _)| r == successor),
        "one winner, the others got the grace answer"
    );
    for (_, access) in &pairs {
        assert!(env.active(access).await, "nothing was revoked");
    }
    ok(&env.refresh("web", successor).await);
}

storage::backend_tests!(
    authz::MIGRATIONS;
    a_retry_within_the_interval_gets_the_same_successor,
    reuse_after_the_interval_still_revokes_the_grant,
    concurrent_refreshes_within_the_interval_all_get_the_one_successor,
);
