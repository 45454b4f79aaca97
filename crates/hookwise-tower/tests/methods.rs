//! A wrong method is a `405` with `Allow: POST`, before anything is read or verified,
//! through a real axum `Router`, with the layer applied by `route_layer` (as the README
//! shows) and by `layer` (which also wraps the method router's fallback).

use std::{net::SocketAddr, sync::Arc};

use axum::{Extension, Router, extract::State, routing::post};
use bytes::Bytes;
use hookwise_core::{Delivery as Verified, Hoursmith, MemoryStore, Receiver, hoursmith};
use hookwise_runtime::{Stats, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::WebhookLayer;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

async fn record(
    State(recorder): State<Recorder>,
    Extension(delivery): Extension<Verified<hoursmith::Event>>,
) {
    recorder.record(delivery.event().id());
}

type Layer = WebhookLayer<Hoursmith>;

/// How the test applies the layer to the router: `route_layer` or `layer`.
type Apply = fn(Router<Recorder>, Layer) -> Router<Recorder>;

/// A layer over a store the test can read, applied to the route by `apply`.
fn app(apply: Apply, recorder: Recorder) -> (Router, Arc<MemoryStore>, Stats) {
    let store = Arc::new(MemoryStore::new());
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        store.clone(),
    )
    .expect("config");
    let webhooks = Webhooks::new(receiver);
    let layer = WebhookLayer::new(&webhooks).expect("in memory");
    let stats = webhooks.stats();
    let routes = Router::new().route("/webhooks/hoursmith", post(record));
    (apply(routes, layer).with_state(recorder), store, stats)
}

/// Sends a correctly signed delivery with `method`; the status, `Allow` and body.
async fn with_method(addr: SocketAddr, method: Method, delivery: &Delivery) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}/webhooks/hoursmith"))
        .body(Full::new(delivery.body.clone()))
        .expect("request");
    request.headers_mut().extend(delivery.headers.clone());
    let response = client().request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body: Bytes = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn a_wrong_method_is_405_before_verification(apply: Apply) {
    let recorder = Recorder::default();
    let (router, store, stats) = app(apply, recorder.clone());
    let addr = serve(router).await;
    // Signed and valid: only the method is wrong, and that alone decides.
    let delivery = hoursmith("evt_wrong_method");
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let answer = with_method(addr, method.clone(), &delivery).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let allow = answer.headers.get(http::header::ALLOW).expect("Allow");
        assert!(
            allow.to_str().is_ok_and(|allow| allow.contains("POST")),
            "{method}: {allow:?}"
        );
    }
    // Nothing was verified, claimed or run.
    assert_eq!(store.stats().claims, 0);
    assert_eq!(stats.snapshot().accepted, 0);
    assert_eq!(recorder.runs(), 0);
    // The same delivery as a POST is taken.
    let answer = send(&client(), addr, "/webhooks/hoursmith", &delivery).await;
    assert_eq!(answer.body, r#"{"status":"accepted"}"#);
    assert_eq!(
        recorder
            .wait_for(1, std::time::Duration::from_secs(5))
            .await,
        1
    );
}

#[tokio::test]
async fn route_layer_a_wrong_method_is_405_before_verification() {
    a_wrong_method_is_405_before_verification(|routes, layer| routes.route_layer(layer)).await;
}

#[tokio::test]
async fn layer_a_wrong_method_is_405_before_verification() {
    a_wrong_method_is_405_before_verification(|routes, layer| routes.layer(layer)).await;
}

#[tokio::test]
async fn layer_answers_the_wrong_method_with_the_contracts_body_and_counts_it() {
    let (router, _store, stats) = app(|routes, layer| routes.layer(layer), Recorder::default());
    let addr = serve(router).await;
    let answer = with_method(addr, Method::GET, &hoursmith("evt_get")).await;
    assert_eq!(answer.body, r#"{"error":"method_not_allowed"}"#);
    assert_eq!(
        stats
            .snapshot()
            .rejected(hookwise_core::RejectionKind::MethodNotAllowed),
        1
    );
    assert_eq!(stats.snapshot().rejected_total(), 1, "and nothing else");
}
