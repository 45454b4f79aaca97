//! GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body.
//!
//! - The signature is the hex HMAC-SHA256 of the exact raw body, keyed with the
//!   webhook secret's UTF-8 bytes. The `sha256=` prefix is required; the hex may be
//!   of either case. Anything else is malformed.
//! - The legacy `X-Hub-Signature: sha1=...` header is **not** accepted: SHA-1 HMAC is
//!   kept by GitHub only for old integrations, and every delivery also carries
//!   `X-Hub-Signature-256`. A delivery with only the SHA-1 header is refused as
//!   [`SignatureMissing`](crate::RejectionKind::SignatureMissing).
//! - The dedupe key is the delivery GUID, `X-GitHub-Delivery`; a redelivery (which
//!   GitHub only does when asked, from the UI or the API) keeps it. The event name is
//!   `X-GitHub-Event`. Both are required: their absence is
//!   [`InvalidPayload`](crate::RejectionKind::InvalidPayload) (400), see
//!   [`Event::from_request`].
//! - The payload must be JSON (the webhook's content type `application/json`); it is
//!   kept as raw JSON, see [`Event`].
//!
//! # Replay protection
//!
//! GitHub signs no timestamp, so a captured delivery verifies forever: the only replay
//! defence is the dedupe store, for as long as it retains the delivery GUID. Worse, the
//! GUID header is not covered by the signature, so someone who captured a delivery
//! (its body and signature) can replay it under a fresh GUID and be processed again.
//! Keep the endpoint on HTTPS, and make handlers idempotent on the payload's own ids
//! where a replay would hurt.
//!
//! [`Provider::replay_window`] is therefore not a bound on a delivery's age but the
//! span over which GitHub itself can send a delivery again: it lets the operator
//! redeliver deliveries from the past 3 days (7 days on GitHub Enterprise Server), with
//! the same GUID. The default, [`DEFAULT_REDELIVERY_WINDOW`] (72 h), fits in the
//! default [`MemoryStore`](crate::MemoryStore) retention (96 h), so the
//! [`Receiver`](crate::Receiver)'s check passes and a redelivery of a processed
//! delivery is answered as a duplicate. On Enterprise Server, set
//! [`GitHub::redelivery_window`] to 7 days and give the store a retention at least as
//! long.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{HeaderMap, HeaderValue};
//! use hookwise_core::{Provider, github::GitHub, sign};
//!
//! let github = GitHub::new("It's a Secret to Everybody")?;
//! let body = Bytes::from_static(br#"{"action":"opened","issue":{"number":1}}"#);
//! let mut headers = HeaderMap::new();
//! sign::github(b"It's a Secret to Everybody", &body).insert_into(&mut headers);
//! headers.insert("x-github-delivery", HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
//! headers.insert("x-github-event", HeaderValue::from_static("issues"));
//!
//! let now = Duration::from_secs(1_700_000_000);
//! assert_eq!(github.verify(&headers, &body, now)?.secret_index(), 0);
//! let event = github.parse(&headers, &body, now)?;
//! assert_eq!((event.name(), event.action()), ("issues", Some("opened")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

pub use self::event::Event;
use crate::{
    ConfigError, Provider, Rejection, RejectionKind, Secrets, Verified, hex, ordering::OrderKey,
    provider::single_header, secret::Digest,
};

/// The signature header's name (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The legacy SHA-1 signature header, which is not accepted.
pub const LEGACY_SIGNATURE_HEADER: &str = "x-hub-signature";

/// The delivery GUID header: the dedupe key.
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// The event name header (`push`, `issues`, `ping`, ...).
pub const EVENT_HEADER: &str = "x-github-event";

/// How long after a delivery GitHub.com lets it be redelivered: 3 days.
pub const DEFAULT_REDELIVERY_WINDOW: Duration = Duration::from_secs(72 * 60 * 60);

/// The GitHub provider: verification, envelope, dedupe key.
///
/// See the [module docs](self) for the rules, the replay caveat and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct GitHub {
    secrets: Secrets,
    redelivery_window: Duration,
}

impl GitHub {
    /// A provider accepting one webhook secret (its UTF-8 bytes). An empty secret is
    /// a [`ConfigError`].
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        Ok(Self::with_secrets(Secrets::new([secret])?))
    }

    /// A provider accepting several secrets, for rotation.
    pub fn with_secrets(secrets: Secrets) -> Self {
        Self {
            secrets,
            redelivery_window: DEFAULT_REDELIVERY_WINDOW,
        }
    }

    /// Sets how long after a delivery GitHub may send it again (default 72 h; 7 days
    /// on GitHub Enterprise Server). This is the provider's
    /// [`replay_window`](Provider::replay_window): the [`Receiver`](crate::Receiver)
    /// refuses a dedupe store that forgets deliveries sooner. Must be at least one
    /// second.
    pub fn redelivery_window(mut self, window: Duration) -> Result<Self, ConfigError> {
        if window.as_secs() == 0 {
            return Err(ConfigError::Zero("GitHub redelivery window"));
        }
        self.redelivery_window = window;
        Ok(self)
    }
}

/// Parses `sha256=<64 hex digits>`.
fn parse_signature(value: &str) -> Result<Digest, Rejection> {
    value
        .strip_prefix("sha256=")
        .and_then(hex::decode_digest)
        .ok_or_else(|| {
            Rejection::new(RejectionKind::SignatureMalformed)
                .with_detail("X-Hub-Signature-256 is not sha256= and 64 hex digits")
        })
}

impl Provider for GitHub {
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
        "github"
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], _: Duration) -> Result<Verified, Rejection> {
        let Some(value) = single_header(headers, SIGNATURE_HEADER)? else {
            let rejection = Rejection::new(RejectionKind::SignatureMissing);
            return Err(if headers.contains_key(LEGACY_SIGNATURE_HEADER) {
                rejection.with_detail(
                    "only the SHA-1 X-Hub-Signature was sent; X-Hub-Signature-256 is required",
                )
            } else {
                rejection
            });
        };
        let signature = parse_signature(value)?;
        let index = self
            .secrets
            .verify(&[body], &[signature])
            .ok_or(RejectionKind::SignatureMismatch)?;
        Ok(Verified::new(index))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes, _: Duration) -> Result<Event, Rejection> {
        Event::from_request(headers, body)
    }

    fn event_type<'e>(&self, event: &'e Event) -> &'e str {
        event.name()
    }

    fn dedupe_key(&self, event: &Event, _: &[u8]) -> String {
        event.delivery().to_owned()
    }

    /// `owner/repo#number` for an event about an issue or a pull request (its
    /// comments and reviews included), else `owner/repo`; no time (GitHub sends none
    /// for the event), so nothing is skipped as stale.
    fn order_key(&self, event: &Event) -> Option<OrderKey> {
        let repository = event.get("repository")?.get("full_name")?.as_str()?;
        let number = ["issue", "pull_request"]
            .iter()
            .find_map(|field| event.get(field)?.get("number")?.as_u64());
        Some(OrderKey::new(match number {
            Some(number) => format!("{repository}#{number}"),
            None => repository.to_owned(),
        }))
    }

    /// GitHub signs no timestamp, so a signature verifies forever: this is not the
    /// window in which it verifies, but the redelivery window (see the
    /// [module docs](self#replay-protection)).
    fn replay_window(&self) -> Duration {
        self.redelivery_window
    }
}
