//! Test helpers: signed deliveries, a real server on loopback, a client, a recorder.
#![allow(dead_code, unreachable_pub)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::Router;
use bytes::Bytes;
use hookwise_core::sign;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub const HOURSMITH_SECRET: &str = "whsec_hoursmith_test";
pub const MOJAVE_SECRET: &str = "mojave_test_secret";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A signed delivery: headers and body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub fn hoursmith_body(id: &str, event_type: &str, data: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"id":"{id}","type":"{event_type}","created":{},"orgId":"00000000-0000-0000-0000-000000000000","livemode":true,"data":{data}}}"#,
        now()
    ))
}

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

/// Serves `router` on a free loopback port until the test ends.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A keep-alive HTTP/1 client.
pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

pub async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    delivery: &Delivery,
) -> Answer {
    let mut request = Request::post(format!("http://{addr}{path}"))
        .body(Full::new(delivery.body.clone()))
        .expect("request");
    request.headers_mut().extend(delivery.headers.clone());
    let response = client.request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends raw bytes on a fresh connection and reads the status code of the answer.
pub async fn raw_status(addr: SocketAddr, parts: &[&[u8]], pause: Duration) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    for part in parts {
        // The server may answer (and close) before everything is sent.
        if stream.write_all(part).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// Counts handler runs and keeps the event ids they saw.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    runs: Arc<AtomicUsize>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn record(&self, id: &str) -> usize {
        if let Ok(mut ids) = self.ids.lock() {
            ids.push(id.to_owned());
        }
        self.runs.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().map(|ids| ids.clone()).unwrap_or_default()
    }

    /// Waits until `n` runs were recorded, or `limit` passes.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        while self.runs() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.runs()
    }
}

// ---------------------------------------------------------------------------------
// Floods and memory: many deliveries over a few keep-alive connections, and the
// process's resident memory and open descriptors (Linux /proc).

/// Resident memory of this process now, in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS in /proc/self/status")
}

/// Connections the server on `port` still holds open: sockets whose local port is
/// `port`, established or half-closed by the peer (`/proc/net/tcp{,6}` states 01 and
/// 08). A socket the server closed (`FIN_WAIT`, `TIME_WAIT`) is not counted, nor are
/// the process's other descriptors.
pub fn server_connections(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    matches!(fields.get(1), Some(addr) if addr.ends_with(&local))
                        && matches!(fields.get(3), Some(&"01" | &"08"))
                })
                .count()
        })
        .sum()
}

pub const MIB: u64 = 1024 * 1024;

/// Samples [`rss_bytes`] every 2 ms on its own thread until [`PeakRss::stop`].
pub struct PeakRss {
    peak: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakRss {
    pub fn start() -> Self {
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_bytes()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { peak, stop, thread }
    }

    /// The highest resident memory seen, in bytes.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed).max(rss_bytes())
    }
}

/// What [`blast`] got back.
#[derive(Debug, Default)]
pub struct Blast {
    /// The final status of each delivery, by index.
    pub statuses: Vec<u16>,
    /// `503` answers that were retried (`retry_503`).
    pub retried_503: usize,
}

impl Blast {
    pub fn count(&self, status: u16) -> usize {
        self.statuses.iter().filter(|&&s| s == status).count()
    }
}

/// Sends deliveries `0..n` (made by `make`, on the fly, so they are never all in
/// memory at once) to `path` over `connections` keep-alive HTTP/1 connections; each
/// connection takes the next unsent index. With `retry_503`, a `503` is sent again
/// after a short pause, as a sender honouring `Retry-After` would (sooner).
pub async fn blast<F>(
    addr: SocketAddr,
    path: &'static str,
    n: usize,
    connections: usize,
    retry_503: bool,
    make: F,
) -> Blast
where
    F: Fn(usize) -> Delivery + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (make, next) = (make.clone(), next.clone());
        workers.spawn(async move {
            let mut sender = connect(addr).await;
            let (mut statuses, mut retried) = (Vec::new(), 0);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let delivery = make(i);
                let status = loop {
                    if sender.ready().await.is_err() {
                        // The server closed this connection (after a 4xx with an
                        // unread body, say): open another.
                        sender = connect(addr).await;
                    }
                    let mut request = Request::post(path)
                        .header(http::header::HOST, "localhost")
                        .body(Full::new(delivery.body.clone()))
                        .expect("request");
                    request.headers_mut().extend(delivery.headers.clone());
                    let status = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.into_body().collect().await;
                            status
                        }
                        Err(e) => panic!("delivery {i}: {e}"),
                    };
                    if status == 503 && retry_503 {
                        retried += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    break status;
                };
                statuses.push((i, status));
            }
            (statuses, retried)
        });
    }
    let mut blast = Blast {
        statuses: vec![0; n],
        retried_503: 0,
    };
    while let Some(worker) = workers.join_next().await {
        let (statuses, retried) = worker.expect("a sender task");
        for (i, status) in statuses {
            blast.statuses[i] = status;
        }
        blast.retried_503 += retried;
    }
    blast
}

/// One HTTP/1 connection, its driver spawned.
pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// Polls `done` every 5 ms until it holds or `limit` passes; returns its last value.
pub async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}
