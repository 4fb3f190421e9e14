//! The demo API's domain: items, their validation, and a bounded in-memory store. No HTTP.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::RsError;

/// Longest item name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Largest quantity.
pub const MAX_QUANTITY: u32 = 1_000_000;

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Assigned by the store, from 1.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// How many.
    pub quantity: u32,
    /// `sub` of the token that created it.
    pub created_by: String,
}

/// The body of `POST /api/v1/items` as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItemRequest {
    name: String,
    #[serde(default = "one")]
    quantity: u32,
}

fn one() -> u32 {
    1
}

/// A validated new item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    name: String,
    quantity: u32,
}

impl TryFrom<NewItemRequest> for NewItem {
    type Error = RsError;

    /// `name`: 1 to 100 characters after trimming, no control characters; `quantity`: 1 to
    /// 1,000,000.
    fn try_from(req: NewItemRequest) -> Result<Self, RsError> {
        let name = req.name.trim();
        if name.is_empty() {
            return Err(RsError::InvalidItem("name: must not be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(RsError::InvalidItem(format!(
                "name: at most {MAX_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(RsError::InvalidItem(
                "name: must not contain control characters".into(),
            ));
        }
        if req.quantity == 0 || req.quantity > MAX_QUANTITY {
            return Err(RsError::InvalidItem(format!(
                "quantity: must be between 1 and {MAX_QUANTITY}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            quantity: req.quantity,
        })
    }
}

/// Items in memory, at most `capacity` of them and at most `max_per_subject` created by
/// any one token subject, so that one caller cannot fill the store shared by all.
#[derive(Debug)]
pub struct ItemStore {
    capacity: usize,
    max_per_subject: usize,
    inner: Mutex<Inner>,
}

/// The store's state, behind one lock so that the quota and the capacity are checked and
/// updated atomically.
#[derive(Debug, Default)]
struct Inner {
    last_id: u64,
    items: Vec<Item>,
    per_subject: HashMap<String, usize>,
}

impl ItemStore {
    /// An empty store holding at most `capacity` items, at most `max_per_subject` of them
    /// created by one `sub`.
    pub fn new(capacity: usize, max_per_subject: usize) -> Self {
        Self {
            capacity,
            max_per_subject,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `item` for `created_by`. `QuotaExceeded` once `created_by` already created
    /// `max_per_subject` items (checked first, so an over-quota caller is told so even when
    /// the store is also full); `StoreFull` at capacity.
    pub fn add(&self, item: NewItem, created_by: &str) -> Result<Item, RsError> {
        let mut inner = self.lock();
        let mine = inner.per_subject.get(created_by).copied().unwrap_or(0);
        if mine >= self.max_per_subject {
            return Err(RsError::QuotaExceeded);
        }
        if inner.items.len() >= self.capacity {
            return Err(RsError::StoreFull);
        }
        inner.last_id += 1;
        let stored = Item {
            id: inner.last_id,
            name: item.name,
            quantity: item.quantity,
            created_by: created_by.to_owned(),
        };
        inner.items.push(stored.clone());
        *inner.per_subject.entry(created_by.to_owned()).or_insert(0) += 1;
        Ok(stored)
    }

    /// Every item, oldest first.
    pub fn list(&self) -> Vec<Item> {
        self.lock().items.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<NewItem, String> {
        let req: NewItemRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        NewItem::try_from(req).map_err(|e| e.to_string())
    }

    #[test]
    fn validation() {
        assert_eq!(
            parse(r#"{"name":"  bolt "}"#).unwrap(),
            NewItem {
                name: "bolt".into(),
                quantity: 1
            }
        );
        assert_eq!(
            parse(r#"{"name":" "}"#).unwrap_err(),
            "name: must not be empty"
        );
        assert_eq!(
            parse(&format!(r#"{{"name":"{}"}}"#, "x".repeat(101))).unwrap_err(),
            "name: at most 100 characters"
        );
        assert_eq!(
            parse(r#"{"name":"a\u0007b"}"#).unwrap_err(),
            "name: must not contain control characters"
        );
        assert_eq!(
            parse(r#"{"name":"a","quantity":0}"#).unwrap_err(),
            "quantity: must be between 1 and 1000000"
        );
        assert!(parse(r#"{"name":"a","colour":"red"}"#).is_err());
    }

    #[test]
    fn the_store_is_bounded() {
        let store = ItemStore::new(2, 2);
        let item = || NewItem {
            name: "n".into(),
            quantity: 1,
        };
        assert_eq!(store.add(item(), "alice").unwrap().id, 1);
        assert_eq!(store.add(item(), "bob").unwrap().id, 2);
        assert!(matches!(
            store.add(item(), "carol"),
            Err(RsError::StoreFull)
        ));
        let all = store.list();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].created_by, "bob");
    }
}
