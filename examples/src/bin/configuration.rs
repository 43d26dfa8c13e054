//! Ports the Casty (Python) example "Configuration": load `casty.toml`, and let it shape the actors
//! the system spawns.
use std::path::Path;

use casty::config::{load_config, ClusterConfig};
use casty::{ActorSystem, Behaviors};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // ANCHOR: load
    // `load_config(None)` would walk up from the current directory to the nearest casty.toml.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/casty.toml");
    let config = match load_config(Some(&file)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}"); // e.g. "casty.toml:7:12: `defaults.mailbox.capacity`: ..."
            std::process::exit(2);
        }
    };
    let system = ActorSystem::builder().config(config.clone()).build();
    // ANCHOR_END: load
    println!("system: {}", system.name());

    // ANCHOR: spawn
    for name in ["orders", "my-worker", "child-7", "reports"] {
        let r = system
            .spawn(Behaviors::ignore::<String>(), name)
            .expect("spawn");
        let s = config.resolve(name);
        println!(
            "{name}: mailbox {:?}, supervision {:?}, shards {}, replicas {}/{} (pattern {:?})",
            r.mailbox().and_then(|m| m.capacity()),
            s.supervision.map(|s| s.directive),
            s.sharding.num_shards,
            s.replication.min_acks,
            s.replication.replicas,
            s.matched.unwrap_or_default(),
        );
    }
    // ANCHOR_END: spawn

    // ANCHOR: cluster
    // For a clustered system: the [cluster] section, with programmatic overrides on top.
    let cluster = ClusterConfig::from_config(&config)
        .host("127.0.0.1")
        .port(0);
    let seeds: Vec<String> = cluster.seed_nodes.iter().map(ToString::to_string).collect();
    println!(
        "cluster: {}:{} seeds {:?} roles {:?} gossip {:?} phi {}",
        cluster.host,
        cluster.port,
        seeds,
        cluster.roles,
        cluster.gossip.interval,
        cluster.failure_detector.threshold
    );
    // ANCHOR_END: cluster
    system.shutdown().await;
}
