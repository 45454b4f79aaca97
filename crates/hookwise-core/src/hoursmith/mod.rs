//! Hoursmith: `Hoursmith-Signature: t=<unix seconds>,v1=<hex>` over `t.body`.
//!
//! The decisions of PROVIDERS.md, as implemented here:
//!
//! - The signed payload is `t` exactly as sent, a `.`, then the raw body; HMAC-SHA256
//!   keyed with the secret's UTF-8 bytes, verbatim; hex of either case.
//! - The header is parsed strictly ([`SignatureHeader`], shared with
//!   [`Stripe`](crate::Stripe) in [`timestamped`]); a delivery is
//!   valid when any `v1` matches under any configured secret (rotation), and the
//!   matching secret is reported.
//! - `|now - t|` must be at most the tolerance (300 s by default) in both directions,
//!   compared in whole seconds. One signature therefore verifies for a window of
//!   `2 × tolerance + 1 s` of receiver time (601 s by default): from `t - tolerance`
//!   until the second `t + tolerance` is over. That is the provider's
//!   [`replay_window`](Provider::replay_window), and the
//!   [`Receiver`](crate::Receiver) refuses a dedupe store whose retention is shorter,
//!   since a replay late in the window would then be processed twice.
//! - Dedupe key: the envelope `id`, shared by every retry.
//! - Test events (`livemode: false`, `data.test: true`) are delivered and marked
//!   ([`Event::is_test`]); [`Hoursmith::drop_test_events`] acknowledges them without
//!   processing instead.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use hookwise_core::{Provider, hoursmith::{EventData, Hoursmith}, sign};
//!
//! let hoursmith = Hoursmith::new("whsec_test_secret")?;
//! let body = Bytes::from_static(br#"{"id":"e1","type":"client.created","created":1,
//!     "orgId":"o1","livemode":true,"data":{"client":{"id":"c1"}}}"#);
//! let now = Duration::from_secs(1_700_000_000);
//!
//! let mut headers = HeaderMap::new();
//! sign::hoursmith(b"whsec_test_secret", now.as_secs(), &body).insert_into(&mut headers);
//!
//! let verified = hoursmith.verify(&headers, &body, now)?;
//! assert_eq!(verified.secret_index(), 0);
//! let event = hoursmith.parse(&headers, &body, now)?;
//! assert!(matches!(event.data(), EventData::ClientCreated { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

pub use self::event::{EVENT_TYPES, Event, EventData};
// The parser is shared with Stripe; re-exported here, where it was first public.
pub use crate::timestamped::{MAX_SIGNATURES, SignatureHeader};
use crate::{
    ConfigError, Provider, Rejection, Secrets, Verified,
    ordering::{self, OrderKey},
    timestamped,
};

/// The signature header's name (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "hoursmith-signature";

/// The default tolerance between the signed `t` and now, both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The Hoursmith provider: verification, envelope, dedupe key.
///
/// See the [module docs](self) for the rules and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct Hoursmith {
    secrets: Secrets,
    tolerance: Duration,
    drop_test_events: bool,
}

impl Hoursmith {
    /// A provider accepting one secret (the UTF-8 bytes of the string shown by
    /// Hoursmith). An empty secret is a [`ConfigError`].
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(Self::with_secrets(Secrets::new([secret])?))
    }

    /// A provider accepting several secrets, for rotation.
    pub fn with_secrets(secrets: Secrets) -> Self {
        Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            drop_test_events: false,
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
            return Err(ConfigError::Zero("Hoursmith tolerance"));
        }
        self.tolerance = tolerance;
        Ok(self)
    }

    /// Acknowledges test events after verification without processing them
    /// (default `false`: they are delivered, marked by [`Event::is_test`]).
    pub fn drop_test_events(mut self, drop: bool) -> Self {
        self.drop_test_events = drop;
        self
    }
}

impl Provider for Hoursmith {
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
        "hoursmith"
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

    /// The event's main snapshot, `<kind>:<id>` (`invoice:inv_1`: the invoice of
    /// `invoice.paid`, not its payment), at `created`. A type this version does not
    /// know is keyed by its prefix's object in `data` (`invoice.refunded` by
    /// `data.invoice.id`), when there is one.
    fn order_key(&self, event: &Event) -> Option<OrderKey> {
        let (kind, id) = match event.data() {
            EventData::InvoiceSent { invoice }
            | EventData::InvoicePaid { invoice, .. }
            | EventData::InvoicePaymentFailed { invoice, .. } => ("invoice", invoice.id()),
            EventData::TimeEntryCreated { time_entry } => ("time_entry", time_entry.id()),
            EventData::TaskCompleted { task } | EventData::TaskCreated { task } => {
                ("task", task.id())
            }
            EventData::ClientCreated { client } => ("client", client.id()),
            EventData::ProjectCreated { project } => ("project", project.id()),
            EventData::Unknown { event_type, data } => {
                let kind = event_type.split('.').next().unwrap_or_default();
                let id = data.get(kind).and_then(|object| object.get("id"));
                (kind, id.and_then(serde_json::Value::as_str))
            }
        };
        ordering::named(kind, id).map(|key| key.at(event.created()))
    }

    fn should_process(&self, event: &Event) -> bool {
        !(self.drop_test_events && event.is_test())
    }

    /// `2 × tolerance + 1 s`: `t` verifies from `now = t - tolerance` until the whole
    /// second `t + tolerance` has passed (see the [module docs](self)).
    fn replay_window(&self) -> Duration {
        let tolerance = self.tolerance.as_secs();
        Duration::from_secs(tolerance.saturating_mul(2).saturating_add(1))
    }
}
