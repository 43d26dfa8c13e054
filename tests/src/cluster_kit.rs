//! Clustered nodes with test timings, shared by the in-process and the multi-process tests.

use std::time::Duration;

use casty::cluster::{
    ClusterEvent, ClusteredActorSystem, ClusteredActorSystemBuilder, KeepMajority,
    MembershipSettings,
};
use casty::config::FailureDetectorConfig;

/// A node of system `shop` on 127.0.0.1, any port, with test timings: gossip every 100 ms,
/// heartbeats every 50 ms, a node silent for about 300 ms suspected, keep-majority acting after
/// 400 ms of stable reachability, a graceful leave given 5 s.
pub fn fast_node() -> ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder("shop")
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

/// An event about a member, as `(kind, port, uid)`; `None` for other events.
pub fn event_line(e: &ClusterEvent) -> Option<(&'static str, u16, u64)> {
    let kind = match e {
        ClusterEvent::MemberJoined(_) => "joined",
        ClusterEvent::MemberWeaklyUp(_) => "weakly-up",
        ClusterEvent::MemberUp(_) => "up",
        ClusterEvent::MemberLeft(_) => "left",
        ClusterEvent::MemberExited(_) => "exited",
        ClusterEvent::MemberDowned(_) => "downed",
        ClusterEvent::MemberRemoved { .. } => "removed",
        ClusterEvent::UnreachableMember(_) => "unreachable",
        ClusterEvent::ReachableMember(_) => "reachable",
        _ => return None,
    };
    let m = e.member()?;
    Some((kind, m.node.address.port(), m.node.uid))
}
