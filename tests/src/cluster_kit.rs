//! Clustered nodes with test timings, shared by the in-process and the multi-process tests.

use casty::cluster::{ClusterEvent, ClusteredActorSystemBuilder};

/// A node of system `shop` with the test timings of [`casty::testing::fast_cluster_node`].
pub fn fast_node() -> ClusteredActorSystemBuilder {
    casty::testing::fast_cluster_node("shop")
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
