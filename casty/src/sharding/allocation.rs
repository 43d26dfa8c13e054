//! Where shards live: the [`AllocationStrategy`] extension point, and its default,
//! [`LeastShardAllocation`].
//!
//! The coordinator owns the map of which region holds which shard ([`Allocations`]) and asks a
//! strategy two questions: where a shard without a home should go ([`allocate`]), and, on each
//! rebalance tick, which shards should move now ([`rebalance`]). A strategy only answers: it
//! changes nothing, reads no clock and draws no random numbers, so every node that asks the same
//! question with the same map gets the same answer, and a coordinator that moves to another node
//! carries on the same way.
//!
//! [`allocate`]: AllocationStrategy::allocate
//! [`rebalance`]: AllocationStrategy::rebalance

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::shard_id::ShardId;
use crate::cluster::UniqueAddress;

/// Which regions hold which shards, as the coordinator sees it: only regions that may receive
/// shards (hosting role, Up, not leaving).
///
/// A region that holds no shard is present with an empty set: that is how a strategy learns that
/// a region joined.
///
/// # Examples
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// use casty::sharding::Allocations;
/// use std::collections::BTreeSet;
///
/// let a = UniqueAddress::new(NodeAddress::new("app", "10.0.0.1", 25520), 1);
/// let mut allocations = Allocations::new();
/// allocations.insert(a.clone(), BTreeSet::from([0, 7]));
/// assert_eq!(allocations[&a].len(), 2);
/// ```
pub type Allocations = BTreeMap<UniqueAddress, BTreeSet<ShardId>>;

/// How the coordinator places shards on regions and evens out their load: the extension point of
/// shard allocation.
///
/// Both methods are pure: they read the arguments and nothing else (no clock, no randomness), so
/// the same question gets the same answer on every node.
///
/// # Examples
///
/// A strategy that puts every shard on the lowest region and never moves one:
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// use casty::sharding::{AllocationStrategy, Allocations, ShardId};
/// use std::collections::BTreeSet;
///
/// #[derive(Debug)]
/// struct FirstRegion;
///
/// impl AllocationStrategy for FirstRegion {
///     fn allocate(
///         &self,
///         _shard: ShardId,
///         _requester: &UniqueAddress,
///         allocations: &Allocations,
///     ) -> Option<UniqueAddress> {
///         allocations.keys().next().cloned()
///     }
///
///     fn rebalance(&self, _: &Allocations, _: &BTreeSet<ShardId>) -> BTreeSet<ShardId> {
///         BTreeSet::new()
///     }
/// }
///
/// let a = UniqueAddress::new(NodeAddress::new("app", "10.0.0.1", 25520), 1);
/// let b = UniqueAddress::new(NodeAddress::new("app", "10.0.0.2", 25520), 1);
/// let allocations = Allocations::from([(a.clone(), BTreeSet::new()), (b.clone(), BTreeSet::new())]);
/// assert_eq!(FirstRegion.allocate(3, &b, &allocations), Some(a));
/// ```
pub trait AllocationStrategy: Send + Sync + fmt::Debug + 'static {
    /// The region to host `shard`, which `requester` asked about; None if no region can take it
    /// now.
    ///
    /// The coordinator asks only about a shard that has no home, and gives the answer to the
    /// requester (and every later asker) as the shard's home. An answer that is not a key of
    /// `allocations` is not a region that may receive shards: the coordinator treats it as None.
    fn allocate(
        &self,
        shard: ShardId,
        requester: &UniqueAddress,
        allocations: &Allocations,
    ) -> Option<UniqueAddress>;

    /// Shards to move now; `in_progress` are moving already. Must return only allocated shards
    /// not in progress.
    ///
    /// The coordinator hands each returned shard off from its region and then, once it is
    /// stopped there, allocates it again with [`allocate`](AllocationStrategy::allocate).
    fn rebalance(
        &self,
        allocations: &Allocations,
        in_progress: &BTreeSet<ShardId>,
    ) -> BTreeSet<ShardId>;
}

/// The default strategy, as in Casty (Python): a new shard goes to the region that holds the
/// fewest, and a rebalance moves shards from the most loaded regions to the least loaded.
///
/// **Allocation.** A shard goes to the region holding the fewest shards; among equals, to the
/// lowest [`UniqueAddress`], so every node would pick the same one. Which region asked does not
/// matter.
///
/// **Rebalance.** The load of a region is the number of its shards that are not already moving,
/// plus the moving shards that will land there: each is counted, in turn, on the least loaded
/// region, where `allocate` will put it once its handoff completes. Nothing moves unless the
/// load is uneven: the most loaded region holds more than `threshold` shards more than the least
/// loaded one, or a region holds none (it just joined) while another holds two or more. Then
/// shards are picked one at a time, as the coordinator will place them:
/// the highest shard id of the most loaded region (ties to the lowest address) goes, in this
/// reckoning, to the least loaded region (as [`allocate`](AllocationStrategy::allocate) would
/// choose), for as long as that region holds at least two fewer than the donor. So a rebalance
/// that starts evens the load out as far as one round can, down to a difference of at most one
/// shard, rather than just below the threshold: the threshold decides when to start moving, not
/// where to stop.
///
/// **How many move at once.** The limit is `max_simultaneous` shards, or
/// `max_simultaneous_percent` percent of all allocated shards (rounded down) when that is more: 3
/// or 10% by default, so a join spreads 1,000 shards in three rounds of 100, and 30 shards three
/// at a time. A rebalance returns at most the limit minus `in_progress.len()` shards, and nothing
/// while as many are moving already.
///
/// A difference of one shard is never worth a move (it would only swap which region holds more),
/// so a `threshold` of 0 acts as 1. A `max_simultaneous` of 0 turns rebalancing off, whatever the
/// percentage: shards then
/// move only when their region leaves.
///
/// # Examples
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// use casty::sharding::{AllocationStrategy, Allocations, LeastShardAllocation};
/// use std::collections::BTreeSet;
///
/// let a = UniqueAddress::new(NodeAddress::new("app", "10.0.0.1", 25520), 1);
/// let b = UniqueAddress::new(NodeAddress::new("app", "10.0.0.2", 25520), 1);
/// let allocations = Allocations::from([
///     (a.clone(), BTreeSet::from([0, 1, 2, 3])),
///     (b.clone(), BTreeSet::new()), // just joined
/// ]);
/// let strategy = LeastShardAllocation::new();
/// assert_eq!(strategy.allocate(9, &a, &allocations), Some(b));
/// // Two of a's shards move, its highest: then each region holds two.
/// assert_eq!(strategy.rebalance(&allocations, &BTreeSet::new()), BTreeSet::from([2, 3]));
/// // With 2 and 3 already moving, nothing more is needed.
/// assert_eq!(strategy.rebalance(&allocations, &BTreeSet::from([2, 3])), BTreeSet::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeastShardAllocation {
    /// How many more shards the most loaded region may hold than the least loaded before a
    /// rebalance starts (default 1: any difference of two or more).
    pub threshold: usize,
    /// How many shards may be moving at once, at least (default 3); 0 turns rebalancing off.
    pub max_simultaneous: usize,
    /// How many shards may be moving at once, as a percentage of all allocated shards, when that
    /// is more than `max_simultaneous` (default 10, as Akka's relative limit): a type with many
    /// shards evens out a joined node in a few rebalance ticks, one with few still moves a few
    /// at a time.
    pub max_simultaneous_percent: u32,
}

impl LeastShardAllocation {
    /// The default rebalance threshold: a difference of two shards or more starts a rebalance.
    pub const DEFAULT_THRESHOLD: usize = 1;

    /// The default limit on shards moving at once.
    pub const DEFAULT_MAX_SIMULTANEOUS: usize = 3;

    /// The default limit on shards moving at once, in percent of all allocated shards.
    pub const DEFAULT_MAX_SIMULTANEOUS_PERCENT: u32 = 10;

    /// The strategy with the defaults: threshold 1, at most 3 shards or 10% of them moving at
    /// once, whichever is more.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::LeastShardAllocation;
    /// let s = LeastShardAllocation::new();
    /// assert_eq!((s.threshold, s.max_simultaneous, s.max_simultaneous_percent), (1, 3, 10));
    /// assert_eq!(s, LeastShardAllocation::default());
    /// ```
    pub const fn new() -> Self {
        LeastShardAllocation {
            threshold: Self::DEFAULT_THRESHOLD,
            max_simultaneous: Self::DEFAULT_MAX_SIMULTANEOUS,
            max_simultaneous_percent: Self::DEFAULT_MAX_SIMULTANEOUS_PERCENT,
        }
    }

    /// Sets how many more shards the most loaded region may hold than the least loaded before a
    /// rebalance starts (0 acts as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::LeastShardAllocation;
    /// assert_eq!(LeastShardAllocation::new().threshold(5).threshold, 5);
    /// ```
    pub const fn threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets how many shards may be moving at once (0 turns rebalancing off).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::LeastShardAllocation;
    /// assert_eq!(LeastShardAllocation::new().max_simultaneous(10).max_simultaneous, 10);
    /// ```
    pub const fn max_simultaneous(mut self, max_simultaneous: usize) -> Self {
        self.max_simultaneous = max_simultaneous;
        self
    }

    /// Sets how many shards may be moving at once as a percentage of all allocated shards, when
    /// that is more than `max_simultaneous` (0: only `max_simultaneous` counts; above 100 acts
    /// as 100).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::LeastShardAllocation;
    /// let s = LeastShardAllocation::new().max_simultaneous_percent(0);
    /// assert_eq!(s.max_simultaneous_percent, 0);
    /// ```
    pub const fn max_simultaneous_percent(mut self, percent: u32) -> Self {
        self.max_simultaneous_percent = percent;
        self
    }

    /// How many shards may be moving at once, with `total` shards allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::LeastShardAllocation;
    /// let s = LeastShardAllocation::new();
    /// assert_eq!(s.limit(30), 3);
    /// assert_eq!(s.limit(1_000), 100);
    /// assert_eq!(s.max_simultaneous(0).limit(1_000), 0);
    /// ```
    pub fn limit(&self, total: usize) -> usize {
        if self.max_simultaneous == 0 {
            return 0;
        }
        let percent = self.max_simultaneous_percent.min(100) as usize;
        self.max_simultaneous
            .max(total.saturating_mul(percent) / 100)
    }
}

impl Default for LeastShardAllocation {
    fn default() -> Self {
        LeastShardAllocation::new()
    }
}

/// One region in a rebalance's reckoning.
struct Load {
    /// Its shards that may still be picked, lowest first.
    movable: Vec<ShardId>,
    /// The shards it holds, or would hold after the picks so far: its shards not moving, plus
    /// the moving shards reckoned to land on it.
    load: usize,
}

impl AllocationStrategy for LeastShardAllocation {
    fn allocate(
        &self,
        _shard: ShardId,
        _requester: &UniqueAddress,
        allocations: &Allocations,
    ) -> Option<UniqueAddress> {
        // `min_by_key` keeps the first of equals, and the map iterates by address.
        allocations
            .iter()
            .min_by_key(|(_, shards)| shards.len())
            .map(|(region, _)| region.clone())
    }

    fn rebalance(
        &self,
        allocations: &Allocations,
        in_progress: &BTreeSet<ShardId>,
    ) -> BTreeSet<ShardId> {
        let mut chosen = BTreeSet::new();
        let total: usize = allocations.values().map(BTreeSet::len).sum();
        let room = self.limit(total).saturating_sub(in_progress.len());
        if room == 0 || allocations.len() < 2 {
            return chosen;
        }
        // By address, as the map iterates.
        let mut regions: Vec<Load> = allocations
            .values()
            .map(|shards| {
                let movable: Vec<ShardId> = shards
                    .iter()
                    .copied()
                    .filter(|s| !in_progress.contains(s))
                    .collect();
                Load {
                    load: movable.len(),
                    movable,
                }
            })
            .collect();
        // Each shard already moving will be allocated again, to the least loaded region: count
        // it there, so that its move is not made a second time.
        let moving: BTreeSet<ShardId> = allocations
            .values()
            .flatten()
            .copied()
            .filter(|s| in_progress.contains(s))
            .collect();
        for _ in &moving {
            if let Some(receiver) = lowest_load(&regions) {
                regions[receiver].load += 1;
            }
        }
        let least = regions.iter().map(|r| r.load).min().unwrap_or(0);
        let most = regions.iter().map(|r| r.load).max().unwrap_or(0);
        let uneven = most - least > self.threshold || (least == 0 && most >= 2);
        if !uneven {
            return chosen;
        }
        while chosen.len() < room {
            let Some(receiver) = lowest_load(&regions) else {
                break;
            };
            let Some(donor) = donor(&regions) else {
                break;
            };
            if regions[donor].load < regions[receiver].load + 2 {
                break;
            }
            let Some(shard) = regions[donor].movable.pop() else {
                break;
            };
            regions[donor].load -= 1;
            // A shard listed under two regions is picked once, and lands once.
            if chosen.insert(shard) {
                regions[receiver].load += 1;
            }
        }
        chosen
    }
}

/// The region with the lowest load, the lowest address among equals: where `allocate` puts a
/// shard.
fn lowest_load(regions: &[Load]) -> Option<usize> {
    (0..regions.len()).min_by_key(|&i| regions[i].load)
}

/// The region with the highest load that still has a shard to give, the lowest address among
/// equals.
fn donor(regions: &[Load]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, r) in regions.iter().enumerate() {
        if r.movable.is_empty() {
            continue;
        }
        if best.is_none_or(|b| r.load > regions[b].load) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::NodeAddress;
    use proptest::prelude::*;

    fn region(n: u8) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("app", format!("10.0.0.{n}"), 25520), 1)
    }

    fn allocations(loads: &[&[ShardId]]) -> Allocations {
        loads
            .iter()
            .enumerate()
            .map(|(i, shards)| (region(i as u8), shards.iter().copied().collect()))
            .collect()
    }

    fn set(shards: &[ShardId]) -> BTreeSet<ShardId> {
        shards.iter().copied().collect()
    }

    #[test]
    fn allocate_picks_the_region_with_fewest_shards() {
        let a = allocations(&[&[0, 1], &[2], &[3, 4]]);
        assert_eq!(
            LeastShardAllocation::new().allocate(9, &region(0), &a),
            Some(region(1))
        );
    }

    #[test]
    fn allocate_breaks_ties_by_the_lowest_address() {
        let a = allocations(&[&[0, 1], &[2], &[3]]);
        assert_eq!(
            LeastShardAllocation::new().allocate(9, &region(2), &a),
            Some(region(1))
        );
    }

    #[test]
    fn allocate_with_no_region_is_none() {
        let s = LeastShardAllocation::new();
        assert_eq!(s.allocate(0, &region(0), &Allocations::new()), None);
    }

    #[test]
    fn rebalance_moves_the_highest_shards_to_a_joined_region() {
        let a = allocations(&[&[0, 1, 2, 3], &[]]);
        let s = LeastShardAllocation::new();
        assert_eq!(s.rebalance(&a, &set(&[])), set(&[2, 3]));
    }

    #[test]
    fn rebalance_takes_from_the_most_loaded_regions_in_turn() {
        // Loads 5, 6, 0: b gives 15, then a and b give one each (a first among equals).
        let a = allocations(&[&[0, 1, 2, 3, 4], &[10, 11, 12, 13, 14, 15], &[]]);
        let s = LeastShardAllocation::new();
        assert_eq!(s.rebalance(&a, &set(&[])), set(&[4, 14, 15]));
    }

    #[test]
    fn rebalance_moves_at_most_max_simultaneous_shards() {
        let a = allocations(&[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &[]]);
        let s = LeastShardAllocation::new().max_simultaneous(2);
        assert_eq!(s.rebalance(&a, &set(&[])), set(&[8, 9]));
    }

    #[test]
    fn many_shards_move_a_tenth_at_a_time_by_default() {
        // 1,000 shards on three regions, a fourth joins: 100 move in the first round.
        let shards: Vec<Vec<ShardId>> = (0..3)
            .map(|r| (0..1_000).filter(|s| s % 3 == r).collect())
            .collect();
        let refs: Vec<&[ShardId]> = shards.iter().map(Vec::as_slice).chain([&[][..]]).collect();
        let a = allocations(&refs);
        assert_eq!(
            LeastShardAllocation::new().rebalance(&a, &set(&[])).len(),
            100
        );
        // With the percentage off, the absolute limit alone.
        let s = LeastShardAllocation::new().max_simultaneous_percent(0);
        assert_eq!(s.rebalance(&a, &set(&[])).len(), 3);
        // And nothing at all with rebalancing off.
        let s = LeastShardAllocation::new().max_simultaneous(0);
        assert_eq!(s.rebalance(&a, &set(&[])).len(), 0);
    }

    #[test]
    fn rebalance_counts_the_shards_in_progress_against_max_simultaneous() {
        let a = allocations(&[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &[]]);
        let s = LeastShardAllocation::new();
        assert_eq!(s.rebalance(&a, &set(&[9, 100])), set(&[8]));
        assert_eq!(s.rebalance(&a, &set(&[7, 8, 9])), set(&[]));
        assert_eq!(s.rebalance(&a, &set(&[5, 6, 7, 8, 9])), set(&[]));
    }

    #[test]
    fn shards_in_progress_count_where_they_will_land() {
        // 5 leaves a for b: loads 5 and 1, evened out by moving 4 and 3.
        let a = allocations(&[&[0, 1, 2, 3, 4, 5], &[]]);
        let s = LeastShardAllocation::new().max_simultaneous(5);
        assert_eq!(s.rebalance(&a, &set(&[5])), set(&[3, 4]));
        // With 3, 4 and 5 moving, a keeps three and b will get three: nothing more.
        assert_eq!(s.rebalance(&a, &set(&[3, 4, 5])), set(&[]));
        // 3 leaves a for b: loads 3 and 2.
        let a = allocations(&[&[0, 1, 2, 3], &[10]]);
        assert_eq!(s.rebalance(&a, &set(&[3])), set(&[]));
    }

    #[test]
    fn rebalance_does_nothing_within_the_threshold() {
        let s = LeastShardAllocation::new().threshold(3);
        assert_eq!(
            s.rebalance(&allocations(&[&[0, 1, 2, 3], &[4]]), &set(&[])),
            set(&[])
        );
        // Four more than the least loaded: a rebalance starts and evens out to 3 and 2.
        assert_eq!(
            s.rebalance(&allocations(&[&[0, 1, 2, 3, 4], &[]]), &set(&[])),
            set(&[3, 4])
        );
    }

    #[test]
    fn a_joined_region_gets_shards_whatever_the_threshold() {
        let a = allocations(&[&[0, 1, 2, 3, 4], &[5, 6, 7, 8, 9], &[]]);
        let s = LeastShardAllocation::new().threshold(100);
        assert_eq!(s.rebalance(&a, &set(&[])), set(&[3, 4, 9]));
    }

    #[test]
    fn a_difference_of_one_shard_never_moves() {
        let s = LeastShardAllocation::new().threshold(0);
        assert_eq!(
            s.rebalance(&allocations(&[&[0, 1], &[2]]), &set(&[])),
            set(&[])
        );
        assert_eq!(
            s.rebalance(&allocations(&[&[0], &[1], &[]]), &set(&[])),
            set(&[])
        );
    }

    #[test]
    fn one_region_or_none_never_rebalances() {
        let s = LeastShardAllocation::new();
        assert_eq!(s.rebalance(&Allocations::new(), &set(&[])), set(&[]));
        assert_eq!(
            s.rebalance(&allocations(&[&[0, 1, 2, 3]]), &set(&[])),
            set(&[])
        );
    }

    #[test]
    fn max_simultaneous_zero_turns_rebalancing_off() {
        let s = LeastShardAllocation::new().max_simultaneous(0);
        assert_eq!(
            s.rebalance(&allocations(&[&[0, 1, 2, 3], &[]]), &set(&[])),
            set(&[])
        );
    }

    #[test]
    fn a_shard_listed_under_two_regions_is_returned_once() {
        let a = allocations(&[&[0, 1, 2, 3, 4], &[4], &[]]);
        let s = LeastShardAllocation::new().max_simultaneous(10);
        let moved = s.rebalance(&a, &set(&[]));
        assert!(moved.iter().all(|s| *s <= 4));
        assert_eq!(moved, set(&[2, 3, 4]));
    }

    /// Up to 6 regions and 120 shards spread over them at random.
    fn arb_allocations(min_regions: usize) -> impl Strategy<Value = Allocations> {
        (min_regions.max(1)..=6usize).prop_flat_map(|n| {
            prop::collection::vec(0..n, 0..120).prop_map(move |owners| {
                let mut a: Allocations =
                    (0..n).map(|i| (region(i as u8), BTreeSet::new())).collect();
                for (shard, owner) in owners.into_iter().enumerate() {
                    a.get_mut(&region(owner as u8))
                        .map(|s| s.insert(shard as ShardId));
                }
                a
            })
        })
    }

    fn loads(a: &Allocations) -> (usize, usize) {
        let least = a.values().map(BTreeSet::len).min().unwrap_or(0);
        let most = a.values().map(BTreeSet::len).max().unwrap_or(0);
        (least, most)
    }

    /// What the coordinator does with a rebalance's answer when the handoffs complete: take the
    /// shards away, then allocate each again.
    fn apply(s: &LeastShardAllocation, a: &mut Allocations, moved: &BTreeSet<ShardId>) {
        for shards in a.values_mut() {
            shards.retain(|x| !moved.contains(x));
        }
        for &shard in moved {
            let home = s.allocate(shard, &region(0), a).expect("a region");
            a.get_mut(&home).expect("an allocated region").insert(shard);
        }
    }

    proptest! {
        #[test]
        fn allocate_always_picks_a_region_with_the_fewest_shards(
            a in arb_allocations(1),
            shard in 0u32..1000,
        ) {
            let s = LeastShardAllocation::new();
            let home = s.allocate(shard, &region(0), &a).expect("a region");
            let (least, _) = loads(&a);
            prop_assert_eq!(a[&home].len(), least);
            let first = a.iter().find(|(_, v)| v.len() == least).map(|(k, _)| k.clone());
            prop_assert_eq!(Some(home), first);
        }

        #[test]
        fn rebalance_returns_only_allocated_shards_not_in_progress_within_the_room_left(
            a in arb_allocations(1),
            in_progress in prop::collection::btree_set(0u32..150, 0..6),
            threshold in 0usize..6,
            max_simultaneous in 0usize..8,
            percent in 0u32..120,
        ) {
            let s = LeastShardAllocation::new()
                .threshold(threshold)
                .max_simultaneous(max_simultaneous)
                .max_simultaneous_percent(percent);
            let moved = s.rebalance(&a, &in_progress);
            let allocated: BTreeSet<ShardId> = a.values().flatten().copied().collect();
            prop_assert!(moved.is_subset(&allocated));
            prop_assert!(moved.is_disjoint(&in_progress));
            let limit = if max_simultaneous == 0 {
                0
            } else {
                max_simultaneous.max(allocated.len() * percent.min(100) as usize / 100)
            };
            prop_assert!(moved.len() <= limit.saturating_sub(in_progress.len()));
        }

        #[test]
        fn repeated_rebalancing_converges_to_within_the_threshold_then_stops(
            mut a in arb_allocations(1),
            threshold in 0usize..6,
            max_simultaneous in 1usize..6,
        ) {
            let s = LeastShardAllocation::new()
                .threshold(threshold)
                .max_simultaneous(max_simultaneous);
            let total: usize = a.values().map(BTreeSet::len).sum();
            // Every round moves at least one shard and makes the load strictly more even; as
            // many rounds as there are shards is a generous bound.
            let mut rounds = 0;
            loop {
                let moved = s.rebalance(&a, &BTreeSet::new());
                if moved.is_empty() {
                    break;
                }
                apply(&s, &mut a, &moved);
                rounds += 1;
                prop_assert!(rounds <= total, "no convergence after {} rounds", rounds);
            }
            let (least, most) = loads(&a);
            prop_assert!(most - least <= threshold.max(1), "loads {}..{}", least, most);
            prop_assert!(least > 0 || most <= 1, "an empty region beside {} shards", most);
            prop_assert_eq!(a.values().map(BTreeSet::len).sum::<usize>(), total);
        }

        #[test]
        fn a_region_that_joins_with_no_shards_gets_shards_in_the_next_rebalance(
            counts in prop::collection::vec(1usize..30, 1..6),
            threshold in 0usize..50,
            max_simultaneous in 1usize..6,
        ) {
            // Every region holds a shard, the first at least two; then one joins with none.
            let mut a = Allocations::new();
            let mut next: ShardId = 0;
            for (i, &n) in counts.iter().enumerate() {
                let n = if i == 0 { n.max(2) } else { n };
                a.insert(region(i as u8), (next..next + n as ShardId).collect());
                next += n as ShardId;
            }
            let joined = region(7);
            a.insert(joined.clone(), BTreeSet::new());
            let s = LeastShardAllocation::new()
                .threshold(threshold)
                .max_simultaneous(max_simultaneous);
            let moved = s.rebalance(&a, &BTreeSet::new());
            prop_assert!(!moved.is_empty());
            apply(&s, &mut a, &moved);
            prop_assert!(!a[&joined].is_empty());
        }
    }
}
