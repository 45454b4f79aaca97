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
//! | `src/bin/memory.rs` | resident bytes per key of `MemoryStore` at 1,000,000 keys | `cargo run --release -p hookwise-bench --bin memory` |
//! | `src/bin/layer_path.rs` | the layer's whole path in one process, for instruction counts (`--hand-rolled`: the hand-rolled receiver's) | `valgrind --tool=callgrind target/release/layer_path --requests 5000` |
//!
//! `BENCHMARKS.md` at the repository root has the numbers and how to read them.

#![forbid(unsafe_code)]

pub mod hand_rolled;

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::{BufMut, Bytes, BytesMut};
use hookwise_core::sign;
use http::HeaderMap;

/// The Hoursmith secret every benchmark signs and verifies with.
pub const HOURSMITH_SECRET: &str = "whsec_bench_hoursmith_secret";

/// The Mojave secret every benchmark signs and verifies with.
pub const MOJAVE_SECRET: &str = "mojave_bench_secret";

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
    const TAIL: &str = r#""}}}"#;
    let created = created.to_string();
    let fixed = HEAD_1.len() + id.len() + HEAD_2.len() + created.len() + HEAD_3.len() + TAIL.len();
    let mut body = BytesMut::with_capacity(size.max(fixed));
    for part in [HEAD_1, id, HEAD_2, &created, HEAD_3] {
        body.put_slice(part.as_bytes());
    }
    body.put_bytes(b'x', size.saturating_sub(fixed));
    body.put_slice(TAIL.as_bytes());
    body.freeze()
}

/// An `invoice.paid` Mojave payload made distinct by `n`, padded to exactly `size`
/// bytes (or its natural size when `size` is smaller).
pub fn mojave_body(n: u64, timestamp: u64, size: usize) -> Bytes {
    let head = format!(
        r#"{{"type":"invoice.paid","timestamp":{timestamp},"data":{{"id":"inv_{n}","memo":""#
    );
    const TAIL: &str = r#""}}"#;
    let fixed = head.len() + TAIL.len();
    let mut body = BytesMut::with_capacity(size.max(fixed));
    body.put_slice(head.as_bytes());
    body.put_bytes(b'x', size.saturating_sub(fixed));
    body.put_slice(TAIL.as_bytes());
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
        }
    }

    #[test]
    fn event_ids_are_distinct() {
        assert_ne!(event_id(1, 1), event_id(1, 2));
        assert_ne!(event_id(1, 1), event_id(2, 1));
    }
}
