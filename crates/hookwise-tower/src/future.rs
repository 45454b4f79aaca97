//! [`ResponseFuture`] and the answer to one delivery, shared by the layer's service
//! and the endpoint.

use std::{
    convert::Infallible,
    fmt,
    future::{Future, Ready, ready},
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
use tokio_util::either::Either;
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
        H: FnOnce(Webhooks<P>, Box<Parts>, Delivery<P::Event>, HeldClaim<P>) -> F + Send + 'static,
        F: Future<Output = Result<(), Rejection>> + Send,
    {
        let span = webhooks.span();
        // Boxed: held across the body's read and then by the handler's job, it
        // would add 224 bytes to this future, allocated for every request (a block
        // over about 1 KiB takes the allocator's slow path).
        let parts = Box::new(parts);
        let future = async move {
            let mut kind = OutcomeKind::Accepted;
            let received = webhooks.receive(&parts, body).await;
            // Awaited as it is made: held in a variable, the hand-over would take
            // room in this future's state twice.
            let handed = hand_on_new(received, &webhooks, parts, hand_on, &mut kind).await;
            Ok(respond(&webhooks, handed.map(|()| kind)))
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

/// A new event's hand-over (`kind` stays [`OutcomeKind::Accepted`]), or, for any
/// other delivery, its answer at once (`kind` set to the acknowledgement's).
fn hand_on_new<P: Provider, H, F>(
    received: Result<Received<P>, Rejection>,
    webhooks: &Webhooks<P>,
    parts: Box<Parts>,
    hand_on: H,
    kind: &mut OutcomeKind,
) -> Either<F, Ready<Result<(), Rejection>>>
where
    H: FnOnce(Webhooks<P>, Box<Parts>, Delivery<P::Event>, HeldClaim<P>) -> F,
{
    match received {
        Ok(Received::New { delivery, claim }) => {
            Either::Left(hand_on(webhooks.clone(), parts, delivery, claim))
        }
        Ok(Received::Acknowledged(acknowledged)) => {
            *kind = acknowledged;
            Either::Right(ready(Ok(())))
        }
        Err(rejection) => Either::Right(ready(Err(rejection))),
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use hookwise_core::{Hoursmith, MemoryStore, Receiver};
    use hookwise_test_support::HOURSMITH_SECRET;
    use http::{Request, Response};
    use tower_layer::Layer;
    use tower_service::Service;

    use crate::{HandlerBody, WebhookLayer};

    /// The most glibc's allocator serves from its per-thread cache (`tcache`); a
    /// larger block takes its slow path (bins, consolidation), which measured about
    /// 2,000 instructions for the 2.8 KiB this future used to take.
    const FAST_ALLOCATION: usize = 1024;

    #[tokio::test(flavor = "current_thread")]
    async fn a_requests_future_fits_the_allocators_fast_path() {
        let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
        let receiver = Receiver::new(provider, MemoryStore::new()).expect("receiver");
        let webhooks = hookwise_runtime::Webhooks::new(receiver);
        let handler = tower::service_fn(|_: Request<HandlerBody>| async {
            Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
        });
        let mut service = WebhookLayer::new(&webhooks).expect("layer").layer(handler);
        let request = Request::post("/webhooks")
            .body(axum::body::Body::empty())
            .expect("request");

        let future = service.call(request);

        let size = std::mem::size_of_val(&*future.future);
        assert!(
            size <= FAST_ALLOCATION,
            "a request's future takes {size} bytes, more than {FAST_ALLOCATION}"
        );
    }
}
