//! The demo data of `authz serve --demo`: the clients `make demo` and the compose demo
//! profile document, seeded into the database after migrations and before anything is
//! served.
//!
//! Their credentials are public (they are in the README), so [`Demo::permitted`] refuses
//! them unless the issuer is on `localhost` or a loopback IP. Seeding is idempotent: a
//! client that exists is left exactly as it is; [`Demo::Reset`] deletes the demo clients
//! with everything issued to them and registers them afresh. Either way it is one
//! transaction.

use domain::{ClientId, GrantType, ScopeSet, TokenEndpointAuthMethod};

use crate::AuthzError;
use crate::clients::{Client, Clients, NewClient};

/// The confidential demo web app.
pub const CLIENT_ID: &str = "demo-client";
/// `demo-client`'s secret (`client_secret_basic`).
pub const CLIENT_SECRET: &str = "demo-secret";
/// `demo-client`'s registered redirect URI.
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";
/// The public demo single-page app (auth method `none`, PKCE).
pub const SPA_CLIENT_ID: &str = "demo-spa";
/// `demo-spa`'s registered redirect URI.
pub const SPA_REDIRECT_URI: &str = "http://localhost:3000/spa/callback";
/// logout: `demo-client`'s back-channel logout URI (OpenID Connect Back-Channel Logout 1.0
/// §2.2), where the demo app receives logout tokens.
pub const BACKCHANNEL_LOGOUT_URI: &str = "http://localhost:3000/backchannel-logout";
/// The post-logout redirect URI of `demo-client` and `demo-spa`.
pub const POST_LOGOUT_REDIRECT_URI: &str = "http://localhost:3000/";
/// The scopes `demo-client` and `demo-spa` may ask for.
pub const SCOPES: &str = "openid profile email offline_access items:read items:write";
/// The audience (RFC 8707 resource) of `demo-client`'s and `demo-spa`'s tokens: rs.
pub const AUDIENCE: &str = "http://localhost:8082";
/// The demo resource server's introspection client.
pub const RS_CLIENT_ID: &str = "demo-rs";
/// `demo-rs`'s secret.
pub const RS_CLIENT_SECRET: &str = "demo-rs-secret";
// token exchange (RFC 8693)
/// The downstream audience `demo-rs` may exchange users' tokens for (rs's
/// `/api/v1/downstream` route, RFC 8693 §2.1 `audience`).
pub const DOWNSTREAM_AUDIENCE: &str = "http://localhost:8082/downstream";
/// The scopes `demo-rs` may carry into an exchanged token.
pub const EXCHANGE_SCOPES: &str = "items:read";
// device grant (RFC 8628)
/// The public demo TV-style device (`demo device`): the device authorization grant
/// (RFC 8628) and refresh tokens, no secret, no redirect URI.
pub const TV_CLIENT_ID: &str = "demo-tv";

pub use runtime::Demo;

/// [`Demo::permitted`] for authz: demo data only with an issuer on this machine.
pub fn permitted(demo: Demo, issuer: &str) -> Result<(), AuthzError> {
    demo.permitted("the issuer", issuer)
        .map_err(AuthzError::Invalid)
}

fn id(raw: &str) -> Result<ClientId, AuthzError> {
    ClientId::parse(raw).map_err(AuthzError::Invalid)
}

fn scopes() -> Result<ScopeSet, AuthzError> {
    ScopeSet::parse(SCOPES).map_err(|e| AuthzError::Invalid(e.to_string()))
}

/// The demo clients, in seeding order, with every attribute `make demo` documents; the
/// rest are the defaults of `authz clients create` ([`Client::new`]).
///
/// `app` is the demo web app's URL (`authz serve --demo-app-url`, e.g.
/// `http://localhost:3100` for `make demo` with `DEMO_APP_PORT=3100`; a trailing `/`
/// ignored; an http(s) URL): `demo-client`'s and `demo-spa`'s redirect and post-logout
/// redirect URIs are below it. `None` or empty: the defaults [`REDIRECT_URI`],
/// [`SPA_REDIRECT_URI`] and [`POST_LOGOUT_REDIRECT_URI`]. Existing clients keep their URIs
/// until `--reset-demo` registers them afresh.
pub fn clients_for_app(app: Option<&str>) -> Result<Vec<NewClient>, AuthzError> {
    let (redirect_uri, spa_redirect_uri, post_logout_redirect_uri, backchannel_logout_uri) =
        match app {
            Some(app) if !app.is_empty() => {
                let http = url::Url::parse(app)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !http {
                    return Err(AuthzError::Invalid(format!(
                        "--demo-app-url {app:?} is not an http(s) URL"
                    )));
                }
                let app = app.trim_end_matches('/');
                (
                    format!("{app}/callback"),
                    format!("{app}/spa/callback"),
                    format!("{app}/"),
                    format!("{app}/backchannel-logout"),
                )
            }
            _ => (
                REDIRECT_URI.to_owned(),
                SPA_REDIRECT_URI.to_owned(),
                POST_LOGOUT_REDIRECT_URI.to_owned(),
                BACKCHANNEL_LOGOUT_URI.to_owned(),
            ),
        };
    let mut web = Client::new(id(CLIENT_ID)?, "Demo web app".to_owned());
    web.grant_types = vec![
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];
    web.scopes = scopes()?;
    web.redirect_uris = vec![redirect_uri];
    web.post_logout_redirect_uris = vec![post_logout_redirect_uri.clone()];
    web.audiences = vec![AUDIENCE.to_owned()];
    // logout: the demo app ends its own session when authz tells it over the back channel.
    web.backchannel_logout_uri = Some(backchannel_logout_uri);
    web.backchannel_logout_session_required = true;

    let mut spa = Client::new(id(SPA_CLIENT_ID)?, "Demo single-page app".to_owned());
    spa.auth_method = TokenEndpointAuthMethod::None;
    spa.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    spa.scopes = scopes()?;
    spa.redirect_uris = vec![spa_redirect_uri];
    spa.post_logout_redirect_uris = vec![post_logout_redirect_uri];
    spa.audiences = vec![AUDIENCE.to_owned()];

    let mut rs = Client::new(id(RS_CLIENT_ID)?, "Demo resource server (rs)".to_owned());
    rs.can_introspect = true;
    // token exchange (RFC 8693): rs delegates to its downstream route with its own
    // client_credentials token as the actor token; no impersonation.
    rs.grant_types = vec![GrantType::ClientCredentials, GrantType::TokenExchange];
    rs.token_exchange.audiences = vec![DOWNSTREAM_AUDIENCE.to_owned()];
    rs.token_exchange.scopes =
        ScopeSet::parse(EXCHANGE_SCOPES).map_err(|e| AuthzError::Invalid(e.to_string()))?;

    // device grant (RFC 8628)
    let mut tv = Client::new(id(TV_CLIENT_ID)?, "Demo TV".to_owned());
    tv.auth_method = TokenEndpointAuthMethod::None;
    tv.grant_types = vec![GrantType::DeviceCode, GrantType::RefreshToken];
    tv.scopes = scopes()?;
    tv.redirect_uris = Vec::new();
    tv.post_logout_redirect_uris = Vec::new();
    tv.audiences = vec![AUDIENCE.to_owned()];

    Ok(vec![
        NewClient {
            client: web,
            secret: Some(CLIENT_SECRET.to_owned()),
        },
        NewClient {
            client: spa,
            secret: None,
        },
        NewClient {
            client: rs,
            secret: Some(RS_CLIENT_SECRET.to_owned()),
        },
        NewClient {
            client: tv,
            secret: None,
        },
    ])
}

/// The line printed when a demo client was deleted by `--reset-demo`.
fn deleted_line(id: &ClientId) -> String {
    format!("demo: deleted client {id} with its tokens, codes, consents and grants")
}

/// The line printed when a demo client was registered, in the words `make demo` has
/// always used (the credentials are the public demo ones).
fn registered_line(id: &ClientId) -> String {
    match id.as_str() {
        CLIENT_ID => format!("demo: registered client {CLIENT_ID} / {CLIENT_SECRET}"),
        SPA_CLIENT_ID => {
            format!("demo: registered public client {SPA_CLIENT_ID} (PKCE, no secret)")
        }
        RS_CLIENT_ID => {
            format!("demo: registered client {RS_CLIENT_ID} / {RS_CLIENT_SECRET} (may introspect)")
        }
        TV_CLIENT_ID => {
            format!("demo: registered public client {TV_CLIENT_ID} (device flow, no secret)")
        }
        other => format!("demo: registered client {other}"),
    }
}

/// Seeds the demo clients into `registry` as `demo` says, in one transaction, and returns
/// one line per action (deleted, then registered) in order, or one line saying that
/// nothing was seeded. Nothing at all when `demo` is [`Demo::Off`]. `app`: the demo web
/// app's URL ([`clients_for_app`]).
pub async fn seed(
    registry: &Clients,
    demo: Demo,
    app: Option<&str>,
) -> Result<Vec<String>, AuthzError> {
    if !demo.is_on() {
        return Ok(Vec::new());
    }
    let outcomes = registry
        .seed(clients_for_app(app)?, demo == Demo::Reset)
        .await?;
    let mut lines: Vec<String> = outcomes
        .iter()
        .filter(|o| o.deleted)
        .map(|o| deleted_line(&o.id))
        .collect();
    lines.extend(
        outcomes
            .iter()
            .filter(|o| o.created)
            .map(|o| registered_line(&o.id)),
    );
    if lines.is_empty() {
        lines.push(format!(
            "demo: clients {CLIENT_ID}, {SPA_CLIENT_ID}, {RS_CLIENT_ID} and {TV_CLIENT_ID} are \
             registered; nothing seeded"
        ));
    }
    Ok(lines)
}

// admin API (issue 18)
/// The demo admin client: client credentials with every admin scope, for the admin API
/// and its Swagger UI ("Authorize" on `/admin/docs`).
pub const ADMIN_CLIENT_ID: &str = "demo-admin";
/// `demo-admin`'s secret.
pub const ADMIN_CLIENT_SECRET: &str = "demo-admin-secret";

/// `demo-admin`: confidential, `client_credentials` only, every `admin:*` scope, JWT access
/// tokens for the issuer (what the admin listener accepts), and the browser origins of the
/// admin listener at `admin` (its address, and `localhost` for a loopback or unspecified
/// one) so Swagger UI there may call the token endpoint (CORS).
pub fn admin_client(admin: std::net::SocketAddr) -> Result<NewClient, AuthzError> {
    let mut c = Client::new(id(ADMIN_CLIENT_ID)?, "Demo administrator".to_owned());
    let all: Vec<&str> = admin_api::scopes::ALL.iter().map(|(s, _)| *s).collect();
    c.scopes = ScopeSet::parse(&all.join(" ")).map_err(|e| AuthzError::Invalid(e.to_string()))?;
    let port = admin.port();
    let mut origins = Vec::new();
    if admin.ip().is_loopback() || admin.ip().is_unspecified() {
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://localhost:{port}"));
    } else {
        origins.push(format!("http://{admin}"));
    }
    c.allowed_origins = origins;
    Ok(NewClient {
        client: c,
        secret: Some(ADMIN_CLIENT_SECRET.to_owned()),
    })
}

/// Seeds `demo-admin` ([`admin_client`]) as `demo` says, like [`seed`] does the others
/// (nothing is printed when it exists already).
pub async fn seed_admin(
    registry: &Clients,
    demo: Demo,
    admin: std::net::SocketAddr,
) -> Result<Vec<String>, AuthzError> {
    if !demo.is_on() {
        return Ok(Vec::new());
    }
    let outcomes = registry
        .seed(vec![admin_client(admin)?], demo == Demo::Reset)
        .await?;
    let mut lines = Vec::new();
    for o in outcomes {
        if o.deleted {
            lines.push(deleted_line(&o.id));
        }
        if o.created {
            lines.push(format!(
                "demo: registered admin client {ADMIN_CLIENT_ID} / {ADMIN_CLIENT_SECRET} \
                 (every admin scope; Swagger UI at /admin/docs on the admin port)"
            ));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_only_for_a_local_issuer() {
        assert!(permitted(Demo::Seed, "https://127.0.0.1:8443/tenant").is_ok());
        let err = permitted(Demo::Reset, "https://id.example.com").unwrap_err();
        assert!(
            err.to_string()
                .contains("the issuer is \"https://id.example.com\""),
            "{err}"
        );
        assert!(permitted(Demo::Off, "https://id.example.com").is_ok());
    }

    #[test]
    fn the_demo_app_url_moves_the_redirect_uris() {
        let uris = |app| {
            clients_for_app(app)
                .unwrap()
                .into_iter()
                .map(|c| (c.client.redirect_uris, c.client.post_logout_redirect_uris))
                .collect::<Vec<_>>()
        };
        let defaults = vec![
            (
                vec![REDIRECT_URI.to_owned()],
                vec![POST_LOGOUT_REDIRECT_URI.to_owned()],
            ),
            (
                vec![SPA_REDIRECT_URI.to_owned()],
                vec![POST_LOGOUT_REDIRECT_URI.to_owned()],
            ),
            (Vec::new(), Vec::new()),
            (Vec::new(), Vec::new()),
        ];
        assert_eq!(uris(None), defaults);
        assert_eq!(uris(Some("")), defaults);
        assert_eq!(
            uris(Some("http://localhost:3100/")),
            vec![
                (
                    vec!["http://localhost:3100/callback".to_owned()],
                    vec!["http://localhost:3100/".to_owned()],
                ),
                (
                    vec!["http://localhost:3100/spa/callback".to_owned()],
                    vec!["http://localhost:3100/".to_owned()],
                ),
                (Vec::new(), Vec::new()),
                (Vec::new(), Vec::new()),
            ]
        );
        assert!(clients_for_app(Some("localhost:3100")).is_err());
    }
}
