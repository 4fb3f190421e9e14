//! A scripted browser for the demo walk and the end-to-end tests: an HTTP client that
//! follows no redirect by itself (the caller decides where to go next, as a test must), keeps
//! its own cookie jar, and reads the forms of server-rendered pages (hidden inputs included,
//! such as CSRF tokens and login challenges).
//!
//! Cookies are host-only and, as browsers do (RFC 6265 §8.5), shared by every port of a
//! host: authz, idp and the demo app on `localhost` see one jar.

use reqwest::{StatusCode, Url, header};

use crate::support::causes;

/// HTML character references the pages use in attribute values, decoded: the named ones
/// and the numeric ones askama writes (`&#34;`, `&#38;`, `&#39;`, `&#60;`, `&#62;`).
pub fn decode_html(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the tag text `tag` (`name="value"`), decoded.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(decode_html(&tag[start..start + len]))
}

/// A form of a page: where it goes and what it sends without user input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `method`, lower-cased (`get` when absent, as HTML says).
    pub method: String,
    /// `action`, resolved against the page's URL.
    pub action: Url,
    /// The hidden inputs, in page order.
    pub hidden: Vec<(String, String)>,
}

impl Form {
    /// The hidden input `name`'s value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.hidden
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every form of `html`, a page at `page`.
pub fn forms(page: &Url, html: &str) -> Result<Vec<Form>, String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let end = start
            + rest[start..]
                .find("</form>")
                .ok_or("unclosed form on the page")?;
        let form = &rest[start..end];
        let open = &form[..form.find('>').ok_or("malformed form tag")?];
        let action = attr(open, "action").ok_or("form without action")?;
        let action = page
            .join(&action)
            .map_err(|e| format!("form action {action}: {e}"))?;
        let method = attr(open, "method")
            .unwrap_or_else(|| "get".to_owned())
            .to_ascii_lowercase();
        let hidden = form
            .split("<input")
            .skip(1)
            .filter_map(|rest| rest.find('>').map(|end| &rest[..end]))
            .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
            .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
            .collect();
        found.push(Form {
            method,
            action,
            hidden,
        });
        rest = &rest[end..];
    }
    Ok(found)
}

/// A cookie of the jar.
#[derive(Debug)]
struct Cookie {
    host: String,
    name: String,
    value: String,
    path: String,
}

/// What the browser got for one request.
#[derive(Debug)]
pub struct Page {
    /// The URL requested.
    pub url: Url,
    /// The response status.
    pub status: StatusCode,
    /// `Location`, resolved against `url`.
    pub location: Option<Url>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The page's form whose action path is `path`.
    pub fn form(&self, path: &str) -> Result<Form, String> {
        forms(&self.url, &self.body)?
            .into_iter()
            .find(|f| f.action.path() == path)
            .ok_or_else(|| format!("no form to {path} on {}", self.url))
    }
}

/// A scripted browser: no automatic redirects, its own cookie jar.
pub struct Browser {
    http: reqwest::Client,
    jar: Vec<Cookie>,
}

impl Browser {
    /// A browser sending through `http`, which must not follow redirects itself.
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            jar: Vec::new(),
        }
    }

    /// Whether the jar holds a cookie named `name` (any host, any path).
    pub fn has(&self, name: &str) -> bool {
        self.jar.iter().any(|c| c.name == name)
    }

    fn cookie_header(&self, url: &Url) -> String {
        self.jar
            .iter()
            .filter(|c| {
                let path = c.path.trim_end_matches('/');
                Some(c.host.as_str()) == url.host_str()
                    && (url.path() == path || url.path().starts_with(&format!("{path}/")))
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&mut self, url: &Url, res: &reqwest::Response) {
        let host = url.host_str().unwrap_or_default().to_owned();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let mut parts = set.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut delete = value.is_empty();
            for part in parts {
                let (key, val) = part.split_once('=').unwrap_or((part, ""));
                if key.eq_ignore_ascii_case("path") {
                    val.clone_into(&mut path);
                } else if key.eq_ignore_ascii_case("max-age") && val.parse().unwrap_or(0) <= 0 {
                    delete = true;
                }
            }
            self.jar
                .retain(|c| !(c.host == host && c.name == name && c.path == path));
            if !delete {
                self.jar.push(Cookie {
                    host: host.clone(),
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    async fn send(&mut self, url: &Url, req: reqwest::RequestBuilder) -> Result<Page, String> {
        let cookies = self.cookie_header(url);
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, cookies)
        };
        let res = req
            .send()
            .await
            .map_err(|e| format!("{}: {}", without_query(url), causes(&e.without_url())))?;
        self.store(url, &res);
        let status = res.status();
        let location = match res.headers().get(header::LOCATION) {
            Some(l) => Some(
                l.to_str()
                    .ok()
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| format!("bad Location from {}", without_query(url)))?,
            ),
            None => None,
        };
        let body = res
            .text()
            .await
            .map_err(|e| format!("read {}: {}", without_query(url), causes(&e.without_url())))?;
        Ok(Page {
            url: url.clone(),
            status,
            location,
            body,
        })
    }

    /// GET `url` with the jar's cookies.
    pub async fn get(&mut self, url: &Url) -> Result<Page, String> {
        let req = self.http.get(url.clone());
        self.send(url, req).await
    }

    /// POST the urlencoded `form` to `url` with the jar's cookies.
    pub async fn post(&mut self, url: &Url, form: &[(String, String)]) -> Result<Page, String> {
        let req = self.http.post(url.clone()).form(form);
        self.send(url, req).await
    }

    /// Submits `form` with `extra` fields after its hidden ones.
    pub async fn submit(&mut self, form: &Form, extra: &[(&str, &str)]) -> Result<Page, String> {
        let mut fields = form.hidden.clone();
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        if form.method == "post" {
            self.post(&form.action, &fields).await
        } else {
            let mut url = form.action.clone();
            url.query_pairs_mut().extend_pairs(&fields);
            self.get(&url).await
        }
    }
}

impl Browser {
    /// Follows redirects from `res`, signing in on idp's login form as `username` and
    /// allowing (and remembering) on its consent form, until a redirect leads to a URL that
    /// starts with `stop`. Returns that URL, not visited, and the forms filled in order
    /// (`login`, `consent`). Fails on an unexpected page, on a form shown twice (a wrong
    /// password), and after [`MAX_HOPS`] steps.
    pub async fn through_login(
        &mut self,
        mut res: Page,
        stop: &str,
        username: &str,
        password: &str,
    ) -> Result<(Url, Vec<&'static str>), String> {
        let mut filled = Vec::new();
        for _ in 0..MAX_HOPS {
            if res.status.is_redirection() {
                let to = res
                    .location
                    .clone()
                    .ok_or_else(|| format!("HTTP {} without Location", res.status))?;
                if to.as_str().starts_with(stop) {
                    return Ok((to, filled));
                }
                res = self.get(&to).await?;
            } else if res.status == StatusCode::OK && res.body.contains("name=\"password\"") {
                if filled.contains(&"login") {
                    return Err("the login form came back: wrong password?".to_owned());
                }
                filled.push("login");
                let form = first_form(&res)?;
                let extra = [
                    ("username", username),
                    ("password", password),
                    ("action", "login"),
                ];
                res = self.submit(&form, &extra).await?;
            } else if res.status == StatusCode::OK && res.body.contains("consent_challenge") {
                if filled.contains(&"consent") {
                    return Err("the consent form came back".to_owned());
                }
                filled.push("consent");
                let form = first_form(&res)?;
                res = self
                    .submit(&form, &[("remember", "yes"), ("action", "allow")])
                    .await?;
            } else {
                return Err(format!(
                    "unexpected HTTP {} at {}: {:.200}",
                    res.status, res.url, res.body
                ));
            }
        }
        Err(format!("no redirect to {stop} after {MAX_HOPS} steps"))
    }
}

impl Browser {
    /// Approves a device (RFC 8628 §3.3) at idp's verification page: opens
    /// `verification_uri_complete`, confirms the prefilled code, signs in as `username`
    /// when asked, and allows. Returns the forms filled in order (`code`, `login`,
    /// `allow`). Fails on a wrong code, a wrong password or an unexpected page.
    pub async fn through_device(
        &mut self,
        verification_uri_complete: &str,
        username: &str,
        password: &str,
    ) -> Result<Vec<&'static str>, String> {
        let url = Url::parse(verification_uri_complete)
            .map_err(|e| format!("verification_uri_complete: {e}"))?;
        let code = url
            .query_pairs()
            .find(|(k, _)| k == "user_code")
            .map(|(_, v)| v.into_owned())
            .ok_or("no user_code in verification_uri_complete")?;
        let page = self.get(&url).await?;
        if page.status != StatusCode::OK {
            return Err(format!("HTTP {} at {}", page.status, without_query(&url)));
        }
        let mut filled = vec!["code"];
        let form = first_form(&page)?;
        let mut res = self
            .submit(&form, &[("user_code", &code), ("action", "submit")])
            .await?;
        if res.status == StatusCode::OK && res.body.contains("name=\"password\"") {
            filled.push("login");
            let form = first_form(&res)?;
            res = self
                .submit(
                    &form,
                    &[
                        ("username", username),
                        ("password", password),
                        ("action", "login"),
                    ],
                )
                .await?;
        }
        if res.status != StatusCode::OK || !res.body.contains("value=\"allow\"") {
            return Err(format!(
                "no confirmation: HTTP {} at {}: {:.200}",
                res.status,
                without_query(&res.url),
                res.body
            ));
        }
        filled.push("allow");
        let form = first_form(&res)?;
        let done = self.submit(&form, &[("action", "allow")]).await?;
        if done.status != StatusCode::OK || !done.body.contains("Device connected") {
            return Err(format!(
                "not approved: HTTP {}: {:.200}",
                done.status, done.body
            ));
        }
        Ok(filled)
    }
}

/// `url` without its query and fragment, for messages: a query may carry a login challenge
/// or an authorization code.
fn without_query(url: &Url) -> &str {
    &url[..url::Position::AfterPath]
}

/// Most redirects and form posts one browser login may take.
pub const MAX_HOPS: usize = 16;

fn first_form(page: &Page) -> Result<Form, String> {
    forms(&page.url, &page.body)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no form on {}", page.url))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_hidden_inputs_of_a_form() {
        let page = Url::parse("http://localhost:8081/login?login_challenge=x").unwrap();
        let html = r#"<p>hi</p><form method="post" action="/login">
            <input type="hidden" name="csrf" value="a&amp;b&#34;&#60;&#38;lt;">
            <input type="hidden" name="login_challenge" value="c1">
            <input type="text" name="username">
            </form>"#;
        let form = first_form(&Page {
            url: page.clone(),
            status: StatusCode::OK,
            location: None,
            body: html.to_owned(),
        })
        .unwrap();
        assert_eq!(form.action.as_str(), "http://localhost:8081/login");
        assert_eq!(form.method, "post");
        assert_eq!(
            form.hidden,
            vec![
                ("csrf".to_owned(), "a&b\"<&lt;".to_owned()),
                ("login_challenge".to_owned(), "c1".to_owned())
            ]
        );
        assert!(forms(&page, "<p>no form</p>").unwrap().is_empty());
    }

    #[test]
    fn messages_leave_out_the_query_and_name_the_cause() {
        let url = Url::parse("http://localhost:8081/login?login_challenge=secret#x").unwrap();
        assert_eq!(without_query(&url), "http://localhost:8081/login");
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(causes(&outer), "refused");
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Wrap {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = Wrap(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(
            causes(&wrapped),
            "error sending request: Connection refused"
        );
    }

    #[test]
    fn finds_every_form_and_its_method() {
        let page = Url::parse("http://localhost:3000/").unwrap();
        let html = r#"<form method="POST" action="/refresh"><input type="hidden" name="csrf" value="t"></form>
            <form action="/search"><input type="text" name="q"></form>"#;
        let all = forms(&page, html).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].method, "post");
        assert_eq!(all[0].field("csrf"), Some("t"));
        assert_eq!(all[1].method, "get");
        assert_eq!(all[1].action.as_str(), "http://localhost:3000/search");
        assert!(all[1].hidden.is_empty());
    }
}
