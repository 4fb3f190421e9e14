//! The few HTML pages authz itself serves: the error page for requests whose redirect URI
//! cannot be trusted (RFC 6749 §4.1.2.1: "MUST NOT automatically redirect"), the
//! auto-submitting form of `response_mode=form_post` (OAuth 2.0 Form Post Response Mode
//! §2), and the logout confirmation and result (RP-Initiated Logout 1.0 §2-§3). Plus the
//! cookie helpers of the browser-facing endpoints.
//!
//! Every page is self-contained (no external assets), escapes every value it prints, and
//! carries a Content-Security-Policy that allows only its own inline style and script by
//! a per-response nonce; none may be framed or cached.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// The authz browser-session cookie (SSO, `prompt=none`, logout).
pub(crate) const SESSION_COOKIE: &str = "authz_session";

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // Without OS randomness (never seen in practice) the nonce is merely predictable; the
    // pages stay safe because every value they print is escaped, so no foreign script can
    // get into them to use it.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;\
background:#f5f6f8;color:#1d2330;margin:0;display:flex;min-height:100vh;\
align-items:center;justify-content:center}main{background:#fff;max-width:30rem;\
margin:1rem;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.3rem;margin-top:0}p{line-height:1.5}code{font-size:.9em}\
button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:.4rem;\
background:#2f5bd3;color:#fff;cursor:pointer}button.secondary{background:#e4e7ee;color:#1d2330}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}";

/// A complete page: `title`, then `body` (already escaped HTML), with `script` (trusted
/// JavaScript, run under the page's nonce) when given.
fn page(
    mut res: HttpResponseBuilder,
    title: &str,
    body: &str,
    script: Option<&str>,
) -> HttpResponse {
    let nonce = nonce();
    let script_src = if script.is_some() {
        format!(" script-src 'nonce-{nonce}';")
    } else {
        String::new()
    };
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}';{script_src} base-uri 'none'; frame-ancestors 'none'"
    );
    let script = script
        .map(|s| format!("<script nonce=\"{nonce}\">{s}</script>"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
<body><main>{body}</main>{script}</body></html>\n",
        title = escape(title),
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

/// The error page (never a redirect): `status`, a title and an explanation for the user.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    metrics::counter!("error_pages_total", "status" => status.as_str().to_owned()).increment(1);
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message));
    page(HttpResponse::build(status), title, &body, None)
}

/// `response_mode=form_post`: an HTML form POSTing `params` to `action`, submitted by a
/// script at once, or by the button when scripts are off.
pub(crate) fn form_post(
    res: HttpResponseBuilder,
    action: &str,
    params: &[(&str, &str)],
) -> HttpResponse {
    let mut body = format!(
        "<h1>Returning to the application…</h1><form method=\"post\" action=\"{}\">",
        escape(action)
    );
    for (name, value) in params {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    body.push_str(
        "<noscript><p>JavaScript is off: press the button to continue.</p>\
<button type=\"submit\">Continue</button></noscript></form>",
    );
    page(
        res,
        "Returning to the application",
        &body,
        Some("document.forms[0].submit();"),
    )
}

/// The logout confirmation (RP-Initiated Logout 1.0 §2: without an `id_token_hint` that
/// names the signed-in user, the End-User is asked). The form repeats the request's
/// parameters and carries `csrf`, which only this browser's session cookie can produce.
pub(crate) fn logout_confirmation(action: &str, hidden: &[(&str, &str)]) -> HttpResponse {
    let mut body = format!(
        "<h1>Sign out?</h1><p>Do you want to sign out of every application you signed in to \
with this account?</p><form method=\"post\" action=\"{}\">",
        escape(action)
    );
    for (name, value) in hidden {
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    body.push_str(
        "<div class=\"actions\"><button type=\"submit\" name=\"confirm\" value=\"yes\">Sign out</button>\
<button class=\"secondary\" type=\"submit\" name=\"confirm\" value=\"no\">Stay signed in</button></div></form>",
    );
    page(HttpResponse::Ok(), "Sign out", &body, None)
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
    page(
        res,
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(text)),
        None,
    )
}

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
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
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn cookies() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "a=1; authz_session=abc; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&req, "missing"), None);
        assert_eq!(
            set_cookie("n", "v", "/", 60, true),
            "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
