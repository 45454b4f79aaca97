//! One scenario, measured: both servers warmed up, A calibrated for `--rate P%`,
//! then the measured time cut into rounds alternating A and B (ABBA order: A first
//! in even rounds, B first in odd ones), so that noise from other work on the
//! machine lands on both. Each side has its own client, with its own keep-alive
//! connections.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::runtime::Runtime;

use crate::{
    args::{Config, Rate},
    closed_loop::drive,
    fixed_rate::{Pacer, drive_at_rate},
    load::{Load, Scenario, client},
    report::{CLIENT_THREAD, SERVER_THREAD, Side, print_rate_table, print_table, thread_cpu},
};

/// How long `--rate P%` measures A's closed-loop throughput before each scenario.
const CALIBRATION: Duration = Duration::from_secs(1);

/// The totals of a scenario, for the exit code.
#[derive(Debug)]
pub(crate) struct ScenarioReport {
    /// Answers other than `200`, both sides.
    pub(crate) errors: u64,
}

/// Drives the servers at `a` and `b` with `scenario`'s load on `rt`, as `config`
/// says, and prints the table. `pacer` is there when the rate is fixed.
pub(crate) fn run_scenario(
    rt: &Runtime,
    config: &Config,
    pacer: Option<&Pacer>,
    scenario: Scenario,
    a: SocketAddr,
    b: SocketAddr,
) -> ScenarioReport {
    let load = Arc::new(Load::new(scenario));
    let round = Duration::from_secs_f64(config.seconds / f64::from(config.rounds));
    let targets = [(a, client()), (b, client())];
    let mut sides = [Side::new(), Side::new()];

    // Warm up both: connections, allocator, branch predictors.
    let warmup = round.min(Duration::from_millis(500));
    for (i, (addr, client)) in targets.iter().enumerate() {
        if config.drives(i) {
            rt.block_on(drive(client, *addr, &load, config.concurrency, warmup));
        }
    }
    let rate = match config.rate() {
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
        for i in order.into_iter().filter(|i| config.drives(*i)) {
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
            sides[i].add_round(result, elapsed, cpu_before, cpu_after);
        }
    }
    for side in &mut sides {
        side.total.sort();
    }
    let servers = config.servers();
    if rate.is_some() {
        print_rate_table(scenario, servers, &sides);
    } else {
        print_table(scenario, servers, &sides);
    }
    ScenarioReport {
        errors: sides.iter().map(|s| s.total.errors).sum(),
    }
}
