//! Signing deliveries the way each provider does, for tests and tooling.
//!
//! Use it to test your endpoint end to end, to build fixtures, or to replay a
//! captured body against a local server. Any secret and any timestamp are accepted
//! (except a Standard Webhooks secret, which must be base64 to be a key at all), so
//! you can also produce what a misconfigured sender would.
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
//!
//! A scheme that signs with several headers (Standard Webhooks) returns
//! [`SignedHeaders`].

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{
    ConfigError, github, hex, hoursmith, mojave, secret::SigningKey, standard_webhooks, stripe,
};

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

/// Several headers that travel together, ready to send: what a scheme that signs
/// more than the body needs (Standard Webhooks' id, timestamp and signature).
///
/// ```
/// use hookwise_core::sign;
///
/// let headers = sign::standard_webhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
///     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#)?;
/// let names: Vec<&str> = headers.iter().map(|h| h.name()).collect();
/// assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
///
/// let mut map = http::HeaderMap::new();
/// headers.insert_into(&mut map);
/// assert_eq!(map["webhook-timestamp"], "1614265330");
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    headers: Vec<SignedHeader>,
}

impl SignedHeaders {
    /// The value of the header `name` (case-insensitive), if it is one of these.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .map(SignedHeader::value)
    }

    /// The headers, in the order the scheme lists them.
    pub fn iter(&self) -> std::slice::Iter<'_, SignedHeader> {
        self.headers.iter()
    }

    /// Inserts every header into `headers`, replacing any earlier values.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        for header in &self.headers {
            header.insert_into(headers);
        }
    }
}

impl<'a> IntoIterator for &'a SignedHeaders {
    type Item = &'a SignedHeader;
    type IntoIter = std::slice::Iter<'a, SignedHeader>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC of
/// "id.timestamp.body">`, as a Standard Webhooks (Svix) sender signs.
///
/// `secret` is the `whsec_<base64>` string (the prefix is optional); the HMAC key is
/// its base64 decoding. A secret that is empty or not base64 is a [`ConfigError`].
/// A `whsk_<base64>` ed25519 signing key signs `v1a` instead (the asymmetric scheme).
///
/// ```
/// // The published vector of the Standard Webhooks libraries' tests.
/// let headers = hookwise_core::sign::standard_webhooks(
///     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
///     "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     1614265330,
///     br#"{"test": 2432232314}"#,
/// )?;
/// assert_eq!(
///     headers.get("webhook-signature"),
///     Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
/// );
/// assert_eq!(headers.get("webhook-id"), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
///
/// // And `v1a`: the vector of the reference Go library's asymmetric tests.
/// let headers = hookwise_core::sign::standard_webhooks(
///     "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=",
///     "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     1614265330,
///     br#"{"test": 2432232314}"#,
/// )?;
/// assert_eq!(
///     headers.get("webhook-signature"),
///     Some("v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==")
/// );
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
pub fn standard_webhooks(
    secret: &str,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<SignedHeaders, ConfigError> {
    standard_webhooks_with_secrets(&[secret], id, timestamp, body)
}

/// Standard Webhooks headers with one space-separated entry per secret, as a sender
/// rotating its secret does: `v1,...` for a `whsec_` secret, `v1a,...` for a `whsk_`
/// signing key.
///
/// ```
/// let headers = hookwise_core::sign::standard_webhooks_with_secrets(
///     &["whsec_bmV3LXNlY3JldA==", "whsec_b2xkLXNlY3JldA=="], "msg_1", 1, b"{}")?;
/// assert_eq!(headers.get("webhook-signature").map(|v| v.split(' ').count()), Some(2));
/// # Ok::<(), hookwise_core::ConfigError>(())
/// ```
pub fn standard_webhooks_with_secrets(
    secrets: &[&str],
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<SignedHeaders, ConfigError> {
    let t = timestamp.to_string();
    let mut signatures = Vec::with_capacity(secrets.len());
    let signed: [&[u8]; 5] = [id.as_bytes(), b".", t.as_bytes(), b".", body];
    for secret in secrets {
        if secret.starts_with(standard_webhooks::SIGNING_KEY_PREFIX) {
            signatures.push(standard_webhooks::sign_v1a(secret, &signed)?);
            continue;
        }
        let key = standard_webhooks::decode_secret(secret)?;
        let digest = SigningKey::new(&key).sign(&signed);
        signatures.push(format!("v1,{}", BASE64.encode(digest)));
    }
    let header = |name, value| SignedHeader {
        name: HeaderName::from_static(name),
        value,
    };
    Ok(SignedHeaders {
        headers: vec![
            header(standard_webhooks::ID_HEADER, id.to_owned()),
            header(standard_webhooks::TIMESTAMP_HEADER, t),
            header(standard_webhooks::SIGNATURE_HEADER, signatures.join(" ")),
        ],
    })
}
