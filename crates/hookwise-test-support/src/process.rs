//! This process as Linux sees it (`/proc`): resident memory and open connections.
//! Elsewhere these functions panic.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// One mebibyte, in bytes.
pub const MIB: u64 = 1024 * 1024;

/// Resident memory of this process now, in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS in /proc/self/status")
}

/// Connections the server on `port` still holds open: sockets whose local port is
/// `port`, established or half-closed by the peer (`/proc/net/tcp{,6}` states 01 and
/// 08). A socket the server closed (`FIN_WAIT`, `TIME_WAIT`) is not counted, nor are
/// the process's other descriptors.
pub fn server_connections(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    matches!(fields.get(1), Some(addr) if addr.ends_with(&local))
                        && matches!(fields.get(3), Some(&"01" | &"08"))
                })
                .count()
        })
        .sum()
}

/// Samples [`rss_bytes`] every 2 ms on its own thread until [`PeakRss::stop`].
#[derive(Debug)]
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl PeakRss {
    /// Starts sampling.
    pub fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { peak, stop, thread }
    }

    /// Stops sampling; the highest resident memory seen, in bytes.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed).max(rss_bytes())
    }
}
