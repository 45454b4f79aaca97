//! The framework-agnostic entry point: headers and body in, an outcome out.
//!
//! Every adapter (the tower layer, the axum extractor, the actix example) calls
//! [`Receiver::receive`], so the order of the contract lives here once:
//! size limit → signature over the raw bytes → parse → dedupe claim.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header::CONTENT_LENGTH};

use crate::{
    Clock, ConfigError, DedupeKey, DedupeStore, Provider, Rejection, RejectionKind, Verified,
    clock,
    dedupe::{AnyStore, Claim, ClaimOutcome, Duplicate, StoreError},
    tenant::{Resolved, TenantCache, TenantId, Tenants, Unverified},
};

/// The default limit on a delivery's body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Receives deliveries of one provider into one dedupe store.
///
/// ```
/// use bytes::Bytes;
/// use http::HeaderMap;
/// use hookwise_core::{Hoursmith, MemoryStore, Outcome, Receiver, sign};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let receiver = Receiver::new(Hoursmith::new("whsec_test_secret")?, MemoryStore::new())?;
///
/// let body = Bytes::from_static(br#"{"id":"e1","type":"project.created","created":1,
///     "orgId":"o1","livemode":true,"data":{"project":{"id":"p1"}}}"#);
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
/// let mut headers = HeaderMap::new();
/// sign::hoursmith(b"whsec_test_secret", now, &body).insert_into(&mut headers);
///
/// match receiver.receive(&headers, body.clone()).await? {
///     Outcome::Accepted { delivery, claim } => {
///         assert_eq!(delivery.event().id(), "e1");
///         // ... process the event, then:
///         receiver.commit(&claim).await?;
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// // The sender retries: answered 200, not processed again.
/// assert!(matches!(receiver.receive(&headers, body).await?, Outcome::Duplicate { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Receiver<P, S> {
    provider: P,
    store: S,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    tenants: Option<Arc<TenantCache<P>>>,
    diagnostics: bool,
}

impl<P, S> Receiver<P, S> {
    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The dedupe store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The largest body accepted, in bytes.
    pub fn limit(&self) -> usize {
        self.body_limit
    }
}

impl<P: Provider, S: DedupeStore> Receiver<P, S> {
    /// A receiver for `provider`'s deliveries, deduped in `store`.
    ///
    /// Fails when the store forgets processed events sooner than one delivery stops
    /// verifying ([`Provider::replay_window`], the whole window, over
    /// [`DedupeStore::retention_period`]), since a replay could then be processed
    /// twice.
    pub fn new(provider: P, store: S) -> Result<Self, ConfigError> {
        let (window, retention) = (provider.replay_window(), store.retention_period());
        if window > retention {
            return Err(ConfigError::ReplayWindowExceedsRetention {
                provider: provider.name(),
                window,
                retention,
            });
        }
        Ok(Self {
            provider,
            store,
            clock: clock::system(),
            body_limit: DEFAULT_BODY_LIMIT,
            tenants: None,
            diagnostics: false,
        })
    }

    /// Looks for the likely causes of a signature mismatch and attaches them to the
    /// rejection ([`Rejection::diagnoses`]), for logs and `Stats`, never the
    /// response: a body that verifies once re-encoded (a layer re-serialised the
    /// JSON), a secret that is another kind of key. Off by default: on a mismatch it
    /// verifies up to five re-encodings of the body, so a flood of forgeries costs up
    /// to six times the work. The runtime also logs and counts, when it is on, a
    /// delivery that only a retired secret verified and the clock skew of a stale
    /// timestamp. See [`diagnosis`](crate::diagnosis).
    #[must_use]
    pub fn diagnostics(mut self, on: bool) -> Self {
        self.diagnostics = on;
        self
    }

    /// Whether [`diagnostics`](Self::diagnostics) are on.
    pub fn diagnostics_on(&self) -> bool {
        self.diagnostics
    }

    /// Verifies each delivery with the secrets of its tenant, found and looked up
    /// by `tenants`, instead of the provider's own secret, which is replaced and
    /// never used (the provider still sets everything else). See
    /// [`tenant`](crate::tenant) for the rules and an example. Refused for a
    /// provider that cannot take per-tenant secrets
    /// ([`Provider::for_tenant`]).
    ///
    /// A tenant located by path needs the path: adapters call
    /// [`receive_at`](Self::receive_at).
    pub fn tenants(mut self, tenants: Tenants) -> Result<Self, ConfigError> {
        let (cache, decoy) = TenantCache::new(&self.provider, tenants)?;
        self.provider = decoy;
        self.tenants = Some(Arc::new(cache));
        Ok(self)
    }

    /// Sets the largest body accepted, in bytes (default 1 MiB).
    pub fn body_limit(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if bytes == 0 {
            return Err(ConfigError::Zero("body limit"));
        }
        self.body_limit = bytes;
        Ok(self)
    }

    /// The same receiver with its store's type erased ([`AnyStore`]): what the
    /// receiving runtime holds, so that its type names the provider only.
    pub fn erase_store(self) -> Receiver<P, AnyStore> {
        Receiver {
            provider: self.provider,
            store: AnyStore::new(self.store),
            clock: self.clock,
            body_limit: self.body_limit,
            tenants: self.tenants,
            diagnostics: self.diagnostics,
        }
    }

    /// Reads time from `clock` instead of the system clock (for tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses a request that is not a `POST` (`405`, with `Allow: POST`): every
    /// provider delivers with `POST`, and a `GET` on the endpoint (a browser, a probe)
    /// deserves a `405`, not a signature check. Adapters call it before anything else.
    pub fn check_method(&self, method: &http::Method) -> Result<(), Rejection> {
        if method == http::Method::POST {
            Ok(())
        } else {
            Err(Rejection::new(RejectionKind::MethodNotAllowed)
                .with_detail(format!("{method} is not a delivery")))
        }
    }

    /// Refuses a request whose `Content-Length` is over the limit, before its body is
    /// read. Adapters call it first, then buffer at most [`limit`](Self::limit) bytes.
    pub fn check_content_length(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > self.body_limit as u64 => Err(self.too_large(len)),
            _ => Ok(()),
        }
    }

    /// The rejection for a body of `len` bytes over the limit; adapters use it when a
    /// streamed body crosses the limit.
    pub fn too_large(&self, len: u64) -> Rejection {
        Rejection::new(RejectionKind::PayloadTooLarge)
            .with_detail(format!("{len} bytes over the limit of {}", self.body_limit))
    }

    /// Takes one delivery through the contract: size limit, signature over the raw
    /// bytes, parse, then the dedupe claim. Nothing that fails verification reaches
    /// the store.
    ///
    /// On [`Outcome::Accepted`] the caller owns the claim: [`commit`](Self::commit)
    /// it once the event is processed, or [`release`](Self::release) it when
    /// processing failed or was refused, so the sender's retry is processed.
    ///
    /// The same as [`receive_at`](Self::receive_at) with no path: enough unless
    /// [`tenants`](Self::tenants) are located by path.
    pub async fn receive(
        &self,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Outcome<P::Event>, Rejection> {
        self.receive_at("", headers, body).await
    }

    /// [`receive`](Self::receive) for a request to `path` (e.g.
    /// `/webhooks/hoursmith/acme`, without the query), where a
    /// [`TenantLocator`](crate::tenant::TenantLocator) may find the tenant.
    pub async fn receive_at(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Outcome<P::Event>, Rejection> {
        let delivery = self.verify_at(path, headers, body).await?;
        self.claim(delivery).await
    }

    /// The second half of [`receive_at`](Self::receive_at), for a delivery from
    /// [`verify_at`](Self::verify_at): skips an event the provider is configured not
    /// to process, else claims its key in the store.
    pub async fn claim(
        &self,
        delivery: Delivery<P::Event>,
    ) -> Result<Outcome<P::Event>, Rejection> {
        if !self.should_process(&delivery) {
            return Ok(Outcome::Skipped(delivery));
        }
        match self.store.claim(&delivery.key).await {
            Ok(ClaimOutcome::Claimed(claim)) => Ok(Outcome::Accepted { delivery, claim }),
            Ok(ClaimOutcome::Duplicate(state)) => self.duplicate(delivery.key, state),
            Err(e) => Err(store_unavailable(&e)),
        }
    }

    /// The first half of [`receive_at`](Self::receive_at): size limit, tenant,
    /// signature over the raw bytes, parse; no dedupe claim. [`claim`](Self::claim)
    /// is the second half. A caller that claims the event in another way (a durable
    /// queue on the store's server claims, stores and commits it in one atomic step)
    /// skips the events [`should_process`](Self::should_process) refuses and answers
    /// a key found taken with [`duplicate`](Self::duplicate), as `claim` does.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::HeaderMap;
    /// use hookwise_core::{Hoursmith, MemoryStore, Receiver, sign};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let receiver = Receiver::new(Hoursmith::new("whsec_test_secret")?, MemoryStore::new())?;
    /// let body = Bytes::from_static(br#"{"id":"e1","type":"project.created","created":1,
    ///     "orgId":"o1","livemode":true,"data":{"project":{"id":"p1"}}}"#);
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    /// let mut headers = HeaderMap::new();
    /// sign::hoursmith(b"whsec_test_secret", now, &body).insert_into(&mut headers);
    ///
    /// let delivery = receiver.verify_at("/webhooks/hoursmith", &headers, body).await?;
    /// assert_eq!(delivery.dedupe_key().id(), "e1");
    /// assert!(receiver.should_process(&delivery));
    /// // Nothing was claimed: the store has not seen the event.
    /// assert_eq!(receiver.store().stats().claims, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn verify_at(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Delivery<P::Event>, Rejection> {
        if body.len() > self.body_limit {
            return Err(self.too_large(body.len() as u64));
        }
        let now = self.clock.now();
        let resolved;
        let (provider, tenant) = match &self.tenants {
            None => (&self.provider, None),
            Some(tenants) => {
                let request = Unverified {
                    path,
                    headers,
                    body: &body,
                };
                // Boxed: the cache's lookup is a future of nearly 2 KiB, which would
                // otherwise make every receiver's verification, tenants or not, as
                // large (and then every request's future, allocated per request).
                match Box::pin(tenants.resolve(&self.provider, &request)).await? {
                    Resolved::Known(tenant, provider) => {
                        resolved = provider;
                        (&*resolved, Some(tenant))
                    }
                    Resolved::Unknown => {
                        // Verified all the same, under the decoy secret: refused with
                        // what a wrong secret gets, in the time it takes.
                        return Err(match self.provider.verify(headers, &body, now) {
                            Err(rejection) => rejection,
                            Ok(_) => RejectionKind::SignatureMismatch.into(),
                        });
                    }
                }
            }
        };
        let verified = provider
            .verify(headers, &body, now)
            .map_err(|rejection| self.diagnosed(provider, rejection, headers, &body, now))?;
        self.delivery(headers, body, now, verified, tenant)
    }

    /// Whether a verified delivery is to be claimed and processed; `false` for an
    /// event the provider is configured not to process (a dropped test event),
    /// which [`receive_at`](Self::receive_at) answers [`Outcome::Skipped`].
    pub fn should_process(&self, delivery: &Delivery<P::Event>) -> bool {
        self.provider.should_process(&delivery.event)
    }

    /// The answer to a delivery whose event key was found taken in the store:
    /// [`Outcome::Duplicate`] (`200`) for an event processed or in flight under a
    /// confirmed claim; a `409` [`RejectionKind::InProgress`] rejection for a
    /// provisional claim, which may still be given back.
    pub fn duplicate(
        &self,
        key: DedupeKey,
        state: Duplicate,
    ) -> Result<Outcome<P::Event>, Rejection> {
        match state {
            // Not acknowledged: the other delivery may still fail, and a 200 here
            // would stop the retries that would then process the event.
            Duplicate::Provisional => Err(Rejection::new(RejectionKind::InProgress)
                .with_detail(format!("{key} is claimed, not yet confirmed"))),
            state => Ok(Outcome::Duplicate { key, state }),
        }
    }

    /// Rebuilds a delivery that this receiver verified and accepted earlier, e.g. one
    /// read back from a durable queue: parses `body` as it was parsed at
    /// `received_at`, without checking the signature again (its tolerance has
    /// passed by then).
    ///
    /// Only for bytes that came out of this receiver's own [`receive`](Self::receive)
    /// through storage you trust, since it skips verification. `path` is the
    /// request's, as given to [`receive_at`](Self::receive_at): with
    /// [`tenants`](Self::tenants), the tenant is located again from it, the headers
    /// and the body (a delivery whose tenant is no longer found is refused).
    pub fn restore(
        &self,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
        received_at: Duration,
        verified: Verified,
    ) -> Result<Delivery<P::Event>, Rejection> {
        let tenant = match &self.tenants {
            None => None,
            Some(tenants) => {
                let request = Unverified {
                    path,
                    headers,
                    body: &body,
                };
                let tenant = tenants.locate(&request).ok_or_else(|| {
                    Rejection::new(RejectionKind::InvalidPayload)
                        .with_detail("the tenant of a stored delivery is no longer found")
                })?;
                Some(tenant)
            }
        };
        self.delivery(headers, body, received_at, verified, tenant)
    }

    /// `rejection` with the likely causes of a mismatch, when diagnostics are on.
    fn diagnosed(
        &self,
        provider: &P,
        mut rejection: Rejection,
        headers: &HeaderMap,
        body: &[u8],
        now: Duration,
    ) -> Rejection {
        if !self.diagnostics || rejection.kind() != RejectionKind::SignatureMismatch {
            return rejection;
        }
        let reencoded = crate::diagnosis::reencodings(body)
            .into_iter()
            .find(|(_, candidate)| provider.verify(headers, candidate, now).is_ok());
        if let Some((how, _)) = reencoded {
            rejection = rejection.with_diagnosis(crate::Diagnosis::ReencodedBody { how });
        }
        for wrong in provider.secrets().into_iter().flat_map(|s| s.wrong_kinds()) {
            rejection = rejection.with_diagnosis(wrong);
        }
        rejection
    }

    /// Parses a verified body into a delivery, as of `now`; a tenant's event id is
    /// deduped under the tenant (`<tenant>:<id>`).
    fn delivery(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: Duration,
        verified: Verified,
        tenant: Option<TenantId>,
    ) -> Result<Delivery<P::Event>, Rejection> {
        let event = self.provider.parse(headers, &body, now)?;
        let id = self.provider.dedupe_key(&event, &body);
        let key = match &tenant {
            None => DedupeKey::new(self.provider.name(), &id),
            Some(tenant) => DedupeKey::new(self.provider.name(), &format!("{tenant}:{id}")),
        };
        Ok(Delivery {
            provider: self.provider.name(),
            event: Arc::new(event),
            raw: body,
            key,
            verified,
            received_at: now,
            tenant,
        })
    }

    /// Records a claimed event as processed.
    pub async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        self.store.commit(claim).await
    }

    /// Gives a claim back so the sender's retry is processed.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.store.release(claim).await
    }

    /// Confirms a claim: its event is taken on, and redeliveries are answered `200`
    /// from now on (see [`Duplicate::Provisional`]). `Ok(false)` when the claim no
    /// longer holds its key.
    pub async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.store.confirm(claim).await
    }

    /// Renews a claim's lease while its event waits or runs. `Ok(false)` when the
    /// claim no longer holds its key.
    pub async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        self.store.renew(claim).await
    }
}

fn store_unavailable(e: &StoreError) -> Rejection {
    Rejection::new(RejectionKind::StoreUnavailable).with_detail(e.to_string())
}

/// What happened to a delivery that was not rejected. Each is answered `200`.
///
/// A redelivery of an event whose claim is still provisional is not an outcome but a
/// [`Rejection`] ([`RejectionKind::InProgress`], `409`): see
/// [`Duplicate::Provisional`].
#[derive(Debug)]
pub enum Outcome<E> {
    /// A new event, claimed for processing by the caller.
    Accepted {
        /// The verified, typed delivery.
        delivery: Delivery<E>,
        /// The dedupe claim to commit or release.
        claim: Claim,
    },
    /// An event already processed, or in flight under a confirmed claim:
    /// acknowledged so the sender stops retrying, and not processed again.
    Duplicate {
        /// The event's dedupe key.
        key: DedupeKey,
        /// Processed, or in flight.
        state: Duplicate,
    },
    /// A verified event the provider is configured not to process (e.g. a dropped
    /// test event): acknowledged, not claimed, not processed.
    Skipped(Delivery<E>),
}

impl<E> Outcome<E> {
    /// Which outcome this is, without its data.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::Accepted { .. } => OutcomeKind::Accepted,
            Self::Duplicate { .. } => OutcomeKind::Duplicate,
            Self::Skipped(_) => OutcomeKind::Skipped,
        }
    }

    /// A short, stable label: `accepted`, `duplicate` or `skipped`.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }

    /// The `200` the sender is answered with: `{"status":"<label>"}`.
    pub fn to_response(&self) -> http::Response<String> {
        self.kind().to_response()
    }
}

/// The kinds of [`Outcome`], each answered `200`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeKind {
    /// A new event, claimed for processing.
    Accepted,
    /// An event already processed or in flight.
    Duplicate,
    /// A verified event acknowledged without processing.
    Skipped,
}

impl OutcomeKind {
    /// A short, stable label: `accepted`, `duplicate` or `skipped`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Skipped => "skipped",
        }
    }

    /// The body of the `200`: `{"status":"<label>"}`.
    pub fn body(self) -> &'static str {
        match self {
            Self::Accepted => r#"{"status":"accepted"}"#,
            Self::Duplicate => r#"{"status":"duplicate"}"#,
            Self::Skipped => r#"{"status":"skipped"}"#,
        }
    }

    /// The `200` the sender is answered with: [`body`](Self::body), as JSON.
    pub fn to_response(self) -> http::Response<String> {
        self.response()
    }

    /// [`to_response`](Self::to_response) with any body type made from the static
    /// text, e.g. `Full<Bytes>` without an allocation.
    ///
    /// ```
    /// use hookwise_core::OutcomeKind;
    ///
    /// let response: http::Response<bytes::Bytes> = OutcomeKind::Duplicate.response();
    /// assert_eq!(response.body(), r#"{"status":"duplicate"}"#);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    pub fn response<B: From<&'static str>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.body()));
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A verified delivery: the typed event, the raw body it came from, and its identity.
///
/// Cloning it is cheap: the event is shared between clones (the processor hands a
/// clone to each attempt of the handler), and the body is reference-counted.
#[derive(Debug)]
pub struct Delivery<E> {
    provider: &'static str,
    event: Arc<E>,
    raw: Bytes,
    key: DedupeKey,
    verified: Verified,
    received_at: Duration,
    tenant: Option<TenantId>,
}

// By hand: the derive would require `E: Clone`, which sharing the event no longer
// needs.
impl<E> Clone for Delivery<E> {
    fn clone(&self) -> Self {
        Self {
            provider: self.provider,
            event: self.event.clone(),
            raw: self.raw.clone(),
            key: self.key.clone(),
            verified: self.verified,
            received_at: self.received_at,
            tenant: self.tenant.clone(),
        }
    }
}

impl<E> Delivery<E> {
    /// The typed event.
    pub fn event(&self) -> &E {
        &self.event
    }

    /// Consumes the delivery, returning the typed event: moved out when this is the
    /// only clone of the delivery, cloned otherwise.
    pub fn into_event(self) -> E
    where
        E: Clone,
    {
        Arc::try_unwrap(self.event).unwrap_or_else(|shared| (*shared).clone())
    }

    /// The exact bytes that were verified.
    pub fn raw_body(&self) -> &Bytes {
        &self.raw
    }

    /// The event's dedupe key.
    pub fn dedupe_key(&self) -> &DedupeKey {
        &self.key
    }

    /// The tenant whose secret verified this delivery, for a receiver with
    /// [`tenants`](Receiver::tenants); `None` otherwise.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Which secret matched, and the signed timestamp.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// When the receiver took the delivery, by its clock (time since the Unix epoch).
    pub fn received_at(&self) -> Duration {
        self.received_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The static bodies are the contract's `{"status":"<label>"}`, in every body type.
    #[test]
    fn the_200s_are_the_contracts() {
        for kind in [
            OutcomeKind::Accepted,
            OutcomeKind::Duplicate,
            OutcomeKind::Skipped,
        ] {
            let expected = format!(r#"{{"status":"{}"}}"#, kind.label());
            assert_eq!(kind.body(), expected);
            let text = kind.to_response();
            let bytes: http::Response<Bytes> = kind.response();
            assert_eq!(text.status(), StatusCode::OK);
            assert_eq!(bytes.status(), StatusCode::OK);
            assert_eq!(text.headers(), bytes.headers());
            assert_eq!(
                text.headers()[http::header::CONTENT_TYPE],
                "application/json"
            );
            assert_eq!(text.body().as_bytes(), bytes.body());
        }
    }
}
