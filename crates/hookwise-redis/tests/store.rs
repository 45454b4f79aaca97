//! `RedisStore` against a real `redis-server`.

use std::{sync::Arc, time::Duration};

use hookwise_core::{
    Claim, ClaimOutcome, ConfigError, DedupeKey, DedupeStore, Duplicate, Hoursmith, Outcome,
    Receiver, RejectionKind, StoreError,
};
use hookwise_redis::RedisStore;
use hookwise_test_support::{
    ClaimReplyLost, DelayProxy, Delivery, HOURSMITH_SECRET, RedisServer, hoursmith,
};

fn key(id: &str) -> DedupeKey {
    DedupeKey::new("hoursmith", id)
}

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url()).expect("valid URL")
}

/// A plain connection to look at what the store wrote.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// The value of `id`'s dedupe key, as stored under the default namespace.
async fn stored(server: &RedisServer, id: &str) -> Option<String> {
    let mut connection = raw(server).await;
    redis::cmd("GET")
        .arg(format!("hookwise:dedupe:{{hoursmith}}:{id}"))
        .query_async(&mut connection)
        .await
        .expect("GET")
}

/// Waits up to `limit` for `id`'s dedupe key to be gone; whether it is.
async fn gone_within(server: &RedisServer, id: &str, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while stored(server, id).await.is_some() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// How many `SET` commands the server has run (claims run one in their script).
async fn sets_run(server: &RedisServer) -> u64 {
    let mut connection = raw(server).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_set:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
}

fn claimed(outcome: Result<ClaimOutcome, StoreError>) -> Claim {
    match outcome {
        Ok(ClaimOutcome::Claimed(claim)) => claim,
        other => panic!("expected a won claim, got {other:?}"),
    }
}

#[tokio::test]
async fn a_claim_is_provisional_until_confirmed_then_in_flight_then_processed() {
    let Some(server) = RedisServer::start("a_claim_is_provisional_until_confirmed") else {
        return;
    };
    let store = store(&server);
    let claim = claimed(store.claim(&key("evt_1")).await);
    assert_eq!(
        store.claim(&key("evt_1")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Provisional),
        "nobody was told yet that the event is taken care of"
    );
    assert!(store.confirm(&claim).await.expect("confirm"));
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

#[tokio::test]
async fn renew_extends_the_lease_and_keeps_the_claim_provisional_or_confirmed() {
    let Some(server) = RedisServer::start("renew_extends_the_lease") else {
        return;
    };
    let lease = Duration::from_millis(800);
    let store = store(&server).lease(lease).expect("valid lease");
    assert_eq!(store.lease_period(), lease);

    let claim = claimed(store.claim(&key("evt_renew")).await);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(store.renew(&claim).await.expect("renew"));
    }
    // 1 s after the claim, past one lease: still held, still provisional.
    assert_eq!(
        store.claim(&key("evt_renew")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Provisional)
    );

    assert!(store.confirm(&claim).await.expect("confirm"));
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(store.renew(&claim).await.expect("renew"));
    }
    assert_eq!(
        store.claim(&key("evt_renew")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::InFlight),
        "renewing keeps a confirmed claim confirmed"
    );

    // Unrenewed, it expires after the lease.
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    claimed(store.claim(&key("evt_renew")).await);
}

#[tokio::test]
async fn confirm_and_renew_act_only_while_the_claim_holds_its_key() {
    let Some(server) = RedisServer::start("confirm_and_renew_act_only_while_held") else {
        return;
    };
    // Two instances: one whose claims expire at once, one with a long lease (so
    // that the newer claim outlives a slow test run).
    let short = store(&server)
        .lease(Duration::from_millis(100))
        .expect("valid lease");
    let store = store(&server);
    let stale = claimed(short.claim(&key("evt_held")).await);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let newer = claimed(store.claim(&key("evt_held")).await);
    assert!(!store.confirm(&stale).await.expect("confirm"));
    assert!(!store.renew(&stale).await.expect("renew"));
    assert_eq!(
        store.claim(&key("evt_held")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Provisional),
        "the stale claim neither confirmed nor freed the newer one"
    );

    // A committed event has no claim left to confirm or renew, and stays committed.
    store.commit(&newer).await.expect("commit");
    assert!(!store.confirm(&newer).await.expect("confirm"));
    assert!(!store.renew(&newer).await.expect("renew"));
    assert_eq!(
        store.claim(&key("evt_held")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );

    // Release frees a confirmed claim as well as a provisional one.
    let confirmed = claimed(store.claim(&key("evt_released")).await);
    assert!(store.confirm(&confirmed).await.expect("confirm"));
    store.release(&confirmed).await.expect("release");
    let provisional = claimed(store.claim(&key("evt_released")).await);
    store.release(&provisional).await.expect("release");
    claimed(store.claim(&key("evt_released")).await);
}

#[tokio::test]
async fn a_claim_left_unreleased_after_a_failure_is_provisional_so_a_retry_gets_409() {
    let Some(server) = RedisServer::start("a_claim_left_unreleased_is_provisional") else {
        return;
    };
    let store = store(&server);
    // The request failed with a 503, and its release failed too: the claim stays.
    let _unreleased = claimed(store.claim(&key("evt_unreleased")).await);
    assert_eq!(
        store.claim(&key("evt_unreleased")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Provisional),
        "a retry must not be acknowledged (200) while nobody has taken the event on"
    );
}

/// A store talking to `server` through a proxy that can hold Redis's replies back,
/// with `timeout` (`None`: the default), connected and its claim script loaded while
/// replies are still prompt.
async fn behind_a_proxy(
    server: &RedisServer,
    timeout: Option<Duration>,
) -> (DelayProxy, RedisStore) {
    let proxy = DelayProxy::start(server.port).await;
    let mut proxied = RedisStore::new(&proxy.url()).expect("valid URL");
    if let Some(timeout) = timeout {
        proxied = proxied.timeout(timeout).expect("valid timeout");
    }
    claimed(proxied.claim(&key("evt_warm_up")).await);
    (proxy, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_reply_misses_the_timeout_is_released_by_the_store() {
    let Some(server) = RedisServer::start("a_claim_whose_reply_misses_the_timeout") else {
        return;
    };
    let (proxy, proxied) = behind_a_proxy(&server, Some(Duration::from_millis(200))).await;

    proxy.delay_replies(Duration::from_millis(1500));
    let sets = sets_run(&server).await;
    let started = tokio::time::Instant::now();
    let error = proxied
        .claim(&key("evt_lost_reply"))
        .await
        .expect_err("the reply misses the timeout");
    assert!(started.elapsed() < Duration::from_secs(1), "bounded");
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(
        sets_run(&server).await,
        sets + 1,
        "the claim was made on the server all the same"
    );

    // The sender got a 503 and retries: its retry must be processed, not answered
    // 200 as a duplicate of the orphaned claim.
    assert!(
        gone_within(&server, "evt_lost_reply", Duration::from_secs(2)).await,
        "the store released the claim it could not report: {:?}",
        stored(&server, "evt_lost_reply").await
    );
    let direct = store(&server);
    claimed(direct.claim(&key("evt_lost_reply")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_longer_than_two_seconds_is_honoured() {
    let Some(server) = RedisServer::start("a_timeout_longer_than_two_seconds") else {
        return;
    };
    let (proxy, patient) = behind_a_proxy(&server, Some(Duration::from_secs(5))).await;

    // Slower than the connection's own default, well within the 5 s asked for.
    proxy.delay_replies(Duration::from_millis(2500));
    let outcome = patient.claim(&key("evt_slow_reply")).await;
    assert!(
        matches!(outcome, Ok(ClaimOutcome::Claimed(_))),
        "a 2.5 s reply under a 5 s timeout: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_dropped_mid_call_leaves_no_claim_behind() {
    let Some(server) = RedisServer::start("a_claim_dropped_mid_call") else {
        return;
    };
    // The default 2 s timeout: the caller gives up first, by dropping the future.
    let (proxy, proxied) = behind_a_proxy(&server, None).await;

    proxy.delay_replies(Duration::from_millis(1500));
    let sets = sets_run(&server).await;
    tokio::time::timeout(
        Duration::from_millis(50),
        proxied.claim(&key("evt_cancelled")),
    )
    .await
    .expect_err("dropped before the reply came");
    assert_eq!(sets_run(&server).await, sets + 1, "the claim was made");

    assert!(
        gone_within(&server, "evt_cancelled", Duration::from_secs(2)).await,
        "the dropped claim was released: {:?}",
        stored(&server, "evt_cancelled").await
    );
    claimed(store(&server).claim(&key("evt_cancelled")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_bounded_by_the_timeout() {
    let Some(server) = RedisServer::start("every_call_is_bounded_by_the_timeout") else {
        return;
    };
    let proxy = DelayProxy::start(server.port).await;
    let proxied = RedisStore::new(&proxy.url())
        .expect("valid URL")
        .timeout(Duration::from_millis(200))
        .expect("valid timeout");
    let claim = claimed(proxied.claim(&key("evt_slow")).await);
    proxy.delay_replies(Duration::from_secs(2));
    let limit = Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    assert!(proxied.confirm(&claim).await.is_err());
    assert!(started.elapsed() < limit, "confirm");
    let started = tokio::time::Instant::now();
    assert!(proxied.renew(&claim).await.is_err());
    assert!(started.elapsed() < limit, "renew");
    let started = tokio::time::Instant::now();
    assert!(proxied.commit(&claim).await.is_err());
    assert!(started.elapsed() < limit, "commit");
    let started = tokio::time::Instant::now();
    assert!(proxied.release(&claim).await.is_err());
    assert!(started.elapsed() < limit, "release");
}

#[tokio::test]
async fn a_resend_after_a_claim_whose_reply_was_lost_is_409_never_200_then_accepted() {
    let Some(server) = RedisServer::start("a_resend_after_a_lost_claim_reply") else {
        return;
    };
    let lease = Duration::from_millis(300);
    // The claim is made in Redis but its reply is lost, as if the store's own
    // release of the orphan had failed too: the claim stays, provisional.
    let store = ClaimReplyLost::new(store(&server).lease(lease).expect("valid lease"));
    let receiver = Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store)
        .expect("valid config");
    let Delivery { headers, body } = hoursmith("evt_lost_claim");

    let first = receiver.receive(&headers, body.clone()).await;
    match first {
        Err(rejection) => assert_eq!(rejection.kind(), RejectionKind::StoreUnavailable),
        other => panic!("the first delivery is refused with 503, got {other:?}"),
    }

    // The sender's retry within the lease meets the orphaned claim.
    match receiver.receive(&headers, body.clone()).await {
        Err(rejection) => assert_eq!(
            rejection.kind(),
            RejectionKind::InProgress,
            "the retry comes back: 409"
        ),
        Ok(Outcome::Accepted { .. }) => {}
        Ok(outcome) => panic!("a 200 now would lose the event: {outcome:?}"),
    }

    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    match receiver.receive(&headers, body).await {
        Ok(Outcome::Accepted { delivery, .. }) => {
            assert_eq!(delivery.event().id(), "evt_lost_claim");
        }
        other => panic!("after the lease the event is processed, got {other:?}"),
    }
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
    let short = store(&server)
        .lease(Duration::from_millis(100))
        .expect("non-zero");
    let store = store(&server);
    let ClaimOutcome::Claimed(stale) = short.claim(&key("evt_2")).await.expect("claim") else {
        panic!("claimed");
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let ClaimOutcome::Claimed(newer) = store.claim(&key("evt_2")).await.expect("claim") else {
        panic!("the lease ran out: the key is free again");
    };
    store.release(&stale).await.expect("release");
    assert_eq!(
        store.claim(&key("evt_2")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Provisional),
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
    assert!(matches!(
        store.clone().lease(Duration::ZERO),
        Err(ConfigError::Zero(_))
    ));
    assert!(matches!(
        store.clone().lease(Duration::from_micros(500)),
        Err(ConfigError::TooShort { minimum, .. }) if minimum == Duration::from_millis(1)
    ));
    assert!(matches!(
        store.clone().retention(Duration::from_micros(10)),
        Err(ConfigError::TooShort { .. })
    ));
    assert!(matches!(
        store.clone().retention(Duration::ZERO),
        Err(ConfigError::Zero(_))
    ));
    assert!(store.timeout(Duration::ZERO).is_err());
}
