//! The runtime is built once: serving it on many connections starts nothing new,
//! and stored deliveries belong to the handler named when they were stored.

use std::{convert::Infallible, time::Duration};

use axum::{Router, routing::post_service};
use hookwise::{
    AnyStore, Delivery, Hoursmith, MemoryStore, Receiver, Webhooks, hoursmith,
    runtime::{DurableQueue, Enqueue, Received, Stored},
    tower::WebhookEndpoint,
};
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_test_support::{hoursmith as signed, *};
use http_body_util::{BodyExt, Full};

fn provider() -> Hoursmith {
    Hoursmith::new(HOURSMITH_SECRET).expect("secret")
}

/// A handler that records the event ids it ran.
fn recording(
    recorder: &Recorder,
) -> impl Fn(Delivery<hoursmith::Event>) -> std::future::Ready<Result<(), Infallible>>
+ Send
+ Sync
+ 'static {
    let recorder = recorder.clone();
    move |delivery| {
        recorder.record(delivery.dedupe_key().id());
        std::future::ready(Ok(()))
    }
}

/// The durable queue streams Redis holds.
fn streams(redis: &RedisServer) -> Vec<String> {
    let mut streams: Vec<_> = redis
        .cli(&["--scan", "--pattern", "hookwise:queue:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    streams.sort_unstable();
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_start_no_stream_and_no_reader() {
    let Some(redis) = RedisServer::start("200 connections") else {
        return;
    };
    let url = redis.url();
    let recorder = Recorder::default();
    let webhooks = Webhooks::builder(
        Receiver::new(provider(), RedisStore::new(&url).expect("store")).expect("receiver"),
    )
    .durable_queue(RedisQueue::new(&url).expect("queue"))
    .handler("tasks", recording(&recorder))
    .build()
    .expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "tasks").expect("a registered name");
    let app = Router::new().route("/hook", post_service(endpoint));
    let addr = serve(app).await;
    let tasks = webhooks.shutdown_handle();

    // Idle, the runtime runs the "tasks" handler's reader and the task that
    // acknowledges what its workers processed: two tasks, and no more after.
    assert!(eventually(Duration::from_secs(5), || tasks.tasks() == 2).await);
    for i in 0..200 {
        // A connection of its own for each delivery: axum makes a service per
        // connection, which must start nothing.
        let mut sender = connect(addr).await;
        let delivery = signed(&format!("evt_{i}"));
        let mut request = http::Request::post("/hook")
            .header(http::header::HOST, "localhost")
            .body(Full::new(delivery.body.clone()))
            .expect("request");
        request.headers_mut().extend(delivery.headers);
        let response = sender.send_request(request).await.expect("answer");
        assert_eq!(response.status(), 200, "delivery {i}");
        let _ = response.into_body().collect().await;
    }
    assert_eq!(recorder.wait_for(200, Duration::from_secs(30)).await, 200);
    assert_eq!(streams(&redis), ["hookwise:queue:{hoursmith}:tasks"]);
    assert!(
        eventually(Duration::from_secs(5), || tasks.tasks() == 2).await,
        "tasks after 200 connections: {}",
        tasks.tasks()
    );
    let report = webhooks.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.unfinished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_adds_a_route_keeps_stored_deliveries_with_their_handler() {
    let Some(redis) = RedisServer::start("deploy adds a route") else {
        return;
    };
    let url = redis.url();
    let store = || RedisStore::new(&url).expect("store");
    let queue = || RedisQueue::new(&url).expect("queue");

    // Version 1 has one route, handled by "invoices". It stores three deliveries
    // and dies before any is run: the queue is written to without its readers.
    let v1 = Receiver::new(provider(), store()).expect("receiver");
    let stored = queue();
    // Not the receiver's store: the queue stores, and v1 commits on its own.
    let unrelated = AnyStore::new(MemoryStore::new());
    for id in ["evt_a", "evt_b", "evt_c"] {
        let delivery = signed(id);
        let mut request = http::Request::post("/webhooks/hoursmith")
            .body(Full::new(delivery.body))
            .expect("request");
        *request.headers_mut() = delivery.headers;
        let (head, body) = request.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let Ok(hookwise::Outcome::Accepted { delivery, claim }) =
            v1.receive(&head.headers, bytes).await
        else {
            panic!("{id} was not accepted");
        };
        let entry = Enqueue::new("invoices", &head, &delivery, &claim, &unrelated);
        let stored = DurableQueue::<Hoursmith>::enqueue(&stored, entry).await;
        assert_eq!(stored.expect("stored"), Stored::Uncommitted);
        v1.commit(&claim).await.expect("committed");
    }

    // Version 2 adds a route, registered first, with a handler of its own.
    let (clients, invoices) = (Recorder::default(), Recorder::default());
    let v2 = Webhooks::builder(Receiver::new(provider(), store()).expect("receiver"))
        .durable_queue(queue())
        .handler("clients", recording(&clients))
        .handler("invoices", recording(&invoices))
        .build()
        .expect("valid");
    assert_eq!(invoices.wait_for(3, Duration::from_secs(10)).await, 3);
    let mut ran = invoices.ids();
    ran.sort_unstable();
    assert_eq!(ran, ["evt_a", "evt_b", "evt_c"]);
    assert_eq!(
        clients.runs(),
        0,
        "the new route's handler ran none of them"
    );

    // And what version 2 receives for its new route goes to its new handler.
    let delivery = signed("evt_new_client");
    let mut request = http::Request::post("/webhooks/clients")
        .body(Full::new(delivery.body))
        .expect("request");
    *request.headers_mut() = delivery.headers;
    let (head, body) = request.into_parts();
    let Ok(Received::New { delivery, claim }) = v2.receive(&head, body).await else {
        panic!("not a new event");
    };
    v2.hand_to("clients", &head, delivery, claim)
        .await
        .expect("stored");
    assert_eq!(clients.wait_for(1, Duration::from_secs(10)).await, 1);
    assert_eq!(invoices.runs(), 3);
    v2.shutdown(Duration::from_secs(10)).await;
}
