//! Signing deliveries the way each provider does, for tests and tooling.
//!
//! Use it to test your endpoint end to end, to build fixtures, or to replay a
//! captured body against a local server. Any secret and any timestamp are accepted,
//! so you can also produce what a misconfigured sender would.
//!
//! ```
//! use hookwise_core::sign;
//!
//! let header = sign::hoursmith(b"whsec_test_secret", 1492774577,
//!     br#"{"id":"evt_test_webhook","object":"event"}"#);
//! assert_eq!(header.name(), "hoursmith-signature");
//! assert_eq!(
//!     header.value(),
//!     "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
//! );
//! ```

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{github, hex, hoursmith, mojave, secret::SigningKey, stripe};

/// A signature header, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    name: HeaderName,
    value: String,
}

impl SignedHeader {
    /// The header's name (lower-case).
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The header's value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Inserts the header into `headers`, replacing any earlier value.
    ///
    /// Signatures and timestamps are always valid header values; an id you chose with
    /// control characters in it is not, and is then left out.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        if let Ok(value) = HeaderValue::from_str(&self.value) {
            headers.insert(self.name.clone(), value);
        }
    }
}

/// `Hoursmith-Signature: t=<timestamp>,v1=<hex HMAC of "t.body">`.
pub fn hoursmith(secret: &[u8], timestamp: u64, body: &[u8]) -> SignedHeader {
    hoursmith_with_secrets(&[secret], timestamp, body)
}

/// A Hoursmith header with one `v1` per secret, as Hoursmith sends during a rotation.
///
/// ```
/// let header = hookwise_core::sign::hoursmith_with_secrets(&[b"new", b"old"], 1, b"{}");
/// assert_eq!(header.value().matches(",v1=").count(), 2);
/// ```
pub fn hoursmith_with_secrets(secrets: &[&[u8]], timestamp: u64, body: &[u8]) -> SignedHeader {
    timestamped(hoursmith::SIGNATURE_HEADER, secrets, timestamp, body)
}

/// `Stripe-Signature: t=<timestamp>,v1=<hex HMAC of "t.body">`, keyed with the
/// `whsec_...` secret's bytes verbatim.
///
/// ```
/// // Hoursmith's scheme under another name: the same vector as `sign::hoursmith`.
/// let header = hookwise_core::sign::stripe(b"whsec_test_secret", 1492774577,
///     br#"{"id":"evt_test_webhook","object":"event"}"#);
/// assert_eq!(header.name(), "stripe-signature");
/// assert_eq!(
///     header.value(),
///     "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"
/// );
/// ```
pub fn stripe(secret: &[u8], timestamp: u64, body: &[u8]) -> SignedHeader {
    stripe_with_secrets(&[secret], timestamp, body)
}

/// A Stripe header with one `v1` per secret, as Stripe sends while a secret is rolled.
pub fn stripe_with_secrets(secrets: &[&[u8]], timestamp: u64, body: &[u8]) -> SignedHeader {
    timestamped(stripe::SIGNATURE_HEADER, secrets, timestamp, body)
}

/// The `t=...,v1=...` scheme Hoursmith and Stripe share, under the header `name`.
fn timestamped(name: &'static str, secrets: &[&[u8]], timestamp: u64, body: &[u8]) -> SignedHeader {
    let t = timestamp.to_string();
    let mut value = format!("t={t}");
    for secret in secrets {
        let digest = SigningKey::new(secret).sign(&[t.as_bytes(), b".", body]);
        value.push_str(",v1=");
        value.push_str(&hex::encode(&digest));
    }
    SignedHeader {
        name: HeaderName::from_static(name),
        value,
    }
}

/// `X-Mojave-Signature: <hex HMAC of the body>` (without the optional `sha256=`).
///
/// ```
/// let header = hookwise_core::sign::mojave(b"It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(header.value(), "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn mojave(secret: &[u8], body: &[u8]) -> SignedHeader {
    SignedHeader {
        name: HeaderName::from_static(mojave::SIGNATURE_HEADER),
        value: hex::encode(&SigningKey::new(secret).sign(&[body])),
    }
}

/// `X-Hub-Signature-256: sha256=<hex HMAC of the body>`, as GitHub signs.
///
/// GitHub also sends `X-GitHub-Delivery` and `X-GitHub-Event`, which are not signed;
/// add them yourself (see [`github::DELIVERY_HEADER`], [`github::EVENT_HEADER`]).
///
/// ```
/// // GitHub's documented example ("Validating webhook deliveries").
/// let header = hookwise_core::sign::github(b"It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(header.name(), "x-hub-signature-256");
/// assert_eq!(
///     header.value(),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// ```
pub fn github(secret: &[u8], body: &[u8]) -> SignedHeader {
    SignedHeader {
        name: HeaderName::from_static(github::SIGNATURE_HEADER),
        value: format!(
            "sha256={}",
            hex::encode(&SigningKey::new(secret).sign(&[body]))
        ),
    }
}
