//! Cluster membership figures, with clustered systems in one process on 127.0.0.1:
//!
//! - **Formation** of 3, 10 and 25 nodes: one node forms the cluster, then every other node starts
//!   at once with it as the seed; the time from the last start until every node holds the same
//!   converged view with every member Up, in milliseconds and in gossip intervals (100 ms here).
//!   Target: 25 nodes within 12 gossip intervals.
//! - **Steady-state traffic** per node, gossip and heartbeats, in bytes per second sent, measured
//!   over 5 s once 10 and 25 nodes have formed (the remoting counters). Target: the figure at 25
//!   nodes at most 1.5 times the figure at 10.
//! - **Detection**: 6 nodes, each watching the 5 others; one at a time is cut off from the
//!   others at the transport, both ways (as a kill looks: no goodbye), at a random point of the
//!   heartbeat rhythm, after a warm-up long enough for the detectors' histories (see `main`).
//!   For each of 20 cuts (fast settings) or 10 (defaults), the time until the first node marks it unreachable, and until each
//!   other node's own detector does (polled every millisecond); then the cut is healed. Then
//!   nodes are cut off for good and timed until every other node has removed them. With the
//!   default settings and with the fast ones of the tests. Target: unreachable within
//!   `acceptable_heartbeat_pause` + 2 heartbeat intervals; median and maximum are printed.
//!
//! The fast settings are those of the integration tests: gossip every 100 ms, heartbeats every
//! 50 ms, an acceptable pause of 200 ms, a minimum deviation of 10 ms, keep-majority after 400 ms.
//!
//! Run: `cargo bench -p casty --bench cluster` (`CASTY_BENCH_RUNS`, default 3, for formation).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use casty::cluster::{
    ClusterEvent, ClusteredActorSystem, ClusteredActorSystemBuilder, KeepMajority, MemberStatus,
    Reach,
};
use casty::config::ClusterConfig;
use casty::remote::NodeAddress;
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

/// What a node saw happen to another, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unreachable,
    Removed,
}

/// (observer index, what it saw, of whom, when), in the order the events were published.
type Log = Arc<Mutex<Vec<(usize, Seen, NodeAddress, Instant)>>>;

/// Nodes whose links can be cut, each with a log of the events it published.
struct Harness {
    nodes: Vec<ClusteredActorSystem>,
    links: Vec<FaultyTransport>,
    log: Log,
    rng: fastrand::Rng,
}

impl Harness {
    /// Forms `n` nodes built by `make`, each on a switchable transport.
    async fn form(n: usize, make: impl Fn() -> ClusteredActorSystemBuilder) -> Harness {
        let links: Vec<FaultyTransport> = (0..n).map(|_| FaultyTransport::tcp()).collect();
        let first = make()
            .transport(Arc::new(links[0].clone()))
            .start()
            .await
            .unwrap();
        first.cluster().join(first.address().clone());
        let seed = first.address().to_string();
        let mut nodes = vec![first];
        for l in &links[1..] {
            let node = make()
                .transport(Arc::new(l.clone()))
                .seed_nodes([seed.clone()])
                .start()
                .await
                .unwrap();
            nodes.push(node);
        }
        until(|| formed(&nodes), || describe(&nodes)).await;
        let log: Log = Arc::default();
        for (i, node) in nodes.iter().enumerate() {
            let log = log.clone();
            node.cluster().subscribe(move |e| {
                let (what, subject) = match e {
                    ClusterEvent::UnreachableMember(m) => (Seen::Unreachable, &m.node.address),
                    ClusterEvent::MemberRemoved { member, .. } => {
                        (Seen::Removed, &member.node.address)
                    }
                    _ => return,
                };
                let at = Instant::now();
                log.lock().unwrap().push((i, what, subject.clone(), at));
            });
        }
        Harness {
            nodes,
            links,
            log,
            rng: fastrand::Rng::new(),
        }
    }

    /// Cuts node `v` off from every other, both ways: to the others it looks killed.
    fn cut(&self, v: usize) {
        let victim = self.nodes[v].address().clone();
        for (i, node) in self.nodes.iter().enumerate() {
            if i != v {
                self.links[i].blackhole(&victim, Direction::Both);
                self.links[v].blackhole(node.address(), Direction::Both);
            }
        }
    }

    fn heal(&self, v: usize) {
        let victim = self.nodes[v].address().clone();
        for (i, l) in self.links.iter().enumerate() {
            if i != v {
                l.heal(&victim);
            }
        }
        self.links[v].heal_all();
    }

    /// The first time since `t` that any node other than `v` saw `v` as `what`, and the last.
    fn seen(
        &self,
        v: usize,
        what: Seen,
        t: Instant,
    ) -> (Option<Duration>, Option<Duration>, usize) {
        let victim = self.nodes[v].address();
        let log = self.log.lock().unwrap();
        let times: Vec<Duration> = log
            .iter()
            .filter(|(i, w, s, at)| *i != v && *w == what && s == victim && *at >= t)
            .map(|(_, _, _, at)| at.duration_since(t))
            .collect();
        (
            times.iter().min().copied(),
            times.iter().max().copied(),
            times.len(),
        )
    }

    /// Waits `phase` of a heartbeat interval (0 to 1), then cuts `v` off and waits until each
    /// other node's own detector has marked it unreachable. Returns the time of the first mark
    /// anywhere and of each own mark.
    async fn time_a_cut(
        &mut self,
        v: usize,
        heartbeat: Duration,
        phase: f64,
    ) -> (Duration, Vec<Duration>) {
        tokio::time::sleep(heartbeat.mul_f64(phase)).await;
        let victim = self.nodes[v].cluster().self_node().clone();
        let observers: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != v).collect();
        let mut own: Vec<Option<Duration>> = vec![None; observers.len()];
        let t = Instant::now();
        self.cut(v);
        // Each observer's own mark, polled every millisecond (so up to about 1 ms late).
        while own.iter().any(Option::is_none) {
            assert!(t.elapsed() < WAIT, "timed out: {}", describe(&self.nodes));
            for (k, &i) in observers.iter().enumerate() {
                if own[k].is_none() {
                    let c = self.nodes[i].cluster();
                    let reach = c.state().reachability().verdict(c.self_node(), &victim);
                    if reach != Reach::Reachable {
                        own[k] = Some(t.elapsed());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // A node publishes the event just after its view shows the mark.
        until(
            || self.seen(v, Seen::Unreachable, t).0.is_some(),
            || describe(&self.nodes),
        )
        .await;
        let (first, _, _) = self.seen(v, Seen::Unreachable, t);
        (
            first.unwrap(),
            own.into_iter().map(Option::unwrap).collect(),
        )
    }

    /// Heals `v` and waits until every node sees every member reachable again, then for two
    /// heartbeat intervals, so that each detector has recorded a fresh interval.
    async fn heal_and_settle(&self, v: usize, heartbeat: Duration) {
        self.heal(v);
        until(
            || {
                self.nodes
                    .iter()
                    .all(|n| n.cluster().unreachable().is_empty())
            },
            || describe(&self.nodes),
        )
        .await;
        tokio::time::sleep(2 * heartbeat).await;
    }

    /// Cuts `v` off for good and returns when every other node has removed it, and how long
    /// that took from the cut.
    async fn time_a_kill(&mut self, v: usize, heartbeat: Duration) -> Duration {
        let phase = heartbeat.mul_f64(self.rng.f64());
        tokio::time::sleep(phase).await;
        let t = Instant::now();
        self.cut(v);
        let others = self.nodes.len() - 1 - self.removed_before(t);
        until(
            || self.seen(v, Seen::Removed, t).2 >= others,
            || describe(&self.nodes),
        )
        .await;
        self.seen(v, Seen::Removed, t).1.unwrap()
    }

    /// How many nodes were removed (as seen by any node) before `t`.
    fn removed_before(&self, t: Instant) -> usize {
        let log = self.log.lock().unwrap();
        let mut gone: Vec<&NodeAddress> = log
            .iter()
            .filter(|(_, w, _, at)| *w == Seen::Removed && *at < t)
            .map(|(_, _, s, _)| s)
            .collect();
        gone.sort();
        gone.dedup();
        gone.len()
    }

    async fn stop(self) {
        stop(self.nodes).await;
    }
}

/// Median and maximum, in milliseconds.
fn median_max(v: &[Duration]) -> (f64, f64) {
    let ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let max = ms.iter().copied().fold(0.0, f64::max);
    (median(ms), max)
}

fn millis(v: &[Duration]) -> Vec<u64> {
    v.iter().map(|d| d.as_millis() as u64).collect()
}

/// How many nodes the detection figures use: with 5 heartbeat receivers per node, 6 nodes is
/// the largest cluster in which every node watches every other, so a cut or a removal never
/// gives a node a receiver it has not been heartbeating since the warm-up.
const DETECTION_NODES: usize = 6;
/// Times `cuts` cuts, each healed before anyone is downed, on `DETECTION_NODES` nodes built by
/// `make`, after `warm_up` of heartbeats; the victims take turns. Prints the figures against
/// the target and returns nothing.
async fn detection(
    label: &str,
    make: impl Fn() -> ClusteredActorSystemBuilder,
    heartbeat: Duration,
    pause: Duration,
    warm_up: Duration,
    cuts: usize,
) {
    let mut h = Harness::form(DETECTION_NODES, make).await;
    tokio::time::sleep(warm_up).await;
    let mut first = Vec::new();
    let mut each = Vec::new();
    for c in 0..cuts {
        let v = 1 + c % (DETECTION_NODES - 1);
        // The nodes settle in step with the heartbeat rhythm, so the wait before a cut sets
        // where in the rhythm it falls. Stratified: cut `c` falls at a random point of the
        // `c`-th of `cuts` equal slices of the interval, so every part of it is covered, the
        // first moments after an answer (the slowest to detect) among them.
        let phase = (c as f64 + h.rng.f64()) / cuts as f64;
        let (f, own) = h.time_a_cut(v, heartbeat, phase).await;
        first.push(f);
        each.extend(own);
        h.heal_and_settle(v, heartbeat).await;
    }
    h.stop().await;
    let target = pause + 2 * heartbeat;
    let verdict = |ms: f64| {
        if ms <= target.as_secs_f64() * 1000.0 {
            "met"
        } else {
            "not met"
        }
    };
    let (fm, fx) = median_max(&first);
    let (em, ex) = median_max(&each);
    println!(
        "detection, {label}, after {} s of heartbeats; target <= {} ms pause + 2 x {} ms = {} ms:",
        warm_up.as_secs(),
        pause.as_millis(),
        heartbeat.as_millis(),
        target.as_millis()
    );
    println!(
        "  cut -> unreachable, first node to mark it: median {fm:.0} ms ({}), max {fx:.0} ms ({}); {cuts} cuts {:?} ms",
        verdict(fm),
        verdict(fx),
        millis(&first)
    );
    println!(
        "  cut -> unreachable, each observer's own detector: median {em:.0} ms ({}), max {ex:.0} ms ({}); {} marks, min {} ms",
        verdict(em),
        verdict(ex),
        each.len(),
        each.iter().min().unwrap().as_millis()
    );
}

/// Kills `kills` nodes one after another on `DETECTION_NODES` nodes built by `make`, after
/// `warm_up`; each kill is timed until every other node has removed the victim.
async fn removal(
    label: &str,
    make: impl Fn() -> ClusteredActorSystemBuilder,
    heartbeat: Duration,
    warm_up: Duration,
    kills: usize,
    stable_after: Duration,
) {
    let mut h = Harness::form(DETECTION_NODES, make).await;
    tokio::time::sleep(warm_up).await;
    let mut removed = Vec::new();
    for k in 0..kills {
        removed.push(h.time_a_kill(DETECTION_NODES - 1 - k, heartbeat).await);
    }
    h.stop().await;
    let (m, x) = median_max(&removed);
    println!(
        "  kill -> removed on every other node ({label}, stable_after {} ms): median {m:.0} ms, max {x:.0} ms; {kills} kills {:?} ms",
        stable_after.as_millis(),
        millis(&removed)
    );
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
        // Detection. The fast settings' histories hold only real intervals after 200 of them,
        // 10 s at 50 ms; downing is put off for the cuts, which are healed, and the removals
        // are timed with the fast settings as they are.
        let fast_hb = Duration::from_millis(50);
        let fast_pause = Duration::from_millis(200);
        detection(
            "fast settings",
            || fast().downing(KeepMajority::default(), Duration::from_secs(60)),
            fast_hb,
            fast_pause,
            Duration::from_secs(10),
            20,
        )
        .await;
        removal("fast settings", fast, fast_hb, Duration::from_secs(10), 3, Duration::from_millis(400)).await;
        // With the defaults the two intervals seeded around the 1 s first estimate weigh on the
        // mean and the deviation until about 60 real ones have come: after 30 s of heartbeats
        // the deviation is under the 100 ms floor and the mean within 16 ms of 500 ms, so a
        // detector gives up about 1,039 ms after the last answer instead of 1,023 ms once only
        // real intervals are left (100 s). The cuts take about 25 s more, which narrows it.
        let d = ClusterConfig::default();
        detection(
            "default settings",
            defaults,
            d.heartbeat.interval,
            d.failure_detector.acceptable_heartbeat_pause,
            Duration::from_secs(30),
            10,
        )
        .await;
        removal(
            "default settings",
            defaults,
            d.heartbeat.interval,
            Duration::from_secs(30),
            2,
            Duration::from_secs(20),
        )
        .await;
    });
}
