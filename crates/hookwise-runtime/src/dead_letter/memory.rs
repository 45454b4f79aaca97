//! The in-memory list as a [`DeadLetterStore`].

use std::sync::Arc;

use hookwise_core::{AnyStore, Provider, Receiver, RejectionKind, StoreError};

use super::{
    DeadLetter, DeadLetterError, DeadLetterFuture, DeadLetterRecord, DeadLetterStore, DeadLetters,
};

/// [`DeadLetters`] for an admin router: ids are the list's, in decimal.
pub(crate) struct MemoryDeadLetters<P: Provider> {
    kept: DeadLetters<P::Event>,
    /// Names the events' types.
    receiver: Arc<Receiver<P, AnyStore>>,
}

impl<P: Provider> MemoryDeadLetters<P> {
    pub(crate) fn new(kept: DeadLetters<P::Event>, receiver: Arc<Receiver<P, AnyStore>>) -> Self {
        Self { kept, receiver }
    }

    fn record(&self, id: u64, letter: &DeadLetter<P::Event>, dead_at: u64) -> DeadLetterRecord {
        let delivery = &letter.delivery;
        let mut record = DeadLetterRecord::new(
            id.to_string(),
            delivery.provider(),
            delivery.dedupe_key().as_str(),
        );
        let event_type = self.receiver.provider().event_type(delivery.event());
        record.event_type = Some(event_type.to_owned());
        record.attempts = letter.attempts;
        record.error = letter.error.to_string();
        record.dead_at = dead_at;
        record
    }
}

/// An id of the list: a decimal number.
fn parse(id: &str) -> Result<u64, DeadLetterError> {
    id.parse()
        .map_err(|_| DeadLetterError::BadId("a decimal number"))
}

impl<P: Provider> DeadLetterStore for MemoryDeadLetters<P> {
    fn page<'a>(
        &'a self,
        before: Option<&'a str>,
        count: usize,
    ) -> DeadLetterFuture<'a, Vec<DeadLetterRecord>> {
        Box::pin(async move {
            let before = before.map(parse).transpose()?;
            Ok(self
                .kept
                .newest_before(before, count)
                .iter()
                .map(|(id, letter, dead_at)| self.record(*id, letter, *dead_at))
                .collect())
        })
    }

    fn show<'a>(
        &'a self,
        id: &'a str,
        body: bool,
    ) -> DeadLetterFuture<'a, Option<DeadLetterRecord>> {
        Box::pin(async move {
            let id = parse(id)?;
            Ok(self.kept.get(id).map(|(letter, dead_at)| {
                let mut record = self.record(id, &letter, dead_at);
                record.body = body.then(|| letter.delivery.raw_body().clone());
                record
            }))
        })
    }

    fn replay<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move {
            match self.kept.replay(parse(id)?) {
                Ok(found) => Ok(found),
                Err(rejection) if rejection.kind() == RejectionKind::QueueFull => Err(
                    DeadLetterError::Full(StoreError::full("the processor's queue is full")),
                ),
                Err(rejection) => Err(DeadLetterError::Unavailable(StoreError::new(
                    rejection.to_string(),
                ))),
            }
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> DeadLetterFuture<'a, bool> {
        Box::pin(async move { Ok(self.kept.delete(parse(id)?)) })
    }
}
