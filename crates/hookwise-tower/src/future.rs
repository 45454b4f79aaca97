//! [`ResponseFuture`] and the answer to one delivery, shared by the layer's service
//! and the endpoint.

use std::{
    convert::Infallible,
    fmt,
    future::Future,
    pin::Pin,
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
    /// (which ends its claim), and answers as [`answer`](Self::answer) does.
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
        Self::answer(webhooks, |webhooks| async move {
            match webhooks.receive(&parts, body).await? {
                Received::New { delivery, claim } => {
                    hand_on(webhooks, parts, delivery, claim).await?;
                    Ok(OutcomeKind::Accepted)
                }
                Received::Acknowledged(kind) => Ok(kind),
            }
        })
    }

    /// Runs `receive` (one delivery through a clone of `webhooks`) in the delivery's `webhook`
    /// span, and answers: `200` for a new event taken on, a duplicate or a skipped
    /// one, the contract's rejection otherwise.
    pub(crate) fn answer<P, R, F>(webhooks: Webhooks<P>, receive: R) -> Self
    where
        P: Provider,
        R: FnOnce(Webhooks<P>) -> F + Send + 'static,
        F: Future<Output = Result<OutcomeKind, Rejection>> + Send,
    {
        let span = webhooks.span();
        let future = async move {
            let outcome = receive(webhooks.clone()).await;
            Ok(match outcome {
                // The static body: no allocation for the common answer.
                Ok(kind) => kind.response(),
                Err(rejection) => webhooks
                    .reject(&rejection)
                    .map(|text| Full::new(Bytes::from(text))),
            })
        };
        Self {
            future: Box::pin(future.instrument(span)),
        }
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
