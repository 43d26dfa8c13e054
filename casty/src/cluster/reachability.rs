//! Who can reach whom: each member's own verdicts on the members it watches.
//!
//! A *row* belongs to one observer and lists the members it cannot reach, each `Unreachable` (its
//! failure detector gave up on it) or `Terminated` (that incarnation is known to be gone: quarantined,
//! or replaced by a new incarnation on its address). Members it reaches are simply absent, so a
//! cluster where all is well has no rows at all.
//!
//! Only the observer writes its own row, and every write bumps that observer's *version*. So when
//! two views of the table disagree about a row, the one with the higher version is the later one,
//! and merging keeps it whole. That makes merge commutative, associative and idempotent: gossip can
//! combine views in any order and still agree.
//!
//! The *aggregate* status of a member is the worst any observer reports: Terminated, else
//! Unreachable, else Reachable. A member is therefore reachable again only once **every** observer
//! that marked it has taken its mark back, or that observer has left the table (it was removed).
//! `Terminated` is final: an observer never takes it back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::member::UniqueAddress;

/// One observer's verdict on one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reach {
    /// It answers.
    Reachable,
    /// It stopped answering; it may come back.
    Unreachable,
    /// That incarnation is gone for good.
    Terminated,
}

/// The reachability table carried in gossip.
///
/// # Examples
///
/// ```
/// use casty::cluster::{Reach, Reachability, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = |port, uid| UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", port), uid);
/// let (a, b, c) = (node(1, 1), node(2, 2), node(3, 3));
/// let mut r = Reachability::default();
/// r.mark(&a, &c, Reach::Unreachable);
/// r.mark(&b, &c, Reach::Unreachable);
/// r.mark(&a, &c, Reach::Reachable);
/// // b still cannot reach c, so c is still unreachable.
/// assert_eq!(r.status(&c), Reach::Unreachable);
/// r.mark(&b, &c, Reach::Reachable);
/// assert!(r.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// observer → (subject → Unreachable | Terminated). No empty rows.
    rows: BTreeMap<UniqueAddress, BTreeMap<UniqueAddress, Reach>>,
    /// observer → how many times it has written its row.
    versions: BTreeMap<UniqueAddress, u64>,
}

impl Reachability {
    /// Records `observer`'s verdict on `subject`. Returns whether the table changed: writing the
    /// verdict a member already has changes nothing, and nothing overrides `Terminated`.
    pub fn mark(&mut self, observer: &UniqueAddress, subject: &UniqueAddress, to: Reach) -> bool {
        if observer == subject {
            return false;
        }
        let now = self
            .rows
            .get(observer)
            .and_then(|row| row.get(subject))
            .copied()
            .unwrap_or(Reach::Reachable);
        if now == to || now == Reach::Terminated {
            return false;
        }
        let v = self.versions.entry(observer.clone()).or_insert(0);
        *v = v.saturating_add(1);
        if to == Reach::Reachable {
            if let Some(row) = self.rows.get_mut(observer) {
                row.remove(subject);
                if row.is_empty() {
                    self.rows.remove(observer);
                }
            }
        } else {
            self.rows
                .entry(observer.clone())
                .or_default()
                .insert(subject.clone(), to);
        }
        true
    }

    /// `observer`'s verdict on `subject`.
    pub fn verdict(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> Reach {
        self.rows
            .get(observer)
            .and_then(|row| row.get(subject))
            .copied()
            .unwrap_or(Reach::Reachable)
    }

    /// The worst verdict any observer holds on `subject`.
    pub fn status(&self, subject: &UniqueAddress) -> Reach {
        self.rows
            .values()
            .filter_map(|row| row.get(subject))
            .copied()
            .max()
            .unwrap_or(Reach::Reachable)
    }

    /// Whether no observer holds `subject` unreachable or terminated.
    pub fn is_reachable(&self, subject: &UniqueAddress) -> bool {
        self.status(subject) == Reach::Reachable
    }

    /// The same, counting only observers for which `counts` holds (for instance, leaving out
    /// observers that are Down).
    pub fn is_reachable_by(
        &self,
        subject: &UniqueAddress,
        mut counts: impl FnMut(&UniqueAddress) -> bool,
    ) -> bool {
        !self
            .rows
            .iter()
            .any(|(observer, row)| row.contains_key(subject) && counts(observer))
    }

    /// Every member some observer holds unreachable or terminated.
    pub fn unreachable(&self) -> BTreeSet<UniqueAddress> {
        self.rows
            .values()
            .flat_map(|row| row.keys())
            .cloned()
            .collect()
    }

    /// The observers holding `subject` unreachable or terminated.
    pub fn observers_of(&self, subject: &UniqueAddress) -> BTreeSet<UniqueAddress> {
        self.rows
            .iter()
            .filter(|(_, row)| row.contains_key(subject))
            .map(|(observer, _)| observer.clone())
            .collect()
    }

    /// Every mark: (observer, subject, verdict), by observer then subject.
    pub fn records(&self) -> impl Iterator<Item = (&UniqueAddress, &UniqueAddress, Reach)> + '_ {
        self.rows
            .iter()
            .flat_map(|(o, row)| row.iter().map(move |(s, r)| (o, s, *r)))
    }

    /// Whether there is no mark at all.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every observer's version, by observer.
    pub fn versions(&self) -> impl Iterator<Item = (&UniqueAddress, u64)> + '_ {
        self.versions.iter().map(|(o, v)| (o, *v))
    }

    /// How many times `observer` has written its row.
    pub fn version(&self, observer: &UniqueAddress) -> u64 {
        self.versions.get(observer).copied().unwrap_or(0)
    }

    /// Forgets everything by or about `node`, once it has left the cluster.
    pub fn forget(&mut self, node: &UniqueAddress) {
        self.rows.remove(node);
        self.versions.remove(node);
        self.rows.retain(|_, row| {
            row.remove(node);
            !row.is_empty()
        });
    }

    /// Combines two views: for each observer in `allowed` (the members of the merged view), the
    /// row of the view that has seen more of that observer's writes; marks about members outside
    /// `allowed` are left out. Commutative, associative and idempotent for views that only their
    /// observers wrote.
    pub fn merge(&self, other: &Reachability, allowed: &BTreeSet<UniqueAddress>) -> Reachability {
        let mut merged = Reachability::default();
        for observer in allowed {
            let (va, vb) = (self.version(observer), other.version(observer));
            if va == 0 && vb == 0 {
                continue;
            }
            let row = match va.cmp(&vb) {
                std::cmp::Ordering::Greater => self.rows.get(observer).cloned(),
                std::cmp::Ordering::Less => other.rows.get(observer).cloned(),
                // The same writes: the same row. Taken as the worst of both all the same, so that
                // merge stays commutative whatever it is given.
                std::cmp::Ordering::Equal => {
                    let mut row = self.rows.get(observer).cloned().unwrap_or_default();
                    for (s, r) in other.rows.get(observer).into_iter().flatten() {
                        let e = row.entry(s.clone()).or_insert(*r);
                        *e = (*e).max(*r);
                    }
                    Some(row)
                }
            };
            merged.versions.insert(observer.clone(), va.max(vb));
            if let Some(mut row) = row {
                row.retain(|s, _| allowed.contains(s));
                if !row.is_empty() {
                    merged.rows.insert(observer.clone(), row);
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::NodeAddress;

    fn node(n: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", n), u64::from(n))
    }

    #[test]
    fn a_member_is_reachable_again_only_when_every_observer_takes_its_mark_back() {
        let (a, b, c) = (node(1), node(2), node(3));
        let mut r = Reachability::default();
        assert!(r.mark(&a, &c, Reach::Unreachable));
        assert!(r.mark(&b, &c, Reach::Unreachable));
        assert_eq!(r.observers_of(&c), [a.clone(), b.clone()].into());
        assert!(r.mark(&a, &c, Reach::Reachable));
        assert_eq!(r.status(&c), Reach::Unreachable);
        assert!(r.is_reachable_by(&c, |o| *o != b));
        assert!(r.mark(&b, &c, Reach::Reachable));
        assert!(r.is_reachable(&c) && r.is_empty());
        assert_eq!((r.version(&a), r.version(&b)), (2, 2));
    }

    #[test]
    fn terminated_is_final_and_repeated_verdicts_change_nothing() {
        let (a, c) = (node(1), node(3));
        let mut r = Reachability::default();
        assert!(r.mark(&a, &c, Reach::Unreachable));
        assert!(!r.mark(&a, &c, Reach::Unreachable));
        assert!(r.mark(&a, &c, Reach::Terminated));
        assert!(!r.mark(&a, &c, Reach::Reachable));
        assert!(!r.mark(&a, &a, Reach::Unreachable));
        assert_eq!((r.status(&c), r.version(&a)), (Reach::Terminated, 2));
    }

    #[test]
    fn merge_keeps_the_later_row_of_each_observer_and_only_allowed_members() {
        let (a, b, c, d) = (node(1), node(2), node(3), node(4));
        let mut old = Reachability::default();
        old.mark(&a, &c, Reach::Unreachable);
        let mut new = old.clone();
        new.mark(&a, &c, Reach::Reachable);
        new.mark(&b, &d, Reach::Unreachable);
        let all: BTreeSet<_> = [a.clone(), b.clone(), c.clone(), d.clone()].into();
        let merged = old.merge(&new, &all);
        assert_eq!(merged, new.merge(&old, &all));
        // a's later write took its mark back; b's mark on d is new.
        assert!(merged.is_reachable(&c));
        assert_eq!(merged.status(&d), Reach::Unreachable);
        // d removed: marks about it go.
        let without_d: BTreeSet<_> = [a.clone(), b.clone(), c.clone()].into();
        assert!(old.merge(&new, &without_d).is_empty());
    }
}
