//! `GET /api/v1/items`: scope `items:read`.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpResponse, web};
use guard::Scoped;

use super::ItemsRead;
use crate::items::ItemStore;

/// Every item.
pub(crate) async fn get(_caller: Scoped<ItemsRead>, store: web::Data<ItemStore>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "items": store.list() }))
}
