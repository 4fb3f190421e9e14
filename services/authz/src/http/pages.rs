//! The few HTML pages authz itself serves: the error page for requests whose redirect URI
//! cannot be trusted (RFC 6749 §4.1.2.1: "MUST NOT automatically redirect"), the
//! auto-submitting form of `response_mode=form_post` (OAuth 2.0 Form Post Response Mode
//! §2), and the logout confirmation and result (RP-Initiated Logout 1.0 §2-§3). Plus the
//! cookie helpers of the browser-facing endpoints.
//!
//! The pages are askama templates in `templates/`, compiled into the binary; askama
//! HTML-escapes every value they print. Every page is self-contained (no external assets)
//! and carries a Content-Security-Policy that allows only its own inline style and script
//! by a per-response nonce; none may be framed or cached.

use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// The authz browser-session cookie (SSO, `prompt=none`, logout).
pub(crate) const SESSION_COOKIE: &str = "authz_session";

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness (never seen in practice) the nonce is merely predictable; the
    // pages stay safe because every value they print is escaped, so no foreign script can
    // get into them to use it.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `templates/message.html`: a heading and one paragraph (the error and logged-out pages).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    nonce: &'a str,
    title: &'a str,
    message: &'a str,
}

/// `templates/form_post.html`.
#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    nonce: &'a str,
    title: &'a str,
    action: &'a str,
    params: &'a [(&'a str, &'a str)],
}

/// `templates/logout_confirmation.html`.
#[derive(Template)]
#[template(path = "logout_confirmation.html")]
struct LogoutConfirmationPage<'a> {
    nonce: &'a str,
    title: &'a str,
    action: &'a str,
    hidden: &'a [(&'a str, &'a str)],
}

/// logout: `templates/frontchannel_logout.html`.
#[derive(Template)]
#[template(path = "frontchannel_logout.html")]
struct FrontchannelLogoutPage<'a> {
    nonce: &'a str,
    title: &'a str,
    uris: &'a [String],
    next: Option<&'a str>,
}

/// logout: OpenID Connect Front-Channel Logout 1.0 §4: the End-User is signed out, and the
/// page loads each client's `frontchannel_logout_uri` (with `iss` and `sid`) in a hidden
/// iframe, then (once every frame loaded, or after 5 s) goes on to `next`, the
/// post-logout redirect with `state` (RP-Initiated Logout 1.0 §3), if any. The CSP allows
/// framing exactly the origins of `uris`.
pub(crate) fn frontchannel_logout(
    res: HttpResponseBuilder,
    uris: &[String],
    next: Option<&str>,
) -> HttpResponse {
    let nonce = nonce();
    let html = FrontchannelLogoutPage {
        nonce: &nonce,
        title: "Signing out",
        uris,
        next,
    }
    .render();
    let origins: Vec<String> = uris
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    let frames = if origins.is_empty() {
        String::new()
    } else {
        format!(" frame-src {};", origins.join(" "))
    };
    page_with(res, &nonce, true, &frames, html)
}

/// Sends a rendered page with the headers every page carries; `scripted`: the page runs
/// an inline script under `nonce`.
fn page(
    res: HttpResponseBuilder,
    nonce: &str,
    scripted: bool,
    html: askama::Result<String>,
) -> HttpResponse {
    page_with(res, nonce, scripted, "", html)
}

/// [`page`] with `extra` CSP directives (each `" name value;"`).
fn page_with(
    mut res: HttpResponseBuilder,
    nonce: &str,
    scripted: bool,
    extra: &str,
    html: askama::Result<String>,
) -> HttpResponse {
    let html = match html {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            return HttpResponse::InternalServerError()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body("internal error");
        }
    };
    let script_src = if scripted {
        format!(" script-src 'nonce-{nonce}';")
    } else {
        String::new()
    };
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}';{script_src}{extra} base-uri 'none'; frame-ancestors 'none'"
    );
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(html)
}

/// A page with `title` as its heading and `message` below it.
fn message(res: HttpResponseBuilder, title: &str, message: &str) -> HttpResponse {
    let nonce = nonce();
    let html = MessagePage {
        nonce: &nonce,
        title,
        message,
    }
    .render();
    page(res, &nonce, false, html)
}

/// The error page (never a redirect): `status`, a title and an explanation for the user.
pub(crate) fn error(status: StatusCode, title: &str, explanation: &str) -> HttpResponse {
    metrics::counter!("error_pages_total", "status" => status.as_str().to_owned()).increment(1);
    let mut res = HttpResponse::build(status);
    super::oauth::retry_after(&mut res, status);
    message(res, title, explanation)
}

/// `response_mode=form_post`: an HTML form POSTing `params` to `action`, submitted by a
/// script at once, or by the button when scripts are off.
pub(crate) fn form_post(
    res: HttpResponseBuilder,
    action: &str,
    params: &[(&str, &str)],
) -> HttpResponse {
    let nonce = nonce();
    let html = FormPostPage {
        nonce: &nonce,
        title: "Returning to the application",
        action,
        params,
    }
    .render();
    page(res, &nonce, true, html)
}

/// The logout confirmation (RP-Initiated Logout 1.0 §2: without an `id_token_hint` that
/// names the signed-in user, the End-User is asked). The form repeats the request's
/// parameters and carries `csrf`, which only this browser's session cookie can produce.
pub(crate) fn logout_confirmation(action: &str, hidden: &[(&str, &str)]) -> HttpResponse {
    let nonce = nonce();
    let html = LogoutConfirmationPage {
        nonce: &nonce,
        title: "Sign out",
        action,
        hidden,
    }
    .render();
    page(HttpResponse::Ok(), &nonce, false, html)
}

/// The page after a logout without a (valid) `post_logout_redirect_uri` (RP-Initiated
/// Logout 1.0 §3).
pub(crate) fn logged_out(res: HttpResponseBuilder, signed_out: bool) -> HttpResponse {
    let (title, text) = if signed_out {
        (
            "Signed out",
            "You are signed out. You can close this window.",
        )
    } else {
        (
            "Still signed in",
            "You stayed signed in. You can close this window.",
        )
    };
    message(res, title, text)
}

/// The value of cookie `name` in the request (as sent, surrounding quotes removed), if
/// present and not empty.
pub(crate) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie_raw(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax` (sent on top-level navigations back
/// from idp and from relying parties, not on cross-site subrequests), `Secure` when the
/// issuer is https; `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    secure: bool,
) -> String {
    Cookie::build(name, value)
        .path(path)
        .max_age(Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn html(res: HttpResponse) -> (String, String) {
        let csp = res
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        (csp, String::from_utf8(body.to_vec()).unwrap())
    }

    #[actix_web::test]
    async fn error_page_escapes_what_it_prints() {
        let res = error(
            StatusCode::BAD_REQUEST,
            "Bad <b>",
            r#"redirect_uri "x'&y" <i>"#,
        );
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        assert_eq!(res.headers().get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
        let (csp, body) = html(res).await;
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(body.contains("<title>Bad &#60;b&#62;</title>"), "{body}");
        assert!(
            body.contains(
                "<h1>Bad &#60;b&#62;</h1><p>redirect_uri &#34;x&#39;&#38;y&#34; &#60;i&#62;</p>"
            ),
            "{body}"
        );
        assert!(!body.contains("<script"), "{body}");
    }

    #[actix_web::test]
    async fn form_post_posts_every_parameter_under_the_script_nonce() {
        let res = form_post(
            HttpResponse::Ok(),
            "https://rp.example/cb?a=1&b=2",
            &[("code", "c\"<x>"), ("state", "s&t")],
        );
        let (csp, body) = html(res).await;
        let nonce = csp
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap();
        assert!(csp.contains(&format!("style-src 'nonce-{nonce}'")), "{csp}");
        assert!(
            body.contains(&format!(
                "<script nonce=\"{nonce}\">document.forms[0].submit();</script>"
            )),
            "{body}"
        );
        assert!(
            body.contains(r#"<form method="post" action="https://rp.example/cb?a=1&#38;b=2">"#),
            "{body}"
        );
        assert!(
            body.contains(r#"<input type="hidden" name="code" value="c&#34;&#60;x&#62;"><input type="hidden" name="state" value="s&#38;t"><noscript>"#),
            "{body}"
        );
        assert!(
            body.contains("<title>Returning to the application</title>"),
            "{body}"
        );
    }

    #[actix_web::test]
    async fn logout_pages() {
        let (csp, body) = html(logout_confirmation("/end_session", &[("csrf", "a&b")])).await;
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(body.contains("<h1>Sign out?</h1>"), "{body}");
        assert!(
            body.contains(r#"<form method="post" action="/end_session"><input type="hidden" name="csrf" value="a&#38;b"><div class="actions">"#),
            "{body}"
        );
        assert!(body.contains(r#"name="confirm" value="no">Stay signed in</button>"#));
        let (_, body) = html(logged_out(HttpResponse::Ok(), true)).await;
        assert!(
            body.contains(
                "<h1>Signed out</h1><p>You are signed out. You can close this window.</p>"
            ),
            "{body}"
        );
        let (_, body) = html(logged_out(HttpResponse::Ok(), false)).await;
        assert!(body.contains("<h1>Still signed in</h1>"), "{body}");
    }

    #[test]
    fn cookies() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "a=1; authz_session=abc; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&req, "missing"), None);
        let quoted = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "broken; authz_session=\"abc\"; empty="))
            .to_http_request();
        assert_eq!(cookie(&quoted, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&quoted, "empty"), None);
        let mut attributes: Vec<String> = set_cookie("n", "v", "/", 60, true)
            .split("; ")
            .map(str::to_owned)
            .collect();
        assert_eq!(attributes.remove(0), "n=v");
        attributes.sort();
        assert_eq!(
            attributes,
            ["HttpOnly", "Max-Age=60", "Path=/", "SameSite=Lax", "Secure"]
        );
        assert!(!set_cookie("n", "", "/x", 0, false).contains("Secure"));
        assert!(set_cookie("n", "", "/x", 0, false).contains("Max-Age=0"));
    }
}
