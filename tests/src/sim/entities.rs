//! A sharded entity type that every node of a simulation runs, under traffic, and the record of
//! every incarnation of its entities.
//!
//! Each node spawns [`TYPE_NAME`] with [`settings`], and tells messages to [`ENTITIES`] entity ids
//! while the history runs ([`traffic`]). Each entity records when it starts and stops, in
//! simulated time, into a [`Recorder`] shared by the whole simulation (it runs in one process,
//! on one thread); the runner closes the lives of a host's entities when it crashes the host,
//! since a killed process runs no `post_stop`. [`super::checks::single_incarnation`] then checks
//! that no two incarnations of one entity ever ran at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::UniqueAddress;
use casty::sharding::{ShardEnvelope, ShardingSettings};
use casty::{ActorRef, Behavior, Behaviors};

use super::checks::{Life, Stamp};
use super::plan::Rng;
use super::runner::{GOSSIP, STABLE_AFTER};

/// The name of the sharded type on every node.
pub const TYPE_NAME: &str = "entities";

/// How many entity ids the traffic goes to.
pub const ENTITIES: usize = 30;

/// How many shards they are spread over: fewer than entities, so that a shard holds several.
pub const SHARDS: u32 = 12;

/// Between two rounds of a node's traffic.
pub const TRAFFIC_EVERY: Duration = Duration::from_millis(100);

/// How many entities a node tells in one round.
pub const TRAFFIC_PER_ROUND: usize = 2;

/// A bound on how long a node takes to mark a silent peer unreachable: heartbeats every 100 ms,
/// an acceptable pause of 300 ms and a phi threshold of 8 over a deviation of at least 20 ms
/// (see [`super::runner::node`]) mark it about 0.5 s after its last heartbeat; 1 s bounds that
/// with room to spare.
pub const DETECTION: Duration = Duration::from_secs(1);

/// How long after a node is removed its shards may start elsewhere.
///
/// A node removed because it was downed may still run on the far side of a partition until its
/// own side's resolver downs it and its region stops its entities. Counted from the cut, that
/// side needs [`DETECTION`] to see the other side unreachable, [`STABLE_AFTER`] of a still view
/// before it decides, and a gossip round or two for its own Down to reach its region. The side
/// that removes the node needs as long to down it (and more to remove it), so a margin of that
/// whole time, counted from the removal, is enough even if the far side's clock for
/// `stable_after` started somewhat later.
pub const DOWN_REMOVAL_MARGIN: Duration = STABLE_AFTER
    .saturating_add(DETECTION)
    .saturating_add(GOSSIP)
    .saturating_add(GOSSIP);

/// The settings of the simulation's sharded type, on the simulation's scale: retries every
/// gossip round, rebalancing every second, and [`DOWN_REMOVAL_MARGIN`].
///
/// # Examples
///
/// ```
/// use casty_tests::sim::entities::{settings, DOWN_REMOVAL_MARGIN};
/// use casty_tests::sim::runner::STABLE_AFTER;
/// assert!(settings().down_removal_margin > STABLE_AFTER);
/// assert_eq!(settings().down_removal_margin, DOWN_REMOVAL_MARGIN);
/// ```
pub fn settings() -> ShardingSettings {
    ShardingSettings::default()
        .num_shards(SHARDS)
        .retry_interval(GOSSIP)
        .rebalance_interval(Duration::from_secs(1))
        .handoff_timeout(Duration::from_secs(2))
        .down_removal_margin(DOWN_REMOVAL_MARGIN)
        .passivate_idle(None)
}

/// The id of entity `i`.
pub fn entity_id(i: usize) -> String {
    format!("e-{i}")
}

#[derive(Debug, Default)]
struct Records {
    seq: u64,
    /// The latest time recorded, for a record made outside a host (which has no clock).
    last_us: u64,
    lives: Vec<Life>,
    handled: u64,
}

impl Records {
    fn stamp(&mut self, at: Option<Duration>) -> Stamp {
        let at_us = at.map_or(self.last_us, |d| d.as_micros() as u64);
        self.last_us = self.last_us.max(at_us);
        self.seq += 1;
        Stamp {
            at_us,
            seq: self.seq,
        }
    }
}

/// The lives of every entity of every node of one simulation, in the order they began.
///
/// # Examples
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// use casty_tests::sim::entities::Recorder;
/// use std::time::Duration;
/// let rec = Recorder::default();
/// let node = UniqueAddress::new(NodeAddress::new("sim", "node-1", 2551), 7);
/// let life = rec.started("e-1", &node, 0, Some(Duration::from_millis(5)));
/// rec.stopped(life, Some(Duration::from_millis(9)));
/// rec.started("e-2", &node, 0, Some(Duration::from_millis(9)));
/// rec.killed(0, Duration::from_millis(12));
/// let lives = rec.lives();
/// assert_eq!(lives[0].stop.unwrap().at_us, 9_000);
/// assert!(!lives[0].killed);
/// assert_eq!((lives[1].stop.unwrap().at_us, lives[1].killed), (12_000, true));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Records>>);

impl Recorder {
    /// Records that `entity` started on `node` (host `host`) at `at`; returns the number of its
    /// life, for [`stopped`](Recorder::stopped).
    pub fn started(
        &self,
        entity: &str,
        node: &UniqueAddress,
        host: usize,
        at: Option<Duration>,
    ) -> usize {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let start = r.stamp(at);
        r.lives.push(Life {
            entity: entity.to_owned(),
            node: node.clone(),
            host,
            start,
            stop: None,
            killed: false,
        });
        r.lives.len() - 1
    }

    /// Records that life `life` stopped at `at` (nothing if it had already ended).
    pub fn stopped(&self, life: usize, at: Option<Duration>) {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if r.lives.get(life).is_some_and(|l| l.stop.is_none()) {
            let stop = r.stamp(at);
            r.lives[life].stop = Some(stop);
        }
    }

    /// Ends, at `at`, every life still running on host `host`: its process was killed.
    pub fn killed(&self, host: usize, at: Duration) {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let open: Vec<usize> = (0..r.lives.len())
            .filter(|&i| r.lives[i].host == host && r.lives[i].stop.is_none())
            .collect();
        for i in open {
            let stop = r.stamp(Some(at));
            let l = &mut r.lives[i];
            l.stop = Some(stop);
            l.killed = true;
        }
    }

    /// Counts one message handled by an entity.
    pub fn handled(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).handled += 1;
    }

    /// Every life so far, in the order they began.
    pub fn lives(&self) -> Vec<Life> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lives
            .clone()
    }

    /// How many messages the entities have handled.
    pub fn handled_count(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).handled
    }
}

/// The entities of node `node` (on host `host`): each records its life in `recorder`, in
/// simulated time, and counts the messages it handles.
pub fn entity(
    recorder: Recorder,
    node: UniqueAddress,
    host: usize,
) -> impl Fn(&str) -> Behavior<u64> + Send + Sync + 'static {
    move |id: &str| {
        let life = Arc::new(AtomicU64::new(u64::MAX));
        let (r1, r2, r3) = (recorder.clone(), recorder.clone(), recorder.clone());
        let (l1, l2) = (life.clone(), life);
        let (id, node) = (id.to_owned(), node.clone());
        Behaviors::with_lifecycle(Behaviors::receive_message(move |_n: u64| {
            r3.handled();
            Behaviors::same()
        }))
        .pre_start(move |_| {
            let i = r1.started(&id, &node, host, turmoil::sim_elapsed());
            l1.store(i as u64, Ordering::SeqCst);
        })
        .post_stop(move |_| {
            let i = l2.load(Ordering::SeqCst);
            if i != u64::MAX {
                r2.stopped(i as usize, turmoil::sim_elapsed());
            }
        })
        .into()
    }
}

/// Tells [`TRAFFIC_PER_ROUND`] entities, drawn from `seed`, a message every [`TRAFFIC_EVERY`],
/// for ever.
pub async fn traffic(region: ActorRef<ShardEnvelope<u64>>, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut n = 0u64;
    loop {
        tokio::time::sleep(TRAFFIC_EVERY).await;
        for _ in 0..TRAFFIC_PER_ROUND {
            n += 1;
            let i = rng.between(0, ENTITIES as u64 - 1) as usize;
            region.tell(ShardEnvelope::new(entity_id(i), n));
        }
    }
}
