//! One node's membership protocol, as a pure state machine: input and time in, commands out.
//!
//! [`Membership::handle`] takes an [`Input`] (a message from another node, a tick, a verdict of
//! the failure detector, a request of the user) with the current time, and returns the
//! [`Command`]s to carry out: messages to send, events to publish, or stopping the node. It reads
//! no clock, opens no socket and draws no random number; a tick brings the random number it
//! needs. A driver actor does the I/O, which is what lets a whole cluster run in simulated time.
//!
//! # Joining
//! A node starts by asking the seed nodes whether they belong to a cluster (`InitJoin`). It joins
//! the first that says yes (`InitJoinAck`): it sends `Join`, and that member adds it as Joining
//! and answers `Welcome` with its view. Only the *first* seed node — the lowest `host:port` of the
//! seed list, so that every node agrees on it whatever order its list is in — may form a new
//! cluster by joining itself, and only once every other seed has said no (`InitJoinNack`) or
//! `seed_node_timeout` has passed without an answer. Any other node keeps asking. This is Akka's
//! rule, and it keeps two nodes that start together from forming two clusters.
//!
//! A member refuses a node of another system, and a removed incarnation. A node restarted on an
//! address whose old incarnation is still a member is told to retry: the member marks the old one
//! terminated and down, and the leader removes it at the next convergence.
//!
//! # Gossip
//! Each tick a member picks one peer it reaches, preferring those that have not seen its current
//! view, and sends the full view to a peer that has not seen it, or only its version (`Status`)
//! to one that has. A peer with a different version answers with whichever side must push. Once
//! every member has seen the view, only versions travel.
//!
//! # Leading
//! On each tick the leader runs the leader's moves when the view has converged; when it has not
//! converged for `weakly_up_after`, it moves joining members to WeaklyUp; and it prunes
//! tombstones older than `tombstone_ttl`.
//!
//! # Stopping
//! A member that sees itself Down tells a few peers and stops. A member that sees itself Exiting
//! confirms its exit to the leader and stops; the leader then removes it. A node that learns it
//! was removed stops.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::events::{diff, ClusterEvent};
use super::gossip::{Gossip, Received};
use super::member::{Member, MemberStatus, UniqueAddress};
use super::reachability::Reach;
use super::vclock::{Causal, VectorClock};
use crate::remote::NodeAddress;

/// The timing and identity a node's membership runs with.
///
/// # Examples
///
/// ```
/// use casty::cluster::MembershipSettings;
/// use std::time::Duration;
/// let s = MembershipSettings::default().seed_node_timeout(Duration::from_millis(500));
/// assert_eq!(s.seed_node_timeout, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct MembershipSettings {
    /// The nodes to join through. Only the set matters: the lowest `host:port` is the first seed.
    pub seed_nodes: Vec<NodeAddress>,
    /// This node's roles.
    pub roles: BTreeSet<String>,
    /// How often a node that is not yet a member asks again (default 1 s).
    pub retry_interval: Duration,
    /// How long the first seed waits for the other seeds before it forms a cluster by itself
    /// (default 5 s).
    pub seed_node_timeout: Duration,
    /// How long a node waits for `Welcome` before it asks the seeds again (default 10 s).
    pub retry_join_after: Duration,
    /// How long the leader waits without convergence before it moves joining members to
    /// WeaklyUp (default 7 s; `None`: never).
    pub weakly_up_after: Option<Duration>,
    /// How long a removed incarnation is remembered (default 24 h).
    pub tombstone_ttl: Duration,
    /// How many peers a member tells when it is downed or exits (default 5).
    pub farewell_fanout: usize,
}

impl Default for MembershipSettings {
    fn default() -> Self {
        MembershipSettings {
            seed_nodes: Vec::new(),
            roles: BTreeSet::new(),
            retry_interval: Duration::from_secs(1),
            seed_node_timeout: Duration::from_secs(5),
            retry_join_after: Duration::from_secs(10),
            weakly_up_after: Some(Duration::from_secs(7)),
            tombstone_ttl: Duration::from_secs(24 * 3600),
            farewell_fanout: 5,
        }
    }
}

impl MembershipSettings {
    /// Sets the seed nodes.
    pub fn seed_nodes(mut self, seeds: impl IntoIterator<Item = NodeAddress>) -> Self {
        self.seed_nodes = seeds.into_iter().collect();
        self
    }

    /// Sets the roles.
    pub fn roles<R: Into<String>>(mut self, roles: impl IntoIterator<Item = R>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how often a node that is not yet a member asks again.
    pub fn retry_interval(mut self, d: Duration) -> Self {
        self.retry_interval = d;
        self
    }

    /// Sets how long the first seed waits for the others.
    pub fn seed_node_timeout(mut self, d: Duration) -> Self {
        self.seed_node_timeout = d;
        self
    }

    /// Sets how long a node waits for `Welcome`.
    pub fn retry_join_after(mut self, d: Duration) -> Self {
        self.retry_join_after = d;
        self
    }

    /// Sets (or, with `None`, turns off) the wait before joining members become WeaklyUp.
    pub fn weakly_up_after(mut self, d: Option<Duration>) -> Self {
        self.weakly_up_after = d;
        self
    }
}

/// Why a member refused a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinRefusal {
    /// The node belongs to another actor system (named).
    OtherSystem(String),
    /// This incarnation was removed from the cluster; only a new one may join.
    Removed,
    /// An older incarnation on the same address is still a member; it is being downed.
    RetryLater,
    /// The member is leaving or down, and takes no one in.
    NotAccepting,
}

/// What members say to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClusterMsg {
    /// "Are you a member of a cluster of system `system`?"
    InitJoin {
        /// The asker.
        from: UniqueAddress,
    },
    /// "Yes: join through me."
    InitJoinAck {
        /// The member answering.
        from: UniqueAddress,
        /// The incarnation that asked: an answer meant for an earlier one is ignored.
        to: UniqueAddress,
    },
    /// "No."
    InitJoinNack {
        /// The node answering.
        from: UniqueAddress,
        /// The incarnation that asked.
        to: UniqueAddress,
    },
    /// "Let me in."
    Join {
        /// The incarnation asking.
        node: UniqueAddress,
        /// Its roles.
        roles: BTreeSet<String>,
    },
    /// "You are in": the member's view, with the joiner Joining.
    Welcome {
        /// The member that let it in.
        from: UniqueAddress,
        /// The incarnation let in.
        to: UniqueAddress,
        /// Its view.
        gossip: Box<Gossip>,
    },
    /// "You may not join", and why.
    JoinRefused {
        /// The member refusing.
        from: UniqueAddress,
        /// The incarnation refused: a refusal meant for an earlier one is ignored.
        to: UniqueAddress,
        /// Why.
        reason: JoinRefusal,
    },
    /// The sender's version, and a digest of who has seen it.
    Status {
        /// The sender.
        from: UniqueAddress,
        /// Its view's version.
        version: VectorClock,
        /// A digest of its view's `seen` set.
        seen_digest: u64,
    },
    /// The sender's whole view.
    Envelope {
        /// The sender.
        from: UniqueAddress,
        /// The incarnation it is meant for.
        to: UniqueAddress,
        /// The view.
        gossip: Box<Gossip>,
    },
    /// "I have handed over and stop now": an exiting member to the leader.
    ExitingConfirmed {
        /// The exiting member.
        node: UniqueAddress,
    },
}

/// What the node is asked to do or is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Begin: ask the seeds (or wait for [`Input::Join`] when there are none).
    Start,
    /// Time passed: gossip, lead, retry. `rand` is a fresh random number from the node's one
    /// random source.
    Tick {
        /// A random number for the choice of peer.
        rand: u64,
    },
    /// A message from another node.
    Received(ClusterMsg),
    /// Join the cluster of the node at this address (by hand).
    Join(NodeAddress),
    /// The member at this address leaves gracefully.
    Leave(NodeAddress),
    /// The member at this address is declared down.
    Down(NodeAddress),
    /// The failure detector's verdict: the members this node watches and cannot reach now. Every
    /// other member is taken as reachable from this node.
    Unreachable(BTreeSet<UniqueAddress>),
    /// This incarnation is gone for good: a new one took its address, it shut down, or remoting
    /// quarantined it. It is marked so by this node and downed.
    Terminated(UniqueAddress),
    /// The node at this address refuses this incarnation for good (remoting quarantined it, as
    /// members do with a removed incarnation). If a member is there, this node is out of the
    /// cluster: it stops, as removed.
    QuarantinedBy(NodeAddress),
}

/// Why a node stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It was declared down.
    Downed,
    /// It left and handed over.
    Left,
    /// It was removed from the cluster.
    Removed,
    /// It was refused for good (another system, or a removed incarnation).
    Refused,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send `msg` to the node at `to`.
    Send {
        /// The node's address.
        to: NodeAddress,
        /// The message.
        msg: ClusterMsg,
    },
    /// Publish a membership event.
    Publish(ClusterEvent),
    /// A member refused this node.
    Refused {
        /// Who refused.
        by: UniqueAddress,
        /// Why.
        reason: JoinRefusal,
    },
    /// Stop this node's membership (and its system).
    Stop(StopReason),
}

#[derive(Debug, Clone)]
enum Phase {
    /// No seeds: waits for a join by hand.
    Idle,
    /// Asking the seeds.
    Seeking {
        /// For the first seed only: when it forms a cluster by itself.
        alone_at: Option<Instant>,
        /// Seeds that said no.
        nacked: BTreeSet<NodeAddress>,
        next_try: Instant,
    },
    /// Sent `Join` to `target`; waiting for `Welcome`.
    Joining {
        target: NodeAddress,
        next_try: Instant,
        give_up_at: Instant,
    },
    /// A member.
    Member,
    /// Done.
    Stopped,
}

/// One node's membership state machine. See the module documentation.
///
/// # Examples
///
/// ```
/// use casty::cluster::{Command, Input, Membership, MembershipSettings, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// let me = UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", 2551), 1);
/// let settings = MembershipSettings::default().seed_nodes([me.address.clone()]);
/// let mut node = Membership::new(me.clone(), settings);
/// let now = tokio::time::Instant::now();
/// // The only seed forms a cluster at once, and is Up.
/// node.handle(Input::Start, now, 0);
/// assert_eq!(node.gossip().member(&me).unwrap().status, MemberStatus::Up);
/// ```
#[derive(Debug)]
pub struct Membership {
    me: UniqueAddress,
    settings: MembershipSettings,
    phase: Phase,
    gossip: Gossip,
    exiting_confirmed: BTreeSet<UniqueAddress>,
    /// Since when the view has not converged, while this node leads.
    unconverged_since: Option<Instant>,
}

fn same_node(a: &NodeAddress, b: &NodeAddress) -> bool {
    a.host() == b.host() && a.port() == b.port()
}

/// A digest of a `seen` set, for [`ClusterMsg::Status`]: FNV-1a over the sorted uids.
fn seen_digest(g: &Gossip) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for n in g.seen() {
        for b in n.uid.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Whether `node` was removed from `view`: it has a tombstone there, or it is no member while the
/// view counts changes it made (it was a member once, and its tombstone has been pruned since).
fn removed_from(view: &Gossip, node: &UniqueAddress) -> bool {
    view.is_tombstoned(node) || (view.member(node).is_none() && view.version().get(node.uid) > 0)
}

/// Whether `view` has taken in every change `other` holds, but those made by members of `other`
/// that `view` has never heard of (neither a member nor a tombstone there). If so, every such
/// member was let in by a change `view` took in, or by one of them: `view` held them once and
/// removed them, and their tombstones have been pruned since.
fn saw_them_come_and_go(view: &Gossip, other: &Gossip) -> bool {
    let strangers: BTreeSet<u64> = other
        .members()
        .filter(|m| view.member(&m.node).is_none() && !view.is_tombstoned(&m.node))
        .map(|m| m.node.uid)
        .collect();
    other
        .version()
        .entries()
        .all(|(uid, n)| strangers.contains(&uid) || n <= view.version().get(uid))
}

impl Membership {
    /// The state machine of incarnation `me`.
    pub fn new(me: UniqueAddress, settings: MembershipSettings) -> Self {
        Membership {
            me,
            settings,
            phase: Phase::Idle,
            gossip: Gossip::default(),
            exiting_confirmed: BTreeSet::new(),
            unconverged_since: None,
        }
    }

    /// This node's current view.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// This incarnation.
    pub fn me(&self) -> &UniqueAddress {
        &self.me
    }

    /// Whether this node is a member (it has been welcomed or formed the cluster).
    pub fn is_member(&self) -> bool {
        matches!(self.phase, Phase::Member)
    }

    /// Whether this node has stopped.
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// Handles one input at `now` (and wall-clock `wall_ms`, which dates removals).
    pub fn handle(&mut self, input: Input, now: Instant, wall_ms: u64) -> Vec<Command> {
        let mut out = Vec::new();
        if self.is_stopped() {
            return out;
        }
        let before = self.gossip.clone();
        match input {
            Input::Start => self.start(now, &mut out),
            Input::Tick { rand } => self.tick(now, wall_ms, rand, &mut out),
            Input::Received(msg) => self.receive(msg, now, &mut out),
            Input::Join(address) => {
                if !self.is_member() {
                    self.join(address, now, &mut out);
                }
            }
            Input::Leave(address) => self.set_status_at(&address, MemberStatus::Leaving),
            Input::Down(address) => self.set_status_at(&address, MemberStatus::Down),
            Input::Unreachable(unreachable) => self.reap(&unreachable),
            // Certainly gone: marked so by this node, and down, so that the leader removes it
            // at the next convergence rather than after the failure detector and the downing
            // strategy have had their say. A member that is leaving (Leaving or Exiting) is left
            // to finish its leave: it stops once it sees itself Exiting, and its notice may
            // arrive before the view that says so.
            Input::Terminated(node) => {
                let unplanned = self.gossip.member(&node).is_some_and(|m| {
                    !matches!(m.status, MemberStatus::Leaving | MemberStatus::Exiting)
                });
                if self.is_member() && node != self.me && unplanned {
                    let me = self.me.clone();
                    self.gossip.mark_reachability(&me, &node, Reach::Terminated);
                    self.gossip.set_status(&node, MemberStatus::Down, &me);
                }
            }
            Input::QuarantinedBy(address) => {
                let by_a_member = self
                    .gossip
                    .members()
                    .any(|m| m.node.address == address && m.node != self.me);
                if self.is_member() && by_a_member {
                    self.phase = Phase::Stopped;
                    out.push(Command::Stop(StopReason::Removed));
                }
            }
        }
        self.after_change(&before, &mut out);
        out
    }

    fn seeds(&self) -> Vec<NodeAddress> {
        let mut seeds = self.settings.seed_nodes.clone();
        seeds.sort_by(|a, b| (a.host(), a.port()).cmp(&(b.host(), b.port())));
        seeds.dedup_by(|a, b| same_node(a, b));
        seeds
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Command>) {
        let seeds = self.seeds();
        let me = &self.me.address;
        let others: Vec<NodeAddress> = seeds
            .iter()
            .filter(|s| !same_node(s, me))
            .cloned()
            .collect();
        if seeds.is_empty() {
            self.phase = Phase::Idle;
            return;
        }
        if others.is_empty() {
            self.join_self();
            return;
        }
        let first = same_node(&seeds[0], me);
        self.phase = Phase::Seeking {
            alone_at: first.then(|| now + self.settings.seed_node_timeout),
            nacked: BTreeSet::new(),
            next_try: now + self.settings.retry_interval,
        };
        for s in others {
            out.push(self.send_to(
                s,
                ClusterMsg::InitJoin {
                    from: self.me.clone(),
                },
            ));
        }
    }

    fn send_to(&self, to: NodeAddress, msg: ClusterMsg) -> Command {
        Command::Send { to, msg }
    }

    fn join_self(&mut self) {
        let me = self.me.clone();
        let mut g = Gossip::default();
        g.add_joining(
            Member::joining(me.clone(), self.settings.roles.iter().cloned()),
            &me,
        );
        g.leader_actions(&me, 0, &BTreeSet::new());
        self.gossip = g;
        self.phase = Phase::Member;
    }

    fn join(&mut self, target: NodeAddress, now: Instant, out: &mut Vec<Command>) {
        if same_node(&target, &self.me.address) {
            self.join_self();
            return;
        }
        out.push(self.send_to(
            target.clone(),
            ClusterMsg::Join {
                node: self.me.clone(),
                roles: self.settings.roles.clone(),
            },
        ));
        self.phase = Phase::Joining {
            target,
            next_try: now + self.settings.retry_interval,
            give_up_at: now + self.settings.retry_join_after,
        };
    }

    fn tick(&mut self, now: Instant, wall_ms: u64, rand: u64, out: &mut Vec<Command>) {
        match self.phase.clone() {
            Phase::Idle | Phase::Stopped => {}
            Phase::Seeking {
                alone_at,
                nacked,
                next_try,
            } => {
                if alone_at.is_some_and(|at| now >= at) {
                    self.join_self();
                } else if now >= next_try {
                    for s in self.seeds() {
                        if !same_node(&s, &self.me.address) && !nacked.contains(&s) {
                            out.push(self.send_to(
                                s,
                                ClusterMsg::InitJoin {
                                    from: self.me.clone(),
                                },
                            ));
                        }
                    }
                    self.phase = Phase::Seeking {
                        alone_at,
                        nacked,
                        next_try: now + self.settings.retry_interval,
                    };
                }
            }
            Phase::Joining {
                target,
                next_try,
                give_up_at,
            } => {
                if now >= give_up_at && !self.settings.seed_nodes.is_empty() {
                    self.start(now, out);
                } else if now >= next_try {
                    self.join(target, now, out);
                    if let Phase::Joining { give_up_at: g, .. } = &mut self.phase {
                        *g = give_up_at.max(now);
                    }
                }
            }
            Phase::Member => {
                self.lead(now, wall_ms);
                self.gossip_to_a_peer(rand, out);
            }
        }
    }

    fn lead(&mut self, now: Instant, wall_ms: u64) {
        let me = self.me.clone();
        if self.gossip.leader(&me).as_ref() != Some(&me) {
            self.unconverged_since = None;
            return;
        }
        if self.gossip.converged(&me, &self.exiting_confirmed) {
            self.unconverged_since = None;
            self.gossip
                .leader_actions(&me, wall_ms, &self.exiting_confirmed);
            let ttl = u64::try_from(self.settings.tombstone_ttl.as_millis()).unwrap_or(u64::MAX);
            self.gossip
                .prune_tombstones(wall_ms.saturating_sub(ttl), &me);
            let gossip = &self.gossip;
            self.exiting_confirmed
                .retain(|n| gossip.member(n).is_some());
        } else {
            let since = *self.unconverged_since.get_or_insert(now);
            if let Some(after) = self.settings.weakly_up_after {
                if now.duration_since(since) >= after {
                    self.gossip.weakly_up(&me);
                }
            }
        }
    }

    /// The peers worth gossiping with: members this node itself reaches.
    fn peers(&self) -> Vec<&Member> {
        let r = self.gossip.reachability();
        self.gossip
            .members()
            .filter(|m| m.node != self.me && r.verdict(&self.me, &m.node) == Reach::Reachable)
            .collect()
    }

    fn gossip_to_a_peer(&self, rand: u64, out: &mut Vec<Command>) {
        let peers = self.peers();
        if peers.is_empty() {
            return;
        }
        let unseen: Vec<&Member> = peers
            .iter()
            .copied()
            .filter(|m| !self.gossip.seen().contains(&m.node))
            .collect();
        // Four times in five, one that has not seen this view, if there is one.
        let pool = if !rand.is_multiple_of(5) && !unseen.is_empty() {
            &unseen
        } else {
            &peers
        };
        let pick = usize::try_from((rand >> 8) % pool.len() as u64).unwrap_or(0);
        let to = pool[pick].node.clone();
        out.push(self.gossip_msg(&to));
    }

    /// Only the version to a peer that has seen this view, the whole view to one that has not.
    fn gossip_msg(&self, to: &UniqueAddress) -> Command {
        let msg = if self.gossip.seen().contains(to) {
            self.status_msg()
        } else {
            self.envelope(to)
        };
        self.send_to(to.address.clone(), msg)
    }

    fn status_msg(&self) -> ClusterMsg {
        ClusterMsg::Status {
            from: self.me.clone(),
            version: self.gossip.version().clone(),
            seen_digest: seen_digest(&self.gossip),
        }
    }

    fn envelope(&self, to: &UniqueAddress) -> ClusterMsg {
        ClusterMsg::Envelope {
            from: self.me.clone(),
            to: to.clone(),
            gossip: Box::new(self.gossip.clone()),
        }
    }

    fn receive(&mut self, msg: ClusterMsg, now: Instant, out: &mut Vec<Command>) {
        match msg {
            ClusterMsg::InitJoin { from } => {
                let me = self.me.clone();
                let to = from.clone();
                let reply = if from.address.system() != self.me.address.system() {
                    ClusterMsg::JoinRefused {
                        from: me,
                        to,
                        reason: JoinRefusal::OtherSystem(self.me.address.system().to_string()),
                    }
                } else if self.accepts_joins() {
                    ClusterMsg::InitJoinAck { from: me, to }
                } else {
                    ClusterMsg::InitJoinNack { from: me, to }
                };
                out.push(self.send_to(from.address, reply));
            }
            ClusterMsg::InitJoinAck { from, to } => {
                if to == self.me && matches!(self.phase, Phase::Seeking { .. }) {
                    self.join(from.address, now, out);
                }
            }
            ClusterMsg::InitJoinNack { from, to } => {
                if to != self.me {
                    return;
                }
                // Only the first seed counts the noes: it forms a cluster once every other seed
                // has said no. Any other node keeps asking every seed.
                if let Phase::Seeking {
                    nacked,
                    alone_at: Some(_),
                    ..
                } = &mut self.phase
                {
                    nacked.insert(from.address);
                    let all_said_no = self
                        .settings
                        .seed_nodes
                        .iter()
                        .filter(|s| !same_node(s, &self.me.address))
                        .all(|s| nacked.iter().any(|n| same_node(n, s)));
                    if all_said_no {
                        self.join_self();
                    }
                }
            }
            ClusterMsg::Join { node, roles } => self.on_join(node, roles, out),
            ClusterMsg::Welcome { from, to, gossip } => {
                let expected = matches!(&self.phase, Phase::Joining { target, .. } if same_node(target, &from.address));
                if to == self.me
                    && expected
                    && gossip.member(&self.me).is_some()
                    && gossip.check().is_ok()
                {
                    self.gossip = *gossip;
                    self.gossip.mark_seen(&self.me.clone());
                    self.phase = Phase::Member;
                    out.push(self.send_to(from.address.clone(), self.envelope(&from)));
                }
            }
            ClusterMsg::JoinRefused { from, to, reason } => {
                // Only a refusal meant for this incarnation, from the node it is joining through
                // (or, while it asks the seeds, from a seed).
                let from_target = match &self.phase {
                    Phase::Joining { target, .. } => same_node(target, &from.address),
                    Phase::Seeking { .. } => {
                        self.seeds().iter().any(|s| same_node(s, &from.address))
                    }
                    _ => false,
                };
                if to != self.me || !from_target {
                    return;
                }
                out.push(Command::Refused {
                    by: from,
                    reason: reason.clone(),
                });
                if matches!(reason, JoinRefusal::OtherSystem(_) | JoinRefusal::Removed) {
                    self.phase = Phase::Stopped;
                    out.push(Command::Stop(StopReason::Refused));
                }
            }
            ClusterMsg::Status {
                from,
                version,
                seen_digest: digest,
            } => self.on_status(from, version, digest, out),
            ClusterMsg::Envelope { from, to, gossip } => self.on_envelope(from, to, *gossip, out),
            ClusterMsg::ExitingConfirmed { node } => {
                if self.gossip.member(&node).is_some_and(|m| {
                    matches!(m.status, MemberStatus::Leaving | MemberStatus::Exiting)
                }) {
                    self.exiting_confirmed.insert(node);
                }
            }
        }
    }

    fn my_status(&self) -> Option<MemberStatus> {
        self.gossip.member(&self.me).map(|m| m.status)
    }

    fn accepts_joins(&self) -> bool {
        self.is_member()
            && !matches!(
                self.my_status(),
                Some(MemberStatus::Down | MemberStatus::Exiting) | None
            )
    }

    fn on_join(&mut self, node: UniqueAddress, roles: BTreeSet<String>, out: &mut Vec<Command>) {
        let refuse = |me: &UniqueAddress, reason| ClusterMsg::JoinRefused {
            from: me.clone(),
            to: node.clone(),
            reason,
        };
        if node.address.system() != self.me.address.system() {
            let reason = JoinRefusal::OtherSystem(self.me.address.system().to_string());
            out.push(self.send_to(node.address.clone(), refuse(&self.me, reason)));
            return;
        }
        if !self.accepts_joins() {
            if self.is_member() {
                out.push(self.send_to(
                    node.address.clone(),
                    refuse(&self.me, JoinRefusal::NotAccepting),
                ));
            }
            return;
        }
        if removed_from(&self.gossip, &node) {
            out.push(self.send_to(node.address.clone(), refuse(&self.me, JoinRefusal::Removed)));
            return;
        }
        let me = self.me.clone();
        let other = self
            .gossip
            .members()
            .find(|m| m.node.same_node(&node) && m.node != node)
            .map(|m| m.node.clone());
        match other {
            // A lost Welcome: send it again.
            _ if self.gossip.member(&node).is_some() => {}
            // Another incarnation at a member's address. If the member there is gone (no longer
            // reachable, or down), this is that node restarted: the old incarnation is marked
            // terminated and down, and the new one retries once the leader has removed it. If the
            // member is alive, the Join is a stale one from an earlier incarnation, and changes
            // nothing.
            Some(old) => {
                let gone = !self.gossip.is_reachable(&old)
                    || self
                        .gossip
                        .member(&old)
                        .is_some_and(|m| m.status == MemberStatus::Down);
                if gone {
                    self.gossip.mark_reachability(&me, &old, Reach::Terminated);
                    self.gossip.set_status(&old, MemberStatus::Down, &me);
                }
                out.push(self.send_to(node.address.clone(), refuse(&me, JoinRefusal::RetryLater)));
                return;
            }
            None => {
                self.gossip
                    .add_joining(Member::joining(node.clone(), roles), &me);
            }
        }
        out.push(self.send_to(
            node.address.clone(),
            ClusterMsg::Welcome {
                from: me,
                to: node.clone(),
                gossip: Box::new(self.gossip.clone()),
            },
        ));
    }

    /// Answers gossip from a removed incarnation with this node's view, in which it finds itself
    /// removed (and stops). Returns whether `from` was one.
    fn tell_a_removed_node(&self, from: &UniqueAddress, out: &mut Vec<Command>) -> bool {
        if !self.is_member() || !removed_from(&self.gossip, from) {
            return false;
        }
        out.push(self.send_to(from.address.clone(), self.envelope(from)));
        true
    }

    /// Whether gossip from `from` is worth reading: a member this node reaches.
    fn is_from_a_peer(&self, from: &UniqueAddress) -> bool {
        self.is_member()
            && self.gossip.member(from).is_some()
            && self.gossip.reachability().verdict(&self.me, from) == Reach::Reachable
    }

    fn on_status(
        &mut self,
        from: UniqueAddress,
        version: VectorClock,
        digest: u64,
        out: &mut Vec<Command>,
    ) {
        if self.tell_a_removed_node(&from, out) || !self.is_from_a_peer(&from) {
            return;
        }
        let reply = match self.gossip.version().compare(&version) {
            Causal::Same if digest == seen_digest(&self.gossip) => return,
            // The same version, seen by different members: pool the `seen` sets.
            Causal::Same => self.envelope(&from),
            // The peer is behind, or diverged: push the whole view.
            Causal::After | Causal::Concurrent => self.envelope(&from),
            // The peer is ahead: say so, and it pushes.
            Causal::Before => self.status_msg(),
        };
        out.push(self.send_to(from.address.clone(), reply));
    }

    fn on_envelope(
        &mut self,
        from: UniqueAddress,
        to: UniqueAddress,
        gossip: Gossip,
        out: &mut Vec<Command>,
    ) {
        if to != self.me || self.tell_a_removed_node(&from, out) {
            return;
        }
        // A view that breaks the invariants every view keeps is not read at all.
        if gossip.check().is_err() {
            return;
        }
        // A node still waiting to be let in that finds itself in a member's view was let in,
        // and its Welcome was lost: the view is its welcome.
        if matches!(self.phase, Phase::Joining { .. } | Phase::Seeking { .. })
            && gossip.member(&self.me).is_some()
            && gossip
                .member(&from)
                .is_some_and(|m| m.status != MemberStatus::Down)
        {
            self.gossip = gossip;
            self.gossip.mark_seen(&self.me.clone());
            self.phase = Phase::Member;
            out.push(self.send_to(from.address.clone(), self.envelope(&from)));
            return;
        }
        // Gossip from a member this node reaches; or from one it has not heard of yet, whose view
        // holds both and shares history with this node's (a member welcomed by another that
        // crashed before telling this node, or one this node missed while cut off): the merge is
        // safe either way. A view with no history in common comes from a cluster formed apart,
        // and is not mixed in.
        let known = self.is_from_a_peer(&from);
        let introduced = self.is_member()
            && self.gossip.member(&from).is_none()
            && !removed_from(&self.gossip, &from)
            && gossip.member(&from).is_some()
            && gossip.version().shares_history(self.gossip.version());
        if introduced && saw_them_come_and_go(&self.gossip, &gossip) {
            // Nothing new but members this node let in and removed long ago, the sender among
            // them: it is told, with this node's view, in which it finds itself gone.
            out.push(self.send_to(from.address.clone(), self.envelope(&from)));
            return;
        }
        if !known && !introduced {
            return;
        }
        if gossip.member(&self.me).is_none() {
            if removed_from(&gossip, &self.me) || saw_them_come_and_go(&gossip, &self.gossip) {
                // Removed: adopt nothing, stop.
                self.phase = Phase::Stopped;
                out.push(Command::Stop(StopReason::Removed));
            }
            return;
        }
        let remote_saw_me = gossip.seen().contains(&self.me);
        let me = self.me.clone();
        match self.gossip.receive(gossip, &me) {
            Received::Same | Received::Newer if remote_saw_me => {}
            _ => out.push(self.send_to(from.address.clone(), self.envelope(&from))),
        }
    }

    /// Moves the member at `address` to `status`. There is one, unless a restarted node's old
    /// incarnation is still in the view: then Down downs every incarnation there, and Leave moves
    /// only the one furthest on (at most one incarnation of an address is ever Up or beyond).
    fn set_status_at(&mut self, address: &NodeAddress, status: MemberStatus) {
        if !self.is_member() {
            return;
        }
        let mut targets: Vec<(MemberStatus, UniqueAddress)> = self
            .gossip
            .members()
            .filter(|m| same_node(&m.node.address, address) && m.status.can_become(status))
            .map(|m| (m.status, m.node.clone()))
            .collect();
        if status != MemberStatus::Down {
            targets.sort();
            targets.drain(..targets.len().saturating_sub(1));
        }
        let targets: Vec<UniqueAddress> = targets.into_iter().map(|(_, n)| n).collect();
        let me = self.me.clone();
        for node in targets {
            self.gossip.set_status(&node, status, &me);
        }
    }

    fn reap(&mut self, unreachable: &BTreeSet<UniqueAddress>) {
        if !self.is_member() {
            return;
        }
        let me = self.me.clone();
        let members: Vec<UniqueAddress> = self
            .gossip
            .members()
            .map(|m| m.node.clone())
            .filter(|n| *n != me)
            .collect();
        for n in members {
            let to = if unreachable.contains(&n) {
                Reach::Unreachable
            } else {
                Reach::Reachable
            };
            let now = self.gossip.reachability().verdict(&me, &n);
            if now != to && now != Reach::Terminated {
                self.gossip.mark_reachability(&me, &n, to);
            }
        }
    }

    /// Publishes what changed, and stops a node that is down, exiting or removed.
    fn after_change(&mut self, before: &Gossip, out: &mut Vec<Command>) {
        if !self.is_member() {
            return;
        }
        out.extend(
            diff(before, &self.gossip, &self.me)
                .into_iter()
                .map(Command::Publish),
        );
        match self.my_status() {
            Some(MemberStatus::Down) => {
                self.farewell(out);
                self.phase = Phase::Stopped;
                out.push(Command::Stop(StopReason::Downed));
            }
            Some(MemberStatus::Exiting) => {
                let confirm = ClusterMsg::ExitingConfirmed {
                    node: self.me.clone(),
                };
                // The leader, and the member that leads once this one is gone.
                let leaders: BTreeSet<NodeAddress> = self
                    .gossip
                    .members()
                    .filter(|m| m.node != self.me && m.status.is_up_or_leaving())
                    .take(2)
                    .map(|m| m.node.address.clone())
                    .collect();
                // The view with this member Exiting first, so that the confirmation finds it so.
                self.farewell(out);
                for to in leaders {
                    out.push(self.send_to(to, confirm.clone()));
                }
                self.phase = Phase::Stopped;
                out.push(Command::Stop(StopReason::Left));
            }
            _ => {}
        }
    }

    /// Sends the whole view to a few peers, so that news of this node's end spreads.
    fn farewell(&self, out: &mut Vec<Command>) {
        let peers: Vec<UniqueAddress> = self
            .peers()
            .into_iter()
            .take(self.settings.farewell_fanout)
            .map(|m| m.node.clone())
            .collect();
        for to in peers {
            out.push(self.gossip_msg_full(&to));
        }
    }

    fn gossip_msg_full(&self, to: &UniqueAddress) -> Command {
        self.send_to(to.address.clone(), self.envelope(to))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod adversarial;
