//! The membership state that gossip spreads: the members, who reaches whom, which incarnations are
//! gone for good, a vector clock, and who has seen this exact state.
//!
//! # Merging
//! Two views that diverged (their clocks are concurrent) are merged; everything but the `seen` set
//! merges as a join-semilattice, so the result does not depend on the order of merges:
//! - **tombstones** (removed incarnations, with when they were removed) are a union; an incarnation
//!   with a tombstone is never a member again, which is how removals survive merges;
//! - **members**: a member in both views takes the later status and the first up-number
//!   ([`Member::merge`]); a member in one view only stays unless it has a tombstone, or the view
//!   that lacks it has a clock entry for it (that view took in changes the member made, so it
//!   held the member once and removed it: its tombstone was pruned since);
//! - **reachability**: each observer's later row ([`Reachability::merge`]), about members only;
//! - **the clock**: the larger count of each entry.
//!
//! Each change is counted in the clock entry of the member that made it, and only that member
//! counts in its entry, so a clock names exactly the changes a view includes: two views with the
//! same clock are the same view. A removed incarnation keeps its entry for good, even once its
//! tombstone is pruned ([`Gossip::prune_tombstones`]): dropping it would make the pruned view
//! concurrent with every view that still has it, and the next merge would bring the tombstone
//! back. The cost is one entry (about 20 bytes on the wire) per incarnation that ever changed the
//! view.
//!
//! Removing a member always leaves a tombstone, so "a member missing on one side" means "not heard
//! of yet", never "removed", as long as the tombstone lasts; once it is pruned, the clock entry
//! the member leaves if it ever changed the view still tells. A pruned member that never changed
//! a view leaves no trace, and a view from before its removal, still concurrent with the pruned
//! one, would bring it back: `tombstone_ttl` must outlast any such view. (Akka's gossip also drops
//! a member that one side holds as Down or Exiting and the other lacks; casty relies on the
//! tombstone and the clock entry alone, which depend on neither side's statuses: that is what
//! keeps the merge associative.)
//!
//! `seen` belongs to one exact version: every local change and every merge resets it, and two views
//! with the same clock pool their `seen` sets.
//!
//! # Convergence and the leader
//! A view has *converged* when every member that counts has seen it and no member that is not on
//! its way out is unreachable (see [`Gossip::converged`]). The *leader* is the first reachable Up or
//! Leaving member in address order ([`Gossip::leader`]); it moves members on
//! ([`Gossip::leader_actions`]) only at convergence, so two nodes with the same converged view
//! make the same moves.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::member::{Member, MemberStatus, UniqueAddress, NOT_UP};
use super::reachability::{Reach, Reachability};
use super::vclock::{Causal, VectorClock};

/// One node's view of the cluster.
///
/// # Examples
///
/// ```
/// use casty::cluster::{Gossip, Member, MemberStatus};
/// # use casty::cluster::UniqueAddress;
/// # use casty::remote::NodeAddress;
/// # let node = |port, uid| UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", port), uid);
/// let (a, b) = (node(1, 11), node(2, 22));
/// let mut g = Gossip::default();
/// g.add_joining(Member::joining(a.clone(), ["web"]), &a);
/// g.add_joining(Member::joining(b.clone(), ["web"]), &a);
/// g.mark_seen(&b);
/// // Nobody is Up yet, so everyone must have seen the view; then a, first in address order, leads.
/// assert!(g.converged(&a, &Default::default()));
/// assert_eq!(g.leader(&a), Some(a.clone()));
/// assert!(g.leader_actions(&a, 0, &Default::default()));
/// assert_eq!(g.member(&b).unwrap().status, MemberStatus::Up);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gossip {
    members: BTreeMap<UniqueAddress, Member>,
    reachability: Reachability,
    /// Removed incarnations, with the wall-clock time (ms) of their removal.
    tombstones: BTreeMap<UniqueAddress, u64>,
    version: VectorClock,
    seen: BTreeSet<UniqueAddress>,
}

/// What receiving a gossip did to the local view (see [`Gossip::receive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The same version: only the `seen` sets were pooled.
    Same,
    /// The received view was older; the local one stands.
    Older,
    /// The received view was newer and replaced the local one.
    Newer,
    /// The two had diverged and were merged.
    Merged,
}

impl Gossip {
    /// The members, in address order.
    pub fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.values()
    }

    /// The member `node`, if it is one.
    pub fn member(&self, node: &UniqueAddress) -> Option<&Member> {
        self.members.get(node)
    }

    /// The member at `node`'s `host:port`, whatever its incarnation.
    pub fn member_at(&self, node: &UniqueAddress) -> Option<&Member> {
        self.members.values().find(|m| m.node.same_node(node))
    }

    /// Who reaches whom.
    pub fn reachability(&self) -> &Reachability {
        &self.reachability
    }

    /// The vector clock of this view.
    pub fn version(&self) -> &VectorClock {
        &self.version
    }

    /// Who has seen this exact version.
    pub fn seen(&self) -> &BTreeSet<UniqueAddress> {
        &self.seen
    }

    /// Whether `node` is a removed incarnation.
    pub fn is_tombstoned(&self, node: &UniqueAddress) -> bool {
        self.tombstones.contains_key(node)
    }

    /// The removed incarnations, with the time (ms) of their removal.
    pub fn tombstones(&self) -> &BTreeMap<UniqueAddress, u64> {
        &self.tombstones
    }

    /// How this view's version relates to `other`'s.
    pub fn compare(&self, other: &Gossip) -> Causal {
        self.version.compare(&other.version)
    }

    /// Records that `node` has seen this version.
    pub fn mark_seen(&mut self, node: &UniqueAddress) {
        if self.members.contains_key(node) {
            self.seen.insert(node.clone());
        }
    }

    /// A local change by `by`: a new version, seen by `by` alone.
    fn changed(&mut self, by: &UniqueAddress) {
        self.version.increment(by.uid);
        self.seen.clear();
        self.mark_seen(by);
    }

    /// Adds a member asking to join, as written by `by`. Refused (`false`) for an incarnation
    /// that was removed already, and while any incarnation at its `host:port` is a member.
    pub fn add_joining(&mut self, member: Member, by: &UniqueAddress) -> bool {
        if self.member_at(&member.node).is_some() || self.is_tombstoned(&member.node) {
            return false;
        }
        let node = member.node.clone();
        self.members
            .insert(node, member.with_status(MemberStatus::Joining));
        self.changed(by);
        true
    }

    /// Moves `node` to `status`, as written by `by`, if that is a move allowed from its status.
    /// `Removed` is [`Gossip::remove`].
    pub fn set_status(
        &mut self,
        node: &UniqueAddress,
        status: MemberStatus,
        by: &UniqueAddress,
    ) -> bool {
        if status == MemberStatus::Removed {
            return false;
        }
        match self.members.get_mut(node) {
            Some(m) if m.status.can_become(status) => {
                m.status = status;
                self.changed(by);
                true
            }
            _ => false,
        }
    }

    /// Records `by`'s verdict on `subject`. Only `by` writes its own row.
    pub fn mark_reachability(
        &mut self,
        by: &UniqueAddress,
        subject: &UniqueAddress,
        to: Reach,
    ) -> bool {
        if !self.members.contains_key(by) || !self.members.contains_key(subject) {
            return false;
        }
        if self.reachability.mark(by, subject, to) {
            self.changed(by);
            true
        } else {
            false
        }
    }

    /// Removes `node` from the cluster for good, as written by `by`, at wall-clock `now_ms`: it
    /// leaves a tombstone, and loses its reachability marks and its `seen`.
    pub fn remove(&mut self, node: &UniqueAddress, now_ms: u64, by: &UniqueAddress) -> bool {
        if !self.tombstone(node, now_ms) {
            return false;
        }
        self.changed(by);
        true
    }

    fn tombstone(&mut self, node: &UniqueAddress, now_ms: u64) -> bool {
        if self.members.remove(node).is_none() {
            return false;
        }
        self.tombstones.insert(node.clone(), now_ms);
        self.reachability.forget(node);
        true
    }

    /// Forgets the tombstones of incarnations removed before `before_ms`, as written by `by`: the
    /// leader does this once a removal is old enough that no view still holding the member can be
    /// around. Their clock entries stay (see the module documentation). Returns whether anything
    /// was pruned.
    pub fn prune_tombstones(&mut self, before_ms: u64, by: &UniqueAddress) -> bool {
        let old: Vec<UniqueAddress> = self
            .tombstones
            .iter()
            .filter(|(_, at)| **at < before_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &old {
            self.tombstones.remove(n);
        }
        if !old.is_empty() {
            self.changed(by);
        }
        !old.is_empty()
    }

    /// The two views combined (see the module documentation); seen by no one yet.
    pub fn merge(&self, other: &Gossip) -> Gossip {
        let mut tombstones = self.tombstones.clone();
        for (node, at) in &other.tombstones {
            let e = tombstones.entry(node.clone()).or_insert(*at);
            *e = (*e).max(*at);
        }
        // A member one view lacks although that view counts changes by it was removed there,
        // and its tombstone has been pruned since: it stays out (see the module documentation).
        let removed_in = |view: &Gossip, node: &UniqueAddress| {
            !view.members.contains_key(node) && view.version.get(node.uid) > 0
        };
        let mut members = BTreeMap::new();
        for (node, m) in self.members.iter().chain(other.members.iter()) {
            if tombstones.contains_key(node) || removed_in(self, node) || removed_in(other, node) {
                continue;
            }
            members
                .entry(node.clone())
                .and_modify(|e: &mut Member| *e = e.merge(m))
                .or_insert_with(|| m.clone());
        }
        let allowed: BTreeSet<UniqueAddress> = members.keys().cloned().collect();
        let reachability = self.reachability.merge(&other.reachability, &allowed);
        Gossip {
            members,
            reachability,
            tombstones,
            version: self.version.merge(&other.version),
            seen: BTreeSet::new(),
        }
    }

    /// Takes in a view received from another node, as seen by `me`: the newer of the two stands,
    /// or their merge if they diverged; either way `me` has seen the result.
    pub fn receive(&mut self, other: Gossip, me: &UniqueAddress) -> Received {
        let received = match self.compare(&other) {
            Causal::Same => {
                for n in &other.seen {
                    self.mark_seen(n);
                }
                Received::Same
            }
            Causal::After => Received::Older,
            Causal::Before => {
                *self = other;
                Received::Newer
            }
            Causal::Concurrent => {
                *self = self.merge(&other);
                Received::Merged
            }
        };
        self.mark_seen(me);
        received
    }

    /// Whether everything but `seen` is equal.
    pub fn same_state(&self, other: &Gossip) -> bool {
        self.members == other.members
            && self
                .members
                .values()
                .zip(other.members.values())
                .all(|(a, b)| {
                    (a.status, a.up_number, &a.roles) == (b.status, b.up_number, &b.roles)
                })
            && self.reachability == other.reachability
            && self.tombstones == other.tombstones
            && self.version == other.version
    }

    /// Whether `node` is reachable, counting only the marks of observers that are not Down or
    /// Exiting: those stop soon, and their marks would never be taken back.
    pub fn is_reachable(&self, node: &UniqueAddress) -> bool {
        self.reachability.is_reachable_by(node, |observer| {
            self.members
                .get(observer)
                .is_some_and(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Exiting))
        })
    }

    /// Whether this view has converged, as `me` sees it: every member that counts has seen it,
    /// and every unreachable member is on its way out.
    ///
    /// Members that count are those Up or Leaving; while there is none (a cluster forming), the
    /// Joining and WeaklyUp ones too. A member that confirmed its exit (`exiting_confirmed`) no
    /// longer has to see anything. An unreachable member (by the marks of observers that are not
    /// Down) blocks convergence unless it is Down or Exiting; `me` and members that confirmed their
    /// exit never block it.
    pub fn converged(
        &self,
        me: &UniqueAddress,
        exiting_confirmed: &BTreeSet<UniqueAddress>,
    ) -> bool {
        use MemberStatus::*;
        let forming = !self.members.values().any(|m| m.status.is_up_or_leaving());
        let unreachable_block = self.members.values().any(|m| {
            m.node != *me
                && !exiting_confirmed.contains(&m.node)
                && !matches!(m.status, Down | Exiting)
                && !self.is_reachable(&m.node)
        });
        if unreachable_block {
            return false;
        }
        self.members.values().all(|m| {
            let counts = match m.status {
                Up | Leaving => true,
                Joining | WeaklyUp => forming,
                Exiting | Down | Removed => false,
            };
            !counts || self.seen.contains(&m.node) || exiting_confirmed.contains(&m.node)
        })
    }

    /// The leader as `me` sees it: the first member in address order that is Up or Leaving and
    /// reachable (`me` counts itself reachable). While no such member exists, the first by status
    /// (WeaklyUp, then Joining, then Exiting) and address. Down members never lead.
    pub fn leader(&self, me: &UniqueAddress) -> Option<UniqueAddress> {
        use MemberStatus::*;
        let candidates = self
            .members
            .values()
            .filter(|m| m.status != Down && (m.node == *me || self.is_reachable(&m.node)));
        let rank = |m: &Member| match m.status {
            Up | Leaving => 0,
            WeaklyUp => 1,
            Joining => 2,
            Exiting | Down | Removed => 3,
        };
        candidates
            .min_by(|a, b| (rank(a), &a.node).cmp(&(rank(b), &b.node)))
            .map(|m| m.node.clone())
    }

    /// The leader's moves at convergence, made by `me` if it is the leader, in one change: Joining
    /// and WeaklyUp members become Up (numbered after the youngest Up member, in address order),
    /// Leaving ones Exiting, and members that are Down or Exiting and unreachable, or that confirmed
    /// their exit, are removed (tombstoned at `now_ms`). Returns whether anything changed.
    ///
    /// A Down member that is still reachable is not removed: it has to stop first.
    pub fn leader_actions(
        &mut self,
        me: &UniqueAddress,
        now_ms: u64,
        exiting_confirmed: &BTreeSet<UniqueAddress>,
    ) -> bool {
        use MemberStatus::*;
        if self.leader(me).as_ref() != Some(me) || !self.converged(me, exiting_confirmed) {
            return false;
        }
        let mut next_up = self
            .members
            .values()
            .filter(|m| m.up_number != NOT_UP)
            .map(|m| m.up_number)
            .max()
            .map_or(1, |n| n.saturating_add(1));
        let contested = self.contested();
        let mut changed = false;
        let mut removals = Vec::new();
        for m in self.members.values_mut() {
            match m.status {
                // Not while another incarnation of its address is in the view and not down: one of
                // the two is a dead one, which downing removes first.
                Joining | WeaklyUp if contested.contains(&m.node) => {}
                Joining | WeaklyUp => {
                    m.status = Up;
                    m.up_number = next_up;
                    next_up = next_up.saturating_add(1);
                    changed = true;
                }
                Leaving => {
                    m.status = Exiting;
                    changed = true;
                }
                Down | Exiting => {
                    let gone = self.reachability.status(&m.node) != Reach::Reachable;
                    if gone || exiting_confirmed.contains(&m.node) {
                        removals.push(m.node.clone());
                    }
                }
                Up | Removed => {}
            }
        }
        for node in &removals {
            changed |= self.tombstone(node, now_ms);
        }
        if changed {
            self.changed(me);
        }
        changed
    }

    /// Members that share their address with another incarnation in the view that is not Down.
    fn contested(&self) -> BTreeSet<UniqueAddress> {
        let live: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.status != MemberStatus::Down)
            .collect();
        live.iter()
            .filter(|m| {
                live.iter()
                    .any(|o| o.node != m.node && o.node.same_node(&m.node))
            })
            .map(|m| m.node.clone())
            .collect()
    }

    /// Moves Joining members that are reachable to WeaklyUp, as the leader `me` does when the view
    /// has not converged for a while. Returns whether anything changed.
    pub fn weakly_up(&mut self, me: &UniqueAddress) -> bool {
        if self.leader(me).as_ref() != Some(me) {
            return false;
        }
        let contested = self.contested();
        let joining: Vec<UniqueAddress> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Joining && self.is_reachable(&m.node))
            .filter(|m| !contested.contains(&m.node))
            .map(|m| m.node.clone())
            .collect();
        for node in &joining {
            if let Some(m) = self.members.get_mut(node) {
                m.status = MemberStatus::WeaklyUp;
            }
        }
        if !joining.is_empty() {
            self.changed(me);
        }
        !joining.is_empty()
    }

    /// Checks the invariants every view keeps, naming the first one broken: no member is
    /// Removed or tombstoned; `seen`, reachability observers and subjects are members; no count
    /// is implausibly high; at most one incarnation per `host:port`.
    pub fn check(&self) -> Result<(), String> {
        for m in self.members.values() {
            if m.status == MemberStatus::Removed {
                return Err(format!("{} is a Removed member", m.node));
            }
            if self.is_tombstoned(&m.node) {
                return Err(format!("{} is a member and tombstoned", m.node));
            }
        }
        if let Some(n) = self.seen.iter().find(|n| !self.members.contains_key(*n)) {
            return Err(format!("{n} has seen the view but is no member"));
        }
        for (o, s, _) in self.reachability.records() {
            if !self.members.contains_key(o) || !self.members.contains_key(s) {
                return Err(format!(
                    "a reachability mark by {o} about {s} names a non-member"
                ));
            }
        }
        // No node makes 2^62 changes: a count that high was made up, and would overflow.
        const IMPLAUSIBLE: u64 = 1 << 62;
        if let Some((uid, n)) = self.version.entries().find(|(_, n)| *n >= IMPLAUSIBLE) {
            return Err(format!("the clock counts {n} changes by uid {uid}"));
        }
        if let Some((o, n)) = self
            .reachability
            .versions()
            .find(|(_, n)| *n >= IMPLAUSIBLE)
        {
            return Err(format!("the reachability table counts {n} writes by {o}"));
        }
        // Two incarnations of one address may both be in a view for a while (each joined through
        // a different member, or a different side of a partition, and the views merged), but at
        // most one of them is ever Up: moving a member Up takes convergence, and a leader that
        // sees two incarnations of one address moves neither.
        let moved_on: Vec<&UniqueAddress> = self
            .members
            .values()
            .filter(|m| {
                matches!(
                    m.status,
                    MemberStatus::Up | MemberStatus::Leaving | MemberStatus::Exiting
                )
            })
            .map(|m| &m.node)
            .collect();
        for w in moved_on.windows(2) {
            if w[0].same_node(w[1]) {
                return Err(format!("{} and {} share an address", w[0], w[1]));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
