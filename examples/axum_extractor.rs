//! The extractor style: `Webhook<Hoursmith>` as a handler argument, with a typed
//! `match` on the event, and the work done in the background.
//!
//! ```text
//! cargo run --example axum_extractor
//! ```
//!
//! It starts the app on a free local port, sends it a few signed deliveries, prints
//! what each handler matched, and exits.

use std::{
    convert::Infallible,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Router, extract::FromRef, http::StatusCode, response::Response, routing::post};
use bytes::Bytes;
use hookwise::{
    Hoursmith, MemoryStore, Mojave, Receiver, Webhooks, axum::Webhook, hoursmith, mojave, sign,
};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

/// The router state: one runtime per provider, built once; the extractor finds its
/// own through `FromRef`.
#[derive(Clone, FromRef)]
struct AppState {
    hoursmith: Webhooks<Hoursmith>,
    mojave: Webhooks<Mojave>,
}

/// Answers 200 at once; the match runs in the background, retried if it fails.
async fn on_hoursmith(webhook: Webhook<Hoursmith>) -> Response {
    webhook
        .process_in_background(|delivery| async move {
            let event = delivery.event();
            match event.data() {
                hoursmith::EventData::InvoicePaid { invoice, payment } => {
                    println!(
                        "hoursmith: invoice {:?} paid by {:?}",
                        invoice.id(),
                        payment.id()
                    );
                }
                hoursmith::EventData::InvoicePaymentFailed { invoice, .. } => {
                    println!("hoursmith: payment failed on {:?}", invoice.id());
                }
                hoursmith::EventData::TimeEntryCreated { time_entry } => {
                    println!("hoursmith: time entry {:?}", time_entry.id());
                }
                hoursmith::EventData::Unknown { event_type, .. } => {
                    println!("hoursmith: {event_type} is new to this app; stored for later");
                }
                _ => println!("hoursmith: {} not handled here", event.event_type()),
            }
            Ok::<_, Infallible>(())
        })
        .await
}

/// Processes inline and commits: the sender waits for the work.
async fn on_mojave(webhook: Webhook<Mojave>) -> StatusCode {
    match webhook.data() {
        mojave::EventData::TimeEntryCreated(entry) => {
            println!("mojave: time entry {:?} created", entry.id());
        }
        other => println!("mojave: {other:?}"),
    }
    match webhook.commit().await {
        Ok(()) => StatusCode::OK,
        // Not recorded: ask the sender to retry rather than risk losing the event.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = AppState {
        hoursmith: Webhooks::new(Receiver::new(
            Hoursmith::new("whsec_extractor_demo")?,
            MemoryStore::new(),
        )?),
        mojave: Webhooks::new(Receiver::new(
            Mojave::new("mojave_extractor_demo")?,
            MemoryStore::new(),
        )?),
    };
    let shutdown = state.hoursmith.shutdown_handle();
    let app = Router::new()
        .route("/webhooks/hoursmith", post(on_hoursmith))
        .route("/webhooks/mojave", post(on_mojave))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let deliveries = [
        (
            "/webhooks/hoursmith",
            Bytes::from(format!(
                r#"{{"id":"evt_1","type":"invoice.paid","created":{now},"orgId":"o","livemode":true,"data":{{"invoice":{{"id":"inv_1"}},"payment":{{"id":"pay_1"}}}}}}"#
            )),
        ),
        (
            "/webhooks/hoursmith",
            Bytes::from(format!(
                r#"{{"id":"evt_2","type":"invoice.voided","created":{now},"orgId":"o","livemode":true,"data":{{}}}}"#
            )),
        ),
        (
            "/webhooks/mojave",
            Bytes::from(format!(
                r#"{{"type":"time_entry.created","timestamp":{now},"data":{{"id":"te_1"}}}}"#
            )),
        ),
    ];
    for (path, body) in deliveries {
        let mut request =
            http::Request::post(format!("http://{addr}{path}")).body(Full::new(body.clone()))?;
        let headers = request.headers_mut();
        match path {
            "/webhooks/mojave" => {
                sign::mojave(b"mojave_extractor_demo", &body).insert_into(headers)
            }
            _ => sign::hoursmith(b"whsec_extractor_demo", now, &body).insert_into(headers),
        }
        let response = client.request(request).await?;
        println!("{path} answered {}", response.status());
    }
    // Finish the background work before exiting.
    shutdown.shutdown(Duration::from_secs(10)).await;
    Ok(())
}
