//! Runs a [`Plan`] as a cluster of real `ClusteredActorSystem`s in turmoil's simulated network
//! and time, checking the rules of [`super::checks`] as it goes.
//!
//! Each host of the plan is a turmoil host running one node; remoting goes over
//! [`SimTransport`] wrapped in a seeded [`FaultyTransport`] (for lost frames and cut links), while
//! turmoil holds messages back for the partitions that only delay. Every source of chance — the
//! network's, each node's uid and choices, the transports' losses, turmoil's order of hosts — is
//! seeded from the plan's seed, so a run is decided by its seed, and replays exactly.
//!
//! The run steps the simulation itself: it applies each action when its time comes, and every
//! [`POLL`] it reads every running node's view and checks the rules on views. At the end it checks
//! the events, then that the cluster settles: once every fault has healed and every node runs
//! again (a node that stops is restarted, as a process supervisor would), every node must hold one
//! converged view with all of them Up within [`SETTLE_ROUNDS`] gossip rounds.
//!
//! Every node also runs the sharded type of [`super::entities`] and sends it traffic from the
//! moment it starts. Its entities record their lives in one [`Recorder`]; when the run crashes or
//! bounces a host it ends that host's lives at that instant (a killed process runs no
//! `post_stop`), and at the end it checks that no two incarnations of one entity ever ran at
//! once ([`checks::single_incarnation`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::{
    Cluster, ClusterEvent, ClusteredActorSystem, ClusteredActorSystemBuilder, KeepMajority,
    MemberStatus, MembershipSettings,
};
use casty::config::FailureDetectorConfig;
use casty::remote::NodeAddress;
use casty::testing::{Direction, FaultyTransport, SimTransport};

use super::checks::{self, Kind, Life, Observed, Snapshot, ViewChecks};
use super::entities::{self, Recorder};
use super::plan::{Action, Plan, LONG_PARTITION};

/// Between gossip rounds.
pub const GOSSIP: Duration = Duration::from_millis(200);
/// How often the run reads the nodes' views.
pub const POLL: Duration = Duration::from_millis(100);
/// The bound on settling after the last fault, in gossip rounds.
pub const SETTLE_ROUNDS: u32 = 50;
/// The split-brain resolver's wait for a stable membership.
pub const STABLE_AFTER: Duration = Duration::from_secs(3);

const PORT: u16 = 2551;

/// The host name of host `i`.
pub fn host_name(i: usize) -> String {
    format!("node-{}", i + 1)
}

fn address(i: usize) -> NodeAddress {
    format!("casty://sim@{}:{PORT}", host_name(i))
        .parse()
        .expect("a valid address")
}

/// A node of the simulation on turmoil host `host`, with the simulation's timings, joining
/// through the nodes on `seeds` (host names), and drawing its uid and choices from `seed`. Its
/// transport is plain [`SimTransport`]; the runner wraps it for lossy links.
pub fn node(host: &str, seeds: &[String], seed: u64) -> ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder("sim")
        .host(host)
        .port(PORT)
        .seed_nodes(seeds.iter().map(|h| format!("casty://sim@{h}:{PORT}")))
        .transport(Arc::new(SimTransport))
        .random_seed(seed)
        .gossip_interval(GOSSIP)
        .heartbeat_interval(Duration::from_millis(100))
        .failure_detector(FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(20),
            acceptable_heartbeat_pause: Duration::from_millis(300),
            first_heartbeat_estimate: Duration::from_millis(100),
        })
        .membership(
            // A joiner whose contact dies before welcoming it asks the seeds again after
            // `retry_join_after`: on the simulation's scale, well within the settling bound
            // (the default, 10 s, is the whole bound).
            MembershipSettings::default()
                .retry_interval(Duration::from_millis(200))
                .seed_node_timeout(Duration::from_secs(1))
                .retry_join_after(Duration::from_secs(2)),
        )
        .downing(KeepMajority::default(), STABLE_AFTER)
}

/// The seed of incarnation `incarnation` of host `i` in run `seed`.
fn node_seed(seed: u64, i: usize, incarnation: u64) -> u64 {
    let mut rng = super::plan::Rng::new(seed ^ ((i as u64) << 48) ^ (incarnation << 32));
    rng.next_u64()
}

fn kind(e: &ClusterEvent) -> Option<Kind> {
    Some(match e {
        ClusterEvent::MemberJoined(_) => Kind::Joined,
        ClusterEvent::MemberWeaklyUp(_) => Kind::WeaklyUp,
        ClusterEvent::MemberUp(_) => Kind::Up,
        ClusterEvent::MemberLeft(_) => Kind::Left,
        ClusterEvent::MemberExited(_) => Kind::Exited,
        ClusterEvent::MemberDowned(_) => Kind::Downed,
        ClusterEvent::MemberRemoved { .. } => Kind::Removed,
        ClusterEvent::UnreachableMember(_) => Kind::Unreachable,
        ClusterEvent::ReachableMember(_) => Kind::Reachable,
        _ => return None,
    })
}

/// What the hosts share with the run.
#[derive(Default)]
struct Shared {
    /// Simulated ms from the start, set by the run before each step.
    now_ms: u64,
    /// Each host's current incarnation, once it has started.
    clusters: BTreeMap<usize, Cluster>,
    /// Every event every node published, in order.
    events: Vec<Observed>,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Every event every node published, in order: the same seed gives the same list.
    pub events: Vec<Observed>,
    /// The first broken rule, if any.
    pub failure: Option<String>,
    /// How long the cluster took to settle after [`Action::Finish`], if it did.
    pub settled_in: Option<Duration>,
    /// Every life of every entity of the sharded type, in the order they began: the same seed
    /// gives the same list.
    pub lives: Vec<Life>,
    /// How many messages the entities handled.
    pub handled: u64,
}

impl Outcome {
    /// The events as text, one per line.
    pub fn trace(&self) -> String {
        self.events
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The entities' lives as text, one per line.
    pub fn lives_trace(&self) -> String {
        self.lives
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The lives of one entity, one per line.
    pub fn lives_of(&self, entity: &str) -> String {
        self.lives
            .iter()
            .filter(|l| l.entity == entity)
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The state of the run around the simulation.
struct Run<'a> {
    sim: turmoil::Sim<'a>,
    plan: &'a Plan,
    shared: Arc<Mutex<Shared>>,
    transports: Vec<FaultyTransport>,
    incarnations: Vec<Arc<AtomicU64>>,
    crashed: Vec<bool>,
    /// The current partition: its side, whether lossy, and when it began.
    partition: Option<(Vec<usize>, bool, Duration)>,
    checks: ViewChecks,
    settled_in: Option<Duration>,
    recorder: Recorder,
}

/// Runs `plan` and checks it.
pub fn run(plan: &Plan) -> Outcome {
    run_then(plan, Duration::ZERO)
}

/// Runs `plan` and checks it, going on for `extra` of simulated time once the cluster has
/// settled (checking the views all along, and the entities' lives at the end).
pub fn run_then(plan: &Plan, extra: Duration) -> Outcome {
    let _slot = super::exclusive();
    let sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(3_600))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(plan.seed)
        .enable_random_order()
        .build();
    let n = plan.hosts;
    let mut run = Run {
        sim,
        plan,
        shared: Arc::default(),
        transports: (0..n)
            .map(|i| {
                FaultyTransport::new(Arc::new(SimTransport)).with_seed(node_seed(plan.seed, i, 0))
            })
            .collect(),
        incarnations: (0..n).map(|_| Arc::default()).collect(),
        crashed: vec![false; n],
        partition: None,
        checks: ViewChecks::default(),
        settled_in: None,
        recorder: Recorder::default(),
    };
    let failure = run.go().and_then(|()| run.advance(run.now() + extra)).err();
    let shared = run.shared.lock().unwrap();
    let events = shared.events.clone();
    drop(shared);
    let settled_in = run.settled_in;
    let lives = run.recorder.lives();
    Outcome {
        failure: failure
            .or_else(|| checks::lifecycle_order(&events).err())
            .or_else(|| checks::single_incarnation(&lives).err()),
        events,
        settled_in,
        lives,
        handled: run.recorder.handled_count(),
    }
}

impl Run<'_> {
    fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Steps the simulation until `until`, polling the views on the way.
    fn advance(&mut self, until: Duration) -> Result<(), String> {
        while self.now() < until {
            let next_poll = Duration::from_millis(
                (self.now().as_millis() as u64 / POLL.as_millis() as u64 + 1)
                    * POLL.as_millis() as u64,
            );
            while self.now() < next_poll.min(until) {
                self.shared.lock().unwrap().now_ms = self.now().as_millis() as u64;
                self.sim
                    .step()
                    .map_err(|e| format!("the simulation failed: {e}"))?;
            }
            if self.now() >= next_poll {
                let snapshots = self.snapshots();
                if std::env::var("SIMDBG").is_ok() {
                    for s in &snapshots {
                        eprintln!(
                            "DBG {} {} {:?} seen={} reach={:?}",
                            s.at_ms,
                            s.observer.address.host(),
                            s.gossip.version(),
                            s.gossip.seen().len(),
                            s.gossip.reachability()
                        );
                    }
                }
                self.checks.poll(&snapshots)?;
            }
        }
        Ok(())
    }

    /// The views of the running nodes, by host.
    fn snapshots_by_host(&self) -> BTreeMap<usize, Snapshot> {
        let at_ms = self.now().as_millis() as u64;
        let shared = self.shared.lock().unwrap();
        shared
            .clusters
            .iter()
            .filter(|(i, _)| !self.crashed[**i])
            .map(|(i, c)| {
                (
                    *i,
                    Snapshot {
                        at_ms,
                        observer: c.self_node().clone(),
                        gossip: c.state(),
                        stopped: c.stopped().is_some(),
                    },
                )
            })
            .collect()
    }

    fn snapshots(&self) -> Vec<Snapshot> {
        self.snapshots_by_host().into_values().collect()
    }

    fn go(&mut self) -> Result<(), String> {
        // Every host is in the network from the start (so that partitions can name it); its node
        // starts at the time of its `Start`, or at the `Finish`.
        let finish = self.plan.steps.last().map_or(Duration::ZERO, |s| s.at);
        for i in 0..self.plan.hosts {
            let at = self
                .plan
                .steps
                .iter()
                .find(|s| s.action == Action::Start(i))
                .map_or(finish, |s| s.at);
            self.add_host(i, at);
        }
        for step in &self.plan.steps {
            self.advance(step.at)?;
            self.apply(&step.action)?;
        }
        self.settle()
    }

    /// Adds host `i`, whose node starts at `start_at` (at once when it restarts).
    fn add_host(&mut self, i: usize, start_at: Duration) {
        let shared = self.shared.clone();
        let transport = self.transports[i].clone();
        let incarnations = self.incarnations[i].clone();
        let recorder = self.recorder.clone();
        let (hosts, seed) = (self.plan.hosts, self.plan.seed);
        self.sim.host(host_name(i), move || {
            let shared = shared.clone();
            let transport = transport.clone();
            let recorder = recorder.clone();
            let incarnation = incarnations.fetch_add(1, Ordering::SeqCst);
            async move {
                let now = turmoil::sim_elapsed().unwrap_or_default();
                tokio::time::sleep(start_at.saturating_sub(now)).await;
                let seeds: Vec<String> = (0..hosts).map(host_name).collect();
                let my_seed = node_seed(seed, i, incarnation + 1);
                let node = node(&host_name(i), &seeds, my_seed)
                    .transport(Arc::new(transport))
                    .start()
                    .await?;
                if std::env::var("SIMDBG").is_ok() {
                    eprintln!(
                        "STARTED {} at {:?} (asked {start_at:?})",
                        host_name(i),
                        turmoil::sim_elapsed()
                    );
                }
                let cluster = node.cluster().clone();
                let observer = cluster.self_node().clone();
                let events = shared.clone();
                cluster.subscribe(move |e| {
                    if let (Some(kind), Some(m)) = (kind(e), e.member()) {
                        let mut s = events.lock().unwrap();
                        let at_ms = s.now_ms;
                        s.events.push(Observed {
                            at_ms,
                            observer: observer.clone(),
                            kind,
                            member: m.node.clone(),
                        });
                    }
                });
                shared.lock().unwrap().clusters.insert(i, cluster.clone());
                let region = node.spawn(
                    casty::Behaviors::sharded_with(
                        entities::entity(recorder, cluster.self_node().clone(), i),
                        entities::settings(),
                    ),
                    entities::TYPE_NAME,
                )?;
                // The node lives, and sends its traffic, until the host crashes or restarts.
                entities::traffic(region, my_seed ^ 0x5EED).await;
                Ok(())
            }
        });
    }

    /// Stops host `i`'s software and forgets its node. Its entities stop at this instant.
    fn crash(&mut self, i: usize) {
        if !self.crashed[i] {
            self.recorder.killed(i, self.now());
            self.sim.crash(host_name(i));
        }
        self.crashed[i] = true;
        self.shared.lock().unwrap().clusters.remove(&i);
    }

    /// Starts host `i` again, as a new incarnation. The entities still running on it stop at
    /// this instant.
    fn restart(&mut self, i: usize) {
        self.recorder.killed(i, self.now());
        self.shared.lock().unwrap().clusters.remove(&i);
        self.crashed[i] = false;
        self.sim.bounce(host_name(i));
    }

    fn cut(&mut self, side: &[usize], lossy: bool, cut: bool) {
        let n = self.plan.hosts;
        for &a in side {
            for b in (0..n).filter(|b| !side.contains(b)) {
                let (ha, hb) = (host_name(a), host_name(b));
                match (lossy, cut) {
                    (false, true) => self.sim.hold(ha.as_str(), hb.as_str()),
                    (false, false) => self.sim.release(ha.as_str(), hb.as_str()),
                    (true, true) => {
                        for (x, y) in [(a, b), (b, a)] {
                            self.transports[x].blackhole(&address(y), Direction::Both);
                            self.transports[x].sever(&address(y));
                        }
                    }
                    (true, false) => {
                        self.transports[a].heal(&address(b));
                        self.transports[b].heal(&address(a));
                    }
                }
            }
        }
    }

    fn apply(&mut self, action: &Action) -> Result<(), String> {
        match action {
            // The host's node starts by itself at this time (see `add_host`).
            Action::Start(_) => {}
            Action::Crash(i) => self.crash(*i),
            Action::Restart(i) => self.restart(*i),
            Action::Leave(i) => {
                if let Some(c) = self.shared.lock().unwrap().clusters.get(i) {
                    c.leave(address(*i));
                }
            }
            Action::Isolate { side, lossy } => {
                self.cut(side, *lossy, true);
                self.partition = Some((side.clone(), *lossy, self.now()));
            }
            Action::Heal => {
                if let Some((side, lossy, since)) = self.partition.take() {
                    if self.now() - since >= LONG_PARTITION {
                        let by_host = self.snapshots_by_host();
                        let (a, b): (Vec<_>, Vec<_>) =
                            by_host.into_iter().partition(|(i, _)| side.contains(i));
                        let a: Vec<Snapshot> = a.into_iter().map(|(_, s)| s).collect();
                        let b: Vec<Snapshot> = b.into_iter().map(|(_, s)| s).collect();
                        checks::one_side_survives([&a, &b])
                            .map_err(|e| format!("at {} ms: {e}", self.now().as_millis()))?;
                    }
                    self.cut(&side, lossy, false);
                }
            }
            Action::Lossy { a, b, percent } => {
                let f = f64::from(*percent) / 100.0;
                self.transports[*a].drop_fraction(&address(*b), f);
                self.transports[*b].drop_fraction(&address(*a), f);
            }
            Action::Finish => {
                for t in &self.transports {
                    t.heal_all();
                }
                // Hosts that never started start now by themselves.
                for i in 0..self.plan.hosts {
                    if self.crashed[i] {
                        self.restart(i);
                    }
                }
            }
        }
        Ok(())
    }

    /// After the last fault: restarts every node that stops, until every node holds one
    /// converged view with all of them Up, within [`SETTLE_ROUNDS`] gossip rounds.
    fn settle(&mut self) -> Result<(), String> {
        let from = self.now();
        let deadline = from + GOSSIP * SETTLE_ROUNDS;
        while self.now() < deadline {
            self.advance(self.now() + POLL)?;
            let by_host = self.snapshots_by_host();
            for (i, s) in &by_host {
                if s.stopped {
                    self.restart(*i);
                }
            }
            if settled(self.plan.hosts, &by_host) {
                self.settled_in = Some(self.now() - from);
                return Ok(());
            }
        }
        let views: Vec<String> = self
            .snapshots_by_host()
            .into_iter()
            .map(|(i, s)| {
                let members: Vec<String> = s
                    .gossip
                    .members()
                    .map(|m| format!("{}:{:?}", m.node, m.status))
                    .collect();
                format!("{} as {}: {members:?}", host_name(i), s.observer)
            })
            .collect();
        Err(format!(
            "the cluster did not settle within {SETTLE_ROUNDS} gossip rounds of the last fault; \
             views:\n{}",
            views.join("\n")
        ))
    }
}

/// Every host runs, and all hold one view, converged, with exactly them, all Up.
fn settled(hosts: usize, by_host: &BTreeMap<usize, Snapshot>) -> bool {
    let Some(first) = by_host.values().next() else {
        return false;
    };
    let none = Default::default();
    by_host.len() == hosts
        && by_host.values().all(|s| {
            !s.stopped
                && s.gossip.same_state(&first.gossip)
                && s.gossip.converged(&s.observer, &none)
                && s.gossip.member(&s.observer).is_some()
                && s.gossip.members().count() == hosts
                && s.gossip.members().all(|m| m.status == MemberStatus::Up)
        })
}
