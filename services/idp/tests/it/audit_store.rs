//! The audit store (crate `audit`) on idp's database, SQLite and PostgreSQL: appending
//! inside a transaction, filtered keyset paging, retention purge.

use audit::{Action, Actor, AuditEvent, AuditFilter, Cursor, TargetKind};
use storage::diesel_async::AsyncConnection;
use storage::testing::TestDatabase;
use storage::with_conn;

const T0: i64 = 1_800_000_000_000;

fn login_failed(at: i64, user: &str) -> AuditEvent {
    AuditEvent::new(Actor::Anonymous, Action::LoginFailed)
        .at(at)
        .from(Some("192.0.2.7".parse().unwrap()))
        .target(TargetKind::User, user)
        .failed("bad_password")
}

/// An event appended in a transaction that rolls back is gone with it; one appended in a
/// committed transaction is stored with every field.
async fn append_follows_the_callers_transaction(t: TestDatabase) {
    let db = t.connect(&idp::MIGRATIONS).await.unwrap();
    let event = AuditEvent::new(
        Actor::AdminClient(audit::Ident::new("ops")),
        Action::UserDisabled,
    )
    .at(T0)
    .from(Some("2001:db8::1".parse().unwrap()))
    .target(TargetKind::User, "u-1");
    let mut conn = db.get().await.unwrap();
    let rolled_back: Result<(), diesel::result::Error> = with_conn!(&mut conn, |c| c
        .transaction(async |tx| {
            audit::append(tx, &event).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await);
    assert!(rolled_back.is_err());
    let page = audit::list(&db, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.records.is_empty(), "{:?}", page.records);

    let committed: Result<(), diesel::result::Error> = with_conn!(&mut conn, |c| c
        .transaction(async |tx| audit::append(tx, &event).await)
        .await);
    committed.unwrap();
    let page = audit::list(&db, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    let r = &page.records[0];
    assert_eq!(r.action, "user.disabled");
    assert_eq!(r.actor_kind, "admin_client");
    assert_eq!(r.actor_id.as_deref(), Some("ops"));
    assert_eq!(r.address.as_deref(), Some("2001:db8::1"));
    assert_eq!(r.target_kind.as_deref(), Some("user"));
    assert_eq!(r.target_id.as_deref(), Some("u-1"));
    assert_eq!(r.outcome, "success");
    assert_eq!(r.reason, None);
    assert_eq!(r.occurred_at, "2027-01-15T08:00:00.000Z");
    assert!(page.next.is_none());
}

/// Filters combine; pages are newest first, disjoint, and cover everything; a forged
/// cursor is refused.
async fn list_filters_and_pages(t: TestDatabase) {
    let db = t.connect(&idp::MIGRATIONS).await.unwrap();
    for i in 0..5 {
        audit::record(
            &db,
            &login_failed(T0 + i, if i % 2 == 0 { "even" } else { "odd" }),
        )
        .await
        .unwrap();
    }
    // Two events at the same millisecond: the id breaks the tie, none is skipped.
    for _ in 0..2 {
        audit::record(
            &db,
            &AuditEvent::new(
                Actor::User(audit::Ident::new("even")),
                Action::LoginSucceeded,
            )
            .at(T0 + 10)
            .target(TargetKind::User, "even"),
        )
        .await
        .unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = audit::list(&db, &AuditFilter::default(), cursor.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.records.len() <= 2);
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.occurred_at_ms, r.id.clone())),
        );
        match page.next {
            Some(next) => cursor = Some(Cursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, seen, "newest first, no duplicates");

    let count = |f: AuditFilter| {
        let db = db.clone();
        async move { audit::list(&db, &f, None, 100).await.unwrap().records.len() }
    };
    let failed = AuditFilter {
        action: Some(Action::LoginFailed),
        ..AuditFilter::default()
    };
    assert_eq!(count(failed.clone()).await, 5);
    assert_eq!(
        count(AuditFilter {
            target_id: Some("even".into()),
            ..failed.clone()
        })
        .await,
        3
    );
    assert_eq!(
        count(AuditFilter {
            succeeded: Some(true),
            ..AuditFilter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(AuditFilter {
            actor_id: Some("even".into()),
            ..AuditFilter::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(AuditFilter {
            since_ms: Some(T0 + 1),
            until_ms: Some(T0 + 4),
            ..failed
        })
        .await,
        3
    );
    assert_eq!(
        count(AuditFilter {
            target_kind: Some(TargetKind::Client),
            ..AuditFilter::default()
        })
        .await,
        0
    );
    assert!(Cursor::decode("not-a-cursor").is_err());
}

/// The purge deletes exactly the events before the cut-off.
async fn purge_deletes_only_older_events(t: TestDatabase) {
    let db = t.connect(&idp::MIGRATIONS).await.unwrap();
    for i in 0..4 {
        audit::record(&db, &login_failed(T0 + i * 1000, "u"))
            .await
            .unwrap();
    }
    assert_eq!(audit::purge(&db, T0 + 2000).await.unwrap(), 2);
    assert_eq!(audit::purge(&db, T0 + 2000).await.unwrap(), 0);
    let left = audit::list(&db, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let times: Vec<i64> = left.records.iter().map(|r| r.occurred_at_ms).collect();
    assert_eq!(times, vec![T0 + 3000, T0 + 2000]);
}

storage::backend_tests!(idp::MIGRATIONS;
    append_follows_the_callers_transaction,
    list_filters_and_pages,
    purge_deletes_only_older_events,
);
