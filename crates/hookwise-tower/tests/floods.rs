//! Floods over real sockets: forged deliveries, unique ids past the dedupe bound,
//! big and oversized bodies, and clients that stall their body.
//!
//! Memory is the process's resident set (`/proc/self/status`); client and server
//! share the process, so the bounds below cover both. The tests of this file run one
//! at a time (`SERIAL`) so that one test's memory is not read by another. Each
//! prints what it measured: `cargo test -p hookwise-tower --test floods -- --nocapture`.

// Memory and descriptors are read from Linux's /proc.
#![cfg(target_os = "linux")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Extension, Router, extract::State, routing::post};
use bytes::Bytes;
use hookwise_core::{
    DEFAULT_BODY_LIMIT, Delivery as Verified, Hoursmith, MemoryStore, Receiver, RejectionKind,
    hoursmith, sign,
};
use hookwise_runtime::{DEFAULT_BODY_TIMEOUT, Webhooks, WebhooksBuilder};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;
use http::{HeaderMap, StatusCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Mutex,
};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// A runtime over `store`, which the test keeps to read its statistics.
fn builder(store: &Arc<MemoryStore>) -> WebhooksBuilder<Hoursmith> {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    Webhooks::builder(Receiver::new(provider, store.clone()).expect("config"))
}

fn webhooks(store: &Arc<MemoryStore>) -> Webhooks<Hoursmith> {
    builder(store).build().expect("valid settings")
}

async fn record(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Verified<hoursmith::Event>>,
) -> StatusCode {
    recorder.record(delivery.event().id());
    StatusCode::OK
}

fn app(webhooks: &Webhooks<Hoursmith>, recorder: Recorder) -> Router {
    Router::new()
        .route("/hook", post(record))
        .with_state(recorder)
        .layer(WebhookLayer::new(webhooks).expect("in memory"))
}

/// A `task.created` delivery with a unique id, signed with a secret the receiver
/// does not have.
fn forged(i: usize) -> Delivery {
    let body = hoursmith_body(&format!("forged-{i}"), "task.created", r#"{"task":{}}"#);
    let mut headers = HeaderMap::new();
    sign::hoursmith(b"whsec_not_the_secret", now(), &body).insert_into(&mut headers);
    Delivery { headers, body }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_deliveries_is_refused_without_touching_the_store_or_memory() {
    forged_flood(20_000, 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 60 s in a debug build; CI runs it in release: \
            cargo test --release -p hookwise-tower --test floods -- --ignored"]
async fn a_flood_of_100_000_forged_deliveries() {
    forged_flood(100_000, 10_000).await;
}

/// `n` forged deliveries with unique ids over 32 keep-alive connections; memory is
/// compared after the first `warm_up` and at the end.
async fn forged_flood(n: usize, warm_up: usize) {
    let _serial = SERIAL.lock().await;
    let recorder = Recorder::default();
    let store = Arc::new(MemoryStore::new());
    let webhooks = webhooks(&store);
    let stats = webhooks.stats();
    let addr = serve(app(&webhooks, recorder.clone())).await;

    let started = Instant::now();
    // Warm up first (connections, buffers, allocator arenas), then measure.
    let first = blast(addr, "/hook", warm_up, 32, false, forged).await;
    let before = rss_bytes();
    let rest = blast(addr, "/hook", n - warm_up, 32, false, move |i| {
        forged(warm_up + i)
    })
    .await;
    let after = rss_bytes();
    let elapsed = started.elapsed();

    assert_eq!(
        first.count(401) + rest.count(401),
        n,
        "every forgery is 401"
    );
    let counted = stats.snapshot();
    assert_eq!(counted.rejected(RejectionKind::SignatureMismatch), n as u64);
    assert_eq!(counted.accepted, 0);
    assert_eq!(recorder.runs(), 0);
    // Nothing unverified enters the dedupe store: not one claim, not one key.
    assert_eq!(store.stats(), Default::default());
    eprintln!(
        "forged flood: {n} deliveries in {elapsed:.1?} ({:.0}/s); RSS {:.1} MiB after \
         {warm_up}, {:.1} MiB after {n}",
        n as f64 / elapsed.as_secs_f64(),
        mib(before),
        mib(after),
    );
    // Flat: a leak of 100 bytes per delivery would add 8.6 MiB over 90,000.
    assert!(
        after < before + 8 * MIB,
        "RSS grew from {:.1} to {:.1} MiB",
        mib(before),
        mib(after)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_unique_ids_past_the_store_bound_evict_the_oldest_and_count_it() {
    const MAX_KEYS: usize = 1_000;
    const N: usize = 5_000;
    let _serial = SERIAL.lock().await;
    let recorder = Recorder::default();
    let store = Arc::new(MemoryStore::new().max_keys(MAX_KEYS).expect("positive"));
    let webhooks = webhooks(&store);
    let stats = webhooks.stats();
    let addr = serve(app(&webhooks, recorder.clone())).await;

    // Watch the bound while the flood runs, not only at the end.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let (store, done) = (store.clone(), done.clone());
        async move {
            let mut most = 0;
            while !done.load(Ordering::Relaxed) {
                most = most.max(store.stats().keys);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            most
        }
    });
    let started = Instant::now();
    let flood = blast(addr, "/hook", N, 16, true, |i| {
        hoursmith(&format!("evt-{i}"))
    })
    .await;
    let all_done = || stats.snapshot().processed == N as u64;
    assert!(eventually(Duration::from_secs(20), all_done).await);
    done.store(true, Ordering::Relaxed);
    let most_keys = watcher.await.expect("watcher");

    assert_eq!(flood.count(200), N, "every new event is answered 200");
    assert_eq!(recorder.runs(), N, "every event is processed once");
    assert_eq!(stats.snapshot().processed, N as u64);
    let store = store.stats();
    eprintln!(
        "{N} unique ids into a store of {MAX_KEYS} keys in {:.1?}: {store:?}, at most {most_keys} keys held",
        started.elapsed()
    );
    // A claim inserts its key, then evicts the oldest: a reader in between sees one
    // key over the bound per thread claiming at that instant (2 runtime threads).
    assert!(most_keys <= MAX_KEYS + 2, "{most_keys} keys held");
    assert_eq!(store.keys, MAX_KEYS);
    assert_eq!(store.claims, N as u64 + flood.retried_503 as u64);
    assert!(store.evictions >= (N - MAX_KEYS) as u64, "{store:?}");
    // The newest events are remembered: redelivering them is a duplicate.
    let again = blast(addr, "/hook", 100, 4, false, |i| {
        hoursmith(&format!("evt-{}", N - 1 - i))
    })
    .await;
    assert_eq!(again.count(200), 100);
    assert_eq!(stats.snapshot().duplicates, 100);
    assert_eq!(recorder.runs(), N, "not processed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_and_oversized_bodies_hold_memory_to_the_limit_times_the_concurrency() {
    const CONCURRENCY: usize = 16;
    const ROUNDS: usize = 4;
    /// What each oversized sender tries to push: 1 GiB in all.
    const ATTEMPT: usize = 64 * 1024 * 1024;
    let _serial = SERIAL.lock().await;
    let recorder = Recorder::default();
    let store = Arc::new(MemoryStore::new());
    let webhooks = webhooks(&store);
    let stats = webhooks.stats();
    let addr = serve(app(&webhooks, recorder.clone())).await;
    let limit = DEFAULT_BODY_LIMIT;

    // Bodies of exactly the limit, 16 at a time: buffered whole, then refused (401).
    let body = Bytes::from(vec![b' '; limit]);
    let baseline = rss_bytes();
    let peak = PeakRss::start();
    let started = Instant::now();
    let big = blast(addr, "/hook", CONCURRENCY * ROUNDS, CONCURRENCY, false, {
        let body = body.clone();
        move |_| {
            let mut delivery = forged(0);
            delivery.body = body.clone();
            delivery
        }
    })
    .await;
    let big_elapsed = started.elapsed();

    // Chunked bodies that never end, and declared lengths over the limit.
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        senders.spawn(endless_chunked_body(addr, ATTEMPT));
        senders.spawn(async move {
            let head = format!(
                "POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n\r\n",
                limit + 1
            );
            (
                raw_status(addr, &[head.as_bytes()], Duration::ZERO).await,
                0,
            )
        });
    }
    let mut oversized = Vec::new();
    while let Some(answer) = senders.join_next().await {
        oversized.push(answer.expect("sender"));
    }
    let over_elapsed = started.elapsed();
    let peak = peak.stop();
    drop(body);

    assert_eq!(
        big.count(401),
        CONCURRENCY * ROUNDS,
        "bodies at the limit are read"
    );
    assert!(
        oversized.iter().all(|&(status, _)| status == 413),
        "{oversized:?}"
    );
    let counted = stats.snapshot();
    assert_eq!(
        counted.rejected(RejectionKind::PayloadTooLarge),
        2 * CONCURRENCY as u64
    );
    assert_eq!(store.stats(), Default::default());
    assert_eq!(recorder.runs(), 0);
    let pushed: usize = oversized.iter().map(|&(_, sent)| sent).sum();
    let growth = peak.saturating_sub(baseline);
    // Per delivery in flight: the body collected in chunks, then made contiguous (2×
    // the limit), plus the client's copy of the request; 48 MiB for everything else.
    let bound = 3 * limit as u64 * CONCURRENCY as u64 + 48 * MIB;
    eprintln!(
        "bodies: {} × 1 MiB in {big_elapsed:.1?}; {CONCURRENCY} endless chunked bodies \
         ({:.0} MiB pushed before the server hung up) and {CONCURRENCY} over-long \
         Content-Length in {over_elapsed:.1?}; RSS baseline {:.1} MiB, peak {:.1} MiB \
         (+{:.1} MiB, bound +{:.1} MiB)",
        CONCURRENCY * ROUNDS,
        mib(pushed as u64),
        mib(baseline),
        mib(peak),
        mib(growth),
        mib(bound),
    );
    assert!(growth <= bound, "RSS grew {:.1} MiB", mib(growth));
    // Not by what is sent: the server stopped reading each body at the limit.
    assert!(
        pushed < CONCURRENCY * ATTEMPT / 4,
        "{:.0} MiB pushed",
        mib(pushed as u64)
    );
}

/// Streams a chunked body of up to `attempt` bytes until the server hangs up; returns
/// the answer's status and how many body bytes the kernel took.
async fn endless_chunked_body(addr: std::net::SocketAddr, attempt: usize) -> (u16, usize) {
    const CHUNK: usize = 64 * 1024;
    static DATA: [u8; CHUNK] = [b'x'; CHUNK];
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head = b"POST /hook HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk_head = format!("{CHUNK:x}\r\n");
        let mut sent = 0;
        if write.write_all(head).await.is_err() {
            return sent;
        }
        while sent < attempt {
            let wrote = async {
                write.write_all(chunk_head.as_bytes()).await?;
                write.write_all(&DATA).await?;
                write.write_all(b"\r\n").await
            };
            if wrote.await.is_err() {
                break;
            }
            sent += CHUNK;
        }
        sent
    });
    let status = read_status(&mut read).await;
    drop(read);
    let sent = writer.await.expect("writer");
    (status, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_cut_off_with_408_and_their_connections_freed() {
    const STALLED: usize = 100;
    let _serial = SERIAL.lock().await;
    assert_eq!(DEFAULT_BODY_TIMEOUT, Duration::from_secs(10), "the default");
    let timeout = Duration::from_secs(1);
    let recorder = Recorder::default();
    let webhooks = builder(&Arc::new(MemoryStore::new()))
        .body_timeout(timeout)
        .build()
        .expect("positive");
    let stats = webhooks.stats();
    let addr = serve(app(&webhooks, recorder.clone())).await;

    let started = Instant::now();
    let mut stalled = tokio::task::JoinSet::new();
    for _ in 0..STALLED {
        stalled.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let head =
                b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{\"id\":";
            stream.write_all(head).await.expect("head");
            // Then nothing: read the answer, then wait for the server to hang up.
            let mut answer = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await
            .is_ok();
            (String::from_utf8_lossy(&answer).into_owned(), closed)
        });
    }
    // Meanwhile the receiver keeps serving.
    tokio::time::sleep(timeout / 3).await;
    let live = send(&client(), addr, "/hook", &hoursmith("live")).await;
    assert_eq!(live.status, 200);
    assert_eq!(
        stats.snapshot().rejected(RejectionKind::BodyTimeout),
        0,
        "answered while the stalled bodies still wait"
    );
    // The measure below sees them while they wait.
    assert!(server_connections(addr.port()) >= STALLED);

    while let Some(answer) = stalled.join_next().await {
        let (answer, closed) = answer.expect("stalled client");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(
            answer.ends_with(r#"{"error":"body_timeout"}"#),
            "{answer:?}"
        );
        assert!(closed, "the server hung up after the 408");
    }
    let cut_off = started.elapsed();
    assert!(cut_off >= timeout, "not before the timeout: {cut_off:?}");
    assert!(cut_off < 5 * timeout, "cut off at {cut_off:?}");
    assert_eq!(
        stats.snapshot().rejected(RejectionKind::BodyTimeout),
        STALLED as u64
    );
    // Every stalled connection is closed on the server's side too: at most the
    // live client's keep-alive connection is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server_connections(addr.port()) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open = server_connections(addr.port());
    eprintln!(
        "{STALLED} stalled bodies cut off after {cut_off:.1?} (timeout {timeout:?}); \
         {open} connection(s) still open on the server"
    );
    assert!(open <= 1, "{open} connections still open on the server");
    assert_eq!(recorder.wait_for(1, Duration::from_secs(5)).await, 1);
}
