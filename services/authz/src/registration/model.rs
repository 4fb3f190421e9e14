//! The initial access token as stored.

use domain::ScopeSet;

/// An initial access token (RFC 7591 §3) as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialAccessToken {
    /// Row id (shown by `list`, used by `revoke`).
    pub id: String,
    /// What the operator noted about it.
    pub description: String,
    /// The most a client registered with it may ask for, and its default scope.
    pub scope: ScopeSet,
    /// Registrations it still allows.
    pub uses_left: i64,
    /// When it was minted (Unix seconds).
    pub created_at: i64,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
}

impl InitialAccessToken {
    /// Whether it still registers a client at `now`.
    pub fn is_usable_at(&self, now: i64) -> bool {
        self.uses_left > 0 && self.expires_at > now
    }
}
