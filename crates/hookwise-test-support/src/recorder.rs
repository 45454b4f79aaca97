//! What handlers did, and waiting for it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Counts handler runs and keeps the event ids they saw.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    runs: Arc<AtomicUsize>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Records a run that saw event `id`; returns the runs recorded so far.
    pub fn record(&self, id: &str) -> usize {
        if let Ok(mut ids) = self.ids.lock() {
            ids.push(id.to_owned());
        }
        self.runs.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The runs recorded so far.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// The event ids recorded so far, in order.
    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().map(|ids| ids.clone()).unwrap_or_default()
    }

    /// How many runs saw event `id`.
    pub fn runs_of(&self, id: &str) -> usize {
        self.ids().iter().filter(|seen| *seen == id).count()
    }

    /// Waits until `n` runs were recorded, or `limit` passes.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> usize {
        eventually(limit, || self.runs() >= n).await;
        self.runs()
    }
}

/// An app whose handler waits for a permit of `gate` before it records the event:
/// the tests hold runs at the gate, and open it with `gate.add_permits`.
#[derive(Debug, Clone)]
pub struct Gated {
    /// The runs that passed the gate.
    pub recorder: Recorder,
    /// The gate.
    pub gate: Arc<tokio::sync::Semaphore>,
}

impl Gated {
    /// An app whose gate starts with `permits` open.
    pub fn with_permits(permits: usize) -> Self {
        Self {
            recorder: Recorder::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// The handler's run for event `id`: through the gate, then recorded; an error
    /// if the gate was closed.
    pub async fn run(&self, id: &str) -> Result<(), &'static str> {
        let Ok(_permit) = self.gate.acquire().await else {
            return Err("the gate is closed");
        };
        self.recorder.record(id);
        Ok(())
    }
}

/// Polls `done` every 5 ms until it holds or `limit` passes; returns its last value.
pub async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}
