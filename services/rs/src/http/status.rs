//! `GET /api/v1/status`: the one public route, for API consumers and load balancers that
//! want to know what this API expects before they hold a token.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse};
use guard::{Guard, Mode};
use serde::Serialize;

/// The response body.
#[derive(Serialize)]
struct Status {
    service: &'static str,
    version: &'static str,
    token_validation: Option<Mode>,
    ready: bool,
    scopes: Scopes,
}

/// The scopes each protected route needs.
#[derive(Serialize)]
struct Scopes {
    #[serde(rename = "GET /api/v1/items")]
    list_items: [&'static str; 1],
    #[serde(rename = "POST /api/v1/items")]
    create_item: [&'static str; 1],
}

/// Service name, version, how tokens are checked and the scopes each route needs. Says
/// nothing about any token or caller, so it needs none.
pub(crate) async fn get(req: HttpRequest) -> HttpResponse {
    let guard = req.app_data::<Guard>();
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Status {
            service: "rs",
            version: env!("CARGO_PKG_VERSION"),
            token_validation: guard.map(Guard::mode),
            ready: guard.is_some_and(Guard::is_ready),
            scopes: Scopes {
                list_items: ["items:read"],
                create_item: [super::items::WRITE],
            },
        })
}
