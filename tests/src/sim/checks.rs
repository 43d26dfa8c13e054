//! The rules a simulated run is held to, as checks over what the nodes recorded.
//!
//! Each check is a pure function over records — the events each node published, and the views the
//! nodes held when they were polled — so it can be tried on small hand-made histories. A check
//! returns the first broken rule, in words, or `Ok(())`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use casty::cluster::{Causal, Gossip, MemberStatus, UniqueAddress, VectorClock};

/// A membership event as one node published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `MemberJoined`.
    Joined,
    /// `MemberWeaklyUp`.
    WeaklyUp,
    /// `MemberUp`.
    Up,
    /// `MemberLeft`.
    Left,
    /// `MemberExited`.
    Exited,
    /// `MemberDowned`.
    Downed,
    /// `MemberRemoved`.
    Removed,
    /// `UnreachableMember`.
    Unreachable,
    /// `ReachableMember`.
    Reachable,
}

impl Kind {
    /// The status an event of this kind announces; `None` for reachability events.
    pub fn status(self) -> Option<MemberStatus> {
        use MemberStatus::*;
        Some(match self {
            Kind::Joined => Joining,
            Kind::WeaklyUp => WeaklyUp,
            Kind::Up => Up,
            Kind::Left => Leaving,
            Kind::Exited => Exiting,
            Kind::Downed => Down,
            Kind::Removed => Removed,
            Kind::Unreachable | Kind::Reachable => return None,
        })
    }
}

/// One event, as one incarnation (`observer`) published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Simulated time, in ms from the start.
    pub at_ms: u64,
    /// The node that published it.
    pub observer: UniqueAddress,
    /// What happened.
    pub kind: Kind,
    /// To whom.
    pub member: UniqueAddress,
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6} {}#{} {:?} {}#{}",
            self.at_ms,
            self.observer.address.host(),
            self.observer.uid,
            self.kind,
            self.member.address.host(),
            self.member.uid
        )
    }
}

/// Each node's events about each member follow the lifecycle: statuses only move forward
/// (Joining, WeaklyUp, Up, Leaving, Exiting, Down, Removed, each at most once and any of them
/// skippable, since a node may learn several moves at once), reachability alternates starting
/// with Unreachable, and nothing follows Removed.
pub fn lifecycle_order(events: &[Observed]) -> Result<(), String> {
    #[derive(Default)]
    struct Seen {
        status: Option<MemberStatus>,
        unreachable: bool,
    }
    let mut seen: BTreeMap<(&UniqueAddress, &UniqueAddress), Seen> = BTreeMap::new();
    for e in events {
        let s = seen.entry((&e.observer, &e.member)).or_default();
        if s.status == Some(MemberStatus::Removed) {
            return Err(format!("an event after Removed: {e}"));
        }
        match e.kind.status() {
            Some(next) => {
                if s.status.is_some_and(|before| before >= next) {
                    return Err(format!(
                        "out of lifecycle order: {e} after {:?}",
                        s.status.unwrap()
                    ));
                }
                s.status = Some(next);
            }
            None => {
                let unreachable = e.kind == Kind::Unreachable;
                if unreachable == s.unreachable {
                    return Err(format!("reachability did not alternate: {e}"));
                }
                s.unreachable = unreachable;
            }
        }
    }
    Ok(())
}

/// A node's view when it was polled.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Simulated time, in ms from the start.
    pub at_ms: u64,
    /// The incarnation holding the view.
    pub observer: UniqueAddress,
    /// The view.
    pub gossip: Arc<Gossip>,
    /// Whether the node has left the cluster (downed, removed or gone by its own leave).
    pub stopped: bool,
}

/// What the checks over views remember between polls.
#[derive(Debug, Default)]
pub struct ViewChecks {
    /// Each incarnation's latest view.
    last: BTreeMap<UniqueAddress, Arc<Gossip>>,
    /// For each incarnation seen Down or Removed: the versions of the views that first said so.
    dead: BTreeMap<UniqueAddress, Vec<VectorClock>>,
}

fn is_dead(g: &Gossip, node: &UniqueAddress) -> bool {
    g.is_tombstoned(node)
        || g.member(node)
            .is_some_and(|m| m.status >= MemberStatus::Down)
}

fn included(earlier: &VectorClock, later: &VectorClock) -> bool {
    matches!(earlier.compare(later), Causal::Before | Causal::Same)
}

impl ViewChecks {
    /// Checks one poll: the views all nodes held at one instant.
    ///
    /// - A node's view only grows: each new view has a version at or after its last one, no
    ///   member's status moves back, and a member that left the view is tombstoned.
    /// - A Down or Removed incarnation never becomes a live member again: a view whose version
    ///   includes one that showed it dead shows it dead too (Down, or removed).
    /// - Two nodes that hold the same state, and both see it converged, agree on the leader.
    pub fn poll(&mut self, snapshots: &[Snapshot]) -> Result<(), String> {
        for s in snapshots {
            self.grows(s)?;
        }
        for s in snapshots {
            self.stays_dead(s)?;
        }
        leaders_agree(snapshots)
    }

    fn grows(&mut self, s: &Snapshot) -> Result<(), String> {
        let Some(before) = self.last.insert(s.observer.clone(), s.gossip.clone()) else {
            return Ok(());
        };
        if Arc::ptr_eq(&before, &s.gossip) {
            return Ok(());
        }
        let now = &s.gossip;
        if !included(before.version(), now.version()) {
            return Err(format!(
                "at {} ms the view of {} went back: version {:?} after {:?}",
                s.at_ms,
                s.observer,
                now.version(),
                before.version()
            ));
        }
        for m in before.members() {
            match now.member(&m.node) {
                Some(n) if n.status < m.status => {
                    return Err(format!(
                        "at {} ms {} saw {} go back from {:?} to {:?}",
                        s.at_ms, s.observer, m.node, m.status, n.status
                    ));
                }
                None if !now.is_tombstoned(&m.node) => {
                    return Err(format!(
                        "at {} ms {} dropped {} without a tombstone",
                        s.at_ms, s.observer, m.node
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stays_dead(&mut self, s: &Snapshot) -> Result<(), String> {
        let g = &s.gossip;
        for m in g.members() {
            if m.status >= MemberStatus::Down {
                continue;
            }
            if let Some(clocks) = self.dead.get(&m.node) {
                if let Some(c) = clocks.iter().find(|c| included(c, g.version())) {
                    return Err(format!(
                        "at {} ms {} holds {} as {:?} in a view (version {:?}) that includes one \
                         where it was dead (version {c:?})",
                        s.at_ms,
                        s.observer,
                        m.node,
                        m.status,
                        g.version()
                    ));
                }
            }
        }
        let dead: Vec<UniqueAddress> = g
            .members()
            .map(|m| m.node.clone())
            .chain(g.tombstones().keys().cloned())
            .filter(|n| is_dead(g, n))
            .collect();
        for n in dead {
            let clocks = self.dead.entry(n).or_default();
            if !clocks.iter().any(|c| included(c, g.version())) {
                clocks.push(g.version().clone());
            }
        }
        Ok(())
    }
}

/// Nodes that hold the same state and see it converged agree on the leader.
pub fn leaders_agree(snapshots: &[Snapshot]) -> Result<(), String> {
    let none = BTreeSet::new();
    let converged: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| !s.stopped && s.gossip.converged(&s.observer, &none))
        .collect();
    for (i, a) in converged.iter().enumerate() {
        for b in &converged[i + 1..] {
            if a.gossip.same_state(&b.gossip) {
                let (la, lb) = (a.gossip.leader(&a.observer), b.gossip.leader(&b.observer));
                if la != lb {
                    return Err(format!(
                        "at {} ms {} and {} hold the same converged view but see different \
                         leaders: {la:?} and {lb:?}",
                        a.at_ms, a.observer, b.observer
                    ));
                }
            }
        }
    }
    Ok(())
}

/// After a partition that lasted long enough for the split-brain resolver to decide, at most one
/// side still has running members that are Up (or WeaklyUp, or Leaving): the other side downed
/// itself and stopped. `sides` holds the snapshots of the running nodes on each side.
pub fn one_side_survives(sides: [&[Snapshot]; 2]) -> Result<(), String> {
    let alive = |side: &[Snapshot]| -> Vec<String> {
        side.iter()
            .filter(|s| {
                !s.stopped
                    && s.gossip.member(&s.observer).is_some_and(|m| {
                        matches!(
                            m.status,
                            MemberStatus::WeaklyUp | MemberStatus::Up | MemberStatus::Leaving
                        )
                    })
            })
            .map(|s| s.observer.to_string())
            .collect()
    };
    let (a, b) = (alive(sides[0]), alive(sides[1]));
    if !a.is_empty() && !b.is_empty() {
        return Err(format!(
            "split brain: both sides of the partition kept Up members: {a:?} and {b:?}"
        ));
    }
    Ok(())
}

/// When something happened in a simulation: the simulated time, and its place in the one order
/// in which the simulation ran everything (the hosts run in turn on one thread, so `seq` orders
/// even what happened within one tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    /// Simulated time from the start, in µs.
    pub at_us: u64,
    /// The place in the run's order of records.
    pub seq: u64,
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{:03} ms (#{})",
            self.at_us / 1_000,
            self.at_us % 1_000,
            self.seq
        )
    }
}

/// One incarnation of a sharded entity: where it ran, and from when to when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// The entity's id.
    pub entity: String,
    /// The node (incarnation) it ran on.
    pub node: UniqueAddress,
    /// Its host, numbered from 0.
    pub host: usize,
    /// When it started (`pre_start`).
    pub start: Stamp,
    /// When it stopped (`post_stop`, or its host's crash); `None` while it runs.
    pub stop: Option<Stamp>,
    /// Whether it ended with its host's crash (or bounce) rather than by stopping.
    pub killed: bool,
}

impl std::fmt::Display for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} on {}#{} from {} to ",
            self.entity,
            self.node.address.host(),
            self.node.uid,
            self.start
        )?;
        match (&self.stop, self.killed) {
            (Some(s), false) => write!(f, "{s}"),
            (Some(s), true) => write!(f, "{s}, killed with its host"),
            (None, _) => write!(f, "the end (still running)"),
        }
    }
}

/// At no moment do two incarnations of one entity run: for each entity, no two of its lives
/// overlap. A life that has not stopped runs to the end of the run. Two lives may touch — one
/// stops and the next starts at the same instant — only if the stop came first in the run's
/// order ([`Stamp`]s compare by time, then order).
pub fn single_incarnation(lives: &[Life]) -> Result<(), String> {
    let mut by_entity: BTreeMap<&str, Vec<&Life>> = BTreeMap::new();
    for l in lives {
        by_entity.entry(l.entity.as_str()).or_default().push(l);
    }
    for (entity, mut ls) in by_entity {
        ls.sort_by_key(|l| l.start);
        // Sorted by start, lives that do not overlap each start after the one before stopped.
        for w in ls.windows(2) {
            let (p, l) = (w[0], w[1]);
            if p.stop.is_none_or(|stop| l.start < stop) {
                let all: Vec<String> = ls.iter().map(|l| format!("    {l}")).collect();
                return Err(format!(
                    "two incarnations of entity {entity} ran at once:\n  {p}\n  {l}\nevery \
                     life of {entity}:\n{}",
                    all.join("\n")
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use casty::cluster::Member;
    use casty::remote::NodeAddress;

    fn node(port: u16, uid: u64) -> UniqueAddress {
        let a: NodeAddress = format!("casty://sim@h:{port}").parse().unwrap();
        UniqueAddress::new(a, uid)
    }

    fn ev(observer: &UniqueAddress, kind: Kind, member: &UniqueAddress) -> Observed {
        Observed {
            at_ms: 0,
            observer: observer.clone(),
            kind,
            member: member.clone(),
        }
    }

    #[test]
    fn a_lifecycle_may_skip_statuses_but_never_go_back() {
        let (a, b) = (node(1, 1), node(2, 2));
        let ok = [
            ev(&a, Kind::Joined, &b),
            ev(&a, Kind::Up, &b),
            ev(&a, Kind::Unreachable, &b),
            ev(&a, Kind::Downed, &b),
            ev(&a, Kind::Removed, &b),
        ];
        assert_eq!(lifecycle_order(&ok), Ok(()));
        let back = [ev(&a, Kind::Up, &b), ev(&a, Kind::Joined, &b)];
        assert!(lifecycle_order(&back)
            .unwrap_err()
            .contains("out of lifecycle order"));
        let twice = [ev(&a, Kind::Up, &b), ev(&a, Kind::Up, &b)];
        assert!(lifecycle_order(&twice).is_err());
        let after_removed = [ev(&a, Kind::Removed, &b), ev(&a, Kind::Reachable, &b)];
        assert!(lifecycle_order(&after_removed)
            .unwrap_err()
            .contains("after Removed"));
        let reachable_first = [ev(&a, Kind::Reachable, &b)];
        assert!(lifecycle_order(&reachable_first).is_err());
        // Each observer has its own sequence.
        let two = [ev(&a, Kind::Up, &b), ev(&b, Kind::Joined, &b)];
        assert_eq!(lifecycle_order(&two), Ok(()));
    }

    fn snap(at_ms: u64, observer: &UniqueAddress, g: Gossip) -> Snapshot {
        Snapshot {
            at_ms,
            observer: observer.clone(),
            gossip: Arc::new(g),
            stopped: false,
        }
    }

    #[test]
    fn a_view_that_includes_a_death_must_show_it() {
        let (a, b) = (node(1, 1), node(2, 2));
        let mut g = Gossip::default();
        g.add_joining(Member::joining(a.clone(), Vec::<String>::new()), &a);
        g.add_joining(Member::joining(b.clone(), Vec::<String>::new()), &a);
        let mut downed = g.clone();
        downed.set_status(&b, MemberStatus::Down, &a);
        let mut checks = ViewChecks::default();
        assert_eq!(checks.poll(&[snap(0, &a, downed.clone())]), Ok(()));
        // A view whose version includes the down (a:4 after a:3) but holds `b` Up: broken.
        let mut alive = g.clone();
        alive.set_status(&b, MemberStatus::Up, &a);
        alive.set_status(&a, MemberStatus::Up, &a);
        let err = checks.poll(&[snap(1, &b, alive)]).unwrap_err();
        assert!(err.contains("includes one where it was dead"), "{err}");
        // A concurrent view, that never heard of the down, may still hold it alive.
        let mut checks = ViewChecks::default();
        let mut other = g.clone();
        other.set_status(&a, MemberStatus::Up, &b);
        assert_eq!(
            checks.poll(&[snap(0, &a, downed), snap(0, &b, other)]),
            Ok(())
        );
    }

    #[test]
    fn a_view_never_goes_back() {
        let a = node(1, 1);
        let mut g = Gossip::default();
        g.add_joining(Member::joining(a.clone(), Vec::<String>::new()), &a);
        let mut later = g.clone();
        later.set_status(&a, MemberStatus::Up, &a);
        let mut checks = ViewChecks::default();
        assert_eq!(checks.poll(&[snap(0, &a, later)]), Ok(()));
        let err = checks.poll(&[snap(1, &a, g)]).unwrap_err();
        assert!(err.contains("went back"), "{err}");
    }

    #[test]
    fn two_sides_with_up_members_are_a_split_brain() {
        let (a, b) = (node(1, 1), node(2, 2));
        let up = |me: &UniqueAddress| {
            let mut g = Gossip::default();
            g.add_joining(Member::joining(me.clone(), Vec::<String>::new()), me);
            g.set_status(me, MemberStatus::Up, me);
            snap(0, me, g)
        };
        let (sa, sb) = ([up(&a)], [up(&b)]);
        assert!(one_side_survives([&sa, &sb])
            .unwrap_err()
            .contains("split brain"));
        let mut stopped = up(&b);
        stopped.stopped = true;
        assert_eq!(one_side_survives([&sa, &[stopped]]), Ok(()));
        assert_eq!(one_side_survives([&sa, &[]]), Ok(()));
    }

    fn life(entity: &str, host: usize, start: (u64, u64), stop: Option<(u64, u64)>) -> Life {
        let stamp = |(at_us, seq)| Stamp { at_us, seq };
        Life {
            entity: entity.into(),
            node: node(host as u16, host as u64),
            host,
            start: stamp(start),
            stop: stop.map(stamp),
            killed: false,
        }
    }

    #[test]
    fn lives_of_one_entity_one_after_another_pass() {
        let lives = [
            life("a", 1, (0, 0), Some((1_000, 5))),
            // Starts at the very instant the first stopped, after it in the run's order.
            life("a", 2, (1_000, 6), Some((2_000, 9))),
            life("a", 1, (3_000, 12), None),
            // Another entity may run beside them.
            life("b", 2, (500, 3), None),
        ];
        assert_eq!(single_incarnation(&lives), Ok(()));
        assert_eq!(single_incarnation(&[]), Ok(()));
    }

    #[test]
    fn two_lives_of_one_entity_at_once_fail_and_name_both() {
        let first = life("a", 1, (0, 0), Some((2_000, 9)));
        let second = life("a", 2, (1_500, 7), Some((3_000, 11)));
        let err = single_incarnation(&[second.clone(), first.clone()]).unwrap_err();
        assert!(err.contains("entity a"), "{err}");
        assert!(err.contains(&first.to_string()), "{err}");
        assert!(err.contains(&second.to_string()), "{err}");
    }

    #[test]
    fn a_start_at_the_instant_of_a_stop_but_before_it_in_order_overlaps() {
        let lives = [
            life("a", 1, (0, 0), Some((1_000, 6))),
            life("a", 2, (1_000, 5), None),
        ];
        assert!(single_incarnation(&lives).is_err());
    }

    #[test]
    fn a_life_still_running_overlaps_every_later_start() {
        let lives = [
            life("a", 1, (0, 0), None),
            life("a", 2, (9_000, 50), Some((9_500, 60))),
        ];
        assert!(single_incarnation(&lives).is_err());
    }

    /// The first overlap is reported, between the two lives that make it.
    #[test]
    fn the_first_overlap_is_reported_with_both_lives() {
        let lives = [
            life("a", 1, (0, 0), Some((10_000, 90))),
            life("a", 2, (1_000, 10), Some((2_000, 20))),
            life("a", 3, (5_000, 40), Some((6_000, 50))),
        ];
        let err = single_incarnation(&lives).unwrap_err();
        assert!(err.contains(&lives[0].to_string()), "{err}");
        assert!(err.contains(&lives[1].to_string()), "{err}");
    }

    #[test]
    fn a_life_killed_with_its_host_says_so() {
        let mut l = life("a", 1, (0, 0), Some((1_000, 3)));
        l.killed = true;
        assert!(l.to_string().ends_with("killed with its host"), "{l}");
        assert!(life("a", 1, (0, 0), None)
            .to_string()
            .contains("still running"));
    }
}
