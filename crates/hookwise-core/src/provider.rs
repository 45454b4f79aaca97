//! The provider abstraction: how one sender signs, shapes and identifies its events.
//!
//! The built-in providers ([`Mojave`](crate::Mojave), [`Hoursmith`](crate::Hoursmith),
//! [`Stripe`](crate::Stripe), [`GitHub`](crate::GitHub),
//! [`StandardWebhooks`](crate::StandardWebhooks)) are built on [`Provider`]; a
//! provider of your own plugs into the same [`Receiver`](crate::Receiver) and every
//! adapter without touching this crate.

use std::{fmt, time::Duration};

use bytes::Bytes;
use http::HeaderMap;

use crate::Rejection;

/// One webhook sender's protocol: verification, envelope, dedupe key.
///
/// The [`Receiver`](crate::Receiver) calls these in the contract's order: `verify` on
/// the raw bytes, then `parse`, then `dedupe_key`. `parse` is only ever called on a
/// body that verified. Both get `now` from the receiver's clock, so a provider is a
/// pure function of its input and easy to test.
///
/// # Example: a provider of your own
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::HeaderMap;
/// use hookwise_core::{Provider, Rejection, RejectionKind, Verified};
///
/// /// Sends `X-Token: <shared token>` and a plain-text body whose first line is an id.
/// #[derive(Debug)]
/// struct Acme { token: String }
///
/// impl Provider for Acme {
///     type Event = String;
///
///     fn name(&self) -> &'static str { "acme" }
///
///     fn verify(&self, headers: &HeaderMap, _body: &[u8], _now: Duration)
///         -> Result<Verified, Rejection>
///     {
///         let token = headers.get("x-token").ok_or(RejectionKind::SignatureMissing)?;
///         // A real provider compares a MAC in constant time; see `Secrets`.
///         if token.as_bytes() == self.token.as_bytes() {
///             Ok(Verified::new(0))
///         } else {
///             Err(RejectionKind::SignatureMismatch.into())
///         }
///     }
///
///     fn parse(&self, _headers: &HeaderMap, body: &Bytes, _now: Duration)
///         -> Result<String, Rejection>
///     {
///         std::str::from_utf8(body)
///             .map(|text| text.lines().next().unwrap_or_default().to_owned())
///             .map_err(|_| Rejection::new(RejectionKind::InvalidPayload))
///     }
///
///     fn event_type<'e>(&self, _event: &'e String) -> &'e str { "acme.event" }
///
///     fn dedupe_key(&self, event: &String, _body: &[u8]) -> String { event.clone() }
///
///     fn replay_window(&self) -> Duration { Duration::from_secs(300) }
/// }
/// ```
pub trait Provider: Send + Sync + 'static {
    /// The typed event handed to the application.
    type Event: fmt::Debug + Clone + Send + Sync + 'static;

    /// A short, stable name (`"hoursmith"`): namespaces dedupe keys and labels logs.
    fn name(&self) -> &'static str;

    /// Checks the signature over the exact raw `body`, before anything parses it.
    ///
    /// Must compare MACs in constant time and never panic on any header value.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Duration,
    ) -> Result<Verified, Rejection>;

    /// Parses a verified body into the typed event.
    ///
    /// Returns [`RejectionKind::InvalidPayload`](crate::RejectionKind::InvalidPayload)
    /// when the body is not the provider's envelope, and may return a timestamp
    /// rejection for a provider whose replay defence reads the payload.
    fn parse(
        &self,
        headers: &HeaderMap,
        body: &Bytes,
        now: Duration,
    ) -> Result<Self::Event, Rejection>;

    /// The event's type as sent (`invoice.paid`), for logs and routing.
    fn event_type<'e>(&self, event: &'e Self::Event) -> &'e str;

    /// The event's identity for dedupe: equal for every retry of one event, different
    /// for distinct events. The receiver prefixes it with [`name`](Self::name).
    fn dedupe_key(&self, event: &Self::Event, body: &[u8]) -> String;

    /// Whether the event should be processed. `false` acknowledges it with a 200
    /// without claiming or processing it (e.g. dropped test events).
    fn should_process(&self, event: &Self::Event) -> bool {
        let _ = event;
        true
    }

    /// The resource `event` is about and when the provider made it, for runtimes
    /// that order events per resource (see [`ordering`](crate::ordering)). `None`
    /// (the default) leaves the event unordered.
    fn order_key(&self, event: &Self::Event) -> Option<crate::ordering::OrderKey> {
        let _ = event;
        None
    }

    /// This provider with `secrets` in place of its own (current first, as the
    /// sender shows them: `whsec_...` for Standard Webhooks, the raw string for the
    /// others), every other setting kept: what a receiver with
    /// [`tenants`](crate::Receiver::tenants) verifies one tenant's deliveries with.
    ///
    /// The built-in providers implement it; by default a provider refuses
    /// ([`ConfigError::TenantsUnsupported`](crate::ConfigError::TenantsUnsupported)).
    fn for_tenant(&self, secrets: &[String]) -> Result<Self, crate::ConfigError>
    where
        Self: Sized,
    {
        let _ = secrets;
        Err(crate::ConfigError::TenantsUnsupported(self.name()))
    }

    /// The HMAC secrets it verifies with, when it has them: what
    /// [`Receiver::diagnostics`](crate::Receiver::diagnostics) checks for keys of the
    /// wrong kind. `None` by default.
    fn secrets(&self) -> Option<&crate::Secrets> {
        None
    }

    /// The whole window of receiver time during which one delivery can verify: from
    /// the earliest `now` at which its exact headers and body are accepted to the end
    /// of the last moment they are still accepted. The [`Receiver`](crate::Receiver)
    /// refuses a dedupe store whose
    /// [`retention_period`](crate::DedupeStore::retention_period) is shorter: a
    /// delivery first seen at the start of the window and replayed at its end must
    /// still be remembered, or it is processed twice.
    ///
    /// This is not the tolerance, nor the max age, but the whole span they allow:
    ///
    /// - A signed timestamp `t` accepted while `|now - t| <= tolerance` verifies from
    ///   `t - tolerance` to `t + tolerance`: twice the tolerance. The built-in
    ///   providers compare `now` in whole seconds, so `t` still verifies until the
    ///   second `t + tolerance` is over: [`Hoursmith`](crate::Hoursmith),
    ///   [`Stripe`](crate::Stripe) and [`StandardWebhooks`](crate::StandardWebhooks)
    ///   return `2 × tolerance + 1 s` (601 s by default).
    /// - A payload timestamp accepted from `max_age` old to `tolerance` ahead
    ///   ([`Mojave`](crate::Mojave)) is accepted from `timestamp - tolerance` to
    ///   `timestamp + max_age`: `max_age + tolerance + 1 s` (24 h 5 min 1 s by default).
    /// - A scheme that signs no timestamp ([`GitHub`](crate::GitHub)) verifies forever;
    ///   it returns the span over which the sender itself may deliver the same
    ///   delivery again (GitHub's redelivery window), and the dedupe store is its only
    ///   replay defence.
    fn replay_window(&self) -> Duration;
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    secret_index: usize,
    signed_at: Option<u64>,
}

impl Verified {
    /// Verified under the secret at `secret_index` (0 is the current secret).
    pub fn new(secret_index: usize) -> Self {
        Self {
            secret_index,
            signed_at: None,
        }
    }

    /// Records the signed timestamp, in Unix seconds.
    #[must_use]
    pub fn signed_at(mut self, unix_secs: u64) -> Self {
        self.signed_at = Some(unix_secs);
        self
    }

    /// Which configured secret matched: 0 for the first (current) one. A delivery
    /// matching a later index means the sender still signs with an old secret.
    pub fn secret_index(&self) -> usize {
        self.secret_index
    }

    /// The timestamp covered by the signature, in Unix seconds, when the scheme signs
    /// one (Hoursmith's `t`).
    pub fn signed_timestamp(&self) -> Option<u64> {
        self.signed_at
    }
}

/// The single value of a header that must appear at most once.
///
/// `Ok(None)` when absent or empty; a repeated header, or one that is not visible
/// ASCII, is malformed: two signature headers would make the answer depend on which
/// one a parser picks.
pub(crate) fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::new(crate::RejectionKind::SignatureMalformed)
            .with_detail(format!("more than one {name} header")));
    }
    let value = value.to_str().map_err(|_| {
        Rejection::new(crate::RejectionKind::SignatureMalformed)
            .with_detail(format!("{name} is not visible ASCII"))
    })?;
    let value = value.trim();
    Ok((!value.is_empty()).then_some(value))
}

/// A malformed signature header, and what is wrong with it (never its value).
pub(crate) fn malformed(detail: &'static str) -> Rejection {
    Rejection::new(crate::RejectionKind::SignatureMalformed).with_detail(detail)
}

/// Checks a timestamp against `now`: at most `max_age` in the past and at most
/// `max_ahead` in the future. Shared by every scheme with a replay window.
pub(crate) fn check_timestamp(
    timestamp: i128,
    now: Duration,
    max_age: Duration,
    max_ahead: Duration,
) -> Result<(), Rejection> {
    let age = i128::from(now.as_secs()) - timestamp;
    let skew = crate::Diagnosis::ClockSkew {
        seconds: i64::try_from(age).unwrap_or(if age < 0 { i64::MIN } else { i64::MAX }),
    };
    if age > i128::from(max_age.as_secs()) {
        Err(Rejection::new(crate::RejectionKind::TimestampTooOld)
            .with_detail(format!("timestamp is {age} s old, over {max_age:?}"))
            .with_diagnosis(skew))
    } else if -age > i128::from(max_ahead.as_secs()) {
        Err(Rejection::new(crate::RejectionKind::TimestampTooNew)
            .with_detail(format!("timestamp is {} s ahead, over {max_ahead:?}", -age))
            .with_diagnosis(skew))
    } else {
        Ok(())
    }
}
