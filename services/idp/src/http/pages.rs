//! The server-rendered pages (templates in `templates/`, compiled in and HTML-escaped by
//! askama) and the headers every page is sent with.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;
use proto::authz::v1::Client;

use crate::IdpError;

/// Pages load nothing from elsewhere (inline CSS only), cannot be framed (clickjacking)
/// and leak no URL (challenges) through `Referer`.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   base-uri 'none'; frame-ancestors 'none'";

/// A response builder with the headers of every page: never cached, not framable, no
/// referrer, no content sniffing.
pub(crate) fn page_builder(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    builder
}

/// A page response, storing a new CSRF cookie when one was made for it.
pub(crate) fn with_csrf_cookie(
    status: StatusCode,
    set_cookie: Option<HeaderValue>,
    body: String,
) -> HttpResponse {
    let mut builder = page_builder(status);
    if let Some(set) = set_cookie {
        builder.append_header((SET_COOKIE, set));
    }
    builder.body(body)
}

/// The name shown for the relying party: its registered name, else its id.
pub(crate) fn client_name(client: Option<&Client>) -> &str {
    client
        .map(|c| {
            if c.name.is_empty() {
                &c.client_id
            } else {
                &c.name
            }
        })
        .map_or("the application", String::as_str)
}

/// Renders `template` to a string.
pub(crate) fn render(template: &impl Template) -> Result<String, IdpError> {
    template
        .render()
        .map_err(|e| IdpError::Task(format!("template: {e}")))
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) challenge: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
    // email, sign-up and password reset (issue 21)
    /// Link to the sign-up page (`signup.enabled`).
    pub(crate) signup: bool,
    /// Link to the "forgot password" page (`password_reset.enabled`).
    pub(crate) forgot: bool,
    /// `?login_challenge=…` (URL-encoded) for those links, so they lead back here.
    pub(crate) flow_query: &'a str,
    /// upstream sign-in: one button per provider, posted with `upstream_csrf`.
    pub(crate) providers: Vec<ProviderButton>,
    /// upstream sign-in: the CSRF token of the provider buttons.
    pub(crate) upstream_csrf: &'a str,
}

// upstream sign-in
/// A provider button.
pub(crate) struct ProviderButton {
    /// The provider id, posted as `provider`.
    pub(crate) id: String,
    /// The text after "Sign in with".
    pub(crate) name: String,
    /// A `data:image/…` icon.
    pub(crate) icon: Option<String>,
}

/// The buttons of every configured provider.
pub(crate) fn provider_buttons(upstreams: &crate::upstream::Upstreams) -> Vec<ProviderButton> {
    upstreams
        .providers()
        .iter()
        .map(|p| ProviderButton {
            id: p.id.clone(),
            name: p.config.display_name.clone(),
            icon: p.icon().map(str::to_owned),
        })
        .collect()
}

/// The first-login setup step: `mode` is `create` (choose a username) or `link` (prove
/// the existing account with the same verified email).
#[derive(Template)]
#[template(path = "upstream_setup.html")]
pub(crate) struct UpstreamSetupPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) mode: &'a str,
    pub(crate) provider: &'a str,
    pub(crate) pending: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) email: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// One linked identity on the providers page.
pub(crate) struct LinkedRow {
    /// Provider id.
    pub(crate) provider: String,
    /// Provider display name.
    pub(crate) name: String,
    /// The upstream subject (posted back to unlink; shown to the user only as the email).
    pub(crate) subject: String,
    /// The upstream email, if known.
    pub(crate) email: String,
}

/// `/account/providers`: linked identities and the providers that can be linked.
#[derive(Template)]
#[template(path = "account_providers.html")]
pub(crate) struct ProvidersPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
    pub(crate) linked: Vec<LinkedRow>,
    pub(crate) available: Vec<ProviderButton>,
    pub(crate) message: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
}

/// The consent form.
#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) challenge: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) scopes: Vec<String>,
    pub(crate) username: &'a str,
}

/// The logout confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
}

// device grant (RFC 8628 §3.3)
/// The device verification page: `step` is `enter` (the code form), `signin` (the
/// password form for a valid code), `confirm` (client and scopes, allow or deny) or
/// `done` (`title` and `message` say what happened).
#[derive(Template)]
#[template(path = "device.html")]
pub(crate) struct DevicePage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) step: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) user_code: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) scopes: Vec<String>,
    pub(crate) username: Option<&'a str>,
    pub(crate) login: &'a str,
    pub(crate) error: Option<&'a str>,
    pub(crate) message: &'a str,
}

/// After logout, or at `/logout` without a session.
#[derive(Template)]
#[template(path = "signed_out.html")]
pub(crate) struct SignedOutPage<'a> {
    pub(crate) title: &'a str,
}

// email, sign-up and password reset (issue 21)
/// The "forgot password" form, or (`sent`) the answer after it, the same whether or not an
/// account matched.
#[derive(Template)]
#[template(path = "forgot.html")]
pub(crate) struct ForgotPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) challenge: &'a str,
    pub(crate) error: Option<&'a str>,
    pub(crate) sent: bool,
    /// The login page of the flow the user came from.
    pub(crate) back: Option<&'a str>,
}

/// The new password form of a reset link.
#[derive(Template)]
#[template(path = "reset.html")]
pub(crate) struct ResetPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) token: &'a str,
    pub(crate) username: &'a str,
    pub(crate) min_length: usize,
    pub(crate) error: Option<&'a str>,
}

/// The sign-up form, or (`sent_to`) the answer after it.
#[derive(Template)]
#[template(path = "signup.html")]
pub(crate) struct SignupPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) challenge: &'a str,
    pub(crate) username: &'a str,
    pub(crate) email: &'a str,
    pub(crate) name: &'a str,
    pub(crate) min_length: usize,
    pub(crate) error: Option<&'a str>,
    pub(crate) sent_to: Option<&'a str>,
    /// The login page of the flow the user came from.
    pub(crate) back: Option<&'a str>,
}

/// The confirmation step of a sign-up link (a button, so link scanners that prefetch the
/// URL do not use it).
#[derive(Template)]
#[template(path = "signup_verify.html")]
pub(crate) struct SignupVerifyPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) base: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) token: &'a str,
    pub(crate) username: &'a str,
    pub(crate) email: &'a str,
}

/// An outcome of the email flows: a heading, a message and an optional link onward.
#[derive(Template)]
#[template(path = "notice.html")]
pub(crate) struct NoticePage<'a> {
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
    pub(crate) link: Option<(&'a str, &'a str)>,
}

/// `?login_challenge=<challenge>` URL-encoded, or nothing for no challenge.
pub(crate) fn flow_query(challenge: &str) -> String {
    if challenge.is_empty() {
        String::new()
    } else {
        format!(
            "?login_challenge={}",
            url::form_urlencoded::byte_serialize(challenge.as_bytes()).collect::<String>()
        )
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
    pub(crate) status: u16,
}

/// What a scope lets the client do, in plain words (OpenID Connect Core 1.0 §5.4 for the
/// standard ones).
pub(crate) fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm your identity (your account identifier)".to_owned(),
        "profile" => "See your profile: name, username, picture and language".to_owned(),
        "email" => "See your email address".to_owned(),
        "address" => "See your postal address".to_owned(),
        "phone" => "See your phone number".to_owned(),
        "offline_access" => "Keep access while you are not using the app".to_owned(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let html = render(&LoginPage {
            title: "Sign in",
            base: "/",
            client_name: "<script>alert(1)</script>",
            challenge: "c\"h",
            csrf: "t",
            username: "a&b",
            error: Some("Incorrect username or password."),
            signup: false,
            forgot: false,
            flow_query: "",
            providers: vec![ProviderButton {
                id: "corp".into(),
                name: "<Corp>".into(),
                icon: None,
            }],
            upstream_csrf: "u",
        })
        .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(html.contains(r#"value="c&#34;h""#), "{html}");
        assert!(html.contains(r#"value="a&#38;b""#), "{html}");
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains(r#"<label for="username">"#));
        assert!(html.contains(r#"role="alert""#));
        assert!(html.contains("Sign in with &#60;Corp&#62;"), "{html}");
        assert_eq!(describe_scope("email"), "See your email address");
        assert!(describe_scope("items:read").contains("items:read"));
    }
}
