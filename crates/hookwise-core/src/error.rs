//! Why a delivery was refused, and why a configuration was.
//!
//! A [`Rejection`] carries a [`RejectionKind`], which fixes the HTTP status and the
//! stable error code of the receiver contract. Every adapter answers with
//! [`Rejection::status`] and [`Rejection::body`], so the contract lives here once.

use crate::diagnosis::Diagnosis;
use std::{borrow::Cow, fmt, time::Duration};

use http::StatusCode;

/// The reason a delivery was refused. Fixes the status and the error code.
///
/// | kind | status | code |
/// | --- | --- | --- |
/// | [`PayloadTooLarge`](Self::PayloadTooLarge) | 413 | `payload_too_large` |
/// | [`SignatureMissing`](Self::SignatureMissing) | 401 | `signature_missing` |
/// | [`SignatureMalformed`](Self::SignatureMalformed) | 401 | `signature_malformed` |
/// | [`SignatureMismatch`](Self::SignatureMismatch) | 401 | `signature_mismatch` |
/// | [`TimestampTooOld`](Self::TimestampTooOld) | 401 | `timestamp_too_old` |
/// | [`TimestampTooNew`](Self::TimestampTooNew) | 401 | `timestamp_too_new` |
/// | [`InvalidPayload`](Self::InvalidPayload) | 400 | `invalid_payload` |
/// | [`BodyUnreadable`](Self::BodyUnreadable) | 400 | `body_unreadable` |
/// | [`BodyTimeout`](Self::BodyTimeout) | 408 | `body_timeout` |
/// | [`StoreUnavailable`](Self::StoreUnavailable) | 503 | `store_unavailable` |
/// | [`QueueFull`](Self::QueueFull) | 503 | `queue_full` |
/// | [`ShuttingDown`](Self::ShuttingDown) | 503 | `shutting_down` |
/// | [`HandlerFailed`](Self::HandlerFailed) | 500 | `handler_failed` |
/// | [`InProgress`](Self::InProgress) | 409 | `in_progress` |
/// | [`MethodNotAllowed`](Self::MethodNotAllowed) | 405 | `method_not_allowed` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The signature header is absent (or empty).
    SignatureMissing,
    /// The signature header is present but not in the provider's format.
    SignatureMalformed,
    /// No signature matches the body under any configured secret.
    SignatureMismatch,
    /// The signed (or payload) timestamp is older than the tolerance or max age.
    TimestampTooOld,
    /// The signed (or payload) timestamp is further in the future than the tolerance.
    TimestampTooNew,
    /// The body verified but is not the provider's envelope.
    InvalidPayload,
    /// The body could not be read (the client broke off, or sent a broken encoding).
    BodyUnreadable,
    /// The body did not arrive within the read timeout (a stalled client).
    BodyTimeout,
    /// The dedupe store could not be reached; the sender should retry.
    StoreUnavailable,
    /// The processing queue is full; the sender should retry.
    QueueFull,
    /// The receiver is shutting down; the sender should retry.
    ShuttingDown,
    /// The handler failed while the sender waited for it (ack-after-handler mode).
    HandlerFailed,
    /// Another delivery of the same event holds a claim that is not confirmed yet:
    /// its request may still fail (or its claim's reply was lost), so this one is
    /// not acknowledged; the sender should retry. See
    /// [`Duplicate::Provisional`](crate::Duplicate::Provisional).
    InProgress,
    /// The request is not a `POST`, the method every provider delivers with. Refused
    /// before anything is read or verified, with `Allow: POST`.
    MethodNotAllowed,
    /// The secrets of the delivery's tenant could not be looked up (the
    /// [`SecretSource`](crate::tenant::SecretSource) failed or timed out); the sender
    /// should retry.
    SecretsUnavailable,
}

impl RejectionKind {
    /// The HTTP status of the receiver contract for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::SignatureMissing
            | Self::SignatureMalformed
            | Self::SignatureMismatch
            | Self::TimestampTooOld
            | Self::TimestampTooNew => StatusCode::UNAUTHORIZED,
            Self::InvalidPayload | Self::BodyUnreadable => StatusCode::BAD_REQUEST,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::StoreUnavailable
            | Self::QueueFull
            | Self::ShuttingDown
            | Self::SecretsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::HandlerFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InProgress => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The stable, machine-readable error code sent in the response body.
    pub fn code(self) -> &'static str {
        match self {
            Self::PayloadTooLarge => "payload_too_large",
            Self::SignatureMissing => "signature_missing",
            Self::SignatureMalformed => "signature_malformed",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
            Self::InvalidPayload => "invalid_payload",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::StoreUnavailable => "store_unavailable",
            Self::QueueFull => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::HandlerFailed => "handler_failed",
            Self::InProgress => "in_progress",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::SecretsUnavailable => "secrets_unavailable",
        }
    }

    /// This kind's position in [`ALL`](Self::ALL), for per-kind counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Every kind, in declaration order (for tables, metrics and tests).
    pub const ALL: [Self; 16] = [
        Self::PayloadTooLarge,
        Self::SignatureMissing,
        Self::SignatureMalformed,
        Self::SignatureMismatch,
        Self::TimestampTooOld,
        Self::TimestampTooNew,
        Self::InvalidPayload,
        Self::BodyUnreadable,
        Self::BodyTimeout,
        Self::StoreUnavailable,
        Self::QueueFull,
        Self::ShuttingDown,
        Self::HandlerFailed,
        Self::InProgress,
        Self::MethodNotAllowed,
        Self::SecretsUnavailable,
    ];
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How long a sender is asked to wait before retrying a 503.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long a sender is asked to wait before retrying a 409 `in_progress`: the
/// other delivery is usually decided within seconds.
const RETRY_IN_PROGRESS: Duration = Duration::from_secs(10);

/// A delivery the receiver refused: the contract's status, code, and a detail for logs.
///
/// The detail never holds a secret or an expected signature, and it is not sent to the
/// client: the response body is only the stable code.
///
/// ```
/// use hookwise_core::{Rejection, RejectionKind};
///
/// let rejection = Rejection::new(RejectionKind::SignatureMismatch);
/// assert_eq!(rejection.status(), 401);
/// assert_eq!(rejection.body(), r#"{"error":"signature_mismatch"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    detail: Option<Cow<'static, str>>,
    diagnoses: Vec<Diagnosis>,
}

impl Rejection {
    /// A rejection of this kind, without detail.
    pub fn new(kind: RejectionKind) -> Self {
        Self {
            kind,
            detail: None,
            diagnoses: Vec::new(),
        }
    }

    /// Adds a finding about why it was refused, for logs and `Stats` (never sent to
    /// the client).
    #[must_use]
    pub fn with_diagnosis(mut self, diagnosis: Diagnosis) -> Self {
        self.diagnoses.push(diagnosis);
        self
    }

    /// What is known of why it was refused: the clock skew of a timestamp
    /// rejection, and with [`Receiver::diagnostics`](crate::Receiver::diagnostics)
    /// the likely causes of a mismatch. For logs, never for the client.
    pub fn diagnoses(&self) -> &[Diagnosis] {
        &self.diagnoses
    }

    /// Adds a human-readable detail for logs (never sent to the client).
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Why the delivery was refused.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The detail for logs, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The stable error code, e.g. `signature_mismatch`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The `Retry-After` to send with a 503 or a 409 `in_progress`, `None` for other
    /// statuses.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER),
            StatusCode::CONFLICT => Some(RETRY_IN_PROGRESS),
            _ => None,
        }
    }

    /// The JSON response body: `{"error":"<code>"}`.
    pub fn body(&self) -> String {
        // Codes are fixed ASCII identifiers, so no escaping is needed.
        format!(r#"{{"error":"{}"}}"#, self.code())
    }

    /// The complete HTTP response of the contract, for adapters.
    ///
    /// Status, `content-type: application/json`, `Retry-After` for 503 and 409,
    /// `Allow: POST` for 405, and
    /// [`body`](Self::body). Adapters convert the body into their own type.
    pub fn to_response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.body());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(after) = self.retry_after() {
            headers.insert(http::header::RETRY_AFTER, after.as_secs().into());
        }
        if self.kind == RejectionKind::MethodNotAllowed {
            headers.insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        }
        response
    }
}

impl From<RejectionKind> for Rejection {
    fn from(kind: RejectionKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for Rejection {}

/// A configuration the receiver refuses to be built with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secret was empty: every signature would be forgeable by anyone.
    #[error("webhook secret is empty")]
    EmptySecret,
    /// A secret is not in the form its provider requires (e.g. a Standard Webhooks
    /// secret that is not base64). The reason never quotes the secret.
    #[error("webhook secret is invalid: {0}")]
    InvalidSecret(&'static str),
    /// No secret was given at all.
    #[error("at least one webhook secret is required")]
    NoSecrets,
    /// One delivery of this provider can verify for longer than the dedupe store
    /// remembers it, so a replay could be processed twice.
    #[error(
        "one {provider} delivery verifies during {window:?}, longer than the dedupe \
         retention of {retention:?}: a replay could be processed twice"
    )]
    ReplayWindowExceedsRetention {
        /// The provider's name.
        provider: &'static str,
        /// The whole window of receiver time in which one delivery verifies
        /// ([`Provider::replay_window`](crate::Provider::replay_window)).
        window: Duration,
        /// How long the dedupe store remembers a processed event.
        retention: Duration,
    },
    /// A size, count or duration that must be positive was zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A duration is shorter than the store or the receiver can honour (e.g. a
    /// lease under a millisecond, which would round to nothing).
    #[error("{what} of {given:?} is shorter than the minimum of {minimum:?}")]
    TooShort {
        /// The setting.
        what: &'static str,
        /// The value given.
        given: Duration,
        /// The shortest value accepted.
        minimum: Duration,
    },
    /// Two settings that cannot work together, e.g. ack-after-handler mode with a
    /// durable queue, which the mode would never use.
    #[error("{0}")]
    Conflict(&'static str),
    /// A name that cannot be used: a handler name that is empty, too long, has a
    /// character other than ASCII letters, digits, `-`, `_` and `.` (it becomes part
    /// of store keys), is registered twice or is not registered; a database schema
    /// name that is not a plain identifier.
    #[error("{what} {name:?}: {reason}")]
    InvalidName {
        /// What the name names (`"handler name"`, `"Postgres schema"`).
        what: &'static str,
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A provider that cannot take per-tenant secrets
    /// ([`Provider::for_tenant`](crate::Provider::for_tenant) is not implemented).
    #[error("the {0} provider cannot verify with per-tenant secrets")]
    TenantsUnsupported(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_statuses_follow_the_contract() {
        for (i, kind) in RejectionKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "ALL is in declaration order");
        }
        let mut codes: Vec<_> = RejectionKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectionKind::ALL.len());
        for kind in RejectionKind::ALL {
            let status = kind.status().as_u16();
            assert!(
                matches!(status, 400 | 401 | 405 | 408 | 409 | 413 | 500 | 503),
                "{kind}: {status}"
            );
        }
    }

    #[test]
    fn response_has_json_body_and_retry_after_only_for_503_and_409() {
        let busy = Rejection::new(RejectionKind::QueueFull).to_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()[http::header::RETRY_AFTER], "60");
        assert_eq!(busy.body(), r#"{"error":"queue_full"}"#);

        let in_progress = Rejection::new(RejectionKind::InProgress).to_response();
        assert_eq!(in_progress.status(), 409);
        assert_eq!(in_progress.headers()[http::header::RETRY_AFTER], "10");
        assert_eq!(in_progress.body(), r#"{"error":"in_progress"}"#);

        let get = Rejection::new(RejectionKind::MethodNotAllowed).to_response();
        assert_eq!(get.status(), 405);
        assert_eq!(get.headers()[http::header::ALLOW], "POST");
        assert!(get.headers().get(http::header::RETRY_AFTER).is_none());

        let forged = Rejection::new(RejectionKind::SignatureMismatch)
            .with_detail("no v1 matched")
            .to_response();
        assert_eq!(forged.status(), 401);
        assert!(forged.headers().get(http::header::RETRY_AFTER).is_none());
        assert_eq!(
            forged.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        assert_eq!(forged.body(), r#"{"error":"signature_mismatch"}"#);
    }
}
