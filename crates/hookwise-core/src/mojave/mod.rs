//! Mojave: `X-Mojave-Signature: [sha256=]<hex>` over the raw body.
//!
//! The decisions of PROVIDERS.md, as implemented here:
//!
//! - The signature is the hex HMAC-SHA256 of the exact raw body, keyed with the
//!   secret's UTF-8 bytes; either case, with or without a `sha256=` prefix. Any other
//!   shape is malformed.
//! - Mojave signs no timestamp, so the replay defence reads the payload's
//!   `timestamp` after verification: older than the max age (24 h by default) or more
//!   than the tolerance (300 s) in the future is refused, compared in whole seconds;
//!   inside that window the dedupe store catches replays. One payload is therefore
//!   accepted for a window of `max_age + tolerance + 1 s` of receiver time (24 h 5 min
//!   1 s by default): from `timestamp - tolerance` until the second
//!   `timestamp + max_age` is over. That is the provider's
//!   [`replay_window`](Provider::replay_window), and the
//!   [`Receiver`](crate::Receiver) refuses a dedupe store whose retention is shorter,
//!   since a replay late in the window would then be processed twice.
//! - The payload has no event id, so the default dedupe key is the SHA-256 of the raw
//!   body (a retry resends the same bytes). [`Mojave::dedupe_key_with`] plugs in
//!   another.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use hookwise_core::{Provider, mojave::Mojave, sign};
//!
//! let mojave = Mojave::new("mojave_secret")?;
//! let body = Bytes::from_static(br#"{"type":"invoice.paid","timestamp":1700000000,"data":{"id":"inv_1"}}"#);
//! let mut headers = HeaderMap::new();
//! sign::mojave(b"mojave_secret", &body).insert_into(&mut headers);
//!
//! let now = Duration::from_secs(1_700_000_060);
//! assert_eq!(mojave.verify(&headers, &body, now)?.secret_index(), 0);
//! assert_eq!(mojave.parse(&headers, &body, now)?.event_type(), "invoice.paid");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest as _, Sha256};

pub use self::event::{EVENT_TYPES, Event, EventData};
use crate::{
    ConfigError, Provider, Rejection, RejectionKind, Secrets, Verified, hex,
    ordering::{self, OrderKey},
    provider::{check_timestamp, single_header},
};

/// The signature header's name (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-mojave-signature";

/// The default max age of a payload `timestamp`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The default tolerance for a payload `timestamp` in the future.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type KeyFn = dyn Fn(&Event, &[u8]) -> String + Send + Sync;

/// The Mojave provider: verification, envelope, dedupe key.
///
/// See the [module docs](self) for the rules and an example.
#[derive(Clone)]
#[must_use]
pub struct Mojave {
    secrets: Secrets,
    max_age: Duration,
    tolerance: Duration,
    dedupe_key: Option<Arc<KeyFn>>,
}

impl Mojave {
    /// A provider accepting one secret (the UTF-8 bytes of the string shown in
    /// Settings → Webhooks). An empty secret is a [`ConfigError`].
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(Self::with_secrets(Secrets::new([secret])?))
    }

    /// A provider accepting several secrets, for rotation.
    pub fn with_secrets(secrets: Secrets) -> Self {
        Self {
            secrets,
            max_age: DEFAULT_MAX_AGE,
            tolerance: DEFAULT_TOLERANCE,
            dedupe_key: None,
        }
    }

    /// Sets how old a payload `timestamp` may be (default 24 h), in whole seconds (a
    /// fraction of a second is ignored). Must be at least one second.
    ///
    /// The dedupe store must remember a delivery for the whole window in which its
    /// payload is accepted, `max_age + tolerance + 1 s` (checked when the
    /// [`Receiver`](crate::Receiver) is built): with the default 96 h retention of
    /// [`MemoryStore`](crate::MemoryStore), a max age of at most 95 h 54 min 59 s.
    pub fn max_age(mut self, max_age: Duration) -> Result<Self, ConfigError> {
        if max_age.as_secs() == 0 {
            return Err(ConfigError::Zero("Mojave max age"));
        }
        self.max_age = max_age;
        Ok(self)
    }

    /// Sets how far in the future a payload `timestamp` may be (default 300 s), in
    /// whole seconds (a fraction of a second is ignored). It widens the
    /// [`replay_window`](Provider::replay_window) as the max age does.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Replaces the default dedupe key (SHA-256 of the raw body) with your own, e.g.
    /// the resource id and type when you know each is sent once.
    ///
    /// ```
    /// use hookwise_core::mojave::Mojave;
    ///
    /// let mojave = Mojave::new("secret")?.dedupe_key_with(|event, _body| {
    ///     format!("{}:{}", event.event_type(), event.timestamp())
    /// });
    /// # Ok::<(), hookwise_core::ConfigError>(())
    /// ```
    pub fn dedupe_key_with<F>(mut self, key: F) -> Self
    where
        F: Fn(&Event, &[u8]) -> String + Send + Sync + 'static,
    {
        self.dedupe_key = Some(Arc::new(key));
        self
    }
}

impl fmt::Debug for Mojave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mojave")
            .field("secrets", &self.secrets)
            .field("max_age", &self.max_age)
            .field("tolerance", &self.tolerance)
            .field("custom_dedupe_key", &self.dedupe_key.is_some())
            .finish()
    }
}

/// Parses `[sha256=]<64 hex digits>`.
fn parse_signature(value: &str) -> Result<crate::secret::Digest, Rejection> {
    let hex_digits = value.strip_prefix("sha256=").unwrap_or(value);
    hex::decode_digest(hex_digits).ok_or_else(|| {
        Rejection::new(RejectionKind::SignatureMalformed)
            .with_detail("X-Mojave-Signature is not [sha256=] and 64 hex digits")
    })
}

impl Provider for Mojave {
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
        "mojave"
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], _: Duration) -> Result<Verified, Rejection> {
        let value =
            single_header(headers, SIGNATURE_HEADER)?.ok_or(RejectionKind::SignatureMissing)?;
        let signature = parse_signature(value)?;
        let index = self
            .secrets
            .verify(&[body], &[signature])
            .ok_or(RejectionKind::SignatureMismatch)?;
        Ok(Verified::new(index))
    }

    fn parse(&self, _: &HeaderMap, body: &Bytes, now: Duration) -> Result<Event, Rejection> {
        let event = Event::from_json(body)?;
        check_timestamp(
            i128::from(event.timestamp()),
            now,
            self.max_age,
            self.tolerance,
        )?;
        Ok(event)
    }

    fn event_type<'e>(&self, event: &'e Event) -> &'e str {
        event.event_type()
    }

    /// The resource in `data`, named by the type's prefix (`invoice:<id>` for
    /// `invoice.paid`), at the payload's `timestamp`.
    fn order_key(&self, event: &Event) -> Option<OrderKey> {
        let kind = event.event_type().split('.').next().unwrap_or_default();
        let id = match event.data() {
            EventData::TimeEntryCreated(resource)
            | EventData::TimeEntryUpdated(resource)
            | EventData::InvoiceCreated(resource)
            | EventData::InvoicePaid(resource)
            | EventData::ProjectArchived(resource)
            | EventData::UserInvited(resource) => resource.id(),
            EventData::Unknown { data, .. } => data.get("id").and_then(serde_json::Value::as_str),
        };
        ordering::named(kind, id).map(|key| key.at(event.timestamp()))
    }

    fn dedupe_key(&self, event: &Event, body: &[u8]) -> String {
        match &self.dedupe_key {
            Some(key) => key(event, body),
            None => hex::encode(&Sha256::digest(body)),
        }
    }

    /// `max_age + tolerance + 1 s`: a payload `timestamp` is accepted from
    /// `now = timestamp - tolerance` until the whole second `timestamp + max_age` has
    /// passed (see the [module docs](self)).
    fn replay_window(&self) -> Duration {
        let (max_age, tolerance) = (self.max_age.as_secs(), self.tolerance.as_secs());
        Duration::from_secs(max_age.saturating_add(tolerance).saturating_add(1))
    }
}
