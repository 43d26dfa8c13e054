//! Membership events: what changed between two successive views of one node.
//!
//! Events are computed as the difference of the node's own views, so a node reports what *it*
//! saw: a member that went Joining → Up between two of its views gives one `MemberUp`, without
//! the `MemberWeaklyUp` another node may have seen on the way. Per member, the statuses reported
//! only ever rise, and `MemberRemoved` comes last.

use serde::{Deserialize, Serialize};

use super::gossip::Gossip;
use super::member::{Member, MemberStatus, UniqueAddress};
use super::membership::JoinRefusal;

/// A change in the cluster, as one node saw it.
///
/// # Examples
///
/// ```
/// use casty::cluster::{diff, ClusterEvent, Gossip, Member};
/// # use casty::cluster::UniqueAddress;
/// # use casty::remote::NodeAddress;
/// let a = UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", 1), 1);
/// let before = Gossip::default();
/// let mut after = before.clone();
/// after.add_joining(Member::joining(a.clone(), Vec::<String>::new()), &a);
/// let events = diff(&before, &after, &a);
/// assert!(matches!(&events[0], ClusterEvent::MemberJoined(m) if m.node == a));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A member asked to join.
    MemberJoined(Member),
    /// A member was moved up without convergence.
    MemberWeaklyUp(Member),
    /// A member is Up.
    MemberUp(Member),
    /// A member is leaving.
    MemberLeft(Member),
    /// A member is handing over before it is removed.
    MemberExited(Member),
    /// A member was declared down.
    MemberDowned(Member),
    /// A member is gone from the cluster; `previous` is the last status this node saw.
    MemberRemoved {
        /// The member, with status `Removed`.
        member: Member,
        /// Its status before.
        previous: MemberStatus,
    },
    /// A member stopped answering some observer.
    UnreachableMember(Member),
    /// Every observer reaches the member again.
    ReachableMember(Member),
    /// The leader changed (`None`: no member can lead).
    LeaderChanged(Option<UniqueAddress>),
    /// A member refused to let this node join.
    JoinRefused {
        /// The member that refused.
        by: UniqueAddress,
        /// Why.
        reason: JoinRefusal,
    },
}

impl ClusterEvent {
    /// The member the event is about, if it is about one.
    pub fn member(&self) -> Option<&Member> {
        match self {
            ClusterEvent::MemberJoined(m)
            | ClusterEvent::MemberWeaklyUp(m)
            | ClusterEvent::MemberUp(m)
            | ClusterEvent::MemberLeft(m)
            | ClusterEvent::MemberExited(m)
            | ClusterEvent::MemberDowned(m)
            | ClusterEvent::MemberRemoved { member: m, .. }
            | ClusterEvent::UnreachableMember(m)
            | ClusterEvent::ReachableMember(m) => Some(m),
            ClusterEvent::LeaderChanged(_) | ClusterEvent::JoinRefused { .. } => None,
        }
    }
}

fn status_event(m: &Member) -> Option<ClusterEvent> {
    let m = m.clone();
    Some(match m.status {
        MemberStatus::Joining => ClusterEvent::MemberJoined(m),
        MemberStatus::WeaklyUp => ClusterEvent::MemberWeaklyUp(m),
        MemberStatus::Up => ClusterEvent::MemberUp(m),
        MemberStatus::Leaving => ClusterEvent::MemberLeft(m),
        MemberStatus::Exiting => ClusterEvent::MemberExited(m),
        MemberStatus::Down => ClusterEvent::MemberDowned(m),
        MemberStatus::Removed => return None,
    })
}

/// The events that take `me`'s view from `old` to `new`: status changes of members in address
/// order, then removals, then reachability changes, then a change of leader.
pub fn diff(old: &Gossip, new: &Gossip, me: &UniqueAddress) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    for m in new.members() {
        let before = old.member(&m.node).map(|o| o.status);
        if before != Some(m.status) {
            events.extend(status_event(m));
        }
    }
    for m in old.members() {
        if new.member(&m.node).is_none() {
            events.push(ClusterEvent::MemberRemoved {
                member: m.clone().with_status(MemberStatus::Removed),
                previous: m.status,
            });
        }
    }
    for m in new.members() {
        if m.node == *me {
            continue;
        }
        let was = old
            .member(&m.node)
            .is_none_or(|_| old.is_reachable(&m.node));
        let is = new.is_reachable(&m.node);
        if was && !is {
            events.push(ClusterEvent::UnreachableMember(m.clone()));
        } else if !was && is {
            events.push(ClusterEvent::ReachableMember(m.clone()));
        }
    }
    let leader = new.leader(me);
    if old.leader(me) != leader {
        events.push(ClusterEvent::LeaderChanged(leader));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::reachability::Reach;
    use crate::remote::NodeAddress;

    fn node(n: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", n), u64::from(n))
    }

    fn names(events: &[ClusterEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                ClusterEvent::JoinRefused { .. } => "refused".into(),
                ClusterEvent::LeaderChanged(l) => {
                    format!("leader {}", l.as_ref().map_or(0, |n| n.address.port()))
                }
                e => {
                    let m = e.member().unwrap();
                    let kind = format!("{e:?}");
                    format!(
                        "{} {}",
                        &kind[..kind.find('(').or(kind.find(' ')).unwrap()],
                        m.node.address.port()
                    )
                }
            })
            .collect()
    }

    #[test]
    fn a_diff_reports_each_change_once_in_order() {
        let (a, b, c) = (node(1), node(2), node(3));
        let mut g = Gossip::default();
        g.add_joining(Member::joining(a.clone(), ["r"]), &a);
        g.add_joining(Member::joining(b.clone(), ["r"]), &a);
        g.add_joining(Member::joining(c.clone(), ["r"]), &a);
        assert_eq!(
            names(&diff(&Gossip::default(), &g, &a)),
            [
                "MemberJoined 1",
                "MemberJoined 2",
                "MemberJoined 3",
                "leader 1"
            ]
        );
        let old = g.clone();
        for n in [&a, &b, &c] {
            g.mark_seen(n);
        }
        g.leader_actions(&a, 0, &Default::default());
        g.mark_reachability(&a, &c, Reach::Unreachable);
        g.set_status(&c, MemberStatus::Down, &a);
        assert_eq!(
            names(&diff(&old, &g, &a)),
            [
                "MemberUp 1",
                "MemberUp 2",
                "MemberDowned 3",
                "UnreachableMember 3"
            ]
        );
        let old = g.clone();
        g.mark_seen(&b);
        g.leader_actions(&a, 0, &Default::default());
        assert_eq!(names(&diff(&old, &g, &a)), ["MemberRemoved 3"]);
        let old = g.clone();
        g.mark_reachability(&b, &a, Reach::Unreachable);
        assert_eq!(
            names(&diff(&old, &g, &b)),
            ["UnreachableMember 1", "leader 2"]
        );
        let old = g.clone();
        g.mark_reachability(&b, &a, Reach::Reachable);
        assert_eq!(
            names(&diff(&old, &g, &b)),
            ["ReachableMember 1", "leader 1"]
        );
    }
}
