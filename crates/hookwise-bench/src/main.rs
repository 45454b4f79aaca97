//! The load benchmark: how much `WebhookLayer` adds to a bare axum route, on
//! loopback, and what a durable backend adds to the layer.
//!
//! ```text
//! cargo run --release -p hookwise-bench -- --seconds 10
//! cargo run --release -p hookwise-bench -- --seconds 10 --baseline layer --store redis --queue redis
//! ```
//!
//! Starts two servers in this process, on one server runtime ([`servers`]):
//!
//! - **A**: a bare axum route that reads the body and answers `200` (or, with
//!   `--baseline hand-rolled`, the contract's work written directly on `hmac`,
//!   `serde_json` and `dashmap`: see [`hookwise_bench::hand_rolled`]; or, with
//!   `--baseline layer`, B's in-memory layer below);
//! - **B**: the same route behind `WebhookLayer` with a `MemoryStore`, ack-fast
//!   mode and a handler that does nothing (or, with `--contender hand-rolled`, the
//!   hand-rolled receiver, to price the contract's own work against the bare route).
//!
//! Each is driven by its own client (keep-alive connections, `--concurrency`
//! requests in flight) on a client runtime, with the same load: every request a
//! Hoursmith `task.created` event signed just before it is sent ([`load`]). The
//! measured time is cut into rounds alternating A and B (ABBA order, [`rounds`]), so
//! noise from other work on the machine lands on both. Per scenario it prints
//! requests/s, p50/p99 latency, the server threads' CPU time per request, and the
//! B/A ratios, as a Markdown table ([`report`]). It exits 1 if any request was
//! answered anything but `200` (the statuses are named below the table), and 2
//! when it cannot run: a bad flag (clap's message; [`args`], `--help` lists them
//! all) or a missing database server.
//!
//! Scenarios: `unique` (1 KiB, every event new), `duplicates` (1 KiB, every fifth
//! request a re-signed retry of an event already answered), `large` (64 KiB, every
//! event new).
//!
//! # Durable backends (`--store`, `--queue`)
//!
//! `--store memory|redis|postgres` gives B a dedupe store and `--queue
//! none|redis|postgres` a durable queue ([`backends`]); the defaults are the
//! in-memory B above. With a queue, B is served as the project serves a durable
//! receiver, by `WebhookEndpoint` with a named handler (which does nothing), and
//! answers `200` once the queue has stored the delivery. The benchmark starts the
//! database itself, a `redis-server` or a Postgres cluster of its own on a free
//! loopback port (it exits 2, naming the package to install, when there is none),
//! with fresh data for each scenario, and removes it at the end. To price the
//! backend rather than the layer, make A the in-memory layer: `--baseline layer`.
//! The heading names B's backend and database; below each table, a line says how
//! many accepted events the queue's readers had run by the end of the rounds. Those
//! readers keep working in the background, during A's rounds too, and the
//! database's own CPU time is in no column: see [`backends`] for how to read these
//! tables.
//!
//! # Closed loop (the default) and fixed rate (`--rate`)
//!
//! By default each client is a **closed loop** ([`closed_loop`]): `--concurrency`
//! requests in flight, a new one sent as soon as one is answered, so each server
//! runs at saturation. Its latency is then set by queueing, so a slower server shows
//! a higher latency in proportion to its lower throughput; that comparison says how
//! much capacity the layer costs, not how much latency it adds to one request.
//!
//! With `--rate R` each client is an **open loop** at a fixed rate instead
//! ([`fixed_rate`]), so A and B get the same offered load: `R` requests per second
//! per client, paced by a thread of its own, over at most `--concurrency` keep-alive
//! connections. Latency is measured from each request's **scheduled** send time, so
//! time spent waiting for a connection counts (no coordinated omission) and a server
//! that falls behind shows it. The fixed-rate table adds what the client offered and
//! whether it kept up (send lag, late and unsent requests, the longest queue: see
//! [`report`]); if it did not, the run says so below the table (it still exits 0:
//! only answers other than `200` fail the run).
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

mod args;
mod backends;
mod closed_loop;
mod fixed_rate;
mod load;
mod report;
mod rounds;
mod servers;

use std::{process::ExitCode, time::Duration};

use crate::{
    args::{Config, Rate},
    backends::Databases,
    fixed_rate::Pacer,
    report::{CLIENT_THREAD, SERVER_THREAD, print_queue},
    rounds::run_scenario,
    servers::Server,
};

/// The exit code when the benchmark could not run: a bad flag (clap's), a
/// database server missing or failing to start.
const CANNOT_RUN: u8 = 2;

fn main() -> ExitCode {
    let config = Config::from_args();
    if config.metrics {
        // B's counters go here, for the whole run, drained every second as a server
        // that is scraped would be.
        match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(recorder) => drop(std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    recorder.run_upkeep();
                }
            })),
            Err(error) => {
                eprintln!("error: cannot install the Prometheus recorder: {error}");
                return ExitCode::from(CANNOT_RUN);
            }
        }
    }
    let [a_server, b_server] = config.servers();
    let databases = match b_server {
        Server::Layer(backend) => Databases::start(backend),
        Server::Bare | Server::HandRolled | Server::HandGuarded | Server::Endpoint => {
            Ok(Databases::none())
        }
    };
    let databases = match databases {
        Ok(databases) => databases,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(CANNOT_RUN);
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

    print_heading(&config);
    let started_for_b = databases.describe();
    if !started_for_b.is_empty() {
        println!();
        println!("B: {}", b_server.label());
        for database in started_for_b {
            println!("- {database}");
        }
    }
    let pacer = (config.rate() != Rate::Closed).then(Pacer::start);
    let mut failed = false;
    for (i, scenario) in config.scenarios.iter().enumerate() {
        // Fresh servers per scenario: B's store starts empty each time.
        let fresh = format!("bench_{}_{}", i + 1, scenario.name);
        let started = server_rt.block_on(async {
            let a = a_server
                .start(&databases, &fresh)
                .await
                .map_err(|e| ("A", e))?;
            let b = b_server
                .start(&databases, &fresh)
                .await
                .map_err(|e| ("B", e))?;
            Ok((a, b))
        });
        let (a, b) = match started {
            Ok(servers) => servers,
            Err((side, error)) => {
                eprintln!("error: server {side} did not start: {error}");
                return ExitCode::from(CANNOT_RUN);
            }
        };
        let report = run_scenario(
            &client_rt,
            &config,
            pacer.as_ref(),
            *scenario,
            a.addr,
            b.addr,
        );
        failed |= report.errors > 0;
        let durable = b.instance.as_ref().filter(|b| b.webhooks.is_durable());
        let stats = durable.map(|b| b.webhooks.stats().snapshot());
        let unfinished = server_rt.block_on(async { a.stop().await + b.stop().await });
        if let Some(stats) = stats {
            print_queue(stats, unfinished);
        }
    }
    drop(pacer);
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(1));
    // After the runtime: nothing talks to the databases any more.
    drop(databases);
    if failed {
        eprintln!("some requests were not answered 200: see the errors column");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The run's first line: how long, how loaded, on how many threads and CPUs.
fn print_heading(config: &Config) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let offered = match config.rate() {
        Rate::Closed => {
            println!(
                "hookwise load benchmark: {} s per server and scenario in {} A/B rounds, \
                 {} in flight per client, server {} threads, client {} threads, {} CPUs",
                config.seconds,
                config.rounds,
                config.concurrency,
                config.server_threads,
                config.client_threads,
                cpus,
            );
            return;
        }
        Rate::Fixed(rate) => format!("{rate:.0} req/s offered per client"),
        Rate::OfA(fraction) => format!(
            "{:.0} % of A's closed-loop req/s offered per client",
            fraction * 100.0
        ),
    };
    println!(
        "hookwise load benchmark, fixed rate (open loop): {} s per server and scenario \
         in {} A/B rounds, {offered}, at most {} connections per client, server {} threads, \
         client {} threads, {} CPUs; latency from the scheduled send time",
        config.seconds,
        config.rounds,
        config.concurrency,
        config.server_threads,
        config.client_threads,
        cpus,
    );
}
