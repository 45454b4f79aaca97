//! The [`Webhook`] extractor.

use std::{fmt, future::Future, ops::Deref};

use axum::{
    RequestExt as _,
    extract::{FromRef, FromRequest, Request},
    response::{IntoResponse, Response},
};
use hookwise_core::{Delivery, OutcomeKind, Provider, Rejection, StoreError};
use hookwise_runtime::{BoxError, HandlerError, HeldClaim, Received, Webhooks};
use http::request::Parts;
use tracing::Instrument;

use crate::WebhookRejection;

/// A verified, new webhook event, as a handler argument.
///
/// Derefs to the typed event (`P::Event`); [`delivery`](Self::delivery) has the raw
/// body and dedupe key. Its type names the provider only, whatever store the runtime
/// dedupes in. See the [crate docs](crate) for how the claim it holds ends:
/// [`process_in_background`](Self::process_in_background), [`hand_to`](Self::hand_to),
/// [`commit`](Self::commit), or [`release`](Self::release) (also on drop, e.g. when
/// the sender hangs up and the handler's future is dropped).
///
/// It must be the last argument of the handler, since it reads the body, within the
/// receiver's limit and the route's `DefaultBodyLimit`, whichever is smaller. Behind a
/// `hookwise_tower::WebhookLayer` it takes the event the layer
/// verified instead of reading the body again; the layer then owns the claim, and
/// `commit` and `release` leave it to the layer.
pub struct Webhook<P: Provider> {
    delivery: Delivery<P::Event>,
    /// The request head, for a durable queue.
    head: Parts,
    /// The claim this extractor took, with the runtime it came from; `None` behind
    /// the layer, or once ended. Dropped unended, the [`HeldClaim`] releases it.
    claim: Option<(HeldClaim<P>, Webhooks<P>)>,
}

impl<P: Provider> Webhook<P> {
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

    /// Answers `200` now and runs `job` in the runtime's background processor:
    /// bounded, retried with backoff on `Err` or panic, dead-lettered after the last
    /// attempt, drained on shutdown, committed on success. When the processor is full
    /// or shutting down, answers `503` + `Retry-After` and releases the claim. In
    /// ack-after-handler mode, runs `job` once and answers after it.
    ///
    /// A durable runtime refuses it (`500`): `job` lives in this request only, and no
    /// other instance could run it from the queue; use [`hand_to`](Self::hand_to).
    ///
    /// Behind the layer, which already runs the handler in the background, `job` runs
    /// at once and its failure answers `500`, so the layer retries it.
    pub async fn process_in_background<J, F, E>(mut self, mut job: J) -> Response
    where
        J: FnMut(Delivery<P::Event>) -> F + Send + 'static,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let delivery = self.delivery.clone();
        let Some((claim, webhooks)) = self.claim.take() else {
            return match job(delivery).await {
                Ok(()) => http::StatusCode::OK.into_response(),
                Err(error) => {
                    let error = HandlerError::failed(error);
                    tracing::warn!(%error, "webhook handler failed behind the layer");
                    http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            };
        };
        let result = webhooks.process(delivery, claim, job).await;
        answer(&webhooks, result)
    }

    /// Hands the event to the handler registered as `name`
    /// ([`WebhooksBuilder::handler`](hookwise_runtime::WebhooksBuilder::handler)) and
    /// answers: with a durable queue, `200` once the queue stored it (whose workers,
    /// in this instance or another, run the handler: nothing acknowledged is lost if
    /// this process dies) or `503` + `Retry-After` when it could not; in memory, as
    /// [`process_in_background`](Self::process_in_background) does. An unknown name
    /// answers `500`, logged. Behind a layer, which took the event already, answers
    /// `200`.
    pub async fn hand_to(mut self, name: &str) -> Response {
        let Some((claim, webhooks)) = self.claim.take() else {
            return http::StatusCode::OK.into_response();
        };
        let delivery = self.delivery.clone();
        let result = webhooks.hand_to(name, &self.head, delivery, claim).await;
        answer(&webhooks, result)
    }

    /// Receives the request through `webhooks`, unless a layer in front did.
    async fn receive(
        mut request: Request,
        webhooks: Webhooks<P>,
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
        let span = webhooks.span();
        async move {
            // The route's `DefaultBodyLimit` (2 MB unless set) applies as it does to
            // axum's own extractors; the receiver's limit (1 MiB by default) applies
            // too, so the smaller one wins, and disabling axum's leaves the receiver's.
            let (parts, body) = request.with_limited_body().into_parts();
            match webhooks.receive(&parts, body).await {
                Ok(Received::New { delivery, claim }) => Ok(Self {
                    delivery,
                    head: parts,
                    claim: Some((claim, webhooks)),
                }),
                Ok(Received::Acknowledged(kind)) => {
                    Err(WebhookRejection::acknowledged(kind.to_response()))
                }
                Err(rejection) => Err(WebhookRejection::refused(
                    rejection.kind(),
                    webhooks.reject(&rejection),
                )),
            }
        }
        .instrument(span)
        .await
    }
}

/// The answer once the runtime took the event on, or refused it.
fn answer<P: Provider>(webhooks: &Webhooks<P>, result: Result<(), Rejection>) -> Response {
    let response = match result {
        Ok(()) => OutcomeKind::Accepted.to_response(),
        Err(rejection) => webhooks.reject(&rejection),
    };
    response.map(axum::body::Body::from)
}

impl<P: Provider> Deref for Webhook<P> {
    type Target = P::Event;

    fn deref(&self) -> &P::Event {
        self.delivery.event()
    }
}

impl<P: Provider> fmt::Debug for Webhook<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("delivery", &self.delivery)
            .field("claimed", &self.claim.is_some())
            .finish()
    }
}

impl<AppState, P> FromRequest<AppState> for Webhook<P>
where
    AppState: Send + Sync,
    P: Provider,
    Webhooks<P>: FromRef<AppState>,
{
    type Rejection = WebhookRejection;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::receive(request, Webhooks::<P>::from_ref(state)).await
    }
}
