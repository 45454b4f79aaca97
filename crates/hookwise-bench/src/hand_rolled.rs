//! The load benchmark's second baseline (`--baseline hand-rolled`): the least a
//! receiver of the same contract must do, written directly on the crates hookwise
//! uses, without hookwise.
//!
//! It reads the body, finds `t` and the first `v1` in `Hoursmith-Signature`, checks
//! the timestamp against a 300 s tolerance, verifies the HMAC-SHA256 of `t.body` in
//! constant time (`hmac`'s `verify_slice`), parses the envelope into a typed struct
//! (`serde_json`), claims the event id in a `DashMap`, spawns the (empty) handler for
//! a new event and answers `200` with the same JSON body as the layer.
//!
//! What it leaves out is what `WebhookLayer` adds on top of that work, and what this
//! baseline is there to price: a body limit and read timeout, a bounded store with
//! retention and eviction, claims released when the handler cannot be queued,
//! bounded background work with retries, a handler timeout, panic capture and dead
//! letters, drain on shutdown, the full header rules (several `v1`, rotation),
//! typed events per type with a snapshot, stats and tracing spans.

use std::{hint::black_box, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::post,
};
use dashmap::DashMap;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::now_secs;

/// How far `t` may be from now, either way.
const TOLERANCE_SECS: u64 = 300;

/// The receiver's state: the keyed HMAC (cloned per request, as the layer does) and
/// the event ids seen.
#[derive(Clone)]
pub struct HandRolled {
    key: Hmac<Sha256>,
    seen: Arc<DashMap<String, ()>>,
}

impl std::fmt::Debug for HandRolled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the key.
        f.debug_struct("HandRolled")
            .field("seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl HandRolled {
    /// A receiver for deliveries signed with `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key"),
            seen: Arc::new(DashMap::new()),
        }
    }

    /// An axum router that takes deliveries at `path` with this receiver.
    pub fn router(self, path: &str) -> Router {
        Router::new().route(path, post(receive)).with_state(self)
    }
}

/// The envelope's fields, typed; `data` kept as JSON.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) created: u64,
    #[serde(rename = "orgId")]
    pub(crate) org_id: String,
    pub(crate) livemode: bool,
    pub(crate) data: serde_json::Value,
}

/// The axum handler: verify, parse, claim, spawn, answer.
pub async fn receive(
    State(receiver): State<HandRolled>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let event = match verified_event(&receiver.key, &headers, &body) {
        Ok(event) => event,
        Err((status, body)) => return refuse(status, body),
    };
    if receiver.seen.insert(event.id.clone(), ()).is_some() {
        return answer(r#"{"status":"duplicate"}"#);
    }
    tokio::spawn(async move {
        black_box((&event.kind, event.created, &event.org_id, event.livemode));
        black_box(&event.data);
    });
    answer(r#"{"status":"accepted"}"#)
}

/// The contract's checks, in its order: the signature header, the timestamp's
/// tolerance, the HMAC of `t.body` (constant time), then the envelope; otherwise
/// the status and body of the refusal ([`refuse`]).
pub(crate) fn verified_event(
    key: &Hmac<Sha256>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Envelope, Refusal> {
    const MALFORMED: Refusal = (
        StatusCode::UNAUTHORIZED,
        r#"{"error":"signature_malformed"}"#,
    );
    let (t, signature) = headers
        .get("hoursmith-signature")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_header)
        .ok_or(MALFORMED)?;
    let timestamp = t.parse::<u64>().map_err(|_| MALFORMED)?;
    if now_secs().abs_diff(timestamp) > TOLERANCE_SECS {
        return Err((
            StatusCode::UNAUTHORIZED,
            r#"{"error":"timestamp_out_of_tolerance"}"#,
        ));
    }
    let mut mac = key.clone();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| {
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"signature_mismatch"}"#,
        )
    })?;
    serde_json::from_slice::<Envelope>(body)
        .map_err(|_| (StatusCode::BAD_REQUEST, r#"{"error":"invalid_payload"}"#))
}

/// A refusal's status and JSON body.
pub(crate) type Refusal = (StatusCode, &'static str);

/// `t` and the first `v1`, decoded; `None` when either is missing or malformed.
fn parse_header(value: &str) -> Option<(&str, [u8; 32])> {
    let (mut t, mut v1) = (None, None);
    for item in value.split(',') {
        match item.trim().split_once('=')? {
            ("t", text) => t = Some(text),
            ("v1", hex) if v1.is_none() => v1 = Some(decode_hex(hex)?),
            _ => {}
        }
    }
    Some((t?, v1?))
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

pub(crate) fn answer(body: &'static str) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

pub(crate) fn refuse(status: StatusCode, body: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HOURSMITH_SECRET, KIB, event_id, hoursmith_body, hoursmith_headers};

    async fn status(receiver: &HandRolled, headers: HeaderMap, body: Bytes) -> StatusCode {
        receive(State(receiver.clone()), headers, body)
            .await
            .status()
    }

    #[tokio::test]
    async fn accepts_once_and_refuses_what_the_layer_refuses() {
        let receiver = HandRolled::new(HOURSMITH_SECRET.as_bytes());
        let now = now_secs();
        let body = hoursmith_body(&event_id(1, 1), now, KIB);
        let headers = hoursmith_headers(&body, now);
        assert_eq!(
            status(&receiver, headers.clone(), body.clone()).await,
            StatusCode::OK
        );
        assert_eq!(receiver.seen.len(), 1);
        // A retry is answered 200 and not claimed again.
        assert_eq!(
            status(&receiver, headers.clone(), body.clone()).await,
            StatusCode::OK
        );
        assert_eq!(receiver.seen.len(), 1);

        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            status(&receiver, headers.clone(), tampered.into()).await,
            StatusCode::UNAUTHORIZED
        );
        let old = now - TOLERANCE_SECS - 1;
        assert_eq!(
            status(&receiver, hoursmith_headers(&body, old), body.clone()).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&receiver, HeaderMap::new(), body).await,
            StatusCode::UNAUTHORIZED
        );
        let not_json = Bytes::from_static(b"not json");
        assert_eq!(
            status(&receiver, hoursmith_headers(&not_json, now), not_json).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(receiver.seen.len(), 1, "nothing refused was claimed");
    }

    #[test]
    fn header_parsing_takes_t_and_the_first_v1() {
        let v1 = "ab".repeat(32);
        let value = format!("t=5, v0=zz, v1={v1}, v1={}", "00".repeat(32));
        assert_eq!(parse_header(&value), Some(("5", [0xab; 32])));
        assert_eq!(parse_header("t=5"), None);
        assert_eq!(parse_header(&format!("v1={v1}")), None);
        assert_eq!(parse_header(&format!("t=5,v1={}", "g".repeat(64))), None);
        assert_eq!(parse_header("t=5,v1"), None);
    }
}
