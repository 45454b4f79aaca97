//! The core on its own, no web server: sign deliveries like Mojave and Hoursmith do,
//! feed them to `Receiver::receive`, and print what a receiver would answer.
//!
//! ```text
//! cargo run --example core
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hookwise::{Hoursmith, MemoryStore, Mojave, Outcome, Provider, Receiver, sign};
use http::HeaderMap;

const HOURSMITH_SECRET: &str = "whsec_demo_hoursmith";
const MOJAVE_SECRET: &str = "demo_mojave_secret";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let hoursmith = Receiver::new(Hoursmith::new(HOURSMITH_SECRET)?, MemoryStore::new())?;
    let mojave = Receiver::new(Mojave::new(MOJAVE_SECRET)?, MemoryStore::new())?;

    let paid = Bytes::from(format!(
        r#"{{"id":"6f1c1a52-9d1e-4a57-a2b4-0c8d6c1f0001","type":"invoice.paid","created":{now},
            "orgId":"00000000-0000-0000-0000-000000000000","livemode":true,
            "data":{{"invoice":{{"id":"inv_42"}},"payment":{{"id":"pay_7"}}}}}}"#
    ));
    let entry = Bytes::from(format!(
        r#"{{"type":"time_entry.created","timestamp":{now},"data":{{"id":"te_83hskd9a"}}}}"#
    ));

    let hs = |secret: &str, t: u64, body: &Bytes| {
        let mut headers = HeaderMap::new();
        sign::hoursmith(secret.as_bytes(), t, body).insert_into(&mut headers);
        headers
    };
    let mj = |secret: &str, body: &Bytes| {
        let mut headers = HeaderMap::new();
        sign::mojave(secret.as_bytes(), body).insert_into(&mut headers);
        headers
    };
    let tampered = Bytes::from(String::from_utf8_lossy(&paid).replace("inv_42", "inv_43"));

    println!("{:<34} {:>6}  outcome", "delivery", "status");
    report(
        &hoursmith,
        "hoursmith: new invoice.paid",
        hs(HOURSMITH_SECRET, now, &paid),
        paid.clone(),
    )
    .await;
    report(
        &hoursmith,
        "hoursmith: sender's retry",
        hs(HOURSMITH_SECRET, now + 60, &paid),
        paid.clone(),
    )
    .await;
    report(
        &hoursmith,
        "hoursmith: tampered body",
        hs(HOURSMITH_SECRET, now, &paid),
        tampered,
    )
    .await;
    report(
        &hoursmith,
        "hoursmith: signed 10 min ago",
        hs(HOURSMITH_SECRET, now - 600, &paid),
        paid.clone(),
    )
    .await;
    report(
        &hoursmith,
        "hoursmith: wrong secret",
        hs("whsec_guess", now, &paid),
        paid,
    )
    .await;
    report(
        &mojave,
        "mojave: new time_entry.created",
        mj(MOJAVE_SECRET, &entry),
        entry.clone(),
    )
    .await;
    report(
        &mojave,
        "mojave: sender's retry",
        mj(MOJAVE_SECRET, &entry),
        entry,
    )
    .await;
    Ok(())
}

/// Receives one delivery, commits it as a handler would, and prints one row.
async fn report<P: Provider>(
    receiver: &Receiver<P, MemoryStore>,
    label: &str,
    headers: HeaderMap,
    body: Bytes,
) {
    let (status, outcome) = match receiver.receive(&headers, body).await {
        Ok(Outcome::Accepted { delivery, claim }) => {
            let row = format!("accepted, key {}", delivery.dedupe_key());
            let committed = receiver.commit(&claim).await;
            (200, committed.map_or_else(|e| e.to_string(), |()| row))
        }
        Ok(other) => (200, other.label().to_owned()),
        Err(rejection) => (rejection.status().as_u16(), rejection.body()),
    };
    println!("{label:<34} {status:>6}  {outcome}");
}
