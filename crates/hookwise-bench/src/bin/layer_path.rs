//! The layer's path without a network, for instruction counts: `--requests N` unique
//! 1 KiB Hoursmith deliveries (default 20,000), built and signed first, then sent one
//! by one through an axum route behind `WebhookLayer` (in-memory store, ack-fast, a
//! handler that does nothing) on a current-thread runtime, yielding after each so the
//! background run happens too; then a drain. Exits non-zero on any answer but `200`.
//!
//! ```text
//! cargo build --release -p hookwise-bench
//! valgrind --tool=callgrind target/release/layer_path --requests 5000
//! ```
//!
//! Compare two builds by their total instructions: the setup (signing) is the same
//! work in both. `--size BYTES` changes the body size. `--hand-rolled` sends the same
//! deliveries to the load benchmark's hand-rolled receiver
//! ([`hookwise_bench::hand_rolled`]) instead, so that the difference of the two totals
//! is what the layer does beyond the contract's own work. `--hand-guarded` sends them
//! to the hand-rolled receiver with the layer's guarantees written by hand
//! ([`hookwise_bench::hand_guarded`]). `--endpoint` sends them to a
//! `WebhookEndpoint` in memory with a named handler that does nothing: the layer's
//! work without a wrapped service to call.
//!
//! `--redis URL` sends them instead through a `WebhookEndpoint` on a `RedisStore` and
//! a `RedisQueue` at `URL` (a fresh key namespace per run), as the load benchmark's
//! `--store redis --queue redis` does: the library's side of a Redis delivery,
//! counted apart from the server's. Start the server under callgrind too, to count
//! its side:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=server.out redis-server --port 6390 --save ''
//! valgrind --tool=callgrind target/release/layer_path --requests 2000 --redis redis://127.0.0.1:6390
//! ```

#![forbid(unsafe_code)]

use std::{future::poll_fn, process::ExitCode, time::Duration};

use axum::{
    Router,
    body::Body,
    routing::{post, post_service},
};
use hookwise_bench::{
    HOURSMITH_SECRET, KIB, event_id,
    hand_guarded::{HandGuarded, Limits},
    hand_rolled::HandRolled,
    hoursmith_body, hoursmith_headers, now_secs,
};
use hookwise_core::{Hoursmith, MemoryStore, Receiver};
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_runtime::{ShutdownHandle, Webhooks, WebhooksBuilder};
use hookwise_tower::{WebhookEndpoint, WebhookLayer};
use http::Request;
use tower_service::Service;

const PATH: &str = "/webhooks/hoursmith";

fn main() -> ExitCode {
    let (mut requests, mut size, mut receiver) = (20_000_u64, KIB, Measured::Layer);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--hand-rolled" {
            receiver = Measured::HandRolled;
            continue;
        }
        if flag == "--hand-guarded" {
            receiver = Measured::HandGuarded;
            continue;
        }
        if flag == "--endpoint" {
            receiver = Measured::Endpoint;
            continue;
        }
        let value = args.next();
        let number = value.as_deref().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), number, value) {
            ("--requests", Some(n), _) => requests = n,
            ("--size", Some(n), _) => size = usize::try_from(n).unwrap_or(KIB),
            ("--redis", _, Some(url)) => receiver = Measured::Redis(url),
            _ => {
                eprintln!(
                    "usage: layer_path [--requests N] [--size BYTES] [--hand-rolled | --hand-guarded | --endpoint | --redis URL]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let failures = match runtime.block_on(run(requests, size, receiver)) {
        Ok(failures) => failures,
        Err(error) => {
            eprintln!("layer_path: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{requests} requests of {size} bytes, {failures} not answered 200");
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The receiver the deliveries go to.
enum Measured {
    /// `WebhookLayer`, in memory.
    Layer,
    /// The load benchmark's hand-rolled receiver.
    HandRolled,
    /// The same with the layer's guarantees written by hand.
    HandGuarded,
    /// A `WebhookEndpoint` in memory, with a named handler.
    Endpoint,
    /// A `WebhookEndpoint` on a `RedisStore` and a `RedisQueue` at this URL.
    Redis(String),
}

/// The name the endpoint's handler is registered under.
const HANDLER: &str = "hook";

/// `builder`'s runtime with a handler registered as [`HANDLER`] that does nothing,
/// served by `WebhookEndpoint`; and the handle to shut it down.
fn endpoint(
    builder: WebhooksBuilder<Hoursmith>,
) -> Result<(Router, ShutdownHandle), Box<dyn std::error::Error>> {
    let webhooks = builder
        .handler(HANDLER, |_| async { Ok::<_, std::convert::Infallible>(()) })
        .build()?;
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER)?;
    let app = Router::new().route(PATH, post_service(endpoint));
    Ok((app, webhooks.shutdown_handle()))
}

async fn run(
    requests: u64,
    size: usize,
    receiver: Measured,
) -> Result<u64, Box<dyn std::error::Error>> {
    let provider = Hoursmith::new(HOURSMITH_SECRET)?;
    // As `axum::serve` does, the router gets its state (here none) once, up front.
    // A runtime, and its drain at the end, only when hookwise is the one measured;
    // the guarded receiver's own drain when it is.
    let (mut guarded, mut shutdown) = (None, None);
    let mut app: Router = match receiver {
        Measured::HandRolled => HandRolled::new(HOURSMITH_SECRET.as_bytes()).router(PATH),
        Measured::HandGuarded => {
            let receiver = HandGuarded::new(HOURSMITH_SECRET.as_bytes(), Limits::default());
            guarded.insert(receiver).router(PATH)
        }
        Measured::Layer => {
            let webhooks = Webhooks::new(Receiver::new(provider, MemoryStore::new())?);
            shutdown = Some(webhooks.shutdown_handle());
            Router::new()
                .route(PATH, post(|| async {}))
                .layer(WebhookLayer::new(&webhooks)?)
                .with_state(())
        }
        Measured::Endpoint => {
            let builder = Webhooks::builder(Receiver::new(provider, MemoryStore::new())?);
            let (app, handle) = endpoint(builder)?;
            shutdown = Some(handle);
            app
        }
        Measured::Redis(url) => {
            // Keys of this run only: the server may hold an earlier run's.
            let namespace = format!("layer-path-{}-{}", std::process::id(), now_secs());
            let store = RedisStore::new(&url)?.namespace(&namespace);
            let queue = RedisQueue::new(&url)?.namespace(&namespace);
            let builder = Webhooks::builder(Receiver::new(provider, store)?).durable_queue(queue);
            let (app, handle) = endpoint(builder)?;
            shutdown = Some(handle);
            app
        }
    };

    let now = now_secs();
    let deliveries: Vec<_> = (0..requests)
        .map(|n| {
            let body = hoursmith_body(&event_id(3, n), now, size);
            let mut request = Request::post(PATH);
            for (name, value) in &hoursmith_headers(&body, now) {
                request = request.header(name, value);
            }
            request.body(Body::from(body)).expect("request")
        })
        .collect();

    let mut failures = 0;
    for request in deliveries {
        poll_fn(|cx| <Router as Service<Request<Body>>>::poll_ready(&mut app, cx))
            .await
            .expect("router is always ready");
        let response = app.call(request).await.expect("infallible");
        if response.status() != 200 {
            failures += 1;
        }
        tokio::task::yield_now().await;
    }
    // The hand-rolled receiver's spawned handlers ran at the yields above.
    let unfinished = match (shutdown, guarded) {
        (Some(shutdown), _) => shutdown.shutdown(Duration::from_secs(10)).await.unfinished,
        (None, Some(guarded)) => guarded.drain().await,
        (None, None) => 0,
    };
    Ok(failures + unfinished as u64)
}
