//! The service on its own, driven with `tower::ServiceExt::oneshot`.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use hookwise_core::{Delivery as Verified, Hoursmith, MemoryStore, Receiver, hoursmith};
use hookwise_runtime::{AckMode, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::{HandlerBody, WebhookLayer, WebhookService};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

type Seen = Arc<Mutex<Vec<(String, String, Bytes, Option<String>)>>>;

fn service(
    seen: Seen,
) -> WebhookService<
    impl tower::Service<
        Request<HandlerBody>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync,
    Hoursmith,
> {
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        MemoryStore::new(),
    )
    .expect("config");
    let handler = service_fn(move |request: Request<HandlerBody>| {
        let seen = seen.clone();
        async move {
            let id = request
                .extensions()
                .get::<Verified<hoursmith::Event>>()
                .map(|d| d.event().id().to_owned());
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let trace = parts
                .headers
                .get("x-trace")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Ok(mut seen) = seen.lock() {
                seen.push((parts.uri.to_string(), id.unwrap_or_default(), body, trace));
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }
    });
    let webhooks = Webhooks::builder(receiver)
        .mode(AckMode::AfterHandler)
        .build()
        .expect("no durable queue");
    WebhookLayer::new(&webhooks)
        .expect("in memory")
        .layer(handler)
}

fn request(delivery: &Delivery) -> Request<Full<Bytes>> {
    let mut request = Request::post("/hooks/hoursmith?source=test")
        .header("x-trace", "abc")
        .body(Full::new(delivery.body.clone()))
        .expect("request");
    request.headers_mut().extend(delivery.headers.clone());
    request
}

#[tokio::test]
async fn the_handler_gets_the_head_the_raw_body_and_the_typed_delivery() {
    let seen = Seen::default();
    let delivery = hoursmith("evt_oneshot");
    let response = service(seen.clone())
        .oneshot(request(&delivery))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [(
            "/hooks/hoursmith?source=test".to_owned(),
            "evt_oneshot".to_owned(),
            delivery.body.clone(),
            Some("abc".to_owned())
        )]
    );
}

#[tokio::test]
async fn clones_share_dedupe() {
    let seen = Seen::default();
    let svc = service(seen.clone());
    let delivery = hoursmith("evt_shared");
    let first = svc
        .clone()
        .oneshot(request(&delivery))
        .await
        .expect("infallible");
    let second = svc.oneshot(request(&delivery)).await.expect("infallible");
    let body = second.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(
        (first.status(), body.as_ref()),
        (StatusCode::OK, &br#"{"status":"duplicate"}"#[..])
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(seen.lock().expect("lock").len(), 1);
}

#[test]
fn the_service_fits_axum_serve() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>(_: &T) {}
    assert_send_sync_clone(&service(Seen::default()));
}
