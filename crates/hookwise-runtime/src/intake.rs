//! [`Intake`]: the HTTP side of receiving one delivery, shared by every adapter.

use std::{fmt, sync::Arc, time::Duration};

use hookwise_core::{
    AnyStore, DedupeKey, Delivery, Diagnosis, Outcome, OutcomeKind, Provider, Receiver, Rejection,
    RejectionKind,
};
use http::request::Parts;
use http_body::Body;
use tracing::field::Empty;

use crate::{BoxError, ShutdownHandle, Stats, body};

/// Takes a delivery from HTTP to an [`Outcome`]: refuses it while shutting down,
/// checks `Content-Length`, buffers the body within the limit and the body timeout,
/// then verifies, parses and claims it through
/// [`Receiver::receive`](hookwise_core::Receiver::receive), counting every outcome in
/// [`Stats`].
///
/// [`Webhooks::receive`](crate::Webhooks::receive) goes through it, for every adapter,
/// so they all answer exactly alike.
pub(crate) struct Intake<P: Provider> {
    receiver: Arc<Receiver<P, AnyStore>>,
    body_timeout: Duration,
    stats: Stats,
    shutdown: ShutdownHandle,
}

impl<P: Provider> Intake<P> {
    pub(crate) fn new(
        receiver: Arc<Receiver<P, AnyStore>>,
        body_timeout: Duration,
        stats: Stats,
        shutdown: ShutdownHandle,
    ) -> Self {
        Self {
            receiver,
            body_timeout,
            stats,
            shutdown,
        }
    }

    /// The `webhook` span for one delivery, with `provider` set and `event_id`,
    /// `event_type` and `outcome` to be recorded. No secret, signature or body is
    /// ever recorded on it.
    pub(crate) fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "webhook",
            provider = self.receiver.provider().name(),
            event_id = Empty,
            event_type = Empty,
            outcome = Empty,
        )
    }

    /// Receives one delivery: [`verify`](Self::verify), then [`claim`](Self::claim).
    ///
    /// On [`Outcome::Accepted`] the caller owns the claim, as with the core receiver.
    /// On `Err`, answer with [`reject`](Self::reject).
    pub(crate) async fn receive<B>(
        &self,
        head: &Parts,
        body: B,
    ) -> Result<Outcome<P::Event>, Rejection>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let delivery = self.verify(head, body).await?;
        self.claim(delivery).await
    }

    /// The contract up to the dedupe claim: a request that is not a `POST` is
    /// refused first (`405`), before anything is read; then the shutdown, the
    /// `Content-Length`, the body within its limit and timeout, the signature and
    /// the parse ([`Receiver::verify_at`]).
    pub(crate) async fn verify<B>(
        &self,
        head: &Parts,
        body: B,
    ) -> Result<Delivery<P::Event>, Rejection>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        self.receiver.check_method(&head.method)?;
        if self.shutdown.is_closed() {
            return Err(Rejection::new(RejectionKind::ShuttingDown));
        }
        let headers = &head.headers;
        self.receiver.check_content_length(headers)?;
        let bytes = body::read(body, self.receiver.limit(), self.body_timeout).await?;
        self.receiver
            .verify_at(head.uri.path(), headers, bytes)
            .await
    }

    /// Skips or claims a verified delivery ([`Receiver::claim`]), and records the
    /// outcome: its fields on the current span (see [`span`](Self::span)), its count
    /// in [`Stats`].
    pub(crate) async fn claim(
        &self,
        delivery: Delivery<P::Event>,
    ) -> Result<Outcome<P::Event>, Rejection> {
        let outcome = self.receiver.claim(delivery).await?;
        self.record(&outcome);
        Ok(outcome)
    }

    /// Records an outcome: its fields on the current span, its count in [`Stats`].
    pub(crate) fn record(&self, outcome: &Outcome<P::Event>) {
        match outcome {
            Outcome::Accepted { delivery, .. } => self.accepted(delivery),
            Outcome::Duplicate { key, state } => {
                marked(OutcomeKind::Duplicate, key);
                self.stats.duplicate();
                tracing::debug!(?state, "webhook duplicate acknowledged");
            }
            Outcome::Skipped(delivery) => {
                marked(OutcomeKind::Skipped, delivery.dedupe_key());
                self.stats.skipped();
                tracing::debug!("webhook event skipped");
            }
        }
    }

    /// Records a new event taken on (claimed, or stored by a durable queue).
    pub(crate) fn accepted(&self, delivery: &Delivery<P::Event>) {
        let span = marked(OutcomeKind::Accepted, delivery.dedupe_key());
        span.record(
            "event_type",
            self.receiver.provider().event_type(delivery.event()),
        );
        self.stats.accepted();
        let secret = delivery.verified().secret_index();
        if self.receiver.diagnostics_on() && secret > 0 {
            self.diagnosed(&Diagnosis::RetiredSecret { secret });
        }
    }

    /// Counts a rejection, records it on the current span, and returns the
    /// contract's response for it.
    pub(crate) fn reject(&self, rejection: &Rejection) -> http::Response<String> {
        self.stats.rejected(rejection.kind());
        tracing::Span::current().record("outcome", rejection.code());
        tracing::debug!(%rejection, "webhook delivery rejected");
        if self.receiver.diagnostics_on() {
            rejection.diagnoses().iter().for_each(|d| self.diagnosed(d));
        }
        rejection.to_response()
    }

    /// Logs and counts a finding of the receiver's diagnostics.
    fn diagnosed(&self, diagnosis: &Diagnosis) {
        self.stats.diagnosed(diagnosis);
        tracing::warn!(diagnosis = diagnosis.label(), "{diagnosis}");
    }

    /// The core receiver.
    pub(crate) fn receiver(&self) -> &Arc<Receiver<P, AnyStore>> {
        &self.receiver
    }

    /// The counters.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Records `kind` and the event id of `key` on the current span, and returns it.
fn marked(kind: OutcomeKind, key: &DedupeKey) -> tracing::Span {
    let span = tracing::Span::current();
    span.record("outcome", kind.label());
    span.record("event_id", key.id());
    span
}

impl<P: Provider> Clone for Intake<P> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            body_timeout: self.body_timeout,
            stats: self.stats.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<P: Provider> fmt::Debug for Intake<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("provider", &self.receiver.provider().name())
            .field("body_timeout", &self.body_timeout)
            .finish_non_exhaustive()
    }
}
