//! A queued delivery as Redis stores it: the stream entry's fields, and the request
//! head and facts that restore the delivery.

use std::time::Duration;

use bytes::Bytes;

use hookwise_core::{Delivery, Verified};
use hookwise_runtime::StoredHead;
use http::request::Parts;
use redis::streams::StreamId;

use crate::connection::millis;

/// The fields of a queued delivery.
pub(crate) const ENTRY_FIELDS: [&str; 8] = [
    "key",
    "method",
    "uri",
    "headers",
    "body",
    "secret",
    "signed_at",
    "received_ms",
];

/// The fields of a stored delivery, copied from an entry (to dead-letter or replay it).
pub(crate) fn delivery_fields(entry: &StreamId) -> Vec<(String, Vec<u8>)> {
    ENTRY_FIELDS
        .iter()
        .filter_map(|name| entry.get::<Vec<u8>>(name).map(|v| ((*name).to_owned(), v)))
        .collect()
}

/// A stored delivery's fields, as [`entry_fields`] gives them.
pub(crate) type EntryFields = [(&'static str, Bytes); 8];

/// The fields of a stored delivery, named [`ENTRY_FIELDS`] in that order: its key,
/// its request head, raw body, verification facts and receipt time (what
/// [`StoredEntry::decode`] reads back).
pub(crate) fn entry_fields<E>(head: &Parts, delivery: &Delivery<E>) -> EntryFields {
    let verified = delivery.verified();
    let signed_at = verified
        .signed_timestamp()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let head = StoredHead::of(head);
    [
        (
            "key",
            Bytes::copy_from_slice(delivery.dedupe_key().as_str().as_bytes()),
        ),
        ("method", head.method.into()),
        ("uri", head.uri.into()),
        ("headers", head.headers.into()),
        // Shared, not copied: written once, into the script call.
        ("body", delivery.raw_body().clone()),
        ("secret", verified.secret_index().to_string().into()),
        ("signed_at", signed_at.into()),
        (
            "received_ms",
            millis(delivery.received_at()).to_string().into(),
        ),
    ]
}

/// A queued delivery read back: the request head and what restores the delivery.
pub(crate) struct StoredEntry {
    pub(crate) head: Parts,
    pub(crate) body: bytes::Bytes,
    pub(crate) verified: Verified,
    pub(crate) received_at: Duration,
}

impl StoredEntry {
    pub(crate) fn decode(entry: &StreamId) -> Option<Self> {
        let head = StoredHead {
            method: entry.get("method")?,
            uri: entry.get("uri")?,
            headers: entry.get("headers")?,
        }
        .to_parts()?;
        let mut verified = Verified::new(entry.get("secret")?);
        if let Some(t) = entry
            .get::<String>("signed_at")
            .and_then(|t| t.parse().ok())
        {
            verified = verified.signed_at(t);
        }
        Some(Self {
            head,
            body: bytes::Bytes::from(entry.get::<Vec<u8>>("body")?),
            verified,
            received_at: Duration::from_millis(entry.get("received_ms")?),
        })
    }
}
