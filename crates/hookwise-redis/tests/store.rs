//! `RedisStore` against a real `redis-server`.

mod common;

use std::{sync::Arc, time::Duration};

use common::RedisServer;
use hookwise_core::{ClaimOutcome, DedupeKey, DedupeStore, Duplicate};
use hookwise_redis::RedisStore;

fn key(id: &str) -> DedupeKey {
    DedupeKey::new("hoursmith", id)
}

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url()).expect("valid URL")
}

#[tokio::test]
async fn claim_then_in_flight_then_processed() {
    let Some(server) = RedisServer::start("claim_then_in_flight_then_processed") else {
        return;
    };
    let store = store(&server);
    let ClaimOutcome::Claimed(claim) = store.claim(&key("evt_1")).await.expect("claim") else {
        panic!("a free key is claimed");
    };
    assert_eq!(
        store.claim(&key("evt_1")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::InFlight)
    );
    store.commit(&claim).await.expect("commit");
    assert_eq!(
        store.claim(&key("evt_1")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    // Another provider's key of the same id is another event.
    assert!(matches!(
        store.claim(&DedupeKey::new("mojave", "evt_1")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_many_concurrent_claims_from_two_instances_wins() {
    let Some(server) = RedisServer::start("exactly_one_of_many_concurrent_claims") else {
        return;
    };
    let instances = [Arc::new(store(&server)), Arc::new(store(&server))];
    for round in 0..5 {
        let id = format!("evt_race_{round}");
        let claims: Vec<_> = (0..50)
            .map(|i| {
                let store = instances[i % 2].clone();
                let id = id.clone();
                tokio::spawn(async move { store.claim(&key(&id)).await })
            })
            .collect();
        let mut winners = 0;
        for claim in claims {
            if let ClaimOutcome::Claimed(_) = claim.await.expect("task").expect("claim") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_stale_token_does_not_release_a_newer_claim() {
    let Some(server) = RedisServer::start("a_stale_token_does_not_release_a_newer_claim") else {
        return;
    };
    let store = store(&server)
        .lease(Duration::from_millis(100))
        .expect("non-zero");
    let ClaimOutcome::Claimed(stale) = store.claim(&key("evt_2")).await.expect("claim") else {
        panic!("claimed");
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let ClaimOutcome::Claimed(newer) = store.claim(&key("evt_2")).await.expect("claim") else {
        panic!("the lease ran out: the key is free again");
    };
    store.release(&stale).await.expect("release");
    assert_eq!(
        store.claim(&key("evt_2")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::InFlight),
        "the newer claim survives the stale release"
    );
    store.release(&newer).await.expect("release");
    assert!(matches!(
        store.claim(&key("evt_2")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
}

#[tokio::test]
async fn committed_keys_expire_after_the_retention() {
    let Some(server) = RedisServer::start("committed_keys_expire_after_the_retention") else {
        return;
    };
    let store = store(&server)
        .retention(Duration::from_millis(200))
        .expect("non-zero");
    let ClaimOutcome::Claimed(claim) = store.claim(&key("evt_3")).await.expect("claim") else {
        panic!("claimed");
    };
    store.commit(&claim).await.expect("commit");
    assert_eq!(
        store.claim(&key("evt_3")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        store.claim(&key("evt_3")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
}

#[tokio::test]
async fn keys_are_namespaced() {
    let Some(server) = RedisServer::start("keys_are_namespaced") else {
        return;
    };
    let (a, b) = (
        store(&server).namespace("app-a"),
        store(&server).namespace("app-b"),
    );
    assert!(matches!(
        a.claim(&key("evt_4")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
    assert!(matches!(
        b.claim(&key("evt_4")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
}

#[tokio::test]
async fn redis_down_is_an_error_within_the_timeout_and_recovers() {
    let Some(mut server) = RedisServer::start("redis_down_is_an_error") else {
        return;
    };
    let store = store(&server)
        .timeout(Duration::from_millis(500))
        .expect("non-zero");
    assert!(store.claim(&key("evt_5")).await.is_ok());
    server.stop();
    let started = tokio::time::Instant::now();
    let error = store.claim(&key("evt_6")).await.expect_err("Redis is down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the timeout"
    );
    assert!(error.to_string().contains("Redis"), "{error}");

    server.restart();
    // The connection is remade on a later call.
    let mut recovered = false;
    for _ in 0..50 {
        if let Ok(outcome) = store.claim(&key("evt_6")).await {
            assert!(matches!(outcome, ClaimOutcome::Claimed(_)));
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store reconnects after Redis comes back");
}

#[test]
fn outside_a_runtime_new_is_an_error_not_a_panic() {
    let error = RedisStore::new("redis://127.0.0.1:1/").expect_err("no runtime");
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    assert!(RedisStore::new("not a url").is_err());
    let store = RedisStore::new("redis://127.0.0.1:1/").expect("valid URL");
    assert!(store.clone().lease(Duration::ZERO).is_err());
    assert!(store.clone().retention(Duration::from_micros(10)).is_err());
    assert!(store.timeout(Duration::ZERO).is_err());
}
