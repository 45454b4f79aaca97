//! `WebhooksBuilder::build` checks every setting once, with a typed error for each.

use std::time::Duration;

use hookwise_core::{ConfigError, Delivery, Hoursmith, MemoryStore, Receiver, hoursmith};
use hookwise_runtime::{
    AckMode, DurableQueue, Enqueue, QueueFuture, Stored, Webhooks, WebhooksBuilder, Workers,
};

fn builder() -> WebhooksBuilder<Hoursmith> {
    let provider = Hoursmith::new("whsec_builder").expect("secret");
    Webhooks::builder(Receiver::new(provider, MemoryStore::new()).expect("receiver"))
}

async fn ok(_: Delivery<hoursmith::Event>) -> Result<(), std::convert::Infallible> {
    Ok(())
}

/// A queue that stores nothing and counts the readers it was asked to start.
#[derive(Clone, Default)]
struct CountingQueue {
    started: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DurableQueue<Hoursmith> for CountingQueue {
    fn enqueue<'a>(&'a self, _entry: Enqueue<'a, hoursmith::Event>) -> QueueFuture<'a, Stored> {
        Box::pin(async { Ok(Stored::Uncommitted) })
    }

    fn start(&self, workers: Workers<Hoursmith>) {
        if let Ok(mut started) = self.started.lock() {
            started.push(workers.handler.name().to_owned());
        }
    }
}

#[test]
fn zero_settings_are_refused_by_name() {
    let cases = [
        (builder().concurrency(0), "processing concurrency"),
        (builder().handler_timeout(Duration::ZERO), "handler timeout"),
        (builder().body_timeout(Duration::ZERO), "body timeout"),
    ];
    for (builder, what) in cases {
        assert_eq!(builder.build().err(), Some(ConfigError::Zero(what)));
    }
}

#[test]
fn handler_names_are_checked_and_unique() {
    for (name, reason) in [
        ("", "empty"),
        (
            "in voices",
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ),
        (
            "{tag}",
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ),
        (&"x".repeat(65), "longer than 64 characters"),
    ] {
        let error = builder().handler(name, ok).build().err();
        assert_eq!(
            error,
            Some(ConfigError::InvalidName {
                what: "handler name",
                name: name.to_owned(),
                reason
            }),
            "{name:?}"
        );
    }
    let twice = builder()
        .handler("invoices", ok)
        .handler("clients", ok)
        .handler("invoices", ok)
        .build()
        .err();
    assert_eq!(
        twice,
        Some(ConfigError::InvalidName {
            what: "handler name",
            name: "invoices".to_owned(),
            reason: "registered twice"
        })
    );
    let fine = builder()
        .handler("invoices.v2-eu_1", ok)
        .build()
        .expect("a valid name");
    assert!(fine.handler("invoices.v2-eu_1").is_some());
    assert!(fine.handler("clients").is_none());
}

#[tokio::test]
async fn a_durable_queue_needs_ack_fast_mode_and_a_named_handler_in_either_order() {
    let queue = CountingQueue::default();
    let after_then_queue = builder()
        .mode(AckMode::AfterHandler)
        .durable_queue(queue.clone())
        .handler("h", ok)
        .build();
    let queue_then_after = builder()
        .durable_queue(queue.clone())
        .handler("h", ok)
        .mode(AckMode::AfterHandler)
        .build();
    for refused in [after_then_queue, queue_then_after] {
        assert!(matches!(refused, Err(ConfigError::Conflict(_))));
    }
    let nameless = builder().durable_queue(queue.clone()).build();
    assert!(matches!(nameless, Err(ConfigError::Conflict(_))));
    let started = queue.started.lock().map(|s| s.len()).unwrap_or(usize::MAX);
    assert_eq!(started, 0, "a refused runtime starts no reader");
}

#[test]
fn a_durable_runtime_is_refused_outside_a_tokio_runtime() {
    let queue = CountingQueue::default();
    let built = builder()
        .durable_queue(queue.clone())
        .handler("h", ok)
        .build();
    assert!(matches!(built, Err(ConfigError::Conflict(_))));
    assert_eq!(queue.started.lock().map(|s| s.len()).ok(), Some(0));
}

#[tokio::test]
async fn readers_start_once_per_named_handler_when_built_and_never_again() {
    let queue = CountingQueue::default();
    let webhooks = builder()
        .durable_queue(queue.clone())
        .handler("invoices", ok)
        .handler("clients", ok)
        .build()
        .expect("valid");
    let started = || queue.started.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(started(), ["invoices", "clients"]);
    // Clones share the runtime: nothing starts again.
    let clones: Vec<_> = (0..100).map(|_| webhooks.clone()).collect();
    assert_eq!(started().len(), 2);
    assert!(clones.iter().all(|w| w.is_durable()));
}
