//! The load both servers get: the scenarios, the signed requests built from them,
//! the keep-alive client that sends them, and what one round of sending measured.
//!
//! Every request is a Hoursmith `task.created` event signed just before it is sent
//! (with [`HOURSMITH_SECRET`]). A scenario fixes the body size and how often a
//! request is a sender's retry: the event the same connection sent just before,
//! signed again.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;
use hookwise_bench::{HOURSMITH_SECRET, KIB, event_id, hoursmith_body, now_secs};
use hookwise_core::sign;
use http::{HeaderValue, Request, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// One load shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) body_size: usize,
    /// Every `duplicate_every`th request re-sends the previous event (0: never).
    pub(crate) duplicate_every: u64,
}

/// Every scenario, in the order they run by default.
pub(crate) const SCENARIOS: [Scenario; 3] = [
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

impl Scenario {
    /// The scenario called `name` (surrounding spaces ignored).
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        SCENARIOS
            .iter()
            .find(|s| s.name == name.trim())
            .copied()
            .ok_or_else(|| format!("unknown scenario {name:?}"))
    }
}

/// The load a scenario sends: the same for A and B.
#[derive(Debug)]
pub(crate) struct Load {
    scenario: Scenario,
    next_event: AtomicU64,
    /// Tags the event ids, so that no two runs send the same id.
    run: u32,
}

impl Load {
    /// The load of `scenario`, its event ids tagged with this process's id.
    pub(crate) fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            next_event: AtomicU64::new(0),
            run: std::process::id(),
        }
    }

    /// Builds and signs a connection's next request: a new event, or (every
    /// `duplicate_every`th) the connection's previous one signed again.
    pub(crate) fn next_request(
        &self,
        uri: &http::Uri,
        previous: &mut Option<Bytes>,
        sent: &mut u64,
    ) -> Request<Full<Bytes>> {
        *sent += 1;
        let scenario = self.scenario;
        let now = now_secs();
        let body = match previous {
            // A sender's retry: the same event, signed again.
            Some(body) if sent.is_multiple_of(scenario.duplicate_every) => body.clone(),
            _ => {
                let n = self.next_event.fetch_add(1, Ordering::Relaxed);
                hoursmith_body(&event_id(self.run, n), now, scenario.body_size)
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
}

/// The client of one side: hyper's pooled client over plain HTTP/1.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client with its own pool of keep-alive connections.
pub(crate) fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Sends `request` and reads the whole answer: `Ok` for a `200`, else the status
/// (`None` when there was no whole answer: a connection error, a body cut short).
pub(crate) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<(), Option<StatusCode>> {
    let response = client.request(request).await.map_err(|_| None)?;
    let status = response.status();
    response.into_body().collect().await.map_err(|_| None)?;
    if status == StatusCode::OK {
        Ok(())
    } else {
        Err(Some(status))
    }
}

/// `duration` in whole microseconds, saturating.
pub(crate) fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// What one round measured, or (added up) all of a side's rounds.
#[derive(Debug, Default)]
pub(crate) struct RoundResult {
    pub(crate) ok: u64,
    /// Answers other than `200`, and requests without a whole answer.
    pub(crate) errors: u64,
    /// The errors by status (`None`: no whole answer).
    pub(crate) error_statuses: BTreeMap<Option<u16>, u64>,
    pub(crate) latencies_us: Vec<u32>,
    /// Fixed rate only: requests scheduled, over how long.
    pub(crate) scheduled: u64,
    pub(crate) scheduled_for: Duration,
    /// Fixed rate only: actual send time less scheduled, of every request sent.
    pub(crate) lags_us: Vec<u32>,
    /// Fixed rate only: latency from the actual send time, of every `200`.
    pub(crate) from_send_us: Vec<u32>,
    /// Fixed rate only: sent more than [`LATE`](crate::fixed_rate::LATE) after their
    /// scheduled time.
    pub(crate) late: u64,
    /// Fixed rate only: scheduled but not started within
    /// [`GRACE`](crate::fixed_rate::GRACE) after the end.
    pub(crate) unsent: u64,
    /// Fixed rate only: the most due requests waiting for a connection at once.
    pub(crate) max_queue: u64,
}

impl RoundResult {
    /// Counts a request not answered `200`: answered `status`, or (`None`) not
    /// answered whole.
    pub(crate) fn error(&mut self, status: Option<StatusCode>) {
        self.errors += 1;
        *self
            .error_statuses
            .entry(status.map(|s| s.as_u16()))
            .or_default() += 1;
    }

    /// Adds another worker's or round's counts and samples to these.
    pub(crate) fn absorb(&mut self, other: RoundResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        for (status, n) in other.error_statuses {
            *self.error_statuses.entry(status).or_default() += n;
        }
        self.latencies_us.extend(other.latencies_us);
        self.scheduled += other.scheduled;
        self.scheduled_for += other.scheduled_for;
        self.lags_us.extend(other.lags_us);
        self.from_send_us.extend(other.from_send_us);
        self.late += other.late;
        self.unsent += other.unsent;
        self.max_queue = self.max_queue.max(other.max_queue);
    }

    /// Sorts the samples, for the percentiles.
    pub(crate) fn sort(&mut self) {
        self.latencies_us.sort_unstable();
        self.lags_us.sort_unstable();
        self.from_send_us.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_add_up_by_status() {
        let mut round = RoundResult::default();
        round.error(Some(StatusCode::SERVICE_UNAVAILABLE));
        round.error(None);
        let mut total = RoundResult::default();
        total.error(Some(StatusCode::SERVICE_UNAVAILABLE));
        total.absorb(round);
        assert_eq!(total.errors, 3);
        let statuses: Vec<_> = total.error_statuses.into_iter().collect();
        assert_eq!(statuses, [(None, 1), (Some(503), 2)]);
    }
}
