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
