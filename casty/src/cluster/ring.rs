//! Which members a node sends heartbeats to: a ring over the members, each watching the next few.
//!
//! Heartbeating every member from every member costs n² messages; instead each node watches only
//! the next `k` members clockwise on a ring, so each node is watched by `k` others and the load
//! stays `k·n`. The ring must be the same on every node, and must not put neighbours in address
//! order next to each other (a rack or a host tends to hold consecutive addresses, and losing it
//! should not take all the observers of a node with it), so members are placed by a hash of their
//! incarnation: FNV-1a 64 over the address text and the uid's little-endian bytes, written out
//! here so that it is the same on every node and every build, with ties broken by address order.
//!
//! Invariants of [`HeartbeatRing`]:
//! - the ring holds the node itself and the members given, each once, whatever order or
//!   duplicates the members came in; a node is never its own receiver;
//! - walking clockwise from a node, unreachable members met before `k` reachable ones are found
//!   are receivers too but do not count towards `k`, so `k` reachable members are watched for as
//!   long as there are that many (a member that stopped answering does not leave a gap), and an
//!   unreachable member stays watched by someone, so it can be seen again;
//! - when `k ≥ n − 1` every node watches every other.
//!
//! The ring is rebuilt from scratch on every membership or reachability change; that is rare,
//! and a rebuilt ring cannot disagree with the inputs it came from.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use super::member::UniqueAddress;

/// The ring of members a node heartbeats, and the inverse: who heartbeats whom.
///
/// # Examples
///
/// ```
/// use casty::cluster::{HeartbeatRing, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let node = |port| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", port), 1);
/// let members: Vec<_> = (1..=6).map(node).collect();
/// let ring = HeartbeatRing::new(node(1), members.clone(), [], 2);
/// assert_eq!(ring.receivers().len(), 2);
/// assert!(!ring.receivers().contains(&node(1)));
/// // Everyone is watched by exactly k others.
/// for m in &members {
///     assert_eq!(ring.observers_of(m).len(), 2);
/// }
/// // With k ≥ n − 1, everyone watches everyone.
/// let all = HeartbeatRing::new(node(1), members, [], 5);
/// assert_eq!(all.receivers().len(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct HeartbeatRing {
    self_node: UniqueAddress,
    /// Every node with its place, in ring order: by hash, then address.
    ring: Vec<(u64, UniqueAddress)>,
    unreachable: BTreeSet<UniqueAddress>,
    k: usize,
    /// The receivers of `self_node`, computed once.
    receivers: BTreeSet<UniqueAddress>,
}

impl HeartbeatRing {
    /// How many reachable members watch each member unless configured otherwise.
    pub const DEFAULT_MONITORED_BY: usize = 5;

    /// The ring of `self_node` and `members`, where the members in `unreachable` do not count
    /// towards the `k` receivers of a node. `self_node` is placed on the ring whether or not
    /// `members` names it; unreachable nodes that are not members are ignored.
    pub fn new(
        self_node: UniqueAddress,
        members: impl IntoIterator<Item = UniqueAddress>,
        unreachable: impl IntoIterator<Item = UniqueAddress>,
        k: usize,
    ) -> Self {
        let mut nodes: BTreeSet<UniqueAddress> = members.into_iter().collect();
        nodes.insert(self_node.clone());
        let unreachable = unreachable
            .into_iter()
            .filter(|n| nodes.contains(n))
            .collect();
        let mut ring: Vec<(u64, UniqueAddress)> =
            nodes.into_iter().map(|n| (ring_hash(&n), n)).collect();
        ring.sort_unstable();
        let mut this = HeartbeatRing {
            self_node,
            ring,
            unreachable,
            k,
            receivers: BTreeSet::new(),
        };
        this.receivers = this.receivers_of(&this.self_node);
        this
    }

    /// The node whose ring this is.
    pub fn self_node(&self) -> &UniqueAddress {
        &self.self_node
    }

    /// How many reachable receivers each node looks for.
    pub fn monitored_by(&self) -> usize {
        self.k
    }

    /// Every node on the ring, in ring order (not address order).
    pub fn nodes(&self) -> impl Iterator<Item = &UniqueAddress> + '_ {
        self.ring.iter().map(|(_, n)| n)
    }

    /// Whether `node` is on the ring.
    pub fn contains(&self, node: &UniqueAddress) -> bool {
        self.position(node).is_some()
    }

    /// Whether `node` is on the ring and was given as unreachable.
    pub fn is_unreachable(&self, node: &UniqueAddress) -> bool {
        self.unreachable.contains(node)
    }

    /// The members this node heartbeats.
    pub fn receivers(&self) -> &BTreeSet<UniqueAddress> {
        &self.receivers
    }

    /// The members `node` heartbeats; empty if `node` is not on the ring.
    pub fn receivers_of(&self, node: &UniqueAddress) -> BTreeSet<UniqueAddress> {
        let mut out = BTreeSet::new();
        let Some(pos) = self.position(node) else {
            return out;
        };
        let n = self.ring.len();
        if self.k >= n - 1 {
            out.extend(self.nodes().filter(|m| *m != node).cloned());
            return out;
        }
        let mut wanted = self.k;
        for step in 1..n {
            if wanted == 0 {
                break;
            }
            let next = &self.ring[(pos + step) % n].1;
            out.insert(next.clone());
            if !self.unreachable.contains(next) {
                wanted -= 1;
            }
        }
        out
    }

    /// The members that heartbeat `node`: its observers. Empty if `node` is not on the ring.
    /// Costs a walk from every node, O(n·k).
    pub fn observers_of(&self, node: &UniqueAddress) -> BTreeSet<UniqueAddress> {
        if !self.contains(node) {
            return BTreeSet::new();
        }
        self.nodes()
            .filter(|m| *m != node && self.receivers_of(m).contains(node))
            .cloned()
            .collect()
    }

    fn position(&self, node: &UniqueAddress) -> Option<usize> {
        let key = (ring_hash(node), node);
        self.ring.binary_search_by(|(h, n)| (*h, n).cmp(&key)).ok()
    }
}

/// The place of an incarnation on the ring: FNV-1a 64 over its address as text
/// (`casty://system@host:port`) followed by its uid as 8 little-endian bytes.
fn ring_hash(node: &UniqueAddress) -> u64 {
    let mut h = Fnv1a64::new();
    // Writing into the hasher cannot fail.
    let _ = write!(h, "{}", node.address);
    h.bytes(&node.uid.to_le_bytes());
    h.0
}

/// FNV-1a, 64 bits: a fixed, portable hash, unlike std's or foldhash's, which may change
/// between builds or be seeded per process.
struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a64(Self::OFFSET_BASIS)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
}

impl fmt::Write for Fnv1a64 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::NodeAddress;
    use proptest::prelude::*;

    fn node(port: u16, uid: u64) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "10.0.0.1", port), uid)
    }

    fn nodes(n: u16) -> Vec<UniqueAddress> {
        (1..=n).map(|p| node(p, u64::from(p) * 7)).collect()
    }

    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a64::new();
        h.bytes(bytes);
        h.0
    }

    #[test]
    fn the_hash_is_fnv1a_64_over_the_address_text_then_the_uid_bytes() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        let n = UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", 2552), 7);
        let mut text = b"casty://shop@10.0.0.1:2552".to_vec();
        text.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(ring_hash(&n), fnv(&text));
        // Fixed for good: every node of every build must place this incarnation here.
        assert_eq!(ring_hash(&n), 0x945b_f1ab_ea89_0e90);
    }

    #[test]
    fn the_ring_is_ordered_by_hash_and_each_node_watches_the_next_k() {
        let members = nodes(6);
        let ring = HeartbeatRing::new(members[0].clone(), members.clone(), [], 2);
        let order: Vec<_> = ring.nodes().cloned().collect();
        let hashes: Vec<u64> = order.iter().map(ring_hash).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
        for (i, m) in order.iter().enumerate() {
            let expected: BTreeSet<_> = [order[(i + 1) % 6].clone(), order[(i + 2) % 6].clone()]
                .into_iter()
                .collect();
            assert_eq!(ring.receivers_of(m), expected, "receivers of {m}");
        }
    }

    #[test]
    fn unreachable_members_on_the_way_are_watched_without_counting() {
        let members = nodes(7);
        let probe = HeartbeatRing::new(members[0].clone(), members.clone(), [], 2);
        let order: Vec<_> = probe.nodes().cloned().collect();
        let me = &order[0];
        // The next two clockwise stop answering: they stay receivers, and two more are added.
        let down = [order[1].clone(), order[2].clone()];
        let ring = HeartbeatRing::new(me.clone(), members.clone(), down.clone(), 2);
        let expected: BTreeSet<_> = order[1..=4].iter().cloned().collect();
        assert_eq!(ring.receivers_of(me), expected);
        assert!(ring.is_unreachable(&order[1]) && !ring.is_unreachable(&order[3]));
        // An unreachable member after the k-th reachable one is not added.
        let later = HeartbeatRing::new(me.clone(), members, [order[3].clone()], 2);
        let expected: BTreeSet<_> = order[1..=2].iter().cloned().collect();
        assert_eq!(later.receivers_of(me), expected);
    }

    #[test]
    fn with_k_at_least_n_minus_one_everyone_watches_everyone() {
        let members = nodes(4);
        for k in [3, 4, 100] {
            let ring = HeartbeatRing::new(members[0].clone(), members.clone(), [], k);
            for m in &members {
                assert_eq!(ring.receivers_of(m).len(), 3);
                assert_eq!(ring.observers_of(m).len(), 3);
            }
        }
    }

    #[test]
    fn a_lone_node_and_a_node_off_the_ring_have_no_receivers() {
        let me = node(1, 1);
        let ring = HeartbeatRing::new(me.clone(), [], [], 5);
        assert!(ring.receivers().is_empty());
        assert_eq!(ring.nodes().count(), 1);
        assert!(ring.receivers_of(&node(9, 9)).is_empty());
        assert!(ring.observers_of(&node(9, 9)).is_empty());
        let none = HeartbeatRing::new(me.clone(), nodes(4), [], 0);
        assert!(none.receivers().is_empty());
    }

    #[test]
    fn self_is_on_the_ring_even_when_not_among_the_members_and_unknown_unreachables_are_ignored() {
        let me = node(99, 1);
        let ring = HeartbeatRing::new(me.clone(), nodes(3), [node(50, 5)], 5);
        assert!(ring.contains(&me));
        assert_eq!(ring.receivers().len(), 3);
        assert!(!ring.is_unreachable(&node(50, 5)) && !ring.contains(&node(50, 5)));
    }

    fn members_and_k() -> impl Strategy<Value = (Vec<UniqueAddress>, usize)> {
        (
            prop::collection::btree_set((1u16..200, 0u64..4), 1..24),
            0usize..8,
        )
            .prop_map(|(set, k)| (set.into_iter().map(|(p, u)| node(p, u)).collect(), k))
    }

    proptest! {
        #[test]
        fn every_node_is_watched_by_min_k_n_minus_one_others_when_all_are_reachable(
            (members, k) in members_and_k(),
        ) {
            let ring = HeartbeatRing::new(members[0].clone(), members.clone(), [], k);
            let n = members.len();
            for m in &members {
                let observers = ring.observers_of(m);
                prop_assert_eq!(observers.len(), k.min(n - 1));
                prop_assert!(!observers.contains(m));
                prop_assert_eq!(ring.receivers_of(m).len(), k.min(n - 1));
            }
        }

        #[test]
        fn each_node_watches_k_reachable_others_and_never_itself(
            (members, k) in members_and_k(),
            down in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let unreachable: BTreeSet<_> = down.iter().map(|i| i.get(&members).clone()).collect();
            let ring = HeartbeatRing::new(
                members[0].clone(),
                members.clone(),
                unreachable.iter().cloned(),
                k,
            );
            for m in &members {
                let receivers = ring.receivers_of(m);
                prop_assert!(!receivers.contains(m));
                let reachable_others =
                    members.iter().filter(|o| *o != m && !unreachable.contains(*o)).count();
                let watched = receivers.iter().filter(|r| !unreachable.contains(*r)).count();
                if k >= members.len() - 1 {
                    prop_assert_eq!(receivers.len(), members.len() - 1);
                } else {
                    prop_assert_eq!(watched, k.min(reachable_others));
                }
                for r in &receivers {
                    prop_assert!(ring.observers_of(r).contains(m));
                }
            }
        }

        #[test]
        fn the_ring_depends_only_on_the_set_of_members(
            (members, k) in members_and_k(),
            seed in any::<u64>(),
            down in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let unreachable: Vec<_> = down.iter().map(|i| i.get(&members).clone()).collect();
            let mut shuffled = members.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
            // Duplicates and order of both inputs make no difference.
            shuffled.extend(members.iter().take(2).cloned());
            let mut unreachable_shuffled = unreachable.clone();
            unreachable_shuffled.reverse();
            let a = HeartbeatRing::new(members[0].clone(), members.clone(), unreachable, k);
            let b = HeartbeatRing::new(members[0].clone(), shuffled, unreachable_shuffled, k);
            prop_assert!(a.nodes().eq(b.nodes()));
            for m in &members {
                prop_assert_eq!(a.receivers_of(m), b.receivers_of(m));
            }
            prop_assert_eq!(a.receivers(), b.receivers());
        }
    }
}
