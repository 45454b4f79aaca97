//! The fixed-rate driver (`--rate`): an open loop, so A and B get the same offered
//! load.
//!
//! `R` requests per second per client (in all, across its connections), request `k`
//! of a round scheduled at `start + k / R`. A [`Pacer`] thread
//! (`std::thread::sleep`, not tokio's millisecond timer) releases each request when
//! it is due; at most `--concurrency` keep-alive connections per client send them,
//! one request at a time each, so a due request waits while every connection is
//! busy. Latency is measured from the **scheduled** send time, not the actual one,
//! so time spent waiting for a connection counts (no coordinated omission) and a
//! server that falls behind shows it. Each connection builds and signs its next
//! request while it waits for its slot, so signing (the HMAC over 64 KiB in the
//! `large` scenario) is not counted in the latency unless the client is behind.
//!
//! Besides the latencies, each round records the send lag (actual send time less
//! scheduled), the latency from the actual send time, the requests sent more than
//! [`LATE`] late, those never sent (not started within [`GRACE`] after the round's
//! end), and the longest queue of due requests waiting for a connection:
//! [`report`](crate::report) prints them and says when a client did not deliver the
//! offered load.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use bytes::Bytes;
use tokio::sync::{Semaphore, oneshot};

use crate::{
    load::{HttpClient, Load, RoundResult, micros, send},
    servers::PATH,
};

/// The name of the pacer thread: it starts like the client runtime's threads'
/// ([`CLIENT_THREAD`](crate::report::CLIENT_THREAD)), so that its CPU time counts as
/// the client's.
const PACER_THREAD: &str = "hw-client-pace";

/// A request sent later than this after its scheduled time is counted as late.
pub(crate) const LATE: Duration = Duration::from_millis(1);

/// Due requests not started this long after a round's end are not sent (and
/// counted).
pub(crate) const GRACE: Duration = Duration::from_millis(500);

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

/// The pacer: an OS thread that releases each request when it is due.
/// `std::thread::sleep` wakes within tens of microseconds of the time asked for;
/// tokio's timer rounds sleeps up to the next millisecond, which would add up to a
/// millisecond to every latency measured from the scheduled time. One thread for
/// the whole run (named like the client's threads), so that its CPU time stays in
/// `/proc` and counts as the client's.
#[derive(Debug)]
pub(crate) struct Pacer {
    jobs: Option<mpsc::Sender<PaceJob>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Pacer {
    /// Starts the pacer's thread.
    pub(crate) fn start() -> Self {
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
pub(crate) async fn drive_at_rate(
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
        let request = load.next_request(&uri, &mut previous, &mut sent);
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
        match answered {
            Ok(()) => {
                result.ok += 1;
                result.latencies_us.push(micros(latency));
                result.from_send_us.push(micros(sending.elapsed()));
            }
            Err(status) => result.error(status),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_counts_as_the_client() {
        assert!(PACER_THREAD.starts_with(crate::report::CLIENT_THREAD));
    }
}
