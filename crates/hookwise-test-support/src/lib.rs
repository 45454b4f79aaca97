//! Helpers for the tests of the hookwise crates, and only for them: never
//! published, it is a dev-dependency (without a version, so `cargo publish` drops
//! it) of each crate whose tests use it.
//!
//! Everything is re-exported here, so a test starts with
//! `use hookwise_test_support::*;`. By concept:
//!
//! - deliveries: [`hoursmith`] and [`mojave`] deliveries signed with
//!   [`HOURSMITH_SECRET`] and [`MOJAVE_SECRET`], and the [`Delivery`] they make;
//! - a real server on loopback: [`serve`] a router, then [`send`] deliveries to it
//!   with a keep-alive [`client`] and read the [`Answer`], or write raw bytes with
//!   [`raw_status`], or open one HTTP/1 connection with [`connect`];
//! - handlers: a [`Recorder`] of the runs and event ids a handler saw, and
//!   [`eventually`] to wait for a condition;
//! - floods: [`blast`] many deliveries over a few keep-alive connections;
//! - the process (Linux `/proc`): its resident memory, [`rss_bytes`] now or the
//!   [`PeakRss`] over a run, and the [`server_connections`] a port holds open;
//! - soaks: the shuffled [`soak_schedule`] of valid, duplicate and forged
//!   deliveries ([`Slot`]), and the [`Dice`] flaky handlers throw;
//! - the [`dedupe_store_contract`]: the protocol's checks, one suite for every
//!   store;
//! - stores: [`ClaimReplyLost`], a dedupe store whose claim is made but its reply
//!   lost, and [`ConfirmStalls`], one whose confirmations never answer;
//! - Postgres: a real, throwaway cluster on a free port, [`PgServer`];
//! - Redis: a real `redis-server` on a free port, [`RedisServer`], and a
//!   [`DelayProxy`] in front of it that holds replies back.
#![forbid(unsafe_code)]

mod contract;
mod deliveries;
mod flood;
mod loopback;
mod postgres;
mod process;
mod recorder;
mod redis;
mod soak;
mod store;

pub use contract::*;
pub use deliveries::*;
pub use flood::*;
pub use loopback::*;
pub use postgres::*;
pub use process::*;
pub use recorder::*;
pub use redis::*;
pub use soak::*;
pub use store::*;
