//! Ports the Casty (Python) example "Cluster Formation": three nodes that share one seed list
//! start together, and each start returns once three members are Up; membership events arrive on
//! the event stream. Then one node leaves gracefully. (Three nodes in one process here, on fixed
//! ports of 127.0.0.1, so that the output is the same at every run.)
// ANCHOR: all
use std::time::Duration;

use casty::cluster::{ClusterEvent, ClusteredActorSystem, MembershipSettings};
use tokio::sync::mpsc;

const SEEDS: [&str; 3] = [
    "casty://task-queue@127.0.0.1:25531",
    "casty://task-queue@127.0.0.1:25532",
    "casty://task-queue@127.0.0.1:25533",
];

// ANCHOR: start
/// One node: every node runs the same code, only the port differs.
async fn start(port: u16) -> ClusteredActorSystem {
    ClusteredActorSystem::builder("task-queue")
        .host("127.0.0.1")
        .port(port)
        .seed_nodes(SEEDS)
        // Startup blocks until 3 nodes are Up.
        .required_quorum(3, Duration::from_secs(30))
        // Faster than the defaults, for a demo.
        .gossip_interval(Duration::from_millis(200))
        .membership(MembershipSettings::default().seed_node_timeout(Duration::from_secs(2)))
        .start()
        .await
        .expect("the cluster formed")
}
// ANCHOR_END: start

fn describe(e: &ClusterEvent) -> Option<String> {
    let (kind, m) = match e {
        ClusterEvent::MemberUp(m) => ("MemberUp", m),
        ClusterEvent::MemberLeft(m) => ("MemberLeft", m),
        ClusterEvent::MemberExited(m) => ("MemberExited", m),
        ClusterEvent::MemberRemoved { member, .. } => ("MemberRemoved", member),
        _ => return None,
    };
    let a = &m.node.address;
    Some(format!("{kind}: {}:{}", a.host(), a.port()))
}

#[tokio::main]
async fn main() {
    // ANCHOR: form
    let (node1, node2, node3) = tokio::join!(start(25531), start(25532), start(25533));
    println!(
        "all three nodes started: {} members Up",
        node1.cluster().members().len()
    );
    // ANCHOR_END: form

    // ANCHOR: events
    let (tx, mut events) = mpsc::unbounded_channel();
    // A new subscriber first gets the events that build the current view, then every change.
    node1.cluster().subscribe(move |e| {
        if let Some(line) = describe(e) {
            let _ = tx.send(line);
        }
    });
    for _ in 0..3 {
        println!("node 1: {}", events.recv().await.unwrap());
    }
    // ANCHOR_END: events
    let leader = node1.cluster().leader().unwrap();
    assert_eq!(Some(&leader), node2.cluster().leader().as_ref());
    println!(
        "leader: {}:{}",
        leader.address.host(),
        leader.address.port()
    );

    // ANCHOR: leave
    println!("node 3 leaves");
    node3.shutdown().await;
    loop {
        let line = events.recv().await.unwrap();
        println!("node 1: {line}");
        if line.starts_with("MemberRemoved") {
            break;
        }
    }
    // ANCHOR_END: leave
    println!("node 1 sees {} members", node1.cluster().members().len());
    node2.shutdown().await;
    node1.shutdown().await;
}
// ANCHOR_END: all
