//! End to end over real TCP: the `receiver` (axum + layer) and `actix` examples
//! answer by the same contract, print one line per processed event, and stop
//! gracefully on SIGTERM.

mod support;

use std::time::Duration;

use bytes::Bytes;
use hookwise_test_support::*;
use serde_json::{Value, json};
use support::{Server, run_to_exit};

const ENV: [(&str, &str); 2] = [
    ("HOURSMITH_WEBHOOK_SECRET", HOURSMITH_SECRET),
    ("MOJAVE_WEBHOOK_SECRET", MOJAVE_SECRET),
];

fn printed(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_follows_the_contract_and_prints_one_line_per_processed_event() {
    contract_and_output("receiver", &ENV).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_on_redis_follows_the_same_contract_and_prints_the_same_lines() {
    let Some(redis) = RedisServer::start("receiver on redis") else {
        return;
    };
    let url = redis.url();
    let env = [ENV[0], ENV[1], ("HOOKWISE_REDIS_URL", url.as_str())];
    contract_and_output("receiver", &env).await;
    // The accepted events went through one stream per provider, named after the
    // handler, and were acknowledged and deleted once run.
    let streams = redis.cli(&["--scan", "--pattern", "hookwise:queue:*"]);
    let mut streams: Vec<_> = streams.lines().collect();
    streams.sort_unstable();
    assert_eq!(
        streams,
        [
            "hookwise:queue:{hoursmith}:print",
            "hookwise:queue:{mojave}:print"
        ]
    );
    for stream in streams {
        assert_eq!(redis.cli(&["XLEN", stream]), "0", "{stream}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_on_postgres_follows_the_same_contract_and_prints_the_same_lines() {
    let Some(postgres) = PgServer::start("receiver on postgres") else {
        return;
    };
    let url = postgres.url();
    let env = [ENV[0], ENV[1], ("HOOKWISE_DATABASE_URL", url.as_str())];
    contract_and_output("receiver", &env).await;
    // On Postgres indeed: the claims are there, done, and the queue is empty.
    assert_eq!(
        postgres.psql("SELECT count(*) FROM hookwise.dedupe WHERE state = 'done'"),
        "3"
    );
    assert_eq!(postgres.psql("SELECT count(*) FROM hookwise.queue"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_follows_the_contract_and_prints_one_line_per_processed_event() {
    contract_and_output("actix", &ENV).await;
}

async fn contract_and_output(example: &str, env: &[(&str, &str)]) {
    let server = Server::start(example, env);
    let (addr, client) = (server.addr, client());

    let paid = hoursmith_signed(
        hoursmith_body(
            "evt_paid",
            "invoice.paid",
            r#"{"invoice":{"id":"i"},"payment":{"id":"p"}}"#,
        ),
        now(),
    );
    let test_event = hoursmith_signed(
        Bytes::from(
            String::from_utf8_lossy(&hoursmith_body(
                "evt_test",
                "task.created",
                r#"{"test":true,"task":{"id":"t"}}"#,
            ))
            .replace(r#""livemode":true"#, r#""livemode":false"#),
        ),
        now(),
    );
    let mut forged = paid.clone();
    forged.body =
        Bytes::from(String::from_utf8_lossy(&paid.body).replace("evt_paid", "evt_forged"));
    let entry = mojave(1);

    let mut big = entry.clone();
    big.body = Bytes::from(vec![b' '; 1024 * 1024 + 1]);

    let cases = [
        (
            "/webhooks/hoursmith",
            &paid,
            200,
            r#"{"status":"accepted"}"#,
        ),
        (
            "/webhooks/hoursmith",
            &paid,
            200,
            r#"{"status":"duplicate"}"#,
        ),
        (
            "/webhooks/hoursmith",
            &forged,
            401,
            r#"{"error":"signature_mismatch"}"#,
        ),
        (
            "/webhooks/hoursmith",
            &test_event,
            200,
            r#"{"status":"accepted"}"#,
        ),
        ("/webhooks/mojave", &entry, 200, r#"{"status":"accepted"}"#),
        ("/webhooks/mojave", &entry, 200, r#"{"status":"duplicate"}"#),
        (
            "/webhooks/mojave",
            &paid,
            401,
            r#"{"error":"signature_missing"}"#,
        ),
    ];
    for (path, delivery, status, body) in cases {
        let answer = send(&client, addr, path, delivery).await;
        assert_eq!(
            (answer.status.as_u16(), answer.body.as_str()),
            (status, body),
            "{path}"
        );
    }

    // Processed in the background (by the durable queue's reader, with Redis):
    // stopping waits for what runs, not for what a reader has not taken yet.
    let all_run = eventually(Duration::from_secs(10), || server.printed().len() >= 3).await;
    assert!(all_run, "{example}: {:?}", server.printed());
    let (status, stdout) = server.terminate();
    assert!(status.success(), "{example}: exit status {status:?}");
    let mut lines = printed(&stdout);
    lines.sort_by_key(|line| line["id"].as_str().map(str::to_owned));
    let mojave_key = lines
        .iter()
        .find(|l| l["provider"] == "mojave")
        .and_then(|l| l["id"].as_str())
        .map(str::to_owned)
        .expect("a mojave line");
    assert_eq!(mojave_key.len(), 64, "Mojave's key is the body's SHA-256");
    let mut expected = vec![
        json!({"provider":"hoursmith","id":"evt_paid","type":"invoice.paid","livemode":true}),
        json!({"provider":"hoursmith","id":"evt_test","type":"task.created","livemode":false}),
        json!({"provider":"mojave","id":mojave_key,"type":"invoice.paid","livemode":true}),
    ];
    expected.sort_by_key(|line| line["id"].as_str().map(str::to_owned));
    assert_eq!(lines, expected);
}

#[test]
fn a_missing_secret_is_a_clear_error_and_exit_code_2() {
    let (code, stderr) = run_to_exit(
        "receiver",
        &[("HOURSMITH_WEBHOOK_SECRET", "x")],
        &["MOJAVE_WEBHOOK_SECRET"],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("MOJAVE_WEBHOOK_SECRET is not set"),
        "{stderr}"
    );
}

/// The value of the Prometheus sample `name{labels}` in `text` (labels in the
/// exporter's order, sorted by name); `None` when absent.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `GET /metrics` of a running example, as text.
async fn scrape(client: &HttpClient, addr: std::net::SocketAddr) -> String {
    use http_body_util::{BodyExt, Full};
    let request = http::Request::get(format!("http://{addr}/metrics"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("an answer");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_serves_its_metrics_after_real_deliveries() {
    let server = Server::start("receiver", &ENV);
    let (addr, client) = (server.addr, client());
    let unique: Vec<_> = (0..3).map(|i| hoursmith(&format!("evt_m{i}"))).collect();
    let mut forged = unique[0].clone();
    forged.body = Bytes::from(String::from_utf8_lossy(&forged.body).replace("evt_m0", "evt_x"));
    for delivery in &unique {
        assert_eq!(
            send(&client, addr, "/webhooks/hoursmith", delivery)
                .await
                .status,
            200
        );
    }
    let duplicate = send(&client, addr, "/webhooks/hoursmith", &unique[1]).await;
    assert_eq!(duplicate.body, r#"{"status":"duplicate"}"#);
    let refused = send(&client, addr, "/webhooks/hoursmith", &forged).await;
    assert_eq!(refused.status, 401);

    // The handlers run after the 200s: wait for their three runs to be counted.
    let runs = r#"hookwise_handler_runs_total{provider="hoursmith",result="ok"}"#;
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&client, addr).await;
        if sample(&text, runs) == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let expected = [
        (
            r#"hookwise_deliveries_total{provider="hoursmith",outcome="accepted"}"#,
            3.0,
        ),
        (
            r#"hookwise_deliveries_total{provider="hoursmith",outcome="duplicate"}"#,
            1.0,
        ),
        (
            r#"hookwise_deliveries_total{provider="hoursmith",outcome="rejected"}"#,
            1.0,
        ),
        (
            r#"hookwise_rejections_total{provider="hoursmith",code="signature_mismatch"}"#,
            1.0,
        ),
        (runs, 3.0),
        (
            r#"hookwise_handler_duration_seconds_count{provider="hoursmith"}"#,
            3.0,
        ),
        (r#"hookwise_events_in_flight{provider="hoursmith"}"#, 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    // Every series exists from the start, at zero where nothing happened yet.
    let mojave = r#"hookwise_deliveries_total{provider="mojave",outcome="accepted"}"#;
    assert_eq!(sample(&text, mojave), Some(0.0), "{text}");
    let (status, _) = server.terminate();
    assert!(status.success());
}
