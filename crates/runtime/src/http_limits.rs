use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::{BoxBody, EitherBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_http::{ConnectionType, Extensions, Payload, Request, Response, StatusCode};
use actix_service::{Service, Transform};
use actix_web::web::Bytes;
use futures_util::future::LocalBoxFuture;

use crate::limits::{ConnectionSlot, ConnectionTable, SHED_METRIC, TIMEOUT_METRIC};

/// The limits one actix-web listener enforces: its connection table (filled by
/// [`HttpGuard::on_connect`]) and the whole-request deadline.
#[derive(Debug)]
pub(crate) struct HttpGuard<B, E> {
    listener: &'static str,
    table: ConnectionTable,
    request_timeout: Duration,
    retry_after: u64,
    slow_peer_timeout: Duration,
    marker: PhantomData<fn() -> (B, E)>,
}

impl<B, E> Clone for HttpGuard<B, E> {
    fn clone(&self) -> Self {
        Self {
            listener: self.listener,
            table: self.table.clone(),
            request_timeout: self.request_timeout,
            retry_after: self.retry_after,
            slow_peer_timeout: self.slow_peer_timeout,
            marker: PhantomData,
        }
    }
}

impl<B, E> HttpGuard<B, E> {
    /// Guards `listener` with `table`'s caps and `request_timeout`; a 503 asks clients to
    /// come back after `retry_after` seconds. Unacknowledged response data older than
    /// `slow_peer_timeout` ends the connection (`TCP_USER_TIMEOUT`).
    pub(crate) fn new(
        listener: &'static str,
        table: ConnectionTable,
        request_timeout: Duration,
        retry_after: u64,
        slow_peer_timeout: Duration,
    ) -> Self {
        Self {
            listener,
            table,
            request_timeout,
            retry_after,
            slow_peer_timeout,
            marker: PhantomData,
        }
    }

    /// The `on_connect` hook of the server: counts the connection in the table (the slot
    /// lives in the connection's data and uncounts it when the connection ends) and bounds
    /// how long sent data may stay unacknowledged, so a client that stops reading the
    /// answer cannot hold the connection. With `report` (a listener that requests client
    /// certificates), the client's certificate goes into the connection's data as a
    /// [`crate::PeerCertificate`].
    pub(crate) fn on_connect(
        &self,
        report: Option<crate::tls::CertificateReport>,
    ) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
        let table = self.table.clone();
        let slow_peer_timeout = self.slow_peer_timeout;
        move |io: &dyn Any, data: &mut Extensions| {
            // Plaintext: the TCP stream itself; TLS: the TCP stream under the session.
            let tls = io
                .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<tokio::net::TcpStream>>();
            let stream = io
                .downcast_ref::<tokio::net::TcpStream>()
                .or_else(|| tls.map(|tls| tls.get_ref().0));
            if let (Some(report), Some(tls)) = (&report, tls)
                && let Some(certificate) = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| report.peer_certificate(chain))
            {
                data.insert(certificate);
            }
            let peer = stream.and_then(|s| s.peer_addr().ok()).map(|a| a.ip());
            if let Some(stream) = stream {
                crate::grpc_limits::bound_unacknowledged(stream, slow_peer_timeout);
            }
            data.insert(table.open(peer));
        }
    }
}

impl<S, B, E> Transform<S, Request> for HttpGuard<B, E>
where
    S: Service<Request> + 'static,
    S::Response: Into<Response<B>>,
    S::Error: 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<EitherBody<B, BoxBody>>;
    type Error = S::Error;
    type Transform = HttpGuardService<S, B>;
    type InitError = E;
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpGuardService {
            service: std::rc::Rc::new(service),
            listener: self.listener,
            request_timeout: self.request_timeout,
            retry_after: self.retry_after,
            marker: PhantomData,
        }))
    }
}

/// The service [`HttpGuard`] wraps around an application.
pub(crate) struct HttpGuardService<S, B> {
    service: std::rc::Rc<S>,
    listener: &'static str,
    request_timeout: Duration,
    retry_after: u64,
    marker: PhantomData<fn() -> B>,
}

impl<S, B> Service<Request> for HttpGuardService<S, B>
where
    S: Service<Request> + 'static,
    S::Response: Into<Response<B>>,
    S::Error: 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = Response<EitherBody<B, BoxBody>>;
    type Error = S::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::forward_ready!(service);

    fn call(&self, req: Request) -> Self::Future {
        let listener = self.listener;
        if req
            .conn_data::<ConnectionSlot>()
            .is_some_and(|slot| !slot.admitted)
        {
            metrics::counter!(SHED_METRIC, "listener" => listener).increment(1);
            tracing::debug!(listener, "connection cap reached: request shed with 503");
            let answer = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server is at its connection limit; retry later",
                Some(self.retry_after),
            );
            return Box::pin(ready(Ok(answer)));
        }
        let deadline = self.request_timeout;
        let mut req = req;
        let held = hold_payload(&mut req);
        let call = self.service.call(req);
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(answer) => answer.map(|res| {
                    let res = res.into();
                    match held.filter(|h| !h.0.finished.get()) {
                        None => res.map_body(|_, b| EitherBody::left(b)),
                        Some(held) => res.map_body(|_, b| {
                            EitherBody::right(BoxBody::new(HoldingBody {
                                inner: BoxBody::new(b),
                                _held: held,
                            }))
                        }),
                    }
                }),
                Err(_) => {
                    metrics::counter!(TIMEOUT_METRIC, "listener" => listener).increment(1);
                    tracing::debug!(
                        listener,
                        "request not received and answered within limits.request_timeout: 408"
                    );
                    Ok(refusal(
                        StatusCode::REQUEST_TIMEOUT,
                        "invalid_request",
                        "the request was not received in time",
                        None,
                    ))
                }
            }
        })
    }
}

/// The request body, shared between the application (which may read it, or not) and the
/// response ([`hold_payload`]).
#[derive(Clone)]
struct HeldPayload(Rc<Held>);

struct Held {
    payload: RefCell<Payload>,
    /// The body was read to its end.
    finished: Cell<bool>,
}

impl futures_util::Stream for HeldPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Ok(mut payload) = self.0.payload.try_borrow_mut() else {
            // Never borrowed elsewhere while polled; a body that cannot be read ends.
            return Poll::Ready(None);
        };
        let next = Pin::new(&mut *payload).poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            self.0.finished.set(true);
        }
        next
    }
}

/// A response body that keeps an unread request body alive until it has been sent.
struct HoldingBody {
    inner: BoxBody,
    _held: HeldPayload,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_http::body::BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Gives the application a handle on the request body and returns another one, which the
/// caller attaches to the response's body when the application left the request body
/// unread ([`HoldingBody`]). That body is then still alive when actix-http finishes the
/// response, so it answers with `Connection: close` and
/// ends the connection (after `limits.disconnect_timeout`) instead of draining the rest of
/// the body with no deadline, which a client stalling a chunked body (RFC 9112 §7.1) on an
/// endpoint that never reads it could otherwise stretch forever. A body that was read to
/// its end changes nothing: the connection is kept alive as before.
fn hold_payload(req: &mut Request) -> Option<HeldPayload> {
    if matches!(req.payload(), Payload::None) {
        return None;
    }
    let held = HeldPayload(Rc::new(Held {
        payload: RefCell::new(req.take_payload()),
        finished: Cell::new(false),
    }));
    *req.payload() = Payload::Stream {
        payload: Box::pin(held.clone()),
    };
    Some(held)
}

/// A JSON error answer (RFC 6749 §5.2 shape: `error`, `error_description`) that closes
/// the connection, with `Retry-After` (RFC 9110 §10.2.3) when given.
fn refusal<B>(
    status: StatusCode,
    error: &str,
    description: &str,
    retry_after: Option<u64>,
) -> Response<EitherBody<B, BoxBody>> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut res = Response::with_body(status, BoxBody::new(body.to_string()));
    res.head_mut().set_connection_type(ConnectionType::Close);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        actix_http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    res.map_body(|_, b| EitherBody::right(b))
}
