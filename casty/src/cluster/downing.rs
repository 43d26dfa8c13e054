//! Downing: which members to declare Down when some of them cannot be reached.
//!
//! When the network splits, each side sees the other as unreachable and cannot tell a crash
//! from a cut. If both sides went on, the cluster would run twice (a *split brain*). A
//! [`Downing`] strategy looks at what one node knows, a [`DowningView`], and returns a
//! [`Decision`]: which side of the cut to declare Down. The strategies shipped with casty are in
//! `strategies` ([`KeepMajority`](super::KeepMajority), the default,
//! [`StaticQuorum`](super::StaticQuorum) and [`ManualDowning`](super::ManualDowning)); when to
//! ask a strategy is decided by the [`SplitBrainResolver`](super::SplitBrainResolver).
//!
//! A strategy is pure: the same view gives the same decision on every node, so the two sides
//! of a clean split, holding mirror views (same members and statuses, each side unreachable to
//! the other), compute mirror verdicts, and a sound strategy never lets both keep themselves.
//!
//! A [`Decision`] names a *side*, not nodes; [`Decision::nodes_to_down`] turns it into the
//! nodes of a view. Only *downable* members are ever named: those not already Down or Exiting
//! (Joining and WeaklyUp ones included, since they may have been moved Up on the far side).
//! Downing the reachable side includes the deciding node itself: the minority downs itself.
//! The deciding node is never unreachable to itself, even if a record (written by a node
//! across the cut, say) says so, since it is surely on its own side.
//!
//! # Indirectly connected nodes
//!
//! A clean cut gives unreachable records that all point across it. When a node is both an
//! observer and a subject of unreachable records, or a record's subject has seen the current
//! membership state (it is plainly still talking to this side), the cut is not clean: some
//! links fail while others work, and gossip still flows around the broken links. Counting sides
//! makes no sense for those nodes, so [`DowningView::decide_indirectly_connected_first`] downs
//! them, then decides on the rest with them counted as unreachable, except those that have
//! seen the current state, which are counted as reachable.
//!
//! That rule is chosen for safety. Keep-majority is sound as long as every node a side counts
//! as its own really is on its side: then each side counts the other side's nodes against
//! itself, and the two counts cannot both win. A node that has seen this side's current state
//! has received gossip from it, so it is on this side. A node that has not may be on the far
//! side, and the two sides need not agree on who is indirectly connected (each knows only some
//! of the records), so it must count against. Akka's resolver instead drops the records between
//! two indirectly connected nodes and counts the rest as they fall, which can keep both sides
//! when a record written before the cut links a node on each side. The price is availability:
//! with no seen set, indirectly connected nodes weigh against the side that downs them.

use std::collections::BTreeSet;

use super::member::{Member, MemberStatus, UniqueAddress};

/// A split-brain strategy: given what this node knows, which side to declare Down.
///
/// Must be pure and deterministic: every node holding the same view must reach the same
/// decision. It is asked only once the view has been stable for a while and only on the leader
/// (see [`SplitBrainResolver`](super::SplitBrainResolver)).
///
/// # Examples
///
/// A strategy that downs every unreachable node, whatever the counts (a bad idea across a
/// real split, where both sides would keep themselves):
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{Decision, Downing, DowningView, Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
///
/// #[derive(Debug)]
/// struct DownTheOthers;
///
/// impl Downing for DownTheOthers {
///     fn decide(&self, view: &DowningView<'_>) -> Decision {
///         view.decide_indirectly_connected_first(|_| Decision::DownUnreachable)
///     }
/// }
///
/// let a = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 1);
/// let b = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.2", 2552), 1);
/// let members = [
///     Member::joining(a.clone(), ["web"]).with_status(MemberStatus::Up),
///     Member::joining(b.clone(), ["web"]).with_status(MemberStatus::Up),
/// ];
/// let unreachable = BTreeSet::from([b.clone()]);
/// let view = DowningView::new(&a, &members, &unreachable, &[]);
/// let decision = DownTheOthers.decide(&view);
/// assert_eq!(decision.nodes_to_down(&view), BTreeSet::from([b]));
/// ```
pub trait Downing: Send + Sync + std::fmt::Debug + 'static {
    /// Which side of the view to declare Down.
    fn decide(&self, view: &DowningView<'_>) -> Decision;
}

/// One unreachability observation: `observer` has marked `subject` unreachable (or terminated).
///
/// # Examples
///
/// ```
/// use casty::cluster::{UniqueAddress, UnreachableRecord};
/// use casty::remote::NodeAddress;
/// let a = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 1);
/// let b = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.2", 2552), 1);
/// let record = UnreachableRecord::new(a.clone(), b.clone());
/// assert_eq!((record.observer, record.subject), (a, b));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnreachableRecord {
    /// The node that cannot reach `subject`.
    pub observer: UniqueAddress,
    /// The node it cannot reach.
    pub subject: UniqueAddress,
}

impl UnreachableRecord {
    /// `observer` cannot reach `subject`.
    pub fn new(observer: UniqueAddress, subject: UniqueAddress) -> Self {
        UnreachableRecord { observer, subject }
    }
}

/// The empty set, for views built without a seen set.
static NOBODY: BTreeSet<UniqueAddress> = BTreeSet::new();

/// What a [`Downing`] strategy sees: this node, the members with their statuses and roles, who
/// is unreachable in the aggregate view, the unreachable records behind that, and who has seen
/// the current membership state.
///
/// It borrows from the membership state, so building one costs nothing. Records naming a
/// node that is not among the members are ignored.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{DowningView, Member, MemberStatus, UniqueAddress, UnreachableRecord};
/// use casty::remote::NodeAddress;
/// let node = |i: u16| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2550 + i), 1);
/// let (a, b, c) = (node(1), node(2), node(3));
/// let members: Vec<Member> = [&a, &b, &c]
///     .into_iter()
///     .map(|n| Member::joining(n.clone(), ["web"]).with_status(MemberStatus::Up))
///     .collect();
/// // A cannot reach B and B cannot reach C: B is on both ends of a broken link.
/// let records = [
///     UnreachableRecord::new(a.clone(), b.clone()),
///     UnreachableRecord::new(b.clone(), c.clone()),
/// ];
/// let unreachable = BTreeSet::from([b.clone(), c.clone()]);
/// let view = DowningView::new(&a, &members, &unreachable, &records);
/// assert_eq!(view.indirectly_connected(), BTreeSet::from([b.clone()]));
/// assert_eq!(view.downable().len(), 3);
/// assert!(view.is_unreachable(&c) && !view.is_unreachable(&a));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DowningView<'a> {
    self_node: &'a UniqueAddress,
    members: &'a [Member],
    unreachable: &'a BTreeSet<UniqueAddress>,
    records: &'a [UnreachableRecord],
    seen: &'a BTreeSet<UniqueAddress>,
}

impl<'a> DowningView<'a> {
    /// The view of `self_node`, with no seen set (see [`DowningView::with_seen`]).
    ///
    /// `unreachable` is the set of members unreachable in the aggregate view (members already
    /// Down may be in it, as a Down member is treated as unreachable); `records` are the
    /// observations behind it.
    pub fn new(
        self_node: &'a UniqueAddress,
        members: &'a [Member],
        unreachable: &'a BTreeSet<UniqueAddress>,
        records: &'a [UnreachableRecord],
    ) -> Self {
        DowningView {
            self_node,
            members,
            unreachable,
            records,
            seen: &NOBODY,
        }
    }

    /// The same view, knowing which members have seen the current membership state: an
    /// unreachable subject that has seen it is indirectly connected.
    ///
    /// `seen` must hold only members that have seen exactly the state this view is taken
    /// from: such a member has received gossip from this side, and is counted on it.
    pub fn with_seen(mut self, seen: &'a BTreeSet<UniqueAddress>) -> Self {
        self.seen = seen;
        self
    }

    /// The deciding node.
    pub fn self_node(&self) -> &'a UniqueAddress {
        self.self_node
    }

    /// All members, in any status.
    pub fn members(&self) -> &'a [Member] {
        self.members
    }

    /// The members unreachable in the aggregate view, as given (see
    /// [`DowningView::is_unreachable`]).
    pub fn unreachable(&self) -> &'a BTreeSet<UniqueAddress> {
        self.unreachable
    }

    /// The unreachable records (observer → subject) behind [`DowningView::unreachable`].
    pub fn records(&self) -> &'a [UnreachableRecord] {
        self.records
    }

    /// The members that have seen the current membership state (empty if unknown).
    pub fn seen(&self) -> &'a BTreeSet<UniqueAddress> {
        self.seen
    }

    /// The member `node`, if it is one.
    pub fn member(&self, node: &UniqueAddress) -> Option<&'a Member> {
        self.members.iter().find(|m| &m.node == node)
    }

    /// The deciding node as a member, if it is one.
    pub fn self_member(&self) -> Option<&'a Member> {
        self.member(self.self_node)
    }

    /// Whether `node` is unreachable in the aggregate view. Never the deciding node itself:
    /// whatever others say of it, it is on its own side (and so is downed with its side).
    pub fn is_unreachable(&self, node: &UniqueAddress) -> bool {
        node != self.self_node && self.unreachable.contains(node)
    }

    /// The members a decision may down: all but those already Down or Exiting (Joining and
    /// WeaklyUp included).
    pub fn downable(&self) -> BTreeSet<UniqueAddress> {
        self.members
            .iter()
            .filter(|m| is_downable(m.status))
            .map(|m| m.node.clone())
            .collect()
    }

    /// The nodes on either end of a link that fails while others work: both an observer and a
    /// subject of unreachable records, or on a record whose subject has seen the current state.
    pub fn indirectly_connected(&self) -> BTreeSet<UniqueAddress> {
        let records = self.member_records();
        let observers: BTreeSet<&UniqueAddress> = records.iter().map(|r| &r.observer).collect();
        let mut found: BTreeSet<UniqueAddress> = records
            .iter()
            .map(|r| &r.subject)
            .filter(|s| observers.contains(s))
            .cloned()
            .collect();
        for r in records.iter().filter(|r| self.seen.contains(&r.subject)) {
            found.insert(r.observer.clone());
            found.insert(r.subject.clone());
        }
        found
    }

    /// Decides with `decide`, but first takes out indirectly connected nodes.
    ///
    /// With none, this is `decide(self)`. Otherwise the decision downs them, together with what
    /// `decide` says of the rest: the view in which those of them that have not seen the
    /// current state are unreachable, those that have are reachable, and the records naming
    /// any of them are dropped (so the rest has no indirectly connected node).
    pub fn decide_indirectly_connected_first(
        &self,
        decide: impl FnOnce(&DowningView<'_>) -> Decision,
    ) -> Decision {
        let nodes = self.indirectly_connected();
        if nodes.is_empty() {
            return decide(self);
        }
        let remainder = Remainder::of(self, &nodes);
        let rest = decide(&remainder.view(self));
        Decision::DownIndirectlyConnected {
            nodes,
            rest: Box::new(rest),
        }
    }

    /// The records whose observer and subject are both members.
    fn member_records(&self) -> Vec<&'a UnreachableRecord> {
        let members: BTreeSet<&UniqueAddress> = self.members.iter().map(|m| &m.node).collect();
        self.records
            .iter()
            .filter(|r| members.contains(&r.observer) && members.contains(&r.subject))
            .collect()
    }
}

/// Whether a member in `status` may still be downed.
fn is_downable(status: MemberStatus) -> bool {
    !matches!(
        status,
        MemberStatus::Down | MemberStatus::Exiting | MemberStatus::Removed
    )
}

/// The records and unreachable set of a view once some indirectly connected nodes are taken
/// out: owned, since they are computed.
struct Remainder {
    records: Vec<UnreachableRecord>,
    unreachable: BTreeSet<UniqueAddress>,
}

impl Remainder {
    /// `view` with `nodes` unreachable unless they have seen the current state (then
    /// reachable), and without the records naming any of them.
    fn of(view: &DowningView<'_>, nodes: &BTreeSet<UniqueAddress>) -> Remainder {
        let records = view
            .member_records()
            .into_iter()
            .filter(|r| !nodes.contains(&r.observer) && !nodes.contains(&r.subject))
            .cloned()
            .collect();
        let mut unreachable = view.unreachable.clone();
        for n in nodes {
            if view.seen.contains(n) {
                unreachable.remove(n);
            } else {
                unreachable.insert(n.clone());
            }
        }
        Remainder {
            records,
            unreachable,
        }
    }

    /// The view of the rest: the members and seen set of `base`, these records.
    fn view<'b>(&'b self, base: &DowningView<'b>) -> DowningView<'b> {
        DowningView {
            self_node: base.self_node,
            members: base.members,
            unreachable: &self.unreachable,
            records: &self.records,
            seen: base.seen,
        }
    }
}

/// Which side of a view to declare Down. A verdict on sides, made concrete by
/// [`Decision::nodes_to_down`].
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{Decision, DowningView, Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = |i: u16| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2550 + i), 1);
/// let members = [
///     Member::joining(node(1), ["web"]).with_status(MemberStatus::Up),
///     Member::joining(node(2), ["web"]).with_status(MemberStatus::Up),
///     Member::joining(node(3), ["web"]), // still Joining: downable too
///     Member::joining(node(4), ["web"]).with_status(MemberStatus::Down),
/// ];
/// let unreachable = BTreeSet::from([node(2), node(4)]);
/// let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
/// assert_eq!(Decision::DownUnreachable.nodes_to_down(&view), BTreeSet::from([node(2)]));
/// // The reachable side includes the deciding node itself.
/// assert_eq!(Decision::DownReachable.nodes_to_down(&view), BTreeSet::from([node(1), node(3)]));
/// assert_eq!(Decision::DownAll.nodes_to_down(&view).len(), 3);
/// assert!(Decision::Nothing.nodes_to_down(&view).is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Down no one.
    Nothing,
    /// Down the unreachable side: this side keeps going.
    DownUnreachable,
    /// Down the reachable side, this node included: the other side keeps going.
    DownReachable,
    /// Down every member: no side keeps going.
    DownAll,
    /// Down the indirectly connected `nodes`, and apply `rest` to the view with them taken out
    /// (see [`DowningView::decide_indirectly_connected_first`]).
    DownIndirectlyConnected {
        /// The indirectly connected nodes.
        nodes: BTreeSet<UniqueAddress>,
        /// The decision on the rest.
        rest: Box<Decision>,
    },
}

impl Decision {
    /// The members of `view` this decision downs; only downable ones (not already Down or
    /// Exiting) are named.
    pub fn nodes_to_down(&self, view: &DowningView<'_>) -> BTreeSet<UniqueAddress> {
        let downable = view.downable();
        match self {
            Decision::Nothing => BTreeSet::new(),
            Decision::DownUnreachable => downable
                .into_iter()
                .filter(|n| view.is_unreachable(n))
                .collect(),
            Decision::DownReachable => downable
                .into_iter()
                .filter(|n| !view.is_unreachable(n))
                .collect(),
            Decision::DownAll => downable,
            Decision::DownIndirectlyConnected { nodes, rest } => {
                let remainder = Remainder::of(view, nodes);
                let mut down = rest.nodes_to_down(&remainder.view(view));
                down.extend(nodes.iter().cloned());
                down.retain(|n| downable.contains(n));
                down
            }
        }
    }

    /// Whether this decision downs the deciding node of `view`.
    pub fn downs_self(&self, view: &DowningView<'_>) -> bool {
        self.nodes_to_down(view).contains(view.self_node())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::NodeAddress;

    fn node(i: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "10.0.0.1", 2550 + i), 1)
    }

    fn up(i: u16) -> Member {
        Member::joining(node(i), ["r"]).with_status(MemberStatus::Up)
    }

    fn rec(o: u16, s: u16) -> UnreachableRecord {
        UnreachableRecord::new(node(o), node(s))
    }

    fn set(ids: &[u16]) -> BTreeSet<UniqueAddress> {
        ids.iter().map(|&i| node(i)).collect()
    }

    #[test]
    fn only_members_not_down_or_exiting_are_downable() {
        let members = [
            up(1),
            Member::joining(node(2), ["r"]),
            up(3).with_status(MemberStatus::WeaklyUp),
            up(4).with_status(MemberStatus::Leaving),
            up(5).with_status(MemberStatus::Exiting),
            up(6).with_status(MemberStatus::Down),
        ];
        let unreachable = set(&[5, 6]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(view.downable(), set(&[1, 2, 3, 4]));
        assert_eq!(Decision::DownUnreachable.nodes_to_down(&view), set(&[]));
        assert_eq!(
            Decision::DownReachable.nodes_to_down(&view),
            set(&[1, 2, 3, 4])
        );
        assert!(Decision::DownReachable.downs_self(&view));
        assert!(!Decision::DownUnreachable.downs_self(&view));
    }

    #[test]
    fn a_node_that_observes_and_is_observed_is_indirectly_connected() {
        let members = [up(1), up(2), up(3)];
        let records = [rec(1, 2), rec(2, 3)];
        let unreachable = set(&[2, 3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &records);
        assert_eq!(view.indirectly_connected(), set(&[2]));
    }

    #[test]
    fn a_clean_cut_has_no_indirectly_connected_nodes() {
        let members = [up(1), up(2), up(3), up(4)];
        let records = [rec(1, 3), rec(2, 3), rec(1, 4), rec(2, 4)];
        let unreachable = set(&[3, 4]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &records);
        assert!(view.indirectly_connected().is_empty());
    }

    #[test]
    fn a_subject_that_has_seen_the_current_state_makes_both_ends_indirectly_connected() {
        let members = [up(1), up(2), up(3), up(4)];
        let records = [rec(1, 2), rec(3, 4)];
        let unreachable = set(&[2, 4]);
        let seen = set(&[1, 2, 3]);
        let view =
            DowningView::new(&members[0].node, &members, &unreachable, &records).with_seen(&seen);
        assert_eq!(view.indirectly_connected(), set(&[1, 2]));
    }

    #[test]
    fn records_naming_a_stranger_are_ignored() {
        let members = [up(1), up(2)];
        let records = [rec(1, 9), rec(9, 1), rec(1, 2)];
        let unreachable = set(&[2]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &records);
        assert!(view.indirectly_connected().is_empty());
    }

    #[test]
    fn the_rest_is_decided_with_the_indirectly_connected_nodes_counted_as_unreachable() {
        // 2 and 3 cannot reach each other; 5 crashed and 1 saw it.
        let members = [up(1), up(2), up(3), up(4), up(5)];
        let records = [rec(2, 3), rec(3, 2), rec(1, 5)];
        let unreachable = set(&[2, 3, 5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &records);
        let mut seen_rest = None;
        let decision = view.decide_indirectly_connected_first(|rest| {
            seen_rest = Some((rest.unreachable().clone(), rest.records().to_vec()));
            assert!(rest.indirectly_connected().is_empty());
            Decision::DownUnreachable
        });
        assert_eq!(seen_rest, Some((set(&[2, 3, 5]), vec![rec(1, 5)])));
        assert_eq!(
            decision,
            Decision::DownIndirectlyConnected {
                nodes: set(&[2, 3]),
                rest: Box::new(Decision::DownUnreachable)
            }
        );
        assert_eq!(decision.nodes_to_down(&view), set(&[2, 3, 5]));
        assert_eq!(
            Decision::DownIndirectlyConnected {
                nodes: set(&[2, 3]),
                rest: Box::new(Decision::DownReachable)
            }
            .nodes_to_down(&view),
            set(&[1, 2, 3, 4])
        );
    }

    #[test]
    fn indirectly_connected_nodes_that_have_seen_the_current_state_count_as_reachable() {
        // 1 and 2 cannot reach each other, but both have seen the current state.
        let members = [up(1), up(2), up(3)];
        let records = [rec(1, 2), rec(2, 1)];
        let unreachable = set(&[1, 2]);
        let seen = set(&[1, 2, 3]);
        let view =
            DowningView::new(&members[2].node, &members, &unreachable, &records).with_seen(&seen);
        let mut rest_unreachable = None;
        let decision = view.decide_indirectly_connected_first(|rest| {
            rest_unreachable = Some(rest.unreachable().clone());
            Decision::DownUnreachable
        });
        assert_eq!(rest_unreachable, Some(set(&[])));
        assert_eq!(decision.nodes_to_down(&view), set(&[1, 2]));
    }

    #[test]
    fn the_deciding_node_is_never_unreachable_to_itself() {
        // Someone across a cut marked 1 unreachable before it; 1 still downs itself with its side.
        let members = [up(1), up(2), up(3)];
        let unreachable = set(&[1, 2]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert!(!view.is_unreachable(&node(1)) && view.is_unreachable(&node(2)));
        assert_eq!(Decision::DownReachable.nodes_to_down(&view), set(&[1, 3]));
        assert_eq!(Decision::DownUnreachable.nodes_to_down(&view), set(&[2]));
    }
}
