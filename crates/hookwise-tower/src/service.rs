//! [`WebhookService`]: one delivery through the runtime, then the wrapped handler.

use std::{
    convert::Infallible,
    fmt,
    future::poll_fn,
    task::{Context, Poll},
};

use bytes::Bytes;
use hookwise_core::{Delivery, Provider};
use hookwise_runtime::{BoxError, HandlerError, HandlerRun, Webhooks};
use http::{Request, Response, request::Parts};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;

use crate::ResponseFuture;

/// The body of the responses the receiver sends: a small JSON document.
pub type ResponseBody = Full<Bytes>;

/// The body of the request the handler receives: the verified raw bytes.
pub type HandlerBody = Full<Bytes>;

/// The [`Service`] made by [`WebhookLayer`](crate::WebhookLayer): receives each
/// delivery through the runtime and hands a new event to the wrapped service, as a
/// request with the original head, the verified raw body, and the
/// [`Delivery`](hookwise_core::Delivery) in its extensions; see the
/// [crate docs](crate).
pub struct WebhookService<Inner, P: Provider> {
    inner: Inner,
    webhooks: Webhooks<P>,
}

impl<Inner, P: Provider> WebhookService<Inner, P> {
    pub(crate) fn new(inner: Inner, webhooks: Webhooks<P>) -> Self {
        Self { inner, webhooks }
    }

    /// The wrapped handler service.
    pub fn get_ref(&self) -> &Inner {
        &self.inner
    }

    /// The wrapped handler service, mutably.
    pub fn get_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }

    /// Consumes the service, returning the wrapped handler service.
    pub fn into_inner(self) -> Inner {
        self.inner
    }
}

impl<Inner: Clone, P: Provider> Clone for WebhookService<Inner, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            webhooks: self.webhooks.clone(),
        }
    }
}

impl<Inner: fmt::Debug, P: Provider> fmt::Debug for WebhookService<Inner, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("inner", &self.inner)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

impl<Inner, P, ReqBody, ResBody> Service<Request<ReqBody>> for WebhookService<Inner, P>
where
    Inner: Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
    P: Provider,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    /// Always ready: the handler is called later, on a clone that is driven to
    /// readiness then (the body must be buffered and verified first).
    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let inner = self.inner.clone();
        let (parts, body) = request.into_parts();
        ResponseFuture::deliver(
            self.webhooks.clone(),
            parts,
            body,
            |webhooks, parts, delivery, claim| {
                webhooks.process(delivery, claim, handler_job(inner, parts))
            },
        )
    }
}

/// One attempt of the wrapped service: the original request head, the verified body,
/// and the [`Delivery`] in the request's extensions. A non-2xx answer is a failure.
fn handler_job<Inner, E, ResBody>(
    inner: Inner,
    parts: Box<Parts>,
) -> impl FnMut(Delivery<E>) -> HandlerRun + Send + 'static
where
    Inner: Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
    E: Clone + Send + Sync + 'static,
{
    move |delivery: Delivery<E>| {
        let mut request =
            Request::from_parts(Parts::clone(&parts), Full::new(delivery.raw_body().clone()));
        request.extensions_mut().insert(delivery);
        let mut handler = inner.clone();
        let run: HandlerRun = Box::pin(async move {
            poll_fn(|cx| handler.poll_ready(cx))
                .await
                .map_err(HandlerError::failed)?;
            let response = handler.call(request).await.map_err(HandlerError::failed)?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(HandlerError::Status(response.status()))
            }
        });
        run
    }
}
