//! A real webhook receiver for Mojave and Hoursmith.
//!
//! ```text
//! MOJAVE_WEBHOOK_SECRET=... HOURSMITH_WEBHOOK_SECRET=... cargo run --example receiver
//! ```
//!
//! - Listens on `HOOKWISE_ADDR` (default `127.0.0.1:3000`): `POST /webhooks/mojave`
//!   and `POST /webhooks/hoursmith`.
//! - Secrets come from `MOJAVE_WEBHOOK_SECRET` and `HOURSMITH_WEBHOOK_SECRET`; a
//!   missing or empty one is a clear error and exit code 2.
//! - Prints exactly one JSON line per processed event on stdout:
//!   `{"provider":"hoursmith","id":"<dedupe key>","type":"invoice.paid","livemode":true}`
//!   (Mojave has no test mode, so its events are always `"livemode":true`). Logs go
//!   to stderr (`RUST_LOG` sets the level, `info` by default).
//! - On SIGTERM or Ctrl-C it stops taking deliveries (`503` + `Retry-After`),
//!   finishes every accepted event, and exits 0 (1 if some did not finish within
//!   30 s).

mod support;

use std::{process::ExitCode, time::Duration};

use axum::{Extension, Router, routing::post};
use hookwise::{
    Delivery, Hoursmith, MemoryStore, Mojave, Receiver, hoursmith, mojave,
    tower::{ShutdownHandle, WebhookLayer},
};
use support::{Config, print_event};

/// How long accepted events get to finish on shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

async fn on_hoursmith(Extension(delivery): Extension<Delivery<hoursmith::Event>>) {
    let event = delivery.event();
    print_event(
        "hoursmith",
        delivery.dedupe_key().id(),
        event.event_type(),
        event.livemode(),
    );
}

async fn on_mojave(Extension(delivery): Extension<Delivery<mojave::Event>>) {
    print_event(
        "mojave",
        delivery.dedupe_key().id(),
        delivery.event().event_type(),
        true,
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    support::main("receiver", run).await
}

async fn run(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let hoursmith = WebhookLayer::new(Receiver::new(
        Hoursmith::new(&config.hoursmith_secret)?,
        MemoryStore::new(),
    )?);
    let mojave = WebhookLayer::new(Receiver::new(
        Mojave::new(&config.mojave_secret)?,
        MemoryStore::new(),
    )?);
    let shutdowns = [hoursmith.shutdown_handle(), mojave.shutdown_handle()];
    let app = Router::new()
        .route(
            "/webhooks/hoursmith",
            post(on_hoursmith).route_layer(hoursmith),
        )
        .route("/webhooks/mojave", post(on_mojave).route_layer(mojave));

    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let closing = shutdowns.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            tracing::info!("stopping: no new deliveries, finishing accepted events");
            closing.iter().for_each(ShutdownHandle::close);
        })
        .await?;

    let mut unfinished = 0;
    for shutdown in &shutdowns {
        unfinished += shutdown.drain(DRAIN_DEADLINE).await.unfinished;
    }
    if unfinished > 0 {
        tracing::error!(unfinished, "events did not finish before the deadline");
        return Ok(ExitCode::FAILURE);
    }
    tracing::info!("stopped: every accepted event finished");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
