//! Direct routes: a message for an entity that runs on this node, or lives in a shard whose home
//! is known, goes from its sender straight to the entity (or to the home region's connection),
//! without waiting in the region's mailbox. The region stays the only one that decides: it
//! publishes a route, under a *lease*, only when its own routing would send the message the same
//! way, and revokes the lease before its routing changes.
//!
//! Two rules keep every sender's messages to one entity in order, whichever way each one goes:
//!
//! - **A sender takes a route only when the region holds none of its messages.** Every entity
//!   message that goes into the region's mailbox is counted in `pending` before it is queued,
//!   and uncounted only when the region has dealt with it: delivered, forwarded, or buffered in
//!   a buffer that the region flushes before it publishes a route that covers it. A sender that
//!   reads `pending == 0` has nothing of its own left in the region, so nothing it sends now can
//!   overtake an earlier message of its own. (The count is global, not per sender: a busy region
//!   only sends more messages its own way, which is always correct.)
//! - **A revoked lease is never used after the revocation returns.** A sender enters a lease
//!   (`inflight += 1`), checks that it is still valid, delivers, and leaves; the region marks it
//!   invalid and then waits until no sender is inside. Whatever a sender delivered by a route is
//!   therefore in the entity's mailbox (or on the home's connection) before the region does the
//!   next thing: stopping the entity after its mailbox drains, or acknowledging a handoff on that
//!   same connection. The window is a single push (to another node: the message's encoding and
//!   its push onto the connection), so the wait is short.
//!
//! The interceptor is installed when the region is created, before any ref to it exists, so no
//! message reaches the region uncounted.
//!
//! A sender's message is lent to the interceptor in place and moved out only when a route
//! delivers it: moving a whole envelope into the interceptor and back cost more than finding its
//! route. That move is this module's `unsafe` code; each block says why it is sound.

#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::envelope::{EntityId, Kind, ShardEnvelope};
use super::route_cache::RouteCache;
use crate::actor::actor_ref::RefInner;
use crate::actor::cell::Intercept;
use crate::cluster::UniqueAddress;
use crate::ActorRef;

/// A route the region lends to senders until it revokes it. On cache lines of its own: senders
/// write its counter on every message, and must not share the line with what an entity writes.
#[repr(align(128))]
pub(crate) struct Lease<T> {
    pub(crate) target: T,
    valid: AtomicBool,
    inflight: AtomicUsize,
    /// Set by senders when they use it, for the region's idle passivation.
    touched: AtomicBool,
}

impl<T> Lease<T> {
    pub(crate) fn new(target: T) -> Arc<Self> {
        Arc::new(Lease {
            target,
            valid: AtomicBool::new(true),
            inflight: AtomicUsize::new(0),
            touched: AtomicBool::new(false),
        })
    }

    /// Enters the lease if it is still valid; the sender is inside until the guard drops (also
    /// if delivering panics: a user's `Serialize` or `Debug` runs inside).
    #[inline]
    fn enter(&self) -> Option<Entered<'_, T>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let entered = Entered(self);
        self.valid.load(Ordering::SeqCst).then_some(entered)
    }

    #[inline]
    pub(crate) fn touch(&self) {
        if !self.touched.load(Ordering::Relaxed) {
            self.touched.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a sender used it since the last call.
    pub(crate) fn take_touched(&self) -> bool {
        self.touched.load(Ordering::Relaxed) && self.touched.swap(false, Ordering::Relaxed)
    }

    /// Revokes it: when this returns, no sender uses it again, and everything a sender delivered
    /// through it has been delivered.
    pub(crate) fn revoke(&self) {
        self.valid.store(false, Ordering::SeqCst);
        wait_until_left(&self.inflight);
    }
}

/// Waits until no sender is inside (`inflight` is 0): spins a little (a sender is inside for
/// one push), then yields its thread. The SeqCst load pairs with the senders' SeqCst entry and
/// `Release` exit.
pub(crate) fn wait_until_left(inflight: &AtomicUsize) {
    let mut spins = 0u32;
    while inflight.load(Ordering::SeqCst) != 0 {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A sender inside a [`Lease`].
struct Entered<'a, T>(&'a Lease<T>);

impl<T> Drop for Entered<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Release);
    }
}

/// A published route for one entity id.
pub(crate) enum Route<M> {
    /// The entity runs here, in a shard that is active here.
    Local(Arc<Lease<ActorRef<M>>>),
    /// The entity's shard lives on another node: its region there.
    Remote(Arc<RemoteHome<M>>),
}

/// The region of another node that hosts one shard, as a lease shared by every id of the shard.
pub(crate) type RemoteHome<M> = Lease<(UniqueAddress, ActorRef<ShardEnvelope<M>>)>;

impl<M> Clone for Route<M> {
    fn clone(&self) -> Self {
        match self {
            Route::Local(l) => Route::Local(l.clone()),
            Route::Remote(l) => Route::Remote(l.clone()),
        }
    }
}

/// The direct routes of one region, shared by its senders (as its interceptor) and the region.
pub(crate) struct Direct<M: Send + 'static> {
    /// Entity messages counted into the region's mailbox and not yet dealt with.
    pending: CachePadded<AtomicUsize>,
    routes: papaya::HashMap<EntityId, Route<M>, foldhash::fast::RandomState>,
    /// Local routes of short ids, found without a lookup in `routes`.
    cache: RouteCache<M>,
}

/// Keeps the counter on a cache line of its own: senders read it on every message.
#[repr(align(128))]
struct CachePadded<T>(T);

impl<M: Send + 'static> Direct<M> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Direct {
            pending: CachePadded(AtomicUsize::new(0)),
            routes: papaya::HashMap::builder()
                .hasher(foldhash::fast::RandomState::default())
                .build(),
            cache: RouteCache::new(),
        })
    }

    /// The region has dealt with a counted message.
    pub(crate) fn done(&self) {
        self.pending.0.fetch_sub(1, Ordering::Release);
    }

    /// Publishes a route (replacing an older one for the id).
    pub(crate) fn publish(&self, id: EntityId, route: Route<M>) {
        self.cache.publish(&id, &route);
        self.routes.pin().insert(id, route);
    }

    /// Revokes `lease`, the route of `id`, and withdraws it.
    pub(crate) fn withdraw<T>(&self, id: &str, lease: &Lease<T>) {
        self.cache.remove(id);
        lease.revoke();
        self.routes.pin().remove(id);
    }

    /// Withdraws the route of `id`, whose lease its owner has revoked (one lease may serve
    /// many ids: a shard's home).
    pub(crate) fn forget(&self, id: &str) {
        self.cache.remove(id);
        self.routes.pin().remove(id);
    }

    /// Revokes and withdraws every route.
    pub(crate) fn clear(&self) {
        self.cache.clear();
        let routes = self.routes.pin();
        for (_, r) in routes.iter() {
            match r {
                Route::Local(l) => l.revoke(),
                Route::Remote(l) => l.revoke(),
            }
        }
        routes.clear();
    }

    /// The direct routes of the region `region` refers to, if it is a region on this node.
    pub(crate) fn of(region: &ActorRef<ShardEnvelope<M>>) -> Option<Arc<Self>> {
        let RefInner::Local(shared) = &region.inner else {
            return None;
        };
        Arc::clone(shared.intercept.get()?).as_any().downcast().ok()
    }

    /// Delivers a message for `id` by its direct route, or hands it back; for an `EntityRef`,
    /// which keeps the id (copied only to cross to another node) and the first local route it
    /// finds, in `cached`, and tries that first, without a lookup in the table. A revoked one is
    /// never used again (its lease says so), and the table is searched as usual.
    #[inline]
    pub(crate) fn try_route_cached(
        &self,
        id: &EntityId,
        cached: &std::sync::OnceLock<Arc<Lease<ActorRef<M>>>>,
        msg: M,
    ) -> Result<(), M> {
        if self.pending.0.load(Ordering::Acquire) != 0 {
            return Err(msg);
        }
        if let Some(l) = cached.get() {
            if let Some(_inside) = l.enter() {
                l.touch();
                return l.target.try_tell(msg).map_err(|e| e.into_inner());
            }
        }
        let routes = self.routes.pin();
        let route = routes.get(id.as_str());
        if let Some(Route::Local(l)) = route {
            let _ = cached.set(l.clone());
        }
        let mut msg = ManuallyDrop::new(msg);
        // SAFETY: when it returns `true` the message has been moved out of `msg`, which is then
        // neither used nor dropped (`ManuallyDrop`).
        if unsafe { Self::deliver_in_place(route, id, &mut msg) } {
            Ok(())
        } else {
            Err(ManuallyDrop::into_inner(msg))
        }
    }

    /// Delivers `*msg` for `id` by its direct route and returns `true`, having moved it out;
    /// or returns `false`, with `*msg` in place. The message is moved only to be delivered.
    ///
    /// # Safety
    ///
    /// When this returns `true`, `*msg` has been moved out: the caller must neither use nor
    /// drop it. If delivering panics, `*msg` may have been moved out too, so the caller must
    /// hold it where unwinding does not drop it (`ManuallyDrop`).
    #[inline]
    unsafe fn route_in_place(&self, id: &EntityId, msg: &mut M) -> bool {
        if self.pending.0.load(Ordering::Acquire) != 0 {
            return false;
        }
        if let Some(cached) = self.cache.enter(id) {
            return match cached.route() {
                // The region empties the slot before it revokes an entity's lease: no need to
                // enter the lease (see `route_cache`).
                Route::Local(lease) => {
                    lease.touch();
                    // SAFETY: passed on from this function's contract.
                    unsafe { tell_in_place(&lease.target, msg) }
                }
                // A home's lease is revoked before the slots of its ids are emptied: entered.
                // SAFETY: passed on from this function's contract.
                remote => unsafe { Self::deliver_in_place(Some(remote), id, msg) },
            };
        }
        let routes = self.routes.pin();
        // SAFETY: passed on from this function's contract.
        unsafe { Self::deliver_in_place(routes.get(id.as_str()), id, msg) }
    }

    /// Delivers `*msg` by `route`, if it is still valid, as [`Direct::route_in_place`].
    ///
    /// # Safety
    ///
    /// As [`Direct::route_in_place`].
    #[inline]
    unsafe fn deliver_in_place(route: Option<&Route<M>>, id: &EntityId, msg: &mut M) -> bool {
        match route {
            Some(Route::Local(l)) => {
                let Some(_inside) = l.enter() else {
                    return false;
                };
                l.touch();
                // SAFETY: passed on from this function's contract.
                unsafe { tell_in_place(&l.target, msg) }
            }
            Some(Route::Remote(l)) => {
                let Some(_inside) = l.enter() else {
                    return false;
                };
                // SAFETY: the caller treats `*msg` as moved out when this returns `true`, as it
                // does below, and does not drop it if `tell` unwinds.
                let msg = unsafe { std::ptr::read(msg) };
                l.target.1.tell(ShardEnvelope {
                    kind: Kind::Forwarded {
                        id: id.clone(),
                        msg,
                        counted: false,
                    },
                });
                true
            }
            None => false,
        }
    }
}

/// Tells `*msg` to `target`: moves it out and returns `true` if it was queued, or writes it back
/// and returns `false`.
///
/// # Safety
///
/// As [`Direct::route_in_place`].
#[inline]
unsafe fn tell_in_place<M: Send + 'static>(target: &ActorRef<M>, msg: &mut M) -> bool {
    // SAFETY: `*msg` is written back below unless it was queued, and the caller does not drop
    // it if `try_tell` unwinds (this function's contract).
    let m = unsafe { std::ptr::read(msg) };
    match target.try_tell(m) {
        Ok(()) => true,
        Err(e) => {
            // SAFETY: `*msg` was moved out above, so writing over it drops nothing.
            unsafe { std::ptr::write(msg, e.into_inner()) };
            false
        }
    }
}

impl<M: Send + 'static> Intercept<ShardEnvelope<M>> for Direct<M> {
    unsafe fn intercept(&self, env: &mut ManuallyDrop<ShardEnvelope<M>>) -> bool {
        let (Kind::Entity { id, msg, counted } | Kind::Forwarded { id, msg, counted }) =
            &mut env.kind
        else {
            return false;
        };
        // SAFETY: `env` is held in `ManuallyDrop` by the caller, and on `true` neither used nor
        // dropped by it: the message has been moved out, and the id is dropped here.
        if unsafe { self.route_in_place(id, msg) } {
            // SAFETY: the id is not used again: the caller forgets the envelope on `true`.
            unsafe { std::ptr::drop_in_place(id) };
            return true;
        }
        self.pending.0.fetch_add(1, Ordering::AcqRel);
        *counted = true;
        false
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }

    fn counted(&self, env: &ShardEnvelope<M>) -> bool {
        env.is_counted()
    }

    fn uncount(&self) {
        self.done();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::actor::cell::lend;
    use crate::remote::NodeAddress;
    use crate::testing::TestProbe;
    use crate::ActorSystem;
    use std::time::Duration;

    /// A home region on "another node": a probe that receives what reaches it.
    pub(crate) fn home(
        system: &ActorSystem,
    ) -> (Arc<RemoteHome<u64>>, TestProbe<ShardEnvelope<u64>>) {
        let probe = TestProbe::new(system);
        let node = UniqueAddress::new(NodeAddress::new("t", "127.0.0.1", 2552), 2);
        (Lease::new((node, probe.actor_ref())), probe)
    }

    /// Hands `env` to `intercept` as a sender's tell would: `true` if it went by a direct
    /// route, `false` if it would have been queued (it is uncounted again and dropped).
    pub(crate) fn goes_direct_through<M: Send + 'static>(
        intercept: &dyn Intercept<ShardEnvelope<M>>,
        env: ShardEnvelope<M>,
    ) -> bool {
        let Some(back) = lend(intercept, env) else {
            return true;
        };
        assert!(intercept.counted(&back));
        assert!(matches!(back.kind, Kind::Entity { counted: true, .. }));
        intercept.uncount();
        false
    }

    /// Tells `(id, n)` as a sender would (see [`goes_direct_through`]).
    fn tell(direct: &Direct<u64>, id: &str, n: u64) -> bool {
        goes_direct_through(direct, ShardEnvelope::new(id, n))
    }

    /// A short id's remote route is found in the route cache; once its home's lease is revoked
    /// (before the region forgets the ids, as it does), the cached route is not used again.
    #[tokio::test]
    async fn a_cached_remote_route_is_not_used_once_its_home_is_revoked() {
        let system = ActorSystem::new("direct");
        let direct = Direct::<u64>::new();
        let (lease, mut probe) = home(&system);
        let id = EntityId::from("alice");
        assert!(direct.cache.enter(&id).is_none());
        direct.publish(id.clone(), Route::Remote(lease.clone()));
        assert!(
            direct.cache.enter(&id).is_some(),
            "a short id's remote route is cached"
        );
        assert!(tell(&direct, "alice", 1));
        let got = probe.expect_message(Duration::from_secs(5)).await;
        assert!(
            matches!(&got.kind, Kind::Forwarded { id, msg: 1, counted: false } if &**id == "alice")
        );
        lease.revoke();
        // Still in the slot, but revoked: the message takes the region's way.
        assert!(direct.cache.enter(&id).is_some());
        assert!(!tell(&direct, "alice", 2));
        direct.forget("alice");
        assert!(direct.cache.enter(&id).is_none());
        assert!(!tell(&direct, "alice", 3));
        assert!(
            probe.receive_message(Duration::ZERO).await.is_none(),
            "nothing went by the revoked route"
        );
        system.shutdown().await;
    }
}
