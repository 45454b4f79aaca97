//! The soak's schedule: every unique event, duplicates and forgeries, shuffled the
//! same way every run; and the dice its flaky handlers throw.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use http::HeaderMap;

use crate::{Delivery, hoursmith, hoursmith_body, now};

/// Pseudo-random numbers (splitmix64) from a fixed seed: the same sequence every
/// run, shared by clones.
#[derive(Debug, Clone, Default)]
pub struct Dice {
    seed: Arc<AtomicU64>,
}

impl Dice {
    /// A number in `0..100`, different on every call.
    pub fn percent(&self) -> u64 {
        let mut z = self
            .seed
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 100
    }
}

/// What to send in one slot of a soak's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The Hoursmith event `soak-<k>`, signed with the right secret.
    Valid(usize),
    /// An event signed with a wrong secret: answered `401`.
    Forged(usize),
}

impl Slot {
    /// The delivery of this slot, signed now.
    pub fn delivery(self) -> Delivery {
        match self {
            Slot::Valid(k) => hoursmith(&format!("soak-{k}")),
            Slot::Forged(k) => {
                let body = hoursmith_body(&format!("forged-{k}"), "task.created", r#"{"task":{}}"#);
                let mut headers = HeaderMap::new();
                hookwise_core::sign::hoursmith(b"whsec_forger", now(), &body)
                    .insert_into(&mut headers);
                Delivery { headers, body }
            }
        }
    }
}

/// Every one of `unique` events once, `duplicates` of them again, and `forged`
/// forgeries, shuffled the same way every run (a duplicate may come first).
pub fn soak_schedule(unique: usize, duplicates: usize, forged: usize) -> Vec<Slot> {
    let mut schedule: Vec<Slot> = (0..unique)
        .map(Slot::Valid)
        .chain((0..duplicates).map(|i| Slot::Valid(i * 7 % unique)))
        .chain((0..forged).map(Slot::Forged))
        .collect();
    let dice = Dice::default();
    for i in (1..schedule.len()).rev() {
        let j = (dice.percent() as usize * 7919 + i * 104_729) % (i + 1);
        schedule.swap(i, j);
    }
    schedule
}
