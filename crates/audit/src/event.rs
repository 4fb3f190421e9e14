use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The longest identifier kept; longer ones are cut (identifiers of this codebase are far
/// shorter).
const IDENT_MAX: usize = 200;

/// An identifier recorded in the trail: a user id, client id, key id, session id, grant
/// id. Control characters and whitespace become `_` and it is cut at 200 characters, so it
/// cannot forge log lines or bloat rows. Callers take identifiers from stored records,
/// never from credentials (a token, a password, a secret is never an identifier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Ident(String);

impl Ident {
    /// `raw` cleaned as described on [`Ident`].
    pub fn new(raw: &str) -> Self {
        Self(
            raw.chars()
                .take(IDENT_MAX)
                .map(|c| {
                    if c.is_control() || c.is_whitespace() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect(),
        )
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `t` in Unix milliseconds (0 before 1970, saturating far in the future): the unit of the
/// `occurred_at` column, [`AuditEvent::at`] and [`crate::purge`].
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin client calling the admin API with an access token (its `client_id`).
    AdminClient(Ident),
    /// A signed-in (or signing-in) user (the user id, the OIDC `sub`).
    User(Ident),
    /// An OAuth client acting for itself (revoking its token: its `client_id`).
    Client(Ident),
    /// The operator at the service's command line (`authz clients …`, `idp users …`).
    Operator,
    /// The service itself (automatic key rotation, retention purge).
    System,
    /// Nobody identified yet (a sign-in with an unknown name).
    Anonymous,
}

impl Actor {
    /// `admin_client`, `user`, `operator`, `system` or `anonymous` (the `actor_kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AdminClient(_) => "admin_client",
            Self::User(_) => "user",
            Self::Client(_) => "client",
            Self::Operator => "operator",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }

    /// The client or user id, if any.
    pub fn id(&self) -> Option<&Ident> {
        match self {
            Self::AdminClient(id) | Self::User(id) | Self::Client(id) => Some(id),
            _ => None,
        }
    }
}

macro_rules! names {
    ($(#[$meta:meta])* $vis:vis enum $ty:ident { $($(#[$vmeta:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $ty {
            $($(#[$vmeta])* $v,)*
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$v,)*];

            /// The stored and logged name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$v => $s,)*
                }
            }

            /// The value named `name`, if any.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($s => Some(Self::$v),)*
                    _ => None,
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// What happened. Security events first, then admin writes by area.
    pub enum Action {
        /// A user signed in (password accepted, session created).
        LoginSucceeded => "login.succeeded",
        /// A sign-in was refused (wrong password, unknown name, disabled account).
        LoginFailed => "login.failed",
        /// A sign-in was refused because the account or address is locked out (back-off).
        LoginLocked => "login.locked",
        /// A user gave consent to a client (OIDC Core §3.1.2.4).
        ConsentGiven => "consent.given",
        /// A user refused consent to a client (or a device's access).
        ConsentDenied => "consent.denied",
        /// A consent was revoked (with the grants it backed).
        ConsentRevoked => "consent.revoked",
        /// A token was revoked (RFC 7009), with its grant.
        TokenRevoked => "token.revoked",
        /// The signing key was rotated (by the operator or on schedule).
        KeyRotated => "key.rotated",
        /// A signing key was retired from the JWKS.
        KeyRetired => "key.retired",
        /// A client's secret was rotated.
        ClientSecretRotated => "client.secret_rotated",
        /// A client was registered.
        ClientCreated => "client.created",
        /// A client's metadata was changed.
        ClientUpdated => "client.updated",
        /// A client was deleted.
        ClientDeleted => "client.deleted",
        /// A registration (initial access) token was issued.
        RegistrationTokenCreated => "registration_token.created",
        /// A registration (initial access) token was revoked.
        RegistrationTokenRevoked => "registration_token.revoked",
        /// A user's grants were revoked.
        GrantsRevoked => "grants.revoked",
        /// A user was created.
        UserCreated => "user.created",
        /// A user's profile claims were changed.
        UserUpdated => "user.updated",
        /// A user was disabled (sign-in refused, sessions ended).
        UserDisabled => "user.disabled",
        /// A user was enabled again.
        UserEnabled => "user.enabled",
        /// A user's password was set by an administrator.
        UserPasswordSet => "user.password_set",
        /// A user was deleted (and their grants revoked at authz).
        UserDeleted => "user.deleted",
        /// One browser session was ended.
        SessionEnded => "session.ended",
        /// Every session of a user was ended.
        SessionsEnded => "sessions.ended",
    }
}

names! {
    /// What kind of thing an event is about.
    pub enum TargetKind {
        /// A user (id).
        User => "user",
        /// A browser session (id).
        Session => "session",
        /// A client (`client_id`).
        Client => "client",
        /// A signing key (`kid`).
        Key => "key",
        /// A grant (id).
        Grant => "grant",
        /// A registration token (id).
        RegistrationToken => "registration_token",
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The kind.
    pub kind: TargetKind,
    /// Its identifier.
    pub id: Ident,
}

impl Target {
    /// A target of `kind` named `id` (see [`Ident::new`]).
    pub fn new(kind: TargetKind, id: &str) -> Self {
        Self {
            kind,
            id: Ident::new(id),
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was refused; `reason` is a short static code such as `bad_password`.
    Failure {
        /// Why (a fixed code, never input).
        reason: &'static str,
    },
}

impl Outcome {
    /// `success` or `failure` (the `outcome` column).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure { .. } => "failure",
        }
    }

    /// The failure reason, if any.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Success => None,
            Self::Failure { reason } => Some(reason),
        }
    }
}

/// One audit event, built with [`AuditEvent::new`] and its builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub(crate) at_ms: i64,
    pub(crate) actor: Actor,
    pub(crate) address: Option<IpAddr>,
    pub(crate) action: Action,
    pub(crate) target: Option<Target>,
    pub(crate) outcome: Outcome,
    /// A static note for successes (`automatic`, `reuse_detected`); failures carry theirs in
    /// the outcome.
    pub(crate) note: Option<&'static str>,
}

impl AuditEvent {
    /// `actor` did `action` successfully, now.
    pub fn new(actor: Actor, action: Action) -> Self {
        let at_ms = unix_ms(SystemTime::now());
        Self {
            at_ms,
            actor,
            address: None,
            action,
            target: None,
            outcome: Outcome::Success,
            note: None,
        }
    }

    /// At `ms` (Unix milliseconds) instead of now: for services with an injected clock.
    pub fn at(mut self, ms: i64) -> Self {
        self.at_ms = ms;
        self
    }

    /// From the client address `address` (the peer as the service resolved it).
    pub fn from(mut self, address: Option<IpAddr>) -> Self {
        self.address = address;
        self
    }

    /// About `target`.
    pub fn target(mut self, kind: TargetKind, id: &str) -> Self {
        self.target = Some(Target::new(kind, id));
        self
    }

    /// Refused, for `reason` (a fixed code such as `bad_password`).
    pub fn failed(mut self, reason: &'static str) -> Self {
        self.outcome = Outcome::Failure { reason };
        self
    }

    /// A static note on a success (`automatic`, `all_sessions`).
    pub fn note(mut self, note: &'static str) -> Self {
        self.note = Some(note);
        self
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The actor.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The outcome.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The reason stored in the `reason` column: the failure reason or the success note.
    pub(crate) fn reason(&self) -> Option<&'static str> {
        self.outcome.reason().or(self.note)
    }

    /// Emits the event as one structured log event (`target: "audit"`, level INFO, WARN for
    /// failures) with the same fields as the row. [`crate::record`] calls it; after
    /// [`crate::append`] the caller calls it once the transaction committed.
    pub fn log(&self) {
        let actor_id = self.actor.id().map(Ident::as_str);
        let address = self.address.map(|a| a.to_string());
        let target_kind = self.target.as_ref().map(|t| t.kind.as_str());
        let target_id = self.target.as_ref().map(|t| t.id.as_str());
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "audit",
                    action = self.action.as_str(),
                    actor_kind = self.actor.kind(),
                    actor_id,
                    address,
                    target_kind,
                    target_id,
                    outcome = self.outcome.as_str(),
                    reason = self.reason(),
                    occurred_at = self.at_ms,
                    "audit event"
                )
            };
        }
        match self.outcome {
            Outcome::Success => emit!(info),
            Outcome::Failure { .. } => emit!(warn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_lose_control_characters_and_excess_length() {
        assert_eq!(Ident::new("a b\nc\u{7}").as_str(), "a_b_c_");
        assert_eq!(Ident::new(&"x".repeat(500)).as_str().len(), IDENT_MAX);
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
        }
        for k in TargetKind::ALL {
            assert_eq!(TargetKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(Action::parse("login.nope"), None);
    }
}
