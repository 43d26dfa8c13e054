//! The typed configuration: what `casty.toml` turns into. Every struct's `Default` is the
//! built-in default, the same as the programmatic API's.

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::actor::mailbox::{Mailbox, Overflow};
use crate::actor::supervision::{Directive, SupervisorStrategy};

/// The whole configuration.
///
/// # Examples
///
/// ```
/// let cfg = casty::config::parse_str("[system]\nname = \"my-app\"\n", None).unwrap();
/// assert_eq!(cfg.system.name, "my-app");
/// assert_eq!(cfg.cluster.port, 25520); // everything else is a default
/// ```
#[derive(Debug, Clone, Default)]
pub struct CastyConfig {
    /// `[system]`.
    pub system: SystemConfig,
    /// `[defaults.*]`: apply to every actor without an override.
    pub defaults: Defaults,
    /// `[cluster]`, with gossip, heartbeat and failure detector.
    pub cluster: ClusterConfig,
    /// `[actors."pattern"]`, in file order: the first full match wins.
    pub actors: Vec<ActorOverride>,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
}

/// `[system]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemConfig {
    /// The actor system's name (default `"casty"`).
    pub name: String,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            name: "casty".into(),
        }
    }
}

/// `[defaults.*]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    /// `[defaults.mailbox]`.
    pub mailbox: MailboxConfig,
    /// `[defaults.supervision]`; `None` when the file has no such section.
    pub supervision: Option<SupervisionConfig>,
    /// `[defaults.sharding]`.
    pub sharding: ShardingConfig,
    /// `[defaults.replication]`.
    pub replication: ReplicationConfig,
}

/// The file's names for an [`Overflow`] (`strategy` in a mailbox section), in the order the
/// error help lists them. `reject` is accepted too, as the core calls it; `backpressure` is the name
/// the file documents, after what a full `Reject` mailbox does to `send().await`.
pub(crate) const OVERFLOW_NAMES: [&str; 3] = ["drop_new", "drop_oldest", "backpressure"];

/// Parses a mailbox `strategy` from the file into the core's [`Overflow`].
pub(crate) fn overflow_from_name(s: &str) -> Option<Overflow> {
    match s {
        "drop_new" => Some(Overflow::DropNew),
        "drop_oldest" => Some(Overflow::DropOldest),
        "backpressure" | "reject" => Some(Overflow::Reject),
        _ => None,
    }
}

/// `[defaults.mailbox]`.
///
/// # Examples
///
/// ```
/// use casty::config::parse_str;
/// use casty::Overflow;
/// let cfg = parse_str("[defaults.mailbox]\ncapacity = 8\nstrategy = \"backpressure\"\n", None).unwrap();
/// assert_eq!(cfg.defaults.mailbox.overflow, Overflow::Reject);
/// assert_eq!(cfg.defaults.mailbox.to_mailbox().overflow(), Some(Overflow::Reject));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Bound on queued messages, from 1 to [`Mailbox::MAX_CAPACITY`]; `None` (the default) is
    /// unbounded. A bounded mailbox's memory follows what it holds, not this bound.
    pub capacity: Option<usize>,
    /// What a bounded mailbox does when it is full: the file's `strategy`, one of `drop_new`
    /// ([`Overflow::DropNew`], the default), `drop_oldest` ([`Overflow::DropOldest`]) or
    /// `backpressure` ([`Overflow::Reject`]: `try_tell` returns `Full` and `send().await` waits for
    /// room; `reject` is accepted as the same).
    pub overflow: Overflow,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        MailboxConfig {
            capacity: None,
            overflow: Overflow::DropNew,
        }
    }
}

impl MailboxConfig {
    /// The runtime mailbox this describes.
    pub fn to_mailbox(&self) -> Mailbox {
        match self.capacity {
            None => Mailbox::unbounded(),
            Some(c) => Mailbox::bounded(c, self.overflow),
        }
    }
}

/// The file's names for the [`Directive`] a configured supervisor applies to every failure
/// (`strategy` in a supervision section). `resume` is not among them: a configured supervisor
/// restarts, stops or escalates.
pub(crate) const DIRECTIVE_NAMES: [&str; 3] = ["restart", "stop", "escalate"];

/// Parses a supervision `strategy` from the file into a [`Directive`].
pub(crate) fn directive_from_name(s: &str) -> Option<Directive> {
    match s {
        "restart" => Some(Directive::Restart),
        "stop" => Some(Directive::Stop),
        "escalate" => Some(Directive::Escalate),
        _ => None,
    }
}

/// `[defaults.supervision]`: the [`SupervisorStrategy`] given to actors without a
/// `Behaviors::supervise` in code.
///
/// # Examples
///
/// ```
/// use casty::config::parse_str;
/// use casty::{Directive, Failure};
/// let cfg = parse_str("[defaults.supervision]\nstrategy = \"stop\"\nmax_restarts = 2\n", None).unwrap();
/// let sup = cfg.defaults.supervision.unwrap();
/// assert_eq!(sup.directive, Directive::Stop);
/// let strategy = sup.to_strategy();
/// assert_eq!(strategy.max_restarts(), 2);
/// assert_eq!(strategy.decide(&Failure::from_boxed("boom".into())), Directive::Stop);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisionConfig {
    /// What to do on every failure: the file's `strategy`, one of `restart` (the default), `stop`
    /// or `escalate`.
    pub directive: Directive,
    /// Restarts allowed within `within` before the actor is stopped (default 3).
    pub max_restarts: u32,
    /// The sliding window for `max_restarts` (`within_seconds`, default 60).
    pub within: Duration,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            directive: Directive::Restart,
            max_restarts: 3,
            within: Duration::from_secs(60),
        }
    }
}

impl SupervisionConfig {
    /// The runtime strategy this describes.
    pub fn to_strategy(&self) -> SupervisorStrategy {
        let d = self.directive;
        SupervisorStrategy::new(self.max_restarts, self.within).decider(move |_| d)
    }
}

/// `[defaults.sharding]`: the settings of a sharded entity type, read by cluster sharding
/// (`casty::sharding::ShardingSettings::from_config`, feature `cluster`).
///
/// Durations are in seconds, as everywhere in the file. `passivate_idle = "off"` means entities
/// are never passivated for being idle.
///
/// # Examples
///
/// ```
/// use casty::config::parse_str;
/// use std::time::Duration;
/// let cfg = parse_str(
///     "[defaults.sharding]\nnum_shards = 64\nrole = \"worker\"\npassivate_idle = \"off\"\n",
///     None,
/// )
/// .unwrap();
/// let s = &cfg.defaults.sharding;
/// assert_eq!((s.num_shards, s.role.as_deref(), s.passivate_idle), (64, Some("worker"), None));
/// assert_eq!(s.rebalance_interval, Duration::from_secs(10)); // a default
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardingConfig {
    /// Number of shards (default 256; at least 1). Every node must use the same number for a
    /// type: it decides which shard an entity belongs to.
    pub num_shards: u32,
    /// Only nodes with this role host the type's entities; the others only route to them
    /// (default none: every node hosts).
    pub role: Option<String>,
    /// How long an entity may go without a message before it is passivated (default 120 s;
    /// `"off"` in the file, `None` here: never).
    pub passivate_idle: Option<Duration>,
    /// Messages buffered per shard while its home is unknown or it is handing off (default
    /// 1000; from 1 to 1,000,000,000).
    pub buffer_size: usize,
    /// Between rebalance rounds of the coordinator (default 10 s; greater than 0).
    pub rebalance_interval: Duration,
    /// How many more shards the most loaded region may hold than the least loaded before a
    /// rebalance starts (default 1; at least 1).
    pub rebalance_threshold: u32,
    /// How many shards may be moving at once, at least (default 3; 0 turns rebalancing off).
    pub max_simultaneous_rebalance: u32,
    /// How many shards may be moving at once, in percent of all allocated shards, when that is
    /// more than `max_simultaneous_rebalance` (default 10; from 0 to 100).
    pub max_simultaneous_rebalance_percent: u32,
    /// How long a handoff may take before the coordinator gives up on it (default 60 s; greater
    /// than 0).
    pub handoff_timeout: Duration,
    /// How often a region asks the coordinator again when it got no answer (default 2 s;
    /// greater than 0).
    pub retry_interval: Duration,
    /// How long after a node is removed its shards may start elsewhere (default 20 s, the
    /// split-brain resolver's default `stable_after`).
    pub down_removal_margin: Duration,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        ShardingConfig {
            num_shards: 256,
            role: None,
            passivate_idle: Some(Duration::from_secs(120)),
            buffer_size: 1000,
            rebalance_interval: Duration::from_secs(10),
            rebalance_threshold: 1,
            max_simultaneous_rebalance: 3,
            max_simultaneous_rebalance_percent: 10,
            handoff_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(2),
            down_removal_margin: Duration::from_secs(20),
        }
    }
}

/// `[defaults.replication]`.
///
/// Parsed and checked, but nothing in casty reads it: casty does not replicate event-sourced
/// entities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicationConfig {
    /// Copies of each entity (default 2).
    pub replicas: u32,
    /// Acknowledgements a write waits for (default 1; at most `replicas`).
    pub min_acks: u32,
    /// How long a write waits for them (`ack_timeout` seconds, default 5).
    pub ack_timeout: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replicas: 2,
            min_acks: 1,
            ack_timeout: Duration::from_secs(5),
        }
    }
}

/// A `host:port` in `seed_nodes`: a node to join through, without the system name that a
/// `casty::remote::NodeAddress` (`casty://system@host:port`) carries. Nodes of one cluster share
/// the system name, so a seed node becomes a node address with this node's `[system] name`
/// (`SeedNode::node_address`, with the `remote` feature).
///
/// # Examples
///
/// ```
/// use casty::config::SeedNode;
/// let seed = SeedNode::parse("node1:25520").unwrap();
/// assert_eq!((seed.host.as_str(), seed.port), ("node1", 25520));
/// assert_eq!(seed.to_string(), "node1:25520");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeedNode {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for SeedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl SeedNode {
    /// Parses `host:port` (IPv6 hosts in brackets: `[::1]:25520`).
    pub fn parse(s: &str) -> Option<SeedNode> {
        let (host, port) = s.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let valid = !host.is_empty()
            && !host.contains(|c: char| c.is_whitespace() || c == '/' || c == '[' || c == ']')
            && (!host.contains(':') || s.starts_with('['));
        valid.then(|| SeedNode {
            host: host.to_string(),
            port,
        })
    }

    /// The remoting address of this seed node in the actor system named `system`.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::config::SeedNode;
    /// let seed = SeedNode::parse("[::1]:25520").unwrap();
    /// assert_eq!(seed.node_address("bank").to_string(), "casty://bank@[::1]:25520");
    /// ```
    #[cfg(feature = "remote")]
    pub fn node_address(&self, system: &str) -> crate::remote::NodeAddress {
        crate::remote::NodeAddress::new(system, self.host.as_str(), self.port)
    }
}

/// `[cluster]`: what a clustered node starts from.
///
/// `ClusteredActorSystemBuilder::config` (feature `cluster`) reads every field but
/// `heartbeat.availability_check_interval`: the address the node binds, the seed nodes, the
/// roles, the gossip and heartbeat intervals and the failure detector's parameters. A builder
/// not given a section starts from [`ClusterConfig::default`]. Plain remoting, without a
/// cluster, takes its address from `RemoteSettings`, not from here.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Address to bind (default `"127.0.0.1"`).
    pub host: String,
    /// Port to bind (default 25520; 0 picks a free port).
    pub port: u16,
    /// Nodes to join through.
    pub seed_nodes: Vec<SeedNode>,
    /// This node's roles.
    pub roles: Vec<String>,
    /// `[cluster.gossip]`.
    pub gossip: GossipConfig,
    /// `[cluster.heartbeat]`.
    pub heartbeat: HeartbeatConfig,
    /// `[cluster.failure_detector]`.
    pub failure_detector: FailureDetectorConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            host: "127.0.0.1".into(),
            port: 25520,
            seed_nodes: Vec::new(),
            roles: Vec::new(),
            gossip: GossipConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            failure_detector: FailureDetectorConfig::default(),
        }
    }
}

impl ClusterConfig {
    /// The `[cluster]` section of `cfg`, to adjust in code before use.
    pub fn from_config(cfg: &CastyConfig) -> ClusterConfig {
        cfg.cluster.clone()
    }

    /// Overrides the host (programmatic values win over the file).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::config::{parse_str, ClusterConfig};
    /// let cfg = parse_str("[cluster]\nhost = \"0.0.0.0\"\nport = 25520\n", None).unwrap();
    /// let c = ClusterConfig::from_config(&cfg).host("10.0.0.5").port(0);
    /// assert_eq!((c.host.as_str(), c.port), ("10.0.0.5", 0));
    /// ```
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Overrides the port; 0 asks the OS for a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Overrides the seed nodes.
    pub fn seed_nodes(mut self, nodes: Vec<SeedNode>) -> Self {
        self.seed_nodes = nodes;
        self
    }
}

/// `[cluster.gossip]`: the pace of a clustered node's gossip rounds, which also paces the
/// leader's moves and the downing decisions (see [`ClusterConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GossipConfig {
    /// Between gossip rounds (default 1 s).
    pub interval: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            interval: Duration::from_secs(1),
        }
    }
}

/// `[cluster.heartbeat]`: how often a clustered node heartbeats the nodes it watches (see
/// [`ClusterConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeartbeatConfig {
    /// Between heartbeats (default 0.5 s). The failure detectors' verdicts are also fed to the
    /// membership at this pace, besides at each detector's deadline.
    pub interval: Duration,
    /// Between reachability checks (default 2 s). Parsed and checked, but read by nothing: a
    /// clustered node checks each failure detector at the instant it would give up on its
    /// node (`casty::cluster::PhiAccrual::suspected_at`), not at a fixed rate.
    pub availability_check_interval: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_millis(500),
            availability_check_interval: Duration::from_secs(2),
        }
    }
}

/// `[cluster.failure_detector]`: the parameters of the phi-accrual failure detectors of a
/// clustered node, one per node it watches (`casty::cluster::PhiAccrual`; see
/// [`ClusterConfig`]).
///
/// With the defaults and heartbeats every 500 ms, a node is suspected about 1,023 ms after its
/// last heartbeat arrived once the history holds only real intervals: the 500 ms mean plus
/// 5.226 times the 100 ms floor on the deviation (phi reaches 8 there). Until then the two
/// intervals seeded around `first_heartbeat_estimate` lengthen it: 1,393 ms after 10 s of
/// heartbeats, 1,038 ms after 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureDetectorConfig {
    /// Phi above which a node is suspected (default 8.0).
    pub threshold: f64,
    /// Heartbeat intervals kept (default 200).
    pub max_sample_size: u32,
    /// Floor on the standard deviation (default 100 ms).
    pub min_std_deviation: Duration,
    /// Pause tolerated on top of the mean (default 0).
    pub acceptable_heartbeat_pause: Duration,
    /// Assumed interval before any sample (default 1 s).
    pub first_heartbeat_estimate: Duration,
}

impl Default for FailureDetectorConfig {
    fn default() -> Self {
        FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::ZERO,
            first_heartbeat_estimate: Duration::from_secs(1),
        }
    }
}

/// `[actors."pattern"]`: settings for actors whose name fully matches `pattern`. Each field
/// left out falls back to `[defaults.*]`.
#[derive(Debug, Clone)]
pub struct ActorOverride {
    /// The pattern as written.
    pub pattern: String,
    pub(crate) regex: Regex,
    /// `mailbox = { capacity, strategy }`.
    pub mailbox: MailboxOverride,
    /// `supervision = { strategy, max_restarts, within_seconds }`.
    pub supervision: Option<SupervisionOverride>,
    /// `sharding = { num_shards, role, passivate_idle, ... }`: the keys of `[defaults.sharding]`.
    pub sharding: ShardingOverride,
    /// `replication = { replicas, min_acks, ack_timeout }`.
    pub replication: ReplicationOverride,
}

impl ActorOverride {
    /// Whether `name` fully matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name)
    }
}

/// Mailbox fields set by an override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxOverride {
    /// `capacity`.
    pub capacity: Option<usize>,
    /// `strategy`.
    pub overflow: Option<Overflow>,
}

/// Supervision fields set by an override.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SupervisionOverride {
    /// `strategy`.
    pub directive: Option<Directive>,
    /// `max_restarts`.
    pub max_restarts: Option<u32>,
    /// `within_seconds`.
    pub within: Option<Duration>,
}

/// Sharding fields set by an override; each one left out falls back to `[defaults.sharding]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardingOverride {
    /// `num_shards`.
    pub num_shards: Option<u32>,
    /// `role`.
    pub role: Option<String>,
    /// `passivate_idle`: `Some(None)` for `"off"`.
    pub passivate_idle: Option<Option<Duration>>,
    /// `buffer_size`.
    pub buffer_size: Option<usize>,
    /// `rebalance_interval`.
    pub rebalance_interval: Option<Duration>,
    /// `rebalance_threshold`.
    pub rebalance_threshold: Option<u32>,
    /// `max_simultaneous_rebalance`.
    pub max_simultaneous_rebalance: Option<u32>,
    /// `max_simultaneous_rebalance_percent`.
    pub max_simultaneous_rebalance_percent: Option<u32>,
    /// `handoff_timeout`.
    pub handoff_timeout: Option<Duration>,
    /// `retry_interval`.
    pub retry_interval: Option<Duration>,
    /// `down_removal_margin`.
    pub down_removal_margin: Option<Duration>,
}

impl ShardingOverride {
    /// `base` with the fields this override sets replaced.
    pub(crate) fn over(&self, base: &ShardingConfig) -> ShardingConfig {
        ShardingConfig {
            num_shards: self.num_shards.unwrap_or(base.num_shards),
            role: self.role.clone().or_else(|| base.role.clone()),
            passivate_idle: self.passivate_idle.unwrap_or(base.passivate_idle),
            buffer_size: self.buffer_size.unwrap_or(base.buffer_size),
            rebalance_interval: self.rebalance_interval.unwrap_or(base.rebalance_interval),
            rebalance_threshold: self.rebalance_threshold.unwrap_or(base.rebalance_threshold),
            max_simultaneous_rebalance: self
                .max_simultaneous_rebalance
                .unwrap_or(base.max_simultaneous_rebalance),
            max_simultaneous_rebalance_percent: self
                .max_simultaneous_rebalance_percent
                .unwrap_or(base.max_simultaneous_rebalance_percent),
            handoff_timeout: self.handoff_timeout.unwrap_or(base.handoff_timeout),
            retry_interval: self.retry_interval.unwrap_or(base.retry_interval),
            down_removal_margin: self.down_removal_margin.unwrap_or(base.down_removal_margin),
        }
    }
}

/// Replication fields set by an override.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplicationOverride {
    /// `replicas`.
    pub replicas: Option<u32>,
    /// `min_acks`.
    pub min_acks: Option<u32>,
    /// `ack_timeout`.
    pub ack_timeout: Option<Duration>,
}

/// The settings that apply to one actor, after resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorSettings {
    /// Its mailbox.
    pub mailbox: MailboxConfig,
    /// Its supervision, if the file configures any (otherwise the runtime default: stop).
    pub supervision: Option<SupervisionConfig>,
    /// Its sharding, when it names a sharded entity type (read by cluster sharding; see
    /// [`ShardingConfig`]).
    pub sharding: ShardingConfig,
    /// Its replication (read by nothing in casty; see [`ReplicationConfig`]).
    pub replication: ReplicationConfig,
    /// The pattern that matched, if any.
    pub matched: Option<String>,
}

impl CastyConfig {
    /// Resolves the settings for an actor named `name`: the first `[actors]` pattern that fully
    /// matches, field by field over `[defaults.*]`, over the built-in defaults. Names starting
    /// with `_` (internal) or `$` (anonymous) always get the built-in defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// let cfg = casty::config::parse_str(
    ///     r#"
    /// [defaults.mailbox]
    /// capacity = 1000
    /// strategy = "drop_new"
    ///
    /// [actors.orders]
    /// mailbox = { capacity = 5000 }
    /// "#,
    ///     None,
    /// )
    /// .unwrap();
    /// let s = cfg.resolve("orders");
    /// assert_eq!(s.mailbox.capacity, Some(5000));
    /// assert_eq!(s.mailbox.overflow, casty::Overflow::DropNew); // inherited
    /// assert_eq!(cfg.resolve("other").mailbox.capacity, Some(1000));
    /// ```
    pub fn resolve(&self, name: &str) -> ActorSettings {
        if name.starts_with('_') || name.starts_with('$') {
            return ActorSettings {
                mailbox: MailboxConfig::default(),
                supervision: None,
                sharding: ShardingConfig::default(),
                replication: ReplicationConfig::default(),
                matched: None,
            };
        }
        let d = &self.defaults;
        let Some(o) = self.actors.iter().find(|o| o.matches(name)) else {
            return ActorSettings {
                mailbox: d.mailbox,
                supervision: d.supervision,
                sharding: d.sharding.clone(),
                replication: d.replication,
                matched: None,
            };
        };
        let supervision = match (o.supervision, d.supervision) {
            (None, d) => d,
            (Some(s), d) => {
                let base = d.unwrap_or_default();
                Some(SupervisionConfig {
                    directive: s.directive.unwrap_or(base.directive),
                    max_restarts: s.max_restarts.unwrap_or(base.max_restarts),
                    within: s.within.unwrap_or(base.within),
                })
            }
        };
        ActorSettings {
            mailbox: MailboxConfig {
                capacity: o.mailbox.capacity.or(d.mailbox.capacity),
                overflow: o.mailbox.overflow.unwrap_or(d.mailbox.overflow),
            },
            supervision,
            sharding: o.sharding.over(&d.sharding),
            replication: ReplicationConfig {
                replicas: o.replication.replicas.unwrap_or(d.replication.replicas),
                min_acks: o.replication.min_acks.unwrap_or(d.replication.min_acks),
                ack_timeout: o
                    .replication
                    .ack_timeout
                    .unwrap_or(d.replication.ack_timeout),
            },
            matched: Some(o.pattern.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_nodes_parse_host_and_port() {
        let a = SeedNode::parse("node1:25520").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("node1", 25520));
        assert_eq!(SeedNode::parse("[::1]:1").unwrap().host, "::1");
        assert!(SeedNode::parse("node1").is_none());
        assert!(SeedNode::parse(":25520").is_none());
        assert!(SeedNode::parse("node1:99999").is_none());
        assert!(SeedNode::parse("node1:port").is_none());
        assert!(SeedNode::parse("::1:25520").is_none());
        assert!(SeedNode::parse("a b:1").is_none());
    }
}
