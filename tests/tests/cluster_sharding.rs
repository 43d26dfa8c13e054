//! Cluster sharding end to end: several clustered systems in one process on 127.0.0.1, with
//! short timings. Every entity records when it starts and stops, and every message it handles,
//! in one log shared by the nodes, ordered by one counter; the checks read that log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use casty::cluster::ClusteredActorSystem;
use casty::sharding::{shard_id, ShardEnvelope, ShardingSettings};
use casty::testing::{fast_cluster_node, fast_sharding};
use casty::{ActorRef, Behaviors};
use casty_tests::sharding_kit::{recorder, Log, Rec};

const WAIT: Duration = Duration::from_secs(15);
const SHARDS: u32 = 100;

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
    wait_even(&nodes.iter().collect::<Vec<_>>(), &entities).await;
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
    wait_even(&nodes.iter().collect::<Vec<_>>(), &entities).await;
    let _ = fourth_port;
    log.check_single_incarnation();
    shutdown(nodes).await;
}

/// Waits until the shards of `entities` are spread over `nodes` at most one apart.
async fn wait_even(nodes: &[&Node], entities: &[String]) {
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

async fn futures_states(nodes: &[&Node]) -> Vec<casty::sharding::RegionState> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(n.region.region_state().await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Faults: crashes and partitions, through the fault-injection transport.

use casty::testing::{Direction, FaultyTransport};

/// A node whose transport the test controls.
struct Faulty {
    node: Node,
    faults: FaultyTransport,
}

async fn faulty_cluster(n: usize, log: &Log, settings: ShardingSettings) -> Vec<Faulty> {
    let mut out: Vec<Faulty> = Vec::new();
    for i in 0..n {
        let faults = FaultyTransport::tcp();
        let mut b = fast_cluster_node("shard").transport(Arc::new(faults.clone()));
        if let Some(first) = out.first() {
            b = b.seed_nodes([first.node.system.address().to_string()]);
        }
        let system = b.start().await.unwrap();
        if i == 0 {
            system.cluster().join(system.address().clone());
        }
        let port = system.address().port();
        let region = system
            .spawn(
                Behaviors::sharded_with(recorder(port, log.clone()), settings.clone()),
                "records",
            )
            .unwrap();
        out.push(Faulty {
            node: Node { system, region },
            faults,
        });
    }
    for f in &out {
        f.node.system.cluster().wait_for_up(n, WAIT).await.unwrap();
    }
    out
}

/// Cuts `side` off from `rest`, both ways, and closes their connections.
fn partition(side: &[&Faulty], rest: &[&Faulty]) {
    for a in side {
        for b in rest {
            a.faults.blackhole(b.node.system.address(), Direction::Both);
            a.faults.sever(b.node.system.address());
            b.faults.blackhole(a.node.system.address(), Direction::Both);
            b.faults.sever(a.node.system.address());
        }
    }
}

/// Tells one note from `from` to each entity, numbered `seq`.
fn note_all(region: &ActorRef<ShardEnvelope<Rec>>, from: u32, entities: &[String], seq: u64) {
    for e in entities {
        region.tell(ShardEnvelope::new(e.as_str(), Rec::Note { from, seq }));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinators_crash_moves_only_its_own_shards_and_no_entity_runs_twice() {
    let log = Log::default();
    let nodes = faulty_cluster(3, &log, fast_sharding(SHARDS)).await;
    let entities: Vec<String> = (0..60).map(|i| format!("c-{i}")).collect();
    // The first node is the oldest: it coordinates.
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    note_all(&b.node.region, 1, &entities, 1);
    eventually("the first notes handled", || {
        log.handled().len() == entities.len()
    })
    .await;
    wait_even(&[&a.node, &b.node, &c.node], &entities).await;
    let before = log.homes();
    let a_port = a.node.port();

    // The coordinator's node hangs; traffic goes on from the second node.
    partition(&[a], &[b, c]);
    let mut seq = 2;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !nodes_removed(&[b, c], a_port) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the coordinator's node never removed"
        );
        note_all(&b.node.region, 1, &entities, seq);
        seq += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    note_all(&b.node.region, 1, &entities, seq);
    eventually("every entity reached again", || {
        let handled = log.handled();
        entities.iter().all(|e| {
            handled
                .get(&(1, e.clone()))
                .is_some_and(|v| v.contains(&seq))
        })
    })
    .await;
    log.check_single_incarnation();
    // Entities that lived on the survivors never moved: one start each, on the same node.
    let starts = starts_per_entity(&log);
    for (entity, node) in &before {
        if *node != a_port {
            assert_eq!(
                starts[entity],
                vec![*node],
                "{entity} moved, but its node lived"
            );
        } else {
            let after = log.homes()[entity];
            assert_ne!(after, a_port, "{entity} is back on a survivor");
        }
    }
    for n in nodes {
        n.node.system.shutdown().await;
    }
}

fn nodes_removed(nodes: &[&Faulty], port: u16) -> bool {
    nodes.iter().all(|n| {
        n.node
            .system
            .cluster()
            .members()
            .iter()
            .all(|m| m.node.address.port() != port)
    })
}

/// The nodes each entity started on, in order.
fn starts_per_entity(log: &Log) -> BTreeMap<String, Vec<u16>> {
    let mut out: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for e in log.events() {
        if let casty_tests::sharding_kit::Event::Started { node, entity } = e {
            out.entry(entity).or_default().push(node);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_three_partition_under_traffic_never_runs_an_entity_twice() {
    let log = Log::default();
    let nodes = faulty_cluster(5, &log, fast_sharding(SHARDS)).await;
    let entities: Vec<String> = (0..50).map(|i| format!("p-{i}")).collect();
    note_all(&nodes[0].node.region, 0, &entities, 1);
    eventually("the first notes handled", || {
        log.handled().len() == entities.len()
    })
    .await;
    let all: Vec<&Node> = nodes.iter().map(|f| &f.node).collect();
    wait_even(&all, &entities).await;

    // Two nodes are cut off from three, with traffic on both sides.
    let (small, big) = nodes.split_at(2);
    let small: Vec<&Faulty> = small.iter().collect();
    let big: Vec<&Faulty> = big.iter().collect();
    partition(&small, &big);
    let small_ports: Vec<u16> = small.iter().map(|f| f.node.port()).collect();
    let mut seq = 2;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !small_ports.iter().all(|p| nodes_removed(&big, *p)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the minority never removed"
        );
        note_all(&big[0].node.region, 2, &entities, seq);
        note_all(&small[0].node.region, 0, &entities, seq);
        seq += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The minority downed itself: its nodes left the cluster.
    for f in &small {
        eventually("the minority stopped", || {
            f.node.system.cluster().stopped().is_some()
        })
        .await;
    }
    note_all(&big[0].node.region, 2, &entities, seq);
    eventually("every entity reached on the majority", || {
        let handled = log.handled();
        entities.iter().all(|e| {
            handled
                .get(&(2, e.clone()))
                .is_some_and(|v| v.contains(&seq))
        })
    })
    .await;
    log.check_single_incarnation();
    let homes = log.homes();
    assert!(
        homes.values().all(|p| !small_ports.contains(p)),
        "{homes:?}"
    );
    for n in nodes {
        n.node.system.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Event-sourced entities: state survives a crash and passivation, from a shared journal.

use casty::EventJournal;
use casty_tests::sharding_kit::{Account, Balance};

async fn balance(region: &ActorRef<ShardEnvelope<Account>>, id: &str) -> i64 {
    region
        .entity_ref(id)
        .ask(|r| Account::GetBalance { reply_to: r }, WAIT)
        .await
        .unwrap()
}

async fn balance_retrying(region: &ActorRef<ShardEnvelope<Account>>, id: &str) -> i64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let asked = region
            .entity_ref(id)
            .ask(
                |r| Account::GetBalance { reply_to: r },
                Duration::from_millis(500),
            )
            .await;
        match asked {
            Ok(b) => return b,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{id}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_accounts_come_back_on_the_survivors_with_their_balances() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn EventJournal> =
        Arc::new(casty::SqliteJournal::open(dir.path().join("bank.db")).unwrap());
    let mut nodes: Vec<(
        ClusteredActorSystem,
        ActorRef<ShardEnvelope<Account>>,
        FaultyTransport,
    )> = Vec::new();
    for i in 0..3 {
        let faults = FaultyTransport::tcp();
        let mut b = fast_cluster_node("bank").transport(Arc::new(faults.clone()));
        if let Some((first, _, _)) = nodes.first() {
            b = b.seed_nodes([first.address().to_string()]);
        }
        let system = b.start().await.unwrap();
        if i == 0 {
            system.cluster().join(system.address().clone());
        }
        let accounts = system
            .spawn(
                Behaviors::sharded_with(Balance::entity(journal.clone()), fast_sharding(SHARDS)),
                "accounts",
            )
            .unwrap();
        nodes.push((system, accounts, faults));
    }
    for (s, _, _) in &nodes {
        s.cluster().wait_for_up(3, WAIT).await.unwrap();
    }
    let ids: Vec<String> = (0..30).map(|i| format!("acct-{i}")).collect();
    for (k, id) in ids.iter().enumerate() {
        nodes[0].1.tell(ShardEnvelope::new(
            id.as_str(),
            Account::Deposit { amount: k as i64 },
        ));
        nodes[1].1.tell(ShardEnvelope::new(
            id.as_str(),
            Account::Deposit { amount: 100 },
        ));
    }
    // Deposits from two nodes arrive in any order between them: wait for both.
    for (k, id) in ids.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + WAIT;
        while balance(&nodes[0].1, id).await != k as i64 + 100 {
            assert!(tokio::time::Instant::now() < deadline, "{id}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // The third node hangs; some accounts lived there.
    // The third node hosts accounts once least-shard has rebalanced (its region may have
    // registered after the first shards were placed).
    let deadline = tokio::time::Instant::now() + WAIT;
    while nodes[2].1.region_state().await.unwrap().shards.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the third node never got shards"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = nodes[2].0.address().clone();
    for (s, _, f) in &nodes[..2] {
        f.blackhole(&third, Direction::Both);
        f.sever(&third);
        nodes[2].2.blackhole(s.address(), Direction::Both);
        nodes[2].2.sever(s.address());
    }
    // Every account answers from the first node with its balance, recovered from the journal
    // where it moved. (A message sent to the hung node before it is downed is lost with it, as
    // the caller's timeout tells; the caller asks again.)
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(
            balance_retrying(&nodes[0].1, id).await,
            k as i64 + 100,
            "{id}"
        );
    }
    // Every account runs on a survivor. (A rebalance between the two may be moving a shard:
    // its entities start again on their next message, so ask until all run.)
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let a = nodes[0].1.region_state().await.unwrap();
        let b = nodes[1].1.region_state().await.unwrap();
        let running: usize = a
            .shards
            .values()
            .chain(b.shards.values())
            .map(|e| e.len())
            .sum();
        if running == ids.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{running} of {} accounts run on the survivors",
            ids.len()
        );
        for id in &ids {
            balance_retrying(&nodes[0].1, id).await;
        }
    }
    for (s, _, _) in nodes {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_resting_entities_stop_and_come_back_with_their_state() {
    let journal: Arc<dyn EventJournal> = Arc::new(casty::InMemoryJournal::new());
    let system = casty::ActorSystem::new("bank");
    let settings = fast_sharding(10).passivate_idle(Some(Duration::from_millis(200)));
    let accounts = system
        .spawn(
            Behaviors::sharded_with(Balance::entity(journal.clone()), settings),
            "accounts",
        )
        .unwrap();
    accounts.tell(ShardEnvelope::new("idle", Account::Deposit { amount: 5 }));
    assert_eq!(balance(&accounts, "idle").await, 5);
    // Idle for longer than 200 ms: passivated.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = accounts.region_state().await.unwrap();
        if s.shards.values().all(|e| e.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never passivated: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A later message starts it again, with its state.
    accounts.tell(ShardEnvelope::new("idle", Account::Deposit { amount: 1 }));
    assert_eq!(balance(&accounts, "idle").await, 6);

    // An entity that asks to rest after each deposit: the messages behind it wait and start
    // the next incarnation; none is lost.
    for _ in 0..20 {
        accounts.tell(ShardEnvelope::new(
            "resting",
            Account::DepositThenRest { amount: 2 },
        ));
    }
    assert_eq!(balance(&accounts, "resting").await, 40);
    system.shutdown().await;
}

/// Every dead letter `system` publishes from now on, for as long as the subscription is kept.
fn dead_letters(
    system: &casty::ActorSystem,
) -> (
    casty::Subscription,
    Arc<std::sync::Mutex<Vec<casty::DeadLetter>>>,
) {
    let dead = Arc::new(std::sync::Mutex::new(Vec::new()));
    let d = dead.clone();
    let subscription = system
        .event_stream()
        .subscribe(move |e: &casty::DeadLetter| d.lock().unwrap().push(e.clone()));
    (subscription, dead)
}

#[tokio::test]
async fn a_full_shard_buffer_drops_to_dead_letters_with_the_reason() {
    let system = casty::ActorSystem::new("buffers");
    let (_subscription, dead) = dead_letters(&system);
    let log = Log::default();
    let region = system
        .spawn(
            Behaviors::sharded_with(recorder(1, log.clone()), fast_sharding(10).buffer_size(5)),
            "records",
        )
        .unwrap();
    // Told before the region has even started: the shard's home is not known yet, so they
    // wait in its buffer of five, and the rest is dropped.
    for seq in 1..=20 {
        region.tell(ShardEnvelope::new("x", Rec::Note { from: 0, seq }));
    }
    eventually("the buffered notes handled", || log.handled().len() == 1).await;
    let got = notes(&region, "x").await;
    assert_eq!(got, (1..=5).map(|s| (0, s)).collect::<Vec<_>>());
    let dead = dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 15, "{dead:?}");
    assert!(dead.iter().all(|d| matches!(
        &d.reason,
        casty::DeadLetterReason::Dropped(why) if why.contains("buffer of shard")
    )));
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_hosting_role_hosts_nothing_and_still_reaches_every_entity() {
    let log = Log::default();
    let settings = fast_sharding(SHARDS).role("host");
    let host = fast_cluster_node("roles")
        .roles(["host"])
        .start()
        .await
        .unwrap();
    host.cluster().join(host.address().clone());
    let proxy = fast_cluster_node("roles")
        .seed_nodes([host.address().to_string()])
        .start()
        .await
        .unwrap();
    let host_region = host
        .spawn(
            Behaviors::sharded_with(recorder(1, log.clone()), settings.clone()),
            "records",
        )
        .unwrap();
    let proxy_region = proxy
        .spawn(
            Behaviors::sharded_with(recorder(2, log.clone()), settings),
            "records",
        )
        .unwrap();
    proxy.cluster().wait_for_up(2, WAIT).await.unwrap();
    let entities: Vec<String> = (0..40).map(|i| format!("r-{i}")).collect();
    note_all(&proxy_region, 2, &entities, 1);
    eventually("every note handled", || {
        log.handled().len() == entities.len()
    })
    .await;
    assert!(log.homes().values().all(|n| *n == 1));
    assert!(proxy_region.region_state().await.unwrap().shards.is_empty());
    assert!(!host_region.region_state().await.unwrap().shards.is_empty());
    proxy.shutdown().await;
    host.shutdown().await;
}

#[tokio::test]
async fn a_sharded_type_takes_its_settings_from_casty_toml_by_name() {
    let cfg = casty::config::parse_str(
        "[defaults.sharding]\nbuffer_size = 100\n[actors.records]\nsharding = { buffer_size = 3 }\n",
        None,
    )
    .unwrap();
    let system = casty::ActorSystem::builder().config(cfg).build();
    let dead = Arc::new(std::sync::Mutex::new(0));
    let d = dead.clone();
    let _subscription = system
        .event_stream()
        .subscribe(move |_: &casty::DeadLetter| *d.lock().unwrap() += 1);
    let log = Log::default();
    // `Behaviors::sharded` reads the file (only the number of shards comes from the code).
    let region = system
        .spawn(Behaviors::sharded(recorder(1, log.clone()), 10), "records")
        .unwrap();
    for seq in 1..=20 {
        region.tell(ShardEnvelope::new("x", Rec::Note { from: 0, seq }));
    }
    eventually("the buffered notes handled", || log.handled().len() == 1).await;
    let got = notes(&region, "x").await;
    assert_eq!(got, (1..=3).map(|s| (0, s)).collect::<Vec<_>>());
    assert_eq!(*dead.lock().unwrap(), 17);
    system.shutdown().await;
}

/// A region that stops while it holds messages (here: its node never joined, so no shard has a
/// home) drops them as dead letters that say why, in the order they were told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_stops_dead_letters_the_messages_it_held() {
    let system = fast_cluster_node("held").start().await.unwrap();
    let (_subscription, dead) = dead_letters(&system);
    let log = Log::default();
    let region = system
        .spawn(
            Behaviors::sharded_with(recorder(1, log.clone()), fast_sharding(10)),
            "records",
        )
        .unwrap();
    for seq in 1..=4 {
        region.tell(ShardEnvelope::new("x", Rec::Note { from: 0, seq }));
    }
    // Answered after the four notes (same mailbox): they wait for the shard's home.
    assert!(region.region_state().await.unwrap().shards.is_empty());
    assert!(system.stop(&region));
    let dropped = || {
        dead.lock()
            .unwrap()
            .iter()
            .filter(|d| {
                matches!(&d.reason, casty::DeadLetterReason::Dropped(why)
                    if why == "the shard region stopped before it could deliver it")
            })
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    };
    eventually("four dead letters from the stopped region", || {
        dropped().len() == 4
    })
    .await;
    let expected: Vec<String> = (1..=4)
        .map(|seq| format!("{:?} for entity \"x\"", Rec::Note { from: 0, seq }))
        .collect();
    assert_eq!(dropped(), expected);
    assert!(log.handled().is_empty());
    system.shutdown().await;
}

/// A region whose own node is downed stops its entities; what waited for a passivating entity's
/// next incarnation becomes dead letters that say why, not nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downed_region_dead_letters_what_waited_for_a_passivating_entity() {
    use casty::sharding::Passivate;
    let system = fast_cluster_node("downed").start().await.unwrap();
    system.cluster().join(system.address().clone());
    system.cluster().wait_for_up(1, WAIT).await.unwrap();
    let (_subscription, dead) = dead_letters(&system);
    let (waiting_tx, mut waiting) = tokio::sync::mpsc::unbounded_channel::<()>();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let region = system
        .spawn(
            Behaviors::sharded_with(
                move |_id: &str| {
                    let (waiting_tx, held) = (waiting_tx.clone(), held.clone());
                    // The first message asks to passivate, then holds the entity busy until
                    // the test opens the gate.
                    Behaviors::receive_async(move |ctx, _n: u64| {
                        ctx.passivate();
                        let _ = waiting_tx.send(());
                        let held = held.clone();
                        Box::pin(async move {
                            let _ = held.acquire().await;
                            Behaviors::same()
                        })
                    })
                },
                fast_sharding(10),
            ),
            "held",
        )
        .unwrap();
    region.tell(ShardEnvelope::new("e", 0u64));
    waiting.recv().await.unwrap();
    // The region has seen the passivation by the time it answers this (same mailbox, later).
    region.region_state().await.unwrap();
    for n in 1..=3u64 {
        region.tell(ShardEnvelope::new("e", n));
    }
    system.cluster().down(system.address().clone());
    eventually("three dead letters from the stopped region", || {
        dead.lock()
            .unwrap()
            .iter()
            .filter(|d| {
                matches!(&d.reason, casty::DeadLetterReason::Dropped(why)
                    if why.contains("region stopped"))
            })
            .count()
            == 3
    })
    .await;
    let dead = dead.lock().unwrap().clone();
    let mut told: Vec<String> = dead
        .iter()
        .filter(|d| matches!(&d.reason, casty::DeadLetterReason::Dropped(_)))
        .map(|d| d.message.clone())
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            "1 for entity \"e\"",
            "2 for entity \"e\"",
            "3 for entity \"e\""
        ]
    );
    gate.add_permits(1);
    system.shutdown().await;
}
