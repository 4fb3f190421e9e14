//! One subject cannot fill the shared item store (issue 14): past `items.max_per_subject`
//! that subject is refused with 403 `quota_exceeded` while others still create items.

use actix_web::ResponseError;
use rs::RsError;
use rs::items::{ItemStore, NewItem, NewItemRequest};

fn item(name: &str) -> NewItem {
    let req: NewItemRequest = serde_json::from_value(serde_json::json!({ "name": name })).unwrap();
    NewItem::try_from(req).unwrap()
}

#[test]
fn a_subject_over_its_quota_is_refused_while_others_still_create_items() {
    let store = ItemStore::new(10, 3);
    for n in 0..3 {
        store.add(item(&format!("a{n}")), "mallory").unwrap();
    }
    let refused = store.add(item("a3"), "mallory").unwrap_err();
    assert!(matches!(refused, RsError::QuotaExceeded), "{refused:?}");
    assert_eq!(refused.status_code(), 403);
    let body = refused.error_response();
    assert_eq!(body.status(), 403);

    // The store is far from full, and another subject is served.
    let theirs = store.add(item("b0"), "alice").unwrap();
    assert_eq!(theirs.created_by, "alice");
    assert_eq!(store.list().len(), 4);
    assert_eq!(
        store
            .list()
            .iter()
            .filter(|i| i.created_by == "mallory")
            .count(),
        3
    );
}

#[test]
fn the_shared_capacity_still_answers_507_when_every_subject_is_within_quota() {
    let store = ItemStore::new(4, 2);
    for sub in ["a", "b"] {
        for n in 0..2 {
            store.add(item(&format!("{sub}{n}")), sub).unwrap();
        }
    }
    let full = store.add(item("c0"), "c").unwrap_err();
    assert!(matches!(full, RsError::StoreFull), "{full:?}");
    assert_eq!(full.status_code(), 507);
}
