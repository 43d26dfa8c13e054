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
//!   same connection. The window is a single push, so the wait is short.
//!
//! The interceptor is installed when the region is created, before any ref to it exists, so no
//! message reaches the region uncounted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::envelope::{EntityId, Kind, ShardEnvelope};
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
    fn touch(&self) {
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
        let mut spins = 0u32;
        while self.inflight.load(Ordering::SeqCst) != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
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
        })
    }

    /// The region has dealt with a counted message.
    pub(crate) fn done(&self) {
        self.pending.0.fetch_sub(1, Ordering::Release);
    }

    /// Publishes a route (replacing an older one for the id).
    pub(crate) fn publish(&self, id: EntityId, route: Route<M>) {
        self.routes.pin().insert(id, route);
    }

    /// Revokes `lease`, the route of `id`, and withdraws it.
    pub(crate) fn withdraw<T>(&self, id: &str, lease: &Lease<T>) {
        lease.revoke();
        self.forget(id);
    }

    /// Withdraws the route of `id`, whose lease its owner has revoked (one lease may serve
    /// many ids: a shard's home).
    pub(crate) fn forget(&self, id: &str) {
        self.routes.pin().remove(id);
    }

    /// Revokes and withdraws every route.
    pub(crate) fn clear(&self) {
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

    /// [`Direct::try_route`] for a sender that keeps the id (an `EntityRef`): the id is copied
    /// only to cross to another node.
    #[inline]
    pub(crate) fn try_route_ref(&self, id: &EntityId, msg: M) -> Result<(), M> {
        if self.pending.0.load(Ordering::Acquire) != 0 {
            return Err(msg);
        }
        let routes = self.routes.pin();
        Self::deliver(routes.get(id.as_str()), id, msg)
    }

    /// [`Direct::try_route_ref`] for an `EntityRef`, which keeps the first local route it finds
    /// in `cached` and tries it first, without a lookup in the table. A revoked one is never
    /// used again (its lease says so), and the table is searched as usual.
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
        Self::deliver(route, id, msg)
    }

    /// Delivers by `route`, if it is still valid.
    #[inline]
    fn deliver(route: Option<&Route<M>>, id: &EntityId, msg: M) -> Result<(), M> {
        match route {
            Some(Route::Local(l)) => {
                let Some(_inside) = l.enter() else {
                    return Err(msg);
                };
                l.touch();
                l.target.try_tell(msg).map_err(|e| e.into_inner())
            }
            Some(Route::Remote(l)) => {
                let Some(_inside) = l.enter() else {
                    return Err(msg);
                };
                l.target.1.tell(ShardEnvelope {
                    kind: Kind::Forwarded {
                        id: id.clone(),
                        msg,
                        counted: false,
                    },
                });
                Ok(())
            }
            None => Err(msg),
        }
    }

    /// Delivers an entity message by its route, or hands it back.
    #[inline]
    fn try_route(&self, id: EntityId, msg: M) -> Result<(), (EntityId, M)> {
        self.try_route_ref(&id, msg).map_err(|m| (id, m))
    }
}

impl<M: Send + 'static> Intercept<ShardEnvelope<M>> for Direct<M> {
    fn intercept(&self, env: ShardEnvelope<M>) -> Option<ShardEnvelope<M>> {
        let (id, msg, forwarded) = match env.kind {
            Kind::Entity { id, msg, .. } => (id, msg, false),
            Kind::Forwarded { id, msg, .. } => (id, msg, true),
            other => return Some(ShardEnvelope { kind: other }),
        };
        let (id, msg) = self.try_route(id, msg).err()?;
        self.pending.0.fetch_add(1, Ordering::AcqRel);
        let counted = true;
        let kind = if forwarded {
            Kind::Forwarded { id, msg, counted }
        } else {
            Kind::Entity { id, msg, counted }
        };
        Some(ShardEnvelope { kind })
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
