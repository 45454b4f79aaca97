//! What a side measured over its rounds, and the Markdown tables printed from it:
//! requests/s, latency percentiles, CPU time per request, and the B/A ratios.
//!
//! "CPU µs/req" is the CPU time (user + system, from `/proc/self/task/*/stat`) of
//! the server runtime's threads, or the client's, while a side was driven, divided
//! by the requests it sent. Only this process's threads count.
//!
//! The fixed-rate table ([`print_rate_table`]) adds: the offered rate; the send lag
//! (actual send time less scheduled, the pacer's jitter plus any wait for a
//! connection) at p99; the p99 measured from the actual send time instead (what the
//! server and the connection took, without the client's lag: for reading, not for
//! the comparison); how many requests were sent more than 1 ms late; how many were
//! never sent (not started within 0.5 s after the round's end); and the longest
//! queue of due requests waiting for a connection. If any request was not sent, or
//! more than 1 % were late, the client did not deliver the offered load and the
//! table is followed by a note saying so.
//!
//! Both tables count answers other than `200` (and requests that got no whole
//! answer) as `non-200`; when there are any, a note below the table gives them by
//! status.

use std::{fs, time::Duration};

use hookwise_bench::KIB;
use hookwise_runtime::StatsSnapshot;

use crate::{load::RoundResult, load::Scenario, servers::Server};

/// The prefix of the server runtime's thread names, to find their CPU time in `/proc`.
pub(crate) const SERVER_THREAD: &str = "hw-server";

/// The prefix of the client runtime's thread names (and of the pacer's, so that its
/// CPU time counts as the client's).
pub(crate) const CLIENT_THREAD: &str = "hw-client";

/// What one side measured over all its rounds.
#[derive(Debug, Default)]
pub(crate) struct Side {
    /// Every round's counts and samples, added up.
    pub(crate) total: RoundResult,
    pub(crate) elapsed: Duration,
    pub(crate) server_cpu: Option<Duration>,
    pub(crate) client_cpu: Option<Duration>,
}

impl Side {
    /// Nothing measured yet, and CPU time readable until a reading fails.
    pub(crate) fn new() -> Self {
        Self {
            server_cpu: Some(Duration::ZERO),
            client_cpu: Some(Duration::ZERO),
            ..Self::default()
        }
    }

    /// Adds a round: its result, how long it took, and the CPU time (server, client)
    /// read before and after it.
    pub(crate) fn add_round(
        &mut self,
        result: RoundResult,
        elapsed: Duration,
        before: (Option<Duration>, Option<Duration>),
        after: (Option<Duration>, Option<Duration>),
    ) {
        self.total.absorb(result);
        self.elapsed += elapsed;
        self.server_cpu = add_cpu(self.server_cpu, before.0, after.0);
        self.client_cpu = add_cpu(self.client_cpu, before.1, after.1);
    }

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

/// Adds the CPU time a round used to a side's total; `None` once a reading failed.
fn add_cpu(
    total: Option<Duration>,
    before: Option<Duration>,
    after: Option<Duration>,
) -> Option<Duration> {
    Some(total? + after?.saturating_sub(before?))
}

/// The CPU time (user + system) used so far by the threads named `prefix...`, from
/// `/proc/self/task/*/stat`; `None` where `/proc` is not there. Clock ticks are
/// assumed to be 100 per second, Linux's `USER_HZ` on every common platform.
pub(crate) fn thread_cpu(prefix: &str) -> Option<Duration> {
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

/// The `p` quantile of sorted `values` (0 if empty).
fn percentile(values: &[u32], p: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((values.len() - 1) as f64 * p).round() as usize;
    values[rank]
}

/// Microseconds with one decimal, or `n/a`.
fn us(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1}"))
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

/// The closed-loop table: each side's requests, req/s, latency percentiles, CPU
/// time per request and non-`200` answers, then the B/A ratios.
pub(crate) fn print_table(scenario: Scenario, servers: [Server; 2], sides: &[Side; 2]) {
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
    print_errors(sides);
}

/// Below a table, when some answers were not `200`: which they were, per side.
fn print_errors(sides: &[Side; 2]) {
    for (name, side) in ["A", "B"].into_iter().zip(sides) {
        if side.total.errors == 0 {
            continue;
        }
        let statuses: Vec<String> = side
            .total
            .error_statuses
            .iter()
            .map(|(status, n)| match status {
                Some(status) => format!("{n} × {status}"),
                None => format!("{n} without a whole answer"),
            })
            .collect();
        println!();
        println!("**{name}'s non-200 answers:** {}.", statuses.join(", "));
    }
}

/// The fixed-rate table: [`print_table`]'s columns (latency from the scheduled send
/// time) plus what the client offered and whether it kept up.
pub(crate) fn print_rate_table(scenario: Scenario, servers: [Server; 2], sides: &[Side; 2]) {
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
    print_errors(sides);
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

/// Below a durable B's table: how far its queue's readers got with the events it
/// accepted (warm-up included) by the end of the rounds, and how many runs the stop
/// cut short.
pub(crate) fn print_queue(stats: StatsSnapshot, unfinished: usize) {
    let left = stats
        .accepted
        .saturating_sub(stats.processed + stats.dead_lettered);
    println!();
    println!(
        "B's queue: {} events accepted in this scenario (warm-up included), each stored \
         before its 200; by the end of the rounds the handler had run {} of them ({} \
         dead-lettered, {left} still queued); {unfinished} runs cut short when B stopped.",
        stats.accepted, stats.processed, stats.dead_lettered,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 51);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[], 0.99), 0);
    }

    #[test]
    fn a_failed_cpu_reading_stays_failed() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(add_cpu(Some(Duration::ZERO), None, second), None);
        assert_eq!(add_cpu(None, second, second), None);
        assert_eq!(
            add_cpu(Some(Duration::ZERO), second, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(2))
        );
    }
}
