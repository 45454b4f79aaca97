//! A queued delivery as Redis stores it: the stream entry's fields, and the request
//! head and facts that restore the delivery.

use std::{str::FromStr, time::Duration};

use hookwise_core::Verified;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, request::Parts};
use redis::streams::StreamId;

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

/// Encodes headers as `name: value\r\n` lines: header values never hold CR or LF.
pub(crate) fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode_headers(bytes: &[u8]) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|b| *b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line[colon + 1..].strip_prefix(b" ")?).ok()?;
        headers.append(name, value);
    }
    Some(headers)
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
        let method = Method::from_str(&entry.get::<String>("method")?).ok()?;
        let uri = Uri::from_str(&entry.get::<String>("uri")?).ok()?;
        let headers = decode_headers(&entry.get::<Vec<u8>>("headers")?)?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let (head, ()) = request.into_parts();
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
