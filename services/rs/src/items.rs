//! The demo API's domain: items, their validation, and a bounded in-memory store. No HTTP.

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

/// Items in memory, at most `capacity` of them.
#[derive(Debug)]
pub struct ItemStore {
    capacity: usize,
    inner: Mutex<(u64, Vec<Item>)>,
}

impl ItemStore {
    /// An empty store.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((0, Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Item>)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores `item` for `created_by`; `StoreFull` at capacity.
    pub fn add(&self, item: NewItem, created_by: &str) -> Result<Item, RsError> {
        let mut inner = self.lock();
        if inner.1.len() >= self.capacity {
            return Err(RsError::StoreFull);
        }
        inner.0 += 1;
        let stored = Item {
            id: inner.0,
            name: item.name,
            quantity: item.quantity,
            created_by: created_by.to_owned(),
        };
        inner.1.push(stored.clone());
        Ok(stored)
    }

    /// Every item, oldest first.
    pub fn list(&self) -> Vec<Item> {
        self.lock().1.clone()
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
        let store = ItemStore::new(2);
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
