//! [`ClusteredActorSystem`]: an actor system that is a member of a cluster.
//!
//! Starting one starts remoting, then the membership driver (see the `driver` module) and the
//! actor other nodes send membership messages to. It is an [`ActorSystem`] in every other way
//! (it dereferences to one), so local code runs on it unchanged. [`Cluster`] is the handle on its
//! membership: the current view, joining, leaving, downing, waiting for members, subscribing to
//! events.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::downing::Downing;
use super::driver::{
    driver, receptionist, DriverMsg, DriverSettings, Published, DRIVER, RECEPTIONIST,
};
use super::events::ClusterEvent;
use super::gossip::Gossip;
use super::member::{Member, MemberStatus, UniqueAddress};
use super::membership::{MembershipSettings, StopReason};
use super::sbr::SplitBrainResolver;
use super::strategies::KeepMajority;
use crate::actor::actor_ref::ActorRef;
use crate::actor::system::ActorSystem;
use crate::config::{CastyConfig, ClusterConfig, FailureDetectorConfig};
use crate::remote::NodeNews;
use crate::remote::{NodeAddress, RemoteError, RemoteSettings, Transport};

/// Why a clustered system did not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Remoting did not start.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A seed node's address is not a casty address.
    #[error("seed node `{0}` is not a casty node address (expected `casty://system@host:port`)")]
    BadSeed(String),
    /// Fewer members than asked for were Up in time.
    #[error("{wanted} members were not Up within {waited:?}; Up: {up:?}; seen: {seen:?}")]
    QuorumTimeout {
        /// How many were wanted.
        wanted: usize,
        /// How long it waited.
        waited: Duration,
        /// The members Up by then.
        up: Vec<String>,
        /// Every member seen by then, with its status.
        seen: Vec<String>,
    },
    /// The membership actors could not be spawned (the system is shutting down).
    #[error("cannot start the membership actors: {0}")]
    Spawn(String),
    /// The node stopped before it was done.
    #[error("the node left the cluster: {0:?}")]
    Stopped(StopReason),
}

/// How to start a [`ClusteredActorSystem`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::cluster::ClusteredActorSystem;
/// let node = ClusteredActorSystem::builder("shop")
///     .host("127.0.0.1")
///     .port(0)
///     .start()
///     .await
///     .unwrap();
/// // No seed nodes: it waits to be told whom to join. Joining itself forms a cluster.
/// node.cluster().join(node.address().clone());
/// node.cluster().wait_for_up(1, std::time::Duration::from_secs(5)).await.unwrap();
/// node.shutdown().await;
/// # }
/// ```
pub struct ClusteredActorSystemBuilder {
    name: String,
    host: String,
    port: u16,
    seeds: Vec<String>,
    roles: Vec<String>,
    /// A whole configuration file, for spawn defaults and the layers above membership.
    actor_config: Option<CastyConfig>,
    quorum: Option<(usize, Duration)>,
    gossip_interval: Duration,
    heartbeat_interval: Duration,
    failure_detector: FailureDetectorConfig,
    membership: MembershipSettings,
    monitored_by: usize,
    downing: Arc<dyn Downing>,
    stable_after: Duration,
    secret: Option<Vec<u8>>,
    transport: Option<Arc<dyn Transport>>,
    seed: Option<u64>,
    leave_timeout: Duration,
}

impl fmt::Debug for ClusteredActorSystemBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusteredActorSystemBuilder")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("seeds", &self.seeds)
            .finish_non_exhaustive()
    }
}

impl ClusteredActorSystemBuilder {
    fn new(name: &str) -> Self {
        let defaults = ClusterConfig::default();
        ClusteredActorSystemBuilder {
            name: name.to_string(),
            host: defaults.host,
            port: defaults.port,
            seeds: Vec::new(),
            roles: Vec::new(),
            actor_config: None,
            quorum: None,
            gossip_interval: defaults.gossip.interval,
            heartbeat_interval: defaults.heartbeat.interval,
            failure_detector: defaults.failure_detector,
            membership: MembershipSettings::default(),
            monitored_by: 5,
            downing: Arc::new(KeepMajority::default()),
            stable_after: SplitBrainResolver::DEFAULT_STABLE_AFTER,
            secret: None,
            transport: None,
            seed: None,
            leave_timeout: Duration::from_secs(10),
        }
    }

    /// The host to bind and to be known by.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// The port to bind (0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The seed nodes, as `casty://system@host:port` (or [`NodeAddress`]es' text).
    pub fn seed_nodes<S: ToString>(mut self, seeds: impl IntoIterator<Item = S>) -> Self {
        self.seeds = seeds.into_iter().map(|s| s.to_string()).collect();
        self
    }

    /// This node's roles.
    pub fn roles<R: Into<String>>(mut self, roles: impl IntoIterator<Item = R>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Makes [`start`](Self::start) return only once `n` members are Up, or fail after `timeout`.
    pub fn required_quorum(mut self, n: usize, timeout: Duration) -> Self {
        self.quorum = Some((n, timeout));
        self
    }

    /// Takes host, port, seed nodes, roles, gossip and heartbeat intervals and the failure
    /// detector from a `[cluster]` section.
    pub fn config(mut self, cfg: &ClusterConfig) -> Self {
        self.host = cfg.host.clone();
        self.port = cfg.port;
        self.seeds = cfg
            .seed_nodes
            .iter()
            .map(|s| format!("casty://{}@{}:{}", self.name, s.host, s.port))
            .collect();
        self.roles = cfg.roles.clone();
        self.gossip_interval = cfg.gossip.interval;
        self.heartbeat_interval = cfg.heartbeat.interval;
        self.failure_detector = cfg.failure_detector;
        self
    }

    /// Applies a whole configuration file: its `[cluster]` section (as [`config`](Self::config)
    /// does), and at every spawn the mailbox, supervision and sharding settings it resolves for
    /// the actor's name, as `ActorSystemBuilder::config` does for a local system.
    ///
    /// # Examples
    ///
    /// ```
    /// let cfg = casty::config::parse_str("[cluster]\nport = 0\nroles = [\"web\"]\n", None).unwrap();
    /// let b = casty::cluster::ClusteredActorSystem::builder("shop").casty_config(&cfg);
    /// # let _ = b;
    /// ```
    pub fn casty_config(mut self, cfg: &CastyConfig) -> Self {
        self = self.config(&ClusterConfig::from_config(cfg));
        self.actor_config = Some(cfg.clone());
        self
    }

    /// The gossip interval (also the pace of the leader's moves and of downing decisions).
    pub fn gossip_interval(mut self, interval: Duration) -> Self {
        self.gossip_interval = interval;
        self
    }

    /// The heartbeat interval (also how often the failure detectors' verdicts are fed to the
    /// membership in any case; they are read at each detector's deadline too).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// The failure detector's parameters.
    pub fn failure_detector(mut self, cfg: FailureDetectorConfig) -> Self {
        self.failure_detector = cfg;
        self
    }

    /// The timing of joining and leading (seed timeout, retries, WeaklyUp).
    pub fn membership(mut self, settings: MembershipSettings) -> Self {
        self.membership = settings;
        self
    }

    /// The split-brain strategy (default: [`KeepMajority`]) and how long reachability must be
    /// stable before it acts (default 20 s).
    pub fn downing(mut self, strategy: impl Downing, stable_after: Duration) -> Self {
        self.downing = Arc::new(strategy);
        self.stable_after = stable_after;
        self
    }

    /// The shared secret of the remoting handshake.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// The transport (TCP by default; TLS, or a fault-injecting one in tests).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Seeds the node's one random source (its incarnation uid and its choices of peer), so that a
    /// run repeats exactly, as in a seeded simulation.
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How long [`ClusteredActorSystem::shutdown`] waits for a graceful leave (default 10 s).
    pub fn leave_timeout(mut self, timeout: Duration) -> Self {
        self.leave_timeout = timeout;
        self
    }

    /// Starts remoting and membership.
    ///
    /// # Errors
    ///
    /// [`ClusterError`]: remoting did not start, a seed address is malformed, or the required
    /// quorum was not reached in time.
    pub async fn start(self) -> Result<ClusteredActorSystem, ClusterError> {
        let mut seeds = Vec::new();
        for s in &self.seeds {
            seeds.push(
                s.parse::<NodeAddress>()
                    .map_err(|_| ClusterError::BadSeed(s.clone()))?,
            );
        }
        let mut system = ActorSystem::builder().name(self.name.clone());
        if let Some(cfg) = &self.actor_config {
            system = system.config(cfg.clone());
        }
        let system = system.build();
        // One random source: a seeded node draws its uid and its peer choices from the seed.
        let mut rng = self.seed.map(fastrand::Rng::with_seed);
        let mut remote = RemoteSettings::new(self.host.clone(), self.port);
        if let Some(rng) = &mut rng {
            remote = remote.with_uid(rng.u64(1..));
        }
        if let Some(secret) = &self.secret {
            remote = remote.secret(secret);
        }
        if let Some(t) = &self.transport {
            remote = remote.transport(t.clone());
        }
        let address = match system.start_remote(remote).await {
            Ok(a) => a,
            Err(e) => {
                system.shutdown().await;
                return Err(e.into());
            }
        };
        let uid = system.remote_uid().unwrap_or(1);
        let me = UniqueAddress::new(address.clone(), uid);
        let mut membership = self.membership.clone();
        membership.seed_nodes = seeds;
        membership.roles = self.roles.iter().cloned().collect();
        let settings = DriverSettings {
            me: me.clone(),
            membership,
            gossip_interval: self.gossip_interval,
            heartbeat_interval: self.heartbeat_interval,
            failure_detector: self.failure_detector,
            monitored_by: self.monitored_by,
            downing: self.downing.clone(),
            stable_after: self.stable_after,
            down_all_when_unstable: Some(SplitBrainResolver::default_down_all_when_unstable(
                self.stable_after,
            )),
            seed: rng.map_or_else(|| fastrand::u64(..), |mut r| r.u64(..)),
        };
        let (view, view_rx) = watch::channel(Arc::new(Gossip::default()));
        let (stopped, stopped_rx) = watch::channel(None);
        let published = Arc::new(Published { view, stopped });
        let started = async {
            let d = system
                .spawn_internal(driver(settings, published), DRIVER)
                .map_err(|e| ClusterError::Spawn(e.to_string()))?;
            system
                .spawn_internal(receptionist(d.clone()), RECEPTIONIST)
                .map_err(|e| ClusterError::Spawn(e.to_string()))?;
            Ok::<_, ClusterError>(d)
        };
        let driver = match started.await {
            Ok(d) => d,
            Err(e) => {
                system.shutdown().await;
                return Err(e);
            }
        };
        // An incarnation remoting knows to be gone (a new one took its address, it shut down,
        // it was quarantined) is down at once, without waiting for the failure detector; and a
        // node that refuses this incarnation for good is heard.
        let news = driver.clone();
        system.on_incarnation_gone(Arc::new(move |n| match n {
            NodeNews::Gone { address, uid } => {
                news.tell(DriverMsg::Gone(UniqueAddress::new(address.clone(), *uid)));
            }
            NodeNews::QuarantinedUs { address } => {
                news.tell(DriverMsg::QuarantinedUs(address.clone()));
            }
        }));
        let cluster = Cluster {
            me,
            driver,
            view: view_rx,
            stopped: stopped_rx,
            before_leave: Arc::default(),
        };
        // Layers above membership (sharding) find the cluster from the actor system.
        system.put_extension(Arc::new(cluster.clone()));
        let node = ClusteredActorSystem {
            system,
            cluster,
            leave_timeout: self.leave_timeout,
        };
        if let Some((n, timeout)) = self.quorum {
            if let Err(e) = node.cluster.wait_for_up(n, timeout).await {
                // Leave the cluster it may have joined, so that the others need not detect it.
                node.shutdown().await;
                return Err(e);
            }
        }
        Ok(node)
    }
}

/// An actor system that is a member of a cluster. See the module documentation.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::cluster::{ClusteredActorSystem, MemberStatus};
/// use std::time::Duration;
/// let a = ClusteredActorSystem::builder("shop").host("127.0.0.1").port(0).start().await.unwrap();
/// a.cluster().join(a.address().clone());
/// let b = ClusteredActorSystem::builder("shop")
///     .host("127.0.0.1")
///     .port(0)
///     .seed_nodes([a.address().to_string()])
///     .gossip_interval(Duration::from_millis(100))
///     .required_quorum(2, Duration::from_secs(10))
///     .start()
///     .await
///     .unwrap();
/// assert_eq!(b.cluster().self_member().unwrap().status, MemberStatus::Up);
/// b.shutdown().await;
/// a.shutdown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct ClusteredActorSystem {
    system: ActorSystem,
    cluster: Cluster,
    leave_timeout: Duration,
}

impl ClusteredActorSystem {
    /// How to start one, for a system named `name`.
    pub fn builder(name: &str) -> ClusteredActorSystemBuilder {
        ClusteredActorSystemBuilder::new(name)
    }

    /// The handle on this node's membership.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// This node's address.
    pub fn address(&self) -> &NodeAddress {
        &self.cluster.me.address
    }

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Leaves the cluster gracefully, then shuts the actor system down: first the layers above
    /// membership finish their part (sharding hands every shard this node hosts to another
    /// node), then the node leaves (Leaving, Exiting, then removed by the others); each step
    /// waits at most the leave timeout.
    pub async fn shutdown(&self) {
        if self.cluster.self_member().is_some() && self.cluster.stopped().is_none() {
            let hooks: Vec<LeaveHook> = self
                .cluster
                .before_leave
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let all = futures_join(hooks.iter().map(|h| h()).collect());
            let _ = tokio::time::timeout(self.leave_timeout, all).await;
            self.cluster.leave(self.address().clone());
            let mut stopped = self.cluster.stopped.clone();
            let _ =
                tokio::time::timeout(self.leave_timeout, stopped.wait_for(Option::is_some)).await;
        }
        self.system.shutdown().await;
    }
}

impl std::ops::Deref for ClusteredActorSystem {
    type Target = ActorSystem;

    fn deref(&self) -> &ActorSystem {
        &self.system
    }
}

/// Work a layer above membership does before its node leaves (see
/// [`ClusteredActorSystem::shutdown`]).
pub(crate) type LeaveHook =
    Arc<dyn Fn() -> crate::actor::behavior::BoxFuture<'static, ()> + Send + Sync>;

/// Awaits every future, all at once.
async fn futures_join(futures: Vec<crate::actor::behavior::BoxFuture<'static, ()>>) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

/// The handle on a node's membership.
#[derive(Clone)]
pub struct Cluster {
    me: UniqueAddress,
    driver: ActorRef<DriverMsg>,
    view: watch::Receiver<Arc<Gossip>>,
    stopped: watch::Receiver<Option<StopReason>>,
    before_leave: Arc<std::sync::Mutex<Vec<LeaveHook>>>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("me", &self.me)
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// This node's current view of the cluster.
    pub fn state(&self) -> Arc<Gossip> {
        self.view.borrow().clone()
    }

    /// This incarnation.
    pub fn self_node(&self) -> &UniqueAddress {
        &self.me
    }

    /// This node as a member, once it is one.
    pub fn self_member(&self) -> Option<Member> {
        self.view.borrow().member(&self.me).cloned()
    }

    /// The leader, as this node sees it.
    pub fn leader(&self) -> Option<UniqueAddress> {
        self.view.borrow().leader(&self.me)
    }

    /// Why this node left the cluster, if it has.
    pub fn stopped(&self) -> Option<StopReason> {
        *self.stopped.borrow()
    }

    /// Joins the cluster of the node at `address` (this node's own address forms a new cluster).
    pub fn join(&self, address: NodeAddress) {
        self.driver.tell(DriverMsg::Join(address));
    }

    /// Makes the member at `address` leave gracefully.
    pub fn leave(&self, address: NodeAddress) {
        self.driver.tell(DriverMsg::Leave(address));
    }

    /// Declares the member at `address` down.
    pub fn down(&self, address: NodeAddress) {
        self.driver.tell(DriverMsg::Down(address));
    }

    /// Calls `f` with the events that build the current view, then with every later event, in
    /// order, on the membership actor (keep it short).
    pub fn subscribe(&self, f: impl Fn(&ClusterEvent) + Send + Sync + 'static) {
        self.driver.tell(DriverMsg::Subscribe(Arc::new(f)));
    }

    /// Waits until this node sees `n` members Up (this one among them).
    ///
    /// # Errors
    ///
    /// [`ClusterError::QuorumTimeout`] after `timeout`, naming who was Up and who was seen;
    /// [`ClusterError::Stopped`] if the node left the cluster meanwhile.
    pub async fn wait_for_up(&self, n: usize, timeout: Duration) -> Result<(), ClusterError> {
        let me = self.me.clone();
        let up = move |g: &Gossip| {
            g.member(&me).is_some_and(|m| m.status == MemberStatus::Up)
                && g.members().filter(|m| m.status == MemberStatus::Up).count() >= n
        };
        let mut view = self.view.clone();
        let mut stopped = self.stopped.clone();
        let wait = async {
            tokio::select! {
                r = view.wait_for(|g| up(g)) => r.map(|_| ()).map_err(|_| ClusterError::Stopped(StopReason::Removed)),
                r = stopped.wait_for(Option::is_some) => Err(ClusterError::Stopped(
                    r.ok().and_then(|s| *s).unwrap_or(StopReason::Removed),
                )),
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => {
                let g = self.state();
                let names = |pred: &dyn Fn(&Member) -> bool| {
                    g.members()
                        .filter(|m| pred(m))
                        .map(|m| format!("{} ({:?})", m.node.address, m.status))
                        .collect::<Vec<_>>()
                };
                Err(ClusterError::QuorumTimeout {
                    wanted: n,
                    waited: timeout,
                    up: names(&|m| m.status == MemberStatus::Up),
                    seen: names(&|_| true),
                })
            }
        }
    }

    /// Adds work to do before this node leaves in [`ClusteredActorSystem::shutdown`].
    pub(crate) fn before_leave(&self, hook: LeaveHook) {
        self.before_leave
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// A receiver of every new view this node publishes.
    pub(crate) fn view_receiver(&self) -> watch::Receiver<Arc<Gossip>> {
        self.view.clone()
    }

    /// The members this node sees, with their statuses.
    pub fn members(&self) -> Vec<Member> {
        self.view.borrow().members().cloned().collect()
    }

    /// The members some observer cannot reach, as this node sees it.
    pub fn unreachable(&self) -> BTreeSet<UniqueAddress> {
        self.view.borrow().reachability().unreachable()
    }
}
