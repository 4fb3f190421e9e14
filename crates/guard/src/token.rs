//! Finding the Bearer token of a request (RFC 6750 §2):
//!
//! - the `Authorization: Bearer` header (§2.1), exactly one such header;
//! - the `access_token` parameter of an `application/x-www-form-urlencoded` body of a request
//!   whose method has body semantics (§2.2: never `GET`); the body is read once and handed on
//!   unchanged, so the handler can still read it;
//! - never the query string (§2.3 is not supported): a token there is refused with
//!   `invalid_request` rather than silently ignored;
//! - a token in more than one place is `invalid_request` (§3.1).

use actix_web::HttpRequest;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, ready};

use crate::error::GuardError;

/// Largest form body read for an `access_token` parameter.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// An access token as presented. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token itself; keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// Written without early exits so the compiler can check many bytes per instruction: a
/// JWT is several hundred bytes, and this runs on every request.
fn is_b64token(s: &[u8]) -> bool {
    let end = s.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let body = &s[..end];
    let bad = body.iter().fold(false, |bad, &b| {
        let ok = b.is_ascii_lowercase()
            | b.is_ascii_uppercase()
            | b.is_ascii_digit()
            | (b == b'-')
            | (b == b'.')
            | (b == b'_')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/');
        bad | !ok
    });
    !body.is_empty() && !bad
}

fn from_header(req: &HttpRequest) -> Result<Option<BearerToken>, GuardError> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GuardError::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let malformed = GuardError::InvalidRequest("the Authorization header is malformed");
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP…): no Bearer token here.
        return Ok(None);
    }
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    let token = &rest[start..];
    if !is_b64token(token) {
        return Err(malformed);
    }
    // Only ASCII passed the check above, so this cannot fail.
    let token = std::str::from_utf8(token).map_err(|_| malformed)?;
    Ok(Some(BearerToken(token.to_owned())))
}

fn in_query(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, _)| k == "access_token")
}

/// RFC 6750 §2.2: a single-part form body of a method with body semantics.
fn form_body_allowed(req: &HttpRequest) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn from_form(body: &[u8]) -> Result<Option<BearerToken>, GuardError> {
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        if name != "access_token" {
            continue;
        }
        if found.is_some() {
            return Err(GuardError::InvalidRequest(
                "the access token was sent more than once",
            ));
        }
        if !is_b64token(value.as_bytes()) {
            return Err(GuardError::InvalidRequest(
                "the access_token parameter is malformed",
            ));
        }
        found = Some(BearerToken(value.into_owned()));
    }
    Ok(found)
}

/// The request's Bearer token from the `Authorization` header only (RFC 6750 §2.1), for
/// APIs whose bodies are not forms; one in the query string is refused (§2.3 is not
/// supported).
pub(crate) fn from_header_only(req: &HttpRequest) -> Result<Option<BearerToken>, GuardError> {
    if in_query(req) {
        return Err(GuardError::InvalidRequest(
            "access tokens are not accepted in the query string",
        ));
    }
    from_header(req)
}

/// The request's Bearer token, if any. When the form body must be searched, `payload` is
/// replaced by one that yields the same bytes once they have been read.
pub(crate) fn extract(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<Option<BearerToken>, GuardError>> {
    if in_query(req) {
        return Box::pin(ready(Err(GuardError::InvalidRequest(
            "access tokens are not accepted in the query string",
        ))));
    }
    let header = match from_header(req) {
        Ok(token) => token,
        Err(e) => return Box::pin(ready(Err(e))),
    };
    if !form_body_allowed(req) {
        return Box::pin(ready(Ok(header)));
    }
    let mut original = payload.take();
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<Bytes, PayloadError>>();
    let replay = futures_util::stream::once(async move {
        rx.await
            .unwrap_or_else(|_| Err(PayloadError::Incomplete(None)))
    });
    *payload = Payload::Stream {
        payload: Box::pin(replay),
    };
    Box::pin(async move {
        let mut body = BytesMut::new();
        while let Some(chunk) = original.next().await {
            match chunk {
                Ok(chunk) if body.len() + chunk.len() <= FORM_BODY_LIMIT => {
                    body.extend_from_slice(&chunk);
                }
                Ok(_) => {
                    let _ = tx.send(Err(PayloadError::Overflow));
                    return Err(GuardError::InvalidRequest("the form body is too large"));
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Err(GuardError::InvalidRequest("the request body is incomplete"));
                }
            }
        }
        let body = body.freeze();
        let _ = tx.send(Ok(body.clone()));
        match (header, from_form(&body)?) {
            (Some(_), Some(_)) => Err(GuardError::InvalidRequest(
                "the access token was sent in more than one place",
            )),
            (header, form) => Ok(header.or(form)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    async fn run(req: TestRequest) -> (Result<Option<String>, GuardError>, Bytes) {
        let (req, mut payload) = req.to_http_parts();
        let token = extract(&req, &mut payload).await;
        let mut rest = BytesMut::new();
        while let Some(Ok(chunk)) = payload.next().await {
            rest.extend_from_slice(&chunk);
        }
        (
            token.map(|t| t.map(|t| t.expose().to_owned())),
            rest.freeze(),
        )
    }

    fn invalid(msg: &'static str) -> Result<Option<String>, GuardError> {
        Err(GuardError::InvalidRequest(msg))
    }

    #[actix_web::test]
    async fn header_form_and_query() {
        let ok = |t: &str| Ok(Some(t.to_owned()));
        let get = || TestRequest::get().uri("/r");
        assert_eq!(run(get()).await.0, Ok(None));
        assert_eq!(
            run(get().insert_header(("Authorization", "Bearer abc.DEF-_~+/==")))
                .await
                .0,
            ok("abc.DEF-_~+/==")
        );
        assert_eq!(
            run(get().insert_header(("Authorization", "bearer  abc")))
                .await
                .0,
            ok("abc")
        );
        assert_eq!(
            run(get().insert_header(("Authorization", "Basic YTpi")))
                .await
                .0,
            Ok(None)
        );
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ==",
        ] {
            assert_eq!(
                run(get().insert_header(("Authorization", bad))).await.0,
                invalid("the Authorization header is malformed"),
                "{bad}"
            );
        }
        assert_eq!(
            run(get()
                .append_header(("Authorization", "Bearer a"))
                .append_header(("Authorization", "Bearer b")))
            .await
            .0,
            invalid("more than one Authorization header")
        );
        assert_eq!(
            run(TestRequest::get().uri("/r?x=1&access_token=abc"))
                .await
                .0,
            invalid("access tokens are not accepted in the query string")
        );

        let form = |body: &'static str| {
            TestRequest::post()
                .uri("/r")
                .insert_header((
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ))
                .set_payload(body)
        };
        let (token, rest) = run(form("a=1&access_token=xyz&b=2")).await;
        assert_eq!(token, ok("xyz"));
        assert_eq!(
            rest, "a=1&access_token=xyz&b=2",
            "the body is handed on unchanged"
        );
        assert_eq!(
            run(form("access_token=xyz").insert_header(("Authorization", "Bearer xyz")))
                .await
                .0,
            invalid("the access token was sent in more than one place")
        );
        assert_eq!(
            run(form("access_token=a&access_token=b")).await.0,
            invalid("the access token was sent more than once")
        );
        assert_eq!(
            run(form("access_token=")).await.0,
            invalid("the access_token parameter is malformed")
        );
        let (token, rest) = run(form("x=1").insert_header(("Authorization", "Bearer h"))).await;
        assert_eq!((token, rest.as_ref()), (ok("h"), b"x=1".as_ref()));

        // GET never reads a body, and other media types are not searched.
        let get_form = TestRequest::get()
            .uri("/r")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload("access_token=xyz");
        assert_eq!(run(get_form).await.0, Ok(None));
        let json = TestRequest::post()
            .uri("/r")
            .insert_header(("Content-Type", "application/json"))
            .set_payload("{\"access_token\":\"xyz\"}");
        let (token, rest) = run(json).await;
        assert_eq!((token, rest.len()), (Ok(None), 22));

        let big = "a".repeat(FORM_BODY_LIMIT + 1);
        let too_big = TestRequest::post()
            .uri("/r")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(big);
        assert_eq!(run(too_big).await.0, invalid("the form body is too large"));
    }

    #[test]
    fn tokens_never_appear_in_debug_output() {
        let t = BearerToken("secret-token".into());
        assert!(!format!("{t:?}").contains("secret"));
    }
}
