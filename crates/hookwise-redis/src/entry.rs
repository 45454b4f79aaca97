//! A queued delivery as Redis stores it: the stream entry's fields, and the request
//! head and facts that restore the delivery.
//!
//! An entry has two fields: `key`, the event's dedupe key (what the dead letters
//! list), and `delivery`, everything else packed into one value. One value instead
//! of one field per part: every string a script is given or reads back is a Lua
//! string of its own, made and hashed on each call, and the store script handles an
//! entry twice per delivery (its arguments, and the entry read back for a run where
//! it was stored). BENCHMARKS.md, section 19, has what it saves.
//!
//! Entries written before the packed form (one field per part) are still read.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use hookwise_core::{Delivery, Verified};
use hookwise_runtime::StoredHead;
use http::request::Parts;
use redis::streams::StreamId;

use crate::connection::millis;

/// The field of an entry's dedupe key.
const KEY: &str = "key";

/// The field of an entry's packed delivery.
const DELIVERY: &str = "delivery";

/// The version byte that opens a packed delivery.
const PACKED: u8 = 1;

/// The fields of an entry written one per part, before the packed form.
const SPREAD: [&str; 7] = [
    "method",
    "uri",
    "headers",
    "body",
    "secret",
    "signed_at",
    "received_ms",
];

/// The fields of a stored delivery, copied from an entry (to dead-letter or replay
/// it), in either form.
pub(crate) fn delivery_fields(entry: &StreamId) -> Vec<(String, Vec<u8>)> {
    [KEY, DELIVERY]
        .iter()
        .chain(&SPREAD)
        .filter_map(|name| entry.get::<Vec<u8>>(name).map(|v| ((*name).to_owned(), v)))
        .collect()
}

/// A stored delivery's fields, as [`entry_fields`] gives them.
pub(crate) type EntryFields = [(&'static str, Bytes); 2];

/// The fields of a stored delivery: its key, and its request head, raw body,
/// verification facts and receipt time packed into one value (what
/// [`StoredEntry::decode`] reads back).
///
/// The packed value: the version byte (1); the receipt time in ms (u64); the index
/// of the secret that verified it (u32); 1 and the signed timestamp (u64), or 0 and
/// 0 when it had none; then the method, the URI, the headers (`name: value\r\n`
/// each) and the body, each as its length (u32) and its bytes. Integers are big
/// endian.
pub(crate) fn entry_fields<E>(head: &Parts, delivery: &Delivery<E>) -> EntryFields {
    let verified = delivery.verified();
    let head = StoredHead::of(head);
    let body = delivery.raw_body();
    let parts = [
        head.method.as_bytes(),
        head.uri.as_bytes(),
        &head.headers,
        body,
    ];
    let mut packed = BytesMut::with_capacity(22 + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
    packed.put_u8(PACKED);
    packed.put_u64(millis(delivery.received_at()));
    packed.put_u32(u32::try_from(verified.secret_index()).unwrap_or(u32::MAX));
    match verified.signed_timestamp() {
        Some(t) => {
            packed.put_u8(1);
            packed.put_u64(t);
        }
        None => {
            packed.put_u8(0);
            packed.put_u64(0);
        }
    }
    for part in parts {
        // Never past u32 (a body is bounded far below 4 GiB); a length that were
        // would not match its bytes, and the entry would be read as unreadable.
        packed.put_u32(u32::try_from(part.len()).unwrap_or(u32::MAX));
        packed.put_slice(part);
    }
    [
        (
            KEY,
            Bytes::copy_from_slice(delivery.dedupe_key().as_str().as_bytes()),
        ),
        (DELIVERY, packed.freeze()),
    ]
}

/// A queued delivery read back: the request head and what restores the delivery.
#[derive(Debug)]
pub(crate) struct StoredEntry {
    pub(crate) head: Parts,
    pub(crate) body: Bytes,
    pub(crate) verified: Verified,
    pub(crate) received_at: Duration,
}

impl StoredEntry {
    /// The delivery `entry` holds, packed or one field per part; `None` when a part
    /// is missing or does not read.
    pub(crate) fn decode(entry: &StreamId) -> Option<Self> {
        match entry.get::<Vec<u8>>(DELIVERY) {
            Some(packed) => Self::unpack(Bytes::from(packed)),
            None => Self::decode_spread(entry),
        }
    }

    /// A delivery from [`entry_fields`]' packed value: all of it, and nothing after.
    fn unpack(mut packed: Bytes) -> Option<Self> {
        if packed.try_get_u8().ok()? != PACKED {
            return None;
        }
        let received_ms = packed.try_get_u64().ok()?;
        let secret = usize::try_from(packed.try_get_u32().ok()?).ok()?;
        let signed = packed.try_get_u8().ok()?;
        let signed_at = packed.try_get_u64().ok()?;
        let mut part = || {
            let len = usize::try_from(packed.try_get_u32().ok()?).ok()?;
            (packed.remaining() >= len).then(|| packed.copy_to_bytes(len))
        };
        let method = String::from_utf8(part()?.into()).ok()?;
        let uri = String::from_utf8(part()?.into()).ok()?;
        let headers = part()?.into();
        let body = part()?;
        if packed.has_remaining() {
            return None;
        }
        let verified = match signed {
            0 => Verified::new(secret),
            1 => Verified::new(secret).signed_at(signed_at),
            _ => return None,
        };
        Some(Self {
            head: StoredHead {
                method,
                uri,
                headers,
            }
            .to_parts()?,
            body,
            verified,
            received_at: Duration::from_millis(received_ms),
        })
    }

    /// A delivery from an entry written one field per part.
    fn decode_spread(entry: &StreamId) -> Option<Self> {
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
            body: Bytes::from(entry.get::<Vec<u8>>("body")?),
            verified,
            received_at: Duration::from_millis(entry.get("received_ms")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use hookwise_core::{Hoursmith, MemoryStore, Receiver, hoursmith};
    use redis::Value;

    use super::*;

    /// A signed Hoursmith delivery, verified: its request head and the delivery.
    async fn received(id: &str) -> (Parts, Delivery<hoursmith::Event>) {
        let provider = Hoursmith::new(hookwise_test_support::HOURSMITH_SECRET).expect("secret");
        let receiver = Receiver::new(provider, MemoryStore::new()).expect("config");
        let signed = hookwise_test_support::hoursmith(id);
        let mut request = http::Request::post("/webhooks/hoursmith?x=1")
            .header("content-type", "application/json")
            .body(())
            .expect("request");
        request.headers_mut().extend(signed.headers);
        let (head, ()) = request.into_parts();
        let delivery = receiver
            .verify_at("/webhooks/hoursmith", &head.headers, signed.body)
            .await
            .expect("a valid delivery");
        (head, delivery)
    }

    fn stream_entry(fields: &[(&str, Bytes)]) -> StreamId {
        StreamId {
            id: "1-0".to_owned(),
            map: fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Value::BulkString(value.to_vec())))
                .collect::<HashMap<_, _>>(),
            ..StreamId::default()
        }
    }

    #[tokio::test]
    async fn a_packed_delivery_reads_back_as_it_was_received() {
        let (head, delivery) = received("evt_packed").await;
        let fields = entry_fields(&head, &delivery);
        assert_eq!(fields.clone().map(|(name, _)| name), [KEY, DELIVERY]);
        assert_eq!(&fields[0].1[..], delivery.dedupe_key().as_str().as_bytes());

        let stored = StoredEntry::decode(&stream_entry(&fields)).expect("reads back");
        assert_eq!(stored.head.method, head.method);
        assert_eq!(stored.head.uri, head.uri);
        assert_eq!(stored.head.headers, head.headers);
        assert_eq!(stored.body, *delivery.raw_body());
        assert_eq!(stored.verified, *delivery.verified());
        assert_eq!(
            stored.received_at.as_millis(),
            delivery.received_at().as_millis()
        );
    }

    #[tokio::test]
    async fn a_packed_delivery_cut_short_or_with_bytes_after_it_does_not_read() {
        let (head, delivery) = received("evt_cut").await;
        let [key, (_, packed)] = entry_fields(&head, &delivery);
        for len in 0..packed.len() {
            let cut = stream_entry(&[key.clone(), (DELIVERY, packed.slice(..len))]);
            assert!(StoredEntry::decode(&cut).is_none(), "read with {len} bytes");
        }
        let mut longer = packed.to_vec();
        longer.push(0);
        let longer = stream_entry(&[key.clone(), (DELIVERY, Bytes::from(longer))]);
        assert!(StoredEntry::decode(&longer).is_none());
        let mut other_version = packed.to_vec();
        other_version[0] = 2;
        let other_version = stream_entry(&[key, (DELIVERY, Bytes::from(other_version))]);
        assert!(StoredEntry::decode(&other_version).is_none());
    }

    #[tokio::test]
    async fn an_entry_written_one_field_per_part_still_reads() {
        let (head, delivery) = received("evt_spread").await;
        let stored_head = StoredHead::of(&head);
        let spread = [
            ("key", Bytes::from_static(b"hoursmith:evt_spread")),
            ("method", Bytes::from(stored_head.method)),
            ("uri", Bytes::from(stored_head.uri)),
            ("headers", Bytes::from(stored_head.headers)),
            ("body", delivery.raw_body().clone()),
            ("secret", Bytes::from_static(b"0")),
            ("signed_at", Bytes::from_static(b"1764000000")),
            ("received_ms", Bytes::from_static(b"1764000000123")),
        ];
        let entry = stream_entry(&spread);
        let stored = StoredEntry::decode(&entry).expect("reads back");
        assert_eq!(stored.head.headers, head.headers);
        assert_eq!(stored.body, *delivery.raw_body());
        assert_eq!(stored.verified, Verified::new(0).signed_at(1_764_000_000));
        assert_eq!(stored.received_at, Duration::from_millis(1_764_000_000_123));
        // Dead-lettered or replayed, it keeps every field it has.
        let copied = delivery_fields(&entry);
        assert_eq!(copied.len(), spread.len());
    }
}
