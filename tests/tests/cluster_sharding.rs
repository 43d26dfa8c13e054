//! Cluster sharding end to end: several clustered systems in one process on 127.0.0.1, with
//! short timings. Every entity records when it starts and stops, and every message it handles,
//! in one log shared by the nodes, ordered by one counter; the checks read that log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::ClusteredActorSystem;
use casty::sharding::{shard_id, ShardEnvelope, ShardingSettings};
use casty::testing::{fast_cluster_node, fast_sharding};
use casty::{ActorRef, Behavior, Behaviors};

const WAIT: Duration = Duration::from_secs(15);
const SHARDS: u32 = 100;

#[casty::message_enum]
enum Rec {
    /// The `seq`th message from sender `from`.
    Note { from: u32, seq: u64 },
    /// Every note handled by this incarnation, in order.
    Get { reply_to: ActorRef<Vec<(u32, u64)>> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Started {
        node: u16,
        entity: String,
    },
    Stopped {
        node: u16,
        entity: String,
    },
    Handled {
        node: u16,
        entity: String,
        from: u32,
        seq: u64,
    },
}

/// The log every entity of every node writes to, in one order.
#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    fn push(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }

    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// No entity ever has two incarnations running at once: its starts and stops alternate.
    fn check_single_incarnation(&self) {
        let mut running: BTreeMap<String, u16> = BTreeMap::new();
        for e in self.events() {
            match e {
                Event::Started { node, entity } => {
                    if let Some(other) = running.insert(entity.clone(), node) {
                        panic!("{entity} started on {node} while running on {other}");
                    }
                }
                Event::Stopped { node, entity } => {
                    assert_eq!(
                        running.remove(&entity),
                        Some(node),
                        "{entity} stopped twice"
                    );
                }
                Event::Handled { node, entity, .. } => {
                    assert_eq!(
                        running.get(&entity),
                        Some(&node),
                        "{entity} handled a message on {node} while not running there"
                    );
                }
            }
        }
    }

    /// For each (sender, entity), the sequence numbers handled, in the order handled.
    fn handled(&self) -> BTreeMap<(u32, String), Vec<u64>> {
        let mut out: BTreeMap<(u32, String), Vec<u64>> = BTreeMap::new();
        for e in self.events() {
            if let Event::Handled {
                entity, from, seq, ..
            } = e
            {
                out.entry((from, entity)).or_default().push(seq);
            }
        }
        out
    }

    /// The node each entity runs on now.
    fn homes(&self) -> BTreeMap<String, u16> {
        let mut out = BTreeMap::new();
        for e in self.events() {
            match e {
                Event::Started { node, entity } => {
                    out.insert(entity, node);
                }
                Event::Stopped { entity, .. } => {
                    out.remove(&entity);
                }
                Event::Handled { .. } => {}
            }
        }
        out
    }
}

/// An entity that records its life and what it handles in `log`.
fn recorder(node: u16, log: Log) -> impl Fn(&str) -> Behavior<Rec> + Send + Sync + 'static {
    move |id: &str| {
        let id = id.to_owned();
        let log = log.clone();
        let (l1, l2, i1, i2) = (log.clone(), log.clone(), id.clone(), id.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        Behaviors::with_lifecycle(Behaviors::receive(move |_ctx, msg: Rec| {
            match msg {
                Rec::Note { from, seq } => {
                    log.push(Event::Handled {
                        node,
                        entity: id.clone(),
                        from,
                        seq,
                    });
                    seen.lock().unwrap().push((from, seq));
                }
                Rec::Get { reply_to } => reply_to.tell(seen.lock().unwrap().clone()),
            }
            Behaviors::same()
        }))
        .pre_start(move |_| {
            l1.push(Event::Started {
                node,
                entity: i1.clone(),
            })
        })
        .post_stop(move |_| {
            l2.push(Event::Stopped {
                node,
                entity: i2.clone(),
            })
        })
        .into()
    }
}

struct Node {
    system: ClusteredActorSystem,
    region: ActorRef<ShardEnvelope<Rec>>,
}

impl Node {
    fn port(&self) -> u16 {
        self.system.address().port()
    }
}

async fn start_node(seed: Option<&Node>, log: &Log, settings: ShardingSettings) -> Node {
    let mut b = fast_cluster_node("shard");
    if let Some(s) = seed {
        b = b.seed_nodes([s.system.address().to_string()]);
    }
    let system = b.start().await.unwrap();
    if seed.is_none() {
        system.cluster().join(system.address().clone());
    }
    let port = system.address().port();
    let region = system
        .spawn(
            Behaviors::sharded_with(recorder(port, log.clone()), settings),
            "records",
        )
        .unwrap();
    Node { system, region }
}

async fn cluster(n: usize, log: &Log) -> Vec<Node> {
    let mut nodes = vec![start_node(None, log, fast_sharding(SHARDS)).await];
    for _ in 1..n {
        let node = start_node(Some(&nodes[0]), log, fast_sharding(SHARDS)).await;
        nodes.push(node);
    }
    for node in &nodes {
        node.system.cluster().wait_for_up(n, WAIT).await.unwrap();
    }
    nodes
}

async fn shutdown(nodes: Vec<Node>) {
    for n in nodes {
        n.system.shutdown().await;
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks an entity for the notes it has handled.
async fn notes(region: &ActorRef<ShardEnvelope<Rec>>, entity: &str) -> Vec<(u32, u64)> {
    region
        .entity_ref(entity)
        .ask(|r| Rec::Get { reply_to: r }, WAIT)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_is_reached_from_every_node_and_runs_on_one() {
    let log = Log::default();
    let nodes = cluster(2, &log).await;
    nodes[0]
        .region
        .tell(ShardEnvelope::new("alice", Rec::Note { from: 0, seq: 1 }));
    nodes[1]
        .region
        .tell(ShardEnvelope::new("alice", Rec::Note { from: 1, seq: 1 }));
    eventually("both notes handled", || log.handled().len() == 2).await;
    let a = notes(&nodes[0].region, "alice").await;
    let b = notes(&nodes[1].region, "alice").await;
    assert_eq!(a.len(), 2);
    assert_eq!(a, b, "both nodes reach the same incarnation");
    let homes = log.homes();
    assert_eq!(homes.len(), 1);
    log.check_single_incarnation();
    shutdown(nodes).await;
}

/// Sends `count` numbered notes from each node to each of `entities`, in rounds.
fn send_notes(nodes: &[Node], entities: &[String], first: u64, count: u64) {
    for seq in first..first + count {
        for (i, n) in nodes.iter().enumerate() {
            for e in entities {
                n.region.tell(ShardEnvelope::new(
                    e.as_str(),
                    Rec::Note {
                        from: i as u32,
                        seq,
                    },
                ));
            }
        }
    }
}

/// Every (sender, entity) got exactly `1..=last`, in order.
fn all_in_order(log: &Log, senders: u32, entities: &[String], last: u64) -> bool {
    let handled = log.handled();
    (0..senders).all(|s| {
        entities.iter().all(|e| {
            handled
                .get(&(s, e.clone()))
                .is_some_and(|v| v.len() as u64 == last)
        })
    })
}

fn assert_all_in_order(log: &Log, senders: u32, entities: &[String], last: u64) {
    let handled = log.handled();
    let want: Vec<u64> = (1..=last).collect();
    for s in 0..senders {
        for e in entities {
            assert_eq!(
                handled.get(&(s, e.clone())),
                Some(&want),
                "notes from {s} to {e}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_spread_to_a_joining_node_without_losing_or_reordering_a_message() {
    let log = Log::default();
    let mut nodes = cluster(3, &log).await;
    let entities: Vec<String> = (0..100).map(|i| format!("e-{i}")).collect();
    send_notes(&nodes, &entities, 1, 5);
    eventually("every note handled", || all_in_order(&log, 3, &entities, 5)).await;
    log.check_single_incarnation();

    // Each shard lives on exactly one node, and (once rebalanced, if a node registered late)
    // least-shard spreads the shards over the three.
    wait_even(&nodes, &entities).await;
    let mut owner: BTreeMap<u32, BTreeSet<u16>> = BTreeMap::new();
    for (entity, node) in log.homes() {
        owner
            .entry(shard_id(&entity, SHARDS))
            .or_default()
            .insert(node);
    }
    assert!(owner.values().all(|nodes| nodes.len() == 1), "{owner:?}");

    // A fourth node joins while the notes keep coming: shards move to it, in handoffs.
    let fourth = start_node(Some(&nodes[0]), &log, fast_sharding(SHARDS)).await;
    let fourth_port = fourth.port();
    nodes.push(fourth);
    for (round, first) in (6..=46).step_by(5).enumerate() {
        let _ = round;
        send_notes(&nodes[..3], &entities, first, 5);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("every note handled after the join", || {
        all_in_order(&log, 3, &entities, 50)
    })
    .await;
    assert_all_in_order(&log, 3, &entities, 50);
    log.check_single_incarnation();
    // The fourth node took shards, and the spread is even (least-shard: at most one apart).
    wait_even(&nodes, &entities).await;
    let _ = fourth_port;
    log.check_single_incarnation();
    shutdown(nodes).await;
}

/// Waits until the shards of `entities` are spread over `nodes` at most one apart.
async fn wait_even(nodes: &[Node], entities: &[String]) {
    let used: BTreeSet<u32> = entities.iter().map(|e| shard_id(e, SHARDS)).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts: Vec<usize> = futures_states(nodes)
            .await
            .iter()
            .map(|s| s.shards.len())
            .collect();
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        if counts.iter().sum::<usize>() == used.len() && spread <= 1 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "shards per node: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn futures_states(nodes: &[Node]) -> Vec<casty::sharding::RegionState> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(n.region.region_state().await.unwrap());
    }
    out
}
