//! The load benchmark: how much `WebhookLayer` adds to a bare axum route, on loopback.
//!
//! ```text
//! cargo run --release -p hookwise-bench -- --seconds 10
//! ```
//!
//! Starts two servers in this process, on one server runtime:
//!
//! - **A**: a bare axum route that reads the body and answers `200`;
//! - **B**: the same route behind [`WebhookLayer`] with a [`MemoryStore`], ack-fast
//!   mode and a handler that does nothing.
//!
//! Each is driven by its own client (keep-alive connections, `--concurrency`
//! requests in flight) on a client runtime, with the same load: every request a
//! Hoursmith `task.created` event signed just before it is sent. The measured time is
//! cut into rounds alternating A and B (ABBA order), so noise from other work on the
//! machine lands on both. Per scenario it prints requests/s, p50/p99 latency, the
//! server threads' CPU time per request, and the B/A ratios, as a Markdown table.
//!
//! Scenarios: `unique` (1 KiB, every event new), `duplicates` (1 KiB, every fifth
//! request a re-signed retry of an event already answered), `large` (64 KiB, every
//! event new).

#![forbid(unsafe_code)]

use std::{
    fs,
    hint::black_box,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use bytes::Bytes;
use hookwise_bench::{HOURSMITH_SECRET, KIB, event_id, hoursmith_body, now_secs};
use hookwise_core::{Hoursmith, MemoryStore, Receiver, sign};
use hookwise_tower::WebhookLayer;
use http::{HeaderValue, Request, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{net::TcpListener, runtime::Runtime};

/// The prefix of the server runtime's thread names, to find their CPU time in `/proc`.
const SERVER_THREAD: &str = "hw-server";

/// The prefix of the client runtime's thread names.
const CLIENT_THREAD: &str = "hw-client";

const PATH: &str = "/webhooks/hoursmith";

const USAGE: &str = "\
usage: hookwise-bench [--seconds N] [--rounds N] [--concurrency N]
                      [--scenarios unique,duplicates,large]
                      [--server-threads N] [--client-threads N] [--only A|B]

  --seconds N         measured seconds per server and scenario (default 10)
  --rounds N          A/B rounds the measured time is cut into (default 10)
  --concurrency N     requests in flight per client (default 16)
  --scenarios LIST    which scenarios to run (default all three)
  --server-threads N  worker threads serving A and B (default 2)
  --client-threads N  worker threads of the load generator (default 2)
  --only A|B          drive one server only (for profiling it; no ratios)";

/// The command line.
#[derive(Debug, Clone)]
struct Config {
    seconds: f64,
    rounds: u32,
    concurrency: usize,
    scenarios: Vec<Scenario>,
    server_threads: usize,
    client_threads: usize,
    /// Drive only this side (0: A, 1: B), for profiling.
    only: Option<usize>,
}

/// One load shape.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    body_size: usize,
    /// Every `duplicate_every`th request re-sends the previous event (0: never).
    duplicate_every: u64,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "unique",
        body_size: KIB,
        duplicate_every: 0,
    },
    Scenario {
        name: "duplicates",
        body_size: KIB,
        duplicate_every: 5,
    },
    Scenario {
        name: "large",
        body_size: 64 * KIB,
        duplicate_every: 0,
    },
];

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        seconds: 10.0,
        rounds: 10,
        concurrency: 16,
        scenarios: SCENARIOS.to_vec(),
        server_threads: 2,
        client_threads: 2,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("{flag}: {value:?} is not a positive number"))
        };
        match flag.as_str() {
            "--seconds" => config.seconds = number()?,
            "--rounds" => config.rounds = number()?.ceil() as u32,
            "--concurrency" => config.concurrency = number()?.ceil() as usize,
            "--server-threads" => config.server_threads = number()?.ceil() as usize,
            "--client-threads" => config.client_threads = number()?.ceil() as usize,
            "--only" => {
                config.only = match value.as_str() {
                    "A" | "a" => Some(0),
                    "B" | "b" => Some(1),
                    _ => return Err(format!("--only takes A or B, not {value:?}")),
                }
            }
            "--scenarios" => {
                config.scenarios = value
                    .split(',')
                    .map(|name| {
                        SCENARIOS
                            .iter()
                            .find(|s| s.name == name.trim())
                            .copied()
                            .ok_or_else(|| format!("unknown scenario {name:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.server_threads)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.client_threads)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("client runtime");

    println!(
        "hookwise load benchmark: {} s per server and scenario in {} A/B rounds, \
         {} in flight per client, server {} threads, client {} threads, {} CPUs",
        config.seconds,
        config.rounds,
        config.concurrency,
        config.server_threads,
        config.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut failed = false;
    for scenario in &config.scenarios {
        // Fresh servers per scenario: B's store starts empty each time.
        let (bare, layered) =
            server_rt.block_on(async { (serve_bare().await, serve_layered().await) });
        let report = run_scenario(&client_rt, &config, *scenario, bare, layered);
        failed |= report.errors > 0;
    }
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(1));
    if failed {
        eprintln!("some requests were not answered 200: see the errors column");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A: reads the whole body and answers `200`.
async fn serve_bare() -> SocketAddr {
    let app = Router::new().route(
        PATH,
        post(|body: Bytes| async move {
            black_box(body.len());
            StatusCode::OK
        }),
    );
    serve(app).await
}

/// B: the same route behind `WebhookLayer` (in-memory store, ack-fast, a handler that
/// does nothing).
async fn serve_layered() -> SocketAddr {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let receiver = Receiver::new(provider, MemoryStore::new()).expect("receiver");
    let app = Router::new()
        .route(PATH, post(|| async {}))
        .layer(WebhookLayer::new(receiver));
    serve(app).await
}

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("server on {addr} stopped: {error}");
        }
    });
    addr
}

/// What one side measured over all its rounds.
#[derive(Debug, Default)]
struct Side {
    ok: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Side {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[rank]
    }

    fn cpu_per_request_us(&self, cpu: Option<Duration>) -> Option<f64> {
        Some(cpu?.as_secs_f64() * 1e6 / (self.ok + self.errors).max(1) as f64)
    }
}

/// The totals of a scenario, for the exit code.
#[derive(Debug)]
struct ScenarioReport {
    errors: u64,
}

fn run_scenario(
    rt: &Runtime,
    config: &Config,
    scenario: Scenario,
    bare: SocketAddr,
    layered: SocketAddr,
) -> ScenarioReport {
    let load = Arc::new(Load {
        scenario,
        next_event: AtomicU64::new(0),
        run: std::process::id(),
    });
    let round = Duration::from_secs_f64(config.seconds / f64::from(config.rounds));
    let targets = [(bare, client()), (layered, client())];
    let side = || Side {
        server_cpu: Some(Duration::ZERO),
        client_cpu: Some(Duration::ZERO),
        ..Side::default()
    };
    let mut sides = [side(), side()];

    // Warm up both: connections, allocator, branch predictors.
    let warmup = round.min(Duration::from_millis(500));
    for (i, (addr, client)) in targets.iter().enumerate() {
        if config.only.is_none_or(|only| only == i) {
            rt.block_on(drive(client, *addr, &load, config.concurrency, warmup));
        }
    }
    for r in 0..config.rounds {
        // ABBA: A first in even rounds, B first in odd ones.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order
            .into_iter()
            .filter(|i| config.only.is_none_or(|only| only == *i))
        {
            let (addr, client) = &targets[i];
            let cpu_before = (thread_cpu(SERVER_THREAD), thread_cpu(CLIENT_THREAD));
            let started = Instant::now();
            let result = rt.block_on(drive(client, *addr, &load, config.concurrency, round));
            let elapsed = started.elapsed();
            let cpu_after = (thread_cpu(SERVER_THREAD), thread_cpu(CLIENT_THREAD));
            let side = &mut sides[i];
            side.ok += result.ok;
            side.errors += result.errors;
            side.elapsed += elapsed;
            side.latencies_us.extend(result.latencies_us);
            side.server_cpu = add_cpu(side.server_cpu, cpu_before.0, cpu_after.0);
            side.client_cpu = add_cpu(side.client_cpu, cpu_before.1, cpu_after.1);
        }
    }
    for side in &mut sides {
        side.latencies_us.sort_unstable();
    }
    print_table(scenario, &sides);
    ScenarioReport {
        errors: sides.iter().map(|s| s.errors).sum(),
    }
}

/// Adds the CPU time a round used to a side's total; `None` once a reading failed.
fn add_cpu(
    total: Option<Duration>,
    before: Option<Duration>,
    after: Option<Duration>,
) -> Option<Duration> {
    Some(total? + after?.saturating_sub(before?))
}

fn print_table(scenario: Scenario, sides: &[Side; 2]) {
    let [a, b] = sides;
    let duplicates = if scenario.duplicate_every > 0 {
        format!(", 1 in {} a duplicate", scenario.duplicate_every)
    } else {
        String::new()
    };
    println!();
    println!(
        "### {} ({} KiB bodies{duplicates})",
        scenario.name,
        scenario.body_size / KIB
    );
    println!();
    println!(
        "| server | requests | req/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | client CPU µs/req | non-200 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, side) in [("A: bare axum", a), ("B: WebhookLayer", b)] {
        println!(
            "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            side.ok,
            side.rate(),
            side.percentile(0.50),
            side.percentile(0.99),
            side.percentile(0.999),
            us(side.cpu_per_request_us(side.server_cpu)),
            us(side.cpu_per_request_us(side.client_cpu)),
            side.errors,
        );
    }
    let ratio = |b: f64, a: f64| if a > 0.0 { b / a } else { f64::NAN };
    println!(
        "| **B/A** | | **{:.3}** | {:.2} | **{:.2}** | {:.2} | {} | | |",
        ratio(b.rate(), a.rate()),
        ratio(f64::from(b.percentile(0.50)), f64::from(a.percentile(0.50))),
        ratio(f64::from(b.percentile(0.99)), f64::from(a.percentile(0.99))),
        ratio(
            f64::from(b.percentile(0.999)),
            f64::from(a.percentile(0.999))
        ),
        match (
            b.cpu_per_request_us(b.server_cpu),
            a.cpu_per_request_us(a.server_cpu),
        ) {
            (Some(b), Some(a)) => format!("{:.2}", ratio(b, a)),
            _ => "n/a".to_owned(),
        },
    );
}

/// The load a scenario sends: the same for A and B.
#[derive(Debug)]
struct Load {
    scenario: Scenario,
    next_event: AtomicU64,
    run: u32,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client with its own pool of keep-alive connections.
fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// What one round measured.
#[derive(Debug, Default)]
struct RoundResult {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// Keeps `concurrency` requests in flight against `addr` for `length`.
async fn drive(
    client: &HttpClient,
    addr: SocketAddr,
    load: &Arc<Load>,
    concurrency: usize,
    length: Duration,
) -> RoundResult {
    let deadline = Instant::now() + length;
    let uri: http::Uri = format!("http://{addr}{PATH}").parse().expect("uri");
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, uri, load) = (client.clone(), uri.clone(), load.clone());
            tokio::spawn(async move { worker(client, uri, load, deadline).await })
        })
        .collect();
    let mut total = RoundResult::default();
    for worker in workers {
        let result = worker.await.expect("load worker");
        total.ok += result.ok;
        total.errors += result.errors;
        total.latencies_us.extend(result.latencies_us);
    }
    total
}

async fn worker(
    client: HttpClient,
    uri: http::Uri,
    load: Arc<Load>,
    deadline: Instant,
) -> RoundResult {
    let mut result = RoundResult::default();
    let mut previous: Option<Bytes> = None;
    let mut sent = 0u64;
    let scenario = load.scenario;
    while Instant::now() < deadline {
        sent += 1;
        let now = now_secs();
        let body = match &previous {
            // A sender's retry: the same event, signed again.
            Some(body) if sent.is_multiple_of(scenario.duplicate_every) => body.clone(),
            _ => {
                let n = load.next_event.fetch_add(1, Ordering::Relaxed);
                hoursmith_body(&event_id(load.run, n), now, scenario.body_size)
            }
        };
        let signature = sign::hoursmith(HOURSMITH_SECRET.as_bytes(), now, &body);
        let request = Request::post(uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(signature.name(), signature.value())
            .body(Full::new(body.clone()))
            .expect("request");
        previous = Some(body);

        let started = Instant::now();
        let answered = match client.request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.is_ok() && status == StatusCode::OK
            }
            Err(_) => false,
        };
        let latency = started.elapsed();
        if answered {
            result.ok += 1;
            result
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        } else {
            result.errors += 1;
        }
    }
    result
}

fn us(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1}"))
}

/// The CPU time (user + system) used so far by the threads named `prefix...`, from
/// `/proc/self/task/*/stat`; `None` where `/proc` is not there. Clock ticks are
/// assumed to be 100 per second, Linux's `USER_HZ` on every common platform.
fn thread_cpu(prefix: &str) -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let mut ticks = 0u64;
    for task in fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        let Ok(stat) = fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.contains(&format!("({prefix}")) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the comm: state is field 3 of the line; utime and stime are 14 and 15.
        let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        ticks += utime.parse::<u64>().unwrap_or(0) + stime.parse::<u64>().unwrap_or(0);
    }
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}
