//! The simulator's promise: the same seed gives the same history, event for event (simulations
//! take turns in a process, see `casty_tests::sim::exclusive`, so nothing perturbs a run).

use casty_tests::sim::{self, Action, Plan};

/// The same seed gives the same history, event for event, with crashes, restarts, partitions
/// and lossy links in it; and the sharded entities' lives and messages handled are the same.
#[test]
fn the_same_seed_gives_the_same_events() {
    let seed = (0..)
        .find(|s| {
            let steps = Plan::random(*s).steps;
            let has = |f: fn(&Action) -> bool| steps.iter().any(|s| f(&s.action));
            has(|a| matches!(a, Action::Crash(_)))
                && has(|a| matches!(a, Action::Restart(_)))
                && has(|a| matches!(a, Action::Isolate { lossy: true, .. }))
                && has(|a| matches!(a, Action::Lossy { .. }))
        })
        .unwrap();
    let plan = Plan::random(seed);
    let (a, b) = (sim::run(&plan), sim::run(&plan));
    assert!(a.failure.is_none(), "{:?}", a.failure);
    assert!(a.events.len() > 20);
    let (ta, tb) = (a.trace(), b.trace());
    if let Some((x, y)) = ta.lines().zip(tb.lines()).find(|(x, y)| x != y) {
        panic!("the runs differ first at:\n{x}\n{y}");
    }
    assert_eq!(ta, tb);
    // The sharded entities, under traffic, live the same lives, to the microsecond.
    assert!(a.lives.len() > 10, "{}", a.lives_trace());
    let (la, lb) = (a.lives_trace(), b.lives_trace());
    if let Some((x, y)) = la.lines().zip(lb.lines()).find(|(x, y)| x != y) {
        panic!("the entities' lives differ first at:\n{x}\n{y}");
    }
    assert_eq!(la, lb);
    assert_eq!(a.handled, b.handled);
}
