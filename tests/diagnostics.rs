//! Mismatch diagnostics in the running server: counted in `Stats` (and logged),
//! never in the response.

use std::time::Duration;

use axum::{Extension, Router, http::StatusCode, routing::post};
use bytes::Bytes;
use hookwise::{
    Hoursmith, MemoryStore, Receiver, Secrets, Webhooks, hoursmith, tower::WebhookLayer,
};
use hookwise_test_support::*;

const SENT: &str = r#"{"id":"evt_1","type":"task.created","created":1717603200,"orgId":"o","livemode":true,"data":{"task":{"id":"t_1"}}}"#;

fn signed(secret: &str, t: u64, signed: &str, sent: &str) -> Delivery {
    let mut headers = http::HeaderMap::new();
    hookwise::sign::hoursmith(secret.as_bytes(), t, signed.as_bytes()).insert_into(&mut headers);
    Delivery {
        headers,
        body: Bytes::from(sent.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnoses_are_counted_and_never_answered() {
    let secrets = Secrets::new(["whsec_current", "whsec_retired"]).expect("secrets");
    let receiver = Receiver::new(Hoursmith::with_secrets(secrets), MemoryStore::new())
        .expect("config")
        .diagnostics(true);
    let webhooks = Webhooks::new(receiver);
    async fn ok(_: Extension<hookwise::Delivery<hoursmith::Event>>) -> StatusCode {
        StatusCode::OK
    }
    let app = Router::new().route(
        "/hook",
        post(ok).route_layer(WebhookLayer::new(&webhooks).expect("in memory")),
    );
    let addr = serve(app).await;
    let client = client();
    let spaced = SENT.replace("\":", "\": ").replace(",\"", ", \"");
    let cases = [
        // A body parser re-spaced the JSON.
        (
            signed("whsec_current", now(), SENT, &spaced),
            401,
            r#"{"error":"signature_mismatch"}"#,
        ),
        // The sender still signs with the retired secret.
        (
            signed("whsec_retired", now(), SENT, SENT),
            200,
            r#"{"status":"accepted"}"#,
        ),
        // The sender's clock is 10 minutes behind.
        (
            signed("whsec_current", now() - 600, SENT, SENT),
            401,
            r#"{"error":"timestamp_too_old"}"#,
        ),
    ];
    for (delivery, status, body) in cases {
        let answer = send(&client, addr, "/hook", &delivery).await;
        assert_eq!(
            (answer.status.as_u16(), answer.body.as_str()),
            (status, body)
        );
    }
    let stats = webhooks.stats().snapshot();
    for label in ["reencoded_body", "retired_secret", "clock_skew"] {
        assert_eq!(stats.diagnosed(label), 1, "{label}");
    }
    assert_eq!(stats.diagnosed("wrong_kind_of_secret"), 0);
    webhooks.shutdown(Duration::from_secs(5)).await;
}
