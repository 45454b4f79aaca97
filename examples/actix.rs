//! An actix-web 4 receiver for Mojave and Hoursmith, over hookwise's core.
//!
//! ```text
//! MOJAVE_WEBHOOK_SECRET=... HOURSMITH_WEBHOOK_SECRET=... cargo run --example actix
//! ```
//!
//! Same configuration, contract, dedupe and output as the `receiver` example; the
//! only actix-specific code is the small adapter below, which converts the request
//! head to an `http::HeaderMap`, buffers the body within the receiver's limit, and
//! converts the core's answers back. Verification, parsing and dedupe are the core's
//! `Receiver::receive`. Events are processed inline, then committed; actix's own
//! graceful shutdown (SIGTERM, Ctrl-C) waits for the requests in flight.

mod support;

use std::process::ExitCode;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode, web};
use hookwise::{
    Delivery, Hoursmith, MemoryStore, Mojave, Outcome, Provider, Receiver, Rejection, RejectionKind,
};
use support::{Config, print_event};

/// The receivers, one per provider, shared by actix's workers.
struct Receivers {
    hoursmith: Receiver<Hoursmith, MemoryStore>,
    mojave: Receiver<Mojave, MemoryStore>,
}

// --- The adapter: actix types in, the core's answers out. ---

/// actix's header map (of `http` 0.2 types) as an `http` 1 `HeaderMap`.
fn header_map(request: &HttpRequest) -> http::HeaderMap {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let name = http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
            let value = http::HeaderValue::from_bytes(value.as_bytes()).ok()?;
            Some((name, value))
        })
        .collect()
}

/// One of the core's responses (status, headers, JSON body) as an actix response.
fn respond(response: http::Response<String>) -> HttpResponse {
    let status = StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    for (name, value) in response.headers() {
        builder.insert_header((name.as_str(), value.as_bytes()));
    }
    builder.body(response.into_body())
}

/// Receives one delivery through the core, runs `process` on a new event, and
/// commits it.
async fn receive<P: Provider>(
    receiver: &Receiver<P, MemoryStore>,
    request: &HttpRequest,
    payload: web::Payload,
    process: impl FnOnce(&Delivery<P::Event>),
) -> HttpResponse {
    let headers = header_map(request);
    if let Err(rejection) = receiver.check_content_length(&headers) {
        return respond(rejection.to_response());
    }
    let body = match payload.to_bytes_limited(receiver.limit()).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            let rejection =
                Rejection::new(RejectionKind::BodyUnreadable).with_detail(error.to_string());
            return respond(rejection.to_response());
        }
        Err(_over_limit) => {
            return respond(
                receiver
                    .too_large(receiver.limit() as u64 + 1)
                    .to_response(),
            );
        }
    };
    let outcome = match receiver.receive(&headers, body).await {
        Ok(outcome) => outcome,
        Err(rejection) => {
            tracing::debug!(%rejection, "delivery rejected");
            return respond(rejection.to_response());
        }
    };
    let response = outcome.to_response();
    if let Outcome::Accepted { delivery, claim } = outcome {
        process(&delivery);
        if let Err(error) = receiver.commit(&claim).await {
            tracing::error!(%error, "could not record a processed event");
        }
    }
    respond(response)
}

// --- The application. ---

async fn on_hoursmith(
    request: HttpRequest,
    payload: web::Payload,
    receivers: web::Data<Receivers>,
) -> HttpResponse {
    receive(&receivers.hoursmith, &request, payload, |delivery| {
        let event = delivery.event();
        print_event(
            "hoursmith",
            delivery.dedupe_key().id(),
            event.event_type(),
            event.livemode(),
        );
    })
    .await
}

async fn on_mojave(
    request: HttpRequest,
    payload: web::Payload,
    receivers: web::Data<Receivers>,
) -> HttpResponse {
    receive(&receivers.mojave, &request, payload, |delivery| {
        print_event(
            "mojave",
            delivery.dedupe_key().id(),
            delivery.event().event_type(),
            true,
        );
    })
    .await
}

#[actix_web::main]
async fn main() -> ExitCode {
    support::main("actix", run).await
}

async fn run(config: Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let receivers = web::Data::new(Receivers {
        hoursmith: Receiver::new(
            Hoursmith::new(&config.hoursmith_secret)?,
            MemoryStore::new(),
        )?,
        mojave: Receiver::new(Mojave::new(&config.mojave_secret)?, MemoryStore::new())?,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(receivers.clone())
            .route("/webhooks/hoursmith", web::post().to(on_hoursmith))
            .route("/webhooks/mojave", web::post().to(on_mojave))
    })
    .workers(2)
    .bind(config.addr)?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening");
    }
    server.run().await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
