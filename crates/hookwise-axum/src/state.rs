//! [`WebhookState`]: what the extractor needs from the router state.

use std::fmt;

use hookwise_core::{DedupeStore, MemoryStore, Provider, Receiver};
use hookwise_tower::{Intake, Processor, ShutdownHandle, Stats, WebhookLayer};

/// One provider's receiving setup for the [`Webhook`](crate::Webhook) extractor:
/// the [`Intake`] (limits, verification, dedupe) and the background
/// [`Processor`]. Put one per provider in your router state and derive `FromRef`.
///
/// Built from a configured [`WebhookLayer`] (`WebhookState::from(&layer)`), it shares
/// that layer's processing queue, [`Stats`] and [`ShutdownHandle`]; that is also how
/// the extractor works behind the layer.
pub struct WebhookState<P: Provider, S = MemoryStore> {
    intake: Intake<P, S>,
    processor: Processor<P, S>,
    shutdown: ShutdownHandle,
}

impl<P: Provider, S: DedupeStore> WebhookState<P, S> {
    /// A state with the layer's defaults (ack-fast processing, 32 running, 1024
    /// waiting, 5 attempts). For other settings, configure a [`WebhookLayer`] and use
    /// `WebhookState::from(&layer)`.
    pub fn new(receiver: Receiver<P, S>) -> Self {
        Self::from(&WebhookLayer::new(receiver))
    }

    /// The intake the extractor receives through.
    pub fn intake(&self) -> &Intake<P, S> {
        &self.intake
    }

    /// The processor [`Webhook::process_in_background`](crate::Webhook::process_in_background)
    /// submits to.
    pub fn processor(&self) -> &Processor<P, S> {
        &self.processor
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.intake.stats().clone()
    }

    /// The handle that stops taking deliveries and drains background work.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }
}

impl<P: Provider, S: DedupeStore> From<&WebhookLayer<P, S>> for WebhookState<P, S> {
    fn from(layer: &WebhookLayer<P, S>) -> Self {
        Self {
            intake: layer.intake(),
            processor: layer.processor().clone(),
            shutdown: layer.shutdown_handle(),
        }
    }
}

impl<P: Provider, S> Clone for WebhookState<P, S> {
    fn clone(&self) -> Self {
        Self {
            intake: self.intake.clone(),
            processor: self.processor.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<P: Provider, S> fmt::Debug for WebhookState<P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookState")
            .field("intake", &self.intake)
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}
