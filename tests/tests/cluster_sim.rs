//! Whole clusters of real `ClusteredActorSystem`s in turmoil's simulated network and time:
//! every node is a turmoil host, remoting goes over `SimTransport`, and each node's random source
//! is seeded, so a run is decided by its seed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::cluster::{ClusteredActorSystem, Gossip, KeepMajority, MemberStatus, MembershipSettings};
use casty::config::FailureDetectorConfig;
use casty::testing::SimTransport;

/// Each node's latest view, by host name, as the hosts publish them.
type Views = Arc<Mutex<BTreeMap<String, Arc<Gossip>>>>;

fn node(host: &str, seeds: &[&str], seed: u64) -> casty::cluster::ClusteredActorSystemBuilder {
    ClusteredActorSystem::builder("sim")
        .host(host)
        .port(2551)
        .seed_nodes(seeds.iter().map(|h| format!("casty://sim@{h}:2551")))
        .transport(Arc::new(SimTransport))
        .random_seed(seed)
        .gossip_interval(Duration::from_millis(200))
        .heartbeat_interval(Duration::from_millis(100))
        .failure_detector(FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: Duration::from_millis(20),
            acceptable_heartbeat_pause: Duration::from_millis(300),
            first_heartbeat_estimate: Duration::from_millis(100),
        })
        .membership(
            MembershipSettings::default()
                .retry_interval(Duration::from_millis(200))
                .seed_node_timeout(Duration::from_secs(1)),
        )
        .downing(KeepMajority::default(), Duration::from_secs(1))
}

/// Runs `hosts` as turmoil hosts, each publishing its view into `views`.
fn add_hosts(sim: &mut turmoil::Sim<'_>, hosts: &[&'static str], views: &Views, seed: u64) {
    for (i, host) in hosts.iter().enumerate() {
        let views = views.clone();
        let seeds: Vec<&'static str> = hosts.to_vec();
        let host = *host;
        sim.host(host, move || {
            let views = views.clone();
            let seeds = seeds.clone();
            async move {
                let n = node(host, &seeds, seed.wrapping_mul(31).wrapping_add(i as u64))
                    .start()
                    .await?;
                loop {
                    views
                        .lock()
                        .unwrap()
                        .insert(host.to_string(), n.cluster().state());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
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

#[test]
fn three_nodes_form_one_cluster_in_simulated_time() {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .rng_seed(7)
        .build();
    let views: Views = Arc::default();
    add_hosts(&mut sim, &["node-1", "node-2", "node-3"], &views, 7);
    let v = views.clone();
    sim.client("check", async move {
        let start = tokio::time::Instant::now();
        while !converged_all_up(&v, 3) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Simulated time: the first seed waits its 1 s timeout, then a few gossip rounds.
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        Ok(())
    });
    sim.run().unwrap();
}
