//! The closed-loop driver (the default): `--concurrency` requests in flight, a new
//! one sent as soon as one is answered, so the server runs at saturation.
//!
//! Its latency is then set by queueing (Little's law: latency ≈ in flight /
//! throughput), so a slower server shows a higher latency in proportion to its
//! lower throughput; that comparison says how much capacity a server costs, not how
//! much latency it adds to one request. For that, see [`fixed_rate`](crate::fixed_rate).
//!
//! It also warms both servers up before the measured rounds, and measures A's
//! throughput for `--rate P%`.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;

use crate::{
    load::{HttpClient, Load, RoundResult, micros, send},
    servers::PATH,
};

/// Keeps `concurrency` requests in flight against `addr` for `length`.
pub(crate) async fn drive(
    client: &HttpClient,
    addr: SocketAddr,
    load: &Arc<Load>,
    concurrency: usize,
    length: Duration,
) -> RoundResult {
    let deadline = Instant::now() + length;
    let uri: http::Uri = format!("http://{addr}{PATH}").parse().expect("uri");
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, uri, load) = (client.clone(), uri.clone(), load.clone());
            tokio::spawn(async move { worker(client, uri, load, deadline).await })
        })
        .collect();
    let mut total = RoundResult::default();
    for worker in workers {
        total.absorb(worker.await.expect("load worker"));
    }
    total
}

/// One request in flight: sends, waits for the answer, sends the next, until
/// `deadline`.
async fn worker(
    client: HttpClient,
    uri: http::Uri,
    load: Arc<Load>,
    deadline: Instant,
) -> RoundResult {
    let mut result = RoundResult::default();
    let mut previous: Option<Bytes> = None;
    let mut sent = 0u64;
    while Instant::now() < deadline {
        let request = load.next_request(&uri, &mut previous, &mut sent);
        let started = Instant::now();
        let answered = send(&client, request).await;
        let latency = started.elapsed();
        match answered {
            Ok(()) => {
                result.ok += 1;
                result.latencies_us.push(micros(latency));
            }
            Err(status) => result.error(status),
        }
    }
    result
}
