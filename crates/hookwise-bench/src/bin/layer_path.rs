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
//! is what the layer does beyond the contract's own work.

#![forbid(unsafe_code)]

use std::{future::poll_fn, process::ExitCode, time::Duration};

use axum::{Router, body::Body, routing::post};
use hookwise_bench::{
    HOURSMITH_SECRET, KIB, event_id,
    hand_rolled::{self, HandRolled},
    hoursmith_body, hoursmith_headers, now_secs,
};
use hookwise_core::{Hoursmith, MemoryStore, Receiver};
use hookwise_runtime::Webhooks;
use hookwise_tower::WebhookLayer;
use http::Request;
use tower_service::Service;

const PATH: &str = "/webhooks/hoursmith";

fn main() -> ExitCode {
    let (mut requests, mut size, mut hand_rolled) = (20_000_u64, KIB, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--hand-rolled" {
            hand_rolled = true;
            continue;
        }
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--requests", Some(n)) => requests = n,
            ("--size", Some(n)) => size = usize::try_from(n).unwrap_or(KIB),
            _ => {
                eprintln!("usage: layer_path [--requests N] [--size BYTES] [--hand-rolled]");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let failures = runtime.block_on(run(requests, size, hand_rolled));
    println!("{requests} requests of {size} bytes, {failures} not answered 200");
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(requests: u64, size: usize, hand_rolled: bool) -> u64 {
    // As `axum::serve` does, the router gets its state (here none) once, up front.
    // The layer, and its drain at the end, only when it is the one measured.
    let (mut app, shutdown): (Router, _) = if hand_rolled {
        let app = Router::new()
            .route(PATH, post(hand_rolled::receive))
            .with_state(HandRolled::new(HOURSMITH_SECRET.as_bytes()));
        (app, None)
    } else {
        let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
        let receiver = Receiver::new(provider, MemoryStore::new()).expect("receiver");
        let webhooks = Webhooks::new(receiver);
        let layer = WebhookLayer::new(&webhooks).expect("an in-memory runtime");
        let shutdown = webhooks.shutdown_handle();
        let app = Router::new()
            .route(PATH, post(|| async {}))
            .layer(layer)
            .with_state(());
        (app, Some(shutdown))
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
    let unfinished = match shutdown {
        Some(shutdown) => shutdown.shutdown(Duration::from_secs(10)).await.unfinished,
        None => 0,
    };
    failures + unfinished as u64
}
