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
//!   (rotation), and the matching secret is reported.
//! - The asymmetric scheme, `v1a`: the sender signs the same content with an ed25519
//!   key (`whsk_`, its private key) and the receiver verifies with the public key
//!   (`whpk_<base64>`): give it where a secret goes, alone or mixed with `whsec_`
//!   secrets ([`StandardWebhooks::with_encoded_secrets`]). `v1a` signatures are
//!   verified strictly (`ed25519-dalek`'s `verify_strict`: no malleable signatures,
//!   no weak keys). A `whsk_` key given to a receiver is refused: it is the sender's
//!   private key.
//! - Entries the receiver cannot use are skipped, as the reference libraries do: an
//!   entry without a `,`, another version, a `v1` that is not the base64 of 32 bytes
//!   (or any `v1` when there is no secret), a `v1a` that is not the base64 of 64
//!   bytes (or any `v1a` when there is no public key). So a garbled entry never hides
//!   a valid one. A header with no usable entry, or with more than
//!   [`MAX_SIGNATURES`] usable ones, is malformed.
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
mod keys;

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use http::HeaderMap;

pub(crate) use self::keys::sign_v1a;
use self::keys::{Keys, decode_v1a};
pub use self::{
    event::Event,
    keys::{PUBLIC_KEY_PREFIX, SIGNING_KEY_PREFIX, public_key},
};
pub use crate::timestamped::MAX_SIGNATURES;
use crate::{
    ConfigError, Provider, Rejection, RejectionKind, Secrets, Verified,
    provider::{check_timestamp, malformed, single_header},
    secret::Digest,
    timestamped::parse_unix_secs,
};
use ed25519_dalek::Signature;

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
#[derive(Clone)]
#[must_use]
pub struct StandardWebhooks {
    keys: Keys,
    tolerance: Duration,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardWebhooks")
            .field("keys", &"[redacted]")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl StandardWebhooks {
    /// A provider accepting one secret, as shown by the sender (`whsec_<base64>`), or
    /// one ed25519 public key (`whpk_<base64>`) for `v1a` signatures. An empty or
    /// non-base64 secret is a [`ConfigError`].
    pub fn new(secret: impl AsRef<str>) -> Result<Self, ConfigError> {
        Self::with_encoded_secrets([secret])
    }

    /// A provider accepting several `whsec_<base64>` secrets and `whpk_<base64>`
    /// public keys, in any mix, current first, for rotation: a match reports the
    /// place of its key in this list.
    ///
    /// ```
    /// use hookwise_core::standard_webhooks::StandardWebhooks;
    ///
    /// let provider = StandardWebhooks::with_encoded_secrets([
    ///     "whsec_bmV3LXNlY3JldA==",
    ///     "whsec_b2xkLXNlY3JldA==",
    ///     "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=",
    /// ])?;
    /// // The sender's private key has no place in a receiver.
    /// assert!(StandardWebhooks::new("whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=").is_err());
    /// # Ok::<(), hookwise_core::ConfigError>(())
    /// ```
    pub fn with_encoded_secrets<I, S>(secrets: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            keys: Keys::decode(secrets)?,
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// A provider accepting several secrets given as **decoded** HMAC keys (see
    /// [`decode_secret`]), for rotation.
    pub fn with_secrets(keys: Secrets) -> Self {
        Self {
            keys: Keys::hmac(keys),
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

/// The entries of a signature header that the receiver's keys can check.
#[derive(Debug, Default)]
struct Signatures {
    v1: Vec<Digest>,
    v1a: Vec<Signature>,
}

/// Parses the space-separated `version,base64` list into the entries `keys` can
/// check, skipping the others (see the [module docs](self)).
fn parse_signatures(value: &str, keys: &Keys) -> Result<Signatures, Rejection> {
    let mut signatures = Signatures::default();
    for entry in value.split_ascii_whitespace() {
        let Some((version, signature)) = entry.split_once(',') else {
            continue;
        };
        match version {
            "v1" if keys.has_hmac() => match decode_digest(signature) {
                Some(digest) => signatures.v1.push(digest),
                None => continue,
            },
            "v1a" if keys.has_public() => match decode_v1a(signature) {
                Some(signature) => signatures.v1a.push(signature),
                None => continue,
            },
            _ => continue,
        }
        if signatures.v1.len() + signatures.v1a.len() > MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
    }
    if signatures.v1.is_empty() && signatures.v1a.is_empty() {
        return Err(malformed(match (keys.has_hmac(), keys.has_public()) {
            (true, true) => "no usable v1 or v1a signature",
            (false, true) => "no usable v1a signature",
            _ => "no usable v1 signature",
        }));
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

    fn secrets(&self) -> Option<&Secrets> {
        self.keys.hmac_secrets()
    }

    fn for_tenant(&self, secrets: &[String]) -> Result<Self, ConfigError> {
        Ok(Self {
            keys: Keys::decode(secrets)?,
            ..self.clone()
        })
    }

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
        let signatures = parse_signatures(message.signature, &self.keys)?;
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
            .keys
            .verify(&signed, &signatures.v1, &signatures.v1a)
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

    const SIG: &str = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const V1A: &str =
        "tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";
    const PUBLIC: &str = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=";

    fn keys(encoded: &[&str]) -> Keys {
        Keys::decode(encoded).expect("valid keys")
    }

    fn hmac() -> Keys {
        keys(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    }

    fn kind(value: &str, keys: &Keys) -> Option<RejectionKind> {
        parse_signatures(value, keys).err().map(|r| r.kind())
    }

    fn counts(value: &str, keys: &Keys) -> Option<(usize, usize)> {
        parse_signatures(value, keys)
            .ok()
            .map(|s| (s.v1.len(), s.v1a.len()))
    }

    #[test]
    fn keeps_the_entries_its_keys_can_check_and_skips_the_rest() {
        let value = format!("v1a,abc  v2,{SIG} v1,{SIG}\tv1,{SIG} v1a,{V1A}");
        assert_eq!(counts(&value, &hmac()), Some((2, 0)));
        assert_eq!(counts(&value, &keys(&[PUBLIC])), Some((0, 1)));
        let both = keys(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PUBLIC]);
        assert_eq!(counts(&value, &both), Some((2, 1)));
    }

    #[test]
    fn a_garbled_entry_does_not_hide_a_usable_one() {
        for garbled in [
            "v1".to_owned(),
            format!("v1={SIG}"),
            "v1,".to_owned(),
            format!("v1,{}", &SIG[..43]),
            format!("v1,{SIG}="),
            format!("v1,{}", SIG.replace('=', "A")),
            format!("v1,{}", SIG.replace('+', "-")),
            format!("v1a,{}", &V1A[..87]),
        ] {
            let value = format!("{garbled} v1,{SIG}");
            assert_eq!(counts(&value, &hmac()), Some((1, 0)), "{value:?}");
        }
    }

    #[test]
    fn a_header_with_no_usable_entry_is_malformed() {
        for value in [
            "v1".to_owned(),
            format!("v1={SIG}"),
            "v1,".to_owned(),
            format!("v1,{}", &SIG[..43]),
            format!("v1,{SIG}="),
            format!("v1,{}", SIG.replace('=', "A")),
            format!("v1,{}", SIG.replace('+', "-")),
            format!("v2,{SIG}"),
            format!("v1a,{V1A}"),
            String::new(),
        ] {
            assert_eq!(
                kind(&value, &hmac()),
                Some(RejectionKind::SignatureMalformed),
                "{value:?}"
            );
        }
        // Only v1 entries for a receiver of public keys: nothing it can check.
        assert_eq!(
            kind(&format!("v1,{SIG}"), &keys(&[PUBLIC])),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn signature_count_is_bounded() {
        let many = |n| vec![format!("v1,{SIG}"); n].join(" ");
        assert!(parse_signatures(&many(MAX_SIGNATURES), &hmac()).is_ok());
        assert_eq!(
            kind(&many(MAX_SIGNATURES + 1), &hmac()),
            Some(RejectionKind::SignatureMalformed)
        );
    }

    #[test]
    fn public_and_signing_keys_decode_and_a_signing_key_is_refused_to_a_receiver() {
        let signing = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
        assert_eq!(public_key(signing).as_deref(), Ok(PUBLIC));
        assert_eq!(public_key(&signing[5..]).as_deref(), Ok(PUBLIC));
        assert!(matches!(
            Keys::decode([signing]),
            Err(ConfigError::InvalidSecret(_))
        ));
        for bad in ["whpk_", "whpk_aGk=", "whpk_!!", &PUBLIC[..PUBLIC.len() - 4]] {
            assert!(
                matches!(Keys::decode([bad]), Err(ConfigError::InvalidSecret(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Keys::decode(Vec::<&str>::new()),
            Err(ConfigError::NoSecrets)
        ));
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
