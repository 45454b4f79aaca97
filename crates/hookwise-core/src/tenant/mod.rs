//! Receiving for many tenants: each delivery verified with the secrets of the
//! account it is for, looked up while it arrives.
//!
//! Platforms receive webhooks for many accounts (one Hoursmith workspace per
//! customer, Stripe Connect, GitHub Apps), each signing with its own secret. A
//! [`Receiver`](crate::Receiver) with [`Tenants`] finds a delivery's tenant from what
//! is known before verification ([`TenantLocator`]: a path segment, a header, or a
//! field of the unverified body), asks a [`SecretSource`] for that tenant's secrets
//! (cached), and verifies with them:
//!
//! ```
//! use hookwise_core::{Hoursmith, MemoryStore, Receiver};
//! use hookwise_core::tenant::{LookupError, TenantId, TenantLocator, Tenants};
//!
//! // Your own lookup: a database, a vault, a config file.
//! async fn secrets_of(tenant: TenantId) -> Result<Option<Vec<String>>, LookupError> {
//!     Ok(match tenant.as_str() {
//!         "acme" => Some(vec!["whsec_acme_new".into(), "whsec_acme_old".into()]),
//!         _ => None, // unknown: answered 401, like a wrong signature
//!     })
//! }
//!
//! // POST /webhooks/hoursmith/{tenant}: the path's third segment.
//! let tenants = Tenants::new(TenantLocator::path_segment(2), secrets_of);
//! // The provider sets everything but the secrets (tolerance, test events): its own
//! // secret is replaced and never used.
//! let receiver = Receiver::new(Hoursmith::new("per-tenant")?, MemoryStore::new())?
//!     .tenants(tenants)?;
//! # Ok::<(), hookwise_core::ConfigError>(())
//! ```
//!
//! - **Nothing read before verification is trusted.** The tenant id only picks the
//!   secrets to verify with; it is checked for shape (1 to 64 ASCII letters, digits,
//!   `-`, `_`, `.`) and otherwise treated as unknown. Only once the delivery verified
//!   under that tenant's secret is it that tenant's delivery
//!   ([`Delivery::tenant`](crate::Delivery::tenant)). Do not act on a tenant id before
//!   that, and do not read anything else from an unverified request.
//! - **An unknown tenant is a wrong signature.** No tenant found, an id of the wrong
//!   shape, or a tenant the source does not know: the delivery is verified anyway
//!   with a decoy secret, and refused with the rejection a wrong secret gets
//!   (`401 signature_mismatch`, or the header's own error when it is malformed or
//!   stale), so neither the answer nor its time tells a known tenant from an unknown
//!   one.
//! - **A lookup that fails is a `503`** (`secrets_unavailable`, with `Retry-After`):
//!   the sender retries. So is one that takes longer than the lookup timeout (2 s).
//! - **Bounded.** Known tenants are cached for a TTL (5 min) up to a count (10,000),
//!   unknown ones for a shorter TTL (30 s) up to their own count (10,000), so random
//!   tenant ids can flood neither the cache nor the source: each id costs at most one
//!   lookup per 30 s, and at most 16 lookups run at once (a delivery waits for a
//!   turn, within the lookup timeout). Concurrent deliveries for one tenant share one
//!   lookup.
//! - **Scoped dedupe.** A tenant's event `evt_1` is deduped as `<tenant>:evt_1`, so
//!   two tenants' events never collide.
//! - **Rotation per tenant.** The source gives a tenant's secrets current first;
//!   [`Verified::secret_index`](crate::Verified::secret_index) says which matched.

mod cache;

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName};

pub(crate) use self::cache::{Resolved, TenantCache};
use crate::ConfigError;

/// The longest tenant id, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 64;

/// The default time a known tenant's secrets are kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The default time an unknown tenant is remembered as unknown.
pub const DEFAULT_UNKNOWN_TTL: Duration = Duration::from_secs(30);

/// The default bound on the known tenants cached, and on the unknown ones.
pub const DEFAULT_MAX_TENANTS: u64 = 10_000;

/// The default bound on one lookup, waiting for a turn included.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The default bound on lookups running at once.
pub const DEFAULT_MAX_LOOKUPS: usize = 16;

/// A tenant's id, as located in a delivery: 1 to [`MAX_TENANT_ID_LEN`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// `id` as a tenant id; `None` when it is empty, too long or has another
    /// character.
    ///
    /// ```
    /// use hookwise_core::tenant::TenantId;
    ///
    /// assert_eq!(TenantId::new("acme-1").map(|t| t.to_string()), Some("acme-1".into()));
    /// assert!(TenantId::new("").is_none());
    /// assert!(TenantId::new("a:b").is_none());
    /// assert!(TenantId::new(&"x".repeat(65)).is_none());
    /// ```
    pub fn new(id: &str) -> Option<Self> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        let fits = !id.is_empty() && id.len() <= MAX_TENANT_ID_LEN;
        (fits && id.bytes().all(allowed)).then(|| Self(id.into()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// What is known of a delivery before its signature is checked: where it was sent,
/// its headers and its raw body. None of it is trusted yet.
#[derive(Debug, Clone, Copy)]
pub struct Unverified<'a> {
    /// The request's path, e.g. `/webhooks/hoursmith/acme` (no query).
    pub path: &'a str,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The raw body.
    pub body: &'a [u8],
}

type LocateFn = dyn Fn(&Unverified<'_>) -> Option<String> + Send + Sync;

/// Where a delivery's tenant id is read from, before verification.
#[derive(Clone)]
pub struct TenantLocator(Arc<LocateFn>);

impl TenantLocator {
    /// The path segment at `index`, counting from 0 over the non-empty segments:
    /// `path_segment(2)` reads `acme` from `/webhooks/hoursmith/acme`.
    ///
    /// ```
    /// use hookwise_core::tenant::{TenantLocator, Unverified};
    ///
    /// let headers = http::HeaderMap::new();
    /// let at = |path| Unverified { path, headers: &headers, body: b"" };
    /// let locate = TenantLocator::path_segment(2);
    /// assert_eq!(locate.locate(&at("/webhooks/hoursmith/acme")).unwrap().as_str(), "acme");
    /// assert!(locate.locate(&at("/webhooks/hoursmith")).is_none());
    /// ```
    pub fn path_segment(index: usize) -> Self {
        Self::from_fn(move |request| {
            request
                .path
                .split('/')
                .filter(|segment| !segment.is_empty())
                .nth(index)
                .map(str::to_owned)
        })
    }

    /// The value of the header `name` (one value; a repeated header locates
    /// nothing).
    pub fn header(name: HeaderName) -> Self {
        Self::from_fn(move |request| {
            let mut values = request.headers.get_all(&name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value.to_str().ok().map(str::to_owned),
                _ => None,
            }
        })
    }

    /// A string (or integer) field of the unverified JSON body, at the JSON pointer
    /// `pointer` (RFC 6901), e.g. `"/orgId"` for Hoursmith's envelope. The body is
    /// parsed for it before verification: bounded by the receiver's body limit, and
    /// only the field is used, to pick the secrets.
    ///
    /// ```
    /// use hookwise_core::tenant::{TenantLocator, Unverified};
    ///
    /// let headers = http::HeaderMap::new();
    /// let body = br#"{"id":"e1","orgId":"org_7","data":{}}"#;
    /// let request = Unverified { path: "/", headers: &headers, body };
    /// let tenant = TenantLocator::json_field("/orgId").locate(&request);
    /// assert_eq!(tenant.unwrap().as_str(), "org_7");
    /// ```
    pub fn json_field(pointer: &str) -> Self {
        let pointer = pointer.to_owned();
        Self::from_fn(move |request| {
            let value: serde_json::Value = serde_json::from_slice(request.body).ok()?;
            match value.pointer(&pointer)? {
                serde_json::Value::String(id) => Some(id.clone()),
                serde_json::Value::Number(id) if id.is_u64() || id.is_i64() => Some(id.to_string()),
                _ => None,
            }
        })
    }

    /// Your own reading, e.g. a subdomain from the `Host` header.
    pub fn from_fn(
        locate: impl Fn(&Unverified<'_>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(locate))
    }

    /// The tenant of `request`; `None` when none is found or its id is not of the
    /// allowed shape ([`TenantId::new`]).
    pub fn locate(&self, request: &Unverified<'_>) -> Option<TenantId> {
        (self.0)(request).and_then(|id| TenantId::new(&id))
    }
}

impl fmt::Debug for TenantLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantLocator")
    }
}

/// A lookup of a tenant's secrets: `Some` (current first), `None` for a tenant you
/// do not know, or an error when the lookup itself failed.
pub type SecretLookup =
    Pin<Box<dyn Future<Output = Result<Option<Vec<String>>, LookupError>> + Send>>;

/// Where a tenant's secrets come from: your database, a vault, a config file.
///
/// Implemented for every `async fn(TenantId) -> Result<Option<Vec<String>>,
/// LookupError>` (and closures returning such a future). The secrets are given as
/// the sender shows them (`whsec_...` for Standard Webhooks), current first.
pub trait SecretSource: Send + Sync + 'static {
    /// The secrets of `tenant`.
    fn secrets(&self, tenant: TenantId) -> SecretLookup;
}

impl<F, Fut> SecretSource for F
where
    F: Fn(TenantId) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Vec<String>>, LookupError>> + Send + 'static,
{
    fn secrets(&self, tenant: TenantId) -> SecretLookup {
        Box::pin(self(tenant))
    }
}

/// A lookup of secrets that failed: the delivery is answered `503` and retried.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LookupError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LookupError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// How a receiver finds a delivery's tenant and its secrets: a [`TenantLocator`], a
/// [`SecretSource`] and the bounds of the cache in front of it. Give it to
/// [`Receiver::tenants`](crate::Receiver::tenants). See the [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct Tenants {
    pub(crate) locator: TenantLocator,
    pub(crate) source: Arc<dyn SecretSource>,
    pub(crate) ttl: Duration,
    pub(crate) unknown_ttl: Duration,
    pub(crate) max_tenants: u64,
    pub(crate) max_unknown: u64,
    pub(crate) lookup_timeout: Duration,
    pub(crate) max_lookups: usize,
}

impl Tenants {
    /// Tenants located by `locator`, their secrets from `source`, with the default
    /// bounds.
    pub fn new(locator: TenantLocator, source: impl SecretSource) -> Self {
        Self {
            locator,
            source: Arc::new(source),
            ttl: DEFAULT_TTL,
            unknown_ttl: DEFAULT_UNKNOWN_TTL,
            max_tenants: DEFAULT_MAX_TENANTS,
            max_unknown: DEFAULT_MAX_TENANTS,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
            max_lookups: DEFAULT_MAX_LOOKUPS,
        }
    }

    /// How long a known tenant's secrets are kept before they are looked up again
    /// (default 5 min): a rotated secret is picked up within it.
    pub fn ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        self.ttl = positive("tenant TTL", ttl)?;
        Ok(self)
    }

    /// How long an unknown tenant is remembered as unknown (default 30 s): a new
    /// tenant is found within it, and a flood of one unknown id costs one lookup
    /// per this time.
    pub fn unknown_ttl(mut self, ttl: Duration) -> Result<Self, ConfigError> {
        self.unknown_ttl = positive("unknown tenant TTL", ttl)?;
        Ok(self)
    }

    /// The most known tenants cached (default 10,000); the least used go first.
    pub fn max_tenants(mut self, tenants: u64) -> Result<Self, ConfigError> {
        self.max_tenants = count("max tenants", tenants)?;
        Ok(self)
    }

    /// The most unknown tenants remembered (default 10,000).
    pub fn max_unknown(mut self, tenants: u64) -> Result<Self, ConfigError> {
        self.max_unknown = count("max unknown tenants", tenants)?;
        Ok(self)
    }

    /// The bound on one lookup, waiting for a turn included (default 2 s): past it
    /// the delivery is answered `503`.
    pub fn lookup_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.lookup_timeout = positive("lookup timeout", timeout)?;
        Ok(self)
    }

    /// The most lookups running at once (default 16).
    pub fn max_lookups(mut self, lookups: usize) -> Result<Self, ConfigError> {
        if lookups == 0 {
            return Err(ConfigError::Zero("max lookups"));
        }
        self.max_lookups = lookups;
        Ok(self)
    }
}

fn positive(what: &'static str, duration: Duration) -> Result<Duration, ConfigError> {
    if duration.is_zero() {
        return Err(ConfigError::Zero(what));
    }
    Ok(duration)
}

fn count(what: &'static str, n: u64) -> Result<u64, ConfigError> {
    if n == 0 {
        return Err(ConfigError::Zero(what));
    }
    Ok(n)
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("ttl", &self.ttl)
            .field("unknown_ttl", &self.unknown_ttl)
            .field("max_tenants", &self.max_tenants)
            .field("max_unknown", &self.max_unknown)
            .field("lookup_timeout", &self.lookup_timeout)
            .field("max_lookups", &self.max_lookups)
            .finish_non_exhaustive()
    }
}
