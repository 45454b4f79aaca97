//! Fixtures shared by hookwise's benchmarks: realistic signed deliveries of an exact
//! size, and a way to drive the in-memory store's futures without a runtime.
//!
//! The benchmarks themselves are the package's targets:
//!
//! | target | what it measures | command |
//! | --- | --- | --- |
//! | `benches/verify.rs` | signature verification next to raw HMAC-SHA256, header and envelope parsing | `cargo bench -p hookwise-bench --bench verify` |
//! | `benches/dedupe.rs` | `MemoryStore` claim + commit, one thread and two contending | `cargo bench -p hookwise-bench --bench dedupe` |
//! | `benches/receive.rs` | `Receiver::receive` for one whole delivery | `cargo bench -p hookwise-bench --bench receive` |
//! | `src/main.rs` | loopback load: bare axum route vs the same route behind `WebhookLayer` | `cargo run --release -p hookwise-bench -- --seconds 10` |
//! | `src/main.rs` with `--baseline hand-rolled` | the same, against [`hand_rolled`]: the contract's work written without hookwise | `cargo run --release -p hookwise-bench -- --seconds 10 --baseline hand-rolled` |
//! | `src/main.rs` with `--baseline hand-guarded` | the same, against [`hand_guarded`]: the hand-rolled receiver with the layer's guarantees written by hand (bounded retention, bounded background work, retries, timeouts, panics caught, dead letters, drain) | `cargo run --release -p hookwise-bench -- --seconds 10 --baseline hand-guarded` |
//! | `src/main.rs` with `--contender hand-guarded` or `--contender endpoint` | server B the guarded receiver (against `--baseline hand-rolled`: what the guarantees cost written by hand) or `WebhookEndpoint` in memory with a named handler (against `--baseline layer`: what calling the wrapped route costs) | `cargo run --release -p hookwise-bench -- --seconds 10 --baseline layer --contender endpoint` |
//! | `src/main.rs` with `--store`, `--queue` | the layer in memory against hookwise on Redis or Postgres (a server started for the run) | `cargo run --release -p hookwise-bench -- --seconds 10 --baseline layer --store redis --queue redis` |
//! | `src/bin/memory.rs` | resident bytes per key of `MemoryStore` at 1,000,000 keys | `cargo run --release -p hookwise-bench --bin memory` |
//! | `src/bin/layer_path.rs` | the layer's whole path in one process, for instruction counts (`--hand-rolled`, `--hand-guarded`: the hand-written receivers'; `--endpoint`: `WebhookEndpoint` in memory) | `valgrind --tool=callgrind target/release/layer_path --requests 5000` |
//!
//! `BENCHMARKS.md` at the repository root has the numbers and how to read them.

#![forbid(unsafe_code)]

pub mod hand_guarded;
pub mod hand_rolled;

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{BufMut, Bytes, BytesMut};
use hookwise_core::{github, sign};
use http::{HeaderMap, HeaderValue};

/// The Hoursmith secret every benchmark signs and verifies with.
pub const HOURSMITH_SECRET: &str = "whsec_bench_hoursmith_secret";

/// The Mojave secret every benchmark signs and verifies with.
pub const MOJAVE_SECRET: &str = "mojave_bench_secret";

/// The Stripe secret every benchmark signs and verifies with.
pub const STRIPE_SECRET: &str = "whsec_bench_stripe_secret";

/// The GitHub secret every benchmark signs and verifies with.
pub const GITHUB_SECRET: &str = "bench github secret";

/// The Standard Webhooks secret every benchmark signs and verifies with, as the
/// sender shows it (`whsec_` and the key in base64: "bench standard webhooks key").
pub const STANDARD_WEBHOOKS_SECRET: &str = "whsec_YmVuY2ggc3RhbmRhcmQgd2ViaG9va3Mga2V5";

/// One kibibyte: the size of a typical delivery in these benchmarks.
pub const KIB: usize = 1024;

/// The current Unix time in seconds (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A unique, UUID-shaped event id for the `n`th event of a run tagged `run`.
pub fn event_id(run: u32, n: u64) -> String {
    format!(
        "{run:08x}-{:04x}-4000-8000-{:012x}",
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff
    )
}

/// A `task.created` Hoursmith envelope with event id `id`, padded (inside the task
/// snapshot's `notes`) to exactly `size` bytes, or to its natural size when `size`
/// is smaller than that.
pub fn hoursmith_body(id: &str, created: u64, size: usize) -> Bytes {
    const HEAD_1: &str = r#"{"id":""#;
    const HEAD_2: &str = r#"","type":"task.created","created":"#;
    const HEAD_3: &str = r#","orgId":"00000000-0000-0000-0000-000000000000","livemode":true,"data":{"task":{"id":"task_1","project":"proj_1","notes":""#;
    let created = created.to_string();
    padded(&[HEAD_1, id, HEAD_2, &created, HEAD_3], r#""}}}"#, size)
}

/// An `invoice.paid` Mojave payload made distinct by `n`, padded to exactly `size`
/// bytes (or its natural size when `size` is smaller).
pub fn mojave_body(n: u64, timestamp: u64, size: usize) -> Bytes {
    let head = format!(
        r#"{{"type":"invoice.paid","timestamp":{timestamp},"data":{{"id":"inv_{n}","memo":""#
    );
    padded(&[&head], r#""}}"#, size)
}

/// An `invoice.paid` Stripe event made distinct by `n`, padded (inside the invoice's
/// `description`) to exactly `size` bytes, or its natural size.
pub fn stripe_body(n: u64, created: u64, size: usize) -> Bytes {
    let head = format!(
        r#"{{"id":"evt_{n}","object":"event","type":"invoice.paid","created":{created},"livemode":false,"api_version":"2024-06-20","data":{{"object":{{"id":"in_{n}","object":"invoice","description":""#
    );
    padded(&[&head], r#""}}}"#, size)
}

/// An `issues` GitHub payload (`action` `opened`) made distinct by `n`, padded
/// (inside the issue's `body`) to exactly `size` bytes, or its natural size.
pub fn github_body(n: u64, size: usize) -> Bytes {
    let head = format!(r#"{{"action":"opened","issue":{{"number":{n},"body":""#);
    padded(&[&head], r#""}}"#, size)
}

/// A Standard Webhooks message made distinct by `n`, padded to exactly `size` bytes,
/// or its natural size: Mojave's payload ([`mojave_body`]), since Standard Webhooks
/// leaves the payload's shape to the sender.
pub fn standard_webhooks_body(n: u64, timestamp: u64, size: usize) -> Bytes {
    mojave_body(n, timestamp, size)
}

/// `head`'s parts, then `x` up to `size` bytes in all, then `tail`: a JSON document of
/// an exact size when the padding falls inside a string.
fn padded(head: &[&str], tail: &str, size: usize) -> Bytes {
    let fixed = head.iter().map(|part| part.len()).sum::<usize>() + tail.len();
    let mut body = BytesMut::with_capacity(size.max(fixed));
    for part in head {
        body.put_slice(part.as_bytes());
    }
    body.put_bytes(b'x', size.saturating_sub(fixed));
    body.put_slice(tail.as_bytes());
    body.freeze()
}

/// The headers Hoursmith sends with `body`, signed at `t` with [`HOURSMITH_SECRET`].
pub fn hoursmith_headers(body: &[u8], t: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::hoursmith(HOURSMITH_SECRET.as_bytes(), t, body).insert_into(&mut headers);
    headers
}

/// The headers Mojave sends with `body`, signed with [`MOJAVE_SECRET`].
pub fn mojave_headers(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::mojave(MOJAVE_SECRET.as_bytes(), body).insert_into(&mut headers);
    headers
}

/// The headers Stripe sends with `body`, signed at `t` with [`STRIPE_SECRET`].
pub fn stripe_headers(body: &[u8], t: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::stripe(STRIPE_SECRET.as_bytes(), t, body).insert_into(&mut headers);
    headers
}

/// The headers GitHub sends with `body` as delivery `n` of an `issues` event, signed
/// with [`GITHUB_SECRET`].
pub fn github_headers(body: &[u8], n: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::github(GITHUB_SECRET.as_bytes(), body).insert_into(&mut headers);
    let delivery = format!("72d3162e-cc78-11e3-81ab-{n:012x}");
    headers.insert(
        github::DELIVERY_HEADER,
        HeaderValue::from_str(&delivery).expect("ASCII"),
    );
    headers.insert(github::EVENT_HEADER, HeaderValue::from_static("issues"));
    headers
}

/// The headers a Standard Webhooks sender sends with `body` as message `n`, signed at
/// `t` with [`STANDARD_WEBHOOKS_SECRET`].
pub fn standard_webhooks_headers(body: &[u8], n: u64, t: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    sign::standard_webhooks(STANDARD_WEBHOOKS_SECRET, &format!("msg_{n}"), t, body)
        .expect("a valid secret")
        .insert_into(&mut headers);
    headers
}

/// Polls `future` once and returns its output.
///
/// For futures that never wait, like [`MemoryStore`](hookwise_core::MemoryStore)'s and
/// [`Receiver::receive`](hookwise_core::Receiver::receive) over it: measuring them
/// without a runtime keeps the scheduler out of the numbers.
///
/// # Panics
///
/// When the future is not ready on its first poll.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the benchmarked future waited; it must complete at once"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_requested_size_and_parse() {
        for size in [KIB, 64 * KIB] {
            let body = hoursmith_body(&event_id(1, 42), 1_700_000_000, size);
            assert_eq!(body.len(), size);
            let event = hookwise_core::hoursmith::Event::from_json(&body).expect("valid envelope");
            assert_eq!(event.id(), event_id(1, 42));

            let body = mojave_body(7, 1_700_000_000, size);
            assert_eq!(body.len(), size);
            hookwise_core::mojave::Event::from_json(&body).expect("valid payload");

            let body = stripe_body(7, 1_700_000_000, size);
            assert_eq!(body.len(), size);
            let event = hookwise_core::stripe::Event::from_json(&body).expect("valid event");
            assert_eq!(event.id(), "evt_7");

            let body = github_body(7, size);
            assert_eq!(body.len(), size);
            let event = github::Event::from_request(&github_headers(&body, 7), &body)
                .expect("valid delivery");
            assert_eq!(event.action(), Some("opened"));

            let body = standard_webhooks_body(7, 1_700_000_000, size);
            assert_eq!(body.len(), size);
            serde_json::from_slice::<serde_json::Value>(&body).expect("JSON");
        }
    }

    #[test]
    fn headers_verify_with_the_providers() {
        use hookwise_core::{GitHub, Provider, StandardWebhooks, Stripe};
        let t = 1_700_000_000;
        let now = std::time::Duration::from_secs(t);
        let body = stripe_body(1, t, KIB);
        let stripe = Stripe::new(STRIPE_SECRET).expect("secret");
        assert!(stripe.verify(&stripe_headers(&body, t), &body, now).is_ok());
        let body = github_body(1, KIB);
        let github = GitHub::new(GITHUB_SECRET).expect("secret");
        assert!(github.verify(&github_headers(&body, 1), &body, now).is_ok());
        let body = standard_webhooks_body(1, t, KIB);
        let svix = StandardWebhooks::new(STANDARD_WEBHOOKS_SECRET).expect("secret");
        let headers = standard_webhooks_headers(&body, 1, t);
        assert!(svix.verify(&headers, &body, now).is_ok());
        assert!(
            svix.verify(&headers, b"{}", now).is_err(),
            "the body is signed"
        );
    }

    #[test]
    fn event_ids_are_distinct() {
        assert_ne!(event_id(1, 1), event_id(1, 2));
        assert_ne!(event_id(1, 1), event_id(2, 1));
    }
}
