//! Per-resource ordering across instances on one Postgres queue: two instances
//! take rows from the same table, and one invoice's events still run one at a
//! time in the order they were stored, while another invoice's run beside them.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{Router, routing::post_service};
use bytes::Bytes;
use hookwise_core::{Delivery, Hoursmith, Receiver, hoursmith};
use hookwise_postgres::{PgQueue, PgStore};
use hookwise_runtime::{Ordering, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

/// Each run's start and end, as `start <id>` / `end <id>`, in the order they happened.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<String>>>);

impl Timeline {
    fn push(&self, what: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(what);
    }

    fn of(&self, invoice: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|what| what.contains(invoice))
            .cloned()
            .collect()
    }

    fn ends(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|what| what.starts_with("end"))
            .count()
    }
}

/// An instance on `server`'s queue; its handler sleeps 300 ms on in_1's first event,
/// 10 ms on the others, so that unordered runs end out of order.
async fn instance(
    server: &PgServer,
    ordered: bool,
    timeline: &Timeline,
) -> (std::net::SocketAddr, Webhooks<Hoursmith>) {
    let store = PgStore::new(&server.url()).expect("valid URL");
    store.migrate().await.expect("migrated");
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let queue = PgQueue::new(&server.url())
        .expect("valid URL")
        .poll_interval(Duration::from_millis(20))
        .expect("valid settings");
    let timeline = timeline.clone();
    let mut builder = Webhooks::builder(receiver).durable_queue(queue).handler(
        "invoices",
        move |delivery: Delivery<hoursmith::Event>| {
            let timeline = timeline.clone();
            async move {
                let id = delivery.event().id().to_owned();
                timeline.push(format!("start {id}"));
                let pause = if id == "evt_in_1_0" { 300 } else { 10 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                timeline.push(format!("end {id}"));
                Ok::<_, std::convert::Infallible>(())
            }
        },
    );
    if ordered {
        builder = builder.ordering(Ordering::by_resource());
    }
    let webhooks = builder.build().expect("valid");
    let endpoint = WebhookEndpoint::new(&webhooks, "invoices").expect("registered");
    let addr = serve(Router::new().route("/hooks", post_service(endpoint))).await;
    (addr, webhooks)
}

/// Sends four events of `in_1` and one of `in_2`, alternating between the two
/// instances, each answered before the next, and waits for their runs.
async fn run_across_two_instances(ordered: bool) -> Timeline {
    let Some(server) = PgServer::start("ordering across instances") else {
        return Timeline::default();
    };
    let timeline = Timeline::default();
    let (a, webhooks_a) = instance(&server, ordered, &timeline).await;
    let (b, webhooks_b) = instance(&server, ordered, &timeline).await;
    let client = client();
    let base = now();
    let events = [
        ("in_1", 0),
        ("in_1", 1),
        ("in_2", 0),
        ("in_1", 2),
        ("in_1", 3),
    ];
    for (n, (invoice, seq)) in events.into_iter().enumerate() {
        let id = format!("evt_{invoice}_{seq}");
        let body = Bytes::from(format!(
            r#"{{"id":"{id}","type":"invoice.sent","created":{},"orgId":"o","livemode":true,
                "data":{{"invoice":{{"id":"{invoice}"}}}}}}"#,
            base + seq
        ));
        let addr = if n % 2 == 0 { a } else { b };
        let answer = send(&client, addr, "/hooks", &hoursmith_signed(body, now())).await;
        assert_eq!(answer.status, 200, "{id}: {answer:?}");
    }
    let ran = eventually(Duration::from_secs(20), || timeline.ends() == events.len()).await;
    assert!(ran, "every event ran: {:?}", timeline.of("evt"));
    webhooks_a.shutdown(Duration::from_secs(5)).await;
    webhooks_b.shutdown(Duration::from_secs(5)).await;
    timeline
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invoices_events_run_one_at_a_time_in_order_across_two_instances() {
    let timeline = run_across_two_instances(true).await;
    if timeline.ends() == 0 {
        return; // no Postgres here
    }
    let one_by_one: Vec<String> = (0..4)
        .flat_map(|seq| {
            [
                format!("start evt_in_1_{seq}"),
                format!("end evt_in_1_{seq}"),
            ]
        })
        .collect();
    assert_eq!(timeline.of("in_1"), one_by_one);
    // The other invoice did not wait for the slow first event of in_1.
    let all = timeline.of("evt");
    let position = |what: &str| all.iter().position(|w| w == what);
    assert!(
        position("end evt_in_2_0") < position("end evt_in_1_0"),
        "{all:?}"
    );
}

/// The control: without ordering, the two instances run in_1's events side by side
/// and they end out of order, so the test above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ordering_two_instances_run_one_invoices_events_side_by_side() {
    let timeline = run_across_two_instances(false).await;
    if timeline.ends() == 0 {
        return;
    }
    let all = timeline.of("in_1");
    let position = |what: &str| all.iter().position(|w| w == what);
    assert!(
        position("end evt_in_1_1") < position("end evt_in_1_0"),
        "the second ended before the slow first: {all:?}"
    );
}
