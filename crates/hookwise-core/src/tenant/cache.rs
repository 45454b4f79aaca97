//! The cache in front of a [`SecretSource`](super::SecretSource): the provider built
//! for each known tenant, the tenants known to be unknown, a bound on lookups.

use std::{fmt, sync::Arc};

use moka::future::Cache;
use tokio::sync::Semaphore;

use super::{LookupError, TenantId, Tenants, Unverified};
use crate::{ConfigError, Provider, Rejection, RejectionKind};

/// The secret an unknown tenant's delivery is verified with, so that it costs what
/// a wrong secret costs. Public on purpose: whatever verifies under it, an unknown
/// tenant's delivery is refused.
const DECOY: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A delivery's tenant, resolved.
pub(crate) enum Resolved<P> {
    /// Its tenant, and the provider with that tenant's secrets.
    Known(TenantId, Arc<P>),
    /// No tenant, an id of the wrong shape, or one the source does not know.
    Unknown,
}

/// Why a lookup gave no provider; not cached as a known tenant.
#[derive(Debug)]
enum Failure {
    Unknown,
    Lookup(LookupError),
    Invalid(ConfigError),
}

/// One receiver's tenants: what [`Tenants`] configures, with its caches.
pub(crate) struct TenantCache<P> {
    config: Tenants,
    known: Cache<TenantId, Arc<P>>,
    unknown: Cache<TenantId, ()>,
    lookups: Semaphore,
}

impl<P: Provider> TenantCache<P> {
    /// The cache, and `template` with the decoy secret in place of its own: what the
    /// receiver keeps as its provider, and builds each tenant's from.
    pub(crate) fn new(template: &P, config: Tenants) -> Result<(Self, P), ConfigError> {
        let decoy = template.for_tenant(&[DECOY.to_owned()])?;
        let cache = Self {
            known: Cache::builder()
                .max_capacity(config.max_tenants)
                .time_to_live(config.ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(config.max_unknown)
                .time_to_live(config.unknown_ttl)
                .build(),
            lookups: Semaphore::new(config.max_lookups),
            config,
        };
        Ok((cache, decoy))
    }

    /// The tenant of `request` and its provider, built from `template`; a lookup
    /// that fails or times out is a `503` rejection.
    pub(crate) async fn resolve(
        &self,
        template: &P,
        request: &Unverified<'_>,
    ) -> Result<Resolved<P>, Rejection> {
        let Some(tenant) = self.config.locator.locate(request) else {
            return Ok(Resolved::Unknown);
        };
        // A known tenant costs one read of the known cache, an unknown one that read
        // and one of the unknown cache: close, so time tells them apart no better
        // than noise (`tests/constant_time.rs`).
        if let Some(provider) = self.known.get(&tenant).await {
            return Ok(Resolved::Known(tenant, provider));
        }
        if self.unknown.contains_key(&tenant) {
            return Ok(Resolved::Unknown);
        }
        let lookup = async {
            // Dropped with the lookup (a timeout, a cancelled request): the turn is
            // given back.
            let _turn = self.lookups.acquire().await;
            match self.config.source.secrets(tenant.clone()).await {
                Ok(Some(secrets)) => template
                    .for_tenant(&secrets)
                    .map(Arc::new)
                    .map_err(Failure::Invalid),
                Ok(None) => Err(Failure::Unknown),
                Err(error) => Err(Failure::Lookup(error)),
            }
        };
        // Concurrent deliveries for one tenant share one lookup; only a provider is
        // cached, never a failure.
        let found = tokio::time::timeout(
            self.config.lookup_timeout,
            self.known.try_get_with(tenant.clone(), lookup),
        )
        .await;
        let unavailable = |detail: String| {
            Err(Rejection::new(RejectionKind::SecretsUnavailable).with_detail(detail))
        };
        match found {
            Ok(Ok(provider)) => Ok(Resolved::Known(tenant, provider)),
            Ok(Err(failure)) => match &*failure {
                Failure::Unknown => {
                    self.unknown.insert(tenant, ()).await;
                    Ok(Resolved::Unknown)
                }
                Failure::Lookup(error) => {
                    unavailable(format!("the secrets of tenant {tenant}: {error}"))
                }
                Failure::Invalid(error) => unavailable(format!(
                    "the secrets of tenant {tenant} are not valid for {}: {error}",
                    template.name()
                )),
            },
            Err(_elapsed) => unavailable(format!(
                "the secrets of tenant {tenant} took longer than {:?}",
                self.config.lookup_timeout
            )),
        }
    }

    /// The tenant of a delivery read back from storage: located again, without a
    /// lookup (its signature was checked when it arrived).
    pub(crate) fn locate(&self, request: &Unverified<'_>) -> Option<TenantId> {
        self.config.locator.locate(request)
    }

    /// How many known and unknown tenants are cached, once pending evictions ran.
    #[cfg(test)]
    async fn cached(&self) -> (u64, u64) {
        self.known.run_pending_tasks().await;
        self.unknown.run_pending_tasks().await;
        (self.known.entry_count(), self.unknown.entry_count())
    }
}

impl<P> fmt::Debug for TenantCache<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::{Hoursmith, tenant::TenantLocator};

    fn cache(max: u64, lookups: Arc<AtomicUsize>) -> (TenantCache<Hoursmith>, Hoursmith) {
        let source = move |tenant: TenantId| {
            lookups.fetch_add(1, Ordering::Relaxed);
            async move {
                // Tenants whose id starts with `k` are known.
                Ok(tenant
                    .as_str()
                    .starts_with('k')
                    .then(|| vec![format!("secret-of-{tenant}")]))
            }
        };
        let config = Tenants::new(TenantLocator::path_segment(0), source)
            .max_tenants(max)
            .and_then(|t| t.max_unknown(max))
            .expect("valid bounds");
        let template = Hoursmith::new("template").expect("a secret");
        TenantCache::new(&template, config).expect("a provider that takes tenants")
    }

    fn resolve(cache: &TenantCache<Hoursmith>, template: &Hoursmith, id: &str) -> bool {
        let headers = http::HeaderMap::new();
        let path = format!("/{id}");
        let request = Unverified {
            path: &path,
            headers: &headers,
            body: b"",
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        match runtime.block_on(cache.resolve(template, &request)) {
            Ok(Resolved::Known(..)) => true,
            Ok(Resolved::Unknown) => false,
            Err(rejection) => panic!("{rejection}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Random tenant ids, known and unknown, never grow either cache past its
        /// bound, and each id is looked up at most once while it is cached.
        #[test]
        fn the_caches_stay_within_their_bounds_under_random_tenant_ids(
            ids in proptest::collection::vec("[a-z][a-z0-9]{0,11}", 1..400),
            max in 1u64..50,
        ) {
            let lookups = Arc::new(AtomicUsize::new(0));
            let (cache, template) = cache(max, lookups.clone());
            for id in &ids {
                prop_assert_eq!(resolve(&cache, &template, id), id.starts_with('k'));
            }
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let (known, unknown) = runtime.block_on(cache.cached());
            prop_assert!(known <= max, "{} known cached, bound {}", known, max);
            prop_assert!(unknown <= max, "{} unknown cached, bound {}", unknown, max);
            prop_assert!(lookups.load(Ordering::Relaxed) <= ids.len());
        }
    }

    #[test]
    fn a_tenant_is_looked_up_once_while_cached_known_or_unknown() {
        let lookups = Arc::new(AtomicUsize::new(0));
        let (cache, template) = cache(100, lookups.clone());
        for _ in 0..5 {
            assert!(resolve(&cache, &template, "k1"));
            assert!(!resolve(&cache, &template, "u1"));
        }
        assert_eq!(lookups.load(Ordering::Relaxed), 2);
        // An id of the wrong shape never reaches the source.
        assert!(!resolve(&cache, &template, "a:b"));
        assert_eq!(lookups.load(Ordering::Relaxed), 2);
    }
}
