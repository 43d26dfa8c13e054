//! Vector clocks: which versions of the membership a node's view includes.
//!
//! Each entry counts the changes one member has made, keyed by that member's incarnation uid. A
//! missing entry counts as zero. Comparing two clocks tells whether one view includes the other
//! (then the newer one is simply kept) or whether they diverged (then they are merged).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How two clocks relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causal {
    /// Equal.
    Same,
    /// The first is older: the second includes every change it has, and more.
    Before,
    /// The first is newer.
    After,
    /// Each has changes the other lacks.
    Concurrent,
}

/// A vector clock over member incarnations.
///
/// # Examples
///
/// ```
/// use casty::cluster::{Causal, VectorClock};
/// let mut a = VectorClock::new();
/// a.increment(1);
/// let mut b = a.clone();
/// b.increment(2);
/// assert_eq!(a.compare(&b), Causal::Before);
/// a.increment(1);
/// assert_eq!(a.compare(&b), Causal::Concurrent);
/// let m = a.merge(&b);
/// assert_eq!((m.get(1), m.get(2)), (2, 1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VectorClock {
    entries: BTreeMap<u64, u64>,
}

impl VectorClock {
    /// The clock of no change at all.
    pub fn new() -> Self {
        VectorClock::default()
    }

    /// Counts one more change by `node`.
    pub fn increment(&mut self, node: u64) {
        let e = self.entries.entry(node).or_insert(0);
        *e = e.saturating_add(1);
    }

    /// How many changes by `node` this clock includes.
    pub fn get(&self, node: u64) -> u64 {
        self.entries.get(&node).copied().unwrap_or(0)
    }

    /// The entries, in uid order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, *v))
    }

    /// How `self` relates to `other`.
    pub fn compare(&self, other: &VectorClock) -> Causal {
        let (mut less, mut greater) = (false, false);
        let mut a = self.entries.iter().peekable();
        let mut b = other.entries.iter().peekable();
        loop {
            let (x, y) = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((_, &x)), None) => {
                    a.next();
                    (x, 0)
                }
                (None, Some((_, &y))) => {
                    b.next();
                    (0, y)
                }
                (Some((ka, &x)), Some((kb, &y))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        a.next();
                        (x, 0)
                    }
                    std::cmp::Ordering::Greater => {
                        b.next();
                        (0, y)
                    }
                    std::cmp::Ordering::Equal => {
                        a.next();
                        b.next();
                        (x, y)
                    }
                },
            };
            less |= x < y;
            greater |= x > y;
            if less && greater {
                return Causal::Concurrent;
            }
        }
        match (less, greater) {
            (false, false) => Causal::Same,
            (true, false) => Causal::Before,
            (false, true) => Causal::After,
            (true, true) => Causal::Concurrent,
        }
    }

    /// Whether the two clocks include a change by the same node: views that share some history
    /// (those of one cluster do, those of two clusters formed apart do not).
    pub fn shares_history(&self, other: &VectorClock) -> bool {
        self.entries
            .iter()
            .any(|(k, v)| *v > 0 && other.get(*k) > 0)
    }

    /// The smallest clock that includes both: the larger count of each entry.
    pub fn merge(&self, other: &VectorClock) -> VectorClock {
        let mut entries = self.entries.clone();
        for (k, v) in &other.entries {
            let e = entries.entry(*k).or_insert(0);
            *e = (*e).max(*v);
        }
        VectorClock { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clock() -> impl Strategy<Value = VectorClock> {
        proptest::collection::btree_map(0u64..6, 0u64..4, 0..6).prop_map(|mut entries| {
            // A zero entry is the same as none: keep the representation canonical.
            entries.retain(|_, v| *v > 0);
            VectorClock { entries }
        })
    }

    fn pointwise(a: &VectorClock, b: &VectorClock) -> Causal {
        let keys: std::collections::BTreeSet<u64> =
            a.entries.keys().chain(b.entries.keys()).copied().collect();
        let le = keys.iter().all(|k| a.get(*k) <= b.get(*k));
        let ge = keys.iter().all(|k| a.get(*k) >= b.get(*k));
        match (le, ge) {
            (true, true) => Causal::Same,
            (true, false) => Causal::Before,
            (false, true) => Causal::After,
            (false, false) => Causal::Concurrent,
        }
    }

    #[test]
    fn clocks_share_history_only_through_a_change_by_the_same_node() {
        let mut a = VectorClock::new();
        a.increment(1);
        let mut b = a.clone();
        b.increment(2);
        let mut apart = VectorClock::new();
        apart.increment(3);
        assert!(a.shares_history(&b) && b.shares_history(&a));
        assert!(!a.shares_history(&apart) && !VectorClock::new().shares_history(&a));
    }

    proptest! {
        #[test]
        fn compare_is_the_pointwise_order(a in clock(), b in clock()) {
            prop_assert_eq!(a.compare(&b), pointwise(&a, &b));
            let flipped = match a.compare(&b) {
                Causal::Before => Causal::After,
                Causal::After => Causal::Before,
                c => c,
            };
            prop_assert_eq!(b.compare(&a), flipped);
        }

        #[test]
        fn merge_is_the_least_upper_bound(a in clock(), b in clock(), c in clock()) {
            let m = a.merge(&b);
            prop_assert_eq!(&m, &b.merge(&a));
            prop_assert_eq!(a.merge(&a), a.clone());
            prop_assert_eq!(m.merge(&c), a.merge(&b.merge(&c)));
            prop_assert!(matches!(a.compare(&m), Causal::Before | Causal::Same));
            prop_assert!(matches!(b.compare(&m), Causal::Before | Causal::Same));
        }

        #[test]
        fn an_increment_makes_a_clock_newer(a in clock(), node in 0u64..8) {
            let mut b = a.clone();
            b.increment(node);
            prop_assert_eq!(a.compare(&b), Causal::Before);
        }
    }
}
