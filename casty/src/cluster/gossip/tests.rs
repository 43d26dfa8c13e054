use super::*;
use crate::remote::NodeAddress;
use proptest::prelude::*;
use MemberStatus::*;

fn node(n: u16) -> UniqueAddress {
    UniqueAddress::new(
        NodeAddress::new("c", "127.0.0.1", 2550 + n),
        100 + u64::from(n),
    )
}

fn none() -> BTreeSet<UniqueAddress> {
    BTreeSet::new()
}

/// A cluster of `n` Up members, as seen by all of them (converged).
fn up_cluster(n: u16) -> Gossip {
    let first = node(0);
    let mut g = Gossip::default();
    for i in 0..n {
        assert!(g.add_joining(Member::joining(node(i), ["r"]), &first));
    }
    for i in 0..n {
        g.mark_seen(&node(i));
    }
    assert!(g.leader_actions(&first, 0, &none()));
    for i in 0..n {
        g.mark_seen(&node(i));
    }
    g
}

#[test]
fn the_leader_moves_joining_members_up_in_address_order_only_at_convergence() {
    let (a, b, c) = (node(0), node(1), node(2));
    let mut g = Gossip::default();
    g.add_joining(Member::joining(a.clone(), ["r"]), &a);
    g.add_joining(Member::joining(c.clone(), ["r"]), &a);
    g.add_joining(Member::joining(b.clone(), ["r"]), &a);
    // Only a has seen it: not converged while the cluster forms.
    assert!(!g.converged(&a, &none()));
    assert!(!g.leader_actions(&a, 0, &none()));
    g.mark_seen(&b);
    g.mark_seen(&c);
    // b is not the leader, so it does nothing.
    assert!(!g.clone().leader_actions(&b, 0, &none()));
    assert!(g.leader_actions(&a, 0, &none()));
    let ups: Vec<_> = g.members().map(|m| (m.status, m.up_number)).collect();
    assert_eq!(ups, vec![(Up, 1), (Up, 2), (Up, 3)]);
    assert_eq!(g.seen(), &[a.clone()].into());
}

#[test]
fn a_member_that_joins_later_is_numbered_after_the_youngest() {
    let mut g = up_cluster(2);
    let (a, c) = (node(0), node(5));
    g.add_joining(Member::joining(c.clone(), ["r"]), &a);
    for m in [node(0), node(1), node(5)] {
        g.mark_seen(&m);
    }
    assert!(g.leader_actions(&a, 0, &none()));
    assert_eq!(g.member(&c).map(|m| (m.status, m.up_number)), Some((Up, 3)));
}

#[test]
fn an_unreachable_member_blocks_convergence_until_it_is_down_then_it_is_removed() {
    let mut g = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    // c changes something before it goes, so it has a clock entry.
    assert!(g.mark_reachability(&c, &b, Reach::Unreachable));
    assert!(g.mark_reachability(&c, &b, Reach::Reachable));
    assert!(g.mark_reachability(&a, &c, Reach::Unreachable));
    for m in [&a, &b, &c] {
        g.mark_seen(m);
    }
    assert!(!g.converged(&a, &none()));
    assert!(!g.leader_actions(&a, 7, &none()));
    assert!(g.set_status(&c, Down, &a));
    g.mark_seen(&b);
    // c, Down and unreachable, need not see the view.
    assert!(g.converged(&a, &none()));
    assert!(g.leader_actions(&a, 7, &none()));
    assert!(g.member(&c).is_none());
    assert_eq!(g.tombstones().get(&c), Some(&7));
    assert!(g.reachability().is_empty());
    // Its clock entry stays as long as its tombstone.
    assert_eq!(g.version().get(c.uid), 2);
    g.check().unwrap();
    // The removed incarnation cannot join again.
    assert!(!g.add_joining(Member::joining(c.clone(), ["r"]), &a));
    // Only tombstones older than the given time go.
    assert!(!g.prune_tombstones(7, &a));
    let before = g.version().clone();
    assert!(g.prune_tombstones(8, &a));
    // The tombstone goes; the clock entry stays, so the pruned view is newer than before.
    assert_eq!((g.version().get(c.uid), g.is_tombstoned(&c)), (2, false));
    assert_eq!(before.compare(g.version()), Causal::Before);
    g.check().unwrap();
}

#[test]
fn a_member_removed_and_pruned_stays_out_of_a_merge_with_a_view_from_before_its_removal() {
    let mut g = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    // c changes something, so the views count a change by it.
    assert!(g.mark_reachability(&c, &b, Reach::Unreachable));
    assert!(g.mark_reachability(&c, &b, Reach::Reachable));
    // c's own view from then on: it is cut off and marks a and b.
    let mut at_c = g.clone();
    assert!(at_c.mark_reachability(&c, &a, Reach::Unreachable));
    // The others down c, remove it and, much later, prune its tombstone.
    assert!(g.set_status(&c, Down, &a));
    assert!(g.remove(&c, 7, &a));
    assert!(g.prune_tombstones(8, &a));
    assert_eq!(g.compare(&at_c), Causal::Concurrent);
    // c's view, concurrent with theirs, merges in either order without c in it.
    for m in [g.merge(&at_c), at_c.merge(&g)] {
        assert!(m.member(&c).is_none(), "{m:?}");
        assert_eq!(m.members().count(), 2);
        assert!(m.reachability().is_empty());
        assert_eq!(m.check(), Ok(()));
    }
}

#[test]
fn a_reachable_down_member_is_not_removed_until_it_stops() {
    let mut g = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    assert!(g.set_status(&c, Down, &a));
    g.mark_seen(&b);
    assert!(g.converged(&a, &none()));
    assert!(!g.leader_actions(&a, 0, &none()));
    assert!(g.member(&c).is_some());
}

#[test]
fn leaving_goes_to_exiting_at_convergence_and_out_once_its_exit_is_confirmed() {
    let mut g = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    assert!(g.set_status(&b, Leaving, &b));
    for m in [&a, &b, &c] {
        g.mark_seen(m);
    }
    assert!(g.leader_actions(&a, 0, &none()));
    assert_eq!(g.member(&b).map(|m| m.status), Some(Exiting));
    g.mark_seen(&c);
    let confirmed: BTreeSet<_> = [b.clone()].into();
    assert!(g.leader_actions(&a, 5, &confirmed));
    assert!(g.member(&b).is_none() && g.is_tombstoned(&b));
}

#[test]
fn the_leader_is_the_first_reachable_up_member_and_never_a_down_one() {
    let mut g = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    assert_eq!(g.leader(&c), Some(a.clone()));
    g.mark_reachability(&b, &a, Reach::Unreachable);
    // Unreachable a does not lead for b or c, but a counts itself reachable.
    assert_eq!(g.leader(&c), Some(b.clone()));
    assert_eq!(g.leader(&a), Some(a.clone()));
    g.set_status(&a, Down, &b);
    assert_eq!(g.leader(&a), Some(b.clone()));
    // Marks by a Down observer do not count.
    g.mark_reachability(&a, &c, Reach::Unreachable);
    assert!(g.is_reachable(&c));
}

#[test]
fn joining_members_become_weakly_up_while_the_view_does_not_converge() {
    let mut g = up_cluster(2);
    let (a, b, j) = (node(0), node(1), node(3));
    g.add_joining(Member::joining(j.clone(), ["r"]), &a);
    g.mark_reachability(&a, &b, Reach::Unreachable);
    assert!(!g.converged(&a, &none()));
    assert!(g.weakly_up(&a));
    assert_eq!(g.member(&j).map(|m| m.status), Some(WeaklyUp));
    assert!(!g.weakly_up(&a));
}

#[test]
fn receiving_keeps_the_newer_view_merges_diverged_ones_and_pools_seen() {
    let base = up_cluster(3);
    let (a, b, c) = (node(0), node(1), node(2));
    let mut at_b = base.clone();
    assert_eq!(at_b.receive(base.clone(), &b), Received::Same);
    let mut newer = base.clone();
    newer.set_status(&c, Leaving, &c);
    assert_eq!(at_b.receive(newer.clone(), &b), Received::Newer);
    assert_eq!(at_b.seen(), &[b.clone(), c.clone()].into());
    assert_eq!(at_b.receive(base.clone(), &b), Received::Older);
    let mut other = base.clone();
    other.mark_reachability(&a, &b, Reach::Unreachable);
    assert_eq!(at_b.receive(other, &b), Received::Merged);
    assert_eq!(at_b.member(&c).map(|m| m.status), Some(Leaving));
    assert!(!at_b.reachability().is_reachable(&b));
    assert_eq!(at_b.seen(), &[b.clone()].into());
}

#[test]
fn a_new_incarnation_cannot_join_while_the_old_one_is_a_member() {
    let mut g = up_cluster(2);
    let again = UniqueAddress::new(node(1).address.clone(), 999);
    assert!(!g.add_joining(Member::joining(again, ["r"]), &node(0)));
}

// ------------------------------------------------------------------------------------------
// Merge laws, over views produced by real histories.

/// One step of a random history over nodes 0..NODES.
#[derive(Debug, Clone)]
enum Op {
    /// `via` adds `node` as joining, and `node` takes `via`'s view (a welcome).
    Join { via: u16 },
    /// `from` gossips its view to `to`.
    Gossip { from: u16, to: u16 },
    /// `by` moves `node` on.
    Status {
        by: u16,
        node: u16,
        status: MemberStatus,
    },
    /// `by` writes its verdict on `node`.
    Mark { by: u16, node: u16, reach: Reach },
    /// `by` removes `node` if it is Down or Exiting.
    Remove { by: u16, at: u64 },
    /// `by` runs the leader's moves.
    Lead { by: u16, at: u64 },
}

const NODES: u16 = 5;

fn op() -> impl Strategy<Value = Op> {
    let n = || 0..NODES;
    let status = prop_oneof![
        Just(WeaklyUp),
        Just(Up),
        Just(Leaving),
        Just(Exiting),
        Just(Down)
    ];
    let reach = prop_oneof![
        Just(Reach::Reachable),
        Just(Reach::Unreachable),
        Just(Reach::Terminated)
    ];
    prop_oneof![
        1 => n().prop_map(|via| Op::Join { via }),
        3 => (n(), n()).prop_map(|(from, to)| Op::Gossip { from, to }),
        1 => (n(), n(), status).prop_map(|(by, node, status)| Op::Status { by, node, status }),
        1 => (n(), n(), reach).prop_map(|(by, node, reach)| Op::Mark { by, node, reach }),
        1 => (n(), 0u64..100).prop_map(|(by, at)| Op::Remove { by, at }),
        1 => (n(), 0u64..100).prop_map(|(by, at)| Op::Lead { by, at }),
    ]
}

/// Runs a history and returns every view any node held along the way. The node numbers in an
/// op pick among the nodes that can take that step (those holding a view, the members of the
/// acting node's view), so that most steps do something.
fn run(ops: &[Op]) -> Vec<Gossip> {
    let mut views: Vec<Option<Gossip>> = vec![None; usize::from(NODES)];
    let first = node(0);
    let mut g = Gossip::default();
    g.add_joining(Member::joining(first.clone(), ["r"]), &first);
    g.leader_actions(&first, 0, &none());
    views[0] = Some(g.clone());
    let mut seen_views = vec![g];
    for op in ops {
        // Nodes that hold a view in which they are a member.
        let active: Vec<u16> = (0..NODES)
            .filter(|i| {
                views[usize::from(*i)]
                    .as_ref()
                    .is_some_and(|v| v.member(&node(*i)).is_some())
            })
            .collect();
        if active.is_empty() {
            break;
        }
        let pick = |i: u16| active[usize::from(i) % active.len()];
        // The members of `by`'s view, other than itself.
        let others = |views: &Vec<Option<Gossip>>, by: u16| -> Vec<UniqueAddress> {
            views[usize::from(by)]
                .as_ref()
                .map(|v| {
                    v.members()
                        .map(|m| m.node.clone())
                        .filter(|n| *n != node(by))
                        .collect()
                })
                .unwrap_or_default()
        };
        let changed = match op.clone() {
            Op::Join { via } => {
                let via = pick(via);
                let newcomer = (0..NODES).find(|i| views[usize::from(*i)].is_none());
                newcomer.and_then(|n| {
                    let v = views[usize::from(via)].as_mut().unwrap();
                    if !v.add_joining(Member::joining(node(n), ["r"]), &node(via)) {
                        return None;
                    }
                    let mut welcome = v.clone();
                    welcome.mark_seen(&node(n));
                    views[usize::from(n)] = Some(welcome);
                    Some(usize::from(n))
                })
            }
            Op::Gossip { from, to } => {
                let (from, to) = (pick(from), pick(to));
                let g = views[usize::from(from)].clone().unwrap();
                (from != to).then(|| {
                    views[usize::from(to)]
                        .as_mut()
                        .unwrap()
                        .receive(g, &node(to));
                    usize::from(to)
                })
            }
            Op::Status {
                by,
                node: n,
                status,
            } => {
                let by = pick(by);
                let mut targets = others(&views, by);
                targets.push(node(by));
                let target = targets[usize::from(n) % targets.len()].clone();
                let v = views[usize::from(by)].as_mut().unwrap();
                v.set_status(&target, status, &node(by))
                    .then_some(usize::from(by))
            }
            Op::Mark { by, node: n, reach } => {
                let by = pick(by);
                let targets = others(&views, by);
                (!targets.is_empty())
                    .then(|| targets[usize::from(n) % targets.len()].clone())
                    .and_then(|target| {
                        let v = views[usize::from(by)].as_mut().unwrap();
                        v.mark_reachability(&node(by), &target, reach)
                            .then_some(usize::from(by))
                    })
            }
            Op::Remove { by, at } => {
                let by = pick(by);
                let v = views[usize::from(by)].as_mut().unwrap();
                let target = v
                    .members()
                    .find(|m| m.node != node(by) && matches!(m.status, Down | Exiting))
                    .map(|m| m.node.clone());
                target.and_then(|t| v.remove(&t, at, &node(by)).then_some(usize::from(by)))
            }
            Op::Lead { by, at } => {
                let by = pick(by);
                let v = views[usize::from(by)].as_mut().unwrap();
                // Everyone is taken to have seen it, so that the leader acts now and then.
                let all: Vec<_> = v.members().map(|m| m.node.clone()).collect();
                for n in &all {
                    v.mark_seen(n);
                }
                (v.leader_actions(&node(by), at, &none()) || v.weakly_up(&node(by)))
                    .then_some(usize::from(by))
            }
        };
        if let Some(i) = changed {
            seen_views.push(views[i].clone().unwrap());
        }
    }
    seen_views
}

fn history() -> impl Strategy<Value = (Vec<Gossip>, [prop::sample::Index; 3])> {
    (
        proptest::collection::vec(op(), 0..60),
        [
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        ],
    )
        .prop_map(|(ops, picks)| (run(&ops), picks))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_view_of_a_history_keeps_the_invariants((views, _) in history()) {
        for v in &views {
            prop_assert_eq!(v.check(), Ok(()), "{:?}", v);
        }
    }

    #[test]
    fn merge_is_commutative_associative_and_idempotent((views, picks) in history()) {
        let [a, b, c] = picks.map(|i| &views[i.index(views.len())]);
        let ab = a.merge(b);
        prop_assert!(ab.same_state(&b.merge(a)), "{:?}\n{:?}", ab, b.merge(a));
        prop_assert!(ab.merge(c).same_state(&a.merge(&b.merge(c))));
        prop_assert!(a.merge(a).same_state(a), "{:?}", a.merge(a));
        prop_assert_eq!(ab.check(), Ok(()));
    }

    #[test]
    fn merge_loses_nothing_that_was_not_removed((views, picks) in history()) {
        let [a, b, _] = picks.map(|i| &views[i.index(views.len())]);
        let m = a.merge(b);
        for side in [a, b] {
            for (uid, count) in side.version().entries() {
                let removed = m.tombstones().keys().any(|n| n.uid == uid);
                prop_assert!(removed || m.version().get(uid) >= count);
            }
            for member in side.members() {
                match m.member(&member.node) {
                    Some(merged) => prop_assert!(merged.status >= member.status),
                    None => prop_assert!(m.is_tombstoned(&member.node)),
                }
            }
        }
    }

    #[test]
    fn views_with_the_same_clock_are_the_same_view((views, _) in history()) {
        for a in &views {
            for b in &views {
                if a.compare(b) == Causal::Same {
                    prop_assert!(a.same_state(b), "{:?}\n{:?}", a, b);
                }
            }
        }
    }

    #[test]
    fn nodes_with_the_same_converged_view_agree_on_the_leader((views, picks) in history()) {
        let g = &views[picks[0].index(views.len())];
        let members: Vec<_> = g.members().map(|m| m.node.clone()).collect();
        let converged: Vec<_> = members.iter().filter(|m| g.converged(m, &none())).collect();
        let leaders: BTreeSet<_> = converged.iter().map(|m| g.leader(m)).collect();
        prop_assert!(leaders.len() <= 1, "{:?}", leaders);
    }
}
