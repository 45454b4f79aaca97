//! THE demo: a receiver on a free local port, real signed deliveries sent to it, and a
//! table of what the receiver answered and what the handler got.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Nothing to configure: the secrets are demo values and the dedupe store is in
//! memory. Exits 0 when every delivery was answered as documented.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Extension, Router, extract::State, http::HeaderMap, routing::post};
use bytes::Bytes;
use hookwise::{
    Delivery, Hoursmith, MemoryStore, Mojave, Receiver, Webhooks, hoursmith, mojave, sign,
    tower::WebhookLayer,
};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

const HOURSMITH_SECRET: &str = "whsec_quickstart_hoursmith";
const MOJAVE_SECRET: &str = "quickstart_mojave_secret";
/// Which delivery a handler run belongs to (the handler sees the request head).
const ROW_HEADER: &str = "x-quickstart-row";

/// What the handlers got, by row.
type Handled = Arc<Mutex<BTreeMap<usize, String>>>;

fn record(handled: &Handled, headers: &HeaderMap, what: String) {
    let row = headers
        .get(ROW_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Ok(mut handled) = handled.lock() {
        handled.insert(row, what);
    }
}

async fn on_hoursmith(
    State(handled): State<Handled>,
    headers: HeaderMap,
    Extension(delivery): Extension<Delivery<hoursmith::Event>>,
) {
    use hoursmith::EventData;
    let event = delivery.event();
    let mut what = match event.data() {
        EventData::InvoicePaid { invoice, payment } => format!(
            "InvoicePaid invoice={} payment={}",
            invoice.id().unwrap_or("?"),
            payment.id().unwrap_or("?")
        ),
        EventData::TaskCreated { task } => format!("TaskCreated task={}", task.id().unwrap_or("?")),
        EventData::Unknown { event_type, .. } => format!("Unknown type {event_type}"),
        _ => event.event_type().to_owned(),
    };
    if event.is_test() {
        what.push_str(" (test event)");
    }
    record(&handled, &headers, what);
}

async fn on_mojave(
    State(handled): State<Handled>,
    headers: HeaderMap,
    Extension(delivery): Extension<Delivery<mojave::Event>>,
) {
    use mojave::EventData;
    let what = match delivery.event().data() {
        EventData::TimeEntryCreated(entry) => {
            format!("TimeEntryCreated entry={}", entry.id().unwrap_or("?"))
        }
        EventData::Unknown { event_type, .. } => format!("Unknown type {event_type}"),
        _ => delivery.event().event_type().to_owned(),
    };
    record(&handled, &headers, what);
}

/// One delivery of the demo and what the contract says it must get.
struct Row {
    what: &'static str,
    path: &'static str,
    headers: http::HeaderMap,
    body: Bytes,
    expected_status: u16,
    expected_body: &'static str,
    expect_handler: bool,
}

fn hoursmith_row(
    what: &'static str,
    body: &Bytes,
    signed_at: u64,
    expected: (u16, &'static str, bool),
) -> Row {
    let mut headers = http::HeaderMap::new();
    sign::hoursmith(HOURSMITH_SECRET.as_bytes(), signed_at, body).insert_into(&mut headers);
    Row {
        what,
        path: "/webhooks/hoursmith",
        headers,
        body: body.clone(),
        expected_status: expected.0,
        expected_body: expected.1,
        expect_handler: expected.2,
    }
}

fn mojave_row(what: &'static str, body: &Bytes, expected: (u16, &'static str, bool)) -> Row {
    let mut headers = http::HeaderMap::new();
    sign::mojave(MOJAVE_SECRET.as_bytes(), body).insert_into(&mut headers);
    Row {
        what,
        path: "/webhooks/mojave",
        headers,
        body: body.clone(),
        expected_status: expected.0,
        expected_body: expected.1,
        expect_handler: expected.2,
    }
}

fn deliveries(now: u64) -> Vec<Row> {
    let hs = |id: &str, event_type: &str, livemode: bool, data: &str| {
        Bytes::from(format!(
            r#"{{"id":"{id}","type":"{event_type}","created":{now},"orgId":"0f8fad5b-d9cb-469f-a165-70867728950e","livemode":{livemode},"data":{data}}}"#
        ))
    };
    let mj = |event_type: &str, timestamp: u64, id: &str| {
        Bytes::from(format!(
            r#"{{"type":"{event_type}","timestamp":{timestamp},"data":{{"id":"{id}"}}}}"#
        ))
    };
    let paid = hs(
        "4f9c2a1e-7d4b-4c1a-9a57-2b0e6c1d0001",
        "invoice.paid",
        true,
        r#"{"invoice":{"id":"inv_42"},"payment":{"id":"pay_7"}}"#,
    );
    let tampered = Bytes::from(String::from_utf8_lossy(&paid).replace("inv_42", "inv_43"));
    let test = hs(
        "4f9c2a1e-7d4b-4c1a-9a57-2b0e6c1d0002",
        "task.created",
        false,
        r#"{"test":true,"task":{"id":"task_1"}}"#,
    );
    let unknown = hs(
        "4f9c2a1e-7d4b-4c1a-9a57-2b0e6c1d0003",
        "invoice.voided",
        true,
        r#"{"invoice":{"id":"inv_9"}}"#,
    );
    let entry = mj("time_entry.created", now, "te_83hskd9a");
    let mojave_tampered = Bytes::from(String::from_utf8_lossy(&entry).replace("te_83", "te_84"));
    let two_days_old = mj("invoice.paid", now - 2 * 86_400, "inv_old");
    let mojave_unknown = mj("client.merged", now, "cl_1");

    const NEW: (u16, &str, bool) = (200, r#"{"status":"accepted"}"#, true);
    const DUPLICATE: (u16, &str, bool) = (200, r#"{"status":"duplicate"}"#, false);
    const FORGED: (u16, &str, bool) = (401, r#"{"error":"signature_mismatch"}"#, false);
    const STALE: (u16, &str, bool) = (401, r#"{"error":"timestamp_too_old"}"#, false);
    vec![
        hoursmith_row("hoursmith: new invoice.paid", &paid, now, NEW),
        hoursmith_row(
            "hoursmith: sender's retry of it",
            &paid,
            now + 60,
            DUPLICATE,
        ),
        Row {
            body: tampered,
            ..hoursmith_row("hoursmith: tampered body", &paid, now, FORGED)
        },
        hoursmith_row("hoursmith: signed 10 minutes ago", &paid, now - 600, STALE),
        hoursmith_row("hoursmith: test event", &test, now, NEW),
        hoursmith_row("hoursmith: unknown type", &unknown, now, NEW),
        mojave_row("mojave: new time_entry.created", &entry, NEW),
        mojave_row("mojave: sender's retry of it", &entry, DUPLICATE),
        Row {
            body: mojave_tampered,
            ..mojave_row("mojave: tampered body", &entry, FORGED)
        },
        mojave_row("mojave: payload 2 days old", &two_days_old, STALE),
        mojave_row("mojave: unknown type", &mojave_unknown, NEW),
    ]
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // The receiver: one runtime per provider, built once (in-memory dedupe, ack-fast
    // processing), and a layer wrapping each route's handler in it.
    let handled = Handled::default();
    let hoursmith = Webhooks::new(Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET)?,
        MemoryStore::new(),
    )?);
    let mojave = Webhooks::new(Receiver::new(
        Mojave::new(MOJAVE_SECRET)?,
        MemoryStore::new(),
    )?);
    let shutdowns = [hoursmith.shutdown_handle(), mojave.shutdown_handle()];
    let app = Router::new()
        .route(
            "/webhooks/hoursmith",
            post(on_hoursmith).route_layer(WebhookLayer::new(&hoursmith)?),
        )
        .route(
            "/webhooks/mojave",
            post(on_mojave).route_layer(WebhookLayer::new(&mojave)?),
        )
        .with_state(handled.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("hookwise quickstart: receiver listening on http://{addr}\n");

    // The senders: real signed HTTP deliveries.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let rows = deliveries(now);
    let mut answers = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        answers.push(send(addr, i + 1, row).await?);
    }
    // Let the background handlers finish before reading what they got.
    for shutdown in &shutdowns {
        shutdown.shutdown(Duration::from_secs(10)).await;
    }

    let handled = handled.lock().map(|h| h.clone()).unwrap_or_default();
    let mut all_ok = true;
    println!(
        "{:<3} {:<34} {:<44} {:<46} ok",
        "#", "delivery", "receiver answered", "handler got"
    );
    for (i, (row, (status, body))) in rows.iter().zip(&answers).enumerate() {
        let got = handled.get(&(i + 1));
        let ok = *status == row.expected_status
            && body == row.expected_body
            && got.is_some() == row.expect_handler;
        all_ok &= ok;
        println!(
            "{:<3} {:<34} {:<44} {:<46} {}",
            i + 1,
            row.what,
            format!("{status} {body}"),
            got.map_or("(not run)", String::as_str),
            if ok { "yes" } else { "NO" }
        );
    }
    println!();
    if all_ok {
        println!("Every delivery was answered as documented.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("Some deliveries were NOT answered as documented (rows marked NO).");
        Ok(ExitCode::FAILURE)
    }
}

async fn send(
    addr: SocketAddr,
    row_number: usize,
    row: &Row,
) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::post(format!("http://{addr}{}", row.path))
        .header(ROW_HEADER, row_number)
        .body(Full::new(row.body.clone()))?;
    request.headers_mut().extend(row.headers.clone());
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
