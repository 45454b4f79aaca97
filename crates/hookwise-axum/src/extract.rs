//! The [`Webhook`] extractor.

use std::{fmt, future::Future, ops::Deref, sync::Arc};

use axum::{
    RequestExt as _,
    extract::{FromRef, FromRequest, Request},
    response::{IntoResponse, Response},
};
use hookwise_core::{
    DedupeStore, Delivery, MemoryStore, Outcome, OutcomeKind, Provider, StoreError,
};
use hookwise_tower::{HandlerError, HandlerRun, HeldClaim, SharedQueue};
use http::request::Parts;
use tracing::Instrument;

use crate::{DurableWebhookState, WebhookRejection, WebhookState};

/// A verified, new webhook event, as a handler argument.
///
/// Derefs to the typed event (`P::Event`); [`delivery`](Self::delivery) has the raw
/// body and dedupe key. See the [crate docs](crate) for how the claim it holds ends:
/// [`process_in_background`](Self::process_in_background), [`commit`](Self::commit), or
/// [`release`](Self::release) (also on drop, e.g. when the sender hangs up and the
/// handler's future is dropped).
///
/// It must be the last argument of the handler, since it reads the body, within the
/// receiver's limit and the route's `DefaultBodyLimit`, whichever is smaller. Behind a
/// [`WebhookLayer`](hookwise_tower::WebhookLayer) it takes the event the layer
/// verified instead of reading the body again; the layer then owns the claim, and
/// `commit` and `release` leave it to the layer.
pub struct Webhook<P: Provider, S: DedupeStore = MemoryStore> {
    delivery: Delivery<P::Event>,
    /// The request head, for a durable queue.
    head: Parts,
    /// The claim this extractor took, with the state it came from; `None` behind the
    /// layer, or once ended. Dropped unended, the [`HeldClaim`] releases it.
    claim: Option<(HeldClaim<P, S>, WebhookState<P, S>)>,
}

impl<P: Provider, S: DedupeStore> Webhook<P, S> {
    /// The typed event.
    pub fn event(&self) -> &P::Event {
        self.delivery.event()
    }

    /// The whole delivery: event, raw body, dedupe key, matching secret.
    pub fn delivery(&self) -> &Delivery<P::Event> {
        &self.delivery
    }

    /// Records the event as processed: the sender's retries are duplicates from now on.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        match self.claim.take() {
            Some((claim, _)) => claim.commit().await,
            None => Ok(()),
        }
    }

    /// Gives the claim back so the sender's retry is processed; answer the sender
    /// with a non-2xx status so that it retries.
    pub async fn release(mut self) -> Result<(), StoreError> {
        match self.claim.take() {
            Some((claim, _)) => claim.release().await,
            None => Ok(()),
        }
    }

    /// Answers `200` now and runs `job` in the background [`Processor`]: bounded,
    /// retried with backoff on `Err` or panic, dead-lettered after the last attempt,
    /// drained on shutdown, committed on success. When the processor is full or
    /// shutting down, answers `503` + `Retry-After` and releases the claim.
    ///
    /// Behind the layer, which already runs the handler in the background, `job` runs
    /// at once and its failure answers `500`, so the layer retries it.
    ///
    /// [`Processor`]: hookwise_tower::Processor
    pub async fn process_in_background<J, F, E>(mut self, mut job: J) -> Response
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let delivery = self.delivery.clone();
        let Some((claim, state)) = self.claim.take() else {
            return match job(delivery).await {
                Ok(()) => http::StatusCode::OK.into_response(),
                Err(error) => {
                    let error = HandlerError::failed(error);
                    tracing::warn!(%error, "webhook handler failed behind the layer");
                    http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            };
        };
        let response = match state
            .processor()
            .submit(delivery, claim, handler_job(job))
            .await
        {
            Ok(()) => OutcomeKind::Accepted.to_response(),
            Err(rejection) => state.intake().reject(&rejection),
        };
        response.map(axum::body::Body::from)
    }

    /// Receives the request through `state`'s intake, unless a layer in front did.
    async fn receive(
        mut request: Request,
        state: WebhookState<P, S>,
    ) -> Result<Self, WebhookRejection> {
        // Behind the layer: the event is verified and claimed already.
        if let Some(delivery) = request.extensions_mut().remove::<Delivery<P::Event>>() {
            let (head, _) = request.into_parts();
            return Ok(Self {
                delivery,
                head,
                claim: None,
            });
        }
        let intake = state.intake().clone();
        let span = intake.span();
        async move {
            // The route's `DefaultBodyLimit` (2 MB unless set) applies as it does to
            // axum's own extractors; the receiver's limit (1 MiB by default) applies
            // too, so the smaller one wins, and disabling axum's leaves the receiver's.
            let (parts, body) = request.with_limited_body().into_parts();
            match intake.receive(&parts, body).await {
                Ok(Outcome::Accepted { delivery, claim }) => Ok(Self {
                    delivery,
                    head: parts,
                    claim: Some((state.processor().hold(claim), state)),
                }),
                Ok(acknowledged) => Err(WebhookRejection::acknowledged(acknowledged.to_response())),
                Err(rejection) => Err(WebhookRejection::refused(
                    rejection.kind(),
                    intake.reject(&rejection),
                )),
            }
        }
        .instrument(span)
        .await
    }
}

impl<P: Provider, S: DedupeStore> Deref for Webhook<P, S> {
    type Target = P::Event;

    fn deref(&self) -> &P::Event {
        self.delivery.event()
    }
}

impl<P: Provider, S: DedupeStore> fmt::Debug for Webhook<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("delivery", &self.delivery)
            .field("claimed", &self.claim.is_some())
            .finish()
    }
}

impl<AppState, P, S> FromRequest<AppState> for Webhook<P, S>
where
    AppState: Send + Sync,
    P: Provider,
    S: DedupeStore,
    WebhookState<P, S>: FromRef<AppState>,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::receive(request, WebhookState::<P, S>::from_ref(state)).await
    }
}

/// A verified, new webhook event for a durable queue: [`enqueue`](Self::enqueue) it.
///
/// Extracted from a [`DurableWebhookState`] in the router state, which
/// [`WebhookState::durable`] makes; a state without a durable queue has no
/// `DurableWebhook`, so enqueueing with nowhere to store is a compile error, not a
/// `200` that stores nothing:
///
/// ```compile_fail
/// use axum::{Router, response::Response, routing::post};
/// use hookwise_axum::{DurableWebhook, WebhookState};
/// use hookwise_core::Hoursmith;
///
/// async fn on_hoursmith(webhook: DurableWebhook<Hoursmith>) -> Response {
///     webhook.enqueue().await
/// }
/// # fn app(state: WebhookState<Hoursmith>) -> Router {
/// // A plain `WebhookState` has no durable queue: this does not compile.
/// Router::new().route("/webhooks/hoursmith", post(on_hoursmith)).with_state(state)
/// # }
/// ```
pub struct DurableWebhook<P: Provider, S: DedupeStore = MemoryStore> {
    webhook: Webhook<P, S>,
    queue: SharedQueue<P, S>,
    route: Arc<str>,
}

impl<P: Provider, S: DedupeStore> DurableWebhook<P, S> {
    /// The delivery: event, raw body, dedupe key, matching secret.
    pub fn delivery(&self) -> &Delivery<P::Event> {
        self.webhook.delivery()
    }

    /// Answers `200` once the event is stored in the durable queue, whose workers, in
    /// this instance or another, run the handler registered with
    /// [`WebhookState::durable`]: nothing acknowledged is lost if this process dies.
    /// When the queue cannot store the event, answers `503` + `Retry-After` and
    /// releases the claim; if the sender hangs up meanwhile, the claim is released.
    /// Behind a layer, which took the event already, answers `200`.
    pub async fn enqueue(mut self) -> Response {
        let Some((claim, state)) = self.webhook.claim.take() else {
            return http::StatusCode::OK.into_response();
        };
        let webhook = &self.webhook;
        let response = match state
            .processor()
            .enqueue(
                self.queue.as_ref(),
                &self.route,
                &webhook.head,
                &webhook.delivery,
                claim,
            )
            .await
        {
            Ok(()) => OutcomeKind::Accepted.to_response(),
            Err(rejection) => state.intake().reject(&rejection),
        };
        response.map(axum::body::Body::from)
    }
}

impl<P: Provider, S: DedupeStore> Deref for DurableWebhook<P, S> {
    type Target = P::Event;

    fn deref(&self) -> &P::Event {
        self.webhook.event()
    }
}

impl<P: Provider, S: DedupeStore> fmt::Debug for DurableWebhook<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableWebhook")
            .field("webhook", &self.webhook)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<AppState, P, S> FromRequest<AppState> for DurableWebhook<P, S>
where
    AppState: Send + Sync,
    P: Provider,
    S: DedupeStore,
    DurableWebhookState<P, S>: FromRef<AppState>,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let durable = DurableWebhookState::<P, S>::from_ref(state);
        let (state, queue, route) = durable.into_parts();
        Ok(Self {
            webhook: Webhook::receive(request, state).await?,
            queue,
            route,
        })
    }
}

/// Adapts a handler returning any error to the processor's job: one run per call.
pub(crate) fn handler_job<E, J, F, Err>(
    mut job: J,
) -> impl FnMut(Delivery<E>) -> HandlerRun + Send + 'static
where
    J: FnMut(Delivery<E>) -> F + Send + 'static,
    F: Future<Output = Result<(), Err>> + Send + 'static,
    Err: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |delivery| {
        let run = job(delivery);
        Box::pin(async move { run.await.map_err(HandlerError::failed) })
    }
}
