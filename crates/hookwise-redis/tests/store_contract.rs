//! `RedisStore` (one server and a cluster) against the dedupe protocol's one suite,
//! shared with the other stores (`hookwise_test_support::dedupe_store_contract`).

use hookwise_redis::RedisStore;
use hookwise_test_support::{RedisCluster, RedisServer, dedupe_store_contract};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_follows_the_dedupe_contract() {
    let Some(server) = RedisServer::start("the dedupe contract") else {
        return;
    };
    let url = server.url();
    dedupe_store_contract("RedisStore", |lease| {
        RedisStore::new(&url)
            .expect("valid URL")
            .lease(lease)
            .expect("a valid lease")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_on_a_cluster_follows_the_dedupe_contract() {
    let Some(cluster) = RedisCluster::start("the dedupe contract on a cluster") else {
        return;
    };
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    dedupe_store_contract("RedisStore on a cluster", |lease| {
        RedisStore::cluster(&nodes)
            .expect("valid URLs")
            .lease(lease)
            .expect("a valid lease")
    })
    .await;
}
