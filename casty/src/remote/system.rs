//! A remote-enabled `ActorSystem`: binding, remote refs, and the bridge between the endpoint and
//! the actor core's wire support (`actor::wire`).
//!
//! [`Nodes`] is the driver of node reachability: it keeps the pure [`Reachability`] state
//! machine behind one mutex with the watches and ask hooks it decides about, feeds it what the
//! endpoint and the actor core report, and carries out its commands (timers on tokio's time,
//! terminated watches, failed asks, quarantine through the endpoint).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};

use serde::Serialize;

use crate::actor::actor_ref::ActorRef;
use crate::actor::cell::{SysMsg, Watcher};
use crate::actor::message::Message;
use crate::actor::path::ActorPath;
use crate::actor::system::{ActorSystem, SystemInner};
use crate::actor::wire::{self, NodeDown, NodeDownHook, RouteError, WireProvider, WireRoute};
use crate::remote::endpoint::{node_uid, Endpoint, EndpointSettings, Route};
use crate::remote::frame::{Frame, WirePath};
use crate::remote::inbound::ToSystem;
use crate::remote::reachability::{Command, Reachability};
use crate::remote::route::ActorRoute;
use crate::remote::settings::{RemoteError, RemoteSettings};
use crate::remote::watch::{RemoteWatch, Watched, WatchedOnNode};
use crate::remote::{NodeAddress, RemoteCounters};

pub(crate) struct Provider {
    node: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) nodes: Arc<Nodes>,
    /// Resolved associations by node, so each reply ref does not resolve its node again.
    routes: Mutex<HashMap<String, Route>>,
}

pub(crate) struct NodesInner {
    /// Which nodes are reachable, which incarnations are gone, which refuse us.
    reachability: Reachability,
    /// Remote actors watched from here, by node.
    pub(crate) watched: HashMap<String, WatchedOnNode>,
    /// What to run when a node goes down.
    hooks: HashMap<String, Vec<NodeDownHook>>,
    hooks_prune_at: usize,
    /// Watches other nodes hold on this node's actors: (node, their watcher uid, watched path)
    /// → how the watch is held here.
    pub(crate) remote_watchers: HashMap<(String, u64, String), RemoteWatch>,
}

impl NodesInner {
    /// Takes, under the lock, what each command ends, so that nothing added meanwhile is missed
    /// or ended twice; the effects run once the lock is released ([`Nodes::carry_out`]).
    fn prepare(&mut self, commands: Vec<Command>) -> Vec<Effect> {
        commands
            .into_iter()
            .filter_map(|command| match command {
                Command::StartTimer {
                    node,
                    generation,
                    after,
                } => Some(Effect::Timer {
                    node,
                    generation,
                    after,
                }),
                Command::NodeDown {
                    node,
                    uid,
                    why,
                    drop_queued,
                    quarantine_if_watches_crossed,
                } => {
                    let mut watchers: Vec<(String, u64)> = Vec::new();
                    self.remote_watchers.retain(|(n, _, path), w| {
                        let gone = *n == node && w.node_uid == uid;
                        if gone {
                            watchers.push((path.clone(), w.alias));
                        }
                        !gone
                    });
                    Some(Effect::Down(Down {
                        watched: self.take_watched(&node),
                        hooks: self.hooks.remove(&node).unwrap_or_default(),
                        node,
                        uid,
                        why,
                        drop_queued,
                        quarantine_if_watches_crossed,
                        watchers,
                    }))
                }
                Command::Refused { node, reason } => Some(Effect::Fail {
                    watched: self.take_watched(&node),
                    hooks: self.hooks.remove(&node).unwrap_or_default(),
                    why: NodeDown::Refused(reason),
                }),
                // Answered by the caller, which holds the ask.
                Command::FailAsk { .. } => None,
            })
            .collect()
    }

    fn take_watched(&mut self, node: &str) -> Vec<Watched> {
        self.watched
            .remove(node)
            .map(WatchedOnNode::into_all)
            .unwrap_or_default()
    }
}

/// A command with what it ends, taken from [`NodesInner`].
enum Effect {
    Timer {
        node: String,
        generation: u64,
        after: std::time::Duration,
    },
    Down(Down),
    Fail {
        watched: Vec<Watched>,
        hooks: Vec<NodeDownHook>,
        why: NodeDown,
    },
}

/// [`Command::NodeDown`], with the watches and asks it ends.
struct Down {
    node: String,
    uid: u64,
    why: NodeDown,
    drop_queued: bool,
    quarantine_if_watches_crossed: bool,
    watched: Vec<Watched>,
    hooks: Vec<NodeDownHook>,
    /// The watches that incarnation held here: (watched path, alias).
    watchers: Vec<(String, u64)>,
}

/// What remoting learns for certain about another node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) enum NodeNews {
    /// Its incarnation `uid` is gone for good: a new one took its address, it shut down, or it
    /// was quarantined here.
    Gone {
        /// Its address.
        address: NodeAddress,
        /// The incarnation gone.
        uid: u64,
    },
    /// It refuses this incarnation for good (it quarantined us).
    QuarantinedUs {
        /// Its address.
        address: NodeAddress,
    },
}

/// Told of [`NodeNews`].
pub(crate) type GoneListener = Arc<dyn Fn(&NodeNews) + Send + Sync>;

/// What this node knows of the others: incarnations, reachability, and the watches across.
pub(crate) struct Nodes {
    inner: Mutex<NodesInner>,
    /// Told of each incarnation gone for good (see [`Nodes::on_incarnation_gone`]).
    gone: Mutex<Vec<GoneListener>>,
    system: Weak<SystemInner>,
    pub(crate) endpoint: Endpoint,
}

impl Nodes {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, NodesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feeds one input to the state machine and carries out what it decides.
    fn step(self: &Arc<Self>, input: impl FnOnce(&mut Reachability) -> Vec<Command>) {
        let effects = {
            let mut g = self.lock();
            let commands = input(&mut g.reachability);
            g.prepare(commands)
        };
        self.carry_out(effects);
    }

    /// Runs the effects of commands, with the lock released.
    fn carry_out(self: &Arc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Timer {
                    node,
                    generation,
                    after,
                } => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        me.step(|r| r.timer_fired(&node, generation));
                    });
                }
                Effect::Down(down) => self.down(down),
                Effect::Fail {
                    watched,
                    hooks,
                    why,
                } => {
                    for w in watched {
                        w.watcher.notify_death(w.alias, None);
                    }
                    for mut h in hooks {
                        h(Some(&why));
                    }
                }
            }
        }
    }

    /// The incarnation `uid` of `node` is gone: the actors watched there are terminated, asks
    /// to it fail with `why`, and the watches it held here are dropped. If watches crossed
    /// between us and it and the state machine says so, that incarnation is quarantined: it
    /// could not otherwise learn that its watches here are gone, so it is made to see this
    /// node as gone too (identity, R1).
    fn down(&self, down: Down) {
        let Down {
            node,
            uid,
            why,
            drop_queued,
            quarantine_if_watches_crossed,
            watched,
            hooks,
            watchers,
        } = down;
        let node = node.as_str();
        if !watched.is_empty() || !hooks.is_empty() || !watchers.is_empty() {
            tracing::warn!(node, uid, "node gone: terminating its watched actors");
        }
        if drop_queued {
            if let Ok(peer) = NodeAddress::from_node_key(node) {
                self.endpoint
                    .drop_queued(&peer, &format!("{peer} is unreachable"));
            }
        }
        let quarantined = quarantine_if_watches_crossed
            && (!watched.is_empty() || !watchers.is_empty())
            && self.endpoint.quarantine(uid);
        if quarantined {
            tracing::warn!(
                node,
                uid,
                "quarantined: this incarnation may not connect again"
            );
        }
        // Restarted, shut down or quarantined: that incarnation will never be heard from again.
        // Merely unreachable is not that: it may come back.
        let for_good = matches!(why, NodeDown::Restarted | NodeDown::ShutDown) || quarantined;
        if for_good && uid != 0 {
            if let Ok(address) = NodeAddress::from_node_key(node) {
                self.tell(&NodeNews::Gone { address, uid });
            }
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

    /// A handshake with incarnation `uid` of `node` succeeded.
    pub(crate) fn connected(self: &Arc<Self>, node: &str, uid: u64) {
        self.step(|r| {
            let commands = r.connected(node, uid);
            for c in &commands {
                if let Command::NodeDown { uid: old_uid, .. } = c {
                    tracing::info!(node, old_uid, uid, "the node restarted: a new incarnation");
                }
            }
            commands
        });
    }

    /// Incarnation `uid` of `node` opened a connection to us: if none of our own handshakes
    /// showed its incarnation, a loss of it declares this one gone.
    pub(crate) fn accepted(&self, node: &str, uid: u64) {
        self.lock().reachability.accepted(node, uid);
    }

    /// Calls `f` with what remoting learns for certain about other nodes ([`NodeNews`]).
    pub(crate) fn on_incarnation_gone(&self, f: GoneListener) {
        self.gone.lock().unwrap_or_else(|e| e.into_inner()).push(f);
    }

    fn tell(&self, news: &NodeNews) {
        let listeners = self.gone.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for l in listeners {
            l(news);
        }
    }

    /// `peer` refuses this incarnation for good.
    pub(crate) fn quarantined_us(&self, peer: &NodeAddress) {
        self.tell(&NodeNews::QuarantinedUs {
            address: peer.clone(),
        });
    }

    /// The connection to `node` is lost, or it could not be reached.
    pub(crate) fn disconnected(self: &Arc<Self>, node: &str) {
        self.step(|r| r.disconnected(node));
    }

    /// The incarnation `uid` of `node` said it is shutting down.
    pub(crate) fn left(self: &Arc<Self>, node: &str, uid: u64) {
        self.step(|r| {
            let commands = r.left(node, uid);
            if !commands.is_empty() {
                tracing::info!(node, uid, "the node shut down");
            }
            commands
        });
    }

    /// `node` refuses our handshake: asks to it fail with the refusal (now and until a handshake
    /// succeeds), and the actors watched there are terminated, since no notice can come.
    pub(crate) fn refused(self: &Arc<Self>, node: &str, reason: String) {
        self.step(|r| r.refused(node, reason));
    }
}

impl WireProvider for Provider {
    fn node(&self) -> &str {
        &self.node
    }

    fn route(
        &self,
        node: &str,
        path: &str,
        uid: u64,
        manifest: &'static str,
    ) -> Result<Arc<dyn WireRoute>, RouteError> {
        let route = {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            match routes.get(node) {
                Some(r) => r.clone(),
                None => {
                    let peer = NodeAddress::from_node_key(node)
                        .map_err(|e| RouteError::BadAddress(e.to_string()))?;
                    let r = self.endpoint.route(&peer);
                    routes.insert(node.to_string(), r.clone());
                    r
                }
            }
        };
        Ok(Arc::new(ActorRoute::new(route, path, uid, manifest)))
    }

    fn watch(&self, node: &str, path: &str, uid: u64, alias: ActorPath, watcher: Arc<dyn Watcher>) {
        let Ok(peer) = NodeAddress::from_node_key(node) else {
            watcher.notify_death(alias, None);
            return;
        };
        let watcher_uid = watcher.watcher_uid();
        let effects = {
            let mut g = self.nodes.lock();
            g.watched.entry(node.to_string()).or_default().add(Watched {
                path: path.to_string(),
                wire_uid: uid,
                alias,
                watcher,
            });
            let commands = g.reachability.watch(node);
            g.prepare(commands)
        };
        self.nodes.carry_out(effects);
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
            // The node will never hear of this watch (it refuses us, or the queue to it is full):
            // it ends now, as if the node were gone, instead of never.
            tracing::warn!(node, error = %e, "cannot send a watch; it ends at once");
            let ended = match self.nodes.lock().watched.get_mut(node) {
                Some(watched) => watched.take(path, watcher_uid),
                None => Vec::new(),
            };
            for w in ended {
                w.watcher.notify_death(w.alias, None);
            }
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
        let commands = g.reachability.ask(node);
        if let [Command::FailAsk { reason, .. }] = commands.as_slice() {
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
        let effects = g.prepare(commands);
        drop(guard);
        self.nodes.carry_out(effects);
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
        let endpoint = Endpoint::bind(
            es,
            settings.uid.unwrap_or_else(node_uid),
            settings.transport.clone(),
            inbound,
        )
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
                inner: Mutex::new(NodesInner {
                    reachability: Reachability::new(settings.unreachable_after),
                    watched: HashMap::new(),
                    hooks: HashMap::new(),
                    hooks_prune_at: 0,
                    remote_watchers: HashMap::new(),
                }),
                gone: Mutex::new(Vec::new()),
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

    /// Calls `f` with each incarnation of another node that is gone for good (see
    /// [`Nodes::on_incarnation_gone`]); `false` before `start_remote`.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn on_incarnation_gone(&self, f: GoneListener) -> bool {
        let Some(p) = self.provider() else {
            return false;
        };
        p.nodes.on_incarnation_gone(f);
        true
    }

    /// Refuses the incarnation `uid` of another node for good, and cuts its connections; `false`
    /// before `start_remote` or if it already was.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn quarantine_incarnation(&self, uid: u64) -> bool {
        self.provider().is_some_and(|p| p.endpoint.quarantine(uid))
    }

    /// This incarnation's uid, once remoting is started.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn remote_uid(&self) -> Option<u64> {
        self.provider().map(|p| p.endpoint.uid())
    }

    /// This system's remoting, once `start_remote` has installed it.
    fn provider(&self) -> Option<&Provider> {
        let any: &dyn std::any::Any = self.inner().wire.get()?.as_any();
        any.downcast_ref::<Provider>()
    }

    /// The remoting counters (frames, bytes, drops, reconnects), once remoting is started.
    pub fn remote_counters(&self) -> Option<RemoteCounters> {
        self.provider().map(|p| {
            let mut c = p.endpoint.counters();
            let g = p.nodes.lock();
            c.watching = g.watched.values().map(|w| w.len).sum::<usize>() as u64;
            c.watched_by = g.remote_watchers.len() as u64;
            c
        })
    }
}
