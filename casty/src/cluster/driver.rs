//! The actor that runs a node's membership: it owns the pure parts ([`Membership`],
//! [`Heartbeats`], [`SplitBrainResolver`]), feeds them messages, ticks and the time, and carries
//! out what they return.
//!
//! It is the only place where membership meets the clock, the random source and the network:
//! - timers tick it: once per gossip interval (gossip, leading, downing) and once per heartbeat
//!   interval (heartbeats);
//! - the failure detectors' verdicts are read when they can change, not polled: one single
//!   timer is armed for the earliest instant at which a watched node's detector gives up on it
//!   if no answer comes ([`Heartbeats::next_suspicion`]), so a silent node is reported
//!   unreachable at that instant, to the timer's millisecond; an answer from a node reported
//!   unreachable is reported at once. The timer is armed lazily: it is moved only when the
//!   earliest deadline comes *earlier* than the armed one (a new receiver, an unusually early
//!   answer); an answer that moves a deadline later leaves it, and when it fires early it
//!   finds nothing and re-arms for the deadline then pending. Once per heartbeat interval the
//!   verdicts are also fed unconditionally: a fallback that costs one comparison of a few
//!   addresses and bounds the harm of any missed deadline to one heartbeat interval;
//! - every random number comes from one source, seeded when the node starts, so a seeded node
//!   makes the same choices again;
//! - messages to other nodes go to their `/_cluster` actor as [`ClusterWire`], over remoting;
//! - each change of the view is published, as [`ClusterEvent`]s, on the system's event stream and
//!   to the cluster's subscribers, and the latest view is kept where [`Cluster`](super::Cluster)
//!   reads it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

use super::downing::{Downing, DowningView, UnreachableRecord};
use super::events::{diff, ClusterEvent};
use super::gossip::Gossip;
use super::heartbeat::Heartbeats;
use super::member::UniqueAddress;
use super::membership::{Command, Input, Membership, MembershipSettings, StopReason};
use super::reachability::Reach;
use super::sbr::{SplitBrainResolver, StabilityChange};
use super::wire::ClusterWire;
use crate::actor::actor_ref::ActorRef;
use crate::actor::behavior::{Behavior, Behaviors};
use crate::actor::context::ActorContext;
use crate::actor::message::Message;
use crate::actor::system::ActorSystem;
use crate::config::FailureDetectorConfig;
use crate::remote::NodeAddress;

/// The name of the actor that receives [`ClusterWire`] on every node.
pub(crate) const RECEPTIONIST: &str = "_cluster";
/// The name of the driver.
pub(crate) const DRIVER: &str = "_cluster_driver";

/// A subscriber to membership events.
pub(crate) type Subscriber = Arc<dyn Fn(&ClusterEvent) + Send + Sync>;

/// What the driver is told.
#[derive(Clone)]
pub(crate) enum DriverMsg {
    Wire(ClusterWire),
    GossipTick,
    HeartbeatTick,
    /// The first heartbeat, at the node's phase: the regular ticks start then.
    HeartbeatStart,
    /// The earliest instant at which a watched node's detector gives up on it has come:
    /// reads the verdicts, and arms the timer again for the next such instant.
    SuspicionDue,
    Join(NodeAddress),
    Leave(NodeAddress),
    Down(NodeAddress),
    /// Gets the events that build the current view, then every later event.
    Subscribe(Subscriber),
    /// Remoting says this incarnation is gone for good (restarted, shut down, quarantined).
    Gone(UniqueAddress),
    /// The node at this address refuses this incarnation for good.
    QuarantinedUs(NodeAddress),
}

impl std::fmt::Debug for DriverMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverMsg::Wire(w) => f.debug_tuple("Wire").field(w).finish(),
            DriverMsg::GossipTick => f.write_str("GossipTick"),
            DriverMsg::HeartbeatTick => f.write_str("HeartbeatTick"),
            DriverMsg::HeartbeatStart => f.write_str("HeartbeatStart"),
            DriverMsg::SuspicionDue => f.write_str("SuspicionDue"),
            DriverMsg::Join(a) => f.debug_tuple("Join").field(a).finish(),
            DriverMsg::Leave(a) => f.debug_tuple("Leave").field(a).finish(),
            DriverMsg::Down(a) => f.debug_tuple("Down").field(a).finish(),
            DriverMsg::Subscribe(_) => f.write_str("Subscribe(..)"),
            DriverMsg::Gone(n) => f.debug_tuple("Gone").field(n).finish(),
            DriverMsg::QuarantinedUs(a) => f.debug_tuple("QuarantinedUs").field(a).finish(),
        }
    }
}

impl Message for DriverMsg {}

/// Everything a driver starts from.
#[derive(Clone)]
pub(crate) struct DriverSettings {
    pub(crate) me: UniqueAddress,
    pub(crate) membership: MembershipSettings,
    pub(crate) gossip_interval: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) failure_detector: FailureDetectorConfig,
    pub(crate) monitored_by: usize,
    pub(crate) downing: Arc<dyn Downing>,
    pub(crate) stable_after: Duration,
    pub(crate) down_all_when_unstable: Option<Duration>,
    pub(crate) seed: u64,
}

/// Where the driver leaves what others read: the latest view, and how the node ended.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) view: watch::Sender<Arc<Gossip>>,
    pub(crate) stopped: watch::Sender<Option<StopReason>>,
}

/// The strategy, shared between restarts of the driver.
#[derive(Debug)]
struct SharedDowning(Arc<dyn Downing>);

impl Downing for SharedDowning {
    fn decide(&self, view: &DowningView<'_>) -> super::downing::Decision {
        self.0.decide(view)
    }
}

struct Driver {
    settings: DriverSettings,
    membership: Membership,
    heartbeats: Heartbeats,
    sbr: SplitBrainResolver,
    rng: fastrand::Rng,
    heartbeat_seq: u64,
    /// The unavailable receivers last fed to the membership as its verdict.
    reported: BTreeSet<UniqueAddress>,
    /// When the suspicion timer is armed to fire, if it is.
    armed: Option<Instant>,
    refs: HashMap<NodeAddress, ActorRef<ClusterWire>>,
    subscribers: Vec<Subscriber>,
    published: Arc<Published>,
}

/// The key of the single timer armed for the next detector deadline.
const SUSPICION_TIMER: &str = "suspicion";

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Driver {
    fn new(settings: DriverSettings, published: Arc<Published>) -> Self {
        let now = Instant::now();
        Driver {
            membership: Membership::new(settings.me.clone(), settings.membership.clone()),
            heartbeats: Heartbeats::new(
                settings.me.clone(),
                &settings.failure_detector,
                settings.monitored_by,
            ),
            sbr: SplitBrainResolver::new(
                Box::new(SharedDowning(settings.downing.clone())),
                settings.stable_after,
                settings.down_all_when_unstable,
                now,
            ),
            rng: fastrand::Rng::with_seed(settings.seed),
            heartbeat_seq: 0,
            reported: BTreeSet::new(),
            armed: None,
            refs: HashMap::new(),
            subscribers: Vec::new(),
            published,
            settings,
        }
    }

    fn me(&self) -> &UniqueAddress {
        &self.settings.me
    }

    fn handle(&mut self, system: &ActorSystem, msg: DriverMsg) {
        let now = Instant::now();
        match msg {
            DriverMsg::Wire(ClusterWire::Membership(m)) => {
                self.input(system, Input::Received(m), now)
            }
            DriverMsg::Wire(ClusterWire::Heartbeat { from, seq }) => {
                // Answer only members of this node's cluster, and only if this node is one.
                if self.membership.is_member() && self.membership.gossip().member(&from).is_some() {
                    let rsp = ClusterWire::HeartbeatRsp {
                        from: self.me().clone(),
                        seq,
                    };
                    self.send(system, &from.address, rsp);
                }
            }
            DriverMsg::Wire(ClusterWire::HeartbeatRsp { from, .. }) => {
                self.heartbeats.on_response(&from, now);
                // An answer can only make its sender available again.
                if self.reported.contains(&from) {
                    self.report_verdicts(system, now, false);
                }
            }
            DriverMsg::GossipTick => {
                let rand = self.rng.u64(..);
                self.input(system, Input::Tick { rand }, now);
                self.downing(system, now);
            }
            DriverMsg::HeartbeatTick | DriverMsg::HeartbeatStart => {
                if !self.membership.is_member() {
                    return;
                }
                for to in self.heartbeats.tick(now) {
                    self.heartbeat_seq += 1;
                    let hb = ClusterWire::Heartbeat {
                        from: self.me().clone(),
                        seq: self.heartbeat_seq,
                    };
                    self.send(system, &to.address, hb);
                }
                self.report_verdicts(system, now, true);
            }
            DriverMsg::SuspicionDue => {
                self.armed = None;
                self.report_verdicts(system, now, false);
            }
            DriverMsg::Join(a) => self.input(system, Input::Join(a), now),
            DriverMsg::Leave(a) => self.input(system, Input::Leave(a), now),
            DriverMsg::Down(a) => self.input(system, Input::Down(a), now),
            DriverMsg::Gone(n) => self.input(system, Input::Terminated(n), now),
            DriverMsg::QuarantinedUs(a) => self.input(system, Input::QuarantinedBy(a), now),
            DriverMsg::Subscribe(f) => {
                for e in diff(&Gossip::default(), self.membership.gossip(), self.me()) {
                    f(&e);
                }
                self.subscribers.push(f);
            }
        }
    }

    /// Feeds the detectors' verdict at `now` to the membership if it changed since the last
    /// one fed, or in any case if `always`.
    fn report_verdicts(&mut self, system: &ActorSystem, now: Instant, always: bool) {
        if !self.membership.is_member() {
            return;
        }
        let unavailable = self.heartbeats.unavailable(now);
        if always || unavailable != self.reported {
            self.reported = unavailable.clone();
            self.input(system, Input::Unreachable(unavailable), now);
        }
    }

    /// Arms the suspicion timer for the earliest detector deadline, unless it is already armed
    /// for that instant or an earlier one.
    fn arm_suspicion(&mut self, ctx: &mut ActorContext<DriverMsg>) {
        let now = Instant::now();
        let Some(next) = self.heartbeats.next_suspicion(now) else {
            return;
        };
        if self.armed.is_some_and(|armed| armed <= next) {
            return;
        }
        // A timer never fires before its delay has passed (tokio rounds it up to the next
        // millisecond), so this one fires at `next` or just after, when the detector has given
        // up.
        ctx.start_single_timer(
            SUSPICION_TIMER,
            DriverMsg::SuspicionDue,
            next.saturating_duration_since(now),
        );
        self.armed = Some(next);
    }

    fn input(&mut self, system: &ActorSystem, input: Input, now: Instant) {
        let g = self.membership.gossip();
        let (version, seen) = (g.version().clone(), g.seen().len());
        let commands = self.membership.handle(input, now, wall_ms());
        // Readers see the new view (a new version, or more members having seen it) before any
        // event about it arrives. `seen` only grows within one version.
        let g = self.membership.gossip();
        if g.version() != &version || g.seen().len() != seen || !self.membership.is_member() {
            self.view_changed();
        }
        for c in commands {
            match c {
                Command::Send { to, msg } => self.send(system, &to, ClusterWire::Membership(msg)),
                Command::Publish(e) => self.publish(system, e, now),
                Command::Refused { by, reason } => {
                    tracing::warn!(by = %by, ?reason, "the cluster refused this node");
                    self.publish(system, ClusterEvent::JoinRefused { by, reason }, now);
                }
                Command::Stop(reason) => {
                    tracing::info!(?reason, node = %self.me(), "out of the cluster: stopping");
                    self.published.stopped.send_replace(Some(reason));
                    // A node out of the cluster stops its actor system, once its farewell
                    // messages have had a gossip interval to go out.
                    let system = system.clone();
                    let wait = self.settings.gossip_interval;
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        system.shutdown().await;
                    });
                }
            }
        }
    }

    /// The heartbeat ring follows the members, and readers see the new view.
    ///
    /// Down members stay on the ring until they are removed: the failure detector's verdicts
    /// are read as "every member not named is reachable", so a Down member that stopped must stay
    /// watched (and unreachable) for the leader to remove it.
    fn view_changed(&mut self) {
        let g = self.membership.gossip();
        let members: Vec<UniqueAddress> = g.members().map(|m| m.node.clone()).collect();
        let unreachable: Vec<UniqueAddress> = members
            .iter()
            .filter(|n| g.reachability().verdict(self.me(), n) != Reach::Reachable)
            .cloned()
            .collect();
        self.heartbeats.set_members(members, unreachable);
        self.published.view.send_replace(Arc::new(g.clone()));
    }

    fn publish(&mut self, system: &ActorSystem, e: ClusterEvent, now: Instant) {
        match &e {
            ClusterEvent::UnreachableMember(_) | ClusterEvent::ReachableMember(_) => {
                self.sbr.on_change(now, StabilityChange::Reachability);
            }
            ClusterEvent::MemberUp(_) | ClusterEvent::MemberExited(_) => {
                self.sbr.on_change(now, StabilityChange::Membership);
            }
            // A removed incarnation may never come back: remoting refuses it from now on, so
            // that it cannot join again even once its tombstone has been pruned (as Akka's
            // cluster quarantines a removed member).
            ClusterEvent::MemberRemoved { member, .. } if member.node != *self.me() => {
                system.quarantine_incarnation(member.node.uid);
            }
            _ => {}
        }
        for s in &self.subscribers {
            s(&e);
        }
        system.event_stream().publish(e);
    }

    /// Asks the split-brain resolver, on the leader, and downs what it decides: itself last.
    fn downing(&mut self, system: &ActorSystem, now: Instant) {
        if !self.membership.is_member() {
            return;
        }
        let g = self.membership.gossip();
        let me = self.me().clone();
        let members: Vec<_> = g.members().cloned().collect();
        let unreachable: BTreeSet<UniqueAddress> = members
            .iter()
            .filter(|m| !g.is_reachable(&m.node))
            .map(|m| m.node.clone())
            .collect();
        let records: Vec<UnreachableRecord> = g
            .reachability()
            .records()
            .map(|(o, s, _)| UnreachableRecord::new(o.clone(), s.clone()))
            .collect();
        let leader = g.leader(&me).as_ref() == Some(&me);
        let view = DowningView::new(&me, &members, &unreachable, &records).with_seen(g.seen());
        let Some(down) = self.sbr.tick(now, &view, leader) else {
            return;
        };
        tracing::warn!(?down, "split-brain resolver downs members");
        let (others, own): (Vec<_>, Vec<_>) = down.into_iter().partition(|n| *n != me);
        for n in others.into_iter().chain(own) {
            self.input(system, Input::Down(n.address), now);
        }
    }

    fn send(&mut self, system: &ActorSystem, to: &NodeAddress, msg: ClusterWire) {
        let r = match self.refs.get(to) {
            Some(r) => r,
            None => match system.remote_ref::<ClusterWire>(&format!("{to}/{RECEPTIONIST}")) {
                Ok(r) => self.refs.entry(to.clone()).or_insert(r),
                Err(e) => {
                    tracing::warn!(%to, error = %e, "no route to a cluster node");
                    return;
                }
            },
        };
        r.tell(msg);
    }
}

/// Where in the heartbeat interval a node with random seed `seed` starts heartbeating.
fn heartbeat_phase(seed: u64, interval: Duration) -> Duration {
    let nanos = u64::try_from(interval.as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_nanos(fastrand::Rng::with_seed(seed ^ 0x6865_6172_7462_6561).u64(..nanos))
}

/// The driver's behavior: timers set, `Start` given, then every message handled in turn.
pub(crate) fn driver(settings: DriverSettings, published: Arc<Published>) -> Behavior<DriverMsg> {
    Behaviors::setup(move |ctx: &mut ActorContext<DriverMsg>| {
        ctx.start_timer_at_fixed_rate("gossip", DriverMsg::GossipTick, settings.gossip_interval);
        // Heartbeats start at a point of the interval drawn from the node's seed, so that nodes
        // started together do not heartbeat in step: the observers of a node then hear it last
        // at different moments, and the first of them to give up on it after a crash does so
        // sooner than any one of them would, on average.
        let interval = settings.heartbeat_interval;
        let phase = heartbeat_phase(settings.seed, interval);
        ctx.start_single_timer("heartbeat", DriverMsg::HeartbeatStart, phase);
        let state = Mutex::new(Driver::new(settings.clone(), published.clone()));
        let system = ctx.system().clone();
        state.lock().unwrap_or_else(|e| e.into_inner()).input(
            &system,
            Input::Start,
            Instant::now(),
        );
        Behaviors::receive(move |ctx: &mut ActorContext<DriverMsg>, mut msg| {
            if let DriverMsg::HeartbeatStart = msg {
                ctx.start_timer_at_fixed_rate("heartbeat", DriverMsg::HeartbeatTick, interval);
                msg = DriverMsg::HeartbeatTick;
            }
            let mut d = state.lock().unwrap_or_else(|e| e.into_inner());
            d.handle(ctx.system(), msg);
            d.arm_suspicion(ctx);
            Behaviors::same()
        })
    })
}

/// The actor other nodes send [`ClusterWire`] to: it hands each message to the driver.
pub(crate) fn receptionist(driver: ActorRef<DriverMsg>) -> Behavior<ClusterWire> {
    Behaviors::receive(move |_ctx, msg| {
        driver.tell(DriverMsg::Wire(msg));
        Behaviors::same()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_phase_lies_within_the_interval_and_is_decided_by_the_seed() {
        let interval = Duration::from_millis(500);
        let phases: Vec<Duration> = (0..200).map(|s| heartbeat_phase(s, interval)).collect();
        assert!(phases.iter().all(|p| *p < interval));
        assert_eq!(heartbeat_phase(7, interval), heartbeat_phase(7, interval));
        // Spread over the interval: some in each half.
        assert!(phases.iter().any(|p| *p < interval / 2));
        assert!(phases.iter().any(|p| *p >= interval / 2));
        assert_eq!(heartbeat_phase(3, Duration::ZERO), Duration::ZERO);
    }
}
