//! Cluster membership end to end: several clustered systems in one process on 127.0.0.1, with
//! short timings so that each test takes about a second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::{ClusteredActorSystem, ClusteredActorSystemBuilder, MemberStatus};
use casty_tests::cluster_kit::{event_line, fast_node};

const WAIT: Duration = Duration::from_secs(10);

fn node() -> ClusteredActorSystemBuilder {
    fast_node()
}

/// Records the events a node sees about members, as (member port, kind).
fn record(node: &ClusteredActorSystem) -> Arc<Mutex<Vec<(u16, &'static str)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    node.cluster().subscribe(move |e| {
        if let Some((kind, port, _)) = event_line(e) {
            s.lock().unwrap().push((port, kind));
        }
    });
    seen
}

fn about(events: &Mutex<Vec<(u16, &'static str)>>, port: u16) -> Vec<&'static str> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| *p == port)
        .map(|(_, k)| *k)
        .collect()
}

async fn three() -> [ClusteredActorSystem; 3] {
    three_of(node, |b| b).await
}

/// Three nodes made by `make`, the third further set up by `third` (its own transport, say):
/// the first forms the cluster, the others join it, and all see three Up.
async fn three_of(
    make: impl Fn() -> ClusteredActorSystemBuilder,
    third: impl FnOnce(ClusteredActorSystemBuilder) -> ClusteredActorSystemBuilder,
) -> [ClusteredActorSystem; 3] {
    let a = make().start().await.unwrap();
    a.cluster().join(a.address().clone());
    a.cluster().wait_for_up(1, WAIT).await.unwrap();
    let seeds = [a.address().to_string()];
    let b = make().seed_nodes(seeds.clone()).start().await.unwrap();
    let c = third(make().seed_nodes(seeds))
        .required_quorum(3, WAIT)
        .start()
        .await
        .unwrap();
    b.cluster().wait_for_up(3, WAIT).await.unwrap();
    a.cluster().wait_for_up(3, WAIT).await.unwrap();
    [a, b, c]
}

/// Waits until none of `nodes` has a member on `port`.
async fn removed_on(nodes: &[&ClusteredActorSystem], port: u16) {
    eventually("the node removed on the others", || {
        nodes.iter().all(|n| {
            n.cluster()
                .members()
                .iter()
                .all(|m| m.node.address.port() != port)
        })
    })
    .await;
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_one_cluster_and_agree_on_the_leader() {
    let [a, b, c] = three().await;
    for n in [&a, &b, &c] {
        let members = n.cluster().members();
        assert_eq!(members.len(), 3);
        assert!(members.iter().all(|m| m.status == MemberStatus::Up));
    }
    eventually("one leader", || {
        let l = a.cluster().leader();
        l.is_some() && l == b.cluster().leader() && l == c.cluster().leader()
    })
    .await;
    // Up-numbers follow the order in which members came up: a first.
    let a_up = a.cluster().self_member().unwrap().up_number;
    assert!(a.cluster().members().iter().all(|m| m.up_number >= a_up));
    for n in [c, b, a] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_removes_the_node_on_the_others() {
    let [a, b, c] = three().await;
    let at_a = record(&a);
    let c_port = c.address().port();
    c.shutdown().await;
    removed_on(&[&a, &b], c_port).await;
    let events = about(&at_a, c_port);
    assert_eq!(events.first(), Some(&"up"));
    assert_eq!(events.last(), Some(&"removed"));
    assert!(
        !events.contains(&"downed") && !events.contains(&"unreachable"),
        "{events:?}"
    );
    for n in [b, a] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_node_is_unreachable_then_downed_then_removed() {
    let faults = casty::testing::FaultyTransport::tcp();
    let [a, b, c] = three_of(node, |c| c.transport(Arc::new(faults.clone()))).await;
    let at_a = record(&a);
    let c_port = c.address().port();
    // The process hangs: nothing goes in or out, and its connections are cut.
    for peer in [a.address(), b.address()] {
        faults.blackhole(peer, casty::testing::Direction::Both);
        faults.sever(peer);
    }
    removed_on(&[&a, &b], c_port).await;
    assert_eq!(
        about(&at_a, c_port),
        ["up", "unreachable", "downed", "removed"]
    );
    assert_eq!(a.cluster().members().len(), 2);
    // The removed incarnation is refused for good: it can never join again.
    eventually("c quarantined on a", || {
        a.remote_counters().unwrap().quarantined == 1
    })
    .await;
    for n in [c, b, a] {
        n.shutdown().await;
    }
}

/// A node whose system shuts down without leaving the cluster says so to the others as it goes:
/// they down it at once, and the leader removes it, without waiting for the failure detector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_shuts_down_without_leaving_is_downed_at_once() {
    let [a, b, c] = three().await;
    let at_a = record(&a);
    let c_port = c.address().port();
    c.system().shutdown().await;
    removed_on(&[&a, &b], c_port).await;
    // Down and this node's mark come in one change: member events first.
    assert_eq!(
        about(&at_a, c_port),
        ["up", "downed", "unreachable", "removed"]
    );
    for n in [b, a] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_quorum_times_out_with_who_was_seen() {
    let a = node().start().await.unwrap();
    a.cluster().join(a.address().clone());
    let err = node()
        .seed_nodes([a.address().to_string()])
        .required_quorum(3, Duration::from_millis(800))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 members were not Up"), "{err}");
    assert!(err.contains(&a.address().to_string()), "{err}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_split_two_three_the_three_remove_the_two_and_the_two_stop() {
    use casty::testing::{Direction, FaultyTransport};
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    for i in 0..5 {
        let t = FaultyTransport::tcp();
        let mut b = node().transport(Arc::new(t.clone()));
        if i > 0 {
            b = b.seed_nodes([nodes
                .iter()
                .map(|n: &ClusteredActorSystem| n.address().to_string())
                .next()
                .unwrap()]);
        }
        let n = b.start().await.unwrap();
        if i == 0 {
            n.cluster().join(n.address().clone());
        }
        nodes.push(n);
        links.push(t);
    }
    for n in &nodes {
        n.cluster().wait_for_up(5, WAIT).await.unwrap();
    }
    // Cut {0, 1, 2} from {3, 4}, both ways, on both sides.
    let (big, small) = ([0usize, 1, 2], [3usize, 4]);
    for &i in &big {
        for &j in &small {
            links[i].blackhole(nodes[j].address(), Direction::Both);
            links[j].blackhole(nodes[i].address(), Direction::Both);
        }
    }
    for &j in &small {
        let mut stopped = false;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !stopped {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {j} did not stop"
            );
            stopped = nodes[j].cluster().stopped() == Some(casty::cluster::StopReason::Downed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let small_ports: Vec<u16> = small.iter().map(|&j| nodes[j].address().port()).collect();
    eventually("the three remove the two", || {
        big.iter().all(|&i| {
            let ms = nodes[i].cluster().members();
            ms.len() == 3
                && ms
                    .iter()
                    .all(|m| !small_ports.contains(&m.node.address.port()))
        })
    })
    .await;
    for &i in &big {
        assert!(nodes[i].cluster().stopped().is_none());
    }
    for n in nodes.into_iter().rev() {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_its_address_joins_as_a_new_incarnation() {
    let [a, b, c] = three().await;
    let at_a = record(&a);
    let (c_port, old_uid) = (c.address().port(), c.cluster().self_node().uid);
    c.system().shutdown().await;
    drop(c);
    let c2 = node()
        .port(c_port)
        .seed_nodes([a.address().to_string()])
        .required_quorum(3, WAIT)
        .start()
        .await
        .unwrap();
    let new_uid = c2.cluster().self_node().uid;
    assert_ne!(new_uid, old_uid);
    eventually("the old incarnation removed on a and b", || {
        [&a, &b].iter().all(|n| {
            let ms = n.cluster().members();
            ms.len() == 3
                && ms
                    .iter()
                    .any(|m| m.node.uid == new_uid && m.status == MemberStatus::Up)
                && ms.iter().all(|m| m.node.uid != old_uid)
        })
    })
    .await;
    // The old incarnation goes down and out, then the new one joins: never both Up.
    let events = about(&at_a, c_port);
    assert_eq!(events.last(), Some(&"up"), "{events:?}");
    assert!(events.contains(&"removed"), "{events:?}");
    for n in [c2, b, a] {
        n.shutdown().await;
    }
}

/// A node whose process dies silently and comes back on its address: the new incarnation's
/// handshake tells the others that the old one is gone, so it is downed and removed at once,
/// although their failure detectors and downing would wait a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_removes_the_old_incarnation_without_waiting_for_the_failure_detector() {
    let patient = || {
        let fd = casty::config::FailureDetectorConfig {
            acceptable_heartbeat_pause: Duration::from_secs(60),
            ..Default::default()
        };
        node().failure_detector(fd).downing(
            casty::cluster::KeepMajority::default(),
            Duration::from_secs(60),
        )
    };
    let faults = casty::testing::FaultyTransport::tcp();
    let [a, b, c] = three_of(patient, |c| c.transport(Arc::new(faults.clone()))).await;
    let seeds = [a.address().to_string()];
    let (c_port, old_uid) = (c.address().port(), c.cluster().self_node().uid);
    // The process dies without a word: nothing it sends gets out, not even its shutdown notice.
    for peer in [a.address(), b.address()] {
        faults.blackhole(peer, casty::testing::Direction::Both);
    }
    c.system().shutdown().await;
    drop(c);
    let started = std::time::Instant::now();
    let c2 = patient()
        .port(c_port)
        .seed_nodes(seeds)
        .required_quorum(3, WAIT)
        .start()
        .await
        .unwrap();
    let new_uid = c2.cluster().self_node().uid;
    eventually(
        "the new incarnation Up, the old one gone, on a and b",
        || {
            [&a, &b].iter().all(|n| {
                let ms = n.cluster().members();
                ms.len() == 3
                    && ms
                        .iter()
                        .any(|m| m.node.uid == new_uid && m.status == MemberStatus::Up)
                    && ms.iter().all(|m| m.node.uid != old_uid)
            })
        },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for n in [c2, b, a] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_nodes_joining_one_seed_at_once_all_see_eight_up() {
    let seed = node().start().await.unwrap();
    seed.cluster().join(seed.address().clone());
    seed.cluster().wait_for_up(1, WAIT).await.unwrap();
    let address = seed.address().to_string();
    let joining = (0..7).map(|_| {
        node()
            .seed_nodes([address.clone()])
            .required_quorum(8, Duration::from_secs(20))
            .start()
    });
    let others: Vec<ClusteredActorSystem> = futures_join_all(joining).await;
    let first = seed.cluster().state();
    for n in &others {
        n.cluster().wait_for_up(8, WAIT).await.unwrap();
    }
    eventually("one view everywhere", || {
        let v = seed.cluster().state();
        others.iter().all(|n| n.cluster().state().same_state(&v))
    })
    .await;
    assert!(first.members().count() <= 8);
    assert_eq!(seed.cluster().members().len(), 8);
    for n in others.into_iter().rev() {
        n.shutdown().await;
    }
    seed.shutdown().await;
}

/// Starts every future at once and waits for all (each must succeed).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<ClusteredActorSystem>
where
    F: std::future::Future<Output = Result<ClusteredActorSystem, casty::cluster::ClusterError>>
        + Send
        + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_secret_is_refused_and_the_refusal_is_an_event() {
    use casty::remote::HandshakeRefused;
    let a = node().secret("right").start().await.unwrap();
    a.cluster().join(a.address().clone());
    a.cluster().wait_for_up(1, WAIT).await.unwrap();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let r = refused.clone();
    let _sub = a
        .event_stream()
        .subscribe(move |e: &HandshakeRefused| r.lock().unwrap().push(e.reason.clone()));
    let err = node()
        .secret("wrong")
        .seed_nodes([a.address().to_string()])
        .required_quorum(2, Duration::from_millis(800))
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("were not Up"), "{err}");
    eventually("a refusal on the seed", || {
        !refused.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(a.cluster().members().len(), 1);
    a.shutdown().await;
}
