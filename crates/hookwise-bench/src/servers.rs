//! The servers A and B: what each side can be, and starting it on loopback.
//!
//! Both run in this process, on the one server runtime, each on a port of its own
//! (`127.0.0.1:0`), and take deliveries at [`PATH`]. They are started afresh for
//! every scenario, so a receiver's store starts empty each time, and stopped after
//! it. A hookwise server's backend (memory, Redis, Postgres) is
//! [`backends`](crate::backends)' business.

use std::{error::Error, hint::black_box, net::SocketAddr};

use axum::{
    Router,
    routing::{post, post_service},
};
use bytes::Bytes;
use hookwise_bench::{
    HOURSMITH_SECRET,
    hand_guarded::{HandGuarded, Limits},
    hand_rolled::HandRolled,
};
use hookwise_core::{ConfigError, Hoursmith};
use hookwise_runtime::Webhooks;
use hookwise_tower::{WebhookEndpoint, WebhookLayer};
use http::StatusCode;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::backends::{Backend, Databases, HANDLER, Instance};

/// Where every server takes deliveries.
pub(crate) const PATH: &str = "/webhooks/hoursmith";

/// What a side's server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// A bare axum route that reads the body and answers `200`.
    Bare,
    /// [`hand_rolled`](hookwise_bench::hand_rolled): the contract's work, written
    /// without hookwise.
    HandRolled,
    /// [`hand_guarded`](hookwise_bench::hand_guarded): the same with the layer's
    /// guarantees written by hand.
    HandGuarded,
    /// hookwise on `backend`: the route behind `WebhookLayer`, or with a durable
    /// queue a `WebhookEndpoint`.
    Layer(Backend),
    /// hookwise in memory, served by `WebhookEndpoint` with a named handler that
    /// does nothing: the layer's work without a wrapped service to call.
    Endpoint,
}

impl Server {
    /// Its name in the tables.
    pub(crate) fn label(self) -> String {
        match self {
            Self::Bare => "bare axum".to_owned(),
            Self::HandRolled => "hand-rolled receiver".to_owned(),
            Self::HandGuarded => "hand-rolled receiver, guarded".to_owned(),
            Self::Layer(backend) => backend.label(),
            Self::Endpoint => "WebhookEndpoint".to_owned(),
        }
    }

    /// Starts it for one scenario, a hookwise server on `databases` with its data
    /// under `fresh` (see [`Databases::instance`]).
    pub(crate) async fn start(
        self,
        databases: &Databases,
        fresh: &str,
    ) -> Result<Started, Box<dyn Error>> {
        let (mut instance, mut guarded) = (None, None);
        let app = match self {
            Self::Bare => bare(),
            Self::HandRolled => HandRolled::new(HOURSMITH_SECRET.as_bytes()).router(PATH),
            Self::HandGuarded => {
                let receiver = HandGuarded::new(HOURSMITH_SECRET.as_bytes(), Limits::default());
                guarded.insert(receiver).router(PATH)
            }
            Self::Layer(backend) => {
                let started = databases.instance(backend, fresh).await?;
                let app = hookwise(backend, &started)?;
                instance = Some(started);
                app
            }
            Self::Endpoint => {
                let started = Instance::with_handler()?;
                let app = endpoint(&started.webhooks)?;
                instance = Some(started);
                app
            }
        };
        let (addr, task) = serve(app).await;
        Ok(Started {
            addr,
            task,
            instance,
            guarded,
        })
    }
}

/// A server started for one scenario.
#[derive(Debug)]
pub(crate) struct Started {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
    /// The hookwise runtime it serves, if it is a hookwise server.
    pub(crate) instance: Option<Instance>,
    /// The guarded hand-rolled receiver, if it is that one: drained as a hookwise
    /// runtime is.
    guarded: Option<HandGuarded>,
}

impl Started {
    /// Stops listening and stops its hookwise runtime (or drains the guarded
    /// receiver); how many accepted events had not finished.
    pub(crate) async fn stop(self) -> usize {
        self.task.abort();
        match (self.instance, self.guarded) {
            (Some(instance), _) => instance.stop().await,
            (None, Some(guarded)) => guarded.drain().await,
            (None, None) => 0,
        }
    }
}

/// Reads the whole body and answers `200`.
fn bare() -> Router {
    Router::new().route(
        PATH,
        post(|body: Bytes| async move {
            black_box(body.len());
            StatusCode::OK
        }),
    )
}

/// hookwise, ack-fast, with a handler that does nothing: in memory or on a store
/// only, the route behind `WebhookLayer`; with a durable queue, the handler
/// registered as [`HANDLER`] served by `WebhookEndpoint`, as the project serves a
/// durable receiver (a layer refuses a durable runtime).
fn hookwise(backend: Backend, instance: &Instance) -> Result<Router, Box<dyn Error>> {
    let webhooks = &instance.webhooks;
    Ok(if backend.is_durable() {
        endpoint(webhooks)?
    } else {
        Router::new()
            .route(PATH, post(|| async {}))
            .layer(WebhookLayer::new(webhooks)?)
    })
}

/// The handler registered as [`HANDLER`] in `webhooks`, served by `WebhookEndpoint`.
fn endpoint(webhooks: &Webhooks<Hoursmith>) -> Result<Router, ConfigError> {
    Ok(Router::new().route(PATH, post_service(WebhookEndpoint::new(webhooks, HANDLER)?)))
}

/// Serves `app` on a free loopback port, in the background.
async fn serve(app: Router) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("server on {addr} stopped: {error}");
        }
    });
    (addr, task)
}
