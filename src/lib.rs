//! hookwise: receive signed webhooks correctly, fast, and without losing an event.
//!
//! This is the facade crate: it re-exports [`hookwise_core`] (verification, typed
//! events, dedupe, the [`Receiver`] entry point). The adapters for web frameworks are
//! enabled by features as they land.
//!
//! See the README for the map and [`hookwise_core`] for the core's documentation.

#![forbid(unsafe_code)]

pub use hookwise_core::*;
