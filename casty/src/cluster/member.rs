//! Members of a cluster: which incarnation of which node, in which state.
//!
//! A node is `host:port`; each start of it is a new *incarnation* with a fresh random uid, so a
//! node restarted on the same address is a new member (rule R1). [`UniqueAddress`] names one
//! incarnation; [`Member`] is what the cluster knows of it.
//!
//! Statuses only ever move forward: Joining → (WeaklyUp →) Up → Leaving → Exiting → Removed,
//! and from any of them to Down, and from Down to Removed. The order in which they are declared
//! below is also their *precedence*: when two views of a member disagree, the later status wins
//! (`Removed > Down > Exiting > Leaving > Up > WeaklyUp > Joining`). Every allowed move goes up in
//! that order, which is what lets gossip merge two views by taking the maximum.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::remote::NodeAddress;

/// One incarnation of one node: its address and the uid it drew at start.
///
/// Ordered by host (as text), then port, then uid; the system name takes no part, since all
/// members of a cluster share it. Every node orders members the same way, which is what "the
/// first member in address order" (the leader, the tie-break of downing) relies on.
///
/// # Examples
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// let a = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 7);
/// let b = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2553), 1);
/// assert!(a < b);
/// assert_eq!(a.to_string(), "casty://shop@10.0.0.1:2552#7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UniqueAddress {
    /// Where the node listens.
    pub address: NodeAddress,
    /// The incarnation: fresh at every start.
    pub uid: u64,
}

impl UniqueAddress {
    /// An incarnation of `address`.
    pub fn new(address: NodeAddress, uid: u64) -> Self {
        UniqueAddress { address, uid }
    }

    /// Whether `self` and `other` are incarnations of the same `host:port`.
    pub fn same_node(&self, other: &UniqueAddress) -> bool {
        self.address.host() == other.address.host() && self.address.port() == other.address.port()
    }
}

impl Ord for UniqueAddress {
    fn cmp(&self, other: &Self) -> Ordering {
        self.address
            .host()
            .cmp(other.address.host())
            .then(self.address.port().cmp(&other.address.port()))
            .then(self.uid.cmp(&other.uid))
            // Never reached between members of one cluster; keeps `Ord` consistent with `Eq`.
            .then_with(|| self.address.system().cmp(other.address.system()))
    }
}

impl PartialOrd for UniqueAddress {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for UniqueAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address, self.uid)
    }
}

/// Where a member is in its life in the cluster. Declared in order of precedence: see the module
/// documentation.
///
/// # Examples
///
/// ```
/// use casty::cluster::MemberStatus::*;
/// assert!(Joining.can_become(Up));
/// assert!(!Up.can_become(Joining));
/// assert!(Down > Up);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Asked to join; not yet moved up by the leader.
    Joining,
    /// Moved up by the leader without convergence (another member was unreachable): takes part,
    /// but does not count for quorums or leadership until it is Up.
    WeaklyUp,
    /// A full member.
    Up,
    /// Leaving gracefully; the leader moves it to Exiting at convergence.
    Leaving,
    /// Handing over its work; removed once done.
    Exiting,
    /// Declared dead (by downing or by hand). Never comes back: a new incarnation must join.
    Down,
    /// Gone from the cluster. Appears in events only, never among the members of a view.
    Removed,
}

impl MemberStatus {
    /// Whether a member may move from `self` to `next`.
    pub fn can_become(self, next: MemberStatus) -> bool {
        use MemberStatus::*;
        matches!(
            (self, next),
            (Joining, WeaklyUp | Up | Leaving | Down | Removed)
                | (WeaklyUp, Up | Leaving | Down | Removed)
                | (Up, Leaving | Down | Removed)
                | (Leaving, Exiting | Down | Removed)
                | (Exiting, Down | Removed)
                | (Down, Removed)
        )
    }

    /// Up or Leaving: a member that counts (for the leader, for quorums, for convergence).
    pub fn is_up_or_leaving(self) -> bool {
        matches!(self, MemberStatus::Up | MemberStatus::Leaving)
    }
}

/// The up-number of a member that has not been Up yet.
pub const NOT_UP: u32 = u32::MAX;

/// A member: an incarnation, its status, its roles and its *up-number*, the order in which the
/// leader moved members Up (a smaller number is an older member).
///
/// Two members are equal when they are the same incarnation; a merge of two views of one
/// member keeps the later status (see [`Member::merge`]).
///
/// # Examples
///
/// ```
/// use casty::cluster::{Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 7);
/// let joining = Member::joining(node, ["web"]);
/// let up = joining.clone().with_status(MemberStatus::Up).with_up_number(1);
/// assert_eq!(joining.merge(&up).status, MemberStatus::Up);
/// assert!(up.has_role("web"));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// Which incarnation.
    pub node: UniqueAddress,
    /// Where it is in its life.
    pub status: MemberStatus,
    /// The roles it was started with.
    pub roles: BTreeSet<String>,
    /// The order in which it became Up; [`NOT_UP`] before that.
    pub up_number: u32,
}

impl Member {
    /// A member that has just asked to join.
    pub fn joining<R: Into<String>>(
        node: UniqueAddress,
        roles: impl IntoIterator<Item = R>,
    ) -> Self {
        Member {
            node,
            status: MemberStatus::Joining,
            roles: roles.into_iter().map(Into::into).collect(),
            up_number: NOT_UP,
        }
    }

    /// The same member with another status.
    pub fn with_status(mut self, status: MemberStatus) -> Self {
        self.status = status;
        self
    }

    /// The same member with another up-number.
    pub fn with_up_number(mut self, up_number: u32) -> Self {
        self.up_number = up_number;
        self
    }

    /// Whether it has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Whether `self` became Up before `other` (ties, which only members never Up share, go
    /// by address).
    pub fn is_older_than(&self, other: &Member) -> bool {
        (self.up_number, &self.node) < (other.up_number, &other.node)
    }

    /// Two views of one member made one: the status of higher precedence, and the smaller
    /// up-number (the first time it was moved Up is the one that stands). Commutative,
    /// associative and idempotent.
    pub fn merge(&self, other: &Member) -> Member {
        debug_assert_eq!(self.node, other.node);
        Member {
            node: self.node.clone(),
            status: self.status.max(other.status),
            // One incarnation has one set of roles; the union keeps merge a lattice anyway.
            roles: self.roles.union(&other.roles).cloned().collect(),
            up_number: self.up_number.min(other.up_number),
        }
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl Eq for Member {}

impl std::hash::Hash for Member {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.node.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::MemberStatus::*;
    use super::*;

    const ALL: [MemberStatus; 7] = [Joining, WeaklyUp, Up, Leaving, Exiting, Down, Removed];

    #[test]
    fn every_allowed_move_raises_the_precedence() {
        for a in ALL {
            for b in ALL {
                if a.can_become(b) {
                    assert!(b > a, "{a:?} -> {b:?}");
                }
            }
        }
        // Every status but Removed can move on, and every one can end Removed.
        for a in &ALL[..6] {
            assert!(a.can_become(Removed) && !Removed.can_become(*a));
        }
        assert!(!Down.can_become(Up) && !Exiting.can_become(Leaving));
    }

    fn node(host: &str, port: u16, uid: u64) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", host, port), uid)
    }

    #[test]
    fn addresses_order_by_host_then_port_then_uid() {
        let mut v = vec![
            node("10.0.0.2", 1, 0),
            node("10.0.0.1", 2, 0),
            node("10.0.0.1", 1, 9),
            node("10.0.0.1", 1, 3),
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                node("10.0.0.1", 1, 3),
                node("10.0.0.1", 1, 9),
                node("10.0.0.1", 2, 0),
                node("10.0.0.2", 1, 0),
            ]
        );
        assert!(node("h", 1, 1).same_node(&node("h", 1, 2)));
    }

    #[test]
    fn merging_two_views_keeps_the_later_status_and_the_first_up_number() {
        let m = Member::joining(node("h", 1, 1), ["a"]);
        let up2 = m.clone().with_status(Up).with_up_number(2);
        let up1_leaving = m.clone().with_status(Leaving).with_up_number(1);
        let merged = up2.merge(&up1_leaving);
        assert_eq!((merged.status, merged.up_number), (Leaving, 1));
        assert_eq!(merged.status, up1_leaving.merge(&up2).status);
        assert_eq!(m.merge(&m).status, Joining);
        assert!(up1_leaving.is_older_than(&up2));
    }
}
