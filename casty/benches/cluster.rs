//! Cluster membership figures, with clustered systems in one process on 127.0.0.1:
//!
//! - **Formation** of 3, 10 and 25 nodes: one node forms the cluster, then every other node starts
//!   at once with it as the seed; the time from the last start until every node holds the same
//!   converged view with every member Up, in milliseconds and in gossip intervals (100 ms here).
//!   Target: 25 nodes within 12 gossip intervals.
//! - **Steady-state traffic** per node, gossip and heartbeats, in bytes per second sent, measured
//!   over 5 s once 10 and 25 nodes have formed (the remoting counters). Target: the figure at 25
//!   nodes at most 1.5 times the figure at 10.
//! - **Detection**: 3 nodes; one is cut off from the others at the transport (as a kill looks:
//!   no goodbye). The time until the others see it unreachable, and until it is removed, with the
//!   default settings and with the fast ones of the tests. Target: unreachable within
//!   `acceptable_heartbeat_pause` + 2 heartbeat intervals.
//!
//! The fast settings are those of the integration tests: gossip every 100 ms, heartbeats every
//! 50 ms, an acceptable pause of 200 ms, a minimum deviation of 10 ms, keep-majority after 400 ms.
//!
//! Run: `cargo bench -p casty --bench cluster` (`CASTY_BENCH_RUNS`, default 3, for formation).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casty::cluster::{
    ClusterEvent, ClusteredActorSystem, ClusteredActorSystemBuilder, MemberStatus,
};
use casty::config::ClusterConfig;
use casty::testing::{Direction, FaultyTransport};

const GOSSIP: Duration = Duration::from_millis(100);
const WAIT: Duration = Duration::from_secs(60);

fn fast() -> ClusteredActorSystemBuilder {
    casty::testing::fast_cluster_node("bench")
}

/// The default settings (`[cluster]` defaults), on any port.
fn defaults() -> ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder("bench").config(&ClusterConfig::default().port(0))
}

fn formed(nodes: &[ClusteredActorSystem]) -> bool {
    let first = nodes[0].cluster().state();
    nodes.iter().all(|n| {
        let v = n.cluster().state();
        v.same_state(&first)
            && v.members().count() == nodes.len()
            && v.members().all(|m| m.status == MemberStatus::Up)
            && v.converged(n.cluster().self_node(), &Default::default())
    })
}

async fn until(mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {}", what());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn describe(nodes: &[ClusteredActorSystem]) -> String {
    nodes
        .iter()
        .map(|n| {
            let v = n.cluster().state();
            format!(
                "{}: {:?} seen {} converged {}",
                n.address().port(),
                v.members()
                    .map(|m| (m.node.address.port(), m.status))
                    .collect::<Vec<_>>(),
                v.seen().len(),
                v.converged(n.cluster().self_node(), &Default::default())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Forms a cluster of `n` nodes built by `make`; returns them and the time from the last start
/// until it had formed.
async fn form(
    n: usize,
    make: impl Fn() -> ClusteredActorSystemBuilder,
) -> (Vec<ClusteredActorSystem>, Duration) {
    let first = make().start().await.unwrap();
    first.cluster().join(first.address().clone());
    first.cluster().wait_for_up(1, WAIT).await.unwrap();
    let seed = first.address().to_string();
    let starts: Vec<_> = (1..n)
        .map(|_| tokio::spawn(make().seed_nodes([seed.clone()]).start()))
        .collect();
    let mut nodes = vec![first];
    for s in starts {
        nodes.push(s.await.unwrap().unwrap());
    }
    let t = Instant::now();
    until(|| formed(&nodes), || describe(&nodes)).await;
    (nodes, t.elapsed())
}

async fn stop(nodes: Vec<ClusteredActorSystem>) {
    for n in nodes.into_iter().rev() {
        n.system().shutdown().await;
    }
}

fn bytes_out(nodes: &[ClusteredActorSystem]) -> u64 {
    nodes
        .iter()
        .map(|n| n.remote_counters().map_or(0, |c| c.bytes_out))
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Cuts node `victim` off both ways and times its unreachability and removal on node 0.
async fn detection(make: impl Fn() -> ClusteredActorSystemBuilder) -> (Duration, Duration) {
    let links: Vec<FaultyTransport> = (0..3).map(|_| FaultyTransport::tcp()).collect();
    let first = make()
        .transport(Arc::new(links[0].clone()))
        .start()
        .await
        .unwrap();
    first.cluster().join(first.address().clone());
    let seed = first.address().to_string();
    let mut nodes = vec![first];
    for l in &links[1..] {
        nodes.push(
            make()
                .transport(Arc::new(l.clone()))
                .seed_nodes([seed.clone()])
                .start()
                .await
                .unwrap(),
        );
    }
    until(|| formed(&nodes), || describe(&nodes)).await;
    // Let the failure detectors learn the heartbeat rhythm.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = nodes[2].address().clone();
    let seen: Arc<Mutex<Vec<(&'static str, Instant)>>> = Arc::default();
    let s = seen.clone();
    let v = victim.clone();
    nodes[0].cluster().subscribe(move |e| {
        let kind = match e {
            ClusterEvent::UnreachableMember(m) if m.node.address == v => "unreachable",
            ClusterEvent::MemberRemoved { member, .. } if member.node.address == v => "removed",
            _ => return,
        };
        s.lock().unwrap().push((kind, Instant::now()));
    });
    let t = Instant::now();
    for i in 0..2 {
        links[i].blackhole(&victim, Direction::Both);
        links[2].blackhole(nodes[i].address(), Direction::Both);
    }
    let at = |kind: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, at)| at.duration_since(t))
    };
    until(|| at("removed").is_some(), || describe(&nodes)).await;
    let r = (at("unreachable").unwrap(), at("removed").unwrap());
    stop(nodes).await;
    r
}

fn main() {
    let runs: usize = std::env::var("CASTY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("casty cluster benchmarks, nodes in one process on 127.0.0.1, 2 tokio workers");
    rt.block_on(async {
        for n in [3usize, 10, 25] {
            let mut times = Vec::new();
            for _ in 0..runs {
                let (nodes, took) = form(n, fast).await;
                times.push(took.as_secs_f64() * 1000.0);
                stop(nodes).await;
            }
            let ms = median(times.clone());
            println!(
                "formation, {n:>2} nodes: {ms:>6.0} ms = {:>4.1} gossip intervals (median of {runs}; runs {:?} ms){}",
                ms / GOSSIP.as_secs_f64() / 1000.0,
                times.iter().map(|t| t.round() as u64).collect::<Vec<_>>(),
                if n == 25 { "; target <= 12 intervals" } else { "" }
            );
        }
        let mut per_node = Vec::new();
        for n in [10usize, 25] {
            let (nodes, _) = form(n, fast).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let before = bytes_out(&nodes);
            let window = Duration::from_secs(5);
            tokio::time::sleep(window).await;
            let rate = (bytes_out(&nodes) - before) as f64 / window.as_secs_f64() / n as f64;
            println!("steady state, {n:>2} nodes: {rate:>7.0} bytes/s sent per node (gossip every 100 ms, heartbeats every 50 ms)");
            per_node.push(rate);
            stop(nodes).await;
        }
        println!(
            "steady state, 25 / 10 nodes: {:.2}x per node; target <= 1.5x",
            per_node[1] / per_node[0]
        );
        let mut unreachable = Vec::new();
        let mut removed = Vec::new();
        for _ in 0..runs {
            let (u, r) = detection(fast).await;
            unreachable.push(u.as_secs_f64() * 1000.0);
            removed.push(r.as_secs_f64() * 1000.0);
        }
        println!(
            "detection, fast settings: unreachable after {:.0} ms (target <= 200 ms pause + 2 x 50 ms = 300 ms; runs {:?}), removed after {:.0} ms (median of {runs})",
            median(unreachable.clone()),
            unreachable.iter().map(|t| t.round() as u64).collect::<Vec<_>>(),
            median(removed),
        );
        let d = ClusterConfig::default();
        let target = d.failure_detector.acceptable_heartbeat_pause + 2 * d.heartbeat.interval;
        let (u, r) = detection(defaults).await;
        println!(
            "detection, default settings: unreachable after {} ms (target <= {} ms), removed after {} ms (stable_after 20 s)",
            u.as_millis(),
            target.as_millis(),
            r.as_millis()
        );
    });
}
