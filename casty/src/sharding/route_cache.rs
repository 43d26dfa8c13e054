//! A cache of direct routes that a sender reads with no lookup in the route table, for ids kept
//! inline (up to 24 bytes).
//!
//! It is a fixed array of slots, each one cache line. An id may sit in either of two slots,
//! picked by two parts of a hash of the id (two choices keep more ids cached than one: of 1,000
//! ids, about 770 find a slot of the 1,024, against 640 with one choice). A slot holds at most
//! one route (the id and its route: the lease of its running entity, or of its shard's home on
//! another node). An id is published into the slot that already holds it, else an empty one of
//! its two, else over another id's route; the id left out is found in the table as before. Only
//! the region writes a slot.
//!
//! Which route is pushed out: a remote route before a local one, since a local tell is the
//! cheaper of the two and a slot's saving counts for more there; a remote route never pushes out
//! a local one.
//!
//! A slot is guarded the way a lease is (see `direct`): a sender enters it (`inflight += 1`),
//! checks that its tag is still the id's and that it holds the id, delivers, and leaves; the
//! region sets the tag to 0 (which no id has) and waits until no sender is inside before it
//! changes what the slot holds, and only then writes the new tag. The region empties the slot of
//! an id before it revokes that id's entity lease, so a slot never leads to a revoked local
//! route, and a sender uses a local route from a slot without entering its lease. A home's lease
//! serves every id of its shard and is revoked before their slots are emptied, so a sender
//! enters a remote route's lease as it does one found in the table, and one revoked meanwhile
//! sends the message the region's way. A sender stays inside a slot for one push, or, on a remote
//! route, for the message's encoding and its push onto the connection.
//!
//! A lookup in the table (a concurrent map) costs an epoch guard (a fence on the way in and an
//! exchange on the way out), the hash of the string, the probe and the key comparison. A slot
//! costs one or two comparisons of a tag, the lease's own two read-modify-writes (a route taken
//! from the table enters its lease too), and a comparison of four words.
//!
//! The slot's route is in an `UnsafeCell`, read by senders and written by the region under the
//! protocol above: this module's three `unsafe` blocks say why each access is sound.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::direct::{wait_until_left, Route};
use super::entity_id::EntityId;

/// Slots per sharded type per node, of 64 bytes each: 64 KiB.
const SLOTS: usize = 1024;

/// What a slot holds: an id and its route.
type Held<M> = Option<(EntityId, Route<M>)>;

/// One cached route, on a cache line of its own (senders write its counter).
#[repr(align(64))]
struct Slot<M> {
    /// The tag of the id it holds (never 0) while senders may use its route; 0 while it holds
    /// none, or while the region changes what it holds. Read before entering, so a sender whose
    /// id is elsewhere does not write the slot's line, and again once inside.
    tag: AtomicU64,
    inflight: AtomicUsize,
    held: UnsafeCell<Held<M>>,
}

// A slot is one cache line: the tag, the counter, the id (four words) and the route (two).
const _: () = assert!(std::mem::size_of::<Slot<()>>() == 64);

// SAFETY: `held` is read by senders only while they are inside a slot whose tag they saw set,
// and written by the region only while the tag is 0 and no sender is inside
// (`RouteCache::set`), so no read overlaps a write. What it holds (`EntityId` and a `Route<M>`,
// whose leases hold an `ActorRef<M>` or an `ActorRef<ShardEnvelope<M>>`) is `Send + Sync` for
// `M: Send`.
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

/// The slot's tag for a hash: never 0, which no id has.
#[inline]
fn tag_of(hash: u64) -> u64 {
    hash | 1
}

/// The two slots an id with this hash may sit in (from bits the tag's comparison also uses,
/// so two ids with one tag share their slots too).
#[inline]
fn places(hash: u64) -> [usize; 2] {
    [(hash >> 32) as usize % SLOTS, (hash >> 16) as usize % SLOTS]
}

impl<M: Send + 'static> RouteCache<M> {
    pub(crate) fn new() -> Self {
        RouteCache {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    tag: AtomicU64::new(0),
                    inflight: AtomicUsize::new(0),
                    held: UnsafeCell::new(None),
                })
                .collect(),
            writing: Mutex::new(()),
        }
    }

    /// Enters the slot of `id` if one holds a route for `id`.
    #[inline]
    pub(crate) fn enter(&self, id: &EntityId) -> Option<Cached<'_, M>> {
        let hash = id.inline_hash()?;
        let tag = tag_of(hash);
        let [first, second] = places(hash);
        let slot = &self.slots[first];
        let slot = if slot.tag.load(Ordering::Relaxed) == tag {
            slot
        } else {
            let slot = &self.slots[second];
            if slot.tag.load(Ordering::Relaxed) != tag {
                return None;
            }
            slot
        };
        slot.inflight.fetch_add(1, Ordering::SeqCst);
        let inside = Inside(&slot.inflight);
        if slot.tag.load(Ordering::SeqCst) != tag {
            return None;
        }
        // SAFETY: the slot's tag is set and this sender is inside it (`inside` lives as long as
        // the returned borrow), so the region does not write `held` until it has left: `set`
        // stores 0 in the tag and then waits for `inflight` to be 0, and the SeqCst increment
        // and load above and the SeqCst store and load there make sure one of the two sides
        // sees the other. A tag read here that `set` wrote after `held` (a SeqCst store, so a
        // release, read by this SeqCst load) shows this sender what it wrote.
        let held = unsafe { &*slot.held.get() };
        match held {
            Some((held_id, route)) if held_id == id => Some(Cached {
                _inside: inside,
                route,
            }),
            _ => None,
        }
    }

    /// Caches the route of `id`: in the slot that holds `id`, else in an empty one of its two,
    /// else over another id's route, a remote one first; a remote route does not push out
    /// another id's local one (see the module's documentation).
    pub(crate) fn publish(&self, id: &EntityId, route: &Route<M>) {
        let Some(hash) = id.inline_hash() else {
            return;
        };
        let mut writing = self.writing();
        let tag = tag_of(hash);
        let places = places(hash);
        let held = |i: &usize| Self::held(&writing, &self.slots[*i]);
        let own = places
            .iter()
            .find(|i| matches!(held(i), Some((held_id, _)) if held_id == id));
        let empty = || places.iter().find(|i| held(i).is_none());
        let remote = || {
            places
                .iter()
                .find(|i| matches!(held(i), Some((_, Route::Remote(_)))))
        };
        let over_local = || matches!(route, Route::Local(_)).then_some(&places[0]);
        let Some(&i) = own.or_else(empty).or_else(remote).or_else(over_local) else {
            return;
        };
        let slot = &self.slots[i];
        Self::set(&mut writing, slot, tag, Some((id.clone(), route.clone())));
    }

    /// What `slot` holds, read by a writer. Borrows the guard, which `set` takes mutably, so
    /// what this returns cannot be held across a write.
    fn held<'a>(_writing: &'a MutexGuard<'_, ()>, slot: &'a Slot<M>) -> &'a Held<M> {
        // SAFETY: `held` is written only by `set`, which takes the same guard mutably, so no
        // write runs while the returned borrow lives; senders only read.
        unsafe { &*slot.held.get() }
    }

    /// Empties the slot of `id` if one holds `id`; when this returns, no sender uses that
    /// route through this cache again, and every sender that did has delivered.
    pub(crate) fn remove(&self, id: &str) {
        let id = EntityId::from(id);
        let Some(hash) = id.inline_hash() else {
            return;
        };
        let mut writing = self.writing();
        for i in places(hash) {
            let slot = &self.slots[i];
            if matches!(Self::held(&writing, slot), Some((held_id, _)) if *held_id == id) {
                Self::set(&mut writing, slot, 0, None);
            }
        }
    }

    /// Empties every slot.
    pub(crate) fn clear(&self) {
        let mut writing = self.writing();
        for slot in self.slots.iter() {
            if Self::held(&writing, slot).is_some() {
                Self::set(&mut writing, slot, 0, None);
            }
        }
    }

    /// The right to write slots: one writer at a time (the region is the only one, but this does
    /// not rely on it), which also makes a writer's reads of the slots current.
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the slot (tag 0), waits until no sender is inside, makes it hold `held`, and
    /// opens it under `tag` if it holds a route.
    fn set(_writing: &mut MutexGuard<'_, ()>, slot: &Slot<M>, tag: u64, held: Held<M>) {
        slot.tag.store(0, Ordering::SeqCst);
        wait_until_left(&slot.inflight);
        let open = held.is_some();
        // SAFETY: the tag is 0 and no sender is inside the slot. A sender that enters from now
        // on reads a tag of 0 (the SeqCst store above and the SeqCst increment and load in
        // `enter`: one of the two sides sees the other) until the store below, which comes
        // after this write, and does not read `held` before. A sender that was inside has
        // finished reading `held`: its `Release` decrement (`Inside::drop`) is seen by the
        // SeqCst load in `wait_until_left`, which orders its reads before this write. No other
        // write runs (`_writing`).
        let old = unsafe { std::mem::replace(&mut *slot.held.get(), held) };
        if open {
            slot.tag.store(tag, Ordering::SeqCst);
        }
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

    /// The two places of an id.
    fn places_of(id: &EntityId) -> [usize; 2] {
        places(id.inline_hash().unwrap())
    }

    /// The first short id after `from` (in `id-1`, `id-2`, ..) whose first place is `place`,
    /// and its second another.
    fn first_at(place: usize, from: &mut usize) -> EntityId {
        loop {
            *from += 1;
            let id = EntityId::from(format!("id-{from}"));
            if places_of(&id)[0] == place && places_of(&id)[1] != place {
                return id;
            }
        }
    }

    /// Three short ids: `z`, whose two places differ, and `x` and `y`, whose first places are
    /// `z`'s first and second, so that once `x` and `y` are published `z` finds both taken.
    fn crowded() -> (EntityId, EntityId, EntityId) {
        let mut n = 0;
        let z = loop {
            n += 1;
            let z = EntityId::from(format!("z-{n}"));
            let [a, b] = places_of(&z);
            if a != b {
                break z;
            }
        };
        let [a, b] = places_of(&z);
        let x = first_at(a, &mut n);
        let y = first_at(b, &mut n);
        (x, y, z)
    }

    /// Whether `id` is found in the cache with the local route `l`.
    fn finds(cache: &RouteCache<u64>, id: &EntityId, l: &Route<u64>) -> bool {
        cache
            .enter(id)
            .is_some_and(|c| std::ptr::eq(lease(c.route()), lease(l)))
    }

    #[tokio::test]
    async fn an_id_takes_the_other_of_its_two_slots_when_its_first_is_taken() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let mut n = 0;
        let a = EntityId::from("id-0");
        let b = first_at(places_of(&a)[0], &mut n);
        let (la, lb) = (sink(&system, "a"), sink(&system, "b"));
        assert!(cache.enter(&a).is_none());
        cache.publish(&a, &la);
        assert!(finds(&cache, &a, &la));
        assert!(cache.enter(&b).is_none());
        // `b`'s first slot holds `a`: `b` takes its second, and both are found.
        cache.publish(&b, &lb);
        assert!(finds(&cache, &a, &la));
        assert!(finds(&cache, &b, &lb));
        // Publishing again replaces the route in the slot that holds the id.
        cache.publish(&a, &lb);
        assert!(finds(&cache, &a, &lb));
        // Removing `a` leaves `b`'s route; removing `b` empties the cache.
        cache.remove(&a);
        assert!(cache.enter(&a).is_none());
        assert!(finds(&cache, &b, &lb));
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

    #[tokio::test]
    async fn a_local_route_pushes_out_the_first_slots_route_when_both_are_taken() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let (x, y, z) = crowded();
        let (lx, ly, lz) = (sink(&system, "x"), sink(&system, "y"), sink(&system, "z"));
        cache.publish(&x, &lx);
        cache.publish(&y, &ly);
        cache.publish(&z, &lz);
        assert!(cache.enter(&x).is_none(), "x was in z's first slot");
        assert!(finds(&cache, &y, &ly));
        assert!(finds(&cache, &z, &lz));
        system.shutdown().await;
    }

    /// A route to another node's region.
    fn remote_home(system: &ActorSystem) -> Route<u64> {
        Route::Remote(crate::sharding::direct::tests::home(system).0)
    }

    fn is_remote(cache: &RouteCache<u64>, id: &EntityId) -> bool {
        cache
            .enter(id)
            .is_some_and(|c| matches!(c.route(), Route::Remote(_)))
    }

    #[tokio::test]
    async fn a_remote_route_is_pushed_out_first_and_never_pushes_out_a_local_one() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let (x, y, z) = crowded();
        let (lx, ly, home) = (sink(&system, "x"), sink(&system, "y"), remote_home(&system));
        // Both of `z`'s slots hold local routes: `z`'s remote route is left to the table.
        cache.publish(&x, &lx);
        cache.publish(&y, &ly);
        cache.publish(&z, &home);
        assert!(cache.enter(&z).is_none());
        assert!(finds(&cache, &x, &lx));
        assert!(finds(&cache, &y, &ly));
        // Once `y`'s route is remote, `z`'s remote route takes `y`'s slot, not `x`'s.
        cache.publish(&y, &home);
        cache.publish(&z, &home);
        assert!(is_remote(&cache, &z));
        assert!(cache.enter(&y).is_none());
        assert!(finds(&cache, &x, &lx));
        // A local route, too, pushes out a remote one before a local one.
        cache.clear();
        cache.publish(&x, &lx);
        cache.publish(&y, &home);
        let lz = sink(&system, "z");
        cache.publish(&z, &lz);
        assert!(finds(&cache, &z, &lz));
        assert!(cache.enter(&y).is_none());
        assert!(finds(&cache, &x, &lx));
        // The same id's slot takes any route.
        cache.publish(&z, &home);
        assert!(is_remote(&cache, &z));
        cache.publish(&z, &lz);
        assert!(finds(&cache, &z, &lz));
        system.shutdown().await;
    }

    /// Ids that differ in a few bytes spread over the slots as random ones would: of 1,000 of
    /// them, numbered as users number them, about 770 keep a slot (a weak mix of the id's words
    /// once kept 142).
    #[tokio::test]
    async fn numbered_ids_spread_over_the_slots() {
        let system = ActorSystem::new("slots");
        let cache = RouteCache::new();
        let l = sink(&system, "l");
        for prefix in ["user-", "acct-1000-", "order:2026-11-30:", ""] {
            let ids: Vec<EntityId> = (0..1000)
                .map(|i| EntityId::from(format!("{prefix}{i}")))
                .collect();
            for id in &ids {
                cache.publish(id, &l);
            }
            let cached = ids.iter().filter(|id| cache.enter(id).is_some()).count();
            // Two random choices among 1,024 slots keep about 1,024 * tanh(1000 / 1024), 770 of
            // 1,000 ids; one choice keeps 1,024 * (1 - e^(-1000 / 1024)), 640.
            assert!(cached >= 740, "{prefix}: {cached} of 1000 ids cached");
            cache.clear();
        }
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
