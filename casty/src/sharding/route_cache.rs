//! A cache of direct routes that a sender reads with no lookup in the route table, for ids kept
//! inline (up to 24 bytes).
//!
//! It is a fixed array of slots, indexed by a hash of the id. A slot holds at most one route
//! (the id and its route: the lease of its running entity, or of its shard's home on another
//! node); when two ids fall on one slot, the one published last has it, and the other is found
//! in the table as before. Only the region writes a slot.
//!
//! A slot is guarded the way a lease is (see `direct`): a sender enters it (`inflight += 1`),
//! checks that it is valid and holds its id, delivers, and leaves; the region marks it invalid
//! and waits until no sender is inside before it changes what it holds. The region empties the
//! slot of an id before it revokes that id's entity lease, so a slot never leads to a revoked
//! local route, and a sender uses a local route from a slot without entering its lease. A home's
//! lease serves every id of its shard and is revoked before their slots are emptied, so a
//! sender enters a remote route's lease as it does one found in the table, and one revoked
//! meanwhile sends the message the region's way. A remote route never pushes another id's local
//! route out of its slot. A sender stays inside a slot for one push, or, on a remote route, for
//! the message's encoding and its push onto the connection.
//!
//! A lookup in the table (a concurrent map) costs an epoch guard (a fence on the way in and an
//! exchange on the way out), the hash of the string, the probe and the key comparison. A slot
//! costs one comparison of a tag, the lease's own two read-modify-writes (a route taken from
//! the table enters its lease too), and a comparison of three words.
//!
//! The slot's route is in an `UnsafeCell`, read by senders and written by the region under the
//! protocol above: this module's three `unsafe` blocks say why each access is sound.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::direct::{wait_until_left, Route};
use super::entity_id::EntityId;

/// Slots per sharded type per node: 64 KiB.
const SLOTS: usize = 1024;

/// What a slot holds: an id and its route.
type Held<M> = Option<(EntityId, Route<M>)>;

/// One cached route, on a cache line of its own (senders write its counter).
#[repr(align(64))]
struct Slot<M> {
    /// The hash of the id it holds (never 0), or 0 when it holds none. Read before entering,
    /// so a sender whose id is elsewhere does not write the slot's line.
    tag: AtomicU64,
    inflight: AtomicUsize,
    valid: AtomicBool,
    held: UnsafeCell<Held<M>>,
}

// SAFETY: `held` is read by senders only while they are inside a valid slot, and written by the
// region only while the slot is invalid and no sender is inside (`RouteCache::set`), so no
// read overlaps a write. What it holds (`EntityId` and a `Route<M>`, whose leases hold an
// `ActorRef<M>` or an `ActorRef<ShardEnvelope<M>>`) is `Send + Sync` for `M: Send`.
unsafe impl<M: Send> Sync for Slot<M> {}

/// The slots of one region (see the module's documentation).
pub(crate) struct RouteCache<M> {
    slots: Box<[Slot<M>]>,
    /// Held while slots are read to be written, and written (see `writing()`).
    writing: Mutex<()>,
}

/// A route found in the cache; the sender stays inside its slot until this is dropped (also
/// if delivering panics).
pub(crate) struct Cached<'a, M> {
    _inside: Inside<'a>,
    route: &'a Route<M>,
}

impl<M> Cached<'_, M> {
    /// The route.
    #[inline]
    pub(crate) fn route(&self) -> &Route<M> {
        self.route
    }
}

/// A sender inside a slot; leaves when dropped.
struct Inside<'a>(&'a AtomicUsize);

impl Drop for Inside<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// The slot's tag for a hash: never 0, which means empty.
#[inline]
fn tag_of(hash: u64) -> u64 {
    hash | 1
}

impl<M: Send + 'static> RouteCache<M> {
    pub(crate) fn new() -> Self {
        RouteCache {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    tag: AtomicU64::new(0),
                    inflight: AtomicUsize::new(0),
                    valid: AtomicBool::new(false),
                    held: UnsafeCell::new(None),
                })
                .collect(),
            writing: Mutex::new(()),
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> &Slot<M> {
        &self.slots[(hash >> 32) as usize % SLOTS]
    }

    /// Enters the slot of `id` if it holds a route for `id`.
    #[inline]
    pub(crate) fn enter(&self, id: &EntityId) -> Option<Cached<'_, M>> {
        let hash = id.inline_hash()?;
        let slot = self.slot(hash);
        if slot.tag.load(Ordering::Relaxed) != tag_of(hash) {
            return None;
        }
        slot.inflight.fetch_add(1, Ordering::SeqCst);
        let inside = Inside(&slot.inflight);
        if !slot.valid.load(Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the slot is valid and this sender is inside it (`inside` lives as long as
        // the returned borrow), so the region does not write `held` until it has left (`set`
        // marks the slot invalid and then waits for `inflight` to be 0; the SeqCst increment
        // and load above and the SeqCst store and load there make sure one of the two sides
        // sees the other).
        let held = unsafe { &*slot.held.get() };
        match held {
            Some((held_id, route)) if held_id == id => Some(Cached {
                _inside: inside,
                route,
            }),
            _ => None,
        }
    }

    /// Caches the route of `id` in place of whatever its slot held, except that a remote route
    /// does not push out another id's local one: a local tell is the cheaper of the two, so a
    /// slot's saving counts for more there.
    pub(crate) fn publish(&self, id: &EntityId, route: &Route<M>) {
        let Some(hash) = id.inline_hash() else {
            return;
        };
        let writing = self.writing();
        let slot = self.slot(hash);
        let tag = tag_of(hash);
        if matches!(route, Route::Remote(_))
            && slot.tag.load(Ordering::Relaxed) != tag
            && matches!(Self::held(&writing, slot), Some((_, Route::Local(_))))
        {
            return;
        }
        Self::set(&writing, slot, tag, Some((id.clone(), route.clone())));
    }

    /// What `slot` holds, read by a writer.
    fn held<'a>(_writing: &MutexGuard<'_, ()>, slot: &'a Slot<M>) -> &'a Held<M> {
        // SAFETY: `held` is written only by `set`, which takes the same guard, so no write runs
        // while the caller holds it; senders only read.
        unsafe { &*slot.held.get() }
    }

    /// Empties the slot of `id` if it holds `id`; when this returns, no sender uses that
    /// route through this cache again, and every sender that did has delivered.
    pub(crate) fn remove(&self, id: &str) {
        let Some(hash) = EntityId::from(id).inline_hash() else {
            return;
        };
        let writing = self.writing();
        let slot = self.slot(hash);
        if slot.tag.load(Ordering::Relaxed) == tag_of(hash) {
            Self::set(&writing, slot, 0, None);
        }
    }

    /// Empties every slot.
    pub(crate) fn clear(&self) {
        let writing = self.writing();
        for slot in self.slots.iter() {
            if slot.tag.load(Ordering::Relaxed) != 0 {
                Self::set(&writing, slot, 0, None);
            }
        }
    }

    /// The right to write slots: one writer at a time (the region is the only one, but this does
    /// not rely on it), which also makes a writer's reads of the tags current.
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Revokes the slot, waits until no sender is inside, and makes it hold `held`.
    fn set(_writing: &MutexGuard<'_, ()>, slot: &Slot<M>, tag: u64, held: Held<M>) {
        slot.valid.store(false, Ordering::SeqCst);
        wait_until_left(&slot.inflight);
        let valid = held.is_some();
        // SAFETY: the slot is invalid and no sender is inside it. A sender that enters from
        // now on sees it invalid (the SeqCst store above and the SeqCst increment and load in
        // `enter`: one of the two sides sees the other) and does not read `held`. A sender that
        // was inside has finished reading `held`: its `Release` decrement (`Inside::drop`) is
        // seen by the SeqCst load in `wait_until_left`, which orders its reads before this write.
        // No other write runs (`_writing`).
        let old = unsafe { std::mem::replace(&mut *slot.held.get(), held) };
        slot.tag.store(tag, Ordering::Relaxed);
        slot.valid.store(valid, Ordering::SeqCst);
        drop(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use std::sync::Arc;

    use crate::sharding::direct::Lease;
    use crate::{ActorRef, ActorSystem, Behaviors};

    fn sink(system: &ActorSystem, name: &str) -> Route<u64> {
        Route::Local(Lease::new(
            system.spawn(Behaviors::ignore::<u64>(), name).unwrap(),
        ))
    }

    /// The entity lease of a local route.
    fn lease(route: &Route<u64>) -> &Lease<ActorRef<u64>> {
        match route {
            Route::Local(l) => l,
            Route::Remote(_) => panic!("a remote route"),
        }
    }

    /// Two short ids that fall on one slot.
    fn colliding() -> (EntityId, EntityId) {
        let cache = RouteCache::<u64>::new();
        let first = EntityId::from("id-0");
        let slot = |id: &EntityId| cache.slot(id.inline_hash().unwrap()) as *const Slot<u64>;
        (1..)
            .map(|i| EntityId::from(format!("id-{i}")))
            .find(|id| slot(id) == slot(&first))
            .map(|id| (first.clone(), id))
            .unwrap()
    }

    #[tokio::test]
    async fn a_slot_holds_the_route_published_last_and_nothing_after_removal() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let (a, b) = colliding();
        let (la, lb) = (sink(&system, "a"), sink(&system, "b"));
        assert!(cache.enter(&a).is_none());
        cache.publish(&a, &la);
        assert!(std::ptr::eq(
            lease(cache.enter(&a).unwrap().route()),
            lease(&la)
        ));
        assert!(cache.enter(&b).is_none());
        // `b` takes the slot: `a` is no longer found there (the table still has it).
        cache.publish(&b, &lb);
        assert!(cache.enter(&a).is_none());
        assert!(std::ptr::eq(
            lease(cache.enter(&b).unwrap().route()),
            lease(&lb)
        ));
        // Removing `a` leaves `b`'s route; removing `b` empties the slot.
        cache.remove(&a);
        assert!(cache.enter(&b).is_some());
        cache.remove(&b);
        assert!(cache.enter(&b).is_none());
        // A long id is never cached.
        let long = EntityId::from("an-id-longer-than-twenty-four-bytes");
        cache.publish(&long, &la);
        assert!(cache.enter(&long).is_none());
        cache.publish(&a, &la);
        cache.clear();
        assert!(cache.enter(&a).is_none());
        system.shutdown().await;
    }

    /// A route to another node's region.
    fn remote_home(system: &ActorSystem) -> Route<u64> {
        Route::Remote(crate::sharding::direct::tests::home(system).0)
    }

    #[tokio::test]
    async fn a_remote_route_does_not_push_out_another_ids_local_route() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let (a, b) = colliding();
        let (local, home) = (sink(&system, "a"), remote_home(&system));
        cache.publish(&a, &local);
        // `b` would take `a`'s slot with a remote route: `a` keeps it, `b` is left to the table.
        cache.publish(&b, &home);
        assert!(std::ptr::eq(
            lease(cache.enter(&a).unwrap().route()),
            lease(&local)
        ));
        assert!(cache.enter(&b).is_none());
        // A slot that is empty, or holds a remote route, takes it; so does the same id's slot.
        cache.remove(&a);
        cache.publish(&b, &home);
        assert!(matches!(cache.enter(&b).unwrap().route(), Route::Remote(_)));
        cache.publish(&a, &home);
        assert!(matches!(cache.enter(&a).unwrap().route(), Route::Remote(_)));
        cache.publish(&a, &local);
        cache.publish(&a, &home);
        assert!(matches!(cache.enter(&a).unwrap().route(), Route::Remote(_)));
        // A local route still takes a slot from another id's remote one.
        cache.publish(&b, &local);
        assert!(matches!(cache.enter(&b).unwrap().route(), Route::Local(_)));
        system.shutdown().await;
    }

    /// Senders on other threads use a slot while the region replaces and removes its route:
    /// once `remove` (or a `publish` over it) returns, no sender uses the old route again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replaced_or_removed_route_is_never_used_after_the_call_returns() {
        let system = ActorSystem::new("slots");
        let cache = Arc::new(RouteCache::new());
        let id = EntityId::from("alice");
        let leases: Vec<_> = (0..2).map(|i| sink(&system, &format!("l{i}"))).collect();
        // Uses of each lease through the cache, counted while inside the slot.
        let uses: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let done = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (cache, id, uses, done) =
                    (cache.clone(), id.clone(), uses.clone(), done.clone());
                let leases = leases.clone();
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if let Some(route) = cache.enter(&id) {
                            let l = lease(route.route());
                            let which = usize::from(std::ptr::eq(l, lease(&leases[1])));
                            uses[which].fetch_add(1, Ordering::SeqCst);
                            std::hint::black_box(&l.target);
                        }
                    }
                })
            })
            .collect();
        // Each route is replaced or removed only once a sender is using it, so that every
        // revocation races a sender.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let used = |which: usize| {
            let seen = uses[which].load(Ordering::SeqCst);
            while uses[which].load(Ordering::SeqCst) == seen {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the senders never got in"
                );
                std::thread::yield_now();
            }
        };
        for round in 0..200 {
            let (old, new) = (round % 2, (round + 1) % 2);
            cache.publish(&id, &leases[old]);
            used(old);
            // Replacing it revokes the old route...
            cache.publish(&id, &leases[new]);
            let before = uses[old].load(Ordering::SeqCst);
            std::thread::yield_now();
            assert_eq!(uses[old].load(Ordering::SeqCst), before, "round {round}");
            used(new);
            // ... and removing it revokes the new one.
            cache.remove(&id);
            let before = uses[new].load(Ordering::SeqCst);
            std::thread::yield_now();
            assert_eq!(uses[new].load(Ordering::SeqCst), before, "round {round}");
        }
        done.store(true, Ordering::Relaxed);
        for s in senders {
            s.join().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        system.shutdown().await;
    }
}
