//! The [`Webhook`] extractor.

use std::{fmt, future::Future, ops::Deref};

use axum::{
    extract::{FromRef, FromRequest, Request},
    response::{IntoResponse, Response},
};
use hookwise_core::{
    Claim, DedupeStore, Delivery, MemoryStore, Outcome, OutcomeKind, Provider, Rejection,
    RejectionKind, StoreError,
};
use hookwise_tower::{HandlerError, HandlerRun};
use http::request::Parts;
use tracing::Instrument;

use crate::{WebhookRejection, WebhookState};

/// A verified, new webhook event, as a handler argument.
///
/// Derefs to the typed event (`P::Event`); [`delivery`](Self::delivery) has the raw
/// body and dedupe key. See the [crate docs](crate) for how the claim it holds ends:
/// [`process_in_background`](Self::process_in_background), [`commit`](Self::commit), or
/// [`release`](Self::release) (also on drop).
///
/// It must be the last argument of the handler, since it reads the body. Behind a
/// [`WebhookLayer`](hookwise_tower::WebhookLayer) it takes the event the layer
/// verified instead of reading the body again; the layer then owns the claim, and
/// `commit` and `release` leave it to the layer.
pub struct Webhook<P: Provider, S: DedupeStore = MemoryStore> {
    delivery: Delivery<P::Event>,
    /// The request head, for a durable queue.
    head: Parts,
    /// The claim this extractor took, with the state to end it; `None` behind the
    /// layer, or once ended.
    claim: Option<(Claim, WebhookState<P, S>)>,
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
            Some((claim, state)) => state.intake().receiver().commit(&claim).await,
            None => Ok(()),
        }
    }

    /// Gives the claim back so the sender's retry is processed; answer the sender
    /// with a non-2xx status so that it retries.
    pub async fn release(mut self) -> Result<(), StoreError> {
        match self.claim.take() {
            Some((claim, state)) => state.intake().receiver().release(&claim).await,
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

    /// Answers `200` once the event is stored in the state's durable queue
    /// ([`WebhookState::durable`]), whose workers, in this instance or another, run
    /// the handler registered there: nothing acknowledged is lost if this process
    /// dies. When the queue cannot store the event, answers `503` + `Retry-After` and
    /// releases the claim.
    ///
    /// A state without a durable queue is a configuration error: answered `500`
    /// (logged), with the claim released so the sender retries. Behind the layer,
    /// which already queued the event, answers `200`.
    pub async fn enqueue(mut self) -> Response {
        let Some((claim, state)) = self.claim.take() else {
            return http::StatusCode::OK.into_response();
        };
        let response = match state.durable_queue() {
            Some((queue, route)) => {
                let processor = state.processor();
                match processor
                    .enqueue(queue, route, &self.head, &self.delivery, claim)
                    .await
                {
                    Ok(()) => OutcomeKind::Accepted.to_response(),
                    Err(rejection) => state.intake().reject(&rejection),
                }
            }
            None => {
                tracing::error!("Webhook::enqueue needs a WebhookState with a durable queue");
                // Ended here, not on drop: the state is about to go away with `self`.
                let _ = state.intake().receiver().release(&claim).await;
                let rejection = Rejection::new(RejectionKind::HandlerFailed)
                    .with_detail("no durable queue configured");
                state.intake().reject(&rejection)
            }
        };
        response.map(axum::body::Body::from)
    }
}

impl<P: Provider, S: DedupeStore> Deref for Webhook<P, S> {
    type Target = P::Event;

    fn deref(&self) -> &P::Event {
        self.delivery.event()
    }
}

/// An unended claim is released, so the sender's retry is processed: forgetting to
/// commit may run a redelivery again, but never loses an event.
impl<P: Provider, S: DedupeStore> Drop for Webhook<P, S> {
    fn drop(&mut self) {
        let Some((claim, state)) = self.claim.take() else {
            return;
        };
        tracing::debug!(key = %claim.key(), "webhook claim not committed; releasing it");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = state.intake().receiver().release(&claim).await {
                    tracing::warn!(%error, "could not release a webhook claim; it expires with its lease");
                }
            });
        }
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

    async fn from_request(mut request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Behind the layer: the event is verified and claimed already.
        if let Some(delivery) = request.extensions_mut().remove::<Delivery<P::Event>>() {
            let (head, _) = request.into_parts();
            return Ok(Self {
                delivery,
                head,
                claim: None,
            });
        }
        let state = WebhookState::<P, S>::from_ref(state);
        let intake = state.intake().clone();
        let span = intake.span();
        async move {
            let (parts, body) = request.into_parts();
            match intake.receive(&parts.headers, body).await {
                Ok(Outcome::Accepted { delivery, claim }) => Ok(Self {
                    delivery,
                    head: parts,
                    claim: Some((claim, state)),
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
