//! The demo data the demo uses: public credentials seeded by `authz serve --demo` (the
//! clients) and `idp serve --demo` (the user). The demo is a client of the services, so it
//! knows them the way any relying party knows its registration: as constants, not by
//! linking the services. tests-e2e checks that they equal what authz and idp seed.

/// The confidential demo web app, seeded by `authz serve --demo`.
pub const CLIENT_ID: &str = "demo-client";
/// `demo-client`'s secret (`client_secret_basic`, RFC 6749 §2.3.1), seeded by
/// `authz serve --demo`.
pub const CLIENT_SECRET: &str = "demo-secret";
/// The public demo single-page app (auth method `none`, PKCE only), seeded by
/// `authz serve --demo`.
pub const SPA_CLIENT_ID: &str = "demo-spa";
/// The demo resource server's introspection client (RFC 7662 §2.1), seeded by
/// `authz serve --demo`.
pub const RS_CLIENT_ID: &str = "demo-rs";
/// `demo-rs`'s secret, seeded by `authz serve --demo`.
pub const RS_CLIENT_SECRET: &str = "demo-rs-secret";
/// The public demo TV (the device authorization grant, RFC 8628), seeded by
/// `authz serve --demo`.
pub const TV_CLIENT_ID: &str = "demo-tv";
/// The scopes `demo-client` and `demo-spa` may ask for, seeded by `authz serve --demo`.
pub const SCOPES: &str = "openid profile email offline_access items:read items:write";
/// The audience (RFC 8707 resource) of `demo-client`'s and `demo-spa`'s tokens, seeded by
/// `authz serve --demo`; rs checks it as `guard.audience`. An identifier: it stays the same
/// when rs listens on another port.
pub const AUDIENCE: &str = "http://localhost:8082";

/// The demo web app's default URL. `authz serve --demo` seeds the demo clients' redirect
/// URIs below it (below `authz serve --demo-app-url`, or `$AUTHZ_DEMO_APP_URL`, when set).
pub const APP_URL: &str = "http://localhost:3000";
/// `demo-client`'s redirect URI, below the app's URL.
pub const CALLBACK_PATH: &str = "/callback";
/// `demo-spa`'s redirect URI, below the app's URL.
pub const SPA_CALLBACK_PATH: &str = "/spa/callback";
/// The post-logout redirect URI of `demo-client` and `demo-spa`, below the app's URL.
pub const POST_LOGOUT_PATH: &str = "/";

/// The demo user, seeded by `idp serve --demo`.
pub const USERNAME: &str = "demo";
/// The demo user's password, seeded by `idp serve --demo`.
pub const PASSWORD: &str = "demo-password";

/// `path` below the app URL `app` (a trailing `/` of `app` is ignored): the demo clients'
/// registered redirect URIs are exactly these (RFC 6749 §3.1.2, compared as strings).
pub fn app_uri(app: &str, path: &str) -> String {
    format!("{}{path}", app.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_below_the_app_url() {
        assert_eq!(
            app_uri("http://localhost:3000/", CALLBACK_PATH),
            "http://localhost:3000/callback"
        );
        assert_eq!(app_uri(APP_URL, POST_LOGOUT_PATH), "http://localhost:3000/");
    }
}
