//! `MemoryStore` against the dedupe protocol's one suite, shared with the other
//! stores (`hookwise_test_support::dedupe_store_contract`).

use hookwise_core::MemoryStore;
use hookwise_test_support::dedupe_store_contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_follows_the_dedupe_contract() {
    dedupe_store_contract("MemoryStore", |lease| {
        std::sync::Arc::new(MemoryStore::new().lease(lease).expect("a valid lease"))
    })
    .await;
}
