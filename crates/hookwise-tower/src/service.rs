//! [`WebhookService`]: one delivery through the contract, then the handler.

use std::{
    convert::Infallible,
    fmt,
    future::{Future, poll_fn},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hookwise_core::{DedupeStore, Delivery, Outcome, OutcomeKind, Provider, Rejection};
use http::{Request, Response, request::Parts};
use http_body::Body;
use http_body_util::Full;
use tower_service::Service;
use tracing::Instrument;

use crate::{
    HandlerError, HandlerFactory, HandlerJob, HandlerRun, Intake, Processor, SharedQueue,
    body::BoxError,
};

/// The body of the responses the receiver sends: a small JSON document.
pub type ResponseBody = Full<Bytes>;

/// The body of the request the handler receives: the verified raw bytes.
pub type HandlerBody = Full<Bytes>;

/// When the sender is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AckMode {
    /// Answer `200` as soon as the event is verified and claimed; run the handler in
    /// the background, bounded and retried. The default: senders get their answer in
    /// milliseconds whatever the handler does.
    #[default]
    Fast,
    /// Answer after the handler: `200` and commit on success; `500` and release on
    /// failure, so the sender's own retry is processed.
    AfterHandler,
}

/// The state every clone of one service shares.
pub(crate) struct Shared<P: Provider, S: DedupeStore> {
    pub(crate) intake: Intake<P, S>,
    pub(crate) processor: Processor<P, S>,
    pub(crate) mode: AckMode,
    /// The durable queue, with this service's route name in it; only in ack-fast
    /// mode (the layer refuses it with ack-after-handler).
    pub(crate) durable: Option<(SharedQueue<P, S>, Arc<str>)>,
}

/// The [`Service`] made by [`WebhookLayer`](crate::WebhookLayer); see the
/// [crate docs](crate) for what it does.
pub struct WebhookService<Inner, P: Provider, S: DedupeStore> {
    inner: Inner,
    shared: Arc<Shared<P, S>>,
}

impl<Inner, P: Provider, S: DedupeStore> WebhookService<Inner, P, S> {
    pub(crate) fn new(inner: Inner, shared: Arc<Shared<P, S>>) -> Self {
        Self { inner, shared }
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

impl<Inner: Clone, P: Provider, S: DedupeStore> Clone for WebhookService<Inner, P, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<Inner: fmt::Debug, P: Provider, S: DedupeStore> fmt::Debug for WebhookService<Inner, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookService")
            .field("inner", &self.inner)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl<Inner, P, S, ReqBody, ResBody> Service<Request<ReqBody>> for WebhookService<Inner, P, S>
where
    Inner: Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
    P: Provider,
    S: DedupeStore,
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
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        let span = shared.intake.span();
        let (parts, body) = request.into_parts();
        ResponseFuture {
            future: Box::pin(
                async move {
                    Ok(match shared.deliver(inner, parts, body).await {
                        // The static body: no allocation for the common answer.
                        Ok(kind) => kind.response(),
                        Err(rejection) => shared
                            .intake
                            .reject(&rejection)
                            .map(|text| Full::new(Bytes::from(text))),
                    })
                }
                .instrument(span),
            ),
        }
    }
}

impl<P: Provider, S: DedupeStore> Shared<P, S> {
    /// Takes one delivery through the contract, up to handing an accepted event to
    /// the processor (or the queue, or the handler); the outcome to answer, or the
    /// rejection. Runs in the delivery's `webhook` span.
    async fn deliver<Inner, ReqBody, ResBody>(
        &self,
        inner: Inner,
        parts: Parts,
        body: ReqBody,
    ) -> Result<OutcomeKind, Rejection>
    where
        Inner: Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        Inner::Future: Send + 'static,
        Inner::Error: Into<BoxError>,
        ReqBody: Body,
        ReqBody::Error: Into<BoxError>,
    {
        let outcome = self.intake.receive(&parts, body).await?;
        let kind = outcome.kind();
        if let Outcome::Accepted { delivery, claim } = outcome {
            // Held from here on: if this future is dropped (the sender hung up), the
            // claim is ended, never left to answer the retry `duplicate`.
            let claim = self.processor.hold(claim);
            // The common path, ack-fast in memory, is inline; the other two are
            // boxed so that their futures do not inflate (and get copied along with)
            // every request's.
            match &self.durable {
                Some((queue, route)) => {
                    Box::pin(self.processor.enqueue(
                        queue.as_ref(),
                        route,
                        &parts,
                        &delivery,
                        claim,
                    ))
                    .await?;
                }
                None if self.mode == AckMode::Fast => {
                    let job = handler_job(inner, parts);
                    self.processor.submit(delivery, claim, job).await?;
                }
                None => {
                    let job = handler_job(inner, parts);
                    Box::pin(self.processor.run_now(delivery, claim, job)).await?;
                }
            }
            tracing::debug!("webhook event accepted");
        }
        Ok(kind)
    }
}

/// The handler for stored request heads, for a durable queue's workers.
pub(crate) fn handler_factory<Inner, E, ResBody>(inner: Inner) -> HandlerFactory<E>
where
    Inner:
        Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + Sync + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
    E: Clone + Send + Sync + 'static,
{
    Arc::new(move |parts| Box::new(handler_job(inner.clone(), parts)) as HandlerJob<E>)
}

/// One attempt of the handler: the original request head, the verified body, and
/// the [`Delivery`] in the request's extensions.
fn handler_job<Inner, E, ResBody>(
    inner: Inner,
    parts: Parts,
) -> impl FnMut(Delivery<E>) -> HandlerRun + Send + 'static
where
    Inner: Service<Request<HandlerBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    Inner::Error: Into<BoxError>,
    E: Clone + Send + Sync + 'static,
{
    move |delivery: Delivery<E>| {
        let mut request =
            Request::from_parts(parts.clone(), Full::new(delivery.raw_body().clone()));
        request.extensions_mut().insert(delivery);
        let mut handler = inner.clone();
        Box::pin(async move {
            poll_fn(|cx| handler.poll_ready(cx))
                .await
                .map_err(HandlerError::failed)?;
            let response = handler.call(request).await.map_err(HandlerError::failed)?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(HandlerError::Status(response.status()))
            }
        })
    }
}

/// The response future of [`WebhookService`].
///
/// Boxed behind this opaque type: answering awaits the body, the dedupe store and,
/// in ack-after-handler mode, the handler, so no hand-written state machine would be
/// simpler; the type can become unboxed later without a breaking change.
pub struct ResponseFuture {
    future: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
