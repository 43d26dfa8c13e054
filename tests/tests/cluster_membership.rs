//! Cluster membership end to end: several clustered systems in one process on 127.0.0.1, with
//! short timings so that each test takes about a second.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::{
    ClusterEvent, ClusteredActorSystem, ClusteredActorSystemBuilder, KeepMajority, MemberStatus,
    MembershipSettings,
};
use casty::config::FailureDetectorConfig;

const WAIT: Duration = Duration::from_secs(10);

/// A node with test timings: gossip every 100 ms, heartbeats every 50 ms, a node silent for
/// about 300 ms suspected, keep-majority acting after 400 ms of stable reachability.
fn node() -> ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder("shop")
        .host("127.0.0.1")
        .port(0)
        .gossip_interval(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(50))
        .failure_detector(FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(10),
            acceptable_heartbeat_pause: Duration::from_millis(200),
            first_heartbeat_estimate: Duration::from_millis(50),
        })
        .membership(
            MembershipSettings::default()
                .retry_interval(Duration::from_millis(100))
                .seed_node_timeout(Duration::from_millis(500))
                .retry_join_after(Duration::from_secs(2))
                .weakly_up_after(None),
        )
        .downing(KeepMajority::default(), Duration::from_millis(400))
        .leave_timeout(Duration::from_secs(5))
}

/// Records the events a node sees about members, as (member port, kind).
fn record(node: &ClusteredActorSystem) -> Arc<Mutex<Vec<(u16, &'static str)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    node.cluster().subscribe(move |e| {
        let kind = match e {
            ClusterEvent::MemberJoined(_) => "joined",
            ClusterEvent::MemberWeaklyUp(_) => "weakly up",
            ClusterEvent::MemberUp(_) => "up",
            ClusterEvent::MemberLeft(_) => "left",
            ClusterEvent::MemberExited(_) => "exited",
            ClusterEvent::MemberDowned(_) => "downed",
            ClusterEvent::MemberRemoved { .. } => "removed",
            ClusterEvent::UnreachableMember(_) => "unreachable",
            ClusterEvent::ReachableMember(_) => "reachable",
            _ => return,
        };
        let port = e.member().map_or(0, |m| m.node.address.port());
        s.lock().unwrap().push((port, kind));
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
    let a = node().start().await.unwrap();
    a.cluster().join(a.address().clone());
    a.cluster().wait_for_up(1, WAIT).await.unwrap();
    let seeds = [a.address().to_string()];
    let b = node().seed_nodes(seeds.clone()).start().await.unwrap();
    let c = node()
        .seed_nodes(seeds)
        .required_quorum(3, WAIT)
        .start()
        .await
        .unwrap();
    b.cluster().wait_for_up(3, WAIT).await.unwrap();
    a.cluster().wait_for_up(3, WAIT).await.unwrap();
    [a, b, c]
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
    eventually("c removed on a and b", || {
        [&a, &b].iter().all(|n| {
            n.cluster()
                .members()
                .iter()
                .all(|m| m.node.address.port() != c_port)
        })
    })
    .await;
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
    let [a, b, c] = three().await;
    let at_a = record(&a);
    let c_port = c.address().port();
    // No leave: the system stops as if the process died.
    c.system().shutdown().await;
    eventually("c removed on a and b", || {
        [&a, &b].iter().all(|n| {
            n.cluster()
                .members()
                .iter()
                .all(|m| m.node.address.port() != c_port)
        })
    })
    .await;
    assert_eq!(
        about(&at_a, c_port),
        ["up", "unreachable", "downed", "removed"]
    );
    assert_eq!(a.cluster().members().len(), 2);
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
