//! The split-brain resolver: *when* to ask a [`Downing`] strategy, and what to down.
//!
//! Right after a cut, the failure detectors on the two sides have not yet marked everyone on
//! the other side, so their views are not yet mirror images and a count could keep both sides.
//! The resolver therefore waits until the view has been still for a while. It is pure: time
//! comes in as `now`, the view as a [`DowningView`], and out comes the set of nodes to down.
//!
//! # Timing
//!
//! - `stable_after`: how long nothing must change before a decision. The clock restarts at
//!   every [`StabilityChange`] the driver reports through
//!   [`on_change`](SplitBrainResolver::on_change): a member marked unreachable or reachable
//!   again, a member moved Up, a member Exited. (Joining, Leaving and removal do not restart
//!   it: they do not change who is counted against whom.) The clock also starts at
//!   construction, so a node that has just started waits too.
//! - [`tick`](SplitBrainResolver::tick) decides only when this node is the leader and is Up,
//!   WeaklyUp or Leaving (a Joining node does not act; a Leaving one still may lead, and then
//!   nobody else on its side would), some member is unreachable, and
//!   `now ≥ last change + stable_after`. After a decision that downs someone the clock
//!   restarts, so the leader does not decide again at once; if the downing did not take effect
//!   (nothing changed), the same decision is taken again one `stable_after` later.
//! - `down_all_when_unstable`: an *unstable period* begins at the first reachability change
//!   while none is under way, and ends when reachability has then been still for
//!   `stable_after`, when no live member (neither Down nor Exiting) is unreachable any more, or
//!   with a decision. If it lasts longer than `stable_after + down_all_when_unstable` (the
//!   failure detector keeps flapping, so no stable view ever comes), every downable member is
//!   downed. Like Akka's resolver, this is done on every member (neither Down nor Exiting
//!   itself), not only the leader: when reachability never settles, neither may leadership,
//!   and each node must protect itself. `None` turns it off.
//!
//! The driver downs the returned nodes one by one, itself last (it may stop once it is Down).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::downing::{Decision, Downing, DowningView};
use super::member::{MemberStatus, UniqueAddress};
use super::strategies::KeepMajority;

/// What changed, as reported to [`SplitBrainResolver::on_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StabilityChange {
    /// A member was marked unreachable, or reachable again. Restarts the stability clock and
    /// may begin an unstable period.
    Reachability,
    /// A member moved Up or Exited. Restarts the stability clock only.
    Membership,
}

/// Decides, once the view has been stable for `stable_after`, which nodes to down, by asking a
/// [`Downing`] strategy; downs everything if reachability never settles. See the module
/// documentation for the timing.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use std::time::Duration;
/// use casty::cluster::{DowningView, KeepMajority, Member, MemberStatus, UniqueAddress};
/// use casty::cluster::{SplitBrainResolver, StabilityChange};
/// use casty::remote::NodeAddress;
/// use tokio::time::Instant;
///
/// let node = |i: u16| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2550 + i), 1);
/// let members: Vec<Member> = (1..=3)
///     .map(|i| Member::joining(node(i), ["web"]).with_status(MemberStatus::Up))
///     .collect();
/// let t0 = Instant::now();
/// let mut sbr = SplitBrainResolver::new(
///     Box::new(KeepMajority::default()),
///     Duration::from_secs(20),
///     None,
///     t0,
/// );
///
/// // Node 3 becomes unreachable at t0 + 5 s.
/// sbr.on_change(t0 + Duration::from_secs(5), StabilityChange::Reachability);
/// let unreachable = BTreeSet::from([node(3)]);
/// let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
///
/// assert_eq!(sbr.tick(t0 + Duration::from_secs(24), &view, true), None);
/// let at_25 = sbr.tick(t0 + Duration::from_secs(25), &view, true);
/// assert_eq!(at_25, Some(BTreeSet::from([node(3)])));
/// // Decided: not again at once.
/// assert_eq!(sbr.tick(t0 + Duration::from_secs(26), &view, true), None);
/// ```
#[derive(Debug)]
pub struct SplitBrainResolver {
    /// Who decides which side goes.
    strategy: Box<dyn Downing>,
    /// How long nothing must change before a decision.
    stable_after: Duration,
    /// How much longer than `stable_after` an unstable period may last before everything is
    /// downed; `None`: never.
    down_all_when_unstable: Option<Duration>,
    /// The last change that restarts the stability clock (or the start, or the last decision).
    last_change: Instant,
    /// The last reachability change.
    last_reachability_change: Instant,
    /// When the current unstable period began; `None` outside one.
    unstable_since: Option<Instant>,
}

impl SplitBrainResolver {
    /// How long the view must be still before a decision, by default (as in Akka).
    pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(20);

    /// A resolver asking `strategy`, started at `now`.
    pub fn new(
        strategy: Box<dyn Downing>,
        stable_after: Duration,
        down_all_when_unstable: Option<Duration>,
        now: Instant,
    ) -> Self {
        SplitBrainResolver {
            strategy,
            stable_after,
            down_all_when_unstable,
            last_change: now,
            last_reachability_change: now,
            unstable_since: None,
        }
    }

    /// The default resolver: [`KeepMajority`] over all members, `stable_after` as given, and
    /// [`default_down_all_when_unstable`](Self::default_down_all_when_unstable) of it.
    pub fn keep_majority(stable_after: Duration, now: Instant) -> Self {
        let unstable = Self::default_down_all_when_unstable(stable_after);
        SplitBrainResolver::new(
            Box::new(KeepMajority::default()),
            stable_after,
            Some(unstable),
            now,
        )
    }

    /// The default extra time an unstable period may last: three quarters of `stable_after`,
    /// at least 4 s.
    pub fn default_down_all_when_unstable(stable_after: Duration) -> Duration {
        (stable_after / 4 * 3).max(Duration::from_secs(4))
    }

    /// The strategy asked.
    pub fn strategy(&self) -> &dyn Downing {
        self.strategy.as_ref()
    }

    /// How long nothing must change before a decision.
    pub fn stable_after(&self) -> Duration {
        self.stable_after
    }

    /// The earliest time at which the leader may decide, if nothing changes before.
    pub fn stable_at(&self) -> Option<Instant> {
        self.last_change.checked_add(self.stable_after)
    }

    /// When the current unstable period began, if one is under way.
    pub fn unstable_since(&self) -> Option<Instant> {
        self.unstable_since
    }

    /// Records a change at `now`: the stability clock restarts, and a reachability change
    /// begins an unstable period if none is under way.
    pub fn on_change(&mut self, now: Instant, change: StabilityChange) {
        self.last_change = self.last_change.max(now);
        if change == StabilityChange::Reachability {
            self.last_reachability_change = self.last_reachability_change.max(now);
            self.unstable_since.get_or_insert(now);
        }
    }

    /// The nodes to down now, if any: everything downable when an unstable period has lasted
    /// too long; else, if this node is the leader (`self_is_leader`), Up or WeaklyUp in `view`,
    /// sees someone unreachable and nothing has changed for `stable_after`, what the strategy
    /// decides. `None` when nothing is to be downed.
    pub fn tick(
        &mut self,
        now: Instant,
        view: &DowningView<'_>,
        self_is_leader: bool,
    ) -> Option<BTreeSet<UniqueAddress>> {
        if let Some(since) = self.unstable_since {
            let settled =
                now.saturating_duration_since(self.last_reachability_change) >= self.stable_after;
            let nothing_live_unreachable = view.unreachable().iter().all(|n| {
                view.member(n)
                    .is_none_or(|m| matches!(m.status, MemberStatus::Down | MemberStatus::Exiting))
            });
            if settled || nothing_live_unreachable {
                self.unstable_since = None;
            } else if let Some(extra) = self.down_all_when_unstable {
                let too_long =
                    now.saturating_duration_since(since) > self.stable_after.saturating_add(extra);
                // Only a node that is itself still in the cluster downs the others.
                let in_cluster = view.self_member().is_some_and(|m| {
                    !matches!(m.status, MemberStatus::Down | MemberStatus::Exiting)
                });
                if too_long && in_cluster {
                    return self.act(now, Decision::DownAll.nodes_to_down(view));
                }
            }
        }
        let responsible = self_is_leader
            && view.self_member().is_some_and(|m| {
                matches!(
                    m.status,
                    MemberStatus::Up | MemberStatus::WeaklyUp | MemberStatus::Leaving
                )
            });
        let stable = now.saturating_duration_since(self.last_change) >= self.stable_after;
        if !responsible || !stable || view.unreachable().is_empty() {
            return None;
        }
        let decision = self.strategy.decide(view);
        self.act(now, decision.nodes_to_down(view))
    }

    /// Returns `nodes` to down, restarting the clock and ending any unstable period; `None`
    /// (and nothing restarted) when there are none.
    fn act(
        &mut self,
        now: Instant,
        nodes: BTreeSet<UniqueAddress>,
    ) -> Option<BTreeSet<UniqueAddress>> {
        if nodes.is_empty() {
            return None;
        }
        self.last_change = self.last_change.max(now);
        self.unstable_since = None;
        Some(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ManualDowning, Member};
    use crate::remote::NodeAddress;

    fn node(i: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "10.0.0.1", 2550 + i), 1)
    }

    fn set(ids: &[u16]) -> BTreeSet<UniqueAddress> {
        ids.iter().map(|&i| node(i)).collect()
    }

    fn ups(n: u16) -> Vec<Member> {
        (1..=n)
            .map(|i| Member::joining(node(i), ["r"]).with_status(MemberStatus::Up))
            .collect()
    }

    const STABLE: Duration = Duration::from_secs(10);

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    fn resolver(t0: Instant, unstable: Option<Duration>) -> SplitBrainResolver {
        SplitBrainResolver::new(Box::new(KeepMajority::default()), STABLE, unstable, t0)
    }

    #[test]
    fn nothing_is_decided_before_the_view_has_been_stable_for_stable_after() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(5);
        let unreachable = set(&[4, 5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        sbr.on_change(secs(t0, 1), StabilityChange::Reachability);
        sbr.on_change(secs(t0, 2), StabilityChange::Reachability);
        assert_eq!(sbr.stable_at(), Some(secs(t0, 12)));
        assert_eq!(sbr.tick(secs(t0, 11), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 12), &view, true), Some(set(&[4, 5])));
    }

    #[test]
    fn a_fresh_resolver_waits_stable_after_from_its_start() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 9), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), Some(set(&[3])));
    }

    #[test]
    fn a_reachability_change_restarts_the_clock() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        sbr.on_change(t0, StabilityChange::Reachability);
        sbr.on_change(secs(t0, 8), StabilityChange::Reachability);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 17), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 18), &view, true), Some(set(&[3])));
    }

    #[test]
    fn a_member_moved_up_restarts_the_clock() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        sbr.on_change(t0, StabilityChange::Reachability);
        sbr.on_change(secs(t0, 5), StabilityChange::Membership);
        assert_eq!(sbr.tick(secs(t0, 14), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 15), &view, true), Some(set(&[3])));
    }

    #[test]
    fn a_node_that_is_not_the_leader_decides_nothing() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 60), &view, false), None);
        // It becomes the leader: the view has long been stable.
        assert_eq!(sbr.tick(secs(t0, 61), &view, true), Some(set(&[3])));
    }

    #[test]
    fn a_leader_that_is_joining_or_down_decides_nothing() {
        let t0 = Instant::now();
        let unreachable = set(&[3]);
        for status in [MemberStatus::Joining, MemberStatus::Down] {
            let mut sbr = resolver(t0, None);
            let mut members = ups(3);
            members[0].status = status;
            let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
            assert_eq!(sbr.tick(secs(t0, 60), &view, true), None, "{status:?}");
        }
        let mut sbr = resolver(t0, None);
        let mut members = ups(3);
        members[0].status = MemberStatus::WeaklyUp;
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 60), &view, true), Some(set(&[3])));
    }

    #[test]
    fn with_everyone_reachable_nothing_is_decided() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(3);
        let unreachable = BTreeSet::new();
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 60), &view, true), None);
    }

    #[test]
    fn after_a_decision_nothing_is_decided_until_another_change_and_stable_after() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(5);
        let unreachable = set(&[5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), Some(set(&[5])));
        for s in 11..15 {
            assert_eq!(sbr.tick(secs(t0, s), &view, true), None, "at {s} s");
        }
        // Node 4 goes too, at 15 s.
        sbr.on_change(secs(t0, 15), StabilityChange::Reachability);
        let unreachable = set(&[4, 5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 24), &view, true), None);
        assert_eq!(sbr.tick(secs(t0, 25), &view, true), Some(set(&[4, 5])));
    }

    #[test]
    fn the_minority_leader_downs_its_own_side_itself_included() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let members = ups(5);
        let unreachable = set(&[1, 2, 3]);
        let view = DowningView::new(&members[3].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), Some(set(&[4, 5])));
    }

    #[test]
    fn a_leaving_leader_on_the_minority_side_downs_its_own_side_itself_included() {
        // {1 Leaving, 2} | {3, 4, 5}: node 1 leads its side (the first Up or Leaving member),
        // and nobody else there may decide, so it must.
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let mut members = ups(5);
        members[0].status = MemberStatus::Leaving;
        let unreachable = set(&[3, 4, 5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), Some(set(&[1, 2])));
    }

    #[test]
    fn a_leaving_leader_on_the_majority_side_downs_the_other_side() {
        let t0 = Instant::now();
        let mut sbr = resolver(t0, None);
        let mut members = ups(5);
        members[0].status = MemberStatus::Leaving;
        let unreachable = set(&[4, 5]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 10), &view, true), Some(set(&[4, 5])));
    }

    #[test]
    fn a_strategy_that_downs_no_one_leaves_the_clock_running() {
        let t0 = Instant::now();
        let mut sbr = SplitBrainResolver::new(Box::new(ManualDowning), STABLE, Some(STABLE), t0);
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        sbr.on_change(t0, StabilityChange::Reachability);
        for s in 0..100 {
            assert_eq!(sbr.tick(secs(t0, s), &view, true), None);
            assert_eq!(sbr.tick(secs(t0, s), &view, false), None);
        }
        assert_eq!(sbr.stable_at(), Some(secs(t0, 10)));
    }

    #[test]
    fn reachability_that_keeps_changing_downs_everyone_on_every_node() {
        let t0 = Instant::now();
        let extra = Duration::from_secs(5);
        let members = ups(4);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[1].node, &members, &unreachable, &[]);
        let mut sbr = resolver(t0, Some(extra));
        // A change every 5 s from 0 s: never 10 s of quiet.
        for s in (0..=15).step_by(5) {
            sbr.on_change(secs(t0, s), StabilityChange::Reachability);
            assert_eq!(sbr.tick(secs(t0, s), &view, false), None);
        }
        assert_eq!(sbr.unstable_since(), Some(t0));
        assert_eq!(sbr.tick(secs(t0, 15), &view, false), None);
        let later = t0 + Duration::from_millis(15_001);
        // A node that is not a member (not joined yet, or Exiting) downs no one.
        let stranger = node(9);
        let from_outside = DowningView::new(&stranger, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(later, &from_outside, false), None);
        // More than 10 + 5 s since the first change, on a node that is not the leader.
        assert_eq!(sbr.tick(later, &view, false), Some(set(&[1, 2, 3, 4])));
        assert_eq!(sbr.unstable_since(), None);
        assert_eq!(sbr.tick(later, &view, false), None);
    }

    #[test]
    fn an_unstable_period_ends_once_reachability_is_still_for_stable_after() {
        let t0 = Instant::now();
        let members = ups(4);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[1].node, &members, &unreachable, &[]);
        let mut sbr = resolver(t0, Some(Duration::from_secs(5)));
        sbr.on_change(t0, StabilityChange::Reachability);
        sbr.on_change(secs(t0, 2), StabilityChange::Reachability);
        assert_eq!(sbr.tick(secs(t0, 11), &view, false), None);
        assert_eq!(sbr.unstable_since(), Some(t0));
        assert_eq!(sbr.tick(secs(t0, 12), &view, false), None);
        assert_eq!(sbr.unstable_since(), None);
        // A non-leader with a crashed member in view never downs anyone on its own.
        assert_eq!(sbr.tick(secs(t0, 100), &view, false), None);
    }

    #[test]
    fn an_unstable_period_ends_when_no_live_member_is_unreachable() {
        let t0 = Instant::now();
        let mut members = ups(4);
        let mut sbr = resolver(t0, Some(Duration::from_secs(5)));
        sbr.on_change(t0, StabilityChange::Reachability);
        sbr.on_change(secs(t0, 1), StabilityChange::Reachability);
        // Healed: nobody unreachable.
        let nobody = BTreeSet::new();
        let view = DowningView::new(&members[1].node, &members, &nobody, &[]);
        assert_eq!(sbr.tick(secs(t0, 2), &view, false), None);
        assert_eq!(sbr.unstable_since(), None);
        // Unreachable again, but the only unreachable member is already Down.
        sbr.on_change(secs(t0, 3), StabilityChange::Reachability);
        members[2].status = MemberStatus::Down;
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[1].node, &members, &unreachable, &[]);
        assert_eq!(sbr.tick(secs(t0, 4), &view, false), None);
        assert_eq!(sbr.unstable_since(), None);
    }

    #[test]
    fn the_default_extra_time_for_instability_is_three_quarters_of_stable_after() {
        let d = SplitBrainResolver::default_down_all_when_unstable;
        assert_eq!(d(Duration::from_secs(20)), Duration::from_secs(15));
        assert_eq!(d(Duration::from_secs(2)), Duration::from_secs(4));
        let sbr = SplitBrainResolver::keep_majority(Duration::from_secs(20), Instant::now());
        assert_eq!(sbr.stable_after(), Duration::from_secs(20));
        assert_eq!(
            format!("{:?}", sbr.strategy()),
            "KeepMajority { role: None }"
        );
    }

    #[test]
    fn a_huge_stable_after_never_decides_and_never_panics() {
        let t0 = Instant::now();
        let mut sbr = SplitBrainResolver::new(
            Box::new(KeepMajority::default()),
            Duration::MAX,
            Some(Duration::MAX),
            t0,
        );
        let members = ups(3);
        let unreachable = set(&[3]);
        let view = DowningView::new(&members[0].node, &members, &unreachable, &[]);
        sbr.on_change(t0, StabilityChange::Reachability);
        assert_eq!(sbr.stable_at(), None);
        assert_eq!(sbr.tick(secs(t0, 1_000_000), &view, true), None);
    }
}
