//! Cluster sharding figures, each printed beside its baseline from the same run: casty's plain
//! actors running the same entity behavior, told or asked directly (the local ones through their
//! `ActorRef`, the remote ones through `remote_ref`), and raw tokio where the runtime bench has
//! one.
//!
//! The entity is a bank account as the guide writes it: a `#[message_enum]` with a small
//! `Deposit { amount }` and a `GetBalance { reply_to }`, a functional-state `Behaviors::receive`
//! (`account(balance + amount)`), spawned with `Behaviors::sharded` on a plain system and with
//! `Behaviors::sharded_with(.., fast_sharding(n))` on a cluster (the test kit's short timings:
//! they only shorten start-up and rebalancing, not the path of a message). Every throughput run
//! ends by asking every entity (or plain actor) its balance, and the balances must sum to what
//! was deposited: nothing is counted that did not arrive.
//!
//! - **S1** local sharded tell: one plain `ActorSystem` (a one-node sharding), one producer task
//!   tells `S1_N` deposits round robin to 1 and to 100 entities, with the id as a `&str`
//!   (`ShardEnvelope::new(id, ..)`, the guide's form) and through `EntityRef`s. Baselines: the
//!   same number of plain actors told directly, and W1's raw tokio channel. Targets: ≥ 9.6 M
//!   msg/s (100× Casty (Python) 0.6's 96k sharded tells/s) and ≥ 0.5× the plain actors.
//! - **S2** cross-node sharded tell: 3 nodes, one producer on node 0 tells `S2_N` deposits round
//!   robin to 300 entities spread over the 3 nodes (a third of them on node 0), and to those of
//!   them hosted on nodes 1 and 2 only. Baseline: as many plain actors on nodes 1 and 2, told
//!   through `remote_ref`. Target: the remote entities ≥ 0.5× the plain remote actors.
//! - **S3** sharded ask across nodes: from node 0, `system.ask` to an entity hosted on another
//!   node, p50 and p99, in blocks alternating with asks to a plain actor on that node through
//!   `remote_ref`. Target: sharded p50 ≤ 1.5× the plain p50.
//! - **S4** rebalance: 3 nodes, 1,000 shards, one entity in each; a 4th node joins, and the time
//!   is taken until `region_state` on all 4 shows 250 shards each. Meanwhile node 0 tells a
//!   steady stream of stamped deposits (`S4_RATE` per second, round robin over the 1,000
//!   entities); each entity records how long each one took from the tell to its handler. A
//!   message counts as *held up* if it took longer than the slowest one of the same stream in
//!   the second before the join (and, separately, longer than 10 ms): these are the messages
//!   that waited in a region's buffer for a shard in handoff.
//!
//! S1–S4 run with the nodes in this process on 127.0.0.1; S2p and S3p run S2 and S3 with the 3
//! nodes in 3 OS processes over loopback (this binary starts itself twice more as nodes 1 and 2,
//! with `CASTY_BENCH_SHARD_ROLE=node`).
//!
//! Run: `cargo bench -p casty --bench sharding` (filter with `S1` .. `S4`, `S2p`, `S3p`;
//! `CASTY_BENCH_RUNS`, default 5 rounds; `CASTY_BENCH_WORKERS`, default 2 per process;
//! `CASTY_BENCH_S1_SIDE=sharded` (or `entity`, `plain`) and `CASTY_BENCH_S2_SIDE=remote` (or
//! `all`, `plain`) run only that side of S1 or S2, to profile it (S1's side also prints the
//! producer's own time per tell: its loop alone, before the last message is handled; with
//! `CASTY_BENCH_WORKERS=1` the entities cannot run meanwhile, so that is the sender's cost with no
//! wake-ups; `CASTY_BENCH_S1_HOT=1` times batches of 1,000 tells with a yield between, so that
//! the entities drain their mailboxes meanwhile and the sender writes to memory in cache, as on
//! 2 workers; `CASTY_BENCH_S1_DELAY=n` makes the `entity` side do a chain of `n` multiplications
//! before each tell, to see how the rate depends on the sender's own time);
//! `CASTY_BENCH_S1_ENTITIES`, the entity counts of S1, default `1,100`; `CASTY_BENCH_S1_WORK=n`
//! makes every account (entity and plain actor alike) do a chain of `n` dependent
//! multiplications per deposit, about 1.4 ns each here, to see S1 with a handler that does some
//! work;
//! `CASTY_BENCH_S4_MAX_SIMULTANEOUS`, shards moved at once by the allocation strategy (that
//! number alone, without the percentage), default its own default; `CASTY_BENCH_S4_RATE`, default
//! 10,000 messages per second).

#[allow(dead_code)] // the W3/W6 programs are for the other benches
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use casty::cluster::ClusteredActorSystem;
use casty::sharding::{
    EntityRef, LeastShardAllocation, RegionState, ShardEnvelope, ShardingSettings,
};
use casty::testing::{fast_cluster_node, fast_sharding};
use casty::{message_enum, ActorRef, ActorSystem, Behavior, Behaviors};
use common::{env_usize, median, runtime, wanted};

const T: Duration = Duration::from_secs(60);
const ROLE: &str = "CASTY_BENCH_SHARD_ROLE";
const SEED: &str = "CASTY_BENCH_SHARD_SEED";

/// The entity, as the guide's bank writes it.
#[message_enum]
enum Account {
    Deposit { amount: i64 },
    GetBalance { reply_to: ActorRef<i64> },
}

/// Work the entity does per deposit (`CASTY_BENCH_S1_WORK`): a chain of that many dependent
/// multiplications, 0 unless set.
static WORK: AtomicU64 = AtomicU64::new(0);

fn account(balance: i64) -> Behavior<Account> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Account::Deposit { amount } => {
            let work = WORK.load(Ordering::Relaxed);
            if work > 0 {
                // From the balance and back into it (through `& 0` of a value the compiler
                // cannot see), so the work is done and the next deposit waits for it. Each step
                // waits for the one before: `x * (x | 1)` cannot be folded into fewer
                // multiplications, as a product by a constant can.
                let mut x = balance as u64 ^ amount as u64;
                for _ in 0..work {
                    x = x.wrapping_mul(x | 1);
                }
                let zero = std::hint::black_box(0u64);
                return account(balance + amount + (x & zero) as i64);
            }
            account(balance + amount)
        }
        Account::GetBalance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
}

// ---------------------------------------------------------------------------------------------
// What S1 and S2 tell, and how they check it all arrived.

/// Where a run sends its deposits.
#[derive(Clone)]
enum Target {
    /// An entity, named by a `&str` as the guide writes it (an `EntityId` made per message).
    Sharded(ActorRef<ShardEnvelope<Account>>, Arc<String>),
    /// An entity through its `EntityRef`.
    Entity(EntityRef<Account>),
    /// The same, after a fixed amount of work per message (`CASTY_BENCH_S1_DELAY`): to see
    /// how the rate depends on the producer's own time per message.
    Delayed(EntityRef<Account>, u64),
    /// A plain actor with the same behavior.
    Plain(ActorRef<Account>),
}

impl Target {
    fn deposit(&self, amount: i64) {
        match self {
            Target::Sharded(r, id) => {
                r.tell(ShardEnvelope::new(id.as_str(), Account::Deposit { amount }))
            }
            Target::Entity(e) => e.tell(Account::Deposit { amount }),
            Target::Delayed(e, work) => {
                // A chain of `work` multiplications, each waiting for the one before (`x * (x |
                // 1)`: a product by a constant would be folded into fewer).
                let mut x = std::hint::black_box(3u64);
                for _ in 0..*work {
                    x = x.wrapping_mul(x | 1);
                }
                std::hint::black_box(x);
                e.tell(Account::Deposit { amount })
            }
            Target::Plain(r) => r.tell(Account::Deposit { amount }),
        }
    }

    async fn balance(&self, system: &ActorSystem) -> i64 {
        match self {
            Target::Sharded(r, id) => system
                .ask(
                    r,
                    |reply_to| ShardEnvelope::new(id.as_str(), Account::GetBalance { reply_to }),
                    T,
                )
                .await
                .unwrap(),
            Target::Entity(e) | Target::Delayed(e, _) => e
                .ask(|reply_to| Account::GetBalance { reply_to }, T)
                .await
                .unwrap(),
            Target::Plain(r) => system
                .ask(r, |reply_to| Account::GetBalance { reply_to }, T)
                .await
                .unwrap(),
        }
    }
}

/// The sum of every target's balance, asked all at once.
async fn total(system: &ActorSystem, targets: &[Target]) -> i64 {
    let mut set = tokio::task::JoinSet::new();
    for t in targets {
        let (t, system) = (t.clone(), system.clone());
        set.spawn(async move { t.balance(&system).await });
    }
    let mut sum = 0;
    while let Some(b) = set.join_next().await {
        sum += b.unwrap();
    }
    sum
}

/// One producer task tells `n` deposits of 1 round robin to `targets`, then the balances are
/// asked until they hold all of them. M msg/s, from the first tell to the answer that showed
/// every deposit; panics if they did not all arrive within `T`.
fn tell_run(rt: &tokio::runtime::Runtime, system: &ActorSystem, targets: &[Target], n: u64) -> f64 {
    let (system, targets) = (system.clone(), targets.to_vec());
    rt.block_on(async move {
        tokio::spawn(async move {
            let before = total(&system, &targets).await;
            let started = Instant::now();
            let k = targets.len();
            for i in 0..n as usize {
                targets[i % k].deposit(1);
            }
            loop {
                let now = total(&system, &targets).await;
                if now == before + n as i64 {
                    break;
                }
                assert!(
                    started.elapsed() < T,
                    "only {} of {n} deposits arrived",
                    now - before
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n as f64 / started.elapsed().as_secs_f64() / 1e6
        })
        .await
        .unwrap()
    })
}

/// [`tell_run`] for one side of S1 alone: also the producer's own time per tell, in
/// nanoseconds (its loop alone). A function of its own, so that the rounds of S1 run the same
/// code as before it existed (the compiler lays the caller's envelope out differently in each).
fn tell_side(
    rt: &tokio::runtime::Runtime,
    system: &ActorSystem,
    targets: &[Target],
    n: u64,
) -> (f64, f64) {
    let (system, targets) = (system.clone(), targets.to_vec());
    rt.block_on(async move {
        tokio::spawn(async move {
            let before = total(&system, &targets).await;
            let started = Instant::now();
            let k = targets.len();
            let producer = if std::env::var_os("CASTY_BENCH_S1_HOT").is_some() {
                // Batches of 1,000 with a yield between: the entities drain their mailboxes
                // meanwhile (also on one worker), so the producer writes to memory in cache,
                // as it does in a run on 2 workers; only the batches are timed.
                let mut busy = Duration::ZERO;
                let mut i = 0usize;
                while i < n as usize {
                    let t = Instant::now();
                    for _ in 0..1000 {
                        targets[i % k].deposit(1);
                        i += 1;
                    }
                    busy += t.elapsed();
                    tokio::task::yield_now().await;
                }
                busy.as_nanos() as f64 / n as f64
            } else {
                for i in 0..n as usize {
                    targets[i % k].deposit(1);
                }
                started.elapsed().as_nanos() as f64 / n as f64
            };
            while total(&system, &targets).await != before + n as i64 {
                assert!(started.elapsed() < T, "not every deposit arrived");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let rate = n as f64 / started.elapsed().as_secs_f64() / 1e6;
            (rate, producer)
        })
        .await
        .unwrap()
    })
}

/// Runs each of `sides` once per round, each round starting with the next one; returns each
/// side's median and the median over rounds of each side's ratio to side 0.
fn rounds(runs: usize, sides: &mut [&mut dyn FnMut() -> f64]) -> Vec<(f64, f64)> {
    let k = sides.len();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); k];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); k];
    for round in 0..runs {
        let mut got = vec![0.0; k];
        for j in 0..k {
            let s = (round + j) % k;
            got[s] = (sides[s])();
        }
        for s in 0..k {
            values[s].push(got[s]);
            ratios[s].push(got[s] / got[0]);
        }
    }
    values
        .into_iter()
        .zip(ratios)
        .map(|(v, r)| (median(v), median(r)))
        .collect()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------------------------
// S1

const S1_N: u64 = 2_000_000;

fn s1(rt: &tokio::runtime::Runtime, runs: usize) {
    WORK.store(
        env_usize("CASTY_BENCH_S1_WORK", 0) as u64,
        Ordering::Relaxed,
    );
    let system = rt.block_on(async { ActorSystem::new("bench") });
    let region = system
        .spawn(Behaviors::sharded(|_id: &str| account(0), 100), "accounts")
        .unwrap();
    let counts: Vec<usize> = match std::env::var("CASTY_BENCH_S1_ENTITIES") {
        Ok(v) => v.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 100],
    };
    for entities in counts {
        let ids: Vec<Arc<String>> = (0..entities)
            .map(|i| Arc::new(format!("acct-{entities}-{i}")))
            .collect();
        let sharded: Vec<Target> = ids
            .iter()
            .map(|id| Target::Sharded(region.clone(), id.clone()))
            .collect();
        let entity_refs: Vec<Target> = ids
            .iter()
            .map(|id| Target::Entity(region.entity_ref(id.as_str())))
            .collect();
        let plain: Vec<Target> = (0..entities)
            .map(|i| {
                Target::Plain(
                    system
                        .spawn(account(0), &format!("plain-{entities}-{i}"))
                        .unwrap(),
                )
            })
            .collect();
        // Every entity started before the runs.
        tell_run(rt, &system, &sharded, entities as u64);
        // For profiling one side alone: `CASTY_BENCH_S1_SIDE=sharded` (or `entity`, `plain`).
        if let Ok(side) = std::env::var("CASTY_BENCH_S1_SIDE") {
            let delayed: Vec<Target> = match std::env::var("CASTY_BENCH_S1_DELAY") {
                Ok(work) => {
                    let work = work.parse().expect("CASTY_BENCH_S1_DELAY: a count");
                    ids.iter()
                        .map(|id| Target::Delayed(region.entity_ref(id.as_str()), work))
                        .collect()
                }
                Err(_) => Vec::new(),
            };
            let targets = match side.as_str() {
                "sharded" => &sharded,
                "entity" if !delayed.is_empty() => &delayed,
                "entity" => &entity_refs,
                _ => &plain,
            };
            for _ in 0..runs {
                let (r, producer) = tell_side(rt, &system, targets, S1_N);
                println!(
                    "S1 {side}, {entities} entities: {r:.2} M msg/s (the producer alone: {producer:.1} ns per tell)"
                );
            }
            continue;
        }
        let r = rounds(
            runs,
            &mut [
                &mut || tell_run(rt, &system, &plain, S1_N),
                &mut || tell_run(rt, &system, &sharded, S1_N),
                &mut || tell_run(rt, &system, &entity_refs, S1_N),
                &mut || common::w1_tokio(rt),
            ],
        );
        let [(p, _), (s, s_ratio), (e, e_ratio), (raw, _)] = r[..] else {
            unreachable!()
        };
        println!(
            "S1 local sharded tell, {entities:>3} entit{} sharded &str id {s:>6.2} M msg/s ({s_ratio:.2}x plain) | EntityRef {e:>6.2} M msg/s ({e_ratio:.2}x) | plain actors {p:>6.2} M msg/s | raw tokio channel (W1) {raw:>6.2} M msg/s | target >= 9.6 M/s: {}, >= 0.5x plain: {}",
            if entities == 1 { "y  " } else { "ies" },
            verdict(s >= 9.6),
            verdict(s_ratio >= 0.5),
        );
    }
    rt.block_on(system.shutdown());
}

// ---------------------------------------------------------------------------------------------
// Three nodes: in this process or in three.

const SHARDS: u32 = 100;
const ENTITIES: usize = 300;

async fn start_node(seed: Option<&str>) -> ClusteredActorSystem {
    let mut b = fast_cluster_node("shard-bench");
    if let Some(s) = seed {
        b = b.seed_nodes([s.to_string()]);
    }
    let node = b.start().await.unwrap();
    if seed.is_none() {
        node.cluster().join(node.address().clone());
    }
    node
}

/// The account region and `ENTITIES` plain accounts (`/plain-0` ..) of one node.
fn spawn_accounts(node: &ActorSystem) -> ActorRef<ShardEnvelope<Account>> {
    for i in 0..ENTITIES {
        node.spawn(account(0), &format!("plain-{i}")).unwrap();
    }
    node.spawn(
        Behaviors::sharded_with(|_id: &str| account(0), fast_sharding(SHARDS)),
        "accounts",
    )
    .unwrap()
}

fn ids() -> Vec<Arc<String>> {
    (0..ENTITIES)
        .map(|i| Arc::new(format!("acct-{i}")))
        .collect()
}

/// Touches every entity from node 0, then waits until the shards are spread evenly and stay so:
/// node 0 holds its third of the shards used (and, when `all` holds every node's region, every
/// node does) for a whole second.
async fn settle(
    system: &ActorSystem,
    region: &ActorRef<ShardEnvelope<Account>>,
    all: Option<&[ActorRef<ShardEnvelope<Account>>]>,
) -> RegionState {
    let targets: Vec<Target> = ids()
        .into_iter()
        .map(|id| Target::Sharded(region.clone(), id))
        .collect();
    total(system, &targets).await;
    let used: std::collections::BTreeSet<u32> = ids()
        .iter()
        .map(|id| casty::sharding::shard_id(id, SHARDS))
        .collect();
    let (lo, hi) = (used.len() / 3, used.len().div_ceil(3));
    let deadline = Instant::now() + T;
    let mut stable_since: Option<(Instant, usize)> = None;
    loop {
        let mine = region.region_state().await.unwrap();
        let mut even = (lo..=hi).contains(&mine.shards.len());
        if let Some(all) = all {
            let mut counts = Vec::new();
            for r in all {
                counts.push(r.region_state().await.unwrap().shards.len());
            }
            even &= counts.iter().sum::<usize>() == used.len()
                && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1;
        }
        match stable_since {
            Some((since, n)) if even && n == mine.shards.len() => {
                if since.elapsed() >= Duration::from_secs(1) {
                    // Every entity runs again after the moves.
                    total(system, &targets).await;
                    return region.region_state().await.unwrap();
                }
            }
            _ => stable_since = even.then(|| (Instant::now(), mine.shards.len())),
        }
        assert!(Instant::now() < deadline, "the shards did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node 0's side of S2 and S3: its system and region, and the addresses of nodes 1 and 2.
struct Three {
    system: ActorSystem,
    region: ActorRef<ShardEnvelope<Account>>,
    others: [String; 2],
    /// What node 0 hosts once settled.
    mine: RegionState,
}

impl Three {
    fn all_entities(&self) -> Vec<Target> {
        ids()
            .into_iter()
            .map(|id| Target::Sharded(self.region.clone(), id))
            .collect()
    }

    /// The entities on nodes 1 and 2.
    fn remote_entities(&self) -> Vec<Target> {
        let here: std::collections::BTreeSet<&String> =
            self.mine.shards.values().flatten().collect();
        ids()
            .into_iter()
            .filter(|id| !here.contains(&**id))
            .map(|id| Target::Sharded(self.region.clone(), id))
            .collect()
    }

    /// `n` plain accounts on nodes 1 and 2, alternately, through `remote_ref`.
    fn remote_plain(&self, n: usize) -> Vec<Target> {
        (0..n)
            .map(|j| {
                let node = &self.others[j % 2];
                Target::Plain(
                    self.system
                        .remote_ref(&format!("{node}/plain-{}", j / 2))
                        .unwrap(),
                )
            })
            .collect()
    }
}

const S2_N: u64 = 150_000;

fn s2(rt: &tokio::runtime::Runtime, three: &Three, runs: usize, label: &str) {
    let all = three.all_entities();
    let remote = three.remote_entities();
    let plain = three.remote_plain(remote.len());
    // Warm the plain refs' associations.
    tell_run(rt, &three.system, &plain, plain.len() as u64);
    // For profiling one side alone: `CASTY_BENCH_S2_SIDE=remote` (or `all`, `plain`).
    if let Ok(side) = std::env::var("CASTY_BENCH_S2_SIDE") {
        let targets = match side.as_str() {
            "remote" => &remote,
            "all" => &all,
            _ => &plain,
        };
        for _ in 0..runs {
            let r = tell_run(rt, &three.system, targets, S2_N);
            println!("S2 {label}, {side}: {r:.3} M msg/s");
        }
        return;
    }
    let r = rounds(
        runs,
        &mut [
            &mut || tell_run(rt, &three.system, &plain, S2_N),
            &mut || tell_run(rt, &three.system, &remote, S2_N),
            &mut || tell_run(rt, &three.system, &all, S2_N),
        ],
    );
    let [(p, _), (rm, rm_ratio), (a, a_ratio)] = r[..] else {
        unreachable!()
    };
    println!(
        "S2 {label}: sharded tell from node 0, {S2_N} deposits; to the {} entities on nodes 1-2 {rm:>6.3} M msg/s ({rm_ratio:.2}x plain) | to all {} entities over 3 nodes {a:>6.3} M msg/s ({a_ratio:.2}x) | plain remote_ref actors on nodes 1-2 {p:>6.3} M msg/s | target remote >= 0.5x plain: {}",
        remote.len(),
        all.len(),
        verdict(rm_ratio >= 0.5)
    );
}

const S3_BLOCK: usize = 1_000;
const S3_BLOCKS: usize = 10;

async fn ask_block(system: &ActorSystem, target: &Target, warm: usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(S3_BLOCK);
    for i in 0..warm + S3_BLOCK {
        let t = Instant::now();
        let b = target.balance(system).await;
        std::hint::black_box(b);
        if i >= warm {
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat
}

fn s3(rt: &tokio::runtime::Runtime, three: &Three, label: &str) {
    let entity = three.remote_entities().remove(0);
    let Target::Sharded(_, id) = &entity else {
        unreachable!()
    };
    let id = id.clone();
    let plain = three.remote_plain(1).remove(0);
    let system = three.system.clone();
    let [(p50, p99), (rp50, rp99)] = rt.block_on(async move {
        tokio::spawn(async move {
            let (mut sharded, mut base) = (Vec::new(), Vec::new());
            for b in 0..S3_BLOCKS {
                let warm = if b == 0 { 500 } else { 50 };
                base.extend(ask_block(&system, &plain, warm).await);
                sharded.extend(ask_block(&system, &entity, warm).await);
            }
            let pct = |mut v: Vec<f64>| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                (v[v.len() / 2], v[v.len() * 99 / 100])
            };
            [pct(sharded), pct(base)]
        })
        .await
        .unwrap()
    });
    println!(
        "S3 {label}: ask from node 0 to entity {id:?} on another node  sharded p50 {p50:>6.1} us p99 {p99:>6.1} us | plain remote_ref p50 {rp50:>6.1} us p99 {rp99:>6.1} us | p50 ratio {:.2} (target <= 1.5: {})",
        p50 / rp50,
        verdict(p50 / rp50 <= 1.5)
    );
}

fn in_process(rt: &tokio::runtime::Runtime, runs: usize, want: &dyn Fn(&str) -> bool) {
    let (nodes, regions) = rt.block_on(async {
        let first = start_node(None).await;
        let seed = first.address().to_string();
        let mut nodes = vec![first];
        for _ in 1..3 {
            nodes.push(start_node(Some(&seed)).await);
        }
        for n in &nodes {
            n.cluster().wait_for_up(3, T).await.unwrap();
        }
        let regions: Vec<_> = nodes.iter().map(|n| spawn_accounts(n)).collect();
        (nodes, regions)
    });
    let mine = rt.block_on(settle(&nodes[0], &regions[0], Some(&regions)));
    let three = Three {
        system: (*nodes[0]).clone(),
        region: regions[0].clone(),
        others: [
            nodes[1].address().to_string(),
            nodes[2].address().to_string(),
        ],
        mine,
    };
    if want("S2") {
        s2(rt, &three, runs, "3 nodes in 1 process");
    }
    if want("S3") {
        s3(rt, &three, "3 nodes in 1 process");
    }
    rt.block_on(async {
        for n in nodes.iter().rev() {
            n.shutdown().await;
        }
    });
}

/// Nodes 1 and 2 of S2p and S3p: a clustered node with the account region and the plain
/// accounts; prints its address, then serves until its stdin closes.
fn serve_node() {
    let rt = runtime(env_usize("CASTY_BENCH_WORKERS", 2));
    rt.block_on(async {
        let seed = std::env::var(SEED).unwrap();
        let node = start_node(Some(&seed)).await;
        spawn_accounts(&node);
        println!("READY {}", node.address());
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
            .await
            .unwrap();
        node.shutdown().await;
    });
}

fn processes(rt: &tokio::runtime::Runtime, runs: usize, want: &dyn Fn(&str) -> bool) {
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            let _ = self.0.wait();
        }
    }
    let first = rt.block_on(start_node(None));
    let region = spawn_accounts(&first);
    let seed = first.address().to_string();
    let mut children = Vec::new();
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut c = Child(
            Command::new(std::env::current_exe().unwrap())
                .env(ROLE, "node")
                .env(SEED, &seed)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(c.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        others.push(line.split_whitespace().nth(1).unwrap().to_string());
        children.push(c);
    }
    rt.block_on(first.cluster().wait_for_up(3, T)).unwrap();
    let mine = rt.block_on(settle(&first, &region, None));
    let three = Three {
        system: (*first).clone(),
        region,
        others: [others[0].clone(), others[1].clone()],
        mine,
    };
    if want("S2p") {
        s2(rt, &three, runs, "3 OS processes");
    }
    if want("S3p") {
        s3(rt, &three, "3 OS processes");
    }
    drop(children);
    rt.block_on(first.shutdown());
}

// ---------------------------------------------------------------------------------------------
// S4

/// A deposit stamped with when it was told, in µs since `base()`.
#[message_enum]
enum Stamped {
    Deposit { amount: i64, sent_us: u64 },
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    base().elapsed().as_micros() as u64
}

/// How long each stamped deposit took from its tell to its entity's handler, in µs.
#[derive(Default)]
struct Delays {
    handled: AtomicU64,
    /// The sum of the amounts deposited.
    deposited: AtomicI64,
    each: Mutex<Vec<(u64, u64)>>,
}

fn stamped(delays: Arc<Delays>) -> Behavior<Stamped> {
    Behaviors::receive(move |_ctx, Stamped::Deposit { amount, sent_us }| {
        let now = now_us();
        delays.each.lock().unwrap().push((sent_us, now - sent_us));
        delays.deposited.fetch_add(amount, Ordering::Relaxed);
        delays.handled.fetch_add(1, Ordering::Relaxed);
        Behaviors::same()
    })
}

const S4_SHARDS: u32 = 1_000;

fn s4_settings() -> ShardingSettings {
    let s = fast_sharding(S4_SHARDS);
    match std::env::var("CASTY_BENCH_S4_MAX_SIMULTANEOUS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // The given number alone, without the default percentage.
        Some(m) => s.allocation(
            LeastShardAllocation::new()
                .max_simultaneous(m)
                .max_simultaneous_percent(0),
        ),
        None => s,
    }
}

async fn s4_node(
    seed: Option<&str>,
    delays: &Arc<Delays>,
) -> (ClusteredActorSystem, ActorRef<ShardEnvelope<Stamped>>) {
    let node = start_node(seed).await;
    let d = delays.clone();
    let region = node
        .spawn(
            Behaviors::sharded_with(move |_id: &str| stamped(d.clone()), s4_settings()),
            "stamps",
        )
        .unwrap();
    (node, region)
}

async fn shard_counts(regions: &[ActorRef<ShardEnvelope<Stamped>>]) -> Vec<usize> {
    let mut out = Vec::new();
    for r in regions {
        out.push(r.region_state().await.unwrap().shards.len());
    }
    out
}

fn pct(v: &mut [u64], p: usize) -> u64 {
    v.sort_unstable();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn s4(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        tokio::spawn(async {
            let delays = Arc::new(Delays::default());
            let (first, r0) = s4_node(None, &delays).await;
            let seed = first.address().to_string();
            let mut nodes = vec![first];
            let mut regions = vec![r0];
            for _ in 1..3 {
                let (n, r) = s4_node(Some(&seed), &delays).await;
                nodes.push(n);
                regions.push(r);
            }
            for n in &nodes {
                n.cluster().wait_for_up(3, T).await.unwrap();
            }
            // One entity in each shard, touched once so that every shard is allocated.
            let mut ids: Vec<Option<Arc<str>>> = vec![None; S4_SHARDS as usize];
            let mut i = 0;
            while ids.iter().any(|s| s.is_none()) {
                let id = format!("e-{i}");
                let s = casty::sharding::shard_id(&id, S4_SHARDS) as usize;
                ids[s].get_or_insert_with(|| id.into());
                i += 1;
            }
            let ids: Vec<Arc<str>> = ids.into_iter().map(Option::unwrap).collect();
            for id in &ids {
                regions[0].tell(ShardEnvelope::new(
                    id.clone(),
                    Stamped::Deposit {
                        amount: 0,
                        sent_us: now_us(),
                    },
                ));
            }
            let deadline = Instant::now() + T;
            loop {
                let c = shard_counts(&regions).await;
                if c.iter().sum::<usize>() == S4_SHARDS as usize
                    && c.iter().max().unwrap() - c.iter().min().unwrap() <= 1
                    && delays.handled.load(Ordering::Relaxed) == S4_SHARDS as u64
                {
                    break;
                }
                assert!(Instant::now() < deadline, "1,000 shards not placed: {c:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let before = shard_counts(&regions).await;
            delays.each.lock().unwrap().clear();

            // The steady stream, from node 0.
            let rate = env_usize("CASTY_BENCH_S4_RATE", 10_000) as u64;
            let per_ms = rate.div_ceil(1000).max(1);
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicU64::new(0));
            let stream = {
                let (stop, sent, ids, region) =
                    (stop.clone(), sent.clone(), ids.clone(), regions[0].clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(1));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    let mut k = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        for _ in 0..per_ms {
                            region.tell(ShardEnvelope::new(
                                ids[k % ids.len()].clone(),
                                Stamped::Deposit {
                                    amount: 1,
                                    sent_us: now_us(),
                                },
                            ));
                            k += 1;
                        }
                        sent.fetch_add(per_ms, Ordering::Relaxed);
                    }
                })
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
            let calm: Vec<u64> = std::mem::take(&mut *delays.each.lock().unwrap())
                .into_iter()
                .map(|(_, d)| d)
                .collect();
            let calm_max = calm.iter().copied().max().unwrap_or(0);
            let mut calm_sorted = calm.clone();
            let calm_p99 = pct(&mut calm_sorted, 99);

            let join_at = now_us();
            let started = Instant::now();
            let (fourth, r3) = s4_node(Some(&seed), &delays).await;
            nodes.push(fourth);
            regions.push(r3);
            nodes[0].cluster().wait_for_up(4, T).await.unwrap();
            let up = started.elapsed();
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let c = shard_counts(&regions).await;
                if c.iter().all(|&n| n == S4_SHARDS as usize / 4) {
                    break;
                }
                assert!(Instant::now() < deadline, "not rebalanced: {c:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let even = started.elapsed();
            let even_at = now_us();
            stop.store(true, Ordering::Relaxed);
            stream.await.unwrap();
            let total = sent.load(Ordering::Relaxed) + S4_SHARDS as u64;
            let deadline = Instant::now() + T;
            while delays.handled.load(Ordering::Relaxed) < total {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {total} stamped deposits arrived",
                    delays.handled.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Each stream message deposits 1 (the touches 0): each arrived exactly once.
            assert_eq!(
                delays.deposited.load(Ordering::Relaxed),
                sent.load(Ordering::Relaxed) as i64
            );
            let all = std::mem::take(&mut *delays.each.lock().unwrap());
            let window: Vec<u64> = all
                .iter()
                .filter(|(at, _)| (join_at..=even_at).contains(at))
                .map(|&(_, d)| d)
                .collect();
            let held = window.iter().filter(|&&d| d > calm_max).count();
            let over_10ms = window.iter().filter(|&&d| d > 10_000).count();
            let mut w = window.clone();
            let (w50, w99) = (pct(&mut w, 50), pct(&mut w, 99));
            let wmax = w.last().copied().unwrap_or(0);
            let moved = S4_SHARDS as usize / 4;
            println!(
                "S4 rebalance of {S4_SHARDS} shards (one entity each), 3 nodes -> 4 (shards before {before:?}); max_simultaneous {}: 4th node Up after {:.2} s, 250 shards on each node after {:.2} s from its start ({:.2} s after Up); {moved} shards moved, {:.1} ms per shard",
                std::env::var("CASTY_BENCH_S4_MAX_SIMULTANEOUS").unwrap_or_else(|_| "default (3 or 10%: 100)".into()),
                up.as_secs_f64(),
                even.as_secs_f64(),
                (even - up).as_secs_f64(),
                (even - up).as_secs_f64() * 1e3 / moved as f64,
            );
            println!(
                "S4 stream of {rate} msg/s during it: {} told while rebalancing, all {total} handled; before the join p99 {calm_p99} us, max {calm_max} us; during: p50 {w50} us, p99 {w99} us, max {:.1} ms; held up (slower than the max before the join) {held} ({:.2}%), over 10 ms {over_10ms}",
                window.len(),
                wmax as f64 / 1e3,
                held as f64 * 100.0 / window.len().max(1) as f64,
            );
            for n in nodes.iter().rev() {
                n.shutdown().await;
            }
        })
        .await
        .unwrap()
    });
}

// ---------------------------------------------------------------------------------------------

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    if std::env::var(ROLE).is_ok_and(|r| r == "node") {
        serve_node();
        return;
    }
    let want = wanted();
    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let runs = env_usize("CASTY_BENCH_RUNS", 5);
    let rt = runtime(workers);
    println!(
        "casty sharding benchmarks: {workers} workers per process, median of {runs} interleaved rounds"
    );
    println!(
        "cpu: {}; load average before: {}",
        cpu_model(),
        load_average()
    );
    if want("S1") {
        s1(&rt, runs);
        println!("  (load average {})", load_average());
    }
    if want("S2") || want("S3") {
        in_process(&rt, runs, &want);
        println!("  (load average {})", load_average());
    }
    if want("S2p") || want("S3p") {
        processes(&rt, runs, &want);
        println!("  (load average {})", load_average());
    }
    if want("S4") {
        s4(&rt);
        println!("  (load average {})", load_average());
    }
}
