//! Signed Hoursmith and Mojave deliveries.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hookwise_core::sign;
use http::HeaderMap;

/// The Hoursmith signing secret of the deliveries made here.
pub const HOURSMITH_SECRET: &str = "whsec_hoursmith_test";
/// The Mojave signing secret of the deliveries made here.
pub const MOJAVE_SECRET: &str = "mojave_test_secret";

/// The Unix time now, in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A signed delivery: headers and body.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The signature headers.
    pub headers: HeaderMap,
    /// The body, as signed.
    pub body: Bytes,
}

/// The body of a Hoursmith event `id` of type `event_type`, created now, with
/// `data` (JSON) as its `data`.
pub fn hoursmith_body(id: &str, event_type: &str, data: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","type":"{event_type}","created":{},"orgId":"00000000-0000-0000-0000-000000000000","livemode":true,"data":{data}}}"#,
        now()
    ))
}

/// `body` signed with [`HOURSMITH_SECRET`] at Unix time `t`.
pub fn hoursmith_signed(body: Bytes, t: u64) -> Delivery {
    let mut headers = HeaderMap::new();
    sign::hoursmith(HOURSMITH_SECRET.as_bytes(), t, &body).insert_into(&mut headers);
    Delivery { headers, body }
}

/// A valid `task.created` Hoursmith delivery with event id `id`, signed now.
pub fn hoursmith(id: &str) -> Delivery {
    hoursmith_signed(
        hoursmith_body(id, "task.created", r#"{"task":{"id":"t_1"}}"#),
        now(),
    )
}

/// `body` signed with [`MOJAVE_SECRET`].
pub fn mojave_signed(body: Bytes) -> Delivery {
    let mut headers = HeaderMap::new();
    sign::mojave(MOJAVE_SECRET.as_bytes(), &body).insert_into(&mut headers);
    Delivery { headers, body }
}

/// A valid `invoice.paid` Mojave delivery; `n` makes the body (and key) distinct.
pub fn mojave(n: u64) -> Delivery {
    mojave_signed(Bytes::from(format!(
        r#"{{"type":"invoice.paid","timestamp":{},"data":{{"id":"inv_{n}"}}}}"#,
        now()
    )))
}
