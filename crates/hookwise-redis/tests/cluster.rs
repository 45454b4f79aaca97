//! The store and the queue on a real Redis Cluster (three primaries): claims,
//! the durable queue, its store-and-commit script and dead letters work when keys
//! live on different nodes.

use std::time::Duration;

use axum::{Router, routing::post_service};
use hookwise_core::{
    ClaimOutcome, DedupeKey, DedupeStore, Delivery as Verified, Duplicate, Hoursmith, Receiver,
    hoursmith,
};
use hookwise_redis::{RedisQueue, RedisStore};
use hookwise_runtime::{RetryPolicy, Webhooks};
use hookwise_test_support::*;
use hookwise_tower::WebhookEndpoint;

fn seeds(cluster: &RedisCluster) -> Vec<String> {
    cluster.urls()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_on_a_cluster_follow_the_protocol() {
    let Some(cluster) = RedisCluster::start("claims on a cluster") else {
        return;
    };
    let urls = seeds(&cluster);
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::cluster(&nodes).expect("valid URLs");
    // Keys of several providers, so that several nodes hold some.
    for provider in ["hoursmith", "mojave", "stripe", "github", "svix"] {
        let key = DedupeKey::new(provider, "evt_1");
        let ClaimOutcome::Claimed(claim) = store.claim(&key).await.expect("claim") else {
            panic!("{provider}: a free key was not claimed");
        };
        assert_eq!(
            store.claim(&key).await.expect("claim"),
            ClaimOutcome::Duplicate(Duplicate::Provisional)
        );
        assert!(store.confirm(&claim).await.expect("confirm"));
        assert_eq!(
            store.claim(&key).await.expect("claim"),
            ClaimOutcome::Duplicate(Duplicate::InFlight)
        );
        store.commit(&claim).await.expect("commit");
        assert_eq!(
            store.claim(&key).await.expect("claim"),
            ClaimOutcome::Duplicate(Duplicate::Processed)
        );
        let other = DedupeKey::new(provider, "evt_2");
        let ClaimOutcome::Claimed(claim) = store.claim(&other).await.expect("claim") else {
            panic!("{provider}: a free key was not claimed");
        };
        store.release(&claim).await.expect("release");
        assert!(matches!(
            store.claim(&other).await.expect("claim"),
            ClaimOutcome::Claimed(_)
        ));
    }
    let holding = cluster
        .nodes()
        .iter()
        .filter(|node| node.cli(&["DBSIZE"]) != "0")
        .count();
    assert!(holding >= 2, "the keys went to {holding} node(s) only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_runtime_on_a_cluster_stores_commits_runs_and_dead_letters() {
    let Some(cluster) = RedisCluster::start("durable runtime on a cluster") else {
        return;
    };
    let urls = seeds(&cluster);
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let store = RedisStore::cluster(&nodes).expect("valid URLs");
    let queue = RedisQueue::cluster(&nodes)
        .expect("valid URLs")
        .poll_interval(Duration::from_millis(20))
        .expect("valid settings");
    let recorder = Recorder::default();
    let seen = recorder.clone();
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let webhooks = Webhooks::builder(receiver)
        .durable_queue(queue.clone())
        .retry(RetryPolicy::never())
        .handler("hook", move |delivery: Verified<hoursmith::Event>| {
            let seen = seen.clone();
            async move {
                let id = delivery.event().id().to_owned();
                if id.ends_with("_fails") {
                    return Err("the handler fails");
                }
                seen.record(&id);
                Ok(())
            }
        })
        .build()
        .expect("valid settings");
    let endpoint = WebhookEndpoint::new(&webhooks, "hook").expect("registered");
    let addr = serve(Router::new().route("/hook", post_service(endpoint))).await;
    let client = client();
    for i in 0..20 {
        let delivery = hoursmith(&format!("evt_{i}"));
        let answer = send(&client, addr, "/hook", &delivery).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let again = send(&client, addr, "/hook", &delivery).await;
        assert_eq!(again.body, r#"{"status":"duplicate"}"#);
    }
    let failing = send(&client, addr, "/hook", &hoursmith("evt_x_fails")).await;
    assert_eq!(failing.status, 200, "{}", failing.body);
    assert_eq!(recorder.wait_for(20, Duration::from_secs(20)).await, 20);

    // The delivery's claim was committed in the store-and-commit script, on the node
    // of the provider's slot: no separate commit (PSETEX) ran on any node.
    for node in cluster.nodes() {
        let stats = node.cli(&["INFO", "commandstats"]);
        assert!(!stats.contains("cmdstat_psetex"), "a separate commit ran");
    }
    let slot = |key: &str| cluster.nodes()[0].cli(&["CLUSTER", "KEYSLOT", key]);
    assert_eq!(
        slot("hookwise:dedupe:{hoursmith}:evt_1"),
        slot("hookwise:queue:{hoursmith}:hook")
    );

    // The failing event is dead-lettered, listed and replayed on the cluster.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let letters = loop {
        let letters = queue.dead_letters("hoursmith", 10).await.expect("listed");
        if !letters.is_empty() || tokio::time::Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 1, "dead letters: {letters:?}");
    assert_eq!(letters[0].key, "hoursmith:evt_x_fails");
    assert!(
        queue
            .replay("hoursmith", &letters[0].id)
            .await
            .expect("replayed")
    );
    assert!(
        queue
            .dead_letters("hoursmith", 10)
            .await
            .expect("listed")
            .is_empty()
    );
    let report = webhooks.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.unfinished, 0);
}
