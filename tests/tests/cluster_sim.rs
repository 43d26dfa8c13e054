//! Whole clusters of real `ClusteredActorSystem`s in turmoil's simulated network and time:
//! every node is a turmoil host, remoting goes over `SimTransport`, and each node's random source
//! is seeded, so a run is decided by its seed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::{Gossip, MemberStatus};
use casty_tests::sim::{self, entities, Action, Kind, Plan, Step};

/// Each node's latest view, by host name, as the hosts publish them.
type Views = Arc<Mutex<BTreeMap<String, Arc<Gossip>>>>;

/// What the nodes saw, in order: `<simulated ms> <host> <event>`.
type Trace = Arc<Mutex<Vec<String>>>;

/// The hosts whose node has left the cluster, and why.
type Stopped = Arc<Mutex<BTreeMap<String, casty::cluster::StopReason>>>;

/// Runs `hosts` as turmoil hosts, each publishing its view into `views` and its membership
/// events into `trace`.
fn add_hosts(
    sim: &mut turmoil::Sim<'_>,
    hosts: &[&'static str],
    views: &Views,
    trace: &Trace,
    stopped: &Stopped,
    seed: u64,
) {
    for (i, host) in hosts.iter().enumerate() {
        let views = views.clone();
        let trace = trace.clone();
        let stopped = stopped.clone();
        let seeds: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let host = *host;
        sim.host(host, move || {
            let views = views.clone();
            let trace = trace.clone();
            let stopped = stopped.clone();
            let seeds = seeds.clone();
            async move {
                let n =
                    sim::runner::node(host, &seeds, seed.wrapping_mul(31).wrapping_add(i as u64))
                        .start()
                        .await?;
                let started = tokio::time::Instant::now();
                n.cluster().subscribe(move |e| {
                    if let Some(m) = e.member() {
                        trace.lock().unwrap().push(format!(
                            "{} {host} {} {}",
                            started.elapsed().as_millis(),
                            e_kind(e),
                            m.node
                        ));
                    }
                });
                loop {
                    views
                        .lock()
                        .unwrap()
                        .insert(host.to_string(), n.cluster().state());
                    if let Some(why) = n.cluster().stopped() {
                        stopped.lock().unwrap().insert(host.to_string(), why);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
    }
}

/// A turmoil simulation of up to 120 s, its network's chance drawn from `seed`.
fn simulation<'a>(seed: u64) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(120))
        .rng_seed(seed)
        .build()
}

fn e_kind(e: &casty::cluster::ClusterEvent) -> &'static str {
    use casty::cluster::ClusterEvent::*;
    match e {
        MemberJoined(_) => "joined",
        MemberWeaklyUp(_) => "weakly-up",
        MemberUp(_) => "up",
        MemberLeft(_) => "left",
        MemberExited(_) => "exited",
        MemberDowned(_) => "downed",
        MemberRemoved { .. } => "removed",
        UnreachableMember(_) => "unreachable",
        ReachableMember(_) => "reachable",
        _ => "other",
    }
}

fn converged_all_up(views: &Views, n: usize) -> bool {
    let views = views.lock().unwrap();
    let Some(first) = views.values().next() else {
        return false;
    };
    views.len() == n
        && views.values().all(|v| {
            v.same_state(first)
                && v.members().count() == n
                && v.members().all(|m| m.status == MemberStatus::Up)
        })
}

/// One run: `n` nodes form a cluster; then, if `partition`, node 1 is cut off from the others
/// for a while and the links heal. The cut holds messages back and delivers them at the heal, as
/// TCP does over a network that drops packets for a while (turmoil's `hold` and `release`). Returns the trace of events, and whether every node ended in
/// one converged view with all `n` Up.
fn run(seed: u64, n: usize, partition: Option<Duration>) -> (Vec<String>, bool) {
    const HOSTS: [&str; 5] = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    let hosts = &HOSTS[..n];
    let _slot = sim::exclusive();
    let mut sim = simulation(seed);
    let views: Views = Arc::default();
    let trace: Trace = Arc::default();
    add_hosts(&mut sim, hosts, &views, &trace, &Arc::default(), seed);
    let v = views.clone();
    let ok = Arc::new(Mutex::new(false));
    let done = ok.clone();
    let hosts: Vec<&'static str> = hosts.to_vec();
    sim.client("check", async move {
        while !converged_all_up(&v, n) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(d) = partition {
            for h in &hosts[1..] {
                turmoil::hold(hosts[0], *h);
            }
            tokio::time::sleep(d).await;
            for h in &hosts[1..] {
                turmoil::release(hosts[0], *h);
            }
        }
        // Within 30 s of simulated time after the last fault, one view again, all Up.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !converged_all_up(&v, n) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        *done.lock().unwrap() = converged_all_up(&v, n);
        Ok(())
    });
    sim.run().unwrap();
    let trace = trace.lock().unwrap().clone();
    let ok = *ok.lock().unwrap();
    (trace, ok)
}

#[test]
fn three_nodes_form_one_cluster_in_simulated_time() {
    let (trace, ok) = run(7, 3, None);
    assert!(ok, "{trace:#?}");
    // Every node saw every member come up.
    assert_eq!(
        trace.iter().filter(|l| l.contains(" up ")).count(),
        9,
        "{trace:#?}"
    );
}

/// A short isolation heals without downing: node 1 is cut off for 0.4 s, well under
/// `stable_after` (3 s), and every node ends in one converged view with everyone Up.
#[test]
fn a_short_isolation_heals_without_downing() {
    let (trace, ok) = run(11, 3, Some(Duration::from_millis(400)));
    assert!(ok, "{trace:#?}");
    assert!(!trace.iter().any(|l| l.contains(" downed ")), "{trace:#?}");
}

/// How many of the random histories each part runs, and which one to replay.
fn seeds(part: u64) -> Vec<u64> {
    let count: u64 = std::env::var("CASTY_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    match std::env::var("CASTY_SIM_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(s) => (s % PARTS == part).then_some(s).into_iter().collect(),
        None => (0..count).filter(|s| s % PARTS == part).collect(),
    }
}

/// The random histories are run in this many tests (taking turns), so that a seed that fails in
/// one does not keep the others' seeds from running.
const PARTS: u64 = 4;

/// For each seed, a random cluster of 3 to 9 nodes lives through a random history of joins,
/// crashes, restarts, graceful leaves, partitions (held or lossy, short or long enough for the
/// split-brain resolver to act) and lossy links; then every fault heals and every node runs
/// again. Checked on the way: each node's view only grows; a Down or Removed incarnation never
/// comes back in a view that knows it died; nodes holding the same converged view agree on the
/// leader; after a long partition, at most one side has Up members; each node's events about
/// each member follow the lifecycle; and every node runs one sharded entity type under traffic,
/// of which no entity ever has two incarnations running at once. At the end the cluster settles
/// into one converged view with every node Up, within a bounded number of gossip rounds. A
/// failing seed prints the command that replays it.
fn random_histories(part: u64) {
    for seed in seeds(part) {
        let plan = Plan::random(seed);
        let out = sim::run(&plan);
        if std::env::var("CASTY_SIM_SEED").is_ok() {
            // A replay: show the history, whatever its outcome.
            eprintln!(
                "seed {seed}, plan: {}settled in {:?}\nevents:\n{}\nentity lives ({} messages \
                 handled):\n{}",
                plan.describe(),
                out.settled_in,
                out.trace(),
                out.handled,
                out.lives_trace()
            );
        }
        if let Some(why) = &out.failure {
            panic!(
                "seed {seed}: {why}\nreplay it with:\n  CASTY_SIM_SEED={seed} cargo test -p \
                 casty-tests --test cluster_sim random_histories\nplan: {}\nevents:\n{}",
                plan.describe(),
                out.trace()
            );
        }
    }
}

#[test]
fn random_histories_keep_every_rule_part_1() {
    random_histories(0);
}

#[test]
fn random_histories_keep_every_rule_part_2() {
    random_histories(1);
}

#[test]
fn random_histories_keep_every_rule_part_3() {
    random_histories(2);
}

#[test]
fn random_histories_keep_every_rule_part_4() {
    random_histories(3);
}

/// Whether the nodes on `hosts` hold one converged view whose members are exactly those hosts,
/// all Up.
fn converged_among(views: &Views, hosts: &[&str]) -> bool {
    let views = views.lock().unwrap();
    let Some(first) = views.get(hosts[0]) else {
        return false;
    };
    hosts.iter().all(|h| {
        views.get(*h).is_some_and(|v| {
            v.same_state(first)
                && v.members().count() == hosts.len()
                && v.members()
                    .all(|m| m.status == MemberStatus::Up && hosts.contains(&m.node.address.host()))
        })
    })
}

/// Keep-majority for many seeds: a cluster of 3–5 nodes splits into a minority and a majority
/// for 8 s (longer than `stable_after` plus detection). The minority's nodes down themselves
/// and stop; the majority removes them and ends in one converged view of its own members, all
/// Up; and after the links heal, the old messages delivered change nothing of that.
#[test]
fn a_split_leaves_the_majority_and_stops_the_minority_for_every_seed() {
    const HOSTS: [&str; 5] = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    let seeds: u64 = std::env::var("CASTY_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(20, |n| n / 10);
    let only: Option<u64> = std::env::var("CASTY_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok());
    for seed in only.map_or(0..seeds, |s| s..s + 1) {
        let n = 3 + (seed % 3) as usize;
        let hosts: Vec<&'static str> = HOSTS[..n].to_vec();
        // The minority: one or two nodes, chosen by the seed, never more than half.
        let k = 1 + (seed as usize / 3) % ((n - 1) / 2);
        let start = (seed as usize) % n;
        let minority: Vec<&'static str> = (0..k).map(|i| hosts[(start + i) % n]).collect();
        let majority: Vec<&'static str> = hosts
            .iter()
            .copied()
            .filter(|h| !minority.contains(h))
            .collect();
        let _slot = sim::exclusive();
        let mut sim = simulation(seed);
        let views: Views = Arc::default();
        let trace: Trace = Arc::default();
        let stopped: Stopped = Arc::default();
        add_hosts(&mut sim, &hosts, &views, &trace, &stopped, seed);
        let (v, st) = (views.clone(), stopped.clone());
        let (min, maj) = (minority.clone(), majority.clone());
        let all = hosts.clone();
        let outcome: Arc<Mutex<Option<String>>> = Arc::default();
        let out = outcome.clone();
        sim.client("check", async move {
            while !converged_among(&v, &all) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for a in &min {
                for b in &maj {
                    turmoil::hold(*a, *b);
                }
            }
            tokio::time::sleep(Duration::from_secs(8)).await;
            for a in &min {
                for b in &maj {
                    turmoil::release(*a, *b);
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let done = || {
                converged_among(&v, &maj)
                    && min.iter().all(|h| {
                        st.lock().unwrap().get(*h) == Some(&casty::cluster::StopReason::Downed)
                    })
            };
            while !done() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !done() {
                *out.lock().unwrap() = Some(format!(
                    "majority {maj:?} converged: {}; stopped: {:?}",
                    converged_among(&v, &maj),
                    st.lock().unwrap()
                ));
            }
            Ok(())
        });
        sim.run().unwrap();
        drop(sim);
        let failed = outcome.lock().unwrap().take();
        if let Some(why) = failed {
            panic!(
                "seed {seed} failed ({why}); replay it with:\n  CASTY_SIM_SEED={seed} cargo test -p casty-tests --test cluster_sim a_split\ntrace:\n{}",
                trace.lock().unwrap().join("\n")
            );
        }
    }
}

/// A sharded type under traffic on 5 nodes, split 2 | 3 for longer than keep-majority and the
/// sharding margin need: the two down themselves and their regions stop their entities; the
/// three remove them and, once `down_removal_margin` has passed, start the two's shards
/// themselves; no entity ever runs twice at once; and after the heal every node runs again
/// (the two as new incarnations) in one converged view, and every entity runs somewhere under
/// the traffic. Run held and lossy, with the coordinator's node (the oldest) on the small side
/// and on the large side.
#[test]
fn a_two_three_split_moves_the_small_sides_shards_to_the_large_side_without_overlap() {
    let cut = Duration::from_secs(6);
    let heal = cut + Duration::from_secs(14);
    for (seed, side, lossy) in [
        (1, vec![0, 1], false),
        (2, vec![0, 1], true),
        (3, vec![3, 4], false),
        (4, vec![3, 4], true),
    ] {
        let mut steps: Vec<Step> = (0..5)
            .map(|i| Step {
                at: Duration::from_millis(100 * i as u64),
                action: Action::Start(i),
            })
            .collect();
        steps.push(Step {
            at: cut,
            action: Action::Isolate {
                side: side.clone(),
                lossy,
            },
        });
        steps.push(Step {
            at: heal,
            action: Action::Heal,
        });
        steps.push(Step {
            at: heal + Duration::from_secs(1),
            action: Action::Finish,
        });
        let plan = Plan {
            seed,
            hosts: 5,
            steps,
        };
        let out = sim::run_then(&plan, Duration::from_secs(5));
        let context = || {
            format!(
                "split {side:?} (lossy: {lossy}), seed {seed}\nplan: {}events:\n{}\nlives:\n{}",
                plan.describe(),
                out.trace(),
                out.lives_trace()
            )
        };
        if std::env::var("CASTY_SIM_SEED").is_ok() {
            eprintln!("{}", context());
        }
        assert_eq!(out.failure, None, "{}", context());
        assert!(out.settled_in.is_some(), "{}", context());
        let (cut_us, heal_us) = (cut.as_micros() as u64, heal.as_micros() as u64);
        let small = |host: usize| side.contains(&host);
        // The small side's entities ran before the cut, and all stopped (by their regions, not
        // with a killed process) before the heal.
        let small_lives: Vec<&sim::Life> = out
            .lives
            .iter()
            .filter(|l| small(l.host) && l.start.at_us < heal_us)
            .collect();
        assert!(!small_lives.is_empty(), "{}", context());
        for l in &small_lives {
            assert!(
                l.stop.is_some_and(|s| s.at_us < heal_us) && !l.killed,
                "{l} did not stop before the heal\n{}",
                context()
            );
        }
        // The large side removed both nodes of the small side.
        let small_nodes: std::collections::BTreeSet<_> =
            small_lives.iter().map(|l| l.node.clone()).collect();
        for n in &small_nodes {
            assert!(
                out.events.iter().any(|e| e.kind == Kind::Removed
                    && e.member == *n
                    && !small(host_index(e.observer.address.host()))
                    && e.at_ms < heal.as_millis() as u64),
                "{n} was not removed on the large side\n{}",
                context()
            );
        }
        // Every entity that ran on the small side at the cut ran again on the large side before
        // the heal: its shard moved.
        let at_cut: std::collections::BTreeSet<&str> = small_lives
            .iter()
            .filter(|l| l.start.at_us < cut_us && l.stop.is_none_or(|s| s.at_us > cut_us))
            .map(|l| l.entity.as_str())
            .collect();
        assert!(!at_cut.is_empty(), "{}", context());
        for e in &at_cut {
            assert!(
                out.lives.iter().any(|l| l.entity == *e
                    && !small(l.host)
                    && l.start.at_us > cut_us
                    && l.start.at_us < heal_us),
                "{e} did not move to the large side\n{}",
                context()
            );
        }
        // Once settled, the traffic reaches every entity: each runs, on one node, at the end.
        let running: std::collections::BTreeSet<&str> = out
            .lives
            .iter()
            .filter(|l| l.stop.is_none())
            .map(|l| l.entity.as_str())
            .collect();
        assert_eq!(running.len(), entities::ENTITIES, "{}", context());
    }
}

/// The host number of a host name (`node-3` is host 2).
fn host_index(name: &str) -> usize {
    name.trim_start_matches("node-")
        .parse::<usize>()
        .map_or(usize::MAX, |n| n - 1)
}
