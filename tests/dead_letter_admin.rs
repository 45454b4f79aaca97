//! The dead-letter admin router over real sockets, for every backend that keeps
//! dead letters: the in-memory list, Redis (a real `redis-server`) and Postgres (a
//! real cluster). Signed events are sent to a receiver whose handler fails; then,
//! through the admin router behind a bearer token: list (newest first, paged by
//! cursor), show, the raw body, delete, replay one (twice at once: run once),
//! replay those a filter takes, and a replay into a full backlog (503, kept).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    response::{IntoResponse, Response},
    routing::post_service,
};
use bytes::Bytes;
use hookwise::{
    ConfigError, DedupeStore, Delivery, Hoursmith, Receiver, RetryPolicy, Webhooks,
    WebhooksBuilder, axum::dead_letter_router, hoursmith, runtime::DurableQueue,
    tower::WebhookEndpoint,
};
use hookwise_test_support::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tower_http::validate_request::ValidateRequestHeaderLayer;

const HANDLER: &str = "hook";
const TOKEN: &str = "Bearer a-test-token";
const FAILURE: &str = "the handler fails";

/// The handler's switches, and what it ran.
#[derive(Clone, Default)]
struct App {
    recorder: Recorder,
    /// While set, the handler fails.
    failing: Arc<AtomicBool>,
    /// While set, the handler waits.
    holding: Arc<AtomicBool>,
}

impl App {
    async fn handle(self, delivery: Delivery<hoursmith::Event>) -> Result<(), &'static str> {
        while self.holding.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(FAILURE);
        }
        self.recorder.record(delivery.event().id());
        Ok(())
    }
}

/// Two attempts 5 ms apart, and the app's handler as [`HANDLER`].
fn with_handler(builder: WebhooksBuilder<Hoursmith>, app: &App) -> Webhooks<Hoursmith> {
    let app = app.clone();
    builder
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_backoff(Duration::from_millis(5)),
        )
        .handler(HANDLER, move |delivery| app.clone().handle(delivery))
        .build()
        .expect("valid settings")
}

/// A receiver on `POST /hook`, and its admin router on another port, nested under
/// `/admin/dead-letters` behind a bearer token as the README shows.
struct Served {
    hook: SocketAddr,
    admin: SocketAddr,
    webhooks: Webhooks<Hoursmith>,
}

/// The README's authentication: the bearer token, compared in constant time.
// The signature `ValidateRequestHeaderLayer::custom` takes.
#[allow(clippy::result_large_err)]
fn bearer(request: &mut Request<Body>) -> Result<(), Response> {
    let given = request.headers().get("authorization");
    match given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(TOKEN.as_bytes()))) {
        true => Ok(()),
        false => Err(StatusCode::UNAUTHORIZED.into_response()),
    }
}

async fn serve_both(webhooks: Webhooks<Hoursmith>) -> Served {
    let endpoint = WebhookEndpoint::new(&webhooks, HANDLER).expect("registered");
    let hook = serve(Router::new().route("/hook", post_service(endpoint))).await;
    let store = webhooks.dead_letter_store().expect("dead letters are kept");
    let admin = dead_letter_router(store).layer(ValidateRequestHeaderLayer::custom(bearer));
    let admin = serve(Router::new().nest("/admin/dead-letters", admin)).await;
    Served {
        hook,
        admin,
        webhooks,
    }
}

/// An answer of the admin router.
struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(client: &HttpClient, served: &Served, method: Method, path: &str) -> Reply {
    call_with(client, served, method, path, Some(TOKEN)).await
}

async fn call_with(
    client: &HttpClient,
    served: &Served,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{}/admin/dead-letters{path}", served.admin));
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let request = request.body(Full::new(Bytes::new())).expect("request");
    let response = client.request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

/// Every page of the listing at `query`, following `next`.
async fn all_pages(client: &HttpClient, served: &Served, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("?{query}&cursor={cursor}"),
            None => format!("?{query}"),
        };
        let reply = call(client, served, Method::GET, &path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let page = reply.json();
        pages.push(page["letters"].as_array().expect("letters").clone());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 20, "the pages never end");
    }
}

async fn listed(client: &HttpClient, served: &Served) -> Vec<Value> {
    all_pages(client, served, "limit=500").await.concat()
}

/// The keys of `letters`, in order.
fn keys(letters: &[Value]) -> Vec<&str> {
    letters
        .iter()
        .map(|letter| letter["key"].as_str().expect("a key"))
        .collect()
}

/// The id of the dead letter of event `id`.
fn id_of<'a>(letters: &'a [Value], id: &str) -> &'a str {
    let key = format!("hoursmith:{id}");
    letters
        .iter()
        .find(|letter| letter["key"] == key.as_str())
        .and_then(|letter| letter["id"].as_str())
        .unwrap_or_else(|| panic!("no dead letter of {id}"))
}

/// Waits up to 10 s for `n` dead letters.
async fn wait_for_letters(client: &HttpClient, served: &Served, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let letters = listed(client, served).await;
        if letters.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(letters.len(), n, "{letters:?}");
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `id` to completion once it is handed back: the recorder sees it within 10 s,
/// and 300 ms later still once.
async fn runs_once(app: &App, id: &str) {
    let count = || app.recorder.ids().iter().filter(|seen| *seen == id).count();
    assert!(
        eventually(Duration::from_secs(10), || count() >= 1).await,
        "{id} never ran"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(), 1, "{id} ran {} times", count());
}

/// The whole story, the same for every backend. `handler` is what the listing says
/// of the handler (the in-memory list does not know it).
async fn administer(served: &Served, app: &App, handler: Option<&str>) {
    let client = client();
    let now = now();
    app.failing.store(true, Ordering::SeqCst);
    // Five events dead-lettered one after another: evt_0 is the oldest.
    let mut sent = Vec::new();
    for i in 0..5 {
        let (event_type, data) = match i {
            0..=2 => ("task.created", r#"{"task":{"id":"t_1"}}"#),
            _ => ("client.created", r#"{"client":{"id":"c_1"}}"#),
        };
        let id = format!("evt_{i}");
        let delivery = hoursmith_signed(hoursmith_body(&id, event_type, data), now);
        let answer = send(&client, served.hook, "/hook", &delivery).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        wait_for_letters(&client, served, i + 1).await;
        sent.push(delivery);
    }

    // No token, or a wrong one: the user's layer answers before the router.
    for token in [None, Some("Bearer wrong")] {
        let reply = call_with(&client, served, Method::GET, "", token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }

    // Newest first; pages of two cover every letter exactly once.
    let letters = listed(&client, served).await;
    let newest_first =
        ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"].map(|id| format!("hoursmith:{id}"));
    assert_eq!(keys(&letters), newest_first);
    let pages = all_pages(&client, served, "limit=2").await;
    assert!(pages.len() >= 3, "{pages:?}");
    assert!(pages.iter().all(|page| page.len() <= 2));
    assert_eq!(keys(&pages.concat()), newest_first);
    let letter = &letters[0];
    assert_eq!(letter["provider"], "hoursmith");
    assert_eq!(letter["handler"].as_str(), handler);
    assert_eq!(letter["event_type"], "client.created");
    assert_eq!(letter["attempts"], 2);
    assert!(
        letter["error"]
            .as_str()
            .expect("an error")
            .contains(FAILURE),
        "{letter}"
    );
    let dead_at = letter["dead_at"].as_u64().expect("a time");
    assert!(
        (now - 60..=now + 60).contains(&dead_at),
        "{dead_at} vs {now}"
    );

    // Filters.
    let filtered = all_pages(&client, served, "event_type=client.created&error=fails").await;
    assert_eq!(
        keys(&filtered.concat()),
        ["hoursmith:evt_4", "hoursmith:evt_3"]
    );
    assert!(
        all_pages(&client, served, "handler=another")
            .await
            .concat()
            .is_empty()
    );
    assert!(
        all_pages(&client, served, "error=no%20such%20error")
            .await
            .concat()
            .is_empty()
    );

    // One, without its body; its body, as sent.
    let evt_2 = id_of(&letters, "evt_2");
    let shown = call(&client, served, Method::GET, &format!("/{evt_2}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    let shown = shown.json();
    assert_eq!(shown["key"], "hoursmith:evt_2");
    assert_eq!(shown["event_type"], "task.created");
    assert!(shown.get("body").is_none(), "{shown}");
    let body = call(&client, served, Method::GET, &format!("/{evt_2}/body")).await;
    assert_eq!(body.status, StatusCode::OK);
    assert_eq!(body.body, sent[2].body);
    assert_eq!(body.headers["content-type"], "application/octet-stream");
    assert_eq!(body.headers["x-content-type-options"], "nosniff");

    // Bad parameters.
    for path in [
        "?limit=0",
        "?limit=501",
        "?limit=x",
        "?cursor=not-a-cursor",
        "?colour=red",
    ] {
        let reply = call(&client, served, Method::GET, path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.json()["error"], "bad_request", "{path}");
    }
    let reply = call(&client, served, Method::GET, "/not-an-id").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Delete: gone, and a 404 after.
    let evt_0 = id_of(&letters, "evt_0");
    let deleted = call(&client, served, Method::DELETE, &format!("/{evt_0}")).await;
    assert_eq!(deleted.status, StatusCode::OK);
    for method in [Method::GET, Method::DELETE] {
        let again = call(&client, served, method, &format!("/{evt_0}")).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(again.json()["error"], "not_found");
    }
    let replay_deleted = call(&client, served, Method::POST, &format!("/{evt_0}/replay")).await;
    assert_eq!(replay_deleted.status, StatusCode::NOT_FOUND);

    // The handler is fixed. Replay one, twice at once: one is taken, the other finds
    // nothing, and the event runs once.
    app.failing.store(false, Ordering::SeqCst);
    let evt_1 = id_of(&letters, "evt_1");
    let path = format!("/{evt_1}/replay");
    let (first, second) = tokio::join!(
        call(&client, served, Method::POST, &path),
        call(&client, served, Method::POST, &path)
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::ACCEPTED, StatusCode::NOT_FOUND]);
    runs_once(app, "evt_1").await;
    let again = call(&client, served, Method::POST, &path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    // The sender's redelivery of a dead-lettered event stays a duplicate.
    let redelivered = send(&client, served.hook, "/hook", &sent[3]).await;
    assert_eq!(redelivered.body, r#"{"status":"duplicate"}"#);

    // Replay those a filter takes: the two client.created, not evt_2.
    let mut replayed = 0;
    for _ in 0..100 {
        let reply = call(
            &client,
            served,
            Method::POST,
            "/replay?event_type=client.created",
        )
        .await;
        if reply.status == StatusCode::OK {
            let report = reply.json();
            replayed += report["replayed"].as_u64().expect("a count");
            if report["more"] == false {
                break;
            }
        } else {
            // A backlog still holding the previous replay.
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replayed, 2);
    runs_once(app, "evt_3").await;
    runs_once(app, "evt_4").await;
    assert_eq!(keys(&listed(&client, served).await), ["hoursmith:evt_2"]);

    // A full backlog: two events held fill it, and a replay is refused and kept.
    app.holding.store(true, Ordering::SeqCst);
    for id in ["held_1", "held_2"] {
        let answer = send(&client, served.hook, "/hook", &hoursmith(id)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let replay_2 = format!("/{evt_2}/replay");
    let refused = call(&client, served, Method::POST, &replay_2).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.json()["error"], "queue_full");
    assert_eq!(refused.headers["retry-after"], "10");
    let kept = call(&client, served, Method::GET, &format!("/{evt_2}")).await;
    assert_eq!(kept.status, StatusCode::OK, "the dead letter is kept");
    let refused_all = call(&client, served, Method::POST, "/replay").await;
    assert_eq!(refused_all.status, StatusCode::SERVICE_UNAVAILABLE);

    // Released, the backlog drains, and the replay goes through.
    app.holding.store(false, Ordering::SeqCst);
    assert_eq!(app.recorder.wait_for(5, Duration::from_secs(10)).await, 5);
    let mut accepted = false;
    for _ in 0..100 {
        let reply = call(&client, served, Method::POST, &replay_2).await;
        if reply.status == StatusCode::ACCEPTED {
            accepted = true;
            break;
        }
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "the replay was never taken");
    runs_once(app, "evt_2").await;
    assert!(listed(&client, served).await.is_empty());

    let mut ran = app.recorder.ids();
    ran.sort();
    assert_eq!(
        ran,
        ["evt_1", "evt_2", "evt_3", "evt_4", "held_1", "held_2"]
    );
    let report = served.webhooks.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unfinished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_dead_letters_are_administered_over_http() {
    let app = App::default();
    let receiver = Receiver::new(
        Hoursmith::new(HOURSMITH_SECRET).expect("secret"),
        hookwise::MemoryStore::new(),
    )
    .expect("config");
    // One running and one waiting: two held events fill it.
    let builder = Webhooks::builder(receiver).concurrency(1).queue_capacity(1);
    let served = serve_both(with_handler(builder, &app)).await;
    administer(&served, &app, None).await;
}

/// The story on a durable queue whose backlog holds two, and a store beside it.
async fn administer_durable<S, Q>(store: S, queue: Result<Q, ConfigError>)
where
    S: DedupeStore,
    Q: DurableQueue<Hoursmith>,
{
    let app = App::default();
    let receiver =
        Receiver::new(Hoursmith::new(HOURSMITH_SECRET).expect("secret"), store).expect("config");
    let builder = Webhooks::builder(receiver).durable_queue(queue.expect("valid settings"));
    let served = serve_both(with_handler(builder, &app)).await;
    administer(&served, &app, Some(HANDLER)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_dead_letters_are_administered_over_http() {
    let Some(redis) = RedisServer::start("the_redis_dead_letters_are_administered_over_http")
    else {
        return;
    };
    let url = redis.url();
    let queue = hookwise_redis::RedisQueue::new(&url).expect("valid URL");
    administer_durable(
        hookwise_redis::RedisStore::new(&url).expect("valid URL"),
        queue
            .poll_interval(Duration::from_millis(20))
            .and_then(|queue| queue.max_backlog(2)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_dead_letters_are_administered_over_http() {
    let Some(postgres) = PgServer::start("the_postgres_dead_letters_are_administered_over_http")
    else {
        return;
    };
    let url = postgres.url();
    let store = hookwise_postgres::PgStore::new(&url).expect("valid URL");
    store.migrate().await.expect("migrated");
    let queue = hookwise_postgres::PgQueue::new(&url).expect("valid URL");
    administer_durable(
        store,
        queue
            .poll_interval(Duration::from_millis(20))
            .and_then(|queue| queue.max_backlog(2)),
    )
    .await;
}
