//! The servers A and B: what each side can be, and starting it on loopback.
//!
//! Both run in this process, on the one server runtime, each on a port of its own
//! (`127.0.0.1:0`), and take deliveries at [`PATH`]. They are started afresh for
//! every scenario, so a receiver's store starts empty each time.

use std::{hint::black_box, net::SocketAddr};

use axum::{Router, routing::post};
use bytes::Bytes;
use hookwise_bench::{
    HOURSMITH_SECRET,
    hand_rolled::{self, HandRolled},
};
use hookwise_core::{Hoursmith, MemoryStore, Receiver};
use hookwise_runtime::Webhooks;
use hookwise_tower::WebhookLayer;
use http::StatusCode;
use tokio::net::TcpListener;

/// Where every server takes deliveries.
pub(crate) const PATH: &str = "/webhooks/hoursmith";

/// What a side's server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// A bare axum route that reads the body and answers `200`.
    Bare,
    /// [`hand_rolled`]: the contract's work, written without hookwise.
    HandRolled,
    /// The route behind `WebhookLayer`.
    Layer,
}

impl Server {
    /// Its name in the tables.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Bare => "bare axum",
            Self::HandRolled => "hand-rolled receiver",
            Self::Layer => "WebhookLayer",
        }
    }

    /// Starts it; where it listens.
    pub(crate) async fn serve(self) -> SocketAddr {
        match self {
            Self::Bare => serve_bare().await,
            Self::HandRolled => serve_hand_rolled().await,
            Self::Layer => serve_layered().await,
        }
    }
}

/// Reads the whole body and answers `200`.
async fn serve_bare() -> SocketAddr {
    let app = Router::new().route(
        PATH,
        post(|body: Bytes| async move {
            black_box(body.len());
            StatusCode::OK
        }),
    );
    serve(app).await
}

/// The hand-rolled receiver: the contract's work without hookwise.
async fn serve_hand_rolled() -> SocketAddr {
    let app = Router::new()
        .route(PATH, post(hand_rolled::receive))
        .with_state(HandRolled::new(HOURSMITH_SECRET.as_bytes()));
    serve(app).await
}

/// The same route behind `WebhookLayer` (in-memory store, ack-fast, a handler that
/// does nothing).
async fn serve_layered() -> SocketAddr {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let receiver = Receiver::new(provider, MemoryStore::new()).expect("receiver");
    let app = Router::new()
        .route(PATH, post(|| async {}))
        .layer(WebhookLayer::new(&Webhooks::new(receiver)).expect("an in-memory runtime"));
    serve(app).await
}

/// Serves `app` on a free loopback port, in the background.
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("server on {addr} stopped: {error}");
        }
    });
    addr
}
