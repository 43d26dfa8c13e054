//! The split-brain strategies casty ships: [`KeepMajority`] (the default), [`StaticQuorum`]
//! and [`ManualDowning`].
//!
//! Both counting strategies count only *settled* members, Up or Leaving (optionally only those
//! with a role): a Joining or WeaklyUp member may have been moved Up on the other side of a cut
//! or not, so the two sides could disagree on it. Such members are still downed with their
//! side. Both down indirectly connected nodes first (see
//! [`DowningView::decide_indirectly_connected_first`]).
//!
//! Across a clean split the two sides hold mirror views: the same members in the same statuses,
//! each side unreachable to the other. Keep-majority then keeps exactly one side: the larger
//! one, or on a tie the one holding the lowest counted address (in
//! [`UniqueAddress`](super::UniqueAddress) order), which both sides agree on. Static quorum
//! keeps at most one side as long as the cluster has no more than `2·size − 1` counted
//! members, and downs everything beyond that.

use std::cmp::Ordering;

use super::downing::{Decision, Downing, DowningView};
use super::member::{Member, MemberStatus};

/// Keep the side with more counted (Up or Leaving) members; on a tie, the side holding the
/// lowest address of them. The default strategy.
///
/// With no counted member at all (none with the role), everything is downed. A decision to
/// keep this side is checked again against membership changes that the other side may have
/// made during the cut, as Akka's keep-majority does: counting this side's Leaving members as
/// gone (they may be Exiting over there) and the other side's Joining and WeaklyUp members as
/// present (they may be Up over there). If that count no longer keeps this side, everything is
/// downed, since neither side can be sure it is the majority.
///
/// # Examples
///
/// A five-node cluster split 3 | 2: the three down the two, the two down themselves.
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{Decision, Downing, DowningView, KeepMajority};
/// use casty::cluster::{Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = |i: u16| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2550 + i), 1);
/// let members: Vec<Member> = (1..=5)
///     .map(|i| Member::joining(node(i), ["web"]).with_status(MemberStatus::Up))
///     .collect();
/// let big: BTreeSet<_> = (1..=3).map(node).collect();
/// let small: BTreeSet<_> = (4..=5).map(node).collect();
///
/// let from_big = DowningView::new(&members[0].node, &members, &small, &[]);
/// let decision = KeepMajority::default().decide(&from_big);
/// assert_eq!(decision, Decision::DownUnreachable);
/// assert_eq!(decision.nodes_to_down(&from_big), small);
///
/// let from_small = DowningView::new(&members[4].node, &members, &big, &[]);
/// let decision = KeepMajority::default().decide(&from_small);
/// assert_eq!(decision.nodes_to_down(&from_small), small);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepMajority {
    /// Count only members with this role (all members still get downed with their side).
    pub role: Option<String>,
}

impl KeepMajority {
    /// Keep-majority over the members with `role`.
    pub fn with_role(role: impl Into<String>) -> Self {
        KeepMajority {
            role: Some(role.into()),
        }
    }

    /// The verdict on a view with no indirectly connected nodes.
    fn decide_clean(&self, view: &DowningView<'_>) -> Decision {
        let role = self.role.as_deref();
        let counted = |m: &Member| has_role(m, role) && m.status.is_up_or_leaving();
        let verdict = match count(view, counted, counted, counted) {
            None => return Decision::DownAll,
            Some(c) => c.verdict(),
        };
        if verdict != Decision::DownUnreachable {
            return verdict;
        }
        // The same count as the other side might make it after membership changes it could
        // have made during the cut: our Leaving gone, their Joining/WeaklyUp Up.
        let surely_up = |m: &Member| has_role(m, role) && m.status == MemberStatus::Up;
        let possibly_up = |m: &Member| {
            has_role(m, role)
                && matches!(
                    m.status,
                    MemberStatus::Joining
                        | MemberStatus::WeaklyUp
                        | MemberStatus::Up
                        | MemberStatus::Leaving
                )
        };
        match count(view, surely_up, possibly_up, surely_up) {
            Some(c) if c.verdict() == Decision::DownUnreachable => Decision::DownUnreachable,
            _ => Decision::DownAll,
        }
    }
}

impl Downing for KeepMajority {
    fn decide(&self, view: &DowningView<'_>) -> Decision {
        view.decide_indirectly_connected_first(|rest| self.decide_clean(rest))
    }
}

/// Keep the side with at least `size` counted (Up or Leaving) members.
///
/// Sound only while the cluster has at most `2·size − 1` counted members: with more, both sides
/// of a split could reach `size`, so everything is downed instead. A side smaller than `size`
/// downs itself even when the other side is smaller still (or has crashed), so the whole
/// cluster stops when fewer than `size` members are left.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{Decision, Downing, DowningView, StaticQuorum};
/// use casty::cluster::{Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = |i: u16| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2550 + i), 1);
/// let members: Vec<Member> = (1..=5)
///     .map(|i| Member::joining(node(i), ["web"]).with_status(MemberStatus::Up))
///     .collect();
/// let unreachable: BTreeSet<_> = [node(4), node(5)].into();
/// let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
/// let quorum = |size| StaticQuorum { size, role: None };
/// assert_eq!(quorum(3).decide(&view), Decision::DownUnreachable);
/// assert_eq!(quorum(4).decide(&view), Decision::DownReachable);
/// // Five members are too many for a quorum of 2: a 2 | 3 split would keep both sides.
/// assert_eq!(quorum(2).decide(&view), Decision::DownAll);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticQuorum {
    /// How many counted members a side needs to keep going.
    pub size: usize,
    /// Count only members with this role.
    pub role: Option<String>,
}

impl StaticQuorum {
    /// The verdict on a view with no indirectly connected nodes, and not too many members.
    fn decide_clean(&self, view: &DowningView<'_>) -> Decision {
        let reachable = counted_members(view, self.role.as_deref())
            .filter(|m| !view.is_unreachable(&m.node))
            .count();
        if reachable >= self.size {
            Decision::DownUnreachable
        } else {
            Decision::DownReachable
        }
    }

    /// Whether `view` has more counted members than a quorum of `size` can split safely (any
    /// number is too many for a quorum of 0).
    pub fn is_too_many(&self, view: &DowningView<'_>) -> bool {
        // A quorum of 0 would let every side keep itself: always too many.
        match self.size.saturating_mul(2).checked_sub(1) {
            None => true,
            Some(most) => counted_members(view, self.role.as_deref()).count() > most,
        }
    }
}

impl Downing for StaticQuorum {
    fn decide(&self, view: &DowningView<'_>) -> Decision {
        if self.is_too_many(view) {
            return Decision::DownAll;
        }
        view.decide_indirectly_connected_first(|rest| self.decide_clean(rest))
    }
}

/// Never down anyone: unreachable members stay until downed by hand (or they come back).
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use casty::cluster::{Decision, Downing, DowningView, ManualDowning, Member, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let a = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 1);
/// let b = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.2", 2552), 1);
/// let members = [Member::joining(a.clone(), ["web"]), Member::joining(b.clone(), ["web"])];
/// let unreachable = BTreeSet::from([b]);
/// let view = DowningView::new(&a, &members, &unreachable, &[]);
/// assert_eq!(ManualDowning.decide(&view), Decision::Nothing);
/// assert!(ManualDowning.decide(&view).nodes_to_down(&view).is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManualDowning;

impl Downing for ManualDowning {
    fn decide(&self, _view: &DowningView<'_>) -> Decision {
        Decision::Nothing
    }
}

/// Whether `m` has `role` (any member does when there is none).
fn has_role(m: &Member, role: Option<&str>) -> bool {
    role.is_none_or(|r| m.has_role(r))
}

/// The members counted by both counting strategies: Up or Leaving, with the role.
fn counted_members<'v>(
    view: &DowningView<'v>,
    role: Option<&'v str>,
) -> impl Iterator<Item = &'v Member> + 'v {
    view.members()
        .iter()
        .filter(move |m| has_role(m, role) && m.status.is_up_or_leaving())
}

/// The two sides of a majority count.
struct Count {
    /// Members counted on this side.
    reachable: usize,
    /// Members counted on the other side.
    unreachable: usize,
    /// Whether the lowest address among the members that break a tie is on the other side.
    lowest_unreachable: bool,
}

impl Count {
    /// Keep the larger side; on a tie, the one holding the lowest address.
    fn verdict(&self) -> Decision {
        match self.reachable.cmp(&self.unreachable) {
            Ordering::Greater => Decision::DownUnreachable,
            Ordering::Less => Decision::DownReachable,
            Ordering::Equal if self.lowest_unreachable => Decision::DownReachable,
            Ordering::Equal => Decision::DownUnreachable,
        }
    }
}

/// Counts the reachable members `this_side` accepts against the unreachable ones `other_side`
/// accepts, with the lowest address among those `tie` accepts; `None` when `tie` accepts none.
fn count(
    view: &DowningView<'_>,
    this_side: impl Fn(&Member) -> bool,
    other_side: impl Fn(&Member) -> bool,
    tie: impl Fn(&Member) -> bool,
) -> Option<Count> {
    let members = view.members();
    let lowest = members.iter().filter(|m| tie(m)).map(|m| &m.node).min()?;
    let reachable = members
        .iter()
        .filter(|m| !view.is_unreachable(&m.node) && this_side(m))
        .count();
    let unreachable = members
        .iter()
        .filter(|m| view.is_unreachable(&m.node) && other_side(m))
        .count();
    Some(Count {
        reachable,
        unreachable,
        lowest_unreachable: view.is_unreachable(lowest),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::cluster::{UniqueAddress, UnreachableRecord};
    use crate::remote::NodeAddress;
    use MemberStatus::*;

    fn node(i: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "10.0.0.1", 2550 + i), 1)
    }

    fn member(i: u16, status: MemberStatus, roles: &[&str]) -> Member {
        Member::joining(node(i), roles.iter().copied()).with_status(status)
    }

    fn ups(ids: impl IntoIterator<Item = u16>) -> Vec<Member> {
        ids.into_iter().map(|i| member(i, Up, &[])).collect()
    }

    fn set(ids: &[u16]) -> BTreeSet<UniqueAddress> {
        ids.iter().map(|&i| node(i)).collect()
    }

    fn rec(o: u16, s: u16) -> UnreachableRecord {
        UnreachableRecord::new(node(o), node(s))
    }

    /// What `strategy` on node `me` downs, with `unreachable` unreachable and no records.
    fn downs(
        strategy: &dyn Downing,
        members: &[Member],
        me: u16,
        unreachable: &[u16],
    ) -> (Decision, BTreeSet<UniqueAddress>) {
        let me = node(me);
        let unreachable = set(unreachable);
        let view = DowningView::new(&me, members, &unreachable, &[]);
        let decision = strategy.decide(&view);
        let nodes = decision.nodes_to_down(&view);
        (decision, nodes)
    }

    #[test]
    fn in_a_three_two_split_the_three_down_the_two_and_the_two_down_themselves() {
        let members = ups(1..=5);
        let km = KeepMajority::default();
        assert_eq!(
            downs(&km, &members, 1, &[4, 5]),
            (Decision::DownUnreachable, set(&[4, 5]))
        );
        assert_eq!(
            downs(&km, &members, 4, &[1, 2, 3]),
            (Decision::DownReachable, set(&[4, 5]))
        );
    }

    #[test]
    fn in_a_two_two_split_the_side_with_the_lowest_address_keeps_going() {
        let members = ups(1..=4);
        let km = KeepMajority::default();
        let low_side = downs(&km, &members, 1, &[3, 4]);
        let high_side = downs(&km, &members, 3, &[1, 2]);
        assert_eq!(low_side, (Decision::DownUnreachable, set(&[3, 4])));
        assert_eq!(high_side, (Decision::DownReachable, set(&[3, 4])));
        // Mirror verdicts: both sides down exactly the same nodes, the high side.
        assert_eq!(low_side.1, high_side.1);
        // The lowest address wins, wherever it sits: split {1,4} | {2,3}.
        assert_eq!(
            downs(&km, &members, 4, &[2, 3]),
            (Decision::DownUnreachable, set(&[2, 3]))
        );
        assert_eq!(
            downs(&km, &members, 2, &[1, 4]),
            (Decision::DownReachable, set(&[2, 3]))
        );
    }

    #[test]
    fn keep_majority_with_a_role_counts_only_members_with_that_role() {
        // 1, 2 are "db"; 3, 4, 5 are "web". Split {1,2} | {3,4,5}: the db side has the majority
        // of the db members (2 to 0), so it keeps going although it is smaller.
        let members = [
            member(1, Up, &["db"]),
            member(2, Up, &["db"]),
            member(3, Up, &["web"]),
            member(4, Up, &["web"]),
            member(5, Up, &["web"]),
        ];
        let km = KeepMajority::with_role("db");
        assert_eq!(
            downs(&km, &members, 1, &[3, 4, 5]),
            (Decision::DownUnreachable, set(&[3, 4, 5]))
        );
        assert_eq!(
            downs(&km, &members, 3, &[1, 2]),
            (Decision::DownReachable, set(&[3, 4, 5]))
        );
        // Without the role, the three keep going.
        let all = KeepMajority::default();
        assert_eq!(
            downs(&all, &members, 1, &[3, 4, 5]),
            (Decision::DownReachable, set(&[1, 2]))
        );
    }

    #[test]
    fn keep_majority_downs_all_when_no_member_has_the_role() {
        let members = ups(1..=3);
        let km = KeepMajority::with_role("db");
        assert_eq!(
            downs(&km, &members, 1, &[3]),
            (Decision::DownAll, set(&[1, 2, 3]))
        );
    }

    #[test]
    fn joining_and_weakly_up_members_are_downed_with_their_side_but_not_counted() {
        // {1, 2, 3 Up} | {4 Up, 5 Joining, 6 WeaklyUp}: three nodes each, but 3 against 1
        // counted. Even counting 5 and 6 as possibly Up over there, it is 3 against 3 and the
        // lowest address (1) is here: the Up side keeps going.
        let members = [
            member(1, Up, &[]),
            member(2, Up, &[]),
            member(3, Up, &[]),
            member(4, Up, &[]),
            member(5, Joining, &[]),
            member(6, WeaklyUp, &[]),
        ];
        let km = KeepMajority::default();
        assert_eq!(
            downs(&km, &members, 1, &[4, 5, 6]),
            (Decision::DownUnreachable, set(&[4, 5, 6]))
        );
        assert_eq!(
            downs(&km, &members, 4, &[1, 2, 3]),
            (Decision::DownReachable, set(&[4, 5, 6]))
        );
        // {1 Up, 2 Joining, 3 Joining} | {4, 5 Up}: the larger side is the minority by count.
        let members = [
            member(1, Up, &[]),
            member(2, Joining, &[]),
            member(3, Joining, &[]),
            member(4, Up, &[]),
            member(5, Up, &[]),
        ];
        assert_eq!(
            downs(&km, &members, 1, &[4, 5]),
            (Decision::DownReachable, set(&[1, 2, 3]))
        );
    }

    #[test]
    fn a_majority_that_joining_members_over_there_could_outnumber_downs_all() {
        // {1, 2 Up} | {3, 4 Up, 5 Joining, 6 WeaklyUp}: 2 against 2 counted, and the lowest
        // address is with the two. But 5 and 6 may already be Up on the far side, where it is
        // then 4 against 2: neither side can be sure, so the two down everything.
        let members = [
            member(1, Up, &[]),
            member(2, Up, &[]),
            member(3, Up, &[]),
            member(4, Up, &[]),
            member(5, Joining, &[]),
            member(6, WeaklyUp, &[]),
        ];
        let km = KeepMajority::default();
        assert_eq!(
            downs(&km, &members, 1, &[3, 4, 5, 6]),
            (Decision::DownAll, set(&[1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(
            downs(&km, &members, 3, &[1, 2]),
            (Decision::DownReachable, set(&[3, 4, 5, 6]))
        );
    }

    #[test]
    fn a_majority_that_rests_on_a_leaving_member_downs_all() {
        // {1, 2 Up, 3 Leaving} | {4, 5 Up}: 3 against 2. Without 3 (it may be Exiting over
        // there) it is 2 against 2 with the lowest address (1) here: still kept.
        let members = [
            member(1, Up, &[]),
            member(2, Up, &[]),
            member(3, Leaving, &[]),
            member(4, Up, &[]),
            member(5, Up, &[]),
        ];
        let km = KeepMajority::default();
        assert_eq!(
            downs(&km, &members, 1, &[4, 5]),
            (Decision::DownUnreachable, set(&[4, 5]))
        );
        // {2, 3 Up, 4 Leaving} | {1, 5 Up}: 3 against 2, but without 4 it is 2 against 2 with
        // the lowest address over there: the three down everything, the two down themselves.
        let members = [
            member(1, Up, &[]),
            member(2, Up, &[]),
            member(3, Up, &[]),
            member(4, Leaving, &[]),
            member(5, Up, &[]),
        ];
        assert_eq!(
            downs(&km, &members, 2, &[1, 5]),
            (Decision::DownAll, set(&[1, 2, 3, 4, 5]))
        );
        assert_eq!(
            downs(&km, &members, 1, &[2, 3, 4]),
            (Decision::DownReachable, set(&[1, 5]))
        );
    }

    #[test]
    fn members_already_down_or_exiting_are_neither_counted_nor_downed() {
        let members = [
            member(1, Up, &[]),
            member(2, Up, &[]),
            member(3, Down, &[]),
            member(4, Exiting, &[]),
            member(5, Up, &[]),
        ];
        let km = KeepMajority::default();
        assert_eq!(
            downs(&km, &members, 1, &[3, 4, 5]),
            (Decision::DownUnreachable, set(&[5]))
        );
    }

    /// What keep-majority on node `me` downs, with these records and seen set; the unreachable
    /// set is the subjects of the records.
    fn km_downs(
        members: &[Member],
        me: u16,
        records: &[UnreachableRecord],
        seen: &[u16],
    ) -> (Decision, BTreeSet<UniqueAddress>) {
        let unreachable: BTreeSet<UniqueAddress> =
            records.iter().map(|r| r.subject.clone()).collect();
        let seen = set(seen);
        let me = node(me);
        let view = DowningView::new(&me, members, &unreachable, records).with_seen(&seen);
        let decision = KeepMajority::default().decide(&view);
        let nodes = decision.nodes_to_down(&view);
        (decision, nodes)
    }

    fn indirect(nodes: &[u16], rest: Decision) -> Decision {
        Decision::DownIndirectlyConnected {
            nodes: set(nodes),
            rest: Box::new(rest),
        }
    }

    #[test]
    fn indirectly_connected_nodes_are_downed_first() {
        // A (1) cannot reach B (2), B cannot reach C (3): B is on both ends of broken links.
        // B is downed; the rest counts B against this side: 1, 4, 5 against 2, 3.
        let members = ups(1..=5);
        let records = [rec(1, 2), rec(2, 3)];
        let (decision, downed) = km_downs(&members, 1, &records, &[]);
        assert_eq!(decision, indirect(&[2], Decision::DownUnreachable));
        assert_eq!(downed, set(&[2, 3]));
        // Knowing that everyone has seen the current state, 1, 2 and 3 are all on broken links
        // while talking to the cluster: the three are downed and 4, 5 keep going.
        let (decision, downed) = km_downs(&members, 4, &records, &[1, 2, 3, 4, 5]);
        assert_eq!(decision, indirect(&[1, 2, 3], Decision::DownUnreachable));
        assert_eq!(downed, set(&[1, 2, 3]));
    }

    #[test]
    fn a_mutual_cut_between_two_nodes_downs_those_two_and_keeps_the_rest() {
        // 2 and 4 cannot reach each other; everyone else reaches everyone.
        let members = ups(1..=5);
        let records = [rec(2, 4), rec(4, 2)];
        for me in 1..=5 {
            let (decision, downed) = km_downs(&members, me, &records, &[]);
            assert_eq!(decision, indirect(&[2, 4], Decision::DownUnreachable));
            assert_eq!(downed, set(&[2, 4]));
        }
    }

    #[test]
    fn indirectly_connected_nodes_weigh_against_the_side_unless_they_have_seen_its_state() {
        // 1 and 2 cannot reach each other; 3 crashed, seen by 4 and 5.
        let members = ups(1..=5);
        let records = [rec(1, 2), rec(2, 1), rec(4, 3), rec(5, 3)];
        // Not knowing where 1 and 2 are, 4 and 5 count 2 against 3 and stop.
        let (decision, downed) = km_downs(&members, 4, &records, &[]);
        assert_eq!(decision, indirect(&[1, 2], Decision::DownReachable));
        assert_eq!(downed, set(&[1, 2, 4, 5]));
        // 1 and 2 have seen the current state, so they are on this side: 4 against 1.
        let (decision, downed) = km_downs(&members, 4, &records, &[1, 2, 4, 5]);
        assert_eq!(decision, indirect(&[1, 2], Decision::DownUnreachable));
        assert_eq!(downed, set(&[1, 2, 3]));
    }

    #[test]
    fn indirectly_connected_nodes_on_one_side_of_a_clean_split_do_not_change_which_side_wins() {
        // {1,2,3} | {4,5,6,7}, and 5, 6 cannot reach each other. Each side knows the records its
        // own nodes wrote after the cut, and both knew of 5 and 6 before it.
        let members = ups(1..=7);
        let mut small_records = vec![rec(5, 6), rec(6, 5)];
        let mut big_records = small_records.clone();
        for a in 1..=3 {
            for b in 4..=7 {
                small_records.push(rec(a, b));
                big_records.push(rec(b, a));
            }
        }
        let (_, from_small) = km_downs(&members, 1, &small_records, &[1, 2, 3]);
        let (_, from_big) = km_downs(&members, 4, &big_records, &[4, 5, 6, 7]);
        // The three stop; of the four, 4 and 7 keep going without 5 and 6.
        assert_eq!(from_small, set(&[1, 2, 3, 5, 6]));
        assert_eq!(from_big, set(&[1, 2, 3, 5, 6]));
        // Not knowing that 5 and 6 have seen its state, the big side stops too.
        let (_, from_big) = km_downs(&members, 4, &big_records, &[]);
        assert_eq!(from_big, set(&[4, 5, 6, 7]));
    }

    #[test]
    fn a_record_from_before_the_cut_linking_the_two_sides_does_not_keep_both() {
        // {0, 1, 3} | {2, 4}. Before the cut 1 had marked 2 unreachable. After it, 0 marks 2
        // and 4, and 2 marks 0, 1 and 3. On the side of 2, 1 and 2 are indirectly connected;
        // were 1 counted there as reachable (dropping the records between 1 and 2), that side
        // would count 2, 4 and 1 against 0 and 3, and keep itself, as would the other side.
        let members = ups(0..=4);
        let left = [rec(1, 2), rec(0, 2), rec(0, 4)];
        let right = [rec(1, 2), rec(2, 0), rec(2, 1), rec(2, 3)];
        let (decision, from_left) = km_downs(&members, 0, &left, &[0, 1, 3]);
        assert_eq!(decision, Decision::DownUnreachable);
        assert_eq!(from_left, set(&[2, 4]));
        let (decision, from_right) = km_downs(&members, 4, &right, &[4]);
        assert_eq!(decision, indirect(&[1, 2], Decision::DownReachable));
        assert_eq!(from_right, set(&[1, 2, 4]));
    }

    #[test]
    fn static_quorum_keeps_the_side_that_reaches_the_quorum() {
        let members = ups(1..=5);
        let q3 = StaticQuorum {
            size: 3,
            role: None,
        };
        assert_eq!(
            downs(&q3, &members, 1, &[4, 5]),
            (Decision::DownUnreachable, set(&[4, 5]))
        );
        assert_eq!(
            downs(&q3, &members, 4, &[1, 2, 3]),
            (Decision::DownReachable, set(&[4, 5]))
        );
        // Two crashed out of five with a quorum of 4: the three left stop too.
        let q4 = StaticQuorum {
            size: 4,
            role: None,
        };
        assert_eq!(
            downs(&q4, &members, 1, &[4, 5]),
            (Decision::DownReachable, set(&[1, 2, 3]))
        );
    }

    #[test]
    fn static_quorum_with_too_many_members_downs_all() {
        // A quorum of 3 is sound up to 5 counted members; a sixth makes 3 | 3 keep both sides.
        let members = ups(1..=6);
        let q3 = StaticQuorum {
            size: 3,
            role: None,
        };
        assert_eq!(
            downs(&q3, &members, 1, &[4, 5, 6]),
            (Decision::DownAll, set(&[1, 2, 3, 4, 5, 6]))
        );
        // Joining members are not counted, so they do not make it too many.
        let mut members = ups(1..=5);
        members.push(member(6, Joining, &[]));
        assert_eq!(
            downs(&q3, &members, 1, &[5, 6]),
            (Decision::DownUnreachable, set(&[5, 6]))
        );
    }

    #[test]
    fn static_quorum_with_a_role_counts_only_that_role() {
        let members = [
            member(1, Up, &["db"]),
            member(2, Up, &[]),
            member(3, Up, &[]),
            member(4, Up, &["db"]),
            member(5, Up, &["db"]),
        ];
        let q2 = StaticQuorum {
            size: 2,
            role: Some("db".into()),
        };
        assert_eq!(
            downs(&q2, &members, 1, &[4, 5]),
            (Decision::DownReachable, set(&[1, 2, 3]))
        );
        assert_eq!(
            downs(&q2, &members, 4, &[1, 2, 3]),
            (Decision::DownUnreachable, set(&[1, 2, 3]))
        );
    }

    #[test]
    fn static_quorum_of_zero_downs_everything_rather_than_keep_both_sides() {
        let members = ups(1..=2);
        let q0 = StaticQuorum {
            size: 0,
            role: None,
        };
        assert_eq!(
            downs(&q0, &members, 1, &[2]),
            (Decision::DownAll, set(&[1, 2]))
        );
    }

    #[test]
    fn manual_downing_never_downs() {
        let members = ups(1..=3);
        assert_eq!(
            downs(&ManualDowning, &members, 1, &[2, 3]),
            (Decision::Nothing, set(&[]))
        );
    }

    const STATUSES: [MemberStatus; 6] = [Joining, WeaklyUp, Up, Leaving, Exiting, Down];

    /// Members 1..=n with the given statuses and an optional "db" role, and a side for each.
    fn split() -> impl Strategy<Value = Vec<(MemberStatus, bool, bool)>> {
        prop::collection::vec(
            (
                prop::sample::select(&STATUSES[..]),
                any::<bool>(),
                any::<bool>(),
            ),
            2..10,
        )
        .prop_filter("both sides non-empty", |v| {
            v.iter().any(|m| m.1) && v.iter().any(|m| !m.1)
        })
    }

    /// What the two sides of `split` each down, from the view of their lowest member.
    fn both_sides(
        strategy: &dyn Downing,
        split: &[(MemberStatus, bool, bool)],
    ) -> [(BTreeSet<UniqueAddress>, Decision, BTreeSet<UniqueAddress>); 2] {
        let members: Vec<Member> = split
            .iter()
            .enumerate()
            .map(|(i, &(s, _, db))| member(i as u16, s, if db { &["db"] } else { &[] }))
            .collect();
        let side = |left: bool| -> BTreeSet<UniqueAddress> {
            split
                .iter()
                .enumerate()
                .filter(|(_, m)| m.1 == left)
                .map(|(i, _)| node(i as u16))
                .collect()
        };
        [true, false].map(|left| {
            let (mine, theirs) = (side(left), side(!left));
            let me = mine.first().cloned().unwrap_or_else(|| node(0));
            let view = DowningView::new(&me, &members, &theirs, &[]);
            let decision = strategy.decide(&view);
            let downed = decision.nodes_to_down(&view);
            (mine, decision, downed)
        })
    }

    /// The members of `side` still alive after its own decision.
    fn survivors(
        members: &[(MemberStatus, bool, bool)],
        side: &BTreeSet<UniqueAddress>,
        downed: &BTreeSet<UniqueAddress>,
    ) -> usize {
        members
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let n = node(*i as u16);
                side.contains(&n) && !downed.contains(&n) && !matches!(m.0, Down | Exiting)
            })
            .count()
    }

    proptest! {
        #[test]
        fn keep_majority_never_keeps_both_sides_of_a_clean_split(
            split in split(),
            with_role in any::<bool>(),
        ) {
            let km = KeepMajority { role: with_role.then(|| "db".to_string()) };
            let [(a, da, downs_a), (b, db, downs_b)] = both_sides(&km, &split);
            let alive_a = survivors(&split, &a, &downs_a);
            let alive_b = survivors(&split, &b, &downs_b);
            prop_assert!(alive_a == 0 || alive_b == 0, "both sides live: {:?} / {:?}", da, db);

            let counts =
                |m: &(MemberStatus, bool, bool)| m.0.is_up_or_leaving() && (!with_role || m.2);
            if !split.iter().any(counts) {
                prop_assert_eq!((&da, &db), (&Decision::DownAll, &Decision::DownAll));
            }
            // With only Up, Down and Exiting members, the re-check cannot disagree: exactly one
            // side keeps itself.
            let settled = split.iter().all(|m| matches!(m.0, Up | Down | Exiting));
            if split.iter().any(counts) && settled {
                let kept = [&da, &db].iter().filter(|d| ***d == Decision::DownUnreachable).count();
                prop_assert_eq!(kept, 1, "{:?} / {:?}", da, db);
                prop_assert!((alive_a == 0) != (alive_b == 0), "{:?} / {:?}", da, db);
                // Mirror verdicts: both sides down exactly the losing side.
                prop_assert_eq!(&downs_a, &downs_b);
            }
        }

        #[test]
        fn keep_majority_never_keeps_both_sides_of_a_split_with_broken_links_inside(
            sides in prop::collection::vec(
                (any::<bool>(), prop::sample::select(&STATUSES[..])),
                2..9,
            ),
            before_cut in prop::collection::vec((0u16..9, 0u16..9), 0..5),
            after_cut in prop::collection::vec((0u16..9, 0u16..9), 0..6),
            observer_pick in prop::collection::vec(0usize..9, 9),
            seen_pick in prop::collection::vec(any::<bool>(), 9),
        ) {
            // Node 0 on the left, node 1 on the right, the others anywhere.
            let mut sides = sides;
            sides[0].0 = true;
            sides[1].0 = false;
            let n = sides.len() as u16;
            let members: Vec<Member> =
                (0..n).map(|i| member(i, sides[i as usize].1, &[])).collect();
            let on_left = |i: u16| sides[i as usize].0;
            let mut alive = vec![];
            for left in [true, false] {
                let mine: Vec<u16> = (0..n).filter(|&i| on_left(i) == left).collect();
                // Records both sides knew before the cut, those this side wrote after it within
                // itself, and at least one observer on this side for each node on the other.
                let mut known: BTreeSet<(u16, u16)> = before_cut
                    .iter()
                    .copied()
                    .filter(|&(o, s)| o < n && s < n && o != s)
                    .collect();
                known.extend(after_cut.iter().copied().filter(|&(o, s)| {
                    o < n && s < n && o != s && on_left(o) == left && on_left(s) == left
                }));
                for t in (0..n).filter(|&i| on_left(i) != left) {
                    known.insert((mine[observer_pick[t as usize] % mine.len()], t));
                }
                let records: Vec<UnreachableRecord> =
                    known.iter().map(|&(o, s)| rec(o, s)).collect();
                let unreachable: BTreeSet<UniqueAddress> =
                    known.iter().map(|&(_, s)| node(s)).collect();
                // Only nodes of this side can have seen its current state.
                let seen: BTreeSet<UniqueAddress> =
                    mine.iter().filter(|&&i| seen_pick[i as usize]).map(|&i| node(i)).collect();
                // The leader: the lowest Up member of this side reachable in its view.
                let leader = mine.iter().copied().find(|&i| {
                    members[i as usize].status == Up && !unreachable.contains(&node(i))
                });
                let Some(leader) = leader else {
                    alive.push(0);
                    continue;
                };
                let me = &members[leader as usize].node;
                let view =
                    DowningView::new(me, &members, &unreachable, &records).with_seen(&seen);
                let downed = KeepMajority::default().decide(&view).nodes_to_down(&view);
                // Kept: members of this side that its view sees as reachable (the others are
                // not this leader's to decide on) and that it does not down.
                alive.push(
                    mine.iter()
                        .filter(|&&i| !downed.contains(&node(i)) && !view.is_unreachable(&node(i)))
                        .filter(|&&i| !matches!(members[i as usize].status, Down | Exiting))
                        .count(),
                );
            }
            prop_assert!(alive[0] == 0 || alive[1] == 0, "alive on each side: {:?}", alive);
        }

        #[test]
        fn static_quorum_never_keeps_both_sides_of_a_clean_split(
            split in split(),
            size in 0usize..6,
        ) {
            let q = StaticQuorum { size, role: None };
            let [(a, _, downs_a), (b, _, downs_b)] = both_sides(&q, &split);
            let alive_a = survivors(&split, &a, &downs_a);
            let alive_b = survivors(&split, &b, &downs_b);
            prop_assert!(alive_a == 0 || alive_b == 0);
        }
    }
}
