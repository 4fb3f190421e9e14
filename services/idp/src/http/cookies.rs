//! The three cookies of idp, all `HttpOnly; SameSite=Lax; Path=/`, and `Secure` with the
//! `__Host-` name prefix (RFC 6265bis §4.1.3.2: no `Domain`, so no sibling host can set or
//! read them) when `public_url` is https:
//!
//! - the session cookie: the random session secret, `Max-Age` = `sessions.lifetime`;
//! - the CSRF cookie: a random pre-session value the form tokens are bound to, for the
//!   browser session only;
//! - the device cookie: the random token of the login throttle's device standing (see
//!   `throttle`), `Max-Age` = `login_throttle.device_lifetime`; it outlives sign-out on
//!   purpose (it opens nothing by itself, it only lets its browser past an account block).

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::HeaderValue;

use crate::IdpError;
use crate::crypto::random_b64;

/// Cookie names and attributes.
#[derive(Debug, Clone)]
pub(crate) struct Cookies {
    secure: bool,
    session_name: &'static str,
    csrf_name: &'static str,
    device_name: &'static str,
    session_max_age: u64,
}

/// Cookie values are base64url; anything longer than this is not ours.
const MAX_VALUE: usize = 128;

impl Cookies {
    pub(crate) fn new(secure: bool, session_max_age: u64) -> Self {
        let (session_name, csrf_name, device_name) = if secure {
            ("__Host-idp_session", "__Host-idp_csrf", "__Host-idp_device")
        } else {
            ("idp_session", "idp_csrf", "idp_device")
        };
        Self {
            secure,
            session_name,
            csrf_name,
            device_name,
            session_max_age,
        }
    }

    fn read(req: &HttpRequest, name: &str) -> Option<String> {
        req.cookie_raw(name)
            .map(|c| c.value().to_owned())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_VALUE
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    fn header(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut cookie = Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .finish();
        if let Some(age) = max_age {
            cookie.set_max_age(Duration::seconds(i64::try_from(age).unwrap_or(i64::MAX)));
        }
        HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session secret the browser sent, if any.
    pub(crate) fn session(&self, req: &HttpRequest) -> Option<String> {
        Self::read(req, self.session_name)
    }

    /// `Set-Cookie` for a new session.
    pub(crate) fn set_session(&self, secret: &str) -> HeaderValue {
        self.header(self.session_name, secret, Some(self.session_max_age))
    }

    /// `Set-Cookie` that removes the session cookie.
    pub(crate) fn clear_session(&self) -> HeaderValue {
        self.header(self.session_name, "", Some(0))
    }

    /// The device cookie the browser sent, if any.
    pub(crate) fn device(&self, req: &HttpRequest) -> Option<String> {
        Self::read(req, self.device_name)
    }

    /// `Set-Cookie` for a new device cookie living `max_age` seconds.
    pub(crate) fn set_device(&self, token: &str, max_age: u64) -> HeaderValue {
        self.header(self.device_name, token, Some(max_age))
    }

    /// The CSRF cookie value the browser sent, if any.
    pub(crate) fn csrf(&self, req: &HttpRequest) -> Option<String> {
        Self::read(req, self.csrf_name)
    }

    /// The browser's CSRF value, or a new one with the `Set-Cookie` that stores it.
    pub(crate) fn ensure_csrf(
        &self,
        req: &HttpRequest,
    ) -> Result<(String, Option<HeaderValue>), IdpError> {
        if let Some(value) = self.csrf(req) {
            return Ok((value, None));
        }
        let value = random_b64(32)?;
        let set = self.header(self.csrf_name, &value, None);
        Ok((value, Some(set)))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header;
    use actix_web::test::TestRequest;

    use super::*;

    fn attributes(set: &HeaderValue) -> Vec<String> {
        let mut parts: Vec<String> = set
            .to_str()
            .unwrap()
            .split("; ")
            .map(str::to_owned)
            .collect();
        parts[1..].sort();
        parts
    }

    #[test]
    fn reads_only_well_formed_values_of_its_own_names() {
        let cookies = Cookies::new(true, 3600);
        let req = TestRequest::default()
            .insert_header((
                header::COOKIE,
                "junk; idp_session=plain; __Host-idp_session=\"abc-_9\"; __Host-idp_csrf=a+b",
            ))
            .to_http_request();
        assert_eq!(cookies.session(&req).as_deref(), Some("abc-_9"));
        assert_eq!(cookies.csrf(&req), None, "not base64url");
        let long = TestRequest::default()
            .insert_header((header::COOKIE, format!("idp_csrf={}", "a".repeat(129))))
            .to_http_request();
        assert_eq!(Cookies::new(false, 60).csrf(&long), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let secure = Cookies::new(true, 3600);
        assert_eq!(
            attributes(&secure.set_session("s")),
            [
                "__Host-idp_session=s",
                "HttpOnly",
                "Max-Age=3600",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
        assert_eq!(
            attributes(&Cookies::new(false, 3600).clear_session()),
            [
                "idp_session=",
                "HttpOnly",
                "Max-Age=0",
                "Path=/",
                "SameSite=Lax"
            ]
        );
        let req = TestRequest::default().to_http_request();
        let (value, set) = secure.ensure_csrf(&req).unwrap();
        assert_eq!(
            attributes(&set.unwrap()),
            [
                format!("__Host-idp_csrf={value}").as_str(),
                "HttpOnly",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
    }
}
