//! Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>` over `t.body`.
//!
//! - The scheme is Hoursmith's, with another header name: the signed payload is `t`
//!   exactly as sent, a `.`, then the raw body; HMAC-SHA256 keyed with the endpoint
//!   secret's bytes **verbatim** (the whole `whsec_...` string, no base64 decoding);
//!   hex of either case. The header is parsed strictly by the shared
//!   [`SignatureHeader`](crate::timestamped::SignatureHeader): one `t`, one or more
//!   `v1`, other schemes (`v0`) ignored. Any `v1` matching under any configured secret
//!   verifies (Stripe sends one `v1` per secret while you roll one), and the matching
//!   secret is reported.
//! - `|now - t|` must be at most the tolerance (300 s by default, as Stripe's own
//!   libraries) in both directions, compared in whole seconds. One signature therefore
//!   verifies for a window of `2 × tolerance + 1 s` of receiver time (601 s by
//!   default): from `t - tolerance` until the second `t + tolerance` is over. That is
//!   the provider's [`replay_window`](Provider::replay_window), and the
//!   [`Receiver`](crate::Receiver) refuses a dedupe store whose retention is shorter,
//!   since a replay late in the window would then be processed twice.
//! - Dedupe key: the event `id` (`evt_...`), shared by every retry.
//! - The event is a snapshot event ([`Event`]): `id`, `type` as a string, `created`,
//!   `livemode`, `api_version`, `data.object` and `data.previous_attributes`. "Thin"
//!   events (API v2, without `data.object`) are refused as invalid payloads.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use hookwise_core::{Provider, sign, stripe::Stripe};
//!
//! let stripe = Stripe::new("whsec_test_secret")?;
//! let body = Bytes::from_static(br#"{"id":"evt_1","object":"event","type":"invoice.paid",
//!     "created":1700000000,"livemode":false,"data":{"object":{"id":"in_1"}}}"#);
//! let now = Duration::from_secs(1_700_000_000);
//!
//! let mut headers = HeaderMap::new();
//! sign::stripe(b"whsec_test_secret", now.as_secs(), &body).insert_into(&mut headers);
//!
//! assert_eq!(stripe.verify(&headers, &body, now)?.secret_index(), 0);
//! let event = stripe.parse(&headers, &body, now)?;
//! assert_eq!(event.event_type(), "invoice.paid");
//! assert_eq!(event.object().id(), Some("in_1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

pub use self::event::Event;
use crate::{ConfigError, Provider, Rejection, Secrets, Verified, ordering::OrderKey, timestamped};

/// The signature header's name (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The default tolerance between the signed `t` and now, both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The Stripe provider: verification, envelope, dedupe key.
///
/// See the [module docs](self) for the rules and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct Stripe {
    secrets: Secrets,
    tolerance: Duration,
}

impl Stripe {
    /// A provider accepting one endpoint secret (`whsec_...`, used verbatim). An
    /// empty secret is a [`ConfigError`].
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(Self::with_secrets(Secrets::new([secret])?))
    }

    /// A provider accepting several secrets, for rolling the endpoint secret.
    pub fn with_secrets(secrets: Secrets) -> Self {
        Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Sets how far `t` may be from now, in either direction (default 300 s), in
    /// whole seconds (a fraction of a second is ignored). Must be at least one second.
    ///
    /// The dedupe store must remember a delivery for the whole window in which its
    /// signature verifies, `2 × tolerance + 1 s` (checked when the
    /// [`Receiver`](crate::Receiver) is built).
    pub fn tolerance(mut self, tolerance: Duration) -> Result<Self, ConfigError> {
        if tolerance.as_secs() == 0 {
            return Err(ConfigError::Zero("Stripe tolerance"));
        }
        self.tolerance = tolerance;
        Ok(self)
    }
}

impl Provider for Stripe {
    type Event = Event;

    fn secrets(&self) -> Option<&Secrets> {
        Some(&self.secrets)
    }

    fn for_tenant(&self, secrets: &[String]) -> Result<Self, ConfigError> {
        Ok(Self {
            secrets: Secrets::new(secrets)?,
            ..self.clone()
        })
    }

    fn name(&self) -> &'static str {
        "stripe"
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Duration,
    ) -> Result<Verified, Rejection> {
        timestamped::verify(
            SIGNATURE_HEADER,
            headers,
            &self.secrets,
            self.tolerance,
            body,
            now,
        )
    }

    fn parse(&self, _: &HeaderMap, body: &Bytes, _: Duration) -> Result<Event, Rejection> {
        Event::from_json(body)
    }

    fn event_type<'e>(&self, event: &'e Event) -> &'e str {
        event.event_type()
    }

    fn dedupe_key(&self, event: &Event, _: &[u8]) -> String {
        event.id().to_owned()
    }

    /// `data.object.id` (`in_1`), at `created`.
    fn order_key(&self, event: &Event) -> Option<OrderKey> {
        let id = event.object().id().filter(|id| !id.is_empty())?;
        Some(OrderKey::new(id).at(event.created()))
    }

    /// `2 × tolerance + 1 s`: `t` verifies from `now = t - tolerance` until the whole
    /// second `t + tolerance` has passed (see the [module docs](self)).
    fn replay_window(&self) -> Duration {
        let tolerance = self.tolerance.as_secs();
        Duration::from_secs(tolerance.saturating_mul(2).saturating_add(1))
    }
}
