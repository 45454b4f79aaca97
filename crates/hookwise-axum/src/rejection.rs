//! [`WebhookRejection`]: why the handler did not run, as the contract's response.

use std::fmt;

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use hookwise_core::RejectionKind;
use http::StatusCode;

/// The [`Webhook`](crate::Webhook) extractor's rejection: the delivery was answered
/// without running the handler.
///
/// Either it was acknowledged with `200` (a duplicate of an event already processed
/// or in flight under a confirmed claim, or a skipped test event), or refused with the
/// contract's status and `{"error":"<code>"}` (see [`RejectionKind`]; `409`
/// `in_progress` for a redelivery of an event whose claim is still provisional). The
/// response was built, and counted, when the rejection was made.
#[derive(Debug)]
pub struct WebhookRejection {
    response: http::Response<String>,
    kind: Option<RejectionKind>,
}

impl WebhookRejection {
    pub(crate) fn acknowledged(response: http::Response<String>) -> Self {
        Self {
            response,
            kind: None,
        }
    }

    pub(crate) fn refused(kind: RejectionKind, response: http::Response<String>) -> Self {
        Self {
            response,
            kind: Some(kind),
        }
    }

    /// The status the sender is answered with.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// Why the delivery was refused; `None` when it was acknowledged with `200`.
    pub fn kind(&self) -> Option<RejectionKind> {
        self.kind
    }

    /// The response body, e.g. `{"status":"duplicate"}` or `{"error":"signature_mismatch"}`.
    pub fn body_text(&self) -> &str {
        self.response.body()
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "webhook delivery refused: {kind}"),
            None => write!(f, "webhook delivery acknowledged: {}", self.body_text()),
        }
    }
}

impl std::error::Error for WebhookRejection {}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        self.response.map(Body::from)
    }
}
