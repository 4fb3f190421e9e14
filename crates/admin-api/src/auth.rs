//! Bearer authentication of admin routes (RFC 6750 §2.1) with the scopes of each route,
//! decided by `guard` and answered as problem details with the RFC 6750 §3 challenge.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use guard::{Guard, Principal, RequiredScopes};

use crate::AdminError;

/// The guard that checks admin tokens, registered by [`crate::AdminApi::mount`].
#[derive(Clone, Debug)]
pub struct AdminAuth {
    pub(crate) guard: Guard,
}

/// The admin scopes (read and write variants per area). A token needs the scope of the
/// route it calls; `…:write` does not imply `…:read`.
pub mod scopes {
    /// Read clients, their grants, registration initial access tokens.
    pub const CLIENTS_READ: &str = "admin:clients:read";
    /// Create, update, delete clients, rotate their secrets, revoke their grants.
    pub const CLIENTS_WRITE: &str = "admin:clients:write";
    /// List signing keys.
    pub const KEYS_READ: &str = "admin:keys:read";
    /// Rotate and retire signing keys.
    pub const KEYS_WRITE: &str = "admin:keys:write";
    /// Read users (and a user's grants and consents).
    pub const USERS_READ: &str = "admin:users:read";
    /// Change users, revoke a user's grants and consents.
    pub const USERS_WRITE: &str = "admin:users:write";
    /// Read sessions.
    pub const SESSIONS_READ: &str = "admin:sessions:read";
    /// End sessions.
    pub const SESSIONS_WRITE: &str = "admin:sessions:write";
    /// Read the audit trail.
    pub const AUDIT_READ: &str = "admin:audit:read";
    /// Every admin scope, with a description (the OpenAPI security scheme lists them).
    pub const ALL: &[(&str, &str)] = &[
        (CLIENTS_READ, "read clients and their grants"),
        (CLIENTS_WRITE, "manage clients"),
        (KEYS_READ, "read signing keys"),
        (KEYS_WRITE, "rotate and retire signing keys"),
        (USERS_READ, "read users, their grants and consents"),
        (
            USERS_WRITE,
            "manage users, revoke their grants and consents",
        ),
        (SESSIONS_READ, "read sessions"),
        (SESSIONS_WRITE, "end sessions"),
        (AUDIT_READ, "read the audit trail"),
    ];
}

/// Marker types for [`Admin`], one per admin scope.
pub mod scope {
    guard::required_scopes!(
        /// `admin:clients:read`.
        pub ClientsRead = ["admin:clients:read"]
    );
    guard::required_scopes!(
        /// `admin:clients:write`.
        pub ClientsWrite = ["admin:clients:write"]
    );
    guard::required_scopes!(
        /// `admin:keys:read`.
        pub KeysRead = ["admin:keys:read"]
    );
    guard::required_scopes!(
        /// `admin:keys:write`.
        pub KeysWrite = ["admin:keys:write"]
    );
    guard::required_scopes!(
        /// `admin:users:read`.
        pub UsersRead = ["admin:users:read"]
    );
    guard::required_scopes!(
        /// `admin:users:write`.
        pub UsersWrite = ["admin:users:write"]
    );
    guard::required_scopes!(
        /// `admin:sessions:read`.
        pub SessionsRead = ["admin:sessions:read"]
    );
    guard::required_scopes!(
        /// `admin:sessions:write`.
        pub SessionsWrite = ["admin:sessions:write"]
    );
    guard::required_scopes!(
        /// `admin:audit:read`.
        pub AuditRead = ["admin:audit:read"]
    );
}

/// The caller of an admin route, authenticated with a token granting every scope of `S`.
/// Put it first in a handler's arguments: extracting it answers 401 (no or invalid token),
/// 400 (malformed `Authorization`), 403 (`insufficient_scope`) or 503 (tokens cannot be
/// checked now) as problem details with `WWW-Authenticate` (RFC 6750 §3).
pub struct Admin<S: RequiredScopes> {
    principal: Principal,
    scopes: PhantomData<fn() -> S>,
}

impl<S: RequiredScopes> Admin<S> {
    /// Who acts: the token's client id, and its subject when a user is behind it
    /// (`client:<id>` for client credentials, `user:<sub> via <id>` otherwise), for the
    /// audit trail.
    pub fn actor(&self) -> String {
        if self.principal.sub == self.principal.client_id {
            format!("client:{}", self.principal.client_id)
        } else {
            format!(
                "user:{} via {}",
                self.principal.sub, self.principal.client_id
            )
        }
    }

    /// The verified principal.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl<S: RequiredScopes> std::fmt::Debug for Admin<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("client_id", &self.principal.client_id)
            .finish_non_exhaustive()
    }
}

impl<S: RequiredScopes + 'static> FromRequest for Admin<S> {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<AdminAuth>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let Some(auth) = auth else {
                return Err(AdminError::Internal(
                    "admin route mounted without AdminApi::mount".into(),
                ));
            };
            match auth.guard.authorize_header(&req, S::SCOPES).await {
                Ok(principal) => Ok(Self {
                    principal,
                    scopes: PhantomData,
                }),
                Err(error) => Err(AdminError::Auth {
                    challenge: auth.guard.challenge(&error),
                    error,
                }),
            }
        })
    }
}
