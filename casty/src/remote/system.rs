//! A remote-enabled `ActorSystem`: binding, remote refs, and the bridge between the endpoint and
//! the actor core's wire support (`actor::wire`).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::actor::actor_ref::ActorRef;
use crate::actor::cell::{AnyCell, SysMsg, Watcher};
use crate::actor::message::Message;
use crate::actor::path::ActorPath;
use crate::actor::system::{ActorSystem, SystemInner};
use crate::actor::wire::{self, NodeDown, NodeDownHook, WireProvider, WireRoute};
use crate::remote::endpoint::{
    node_uid, DeliveryCache, Endpoint, EndpointSettings, Inbound, PeerInfo, Route,
};
use crate::remote::frame::{CompactRef, EnvelopeRef, Frame, FrameRef, WirePath};
use crate::remote::handshake::Refusal;
use crate::remote::{AddressError, NodeAddress, RemoteCounters, TcpTransport, Transport};

/// How a system takes part in remoting (see [`ActorSystem::start_remote`]).
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteSettings;
/// let s = RemoteSettings::new("127.0.0.1", 0).secret("s3cret").max_frame(64 * 1024);
/// assert_eq!(s.port, 0);
/// ```
#[derive(Clone)]
pub struct RemoteSettings {
    /// The host to bind and to announce.
    pub host: String,
    /// The port (0 picks a free one).
    pub port: u16,
    /// A shared secret every peer must prove (HMAC challenge-response; it never travels).
    pub secret: Option<Vec<u8>>,
    /// The largest frame accepted or sent (default 256 KiB).
    pub max_frame: usize,
    /// Frames buffered per peer before more become dead letters (default 100,000).
    pub outbound_capacity: usize,
    /// How long a connection may take to handshake, TLS included (default 5 s).
    pub handshake_timeout: Duration,
    /// How many inbound connections may be in handshake at once (default 128). More are closed
    /// at once, unread, and counted in [`RemoteCounters::handshakes_shed`]; a peer shed this way
    /// retries with its backoff. Handshake frames are limited to
    /// [`HANDSHAKE_MAX_FRAME`](crate::remote::HANDSHAKE_MAX_FRAME) bytes, so each such connection
    /// costs little.
    pub max_handshakes: usize,
    /// Reconnection backoff: first and longest wait (default 50 ms, 5 s).
    pub backoff: (Duration, Duration),
    /// The transport (default TCP; tests use `casty::testing::FaultyTransport`).
    pub transport: Arc<dyn Transport>,
    /// How long a lost connection may stay lost before the node counts as gone: its watched
    /// actors are `Terminated` and asks to it fail (default 10 s). Until cluster membership
    /// exists, this is the failure detector.
    pub unreachable_after: Duration,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl RemoteSettings {
    /// Settings for `host:port`, with the defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RemoteSettings {
            host: host.into(),
            port,
            secret: None,
            max_frame: crate::remote::DEFAULT_MAX_FRAME,
            outbound_capacity: 100_000,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: crate::remote::endpoint::DEFAULT_MAX_HANDSHAKES,
            backoff: (Duration::from_millis(50), Duration::from_secs(5)),
            transport: Arc::new(TcpTransport),
            unreachable_after: Duration::from_secs(10),
        }
    }

    /// Sets how long a lost connection may stay lost before the node counts as gone.
    pub fn unreachable_after(mut self, after: Duration) -> Self {
        self.unreachable_after = after;
        self
    }

    /// Requires every peer to prove `secret`.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// Sets the frame limit.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets how long a connection may take to handshake, TLS included.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets how many inbound connections may be in handshake at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::remote::RemoteSettings;
    /// let s = RemoteSettings::new("127.0.0.1", 0).max_handshakes(16);
    /// assert_eq!(s.max_handshakes, 16);
    /// ```
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n;
        self
    }

    /// Uses another transport.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }
}

/// What can go wrong starting remoting or naming a remote actor.
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteError;
/// assert_eq!(RemoteError::NotStarted.to_string(), "remoting is not started on this system");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// `start_remote` has not been called.
    #[error("remoting is not started on this system")]
    NotStarted,
    /// `start_remote` was called twice.
    #[error("remoting is already started on this system")]
    AlreadyStarted,
    /// The address could not be bound.
    #[error("cannot bind {address}: {reason}")]
    Bind {
        /// What was bound.
        address: String,
        /// The OS error.
        reason: String,
    },
    /// A malformed address.
    #[error(transparent)]
    Address(#[from] AddressError),
}

/// A refusal seen by this node, published on the event stream (R2).
///
/// # Examples
///
/// ```
/// use casty::remote::HandshakeRefused;
/// fn log(e: &HandshakeRefused) { eprintln!("{}: {}", e.peer, e.reason); }
/// # let _ = log;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRefused {
    /// The peer (its node address, or its socket address for an inbound connection).
    pub peer: String,
    /// Why, as both sides log it.
    pub reason: Refusal,
}

impl Message for HandshakeRefused {}

struct Provider {
    node: String,
    endpoint: Endpoint,
    nodes: Arc<Nodes>,
    /// Resolved routes by node, so each reply ref does not resolve its node again.
    routes: Mutex<HashMap<String, Arc<dyn WireRoute>>>,
}

/// A remote actor watched from this node.
struct Watched {
    path: String,
    wire_uid: u64,
    alias: ActorPath,
    watcher: Arc<dyn Watcher>,
}

/// The remote actors watched from this node on one other node, by path and then by watcher uid:
/// a watch, an unwatch and a `Terminated` each touch only their own entries, however many
/// watches there are.
#[derive(Default)]
struct WatchedOnNode {
    by_path: HashMap<String, HashMap<u64, Vec<Watched>>>,
    len: usize,
}

impl WatchedOnNode {
    fn add(&mut self, w: Watched) {
        self.by_path
            .entry(w.path.clone())
            .or_default()
            .entry(w.watcher.watcher_uid())
            .or_default()
            .push(w);
        self.len += 1;
    }

    fn remove(&mut self, path: &str, watcher_uid: u64) {
        let Some(by_watcher) = self.by_path.get_mut(path) else {
            return;
        };
        if let Some(list) = by_watcher.remove(&watcher_uid) {
            self.len -= list.len();
        }
        if by_watcher.is_empty() {
            self.by_path.remove(path);
        }
    }

    /// Takes the watches that end because `path`, incarnation `uid`, terminated.
    fn terminated(&mut self, path: &str, uid: u64) -> Vec<Watched> {
        let Some(by_watcher) = self.by_path.get_mut(path) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        by_watcher.retain(|_, list| {
            let (ended, kept): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|w| w.wire_uid == 0 || w.wire_uid == uid);
            gone.extend(ended);
            *list = kept;
            !list.is_empty()
        });
        if by_watcher.is_empty() {
            self.by_path.remove(path);
        }
        self.len -= gone.len();
        gone
    }

    fn into_all(self) -> Vec<Watched> {
        self.by_path
            .into_values()
            .flat_map(HashMap::into_values)
            .flatten()
            .collect()
    }
}

/// What this node knows of another.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Status {
    /// Its incarnation uid, as of the last handshake.
    uid: u64,
    up: bool,
    /// Which disconnection a pending unreachability timer belongs to.
    generation: u64,
    /// Whether that incarnation was already declared gone (its watches and asks are done).
    gone: bool,
}

#[derive(Default)]
struct NodesInner {
    /// Remote actors watched from here, by node.
    watched: HashMap<String, WatchedOnNode>,
    /// What to run when a node goes down.
    hooks: HashMap<String, Vec<NodeDownHook>>,
    hooks_prune_at: usize,
    status: HashMap<String, Status>,
    /// Why each node that refuses our handshake now does so.
    refusals: HashMap<String, String>,
    generation: u64,
    /// Watches other nodes hold on this node's actors: (node, their watcher uid, watched path)
    /// → how the watch is held here.
    remote_watchers: HashMap<(String, u64, String), RemoteWatch>,
}

/// A watch another node holds on one of this node's actors.
struct RemoteWatch {
    /// The alias uid the watched cell knows the watcher by.
    alias: u64,
    /// The watching node's incarnation.
    node_uid: u64,
}

/// What this node knows of the others: incarnations, reachability, and the watches across.
struct Nodes {
    inner: Mutex<NodesInner>,
    unreachable_after: Duration,
    system: Weak<SystemInner>,
    endpoint: Endpoint,
}

impl Nodes {
    fn lock(&self) -> std::sync::MutexGuard<'_, NodesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The incarnation `uid` of `node` is gone (unreachable too long, replaced by a restart, or
    /// shut down): the actors watched there are terminated, asks to it fail with `why`, and the
    /// watches it held here are dropped. If watches crossed between us and it did not leave by
    /// itself, that incarnation is quarantined: it could not otherwise learn that its watches
    /// here are gone, so it is made to see this node as gone too (R1).
    fn down(&self, node: &str, uid: u64, why: NodeDown) {
        let (watched, hooks, watchers) = {
            let mut g = self.lock();
            if let Some(s) = g.status.get_mut(node) {
                s.gone = true;
            }
            let mut watchers: Vec<(String, u64)> = Vec::new();
            g.remote_watchers.retain(|(n, _, path), w| {
                let gone = n == node && w.node_uid == uid;
                if gone {
                    watchers.push((path.clone(), w.alias));
                }
                !gone
            });
            (
                g.watched
                    .remove(node)
                    .map(WatchedOnNode::into_all)
                    .unwrap_or_default(),
                g.hooks.remove(node).unwrap_or_default(),
                watchers,
            )
        };
        if !watched.is_empty() || !hooks.is_empty() || !watchers.is_empty() {
            tracing::warn!(node, uid, "node gone: terminating its watched actors");
        }
        if why == NodeDown::Unreachable {
            if let Ok(peer) = NodeAddress::from_node_key(node) {
                self.endpoint
                    .drop_queued(&peer, &format!("{peer} is unreachable"));
            }
        }
        if uid != 0
            && why != NodeDown::ShutDown
            && (!watched.is_empty() || !watchers.is_empty())
            && self.endpoint.quarantine(uid)
        {
            tracing::warn!(
                node,
                uid,
                "quarantined: this incarnation may not connect again"
            );
        }
        if let Some(system) = self.system.upgrade() {
            for (path, alias) in &watchers {
                if let Some(cell) = system.lookup_cell(path) {
                    cell.send_sys(SysMsg::Unwatch(*alias));
                }
            }
        }
        for w in watched {
            w.watcher.notify_death(w.alias, None);
        }
        for mut h in hooks {
            h(Some(&why));
        }
    }

    /// The incarnation `uid` of `node` said it is shutting down. It says so on every connection,
    /// so only the first notice counts, and only while that incarnation is the one we know.
    fn left(&self, node: &str, uid: u64) {
        let current = match self.lock().status.get(node) {
            None => true,
            Some(s) => (s.uid == uid || s.uid == 0) && !s.gone,
        };
        if current {
            tracing::info!(node, uid, "the node shut down");
            self.down(node, uid, NodeDown::ShutDown);
        }
    }

    /// `node` refuses our handshake: asks to it fail with the refusal (now and until a handshake
    /// succeeds), and the actors watched there are terminated, since no notice can come.
    fn refused(&self, node: &str, reason: String) {
        let (watched, hooks) = {
            let mut g = self.lock();
            g.refusals.insert(node.to_string(), reason.clone());
            (
                g.watched
                    .remove(node)
                    .map(WatchedOnNode::into_all)
                    .unwrap_or_default(),
                g.hooks.remove(node).unwrap_or_default(),
            )
        };
        for w in watched {
            w.watcher.notify_death(w.alias, None);
        }
        let why = NodeDown::Refused(reason);
        for mut h in hooks {
            h(Some(&why));
        }
    }

    fn connected(&self, node: String, uid: u64) {
        let previous = self.lock().status.get(&node).copied();
        if let Some(p) = previous {
            if p.uid != uid && !p.gone {
                // Whatever was watched or asked of the old incarnation is over.
                tracing::info!(
                    node,
                    old_uid = p.uid,
                    uid,
                    "the node restarted: a new incarnation"
                );
                self.down(&node, p.uid, NodeDown::Restarted);
            }
        }
        let mut g = self.lock();
        let generation = g.generation;
        g.refusals.remove(&node);
        g.status.insert(
            node,
            Status {
                uid,
                up: true,
                generation,
                gone: false,
            },
        );
    }

    fn disconnected(self: &Arc<Self>, node: String) {
        let generation = {
            let mut g = self.lock();
            g.generation += 1;
            let generation = g.generation;
            let s = g.status.entry(node.clone()).or_insert(Status {
                uid: 0,
                up: false,
                generation,
                gone: false,
            });
            s.up = false;
            s.generation = generation;
            generation
        };
        self.arm(node, generation);
    }

    /// A watch or an ask for a node already declared gone, and not back: it gets its own
    /// `unreachable_after`, so that it ends too unless the node returns meanwhile. Called with
    /// the lock held; returns the timer to [`Nodes::arm`] once it is released.
    fn rearm(g: &mut NodesInner, node: &str) -> Option<u64> {
        let s = g.status.get_mut(node).filter(|s| s.gone && !s.up)?;
        g.generation += 1;
        s.generation = g.generation;
        Some(g.generation)
    }

    /// Declares `node` gone after `unreachable_after`, unless it connects meanwhile or the timer
    /// is superseded by a later one.
    fn arm(self: &Arc<Self>, node: String, generation: u64) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.unreachable_after).await;
            let still_down = match me.lock().status.get(&node) {
                Some(s) if !s.up && s.generation == generation => Some(s.uid),
                _ => None,
            };
            if let Some(uid) = still_down {
                me.down(&node, uid, NodeDown::Unreachable);
            }
        });
    }
}

/// A watcher on another node, registered with a local actor: tells that node when it stops.
struct RemoteWatcher {
    alias: u64,
    to: NodeAddress,
    /// The watcher's own uid on its node (part of its key in `remote_watchers`).
    their_uid: u64,
    nodes: Weak<Nodes>,
}

impl Watcher for RemoteWatcher {
    fn watcher_uid(&self) -> u64 {
        self.alias
    }

    fn notify_death(&self, path: ActorPath, _failure: Option<crate::Failure>) {
        let Some(nodes) = self.nodes.upgrade() else {
            return;
        };
        let key = (
            self.to.node_key(),
            self.their_uid,
            path.as_str().to_string(),
        );
        {
            let mut g = nodes.lock();
            if g.remote_watchers
                .get(&key)
                .is_some_and(|w| w.alias == self.alias)
            {
                g.remote_watchers.remove(&key);
            }
        }
        let frame = Frame::Terminated {
            path: WirePath {
                path: path.as_str().to_string(),
                uid: path.uid(),
            },
        };
        if let Err(e) = nodes.endpoint.send(&self.to, &frame) {
            tracing::debug!(to = %self.to, error = %e, "cannot tell a remote watcher");
        }
    }
}

impl WireProvider for Provider {
    fn node(&self) -> &str {
        &self.node
    }

    fn route(&self, node: &str) -> Result<Arc<dyn WireRoute>, String> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = routes.get(node) {
            return Ok(r.clone());
        }
        let peer = NodeAddress::from_node_key(node).map_err(|e| e.to_string())?;
        let r: Arc<dyn WireRoute> = Arc::new(self.endpoint.route(&peer));
        routes.insert(node.to_string(), r.clone());
        Ok(r)
    }

    fn watch(&self, node: &str, path: &str, uid: u64, alias: ActorPath, watcher: Arc<dyn Watcher>) {
        let Ok(peer) = NodeAddress::from_node_key(node) else {
            watcher.notify_death(alias, None);
            return;
        };
        let watcher_uid = watcher.watcher_uid();
        let rearmed = {
            let mut g = self.nodes.lock();
            g.watched.entry(node.to_string()).or_default().add(Watched {
                path: path.to_string(),
                wire_uid: uid,
                alias,
                watcher,
            });
            Nodes::rearm(&mut g, node)
        };
        if let Some(generation) = rearmed {
            self.nodes.arm(node.to_string(), generation);
        }
        let frame = Frame::Watch {
            target: WirePath {
                path: path.to_string(),
                uid,
            },
            watcher: WirePath {
                path: String::new(),
                uid: watcher_uid,
            },
        };
        if let Err(e) = self.endpoint.send(&peer, &frame) {
            tracing::warn!(node, error = %e, "cannot send a watch");
        }
    }

    fn unwatch(&self, node: &str, path: &str, watcher_uid: u64) {
        if let Some(watched) = self.nodes.lock().watched.get_mut(node) {
            watched.remove(path, watcher_uid);
        }
        if let Ok(peer) = NodeAddress::from_node_key(node) {
            let frame = Frame::Unwatch {
                target: WirePath {
                    path: path.to_string(),
                    uid: 0,
                },
                watcher: WirePath {
                    path: String::new(),
                    uid: watcher_uid,
                },
            };
            let _ = self.endpoint.send(&peer, &frame);
        }
    }

    fn on_node_down(&self, node: &str, mut hook: NodeDownHook) {
        let mut guard = self.nodes.lock();
        let g = &mut *guard;
        if let Some(reason) = g.refusals.get(node) {
            // It refuses us now: the ask fails at once with the refusal.
            let why = NodeDown::Refused(reason.clone());
            drop(guard);
            hook(Some(&why));
            return;
        }
        // Hooks of finished asks are pruned when a node's list grows past twice what was live.
        match g.hooks.get_mut(node) {
            Some(list) => {
                if list.len() > g.hooks_prune_at.max(1024) {
                    list.retain_mut(|h| h(None));
                    g.hooks_prune_at = list.len() * 2;
                }
                list.push(hook);
            }
            None => {
                g.hooks.insert(node.to_string(), vec![hook]);
            }
        }
        let rearmed = Nodes::rearm(g, node);
        drop(guard);
        if let Some(generation) = rearmed {
            self.nodes.arm(node.to_string(), generation);
        }
    }

    fn shutdown(&self) -> crate::actor::behavior::BoxFuture<'_, ()> {
        Box::pin(self.endpoint.shutdown())
    }

    fn incarnation(&self, node: &str) -> u64 {
        self.endpoint.incarnation_of_key(node)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl WireRoute for Route {
    fn send(&self, path: &str, uid: u64, manifest: &str, payload: &[u8]) -> Result<(), String> {
        let frame = FrameRef::Envelope(EnvelopeRef(path, uid, manifest, payload));
        Route::send(self, &frame).map_err(|e| e.to_string())
    }

    fn define(&self, path: &str, manifest: &str) -> Result<Option<u32>, String> {
        Route::define(self, path, manifest).map_err(|e| e.to_string())
    }

    fn send_compact(&self, id: u32, uid: u64, payload: &[u8]) -> Result<(), String> {
        Route::send(self, &FrameRef::Compact(CompactRef(id, uid, payload)))
            .map_err(|e| e.to_string())
    }

    fn incarnation(&self) -> u64 {
        Route::incarnation(self)
    }
}

/// Hands inbound frames to the system. Holds the system weakly: the system owns the endpoint.
struct ToSystem(Weak<SystemInner>);

impl ToSystem {
    fn provider(inner: &SystemInner) -> Option<&Provider> {
        inner.wire.get()?.as_any().downcast_ref::<Provider>()
    }
}

impl Inbound for ToSystem {
    fn frame(&self, from: &PeerInfo, frame: Frame) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        match frame {
            Frame::Envelope(e) => {
                let r = &e.recipient;
                self.envelope(from, &r.path, r.uid, &e.manifest, &e.payload);
            }
            Frame::Watch { target, watcher } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let cell = inner
                    .lookup_cell(&target.path)
                    .filter(|c| target.uid == 0 || c.path().uid() == target.uid);
                match cell {
                    Some(cell) => {
                        let alias = crate::actor::path::next_uid();
                        let replaced = p.nodes.lock().remote_watchers.insert(
                            (from.address.node_key(), watcher.uid, target.path.clone()),
                            RemoteWatch {
                                alias,
                                node_uid: from.uid,
                            },
                        );
                        if let Some(old) = replaced {
                            // The same watch again: one registration, like a local re-watch.
                            cell.send_sys(SysMsg::Unwatch(old.alias));
                        }
                        // Keep an association with the watcher's node, so that its loss is
                        // noticed and this watch does not outlive it.
                        drop(p.endpoint.route(&from.address));
                        cell.send_sys(SysMsg::Watch(Arc::new(RemoteWatcher {
                            alias,
                            to: from.address.clone(),
                            their_uid: watcher.uid,
                            nodes: Arc::downgrade(&p.nodes),
                        })));
                    }
                    None => {
                        // Nothing there (any more): it is terminated as far as anyone can tell.
                        let _ = p
                            .endpoint
                            .send(&from.address, &Frame::Terminated { path: target });
                    }
                }
            }
            Frame::Unwatch { target, watcher } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let entry = p.nodes.lock().remote_watchers.remove(&(
                    from.address.node_key(),
                    watcher.uid,
                    target.path.clone(),
                ));
                if let Some(w) = entry {
                    if let Some(cell) = inner.lookup_cell(&target.path) {
                        cell.send_sys(SysMsg::Unwatch(w.alias));
                    }
                }
            }
            Frame::Terminated { path } => {
                let Some(p) = Self::provider(&inner) else {
                    return;
                };
                let node = from.address.node_key();
                let gone: Vec<Watched> = {
                    let mut g = p.nodes.lock();
                    let Some(watched) = g.watched.get_mut(&node) else {
                        return;
                    };
                    watched.terminated(&path.path, path.uid)
                };
                for w in gone {
                    w.watcher.notify_death(w.alias, None);
                }
            }
            _ => {}
        }
    }

    fn envelope(&self, _from: &PeerInfo, path: &str, uid: u64, _manifest: &str, payload: &[u8]) {
        if let Some(inner) = self.0.upgrade() {
            wire::deliver_wire(&ActorSystem::from_inner(inner), path, uid, payload);
        }
    }

    fn compact(
        &self,
        _from: &PeerInfo,
        path: &str,
        uid: u64,
        payload: &[u8],
        cache: &mut DeliveryCache,
    ) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let system = ActorSystem::from_inner(inner);
        let slot = cache.get_or_insert_with(|| Box::new(None::<Arc<dyn AnyCell>>));
        match slot.downcast_mut::<Option<Arc<dyn AnyCell>>>() {
            Some(cell) => wire::deliver_wire_cached(&system, path, uid, payload, cell),
            None => wire::deliver_wire(&system, path, uid, payload),
        }
    }

    fn connected(&self, peer: &PeerInfo) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.connected(peer.address.node_key(), peer.uid);
            }
        }
    }

    fn disconnected(&self, peer: &NodeAddress) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.disconnected(peer.node_key());
            }
        }
    }

    fn node_refused(&self, peer: &NodeAddress, refusal: &Refusal) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.refused(
                    &peer.node_key(),
                    format!("{peer} refused the handshake: {refusal}"),
                );
            }
        }
    }

    fn peer_left(&self, peer: &PeerInfo) {
        if let Some(inner) = self.0.upgrade() {
            if let Some(p) = Self::provider(&inner) {
                p.nodes.left(&peer.address.node_key(), peer.uid);
            }
        }
    }

    fn dropped(&self, peer: &NodeAddress, first: Option<(&str, u64)>, count: u64, why: &str) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        let node: Arc<str> = Arc::from(peer.node_key());
        let recipient = match first {
            Some((path, uid)) => ActorPath::new(node, path.to_string(), uid),
            None => ActorPath::new(node, "/".to_string(), 0),
        };
        inner.dead_letters(&recipient, count, || {
            let message = if count == 1 {
                "<a message>".to_string()
            } else {
                format!("<{count} messages>")
            };
            (message, crate::DeadLetterReason::Remote(why.to_string()))
        });
    }

    fn refused(&self, peer: &str, refusal: &Refusal) {
        if let Some(inner) = self.0.upgrade() {
            inner.events.publish(HandshakeRefused {
                peer: peer.to_string(),
                reason: refusal.clone(),
            });
        }
    }
}

impl ActorSystem {
    /// Makes this system reachable from other nodes: binds `settings.host:port` and returns the
    /// node address, `casty://name@host:port`, with the port actually bound.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Bind`] if the address cannot be bound, [`RemoteError::AlreadyStarted`] on a
    /// second call.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::remote::RemoteSettings;
    /// use casty::ActorSystem;
    /// let system = ActorSystem::new("bank");
    /// let addr = system.start_remote(RemoteSettings::new("127.0.0.1", 0)).await.unwrap();
    /// assert!(addr.to_string().starts_with("casty://bank@127.0.0.1:"));
    /// assert_ne!(addr.port(), 0);
    /// # system.shutdown().await; }
    /// ```
    pub async fn start_remote(&self, settings: RemoteSettings) -> Result<NodeAddress, RemoteError> {
        let inner = self.inner().clone();
        if inner.wire.get().is_some() {
            return Err(RemoteError::AlreadyStarted);
        }
        let mut es = EndpointSettings::new(&*inner.name, settings.host.clone(), settings.port);
        es.secret = settings.secret.clone();
        es.max_frame = settings.max_frame;
        es.outbound_capacity = settings.outbound_capacity;
        es.handshake_timeout = settings.handshake_timeout;
        es.max_handshakes = settings.max_handshakes;
        (es.backoff_min, es.backoff_max) = settings.backoff;
        let inbound = Arc::new(ToSystem(Arc::downgrade(&inner)));
        let endpoint = Endpoint::bind(es, node_uid(), settings.transport.clone(), inbound)
            .await
            .map_err(|e: io::Error| RemoteError::Bind {
                address: format!("{}:{}", settings.host, settings.port),
                reason: e.to_string(),
            })?;
        let address = endpoint.address().clone();
        let node = address.node_key();
        let provider = Arc::new(Provider {
            node,
            endpoint: endpoint.clone(),
            nodes: Arc::new(Nodes {
                inner: Mutex::new(NodesInner::default()),
                unreachable_after: settings.unreachable_after,
                system: Arc::downgrade(&inner),
                endpoint: endpoint.clone(),
            }),
            routes: Mutex::new(HashMap::new()),
        });
        if inner.wire.set(provider).is_err() {
            endpoint.shutdown().await;
            return Err(RemoteError::AlreadyStarted);
        }
        tracing::info!(node = %address, "remoting started");
        Ok(address)
    }

    /// This node's address, once remoting is started.
    pub fn remote_address(&self) -> Option<NodeAddress> {
        NodeAddress::from_node_key(self.inner().wire.get()?.node()).ok()
    }

    /// A typed ref to the actor at `address` (`casty://system@host:port/path`), on this node or
    /// another. `M` must be serializable: that is checked here, at compile time. The actor on the
    /// other side must accept `M` from the wire (`#[message_enum]` does, unless `local`).
    ///
    /// # Errors
    ///
    /// [`RemoteError::NotStarted`] before `start_remote`, or a malformed address.
    pub fn remote_ref<M: Message + Serialize>(
        &self,
        address: &str,
    ) -> Result<ActorRef<M>, RemoteError> {
        let inner = self.inner();
        let provider = inner.wire.get().ok_or(RemoteError::NotStarted)?;
        let (node, path) = NodeAddress::parse_actor(address)?;
        let node = node.node_key();
        if node == provider.node() {
            return Ok(wire::resolve_node_ref(self, &node, path, 0));
        }
        Ok(wire::remote_ref(inner, &node, path, 0))
    }

    /// The remoting counters (frames, bytes, drops, reconnects), once remoting is started.
    pub fn remote_counters(&self) -> Option<RemoteCounters> {
        let provider = self.inner().wire.get()?;
        let any: &dyn std::any::Any = provider.as_any();
        any.downcast_ref::<Provider>().map(|p| {
            let mut c = p.endpoint.counters();
            let g = p.nodes.lock();
            c.watching = g.watched.values().map(|w| w.len).sum::<usize>() as u64;
            c.watched_by = g.remote_watchers.len() as u64;
            c
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher that counts how often anyone asked it for its uid.
    struct Nobody(u64, Arc<std::sync::atomic::AtomicUsize>);

    impl Watcher for Nobody {
        fn watcher_uid(&self) -> u64 {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0
        }

        fn notify_death(&self, _path: ActorPath, _failure: Option<crate::Failure>) {}
    }

    fn watched_counted(
        path: &str,
        wire_uid: u64,
        watcher: u64,
        asked: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> Watched {
        Watched {
            path: path.into(),
            wire_uid,
            alias: ActorPath::new("b@127.0.0.1:1".into(), path.into(), 1),
            watcher: Arc::new(Nobody(watcher, asked.clone())),
        }
    }

    fn watched(path: &str, wire_uid: u64, watcher: u64) -> Watched {
        watched_counted(path, wire_uid, watcher, &Default::default())
    }

    // Fifty thousand watchers of one remote actor come and go, each watch and unwatch looking at
    // its own entry only (counted, not timed: a scan of the node's list per unwatch would ask
    // every other watcher, over a billion times).
    #[test]
    fn many_watches_of_one_remote_actor_are_added_and_removed_quickly() {
        const N: u64 = 50_000;
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut w = WatchedOnNode::default();
        for uid in 1..=N {
            w.add(watched_counted("/user/target", 0, uid, &asked));
        }
        assert_eq!(w.len, N as usize);
        for uid in 1..=N {
            w.remove("/user/target", uid);
        }
        assert_eq!((w.len, w.by_path.len()), (0, 0));
        let looks = asked.load(std::sync::atomic::Ordering::Relaxed);
        assert!(looks <= N as usize, "{looks} uid lookups for {N} watches");
    }

    // `Terminated` for one incarnation ends the watches of that incarnation and of the path as a
    // whole, and leaves the others; an unwatch removes exactly that watcher's watches of a path.
    #[test]
    fn terminated_and_unwatch_take_exactly_their_watches() {
        let mut w = WatchedOnNode::default();
        w.add(watched("/a", 0, 1));
        w.add(watched("/a", 7, 2));
        w.add(watched("/a", 8, 3));
        w.add(watched("/b", 0, 1));
        w.add(watched("/b", 0, 2));
        let mut ended: Vec<u64> = w
            .terminated("/a", 7)
            .iter()
            .map(|x| x.watcher.watcher_uid())
            .collect();
        ended.sort_unstable();
        assert_eq!(ended, vec![1, 2]);
        assert_eq!(w.len, 3);
        assert!(w.terminated("/c", 1).is_empty());
        w.remove("/b", 1);
        w.remove("/b", 9);
        assert_eq!(w.len, 2);
        let mut rest: Vec<(String, u64)> = w
            .into_all()
            .into_iter()
            .map(|x| (x.path, x.watcher.watcher_uid()))
            .collect();
        rest.sort();
        assert_eq!(rest, vec![("/a".into(), 3), ("/b".into(), 2)]);
    }
}
