//! The `receiver` example on Redis and on Postgres, as a real process: killed with
//! SIGKILL in the middle of a flood, then started again, it loses nothing it
//! acknowledged, and every delivery the sender had to retry is processed. On
//! Postgres, the row its handler makes in an `Inbox` exists exactly once per event.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hookwise_test_support::*;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use support::Server;

const STREAM: &str = "hookwise:queue:{hoursmith}:print";
const UNIQUE: usize = 1_600;
/// Every fourth event is sent twice: 2,000 deliveries.
const DELIVERIES: usize = UNIQUE + UNIQUE / 4;
/// The kill comes once this many deliveries were answered.
const KILL_AFTER: usize = 700;

/// The event id of each delivery, in sending order: groups of four events, the
/// first of each sent again after the other three.
fn sending_order() -> Vec<usize> {
    (0..UNIQUE / 4)
        .flat_map(|group| {
            let first = group * 4;
            [first, first + 1, first + 2, first + 3, first]
        })
        .collect()
}

/// POSTs `delivery`; `None` when there is no answer (the process is gone).
async fn try_send(client: &HttpClient, addr: SocketAddr, delivery: &Delivery) -> Option<u16> {
    let mut request = http::Request::post(format!("http://{addr}/webhooks/hoursmith"))
        .body(Full::new(delivery.body.clone()))
        .ok()?;
    request.headers_mut().extend(delivery.headers.clone());
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        response.into_body().collect().await.ok()?;
        Some(status)
    });
    answer.await.ok().flatten()
}

/// The event ids printed in `stdout`, with how often each was printed.
fn printed_ids(stdout: &[String]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for line in stdout {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let id = line["id"].as_str().expect("an id").to_owned();
        *ids.entry(id).or_default() += 1;
    }
    ids
}

/// The event ids of the entries still in the stream: stored, and not acknowledged
/// (unread, or read by a worker that did not finish them).
fn unacknowledged_entries(redis: &RedisServer) -> BTreeSet<String> {
    let entries = redis.cli(&["XRANGE", STREAM, "-", "+"]);
    let lines: Vec<_> = entries.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "key")
        .filter_map(|pair| pair[1].strip_prefix("hoursmith:").map(str::to_owned))
        .collect()
}

/// The event ids of the rows still in the Postgres queue: stored, and not finished.
fn unfinished_rows(postgres: &PgServer) -> BTreeSet<String> {
    postgres
        .psql("SELECT key FROM hookwise.queue WHERE provider = 'hoursmith'")
        .lines()
        .filter_map(|key| key.strip_prefix("hoursmith:").map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_redis_killed_mid_flood_loses_nothing_it_acknowledged() {
    let Some(redis) = RedisServer::start("kill -9 mid flood on redis") else {
        return;
    };
    let url = redis.url();
    killed_mid_flood("HOOKWISE_REDIS_URL", &url, || {
        unacknowledged_entries(&redis)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_postgres_killed_mid_flood_loses_nothing_it_acknowledged() {
    let Some(postgres) = PgServer::start("kill -9 mid flood on postgres") else {
        return;
    };
    let url = postgres.url();
    killed_mid_flood("HOOKWISE_DATABASE_URL", &url, || unfinished_rows(&postgres)).await;

    // What the handler made in its inbox: exactly one row per event, although some
    // events ran twice (printed twice) across the kill.
    let rows = postgres
        .psql("SELECT id, count(*) FROM receiver_events WHERE provider = 'hoursmith' GROUP BY id");
    let mut per_event = BTreeMap::new();
    for line in rows.lines() {
        let (id, count) = line.split_once('|').expect("id|count");
        per_event.insert(id.to_owned(), count.parse::<usize>().expect("a count"));
    }
    let expected: BTreeMap<String, usize> = (0..UNIQUE).map(|i| (format!("evt_{i}"), 1)).collect();
    assert_eq!(per_event.len(), UNIQUE, "a row for every event");
    assert_eq!(per_event, expected, "exactly one row per event");
}

/// The `receiver` example with `backend` (its URL variable) set to `url`: killed
/// mid-flood, restarted, and the sender's retries. `unacknowledged` reads the
/// event ids whose stored delivery is still unfinished.
async fn killed_mid_flood(backend: &str, url: &str, unacknowledged: impl Fn() -> BTreeSet<String>) {
    let env = [
        ("HOURSMITH_WEBHOOK_SECRET", HOURSMITH_SECRET),
        ("MOJAVE_WEBHOOK_SECRET", MOJAVE_SECRET),
        (backend, url),
        // A killed instance's claims and entries are taken over after 2 s.
        ("HOOKWISE_TAKEOVER_SECS", "2"),
    ];
    let deliveries: Arc<Vec<Delivery>> = Arc::new(
        (0..UNIQUE)
            .map(|i| hoursmith(&format!("evt_{i}")))
            .collect(),
    );
    let order = Arc::new(sending_order());
    assert_eq!(order.len(), DELIVERIES);

    // The first run, killed once KILL_AFTER deliveries were answered.
    let first = Server::start("receiver", &env);
    let addr = first.addr;
    let (next, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (deliveries, order) = (deliveries.clone(), order.clone());
        let (next, answered) = (next.clone(), answered.clone());
        senders.spawn(async move {
            let client = client();
            let mut statuses = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&event) = order.get(k) else { break };
                let status = try_send(&client, addr, &deliveries[event]).await;
                answered.fetch_add(1, Ordering::Relaxed);
                statuses.push((event, status));
            }
            statuses
        });
    }
    let started = Instant::now();
    while answered.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the flood stalled"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first_stdout = tokio::task::spawn_blocking(move || first.kill_9())
        .await
        .expect("kill");
    // What the sender saw: per event, whether some delivery of it got a 200.
    let mut acknowledged = BTreeSet::new();
    let mut to_retry = BTreeSet::new();
    while let Some(statuses) = senders.join_next().await {
        for (event, status) in statuses.expect("a sender") {
            match status {
                Some(200) => {
                    acknowledged.insert(event);
                }
                _ => {
                    to_retry.insert(event);
                }
            }
        }
    }
    let to_retry: BTreeSet<usize> = to_retry.difference(&acknowledged).copied().collect();
    assert!(
        acknowledged.len() >= KILL_AFTER / 2 && !to_retry.is_empty(),
        "the kill came mid flood: {} acknowledged, {} to retry",
        acknowledged.len(),
        to_retry.len()
    );
    let left_unacknowledged = unacknowledged();

    // The second run; the sender retries every event it got no 200 for, honouring
    // 409 and 503 (a claim of the dead process is taken over after 2 s).
    let second = Server::start("receiver", &env);
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    for &event in &to_retry {
        loop {
            match try_send(&client, second.addr, &deliveries[event]).await {
                Some(200) => break,
                Some(409 | 503) | None => {
                    assert!(Instant::now() < deadline, "evt_{event} never got a 200");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(other) => panic!("evt_{event}: answered {other}"),
            }
        }
    }
    let first_printed = printed_ids(&first_stdout.lines().map(str::to_owned).collect::<Vec<_>>());
    let both_runs = |second: &[String]| {
        let mut all = first_printed.clone();
        for (id, n) in printed_ids(second) {
            *all.entry(id).or_default() += n;
        }
        all
    };
    let complete = eventually(Duration::from_secs(30), || {
        both_runs(&second.printed()).len() == UNIQUE
    })
    .await;
    assert!(
        complete,
        "{} of {UNIQUE} events printed",
        both_runs(&second.printed()).len()
    );
    let (status, second_stdout) = second.terminate();
    assert!(status.success(), "exit status {status:?}");

    // Every event is printed; an event printed twice is one whose entry the killed
    // process had run but not yet acknowledged (at least once: the print and the
    // acknowledgement are not one step), never one that was done.
    let all = both_runs(&second_stdout.lines().map(str::to_owned).collect::<Vec<_>>());
    let twice: Vec<_> = all
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    for id in &twice {
        assert_eq!(all[*id], 2, "{id} printed {} times", all[*id]);
        assert!(
            left_unacknowledged.contains(*id),
            "{id} was printed twice although its entry had been acknowledged"
        );
    }
    eprintln!(
        "{backend}: kill -9 after {KILL_AFTER} answers: {} events acknowledged, {} retried, {} entries \
         unacknowledged at the kill, {} printed twice",
        acknowledged.len(),
        to_retry.len(),
        left_unacknowledged.len(),
        twice.len()
    );
}
