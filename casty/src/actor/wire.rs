//! The actor core's side of remoting: how messages and refs cross a wire, without knowing the
//! transport: the core defines the trait, the remote layer implements it.
//!
//! - A remoting layer installs a [`WireProvider`] on the system: the node's address and a way to
//!   send encoded messages to another node.
//! - A ref to an actor on another node is a [`RemoteRef<M>`]: `tell` encodes the message (CBOR)
//!   and hands the bytes to the [`WireRoute`] the provider resolved for that actor, which reports
//!   a failure as a [`RouteError`]. It needs `M: Serialize`, so that is checked at compile time.
//!   How the bytes travel (frames, compact recipient names) is the remoting layer's business.
//! - When a message is encoded for the wire, every `ActorRef` inside it is written with this
//!   node's address and *exported*: remembered by (path, uid), with a decoder for its type, so a
//!   message coming back for it can be delivered (R4). Exports of finished asks are pruned.
//! - [`deliver_wire`] takes an envelope from the wire to the exported ref or to the live local
//!   actor of that incarnation, decoding with the actor's own `Message::wire_decoder`. Anything else
//!   (an old incarnation, a local-only type, bad bytes) is a dead letter (R1).

// Without a remoting layer compiled in, nothing calls into this module.
#![cfg_attr(not(feature = "remote"), allow(dead_code))]

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::actor::actor_ref::{
    ActorRef, NotDelivered, Offer, RefCount, RefInner, RefTarget, TellError,
};
use crate::actor::ask::AskError;
use crate::actor::behavior::BoxFuture;
use crate::actor::cell::{Watcher, WireError};
use crate::actor::event_stream::DeadLetterReason;
use crate::actor::path::ActorPath;
use crate::actor::system::{ActorSystem, SystemInner};

/// What the core needs from a remoting layer.
pub(crate) trait WireProvider: Send + Sync + 'static {
    /// This node: `system@host:port`.
    fn node(&self) -> &str;
    /// The route to the actor at `path` on `node` (`system@host:port`): its incarnation `uid`
    /// (0 for whichever actor is at the path), whose messages are of type `manifest`. Resolved
    /// once and kept by the remote ref.
    fn route(
        &self,
        node: &str,
        path: &str,
        uid: u64,
        manifest: &'static str,
    ) -> Result<Arc<dyn WireRoute>, RouteError>;
    /// Asks `node` to tell this node when its actor `path` (`uid`, 0 for any) terminates, then
    /// to notify `watcher` with `alias` (the path the watcher knows the actor by). If the node
    /// becomes unreachable, the watcher is notified too.
    fn watch(&self, node: &str, path: &str, uid: u64, alias: ActorPath, watcher: Arc<dyn Watcher>);
    /// Undoes [`WireProvider::watch`] for the watcher with `watcher_uid`.
    fn unwatch(&self, node: &str, path: &str, watcher_uid: u64);
    /// Calls `f(Some(why))` once when `node` goes down: found unreachable, refusing our
    /// handshake, shut down, or replaced by a new incarnation. At once if it is refusing us now.
    /// Until then `f(None)` may be called to ask whether `f` still matters; it returns false when
    /// it does not, and is forgotten.
    fn on_node_down(&self, node: &str, f: NodeDownHook);
    /// The incarnation uid of `node` as of the last handshake with it, in either direction (0 if
    /// none yet). A ref to one incarnation of an actor there records it.
    fn incarnation(&self, node: &str) -> u64;
    /// Tells the other nodes this one is leaving and closes every connection (the system is
    /// shutting down); completes once that is done, or soon after.
    fn shutdown(&self) -> crate::actor::behavior::BoxFuture<'_, ()>;
    /// The provider itself, for the remoting layer to reach its own type.
    fn as_any(&self) -> &dyn Any;
}

/// A resolved way to one actor on another node (see [`WireProvider::route`]). How the message
/// travels (framing, compact recipient names) is the remoting layer's business.
pub(crate) trait WireRoute: Send + Sync + 'static {
    /// Sends one encoded message to the actor. A message refused because the queue to the
    /// node is full ([`RouteError::Full`]) is counted as dropped: the caller makes it a dead
    /// letter.
    fn send(&self, payload: &[u8]) -> Result<(), RouteError>;
    /// Like [`WireRoute::send`], but a message refused because the queue is full is not
    /// counted as dropped: the caller hands it back to its sender, who may offer it again
    /// once [`WireRoute::room`] resolves.
    fn offer(&self, payload: &[u8]) -> Result<(), RouteError>;
    /// Resolves once the queue to the node has room, or sending fails for another reason
    /// (remoting shut down, the node refusing this one).
    fn room(&self) -> crate::actor::behavior::BoxFuture<'_, ()>;
    /// Whether [`WireRoute::room`] would resolve at once.
    fn has_room(&self) -> bool;
    /// The incarnation uid of the node at the other end, as of the last handshake (0 if none).
    fn incarnation(&self) -> u64;
}

/// Why a message for another node was not sent. The text is what the dead letter for it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RouteError {
    /// This system has no remoting layer.
    #[error("remoting is not started")]
    NotStarted,
    /// The node's address is malformed; the text says how.
    #[error("{0}")]
    BadAddress(String),
    /// The message (or its frame) could not be encoded; the text is the encoder's.
    #[error("{0}")]
    Unencodable(String),
    /// The encoded message is larger than the frame limit of the connection.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The queue of messages waiting for the node (`casty://system@host:port`) is full: it is
    /// slow or unreachable.
    #[error("the outbound queue to {0} is full")]
    Full(String),
    /// Remoting is shut down on this node.
    #[error("remoting is shut down")]
    Closed,
    /// The node refused this node's last handshake; the text is the refusal.
    #[error("{0}")]
    Refused(String),
}

impl RouteError {
    /// The ask error for a request to the actor at `target` that was not sent for this reason:
    ///
    /// - the queue to its node is full: [`AskError::OutboundFull`] (this node's own queue, not
    ///   the actor's mailbox, hence not [`AskError::MailboxFull`]);
    /// - too large for a frame: [`AskError::TooLarge`];
    /// - its node refuses this one: [`AskError::Refused`], as when the refusal comes later;
    /// - anything else (unencodable, remoting not started or shut down here, a malformed
    ///   address): [`AskError::NotSent`] with this error's text.
    pub(crate) fn ask_error(self, target: &ActorPath) -> AskError {
        let node = format!("casty://{}", target.system_name());
        match self {
            RouteError::Full(node) => AskError::OutboundFull { node },
            RouteError::TooLarge { size, max } => AskError::TooLarge { size, max },
            RouteError::Refused(reason) => AskError::Refused { node, reason },
            e @ (RouteError::NotStarted
            | RouteError::BadAddress(_)
            | RouteError::Unencodable(_)
            | RouteError::Closed) => AskError::NotSent {
                node,
                reason: e.to_string(),
            },
        }
    }
}

/// Why a node is down for this one (see [`WireProvider::on_node_down`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeDown {
    /// Not reached for longer than remoting's `unreachable_after`.
    Unreachable,
    /// It refused our handshake; the text is the refusal.
    Refused(String),
    /// It shut down and said so.
    ShutDown,
    /// A new incarnation answered at its address.
    Restarted,
}

/// See [`WireProvider::on_node_down`].
pub(crate) type NodeDownHook = Box<dyn FnMut(Option<&NodeDown>) -> bool + Send>;

/// An exported ref: decodes wire bytes into its type and tells it.
pub(crate) trait WireSink: Send + Sync + 'static {
    fn deliver(&self, payload: &[u8]) -> Result<(), WireError>;
    fn is_closed(&self) -> bool;
    /// The `ActorRef<M>` itself, for resolving a ref that comes back to this node.
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

struct Exported<M> {
    actor: ActorRef<M>,
}

impl<M: DeserializeOwned + Send + 'static> WireSink for Exported<M> {
    fn deliver(&self, payload: &[u8]) -> Result<(), WireError> {
        let msg: M = crate::actor::message::cbor_decode(payload)
            .map_err(|e| WireError::Decode(e.to_string()))?;
        self.actor.tell(msg);
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.actor.is_closed()
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        &self.actor
    }
}

/// An exported ref: its path and its sink.
type Export = (Box<str>, Arc<dyn WireSink>);

/// The exported refs of a system, by incarnation uid (unique in the process), with their path.
#[derive(Default)]
pub(crate) struct Exports {
    map: Mutex<HashMap<u64, Export>>,
    /// Whether anything was ever exported (skips the lock for plain servers).
    used: std::sync::atomic::AtomicBool,
    /// Prune closed entries when the map grows past this.
    prune_at: std::sync::atomic::AtomicUsize,
}

impl Exports {
    fn insert<M: DeserializeOwned + Send + 'static>(&self, r: &ActorRef<M>) {
        let uid = r.path().uid();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&uid) {
            return;
        }
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        map.insert(
            uid,
            (
                Box::from(r.path().as_str()),
                Arc::new(Exported { actor: r.clone() }),
            ),
        );
        let limit = self
            .prune_at
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(256);
        if map.len() > limit {
            map.retain(|_, (_, s)| !s.is_closed());
            self.prune_at
                .store(map.len() * 2, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn get(&self, path: &str, uid: u64) -> Option<Arc<dyn WireSink>> {
        if uid == 0 || !self.used.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&uid)
            .filter(|(p, _)| &**p == path)
            .map(|(_, s)| s.clone())
    }
}

thread_local! {
    /// The system whose refs are being written for the wire, while a message is encoded.
    static WIRE: RefCell<Option<Arc<SystemInner>>> = const { RefCell::new(None) };
}

thread_local! {
    /// A reusable buffer for encoding messages, so a remote tell allocates nothing for it.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
}

/// Encodes `msg` for the wire as `system` into a reused buffer and hands the bytes to `f`.
fn with_encoded<M: Serialize, R>(
    system: &Arc<SystemInner>,
    msg: &M,
    f: impl FnOnce(&[u8]) -> Result<R, RouteError>,
) -> Result<R, RouteError> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            encode_into(system, msg, &mut buf)?;
            let r = f(&buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::with_capacity(256);
            }
            r
        }
        // Re-entered (a message encoded while encoding another): use a fresh buffer.
        Err(_) => {
            let mut buf = Vec::new();
            encode_into(system, msg, &mut buf)?;
            f(&buf)
        }
    })
}

fn encode_into<M: Serialize>(
    system: &Arc<SystemInner>,
    msg: &M,
    buf: &mut Vec<u8>,
) -> Result<(), RouteError> {
    struct Restore(Option<Arc<SystemInner>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            WIRE.with(|w| *w.borrow_mut() = prev);
        }
    }
    let prev = WIRE.with(|w| w.borrow_mut().replace(system.clone()));
    let _restore = Restore(prev);
    ciborium::into_writer(msg, buf).map_err(|e| RouteError::Unencodable(e.to_string()))
}

/// While encoding for the wire: the address to write for `r`, exporting it if it is ours.
pub(crate) fn wire_address<M: DeserializeOwned + Send + 'static>(
    r: &ActorRef<M>,
) -> Option<String> {
    WIRE.with(|w| {
        let w = w.borrow();
        let system = w.as_ref()?;
        let provider = system.wire.get()?;
        let path = r.path();
        if path.system_name().contains('@') {
            // Already a ref to another node: it keeps its address.
            return Some(path.address());
        }
        system.exports.insert(r);
        Some(format!("casty://{}{}", provider.node(), path.as_str()))
    })
}

/// Resolves a ref read from the wire: ours (exported or live), or a remote ref.
pub(crate) fn resolve_node_ref<M: Serialize + Send + 'static>(
    system: &ActorSystem,
    node: &str,
    path: &str,
    uid: u64,
) -> ActorRef<M> {
    let inner = system.inner();
    if let Some(provider) = inner.wire.get() {
        if provider.node() == node {
            if let Some(sink) = inner.exports.get(path, uid) {
                if let Some(r) = sink.as_any().downcast_ref::<ActorRef<M>>() {
                    return r.clone();
                }
            }
            let local = ActorPath::new(inner.name.clone(), path.to_string(), uid);
            return system.resolve(local);
        }
        return remote_ref(inner, node, path, uid);
    }
    let dead = ActorPath::new(Arc::from(node), path.to_string(), uid);
    ActorRef::from_target(Arc::new(crate::actor::serde_refs::DeadRef::new(
        dead,
        inner.clone(),
    )))
}

/// A ref to an actor on another node.
pub(crate) struct RemoteRef<M> {
    /// `system@host:port` as the system name, and the actor's path. Its uid is the actor's
    /// incarnation when known, else a local alias that keeps refs apart (equality, watches).
    pub(crate) path: ActorPath,
    /// The incarnation to address on the wire: 0 for whichever actor is at the path.
    pub(crate) wire_uid: u64,
    /// For a ref to one incarnation of an actor (`wire_uid` not 0): the incarnation of its node
    /// when the ref was made (0 if unknown). Once another incarnation answers at that address,
    /// the actor is known to be gone.
    node_uid: u64,
    pub(crate) system: Arc<SystemInner>,
    /// The route to the actor, resolved on first use.
    route: std::sync::OnceLock<Arc<dyn WireRoute>>,
    pub(crate) _m: std::marker::PhantomData<fn(M)>,
}

impl<M> RemoteRef<M> {
    fn route(&self) -> Result<&Arc<dyn WireRoute>, RouteError> {
        if let Some(r) = self.route.get() {
            return Ok(r);
        }
        let provider = self.system.wire.get().ok_or(RouteError::NotStarted)?;
        let r = provider.route(
            self.path.system_name(),
            self.path.as_str(),
            self.wire_uid,
            std::any::type_name::<M>(),
        )?;
        Ok(self.route.get_or_init(|| r))
    }
}

/// What became of a message sent through a [`RemoteRef`].
enum Sent {
    /// Queued for its node.
    Yes,
    /// The actor it names is known to be gone (its node restarted); a dead letter says so.
    Gone,
    /// Not sent, for this reason; a dead letter says so, unless it was an offer refused
    /// because the queue is full (the message goes back to its sender).
    No(RouteError),
}

impl<M: Serialize + Send + 'static> RemoteRef<M> {
    /// Encodes `msg` and queues it for the actor's node, or publishes a dead letter saying why
    /// not. With `offer`, a full queue is not a dead letter: the caller keeps the message.
    fn send_or_dead_letter(&self, msg: &M, offer: bool) -> Sent {
        if self.node_uid != 0 {
            if let Ok(route) = self.route() {
                let now = route.incarnation();
                if now != 0 && now != self.node_uid {
                    // Its node restarted since this ref was made: the actor it names is gone.
                    self.system.dead_letter_typed::<M>(
                        &self.path,
                        DeadLetterReason::Remote(format!(
                            "its node restarted (incarnation {:x} is gone)",
                            self.node_uid
                        )),
                    );
                    return Sent::Gone;
                }
            }
        }
        let sent = self.route().and_then(|route| {
            with_encoded(&self.system, msg, |payload| {
                if offer {
                    route.offer(payload)
                } else {
                    route.send(payload)
                }
            })
        });
        match sent {
            Ok(()) => Sent::Yes,
            Err(e @ RouteError::Full(_)) if offer => Sent::No(e),
            Err(e) => {
                // Whatever the reason (oversize, unencodable, the queue to the node full,
                // remoting shut down, a refusing node), the message is lost: a dead letter says
                // why, once.
                tracing::warn!(to = %self.path.address(), error = %e, "a remote message was not sent");
                self.system
                    .dead_letter_typed::<M>(&self.path, DeadLetterReason::Remote(e.to_string()));
                Sent::No(e)
            }
        }
    }
}

impl<M: Send> RefCount for RemoteRef<M> {}

impl<M: Serialize + Send + 'static> RefTarget<M> for RemoteRef<M> {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn system(&self) -> &Arc<SystemInner> {
        &self.system
    }

    fn deliver(&self, msg: M) -> Result<(), TellError<M>> {
        match self.send_or_dead_letter(&msg, false) {
            Sent::Yes => Ok(()),
            Sent::Gone => Err(TellError::Closed(msg)),
            Sent::No(_) => Err(TellError::Full(msg)),
        }
    }

    fn offer(&self, msg: M) -> Offer<M> {
        match self.send_or_dead_letter(&msg, true) {
            Sent::Yes => Offer::Done(Ok(())),
            Sent::Gone => Offer::Done(Err(TellError::Closed(msg))),
            Sent::No(RouteError::Full(_)) => Offer::Full(msg),
            Sent::No(_) => Offer::Done(Err(TellError::Full(msg))),
        }
    }

    fn room(&self) -> BoxFuture<'_, ()> {
        match self.route() {
            Ok(route) => route.room(),
            Err(_) => Box::pin(std::future::ready(())),
        }
    }

    fn has_room(&self) -> bool {
        self.route().map_or(true, |route| route.has_room())
    }

    fn deliver_checked(&self, msg: M) -> Result<(), NotDelivered> {
        match self.send_or_dead_letter(&msg, false) {
            Sent::Yes => Ok(()),
            Sent::Gone => Err(NotDelivered::Closed),
            Sent::No(e) => Err(NotDelivered::Route(e)),
        }
    }

    fn watch(&self, watcher: Arc<dyn Watcher>) {
        match self.system.wire.get() {
            Some(p) => p.watch(
                self.path.system_name(),
                self.path.as_str(),
                self.wire_uid,
                self.path.clone(),
                watcher,
            ),
            None => watcher.notify_death(self.path.clone(), None),
        }
    }

    fn unwatch(&self, watcher_uid: u64) {
        if let Some(p) = self.system.wire.get() {
            p.unwatch(self.path.system_name(), self.path.as_str(), watcher_uid);
        }
    }

    fn remote_node(&self) -> Option<&str> {
        Some(self.path.system_name())
    }

    fn wire_uid(&self) -> Option<u64> {
        Some(self.wire_uid)
    }
}

/// Builds a remote ref to `path` on `node` (from `ActorSystem::remote_ref`).
pub(crate) fn remote_ref<M: Serialize + Send + 'static>(
    system: &Arc<SystemInner>,
    node: &str,
    path: &str,
    uid: u64,
) -> ActorRef<M> {
    let alias = if uid == 0 {
        crate::actor::path::next_uid()
    } else {
        uid
    };
    let node_uid = match (uid, system.wire.get()) {
        (0, _) | (_, None) => 0,
        (_, Some(p)) => p.incarnation(node),
    };
    ActorRef::from_target(Arc::new(RemoteRef::<M> {
        path: ActorPath::new(Arc::from(node), path.to_string(), alias),
        wire_uid: uid,
        node_uid,
        system: system.clone(),
        route: std::sync::OnceLock::new(),
        _m: std::marker::PhantomData,
    }))
}

/// Delivers an envelope from the wire (R1, R4): to an exported ref, or to the live local actor of
/// that incarnation (uid 0: whichever is live). Anything else is a dead letter.
pub(crate) fn deliver_wire(system: &ActorSystem, path: &str, uid: u64, payload: &[u8]) {
    deliver_wire_cached(system, path, uid, payload, &mut None);
}

/// [`deliver_wire`], keeping the actor it found in `cache` for the next envelope to the same
/// recipient (a compact name on one connection) while that actor lives.
pub(crate) fn deliver_wire_cached(
    system: &ActorSystem,
    path: &str,
    uid: u64,
    payload: &[u8],
    cache: &mut Option<Arc<dyn crate::actor::cell::AnyCell>>,
) {
    let inner = system.inner();
    let outcome = system.resolving_refs(|| {
        if let Some(cell) = cache.as_ref().filter(|c| c.is_alive()) {
            if uid == 0 || cell.path().uid() == uid {
                return cell.tell_wire(payload);
            }
        }
        if let Some(sink) = inner.exports.get(path, uid) {
            return sink.deliver(payload);
        }
        match inner.lookup_cell(path) {
            Some(cell) if uid == 0 || cell.path().uid() == uid => {
                let r = cell.tell_wire(payload);
                *cache = Some(cell);
                r
            }
            _ => Err(WireError::NoSuchActor),
        }
    });
    if let Err(e) = outcome {
        let shown = ActorPath::new(inner.name.clone(), path.to_string(), uid);
        tracing::debug!(to = %shown, error = ?e, "a message from the wire became a dead letter");
        let reason = match &e {
            WireError::NoSuchActor => DeadLetterReason::RecipientGone,
            WireError::NotRemotable(t) => {
                DeadLetterReason::Remote(format!("{t} is not readable from the wire"))
            }
            WireError::Decode(why) => DeadLetterReason::Remote(format!("undecodable: {why}")),
        };
        inner.dead_letter(&shown, reason, || "<from the wire>".to_string());
    }
}

impl<M: Send + 'static> ActorRef<M> {
    /// Whether this ref is known to lead nowhere any more (a stopped local actor, a finished ask).
    pub(crate) fn is_closed(&self) -> bool {
        match &self.inner {
            RefInner::Local(s) => s.mailbox.is_closed(),
            RefInner::Target(t) => t.is_closed(),
        }
    }
}
