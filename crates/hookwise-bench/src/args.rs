//! The command line (clap): every flag, its default and its help text. A value that
//! does not parse is refused before anything starts, with clap's message and exit
//! code 2.

use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum, error::ErrorKind};

use crate::{
    backends::{Backend, Queue, Store},
    load::Scenario,
    servers::Server,
};

/// The load benchmark: how much a receiver adds to a bare axum route, on loopback.
///
/// Starts server A (--baseline) and server B (--contender) in this process, drives
/// each with its own client in alternating rounds, and prints a Markdown table per
/// scenario: requests/s, p50/p99/p99.9 latency, the server threads' CPU time per
/// request, and the B/A ratios. Exits 1 if any request was not answered 200, 2 if
/// the benchmark could not run (a bad flag, a database server not installed).
/// BENCHMARKS.md has the numbers and how to read them.
#[derive(Debug, Clone, Parser)]
#[command(name = "hookwise-bench", args_override_self = true)]
pub(crate) struct Config {
    /// Measured seconds per server and scenario.
    #[arg(long, value_name = "N", default_value = "10", value_parser = positive)]
    pub(crate) seconds: f64,

    /// A/B rounds the measured time is cut into.
    #[arg(long, value_name = "N", default_value = "10", value_parser = rounds)]
    pub(crate) rounds: u32,

    /// Requests in flight per client; with --rate, the most connections (and
    /// requests in flight) per client.
    #[arg(long, value_name = "N", default_value = "16", value_parser = count)]
    pub(crate) concurrency: usize,

    /// Which scenarios to run, comma-separated: unique (1 KiB, every event new),
    /// duplicates (1 KiB, every fifth request a re-signed retry of an event already
    /// answered), large (64 KiB, every event new).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "unique,duplicates,large",
        value_parser = Scenario::parse
    )]
    pub(crate) scenarios: Vec<Scenario>,

    /// Worker threads of the server runtime, serving A and B.
    #[arg(long, value_name = "N", default_value = "2", value_parser = count)]
    pub(crate) server_threads: usize,

    /// Worker threads of the load generator.
    #[arg(long, value_name = "N", default_value = "2", value_parser = count)]
    pub(crate) client_threads: usize,

    /// Drive one server only (for profiling it; no ratios).
    #[arg(long, value_name = "A|B", value_enum, hide_possible_values = true)]
    pub(crate) only: Option<Only>,

    /// A fixed rate (open loop) instead of the default closed loop.
    ///
    /// R: R requests/s per client, scheduled at fixed intervals, the same offered
    /// load for A and B; latency is measured from each request's scheduled send
    /// time. R must be a rate B sustains, well below its closed-loop req/s on few
    /// cores (e.g. 5 to 25 % of A's): take it from a closed-loop run.
    ///
    /// P%: the same, at P % of A's closed-loop req/s, measured in a 1 s calibration
    /// before each scenario (noisy; for tables that are compared give R).
    ///
    /// auto: 25%.
    #[arg(long, value_name = "R|P%|auto", value_parser = Rate::parse)]
    rate: Option<Rate>,

    /// Server A.
    #[arg(long, value_enum, default_value_t = Baseline::Bare)]
    pub(crate) baseline: Baseline,

    /// Server B.
    #[arg(long, value_enum, default_value_t = Contender::Layer)]
    pub(crate) contender: Contender,

    /// B's dedupe store (--contender layer): with redis or postgres, the benchmark
    /// starts a redis-server or a Postgres cluster of its own for the run, with
    /// fresh data per scenario.
    #[arg(long, value_enum, default_value_t = Store::Memory)]
    store: Store,

    /// B's durable queue (--contender layer): with redis or postgres, B is the
    /// handler served by WebhookEndpoint, each 200 given once the queue has stored
    /// the delivery; the database is started as for --store.
    #[arg(long, value_enum, default_value_t = Queue::None)]
    queue: Queue,

    /// Installs a Prometheus recorder (metrics-exporter-prometheus) in this process
    /// and has B's runtime send its counters to it; A's runtime never does. With
    /// --baseline layer, this prices the metrics feature.
    #[arg(long)]
    pub(crate) metrics: bool,

    /// With --queue postgres: PgQueue::batch_wait, in µs (default 0): how long the
    /// statement that stores B's deliveries waits for more.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0)]
    pg_batch_wait: u64,
}

impl Config {
    /// The command line, parsed and checked; on an error, clap's message and exit
    /// code 2.
    pub(crate) fn from_args() -> Self {
        Self::parse().checked().unwrap_or_else(|error| error.exit())
    }

    /// Refuses what each flag allows alone but not together.
    fn checked(self) -> Result<Self, clap::Error> {
        if self.contender != Contender::Layer && self.backend() != Backend::MEMORY {
            return Err(Self::command().error(
                ErrorKind::ArgumentConflict,
                "--store, --queue and --metrics apply to the layer (--contender layer); \
                 the other contenders have none of them",
            ));
        }
        if self.pg_batch_wait > 0 && self.queue != Queue::Postgres {
            return Err(Self::command().error(
                ErrorKind::ArgumentConflict,
                "--pg-batch-wait applies to --queue postgres",
            ));
        }
        Ok(self)
    }

    /// B's backend, when B is the layer.
    pub(crate) fn backend(&self) -> Backend {
        Backend {
            store: self.store,
            queue: self.queue,
            metrics: self.metrics,
            batch_wait: Duration::from_micros(self.pg_batch_wait),
        }
    }

    /// How each client loads its server.
    pub(crate) fn rate(&self) -> Rate {
        self.rate.unwrap_or(Rate::Closed)
    }

    /// Whether side `i` (0: A, 1: B) is driven: both, unless `--only`.
    pub(crate) fn drives(&self, i: usize) -> bool {
        self.only.is_none_or(|only| only as usize == i)
    }

    /// Server A and server B.
    pub(crate) fn servers(&self) -> [Server; 2] {
        let a = match self.baseline {
            Baseline::Bare => Server::Bare,
            Baseline::HandRolled => Server::HandRolled,
            Baseline::HandGuarded => Server::HandGuarded,
            Baseline::Layer => Server::Layer(Backend::MEMORY),
        };
        let b = match self.contender {
            Contender::Layer => Server::Layer(self.backend()),
            Contender::HandRolled => Server::HandRolled,
            Contender::HandGuarded => Server::HandGuarded,
            Contender::Endpoint => Server::Endpoint,
        };
        [a, b]
    }
}

/// `--only`: the one side driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Only {
    /// Server A.
    #[value(name = "A", alias = "a")]
    A = 0,
    /// Server B.
    #[value(name = "B", alias = "b")]
    B = 1,
}

/// `--baseline`: what server A is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Baseline {
    /// A bare axum route that reads the body and answers 200.
    Bare,
    /// The contract's work without hookwise: verify the HMAC, parse the envelope,
    /// claim the id in a DashMap, spawn the handler; B/A is then what the layer adds
    /// beyond it.
    HandRolled,
    /// The hand-rolled receiver with the layer's guarantees written by hand:
    /// retention and a bound on the ids, bounded background work, retries, a
    /// handler timeout, panics caught, dead letters; B/A is then what the layer's
    /// way of giving them costs.
    HandGuarded,
    /// The route behind WebhookLayer, in memory: against B on a durable backend
    /// (--store, --queue), what the backend costs.
    Layer,
}

/// `--contender`: what server B is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Contender {
    /// The route behind WebhookLayer: in-memory store (or --store), ack-fast, a
    /// handler that does nothing; with --queue, WebhookEndpoint on a durable queue.
    Layer,
    /// The hand-rolled receiver instead (with the default baseline: what the
    /// contract's own work costs next to a bare route).
    HandRolled,
    /// The hand-rolled receiver with the layer's guarantees written by hand (with
    /// --baseline hand-rolled: what writing those guarantees costs a user).
    HandGuarded,
    /// hookwise in memory served by WebhookEndpoint with a named handler: the
    /// layer's work without a wrapped service to call (with --baseline layer: what
    /// calling the wrapped route costs).
    Endpoint,
}

/// How each client loads its server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rate {
    /// `--concurrency` requests in flight, each sent as soon as one is answered.
    Closed,
    /// This many requests per second per client, at fixed intervals.
    Fixed(f64),
    /// This fraction of A's closed-loop throughput, measured before each scenario.
    OfA(f64),
}

impl Rate {
    /// `--rate`'s value: requests/s, a percentage of A's (`25%`), or `auto` (25 %).
    fn parse(value: &str) -> Result<Self, String> {
        let rate = if value == "auto" {
            Some(Self::OfA(0.25))
        } else if let Some(percent) = value.strip_suffix('%') {
            positive(percent).ok().map(|p| Self::OfA(p / 100.0))
        } else {
            positive(value).ok().map(Self::Fixed)
        };
        rate.ok_or_else(|| "expected requests/s, a percentage of A's (25%) or auto".to_owned())
    }
}

/// A finite number above 0.
fn positive(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| "not a positive number".to_owned())
}

/// A positive number, rounded up to a whole count.
fn count(value: &str) -> Result<usize, String> {
    positive(value).map(|n| n.ceil() as usize)
}

/// A positive number, rounded up to a whole number of rounds.
fn rounds(value: &str) -> Result<u32, String> {
    positive(value).map(|n| n.ceil() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("hookwise-bench").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Config::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).expect("no flags");
        assert_eq!(config.seconds, 10.0);
        assert_eq!(config.rounds, 10);
        assert_eq!(config.concurrency, 16);
        assert_eq!((config.server_threads, config.client_threads), (2, 2));
        let names: Vec<_> = config.scenarios.iter().map(|s| s.name).collect();
        assert_eq!(names, ["unique", "duplicates", "large"]);
        assert_eq!(config.only, None);
        assert_eq!(config.rate(), Rate::Closed);
        assert_eq!(
            config.servers(),
            [Server::Bare, Server::Layer(Backend::MEMORY)]
        );
    }

    #[test]
    fn values() {
        let config = parse(&[
            "--seconds",
            "0.5",
            "--rounds",
            "2.5",
            "--scenarios",
            "large, unique",
            "--only",
            "b",
            "--rate",
            "25%",
            "--baseline",
            "hand-rolled",
            "--rate",
            "1200",
        ])
        .expect("valid flags");
        assert_eq!(config.seconds, 0.5);
        assert_eq!(config.rounds, 3, "rounded up");
        let names: Vec<_> = config.scenarios.iter().map(|s| s.name).collect();
        assert_eq!(names, ["large", "unique"]);
        assert!(!config.drives(0) && config.drives(1));
        assert_eq!(config.rate(), Rate::Fixed(1200.0), "the last one given");
        assert_eq!(
            config.servers(),
            [Server::HandRolled, Server::Layer(Backend::MEMORY)]
        );
        let auto = parse(&["--rate", "auto"]).expect("auto");
        assert_eq!(auto.rate(), Rate::OfA(0.25));
        let guarded = parse(&["--baseline", "hand-guarded"]).expect("a baseline");
        assert_eq!(
            guarded.servers(),
            [Server::HandGuarded, Server::Layer(Backend::MEMORY)]
        );
        let written = parse(&["--baseline", "hand-rolled", "--contender", "hand-guarded"])
            .expect("two hand-written receivers");
        assert_eq!(written.servers(), [Server::HandRolled, Server::HandGuarded]);
        let endpoint =
            parse(&["--baseline", "layer", "--contender", "endpoint"]).expect("an endpoint");
        assert_eq!(
            endpoint.servers(),
            [Server::Layer(Backend::MEMORY), Server::Endpoint]
        );
    }

    #[test]
    fn backends_apply_to_the_contender() {
        let config = parse(&[
            "--baseline",
            "layer",
            "--store",
            "redis",
            "--queue",
            "postgres",
            "--metrics",
        ])
        .and_then(Config::checked)
        .expect("valid flags");
        let durable = Backend {
            store: Store::Redis,
            queue: Queue::Postgres,
            metrics: true,
            batch_wait: Duration::ZERO,
        };
        assert_eq!(
            config.servers(),
            [Server::Layer(Backend::MEMORY), Server::Layer(durable)]
        );
        let waiting = parse(&["--queue", "postgres", "--pg-batch-wait", "1000"])
            .and_then(Config::checked)
            .expect("valid flags");
        assert_eq!(waiting.backend().batch_wait, Duration::from_millis(1));
        let error = parse(&["--queue", "redis", "--pg-batch-wait", "1000"])
            .and_then(Config::checked)
            .expect_err("a Postgres setting");
        assert_eq!(error.exit_code(), 2, "{error}");
        for contender in ["hand-rolled", "hand-guarded", "endpoint"] {
            for flags in [&["--queue", "redis"][..], &["--metrics"]] {
                let args = [&["--contender", contender][..], flags].concat();
                let error = parse(&args)
                    .and_then(Config::checked)
                    .expect_err("only --contender layer takes a backend and metrics");
                assert_eq!(error.exit_code(), 2, "{error}");
            }
        }
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["--seconds", "0"][..],
            &["--concurrency", "x"],
            &["--rate", "-5%"],
            &["--rate", "0"],
            &["--only", "C"],
            &["--baseline", "redis"],
            &["--store", "sqlite"],
            &["--queue", "memory"],
            &["--scenarios", "unique,huge"],
            &["--seconds"],
            &["--bogus", "1"],
        ] {
            let error = parse(args).expect_err("refused");
            assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        }
    }
}
