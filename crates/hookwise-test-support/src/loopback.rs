//! A real server on a loopback port, and clients that talk to it.

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::Delivery;

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

/// A new keep-alive HTTP/1 client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text (invalid UTF-8 replaced).
    pub body: String,
}

/// POSTs `delivery` to `path` on the server at `addr`, and reads the answer whole.
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

/// Sends raw bytes on a fresh connection, `pause` after each of `parts`, and reads
/// the status code of the answer.
pub async fn raw_status(addr: SocketAddr, parts: &[&[u8]], pause: Duration) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    for part in parts {
        // The server may answer (and close) before everything is sent.
        if stream.write_all(part).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    read_status(&mut stream).await
}

/// Reads from `stream` up to the end of an HTTP/1 response head (or of the stream)
/// and returns the status code of its status line.
pub async fn read_status(stream: &mut (impl AsyncRead + Unpin)) -> u16 {
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

/// One HTTP/1 connection to `addr`, its driver spawned.
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

/// Writes `delivery` as a POST on a fresh connection, then hangs up 100 ms after its
/// work is `under_way`, without reading the answer: a sender whose own timeout fired.
pub async fn send_and_hang_up(
    addr: SocketAddr,
    path: &str,
    delivery: &Delivery,
    under_way: impl Fn() -> bool,
) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n",
        delivery.body.len()
    );
    for (name, value) in &delivery.headers {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().expect("ascii header")
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&delivery.body).await.expect("body");
    // Hang up 100 ms into the work, however long a loaded machine takes to start it.
    assert!(
        crate::eventually(Duration::from_secs(5), under_way).await,
        "the delivery's work never started"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
}

/// Sends `delivery` until the answer is not `409 in_progress` (the other delivery's
/// claim being ended), at most `limit`.
pub async fn send_until_decided(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    delivery: &Delivery,
    limit: Duration,
) -> Answer {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let answer = send(client, addr, path, delivery).await;
        if answer.status != StatusCode::CONFLICT || tokio::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
