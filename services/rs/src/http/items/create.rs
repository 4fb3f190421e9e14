//! `POST /api/v1/items`: scope `items:write` (checked by the route's middleware before the
//! body is read).

use actix_web::{HttpResponse, web};
use guard::Principal;

use crate::RsError;
use crate::items::{ItemStore, NewItem, NewItemRequest};

/// Validates and stores the item: 201 with it, 422 for an invalid one, 403
/// `quota_exceeded` when the caller's subject has used its quota, 507 when full.
pub(crate) async fn post(
    caller: Principal,
    body: web::Json<NewItemRequest>,
    store: web::Data<ItemStore>,
) -> Result<HttpResponse, RsError> {
    let item = NewItem::try_from(body.into_inner())?;
    let stored = store.add(item, &caller.sub)?;
    Ok(HttpResponse::Created().json(stored))
}
