//! Cursor pagination: `?limit=&cursor=`, answers `{"items": […], "next_cursor": …}`.
//! A cursor is opaque to clients: the sort key of the last item returned, encoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::AdminError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 500;

/// One page of a listing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `limit` validated: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(limit: Option<u32>) -> Result<usize, AdminError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n as usize),
        _ => Err(AdminError::InvalidQuery {
            field: Some("limit".into()),
            detail: format!("limit must be between 1 and {MAX_LIMIT}"),
        }),
    }
}

/// The cursor that resumes after the item whose sort key is `key`.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{key}"))
}

/// The sort key a `cursor` resumes after; 400 `invalid-query` on `cursor` if it was not
/// made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String, AdminError> {
    let invalid = || AdminError::InvalidQuery {
        field: Some("cursor".into()),
        detail: "the cursor is not one this API returned".into(),
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("v1:")
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// A page from up to `limit + 1` items read after the cursor in sort order: when there
/// is one more than `limit`, it is dropped and `next_cursor` resumes after the last kept.
pub fn page<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_pages_cut() {
        assert_eq!(decode_cursor(&encode_cursor("abc")).unwrap(), "abc");
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("abc")).is_err());
        let p = page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(
            decode_cursor(p.next_cursor.as_deref().unwrap()).unwrap(),
            "2"
        );
        assert!(page(vec![1, 2], 2, |n| n.to_string()).next_cursor.is_none());
        assert_eq!(limit(None).unwrap(), 50);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
