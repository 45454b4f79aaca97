//! [`AnyStore`]: a dedupe store whose type is erased.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use super::{Claim, ClaimOutcome, DedupeKey, DedupeStore, MemoryStore, StoreError};

/// A future an erased store returns.
type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The object-safe twin of [`DedupeStore`], implemented for every store.
trait ErasedStore: Send + Sync + 'static {
    fn claim<'a>(&'a self, key: &'a DedupeKey) -> StoreFuture<'a, ClaimOutcome>;
    fn confirm<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, bool>;
    fn renew<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, bool>;
    fn commit<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ()>;
    fn release<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ()>;
    fn retention_period(&self) -> Duration;
    fn lease_period(&self) -> Duration;
    fn type_name(&self) -> &'static str;
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<S: DedupeStore> ErasedStore for S {
    fn claim<'a>(&'a self, key: &'a DedupeKey) -> StoreFuture<'a, ClaimOutcome> {
        Box::pin(DedupeStore::claim(self, key))
    }

    fn confirm<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, bool> {
        Box::pin(DedupeStore::confirm(self, claim))
    }

    fn renew<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, bool> {
        Box::pin(DedupeStore::renew(self, claim))
    }

    fn commit<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ()> {
        Box::pin(DedupeStore::commit(self, claim))
    }

    fn release<'a>(&'a self, claim: &'a Claim) -> StoreFuture<'a, ()> {
        Box::pin(DedupeStore::release(self, claim))
    }

    fn retention_period(&self) -> Duration {
        DedupeStore::retention_period(self)
    }

    fn lease_period(&self) -> Duration {
        DedupeStore::lease_period(self)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Any [`DedupeStore`], behind one type: what the receiving runtime holds, so that
/// neither it nor a handler's signature names the store (`Webhooks<Hoursmith>`
/// whether claims live in memory, Redis or Postgres).
///
/// The price is one boxed future per store call (claim, confirm, commit), a few
/// tens of nanoseconds beside the store's own work; a [`MemoryStore`], whose calls
/// never wait, is called directly instead. Cheap to clone.
///
/// ```
/// use hookwise_core::dedupe::{AnyStore, DedupeStore, MemoryStore};
///
/// let store = AnyStore::new(MemoryStore::new());
/// assert_eq!(store.lease_period(), MemoryStore::new().lease_period());
/// ```
#[derive(Clone)]
pub struct AnyStore {
    store: Arc<dyn ErasedStore>,
}

impl AnyStore {
    /// Erases `store`'s type.
    pub fn new(store: impl DedupeStore) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The store as its own type `S`, when it is one: how a durable queue that
    /// shares the store's server finds it, to commit a claim in the same step as it
    /// stores the delivery.
    ///
    /// ```
    /// use hookwise_core::dedupe::{AnyStore, MemoryStore};
    ///
    /// let store = AnyStore::new(MemoryStore::new());
    /// assert!(store.downcast_ref::<MemoryStore>().is_some());
    /// assert!(store.downcast_ref::<AnyStore>().is_none());
    /// ```
    pub fn downcast_ref<S: DedupeStore>(&self) -> Option<&S> {
        self.store.as_any().downcast_ref()
    }

    /// The store when it is a [`MemoryStore`]: its calls are made directly, without
    /// a boxed future (three allocations per delivery fewer).
    fn memory(&self) -> Option<&MemoryStore> {
        self.downcast_ref()
    }
}

impl fmt::Debug for AnyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyStore")
            .field(&self.store.type_name())
            .finish()
    }
}

impl DedupeStore for AnyStore {
    async fn claim(&self, key: &DedupeKey) -> Result<ClaimOutcome, StoreError> {
        match self.memory() {
            Some(memory) => DedupeStore::claim(memory, key).await,
            None => ErasedStore::claim(&*self.store, key).await,
        }
    }

    async fn confirm(&self, claim: &Claim) -> Result<bool, StoreError> {
        match self.memory() {
            Some(memory) => DedupeStore::confirm(memory, claim).await,
            None => ErasedStore::confirm(&*self.store, claim).await,
        }
    }

    async fn renew(&self, claim: &Claim) -> Result<bool, StoreError> {
        match self.memory() {
            Some(memory) => DedupeStore::renew(memory, claim).await,
            None => ErasedStore::renew(&*self.store, claim).await,
        }
    }

    async fn commit(&self, claim: &Claim) -> Result<(), StoreError> {
        match self.memory() {
            Some(memory) => DedupeStore::commit(memory, claim).await,
            None => ErasedStore::commit(&*self.store, claim).await,
        }
    }

    async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        match self.memory() {
            Some(memory) => DedupeStore::release(memory, claim).await,
            None => ErasedStore::release(&*self.store, claim).await,
        }
    }

    fn retention_period(&self) -> Duration {
        self.store.retention_period()
    }

    fn lease_period(&self) -> Duration {
        self.store.lease_period()
    }
}
