//! A real Redis Cluster of three primaries, for the tests of cluster support.

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use super::RedisServer;

/// Three `redis-server` primaries in cluster mode, on free loopback ports, with the
/// 16,384 slots spread over them (`redis-cli --cluster create`); stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the cluster and waits until it serves every slot; `None` (after
    /// saying so) when `redis-server` is not installed and CI did not require it.
    pub fn start(test: &str) -> Option<Self> {
        let cluster_args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"];
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(RedisServer::start_with(test, false, &cluster_args)?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|node| node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not serve every slot within 20 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Some(Self { nodes })
    }

    /// The seed URLs of its nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, e.g. to look at what each one holds.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
