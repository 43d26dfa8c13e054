//! Clustered nodes with short timings, for tests and benchmarks (feature `cluster`).

use std::time::Duration;

use crate::cluster::{
    ClusteredActorSystem, ClusteredActorSystemBuilder, KeepMajority, MembershipSettings,
};
use crate::config::FailureDetectorConfig;
use crate::sharding::ShardingSettings;

/// A node of system `name` on 127.0.0.1, any port, with the timings casty's own cluster tests use:
/// gossip every 100 ms, heartbeats every 50 ms, a node silent for about 300 ms suspected,
/// keep-majority acting after 400 ms of stable reachability, a graceful leave given 5 s.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let node = casty::testing::fast_cluster_node("shop").start().await.unwrap();
/// node.cluster().join(node.address().clone());
/// node.cluster().wait_for_up(1, std::time::Duration::from_secs(5)).await.unwrap();
/// node.shutdown().await;
/// # }
/// ```
pub fn fast_cluster_node(name: &str) -> ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder(name)
        .host("127.0.0.1")
        .port(0)
        .gossip_interval(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(50))
        .failure_detector(FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(10),
            acceptable_heartbeat_pause: Duration::from_millis(200),
            first_heartbeat_estimate: Duration::from_millis(50),
        })
        .membership(
            MembershipSettings::default()
                .retry_interval(Duration::from_millis(100))
                .seed_node_timeout(Duration::from_millis(500))
                .retry_join_after(Duration::from_secs(2))
                .weakly_up_after(None),
        )
        .downing(KeepMajority::default(), Duration::from_millis(400))
        .leave_timeout(Duration::from_secs(5))
}

/// Sharding settings with the short timings casty's own tests use, to go with
/// [`fast_cluster_node`]: requests to the coordinator repeated every 100 ms, a rebalance every
/// 300 ms, a stalled handoff asked again after 2 s, a removed node's shards placed again 1 s
/// after its removal (more than the 400 ms keep-majority waits), and no passivation for
/// idleness.
///
/// # Examples
///
/// ```
/// let s = casty::testing::fast_sharding(100);
/// assert_eq!(s.num_shards, 100);
/// assert_eq!(s.passivate_idle, None);
/// ```
pub fn fast_sharding(num_shards: u32) -> ShardingSettings {
    ShardingSettings::default()
        .num_shards(num_shards)
        .retry_interval(Duration::from_millis(100))
        .rebalance_interval(Duration::from_millis(300))
        .handoff_timeout(Duration::from_secs(2))
        .down_removal_margin(Duration::from_secs(1))
        .passivate_idle(None)
}
