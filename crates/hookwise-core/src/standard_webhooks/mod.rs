//! Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp`, `webhook-signature`.
//!
//! The [Standard Webhooks](https://www.standardwebhooks.com) scheme, which Svix (and
//! every sender built on it) uses:
//!
//! - The signed content is the id, a `.`, the timestamp, a `.`, then the raw body
//!   (`{id}.{timestamp}.{body}`), with the id and timestamp exactly as sent.
//!   HMAC-SHA256, keyed with the **base64 decoding** of the secret after its `whsec_`
//!   prefix ([`decode_secret`]; the prefix may be left out). A secret that is empty or
//!   not base64 is a [`ConfigError`].
//! - `webhook-signature` is a space-separated list of `<version>,<base64>` entries. A
//!   delivery verifies when any `v1` entry matches under any configured secret
//!   (rotation), and the matching secret is reported. Other versions (`v1a`, the
//!   asymmetric scheme) are ignored; an entry without a `,`, a `v1` that is not the
//!   base64 of 32 bytes, more than [`MAX_SIGNATURES`] `v1`s, or no `v1` at all is
//!   malformed.
//! - `|now - timestamp|` must be at most the tolerance (5 minutes by default) in both
//!   directions, compared in whole seconds; the timestamp is checked before any MAC is
//!   computed. One signature therefore verifies for a window of
//!   `2 × tolerance + 1 s` of receiver time (601 s by default): from
//!   `timestamp - tolerance` until the second `timestamp + tolerance` is over. That is
//!   the provider's [`replay_window`](Provider::replay_window), and the
//!   [`Receiver`](crate::Receiver) refuses a dedupe store whose retention is shorter,
//!   since a replay late in the window would then be processed twice.
//! - The id is part of the signed content, so a missing id or timestamp is
//!   [`SignatureMalformed`](crate::RejectionKind::SignatureMalformed): the signature
//!   cannot be checked without them.
//! - Svix sends the same headers named `svix-id`, `svix-timestamp` and
//!   `svix-signature`; they are accepted too. The family is chosen by the signature
//!   header (`webhook-signature` first, else `svix-signature`), and the id and timestamp
//!   are read from the same family: the two are never mixed.
//! - Dedupe key: the message id, shared by every retry.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::HeaderMap;
//! use hookwise_core::{Provider, sign, standard_webhooks::StandardWebhooks};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let provider = StandardWebhooks::new(secret)?;
//! let body = Bytes::from_static(br#"{"type":"invoice.paid","timestamp":"2023-11-14T22:13:20Z","data":{"id":"inv_1"}}"#);
//! let now = Duration::from_secs(1_700_000_000);
//!
//! let mut headers = HeaderMap::new();
//! sign::standard_webhooks(secret, "msg_1", now.as_secs(), &body)?.insert_into(&mut headers);
//!
//! assert_eq!(provider.verify(&headers, &body, now)?.secret_index(), 0);
//! let event = provider.parse(&headers, &body, now)?;
//! assert_eq!((event.id(), event.event_type()), ("msg_1", Some("invoice.paid")));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use http::HeaderMap;

pub use self::event::Event;
pub use crate::timestamped::MAX_SIGNATURES;
use crate::{
    ConfigError, Provider, Rejection, RejectionKind, Secrets, Verified,
    provider::{check_timestamp, malformed, single_header},
    secret::Digest,
    timestamped::parse_unix_secs,
};

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";

/// The signed timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";

/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Svix's name for [`ID_HEADER`].
pub const SVIX_ID_HEADER: &str = "svix-id";

/// Svix's name for [`TIMESTAMP_HEADER`].
pub const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";

/// Svix's name for [`SIGNATURE_HEADER`].
pub const SVIX_SIGNATURE_HEADER: &str = "svix-signature";

/// The default tolerance between the signed timestamp and now, both directions.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Decodes a `whsec_<base64>` secret into its HMAC key. The prefix is optional, as in
/// the Standard Webhooks libraries.
///
/// An empty secret (or a bare `whsec_`) is [`ConfigError::EmptySecret`]; one that is
/// not standard, padded base64 is [`ConfigError::InvalidSecret`]. The error never
/// quotes the secret.
///
/// ```
/// use hookwise_core::standard_webhooks::decode_secret;
///
/// assert_eq!(decode_secret("whsec_aGVsbG8=")?, b"hello");
/// assert_eq!(decode_secret("aGVsbG8=")?, b"hello");
/// assert!(decode_secret("whsec_").is_err());
/// assert!(decode_secret("whsec_not base64!").is_err());
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, ConfigError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    if encoded.is_empty() {
        return Err(ConfigError::EmptySecret);
    }
    match BASE64.decode(encoded) {
        Ok(key) if key.is_empty() => Err(ConfigError::EmptySecret),
        Ok(key) => Ok(key),
        Err(_) => Err(ConfigError::InvalidSecret(
            "a Standard Webhooks secret is whsec_ followed by base64",
        )),
    }
}

/// The Standard Webhooks provider: verification, envelope, dedupe key.
///
/// See the [module docs](self) for the rules and an example.
#[derive(Debug, Clone)]
#[must_use]
pub struct StandardWebhooks {
    secrets: Secrets,
    tolerance: Duration,
}

impl StandardWebhooks {
    /// A provider accepting one secret, as shown by the sender (`whsec_<base64>`).
    /// An empty or non-base64 secret is a [`ConfigError`].
    pub fn new(secret: impl AsRef<str>) -> Result<Self, ConfigError> {
        Self::with_encoded_secrets([secret])
    }

    /// A provider accepting several `whsec_<base64>` secrets, current first, for
    /// rotation.
    ///
    /// ```
    /// use hookwise_core::standard_webhooks::StandardWebhooks;
    ///
    /// let provider = StandardWebhooks::with_encoded_secrets([
    ///     "whsec_bmV3LXNlY3JldA==",
    ///     "whsec_b2xkLXNlY3JldA==",
    /// ])?;
    /// # Ok::<(), hookwise_core::ConfigError>(())
    /// ```
    pub fn with_encoded_secrets<I, S>(secrets: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = secrets
            .into_iter()
            .map(|secret| decode_secret(secret.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::with_secrets(Secrets::new(keys)?))
    }

    /// A provider accepting several secrets given as **decoded** HMAC keys (see
    /// [`decode_secret`]), for rotation.
    pub fn with_secrets(keys: Secrets) -> Self {
        Self {
            secrets: keys,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Sets how far the signed timestamp may be from now, in either direction
    /// (default 5 minutes), in whole seconds (a fraction of a second is ignored). Must
    /// be at least one second.
    ///
    /// The dedupe store must remember a delivery for the whole window in which its
    /// signature verifies, `2 × tolerance + 1 s` (checked when the
    /// [`Receiver`](crate::Receiver) is built).
    pub fn tolerance(mut self, tolerance: Duration) -> Result<Self, ConfigError> {
        if tolerance.as_secs() == 0 {
            return Err(ConfigError::Zero("Standard Webhooks tolerance"));
        }
        self.tolerance = tolerance;
        Ok(self)
    }
}

/// The three headers of one family, read and checked for shape.
struct Message<'h> {
    id: &'h str,
    timestamp_text: &'h str,
    timestamp: u64,
    signature: &'h str,
}

impl<'h> Message<'h> {
    /// Reads the `webhook-*` family when `webhook-signature` is present, else the
    /// `svix-*` one.
    fn read(headers: &'h HeaderMap) -> Result<Self, Rejection> {
        let [id, timestamp, signature] = if headers.contains_key(SIGNATURE_HEADER) {
            [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
        } else {
            [SVIX_ID_HEADER, SVIX_TIMESTAMP_HEADER, SVIX_SIGNATURE_HEADER]
        };
        let signature =
            single_header(headers, signature)?.ok_or(RejectionKind::SignatureMissing)?;
        let id = single_header(headers, id)?.ok_or_else(|| {
            malformed("the message id header is missing; it is part of the signed content")
        })?;
        let timestamp_text = single_header(headers, timestamp)?.ok_or_else(|| {
            malformed("the timestamp header is missing; it is part of the signed content")
        })?;
        let timestamp = parse_unix_secs(timestamp_text, "the timestamp")?;
        Ok(Self {
            id,
            timestamp_text,
            timestamp,
            signature,
        })
    }
}

/// Parses the space-separated `version,base64` list into its `v1` digests.
fn parse_signatures(value: &str) -> Result<Vec<Digest>, Rejection> {
    let mut signatures = Vec::new();
    for entry in value.split_ascii_whitespace() {
        let Some((version, signature)) = entry.split_once(',') else {
            return Err(malformed("a signature entry is not version,signature"));
        };
        if version != "v1" {
            // v1a (asymmetric) or a future version: not ours to judge.
            continue;
        }
        if signatures.len() == MAX_SIGNATURES {
            return Err(malformed("too many v1 signatures"));
        }
        let digest = decode_digest(signature)
            .ok_or_else(|| malformed("a v1 signature is not the base64 of 32 bytes"))?;
        signatures.push(digest);
    }
    if signatures.is_empty() {
        return Err(malformed("no v1 signature"));
    }
    Ok(signatures)
}

/// Decodes padded standard base64 of exactly 32 bytes (44 characters).
fn decode_digest(text: &str) -> Option<Digest> {
    if text.len() != 44 {
        return None;
    }
    BASE64.decode(text).ok()?.try_into().ok()
}

impl Provider for StandardWebhooks {
    type Event = Event;

    fn name(&self) -> &'static str {
        "standard-webhooks"
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: Duration,
    ) -> Result<Verified, Rejection> {
        let message = Message::read(headers)?;
        let signatures = parse_signatures(message.signature)?;
        check_timestamp(
            i128::from(message.timestamp),
            now,
            self.tolerance,
            self.tolerance,
        )?;
        let signed = [
            message.id.as_bytes(),
            b".",
            message.timestamp_text.as_bytes(),
            b".",
            body,
        ];
        let index = self
            .secrets
            .verify(&signed, &signatures)
            .ok_or(RejectionKind::SignatureMismatch)?;
        Ok(Verified::new(index).signed_at(message.timestamp))
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes, _: Duration) -> Result<Event, Rejection> {
        let message = Message::read(headers)?;
        Event::from_parts(message.id, message.timestamp, body)
    }

    /// The payload's `type`, or `""` for a payload without one.
    fn event_type<'e>(&self, event: &'e Event) -> &'e str {
        event.event_type().unwrap_or_default()
    }

    fn dedupe_key(&self, event: &Event, _: &[u8]) -> String {
        event.id().to_owned()
    }

    /// `2 × tolerance + 1 s`: the timestamp verifies from `now = timestamp -
    /// tolerance` until the whole second `timestamp + tolerance` has passed (see the
    /// [module docs](self)).
    fn replay_window(&self) -> Duration {
        let tolerance = self.tolerance.as_secs();
        Duration::from_secs(tolerance.saturating_mul(2).saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(value: &str) -> Option<RejectionKind> {
        parse_signatures(value).err().map(|r| r.kind())
    }

    const SIG: &str = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn keeps_every_v1_and_ignores_other_versions() {
        let value = format!("v1a,abc  v2,{SIG} v1,{SIG}\tv1,{SIG}");
        assert_eq!(parse_signatures(&value).map(|s| s.len()), Ok(2));
    }

    #[test]
    fn bad_entries_are_malformed() {
        for value in [
            "v1".to_owned(),
            format!("v1={SIG}"),
            "v1,".to_owned(),
            format!("v1,{}", &SIG[..43]),
            format!("v1,{SIG}="),
            format!("v1,{}", SIG.replace('=', "A")),
            format!("v1,{}", SIG.replace('+', "-")),
            format!("v2,{SIG}"),
            String::new(),
        ] {
            assert_eq!(
                kind(&value),
                Some(RejectionKind::SignatureMalformed),
                "{value:?}"
            );
        }
    }

    #[test]
    fn signature_count_is_bounded() {
        let many = |n| vec![format!("v1,{SIG}"); n].join(" ");
        assert!(parse_signatures(&many(MAX_SIGNATURES)).is_ok());
        assert_eq!(
            kind(&many(MAX_SIGNATURES + 1)),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn secrets_decode_with_or_without_prefix() {
        assert_eq!(decode_secret("whsec_aGk="), Ok(b"hi".to_vec()));
        assert_eq!(decode_secret("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(decode_secret(""), Err(ConfigError::EmptySecret));
        assert_eq!(decode_secret("whsec_"), Err(ConfigError::EmptySecret));
        assert!(matches!(
            decode_secret("whsec_aGk"),
            Err(ConfigError::InvalidSecret(_))
        ));
        assert!(matches!(
            decode_secret("whsec_#!"),
            Err(ConfigError::InvalidSecret(_))
        ));
    }
}
