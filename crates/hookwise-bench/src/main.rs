//! The load benchmark: how much `WebhookLayer` adds to a bare axum route, on loopback.
//!
//! ```text
//! cargo run --release -p hookwise-bench -- --seconds 10
//! ```
//!
//! Starts two servers in this process, on one server runtime:
//!
//! - **A**: a bare axum route that reads the body and answers `200` (or, with
//!   `--baseline hand-rolled`, the contract's work written directly on `hmac`,
//!   `serde_json` and `dashmap`: see [`hookwise_bench::hand_rolled`]);
//! - **B**: the same route behind [`WebhookLayer`] with a [`MemoryStore`], ack-fast
//!   mode and a handler that does nothing (or, with `--contender hand-rolled`, the
//!   hand-rolled receiver, to price the contract's own work against the bare route).
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
//!
//! # Closed loop (the default) and fixed rate (`--rate`)
//!
//! By default each client is a **closed loop**: `--concurrency` requests in flight,
//! a new one sent as soon as one is answered, so each server runs at saturation.
//! Its latency is then set by queueing (Little's law: latency ≈ in flight /
//! throughput), so a slower server shows a higher latency in proportion to its
//! lower throughput; that comparison says how much capacity the layer costs, not how
//! much latency it adds to one request.
//!
//! With `--rate R` each client is an **open loop** at a fixed rate instead, so A and
//! B get the same offered load: `R` requests per second per client (in all, across
//! its connections), request `k` of a round scheduled at `start + k / R`. A pacer
//! thread (`std::thread::sleep`, not tokio's millisecond timer) releases each
//! request when it is due; at most `--concurrency` keep-alive connections per client
//! send them, one request at a time each, so a due request waits while every
//! connection is busy. Latency is measured from the **scheduled** send time, not the
//! actual one, so time spent waiting for a connection counts (no coordinated
//! omission) and a server that falls behind shows it. Each connection builds and
//! signs its next request while it waits for its slot, so signing (the HMAC over
//! 64 KiB in the `large` scenario) is not counted in the latency unless the client
//! is behind.
//!
//! The fixed-rate table adds: the offered rate; the send lag (actual send time less
//! scheduled, the pacer's jitter plus any wait for a connection) at p99; the p99
//! measured from the actual send time instead (what the server and the connection
//! took, without the client's lag: for reading, not for the comparison); how many
//! requests were sent more than 1 ms late; how many were never sent (not started
//! within 0.5 s after the round's end); and the longest queue of due requests
//! waiting for a connection. If any request was not sent, or more than 1 % were
//! late, the client did not deliver the offered load and the run says so below the
//! table (it still exits 0: only answers other than `200` fail the run).
//!
//! Choosing the rate: it must be one **both** servers sustain. That is well below
//! B's closed-loop throughput when client and servers share a few cores: at a fixed
//! rate both spend more CPU per request than at saturation (threads park and wake
//! for each request instead of batching), so on 2 cores B's queue could run away at
//! 50 % of A's closed-loop req/s (`BENCHMARKS.md`, section 6). Either take the rate
//! from a closed-loop run (for example 5 %, 12 % and 25 % of A's req/s there, given
//! as an absolute `--rate 12000`), or give `--rate 25%` (or `--rate auto`, the
//! same): a fraction of A's closed-loop throughput measured by a 1 s calibration of
//! A before each scenario's rounds. The calibration is noisy on a shared machine;
//! for tables that are compared, give the absolute rate.

#![forbid(unsafe_code)]

use std::{
    fs,
    hint::black_box,
    net::SocketAddr,
    process::ExitCode,
    sync::mpsc,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use bytes::Bytes;
use hookwise_bench::{
    HOURSMITH_SECRET, KIB, event_id,
    hand_rolled::{self, HandRolled},
    hoursmith_body, now_secs,
};
use hookwise_core::{Hoursmith, MemoryStore, Receiver, sign};
use hookwise_runtime::Webhooks;
use hookwise_tower::WebhookLayer;
use http::{HeaderValue, Request, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{
    net::TcpListener,
    runtime::Runtime,
    sync::{Semaphore, oneshot},
};

/// The prefix of the server runtime's thread names, to find their CPU time in `/proc`.
const SERVER_THREAD: &str = "hw-server";

/// The prefix of the client runtime's thread names (and of the pacer's, so that its
/// CPU time counts as the client's).
const CLIENT_THREAD: &str = "hw-client";

/// The name of the fixed-rate mode's pacer thread.
const PACER_THREAD: &str = "hw-client-pace";

/// In fixed-rate mode, a request sent later than this after its scheduled time is
/// counted as late.
const LATE: Duration = Duration::from_millis(1);

/// In fixed-rate mode, due requests not started this long after a round's end are
/// not sent (and counted).
const GRACE: Duration = Duration::from_millis(500);

/// How long `--rate P%` measures A's closed-loop throughput before each scenario.
const CALIBRATION: Duration = Duration::from_secs(1);

const PATH: &str = "/webhooks/hoursmith";

const USAGE: &str = "\
usage: hookwise-bench [--seconds N] [--rounds N] [--concurrency N]
                      [--scenarios unique,duplicates,large]
                      [--server-threads N] [--client-threads N] [--only A|B]
                      [--rate R | --rate P% | --rate auto]
                      [--baseline bare|hand-rolled]
                      [--contender layer|hand-rolled]

  --seconds N         measured seconds per server and scenario (default 10)
  --rounds N          A/B rounds the measured time is cut into (default 10)
  --concurrency N     requests in flight per client (default 16); with --rate,
                      the most connections (and requests in flight) per client
  --scenarios LIST    which scenarios to run (default all three)
  --server-threads N  worker threads serving A and B (default 2)
  --client-threads N  worker threads of the load generator (default 2)
  --only A|B          drive one server only (for profiling it; no ratios)
  --rate R            fixed rate (open loop) instead of the default closed loop:
                      R requests/s per client, scheduled at fixed intervals, the
                      same offered load for A and B; latency is measured from
                      each request's scheduled send time. R must be a rate B
                      sustains, well below its closed-loop req/s on few cores
                      (e.g. 5 to 25 % of A's): take it from a closed-loop run
  --rate P%           the same, at P % of A's closed-loop req/s, measured in a
                      1 s calibration before each scenario (noisy; for tables
                      that are compared give R)
  --rate auto         --rate 25%
  --baseline bare     A is a bare axum route that reads the body (the default)
  --baseline hand-rolled
                      A is the contract's work without hookwise: verify the
                      HMAC, parse the envelope, claim the id in a DashMap, spawn
                      the handler; B/A is then what the layer adds beyond it
  --contender hand-rolled
                      B is the hand-rolled receiver instead of WebhookLayer
                      (with the default baseline: what the contract's own work
                      costs next to a bare route)";

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
    rate: Rate,
    /// Server A (`--baseline`) and server B (`--contender`).
    servers: [Server; 2],
}

/// What a side's server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// A bare axum route that reads the body and answers `200`.
    Bare,
    /// [`hand_rolled`]: the contract's work, written without hookwise.
    HandRolled,
    /// The route behind `WebhookLayer`.
    Layer,
}

impl Server {
    /// Its name in the tables.
    fn label(self) -> &'static str {
        match self {
            Self::Bare => "bare axum",
            Self::HandRolled => "hand-rolled receiver",
            Self::Layer => "WebhookLayer",
        }
    }

    /// Starts it.
    async fn serve(self) -> SocketAddr {
        match self {
            Self::Bare => serve_bare().await,
            Self::HandRolled => serve_hand_rolled().await,
            Self::Layer => serve_layered().await,
        }
    }

    /// `--flag value`, where `value` must name one of `choices`.
    fn parse(flag: &str, value: &str, choices: &[(&str, Self)]) -> Result<Self, String> {
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, server)| *server)
            .ok_or_else(|| {
                let names: Vec<_> = choices.iter().map(|(name, _)| *name).collect();
                format!("{flag} takes {}, not {value:?}", names.join(" or "))
            })
    }
}

/// How each client loads its server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    /// `--concurrency` requests in flight, each sent as soon as one is answered.
    Closed,
    /// This many requests per second per client, at fixed intervals.
    Fixed(f64),
    /// This fraction of A's closed-loop throughput, measured before each scenario.
    OfA(f64),
}

impl Rate {
    fn parse(value: &str) -> Result<Self, String> {
        let positive = |text: &str| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
        };
        let rate = if value == "auto" {
            Some(Self::OfA(0.25))
        } else if let Some(percent) = value.strip_suffix('%') {
            positive(percent).map(|p| Self::OfA(p / 100.0))
        } else {
            positive(value).map(Self::Fixed)
        };
        rate.ok_or_else(|| {
            format!("--rate takes requests/s, a percentage (25%) or auto, not {value:?}")
        })
    }
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
        rate: Rate::Closed,
        servers: [Server::Bare, Server::Layer],
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
            "--rate" => config.rate = Rate::parse(&value)?,
            "--baseline" => {
                let choices = [("bare", Server::Bare), ("hand-rolled", Server::HandRolled)];
                config.servers[0] = Server::parse(&flag, &value, &choices)?;
            }
            "--contender" => {
                let choices = [
                    ("layer", Server::Layer),
                    ("hand-rolled", Server::HandRolled),
                ];
                config.servers[1] = Server::parse(&flag, &value, &choices)?;
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

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    match config.rate {
        Rate::Closed => println!(
            "hookwise load benchmark: {} s per server and scenario in {} A/B rounds, \
             {} in flight per client, server {} threads, client {} threads, {} CPUs",
            config.seconds,
            config.rounds,
            config.concurrency,
            config.server_threads,
            config.client_threads,
            cpus,
        ),
        Rate::Fixed(_) | Rate::OfA(_) => println!(
            "hookwise load benchmark, fixed rate (open loop): {} s per server and scenario \
             in {} A/B rounds, {}, at most {} connections per client, server {} threads, \
             client {} threads, {} CPUs; latency from the scheduled send time",
            config.seconds,
            config.rounds,
            match config.rate {
                Rate::Fixed(rate) => format!("{rate:.0} req/s offered per client"),
                Rate::OfA(fraction) => format!(
                    "{:.0} % of A's closed-loop req/s offered per client",
                    fraction * 100.0
                ),
                Rate::Closed => unreachable!(),
            },
            config.concurrency,
            config.server_threads,
            config.client_threads,
            cpus,
        ),
    }
    let pacer = (config.rate != Rate::Closed).then(Pacer::start);
    let mut failed = false;
    for scenario in &config.scenarios {
        // Fresh servers per scenario: B's store starts empty each time.
        let (a, b) = server_rt.block_on(async {
            (
                config.servers[0].serve().await,
                config.servers[1].serve().await,
            )
        });
        let report = run_scenario(&client_rt, &config, pacer.as_ref(), *scenario, a, b);
        failed |= report.errors > 0;
    }
    drop(pacer);
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

/// The hand-rolled receiver (`--baseline` or `--contender hand-rolled`): the
/// contract's work without hookwise.
async fn serve_hand_rolled() -> SocketAddr {
    let app = Router::new()
        .route(PATH, post(hand_rolled::receive))
        .with_state(HandRolled::new(HOURSMITH_SECRET.as_bytes()));
    serve(app).await
}

/// B: the same route behind `WebhookLayer` (in-memory store, ack-fast, a handler that
/// does nothing).
async fn serve_layered() -> SocketAddr {
    let provider = Hoursmith::new(HOURSMITH_SECRET).expect("secret");
    let receiver = Receiver::new(provider, MemoryStore::new()).expect("receiver");
    let app = Router::new()
        .route(PATH, post(|| async {}))
        .layer(WebhookLayer::new(&Webhooks::new(receiver)).expect("an in-memory runtime"));
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
    /// Every round's counts and samples, added up.
    total: RoundResult,
    elapsed: Duration,
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
}

impl Side {
    fn rate(&self) -> f64 {
        self.total.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn percentile(&self, p: f64) -> u32 {
        percentile(&self.total.latencies_us, p)
    }

    fn offered(&self) -> f64 {
        self.total.scheduled as f64 / self.total.scheduled_for.as_secs_f64().max(f64::EPSILON)
    }

    fn cpu_per_request_us(&self, cpu: Option<Duration>) -> Option<f64> {
        Some(cpu?.as_secs_f64() * 1e6 / (self.total.ok + self.total.errors).max(1) as f64)
    }

    /// The cells both tables print for a side, from `requests` to `non-200`.
    fn cells(&self) -> String {
        format!(
            "{} | {:.0} | {} | {} | {} | {} | {} | {}",
            self.total.ok,
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99),
            self.percentile(0.999),
            us(self.cpu_per_request_us(self.server_cpu)),
            us(self.cpu_per_request_us(self.client_cpu)),
            self.total.errors,
        )
    }
}

/// The `p` quantile of sorted `values` (0 if empty).
fn percentile(values: &[u32], p: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((values.len() - 1) as f64 * p).round() as usize;
    values[rank]
}

/// The totals of a scenario, for the exit code.
#[derive(Debug)]
struct ScenarioReport {
    errors: u64,
}

fn run_scenario(
    rt: &Runtime,
    config: &Config,
    pacer: Option<&Pacer>,
    scenario: Scenario,
    a: SocketAddr,
    b: SocketAddr,
) -> ScenarioReport {
    let load = Arc::new(Load {
        scenario,
        next_event: AtomicU64::new(0),
        run: std::process::id(),
    });
    let round = Duration::from_secs_f64(config.seconds / f64::from(config.rounds));
    let targets = [(a, client()), (b, client())];
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
    let rate = match config.rate {
        Rate::Closed => None,
        Rate::Fixed(rate) => Some(rate),
        Rate::OfA(fraction) => {
            let (addr, client) = &targets[0];
            let started = Instant::now();
            let result = rt.block_on(drive(client, *addr, &load, config.concurrency, CALIBRATION));
            let measured = result.ok as f64 / started.elapsed().as_secs_f64();
            let rate = (measured * fraction).max(1.0);
            println!();
            println!(
                "{}: calibration, A closed loop for {} s: {measured:.0} req/s; offering {rate:.0} req/s ({:.0} %)",
                scenario.name,
                CALIBRATION.as_secs_f64(),
                fraction * 100.0,
            );
            Some(rate)
        }
    };
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
            let result = match (rate, pacer) {
                (Some(rate), Some(pacer)) => rt.block_on(drive_at_rate(
                    client,
                    *addr,
                    &load,
                    config.concurrency,
                    round,
                    rate,
                    pacer,
                )),
                _ => rt.block_on(drive(client, *addr, &load, config.concurrency, round)),
            };
            let elapsed = started.elapsed();
            let cpu_after = (thread_cpu(SERVER_THREAD), thread_cpu(CLIENT_THREAD));
            let side = &mut sides[i];
            side.total.absorb(result);
            side.elapsed += elapsed;
            side.server_cpu = add_cpu(side.server_cpu, cpu_before.0, cpu_after.0);
            side.client_cpu = add_cpu(side.client_cpu, cpu_before.1, cpu_after.1);
        }
    }
    for side in &mut sides {
        side.total.latencies_us.sort_unstable();
        side.total.lags_us.sort_unstable();
        side.total.from_send_us.sort_unstable();
    }
    if rate.is_some() {
        print_rate_table(scenario, config.servers, &sides);
    } else {
        print_table(scenario, config.servers, &sides);
    }
    ScenarioReport {
        errors: sides.iter().map(|s| s.total.errors).sum(),
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

/// A scenario's table heading: `### unique (1 KiB bodies)` plus `suffix`.
fn print_heading(scenario: Scenario, suffix: &str) {
    let duplicates = if scenario.duplicate_every > 0 {
        format!(", 1 in {} a duplicate", scenario.duplicate_every)
    } else {
        String::new()
    };
    println!();
    println!(
        "### {} ({} KiB bodies{duplicates}){suffix}",
        scenario.name,
        scenario.body_size / KIB
    );
    println!();
}

/// `b / a`, or NaN when `a` is not positive.
fn ratio(b: f64, a: f64) -> f64 {
    if a > 0.0 { b / a } else { f64::NAN }
}

/// The B/A row both tables print.
struct Ratios {
    rate: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    /// Server CPU per request, formatted (`n/a` when a reading failed).
    server_cpu: String,
}

impl Ratios {
    fn of(a: &Side, b: &Side) -> Self {
        let at = |side: &Side, q| f64::from(side.percentile(q));
        Self {
            rate: ratio(b.rate(), a.rate()),
            p50: ratio(at(b, 0.50), at(a, 0.50)),
            p99: ratio(at(b, 0.99), at(a, 0.99)),
            p999: ratio(at(b, 0.999), at(a, 0.999)),
            server_cpu: match (
                b.cpu_per_request_us(b.server_cpu),
                a.cpu_per_request_us(a.server_cpu),
            ) {
                (Some(b), Some(a)) => format!("{:.2}", ratio(b, a)),
                _ => "n/a".to_owned(),
            },
        }
    }
}

fn print_table(scenario: Scenario, servers: [Server; 2], sides: &[Side; 2]) {
    let [a, b] = sides;
    print_heading(scenario, "");
    println!(
        "| server | requests | req/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | client CPU µs/req | non-200 |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((name, side), server) in [("A", a), ("B", b)].into_iter().zip(servers) {
        let server = server.label();
        println!("| {name}: {server} | {} |", side.cells());
    }
    let r = Ratios::of(a, b);
    println!(
        "| **B/A** | | **{:.3}** | {:.2} | **{:.2}** | {:.2} | {} | | |",
        r.rate, r.p50, r.p99, r.p999, r.server_cpu,
    );
}

/// The fixed-rate table: [`print_table`]'s columns (latency from the scheduled send
/// time) plus what the client offered and whether it kept up.
fn print_rate_table(scenario: Scenario, servers: [Server; 2], sides: &[Side; 2]) {
    let [a, b] = sides;
    print_heading(scenario, ", fixed rate");
    println!(
        "| server | offered req/s | requests | req/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | client CPU µs/req | non-200 | send lag p99 µs | p99 from send µs | sent > 1 ms late | not sent | max queue |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for ((name, side), server) in [("A", a), ("B", b)].into_iter().zip(servers) {
        let server = server.label();
        println!(
            "| {name}: {server} | {:.0} | {} | {} | {} | {} | {} | {} |",
            side.offered(),
            side.cells(),
            percentile(&side.total.lags_us, 0.99),
            percentile(&side.total.from_send_us, 0.99),
            side.total.late,
            side.total.unsent,
            side.total.max_queue,
        );
    }
    let r = Ratios::of(a, b);
    let p99_from_send = ratio(
        f64::from(percentile(&b.total.from_send_us, 0.99)),
        f64::from(percentile(&a.total.from_send_us, 0.99)),
    );
    println!(
        "| **B/A** | | | {:.3} | {:.2} | **{:.2}** | {:.2} | {} | | | | {p99_from_send:.2} | | | |",
        r.rate, r.p50, r.p99, r.p999, r.server_cpu,
    );
    for (name, side) in [("A", a), ("B", b)] {
        if side.total.scheduled == 0 {
            continue;
        }
        let late_share = side.total.late as f64 / side.total.scheduled as f64;
        if side.total.unsent > 0 || late_share > 0.01 {
            println!();
            println!(
                "**{name}'s client fell behind the offered load:** {} of {} requests sent more \
                 than 1 ms late, {} not sent at all, up to {} due requests waiting for a \
                 connection. Its latencies include that wait; the rate is too high for this \
                 server (or this machine) at this concurrency.",
                side.total.late, side.total.scheduled, side.total.unsent, side.total.max_queue,
            );
        }
    }
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
    /// Fixed rate only: requests scheduled, over how long.
    scheduled: u64,
    scheduled_for: Duration,
    /// Fixed rate only: actual send time less scheduled, of every request sent.
    lags_us: Vec<u32>,
    /// Fixed rate only: latency from the actual send time, of every `200`.
    from_send_us: Vec<u32>,
    /// Fixed rate only: sent more than [`LATE`] after their scheduled time.
    late: u64,
    /// Fixed rate only: scheduled but not started within [`GRACE`] after the end.
    unsent: u64,
    /// Fixed rate only: the most due requests waiting for a connection at once.
    max_queue: u64,
}

impl RoundResult {
    /// Adds another worker's or round's counts and samples to these.
    fn absorb(&mut self, other: RoundResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.scheduled += other.scheduled;
        self.scheduled_for += other.scheduled_for;
        self.lags_us.extend(other.lags_us);
        self.from_send_us.extend(other.from_send_us);
        self.late += other.late;
        self.unsent += other.unsent;
        self.max_queue = self.max_queue.max(other.max_queue);
    }
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
        total.absorb(worker.await.expect("load worker"));
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
    while Instant::now() < deadline {
        let request = next_request(&load, &uri, &mut previous, &mut sent);
        let started = Instant::now();
        let answered = send(&client, request).await;
        let latency = started.elapsed();
        if answered {
            result.ok += 1;
            result.latencies_us.push(micros(latency));
        } else {
            result.errors += 1;
        }
    }
    result
}

/// Builds and signs a worker's next request: a new event, or (every
/// `duplicate_every`th) the worker's previous one signed again.
fn next_request(
    load: &Load,
    uri: &http::Uri,
    previous: &mut Option<Bytes>,
    sent: &mut u64,
) -> Request<Full<Bytes>> {
    *sent += 1;
    let scenario = load.scenario;
    let now = now_secs();
    let body = match previous {
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
    *previous = Some(body);
    request
}

/// Sends `request` and reads the whole answer: whether it was a `200`.
async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> bool {
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            response.into_body().collect().await.is_ok() && status == StatusCode::OK
        }
        Err(_) => false,
    }
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// One round of a fixed rate: which requests are due, shared by the pacer (which
/// releases them) and the connections (which send them).
#[derive(Debug)]
struct Schedule {
    /// One permit per request that is due and not yet taken by a connection; closed
    /// when the round is over.
    due: Semaphore,
    /// Requests taken by a connection so far: the next one's index.
    taken: AtomicU64,
    /// When request 0 is due; request `k` is due at `start + k / rate`.
    start: Instant,
    rate: f64,
    /// Requests in the round: those due before `start + length`.
    total: u64,
    length: Duration,
}

impl Schedule {
    fn due_at(&self, k: u64) -> Instant {
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }
}

/// A round for the pacer: the schedule, and where to report the longest queue.
#[derive(Debug)]
struct PaceJob {
    schedule: Arc<Schedule>,
    done: oneshot::Sender<u64>,
}

/// The fixed-rate mode's pacer: an OS thread that releases each request when it is
/// due. `std::thread::sleep` wakes within tens of microseconds of the time asked
/// for; tokio's timer rounds sleeps up to the next millisecond, which would add up
/// to a millisecond to every latency measured from the scheduled time. One thread
/// for the whole run (named like the client's threads), so that its CPU time stays
/// in `/proc` and counts as the client's.
#[derive(Debug)]
struct Pacer {
    jobs: Option<mpsc::Sender<PaceJob>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Pacer {
    fn start() -> Self {
        let (jobs, receiver) = mpsc::channel::<PaceJob>();
        let thread = thread::Builder::new()
            .name(PACER_THREAD.to_owned())
            .spawn(move || {
                for job in receiver {
                    let max_queue = pace(&job.schedule);
                    let _ = job.done.send(max_queue);
                }
            })
            .expect("pacer thread");
        Self {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Paces one round; resolves to the longest queue of due requests seen.
    fn pace(&self, schedule: Arc<Schedule>) -> oneshot::Receiver<u64> {
        let (done, receiver) = oneshot::channel();
        self.jobs
            .as_ref()
            .expect("pacer running")
            .send(PaceJob { schedule, done })
            .expect("pacer thread alive");
        receiver
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Releases `schedule`'s requests as they fall due, then waits up to [`GRACE`] past
/// the round's end for the connections to take the last ones, and closes it.
/// Returns the most due requests that waited for a connection at once.
fn pace(schedule: &Schedule) -> u64 {
    let mut released = 0u64;
    let mut max_queue = 0u64;
    while released < schedule.total {
        let now = Instant::now();
        if now >= schedule.start {
            let due = (((now - schedule.start).as_secs_f64() * schedule.rate).floor() as u64 + 1)
                .min(schedule.total);
            if due > released {
                schedule
                    .due
                    .add_permits(usize::try_from(due - released).unwrap_or(usize::MAX));
                released = due;
            }
            // Released and not yet taken, counted before the connections wake: the
            // requests just released are in it, so 1 (or a few) is normal.
            let taken = schedule.taken.load(Ordering::Relaxed);
            max_queue = max_queue.max(released.saturating_sub(taken));
        }
        if released < schedule.total {
            let next = schedule.due_at(released);
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    let give_up = schedule.start + schedule.length + GRACE;
    while schedule.taken.load(Ordering::Relaxed) < schedule.total && Instant::now() < give_up {
        thread::sleep(Duration::from_millis(1));
    }
    schedule.due.close();
    max_queue
}

/// Offers `rate` requests per second to `addr` for `length`, over at most
/// `connections` keep-alive connections of `client`; latency is measured from each
/// request's scheduled send time.
async fn drive_at_rate(
    client: &HttpClient,
    addr: SocketAddr,
    load: &Arc<Load>,
    connections: usize,
    length: Duration,
    rate: f64,
    pacer: &Pacer,
) -> RoundResult {
    let uri: http::Uri = format!("http://{addr}{PATH}").parse().expect("uri");
    let total = ((length.as_secs_f64() * rate).ceil() as u64).max(1);
    let schedule = Arc::new(Schedule {
        due: Semaphore::new(0),
        taken: AtomicU64::new(0),
        // A moment for the connections to build their first request.
        start: Instant::now() + Duration::from_millis(5),
        rate,
        total,
        length,
    });
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, uri, load, schedule) =
                (client.clone(), uri.clone(), load.clone(), schedule.clone());
            tokio::spawn(async move { rate_worker(client, uri, load, schedule).await })
        })
        .collect();
    let max_queue = pacer.pace(schedule.clone());
    let mut total = RoundResult::default();
    for worker in workers {
        total.absorb(worker.await.expect("load worker"));
    }
    total.max_queue = max_queue.await.expect("pacer answers");
    total.scheduled = schedule.total;
    total.scheduled_for = schedule.length;
    total.unsent = schedule.total - schedule.taken.load(Ordering::Relaxed);
    total
}

/// One connection of a fixed-rate client: builds and signs its next request, waits
/// until a request is due, sends it, and measures from the time it was due.
async fn rate_worker(
    client: HttpClient,
    uri: http::Uri,
    load: Arc<Load>,
    schedule: Arc<Schedule>,
) -> RoundResult {
    let mut result = RoundResult::default();
    let mut previous: Option<Bytes> = None;
    let mut sent = 0u64;
    loop {
        let request = next_request(&load, &uri, &mut previous, &mut sent);
        let Ok(permit) = schedule.due.acquire().await else {
            break; // the round is over
        };
        permit.forget();
        let k = schedule.taken.fetch_add(1, Ordering::Relaxed);
        let due = schedule.due_at(k);
        let sending = Instant::now();
        let lag = sending.saturating_duration_since(due);
        result.lags_us.push(micros(lag));
        if lag > LATE {
            result.late += 1;
        }
        let answered = send(&client, request).await;
        let latency = due.elapsed();
        if answered {
            result.ok += 1;
            result.latencies_us.push(micros(latency));
            result.from_send_us.push(micros(sending.elapsed()));
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
