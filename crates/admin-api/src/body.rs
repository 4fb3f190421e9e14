//! Request bodies and query strings of admin routes: JSON only, capped, unknown fields
//! refused (the target types carry `#[serde(deny_unknown_fields)]`), and every refusal a
//! problem naming the field at fault.

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, Ready, ready};
use serde::de::DeserializeOwned;

use crate::AdminError;

/// Largest JSON body of an admin request unless [`BodyLimit`] says otherwise: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The body cap of the admin routes (application data set by [`crate::AdminApi::mount`]).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body parsed into `T`: 415 unless `Content-Type` is `application/json`
/// (or `+json`), 413 above the cap (checked on `Content-Length` and while reading), 400
/// `invalid-body` with the JSON path of the field for malformed JSON, wrong types,
/// missing or unknown fields. Extraction never fails: the verdict is taken with
/// [`AdminJson::into_inner`] after [`crate::Admin`] has authenticated the caller, so an
/// unauthenticated request learns nothing about its body.
#[derive(Debug)]
pub struct AdminJson<T>(Result<T, AdminError>);

impl<T> AdminJson<T> {
    /// The parsed body, or why it was refused.
    pub fn into_inner(self) -> Result<T, AdminError> {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|e| {
            e == "application/json" || (e.starts_with("application/") && e.ends_with("+json"))
        })
}

/// The backticked name in a serde message (`unknown field `x`, expected …`).
fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Joins a serde path (`.` for the root) and a member name.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The field a deserialisation error is about: its path (which ends with the member for
/// an unknown field), extended by the member a `missing field` message names.
fn field_of(path: &str, message: &str) -> Option<String> {
    if message.starts_with("missing field") {
        return backticked(message).map(|name| join(path, name));
    }
    (!path.is_empty() && path != ".").then(|| path.to_owned())
}

/// Parses `body` as JSON into `T`, naming the field of the first error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            AdminError::InvalidBody {
                field: None,
                detail: format!("malformed JSON: {message}"),
            }
        } else {
            AdminError::InvalidBody {
                field: field_of(&path, &message),
                detail: message,
            }
        }
    })?;
    de.end().map_err(|e| AdminError::InvalidBody {
        field: None,
        detail: format!("malformed JSON: {e}"),
    })?;
    Ok(value)
}

impl<T: DeserializeOwned + 'static> FromRequest for AdminJson<T> {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = read_json::<T>(req, payload);
        Box::pin(async move { Ok(AdminJson(read.await)) })
    }
}

fn read_json<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<T, AdminError>> {
    {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
        if !is_json(req) {
            return Box::pin(ready(Err(AdminError::UnsupportedMediaType)));
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Box::pin(ready(Err(AdminError::TooLarge { limit })));
        }
        let mut payload = payload.take();
        Box::pin(async move {
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| AdminError::InvalidBody {
                    field: None,
                    detail: format!("the body could not be read: {e}"),
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(AdminError::TooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body)
        })
    }
}

/// A query string parsed into `T` (which should `deny_unknown_fields`): 400
/// `invalid-query` naming the parameter otherwise. Like [`AdminJson`], the verdict is taken
/// with [`AdminQuery::into_inner`] once the caller is authenticated.
#[derive(Debug)]
pub struct AdminQuery<T>(Result<T, AdminError>);

impl<T> AdminQuery<T> {
    /// The parsed query, or why it was refused.
    pub fn into_inner(self) -> Result<T, AdminError> {
        self.0
    }
}

/// Parses a query string into `T`, naming the parameter of the first error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AdminError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        AdminError::InvalidQuery {
            field: field_of(&path, &message),
            detail: message,
        }
    })
}

impl<T: DeserializeOwned> FromRequest for AdminQuery<T> {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(AdminQuery(parse_query(req.query_string()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        uris: Vec<String>,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn field(body: &str) -> Option<String> {
        match parse_json::<Body>(body.as_bytes()) {
            Err(AdminError::InvalidBody { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse_json::<Body>(br#"{"name":"a","uris":[]}"#).is_ok());
        assert_eq!(
            field(r#"{"name":"a","uris":[],"x":1}"#).as_deref(),
            Some("x")
        );
        assert_eq!(field(r#"{"name":1,"uris":[]}"#).as_deref(), Some("name"));
        assert_eq!(
            field(r#"{"name":"a","uris":["a",2]}"#).as_deref(),
            Some("uris[1]")
        );
        assert_eq!(field(r#"{"uris":[]}"#).as_deref(), Some("name"));
        assert_eq!(
            field(r#"{"name":"a","uris":[],"inner":{"flag":true,"y":0}}"#).as_deref(),
            Some("inner.y")
        );
        assert_eq!(
            field(r#"{"name":"a","uris":[],"inner":{"flag":"no"}}"#).as_deref(),
            Some("inner.flag")
        );
        assert_eq!(field(r#"{"name":"#), None);
        assert_eq!(field(r#"{"name":"a","uris":[]} x"#), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Query {
        limit: Option<u32>,
        cursor: Option<String>,
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert!(parse_query::<Query>("limit=5&cursor=x").is_ok());
        let field = |q: &str| match parse_query::<Query>(q) {
            Err(AdminError::InvalidQuery { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field("limit=many").as_deref(), Some("limit"));
        assert_eq!(field("sort=name").as_deref(), Some("sort"));
    }
}
