//! The OpenAPI 3.1 document (generated from the handlers' `#[utoipa::path]` annotations) at
//! `/admin/v1/openapi.json`, and Swagger UI at `/admin/docs` from assets compiled into the
//! binary (`assets/`, swagger-ui-dist; `make swagger-ui` refreshes them), under a
//! Content-Security-Policy that lets the page load nothing but its own assets and talk to
//! nothing but this listener and the token endpoint: it works offline.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes, SecurityScheme};

use crate::scopes;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/admin/v1/openapi.json";
/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/admin/docs";
/// The name of the OAuth 2.0 security scheme of the document (`security(("admin" = […]))`
/// on each operation).
pub const SECURITY_SCHEME: &str = "admin";

/// swagger-ui-dist 5.35.0 (`make swagger-ui` records its sha256 and refreshes the files).
const BUNDLE: &[u8] = include_bytes!("../assets/swagger-ui-bundle.js");
const PRESET: &[u8] = include_bytes!("../assets/swagger-ui-standalone-preset.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui.css");

const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Admin API</title>
<link rel="stylesheet" href="/admin/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/admin/docs/swagger-ui-bundle.js"></script>
<script src="/admin/docs/swagger-ui-standalone-preset.js"></script>
<script src="/admin/docs/init.js"></script>
</body>
</html>
"#;

const INIT: &str = r##"window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/admin/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"##;

/// The served documentation: the finished document and the page's policy.
#[derive(Debug)]
pub(crate) struct Docs {
    pub(crate) document: web::Bytes,
    csp: String,
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

impl Docs {
    /// Adds the OAuth 2.0 client credentials security scheme (RFC 6749 §4.4) with
    /// `token_url` and every admin scope to `document`, and serialises it.
    pub(crate) fn new(mut document: OpenApi, token_url: &str) -> Result<Self, String> {
        let scopes = Scopes::from_iter(
            scopes::ALL
                .iter()
                .map(|(name, description)| ((*name).to_owned(), (*description).to_owned())),
        );
        let scheme = SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
            ClientCredentials::new(token_url.to_owned(), scopes),
        )]));
        document
            .components
            .get_or_insert_with(Default::default)
            .security_schemes
            .insert(SECURITY_SCHEME.to_owned(), scheme);
        let document = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; font-src 'self' data:; connect-src 'self' {}; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            origin(token_url)
        );
        Ok(Self {
            document: web::Bytes::from(document),
            csp,
        })
    }
}

pub(crate) async fn openapi(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(docs.document.clone())
}

pub(crate) async fn index(docs: web::Data<Docs>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", docs.csp.as_str()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(INDEX)
}

fn asset(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

pub(crate) async fn bundle() -> HttpResponse {
    asset("text/javascript; charset=utf-8", BUNDLE)
}

pub(crate) async fn preset() -> HttpResponse {
    asset("text/javascript; charset=utf-8", PRESET)
}

pub(crate) async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub(crate) async fn init() -> HttpResponse {
    asset("text/javascript; charset=utf-8", INIT.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins() {
        assert_eq!(
            super::origin("http://127.0.0.1:8080/token"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            super::origin("https://id.example.com"),
            "https://id.example.com"
        );
    }
}
