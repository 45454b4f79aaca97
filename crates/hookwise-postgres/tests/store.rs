//! `PgStore` against a real, throwaway Postgres: the dedupe protocol's shared suite,
//! the migration, the schema it is given, the cleanup, and failures that end in a
//! bounded error (`503` for the receiver), never a hang.

use std::time::{Duration, Instant};

use hookwise_core::{ClaimOutcome, ConfigError, DedupeKey, DedupeStore, Duplicate};
use hookwise_postgres::{PgStore, migration_sql};
use hookwise_test_support::{PgServer, dedupe_store_contract};

async fn migrated(server: &PgServer, schema: &str) -> PgStore {
    let store = PgStore::new(&server.url())
        .expect("valid URL")
        .schema(schema)
        .expect("a valid schema");
    store.migrate().await.expect("migrated");
    store
}

fn key(id: &str) -> DedupeKey {
    DedupeKey::new("hoursmith", id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_follows_the_dedupe_contract() {
    let Some(server) = PgServer::start("the dedupe contract") else {
        return;
    };
    migrated(&server, "hookwise").await;
    let url = server.url();
    dedupe_store_contract("PgStore", |lease| {
        PgStore::new(&url)
            .expect("valid URL")
            .lease(lease)
            .expect("a valid lease")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_is_idempotent_safe_to_race_and_lands_in_the_schema_given() {
    let Some(server) = PgServer::start("migration") else {
        return;
    };
    let store = PgStore::new(&server.url())
        .expect("valid URL")
        .schema("billing_hooks")
        .expect("a valid schema");
    // Eight instances starting together.
    let runs = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.migrate().await })
    });
    for run in runs {
        run.await.expect("a task").expect("migrated");
    }
    store.migrate().await.expect("and again");
    assert!(matches!(
        store.claim(&key("evt_1")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
    assert_eq!(
        server.psql("SELECT count(*) FROM billing_hooks.dedupe"),
        "1"
    );
    assert_eq!(
        server.psql("SELECT to_regclass('hookwise.dedupe') IS NULL"),
        "t",
        "nothing in the default schema"
    );
    assert_eq!(
        server.psql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'billing_hooks' AND indexname = 'dedupe_expires_at'"
        ),
        "1"
    );
}

#[test]
fn a_schema_name_that_is_not_a_plain_identifier_is_refused() {
    for bad in [
        "",
        "Billing",
        "a-b",
        "a\"; DROP TABLE x; --",
        "1abc",
        &"a".repeat(64),
    ] {
        let refused = migration_sql(bad);
        assert!(
            matches!(
                refused,
                Err(ConfigError::InvalidName {
                    what: "Postgres schema",
                    ..
                })
            ),
            "{bad:?}: {refused:?}"
        );
    }
    assert!(migration_sql("_billing_2").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_rows_are_cleaned_up_through_the_index() {
    let Some(server) = PgServer::start("cleanup") else {
        return;
    };
    let store = migrated(&server, "hookwise")
        .await
        .lease(Duration::from_millis(50))
        .and_then(|s| s.retention(Duration::from_millis(50)))
        .expect("valid settings");
    for i in 0..20 {
        let ClaimOutcome::Claimed(claim) =
            store.claim(&key(&format!("evt_{i}"))).await.expect("claim")
        else {
            panic!("claimed");
        };
        if i % 2 == 0 {
            store.commit(&claim).await.expect("commit");
        }
    }
    // An inbox's mark (and the done-mark it sets) expires with the retention too.
    let inbox = store.begin(&key("evt_inbox")).await.expect("begin");
    inbox.expect("not applied").commit().await.expect("commit");
    let long = PgStore::new(&server.url()).expect("valid URL");
    let ClaimOutcome::Claimed(_) = long.claim(&key("evt_live")).await.expect("claim") else {
        panic!("claimed");
    };
    let inbox = long.begin(&key("evt_kept")).await.expect("begin");
    inbox.expect("not applied").commit().await.expect("commit");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.cleanup().await.expect("cleanup"), 22);
    assert_eq!(
        server.psql("SELECT key FROM hookwise.dedupe ORDER BY key"),
        "hoursmith:evt_kept\nhoursmith:evt_live"
    );
    assert_eq!(
        server.psql("SELECT key FROM hookwise.applied"),
        "hoursmith:evt_kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_an_error_within_the_timeout_and_recovers() {
    let Some(server) = PgServer::start("postgres down") else {
        return;
    };
    let store = migrated(&server, "hookwise")
        .await
        .timeout(Duration::from_millis(500))
        .expect("valid timeout");
    assert!(store.claim(&key("evt_before")).await.is_ok());
    server.stop();
    let started = Instant::now();
    let error = store
        .claim(&key("evt_down"))
        .await
        .expect_err("the database is down");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded: {error}"
    );
    server.start_server();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.claim(&key("evt_after")).await {
            Ok(ClaimOutcome::Claimed(_)) => break,
            other => {
                assert!(Instant::now() < deadline, "never recovered: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_an_error_within_the_timeout_not_a_hang() {
    let Some(server) = PgServer::start("pool exhausted") else {
        return;
    };
    migrated(&server, "hookwise").await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url())
        .await
        .expect("connected");
    let store = PgStore::with_pool(pool.clone())
        .timeout(Duration::from_millis(300))
        .expect("valid timeout");
    // The application holds the pool's only connection.
    let held = pool.acquire().await.expect("a connection");
    let started = Instant::now();
    let error = store
        .claim(&key("evt_busy"))
        .await
        .expect_err("no connection");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "bounded after {:?}: {error}",
        started.elapsed()
    );
    drop(held);
    assert!(matches!(
        store.claim(&key("evt_free")).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_an_error_not_a_duplicate() {
    let Some(server) = PgServer::start("not migrated") else {
        return;
    };
    let store = PgStore::new(&server.url()).expect("valid URL");
    let refused = store.claim(&key("evt_1")).await;
    assert!(refused.is_err(), "{refused:?}");
    store.migrate().await.expect("migrated");
    let ClaimOutcome::Claimed(claim) = store.claim(&key("evt_1")).await.expect("claim") else {
        panic!("claimed");
    };
    store.commit(&claim).await.expect("commit");
    assert_eq!(
        store.claim(&key("evt_1")).await.expect("claim"),
        ClaimOutcome::Duplicate(Duplicate::Processed)
    );
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let store = || PgStore::new("postgres://localhost/x").expect("valid URL");
    assert!(matches!(
        store().lease(Duration::ZERO),
        Err(ConfigError::TooShort { .. })
    ));
    assert!(matches!(
        store().retention(Duration::from_micros(10)),
        Err(ConfigError::TooShort { .. })
    ));
    assert!(matches!(
        store().timeout(Duration::ZERO),
        Err(ConfigError::Zero(_))
    ));
    assert!(matches!(
        store().cleanup_interval(Duration::ZERO),
        Err(ConfigError::Zero(_))
    ));
    assert!(PgStore::new("mysql://localhost/x").is_err());
}

#[test]
fn outside_a_runtime_new_is_an_error_not_a_panic() {
    assert!(PgStore::new("postgres://localhost/x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_call_times_out_leaves_no_claim_behind() {
    let Some(server) = PgServer::start("a claim timing out") else {
        return;
    };
    let store = migrated(&server, "hookwise")
        .await
        .timeout(Duration::from_millis(300))
        .expect("valid timeout");
    assert!(store.claim(&key("evt_warm_up")).await.is_ok());
    // Another session holds the table for 1.5 s: the claim's INSERT waits on it.
    let locker = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-c"])
        .arg("BEGIN; LOCK TABLE hookwise.dedupe IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;")
        .spawn()
        .expect("run psql");
    let locked = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.psql("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'hookwise.dedupe'::regclass",
    ) != "1"
    {
        assert!(
            tokio::time::Instant::now() < locked,
            "the table was never locked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let error = store
        .claim(&key("evt_timed_out"))
        .await
        .expect_err("the claim waits on the lock past its timeout");
    // Ended by the store's timeout, or by the server's statement timeout: the same.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "bounded: {error}"
    );
    let mut locker = locker;
    assert!(locker.wait().expect("psql").success());
    // Whatever the INSERT did, nothing holds the key once the store's own release
    // has run: the sender's retry is a new event, not a 409.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store.claim(&key("evt_timed_out")).await {
            Ok(ClaimOutcome::Claimed(_)) => break,
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "still held: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
