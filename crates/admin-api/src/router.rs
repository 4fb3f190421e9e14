//! The route table of a service's admin API: each route is registered on the admin app
//! and recorded, so a test can hold the table against the OpenAPI document.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, web};

use crate::AdminError;

/// Collects a service's admin routes (one `web::resource` per path, with a 405 problem
/// for other methods).
#[derive(Default)]
pub struct Router {
    resources: Vec<(String, Resource)>,
    table: Vec<(Method, String)>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("table", &self.table)
            .finish()
    }
}

async fn method_not_allowed() -> Result<HttpResponse, AdminError> {
    Err(AdminError::MethodNotAllowed)
}

impl Router {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `handler` for `method` at `path` (actix syntax, `{id}`: the same as
    /// OpenAPI's path templates).
    pub fn route<F, Args>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.table.push((method.clone(), path.to_owned()));
        let route = web::method(method).to(handler);
        match self.resources.iter_mut().find(|(p, _)| p == path) {
            Some((_, resource)) => {
                let taken = std::mem::replace(resource, web::resource(path));
                *resource = taken.route(route);
            }
            None => self
                .resources
                .push((path.to_owned(), web::resource(path).route(route))),
        }
        self
    }

    /// `GET` at `path`.
    pub fn get<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, path, handler)
    }

    /// `POST` at `path`.
    pub fn post<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, path, handler)
    }

    /// `PUT` at `path`.
    pub fn put<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PUT, path, handler)
    }

    /// `DELETE` at `path`.
    pub fn delete<F, Args>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, path, handler)
    }

    /// Every `(method, path)` registered, in order.
    pub fn table(&self) -> &[(Method, String)] {
        &self.table
    }

    pub(crate) fn register(self, config: &mut web::ServiceConfig) {
        for (_, resource) in self.resources {
            config.service(resource.default_service(web::to(method_not_allowed)));
        }
    }
}

/// Holds a route table against an OpenAPI document: every route must be documented with
/// its method, every documented operation must be routed, and every operation needs an
/// `operationId` unique in the document (OpenAPI 3.1 §4.8.10.1; Swagger UI keys "Try it
/// out" by it). The differences, if any.
pub fn coverage(table: &[(Method, String)], document: &utoipa::openapi::OpenApi) -> Vec<String> {
    let mut documented = Vec::new();
    for (path, item) in &document.paths.paths {
        let operations = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                documented.push((method, path.clone(), operation.operation_id.clone()));
            }
        }
    }
    let mut problems = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (method, path, id) in &documented {
        match id {
            None => problems.push(format!("{method} {path} has no operationId")),
            Some(id) if !ids.insert(id.as_str()) => {
                problems.push(format!("{method} {path} repeats operationId {id}"))
            }
            Some(_) => {}
        }
    }
    let documented: Vec<(Method, String)> =
        documented.into_iter().map(|(m, p, _)| (m, p)).collect();
    for route in table {
        if !documented.contains(route) {
            problems.push(format!(
                "{} {} is routed but not documented",
                route.0, route.1
            ));
        }
    }
    for op in &documented {
        if !table.contains(op) {
            problems.push(format!("{} {} is documented but not routed", op.0, op.1));
        }
    }
    problems
}
