//! [`ResponseFuture`] and the answer to one delivery, shared by the layer's service
//! and the endpoint.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hookwise_core::{Delivery, OutcomeKind, Provider, Rejection};
use hookwise_runtime::{HeldClaim, Received, Webhooks};
use http::{Response, request::Parts};
use http_body::Body;
use http_body_util::Full;
use tracing::Instrument;

use crate::ResponseBody;

/// The response future of [`WebhookService`](crate::WebhookService) and
/// [`WebhookEndpoint`](crate::WebhookEndpoint).
///
/// Boxed behind this opaque type: answering awaits the body, the dedupe store and,
/// in ack-after-handler mode, the handler, so no hand-written state machine would be
/// simpler; the type can become unboxed later without a breaking change.
pub struct ResponseFuture {
    future: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>,
}

impl ResponseFuture {
    /// Receives one delivery through `webhooks`, hands a new event to `hand_on`
    /// (which ends its claim), and answers: `200` for a new event taken on, a
    /// duplicate or a skipped one, the contract's rejection otherwise. Runs in the
    /// delivery's `webhook` span.
    pub(crate) fn deliver<P, ReqBody, H, F>(
        webhooks: Webhooks<P>,
        parts: Parts,
        body: ReqBody,
        hand_on: H,
    ) -> Self
    where
        P: Provider,
        ReqBody: Body + Send + 'static,
        ReqBody::Data: Send,
        ReqBody::Error: Into<hookwise_runtime::BoxError>,
        H: FnOnce(Webhooks<P>, Parts, Delivery<P::Event>, HeldClaim<P>) -> F + Send + 'static,
        F: Future<Output = Result<(), Rejection>> + Send,
    {
        let span = webhooks.span();
        let future = async move {
            let outcome = match webhooks.receive(&parts, body).await {
                Ok(Received::New { delivery, claim }) => {
                    hand_on(webhooks.clone(), parts, delivery, claim)
                        .await
                        .map(|()| OutcomeKind::Accepted)
                }
                Ok(Received::Acknowledged(kind)) => Ok(kind),
                Err(rejection) => Err(rejection),
            };
            Ok(respond(&webhooks, outcome))
        };
        Self::in_span(future, span)
    }

    /// Receives one delivery through `webhooks` and hands a new event to the handler
    /// registered as `handler` ([`Webhooks::deliver_to`]); answers as
    /// [`deliver`](Self::deliver) does.
    pub(crate) fn deliver_to<P, ReqBody>(
        webhooks: Webhooks<P>,
        handler: Arc<str>,
        parts: Parts,
        body: ReqBody,
    ) -> Self
    where
        P: Provider,
        ReqBody: Body + Send + 'static,
        ReqBody::Data: Send,
        ReqBody::Error: Into<hookwise_runtime::BoxError>,
    {
        let span = webhooks.span();
        let future = async move {
            let outcome = webhooks.deliver_to(&handler, &parts, body).await;
            Ok(respond(&webhooks, outcome))
        };
        Self::in_span(future, span)
    }

    /// `future`, boxed, run in `span`.
    fn in_span<F>(future: F, span: tracing::Span) -> Self
    where
        F: Future<Output = Result<Response<ResponseBody>, Infallible>> + Send + 'static,
    {
        Self {
            future: Box::pin(future.instrument(span)),
        }
    }
}

/// The answer to a delivery: `200` for `kind`, the contract's response to a rejection.
fn respond<P: Provider>(
    webhooks: &Webhooks<P>,
    outcome: Result<OutcomeKind, Rejection>,
) -> Response<ResponseBody> {
    match outcome {
        // The static body: no allocation for the common answer.
        Ok(kind) => kind.response(),
        Err(rejection) => webhooks
            .reject(&rejection)
            .map(|text| Full::new(Bytes::from(text))),
    }
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
