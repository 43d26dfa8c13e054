//! `casty.toml` loading: the example's complete file, defaults, pattern resolution order,
//! environment overrides, discovery, and what `ActorSystem::builder().config(..)` does at spawn.
//! Bad input is in `config_errors.rs`, the fuzzed loader in `config_fuzz.rs`.

use std::time::Duration;

use casty::config::{
    discover, load_config, parse_str, parse_with_env, ConfigErrorKind as K, SeedNode,
    SupervisionConfig,
};
use casty::testing::TestKit;
use casty::{
    ActorRestarted, ActorSystem, Behavior, Behaviors, Directive, Mailbox, Overflow, SpawnOptions,
};
use casty_tests::{Boom, FULL_CONFIG_FILE, T};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn the_complete_example_file_round_trips_into_the_structs() {
    let cfg = parse_str(FULL_CONFIG_FILE, None).unwrap();
    assert_eq!(cfg.system.name, "my-app");
    let d = &cfg.defaults;
    assert_eq!(d.mailbox.capacity, Some(1000));
    assert_eq!(d.mailbox.overflow, Overflow::DropNew);
    assert_eq!(
        d.supervision,
        Some(SupervisionConfig {
            directive: Directive::Restart,
            max_restarts: 3,
            within: secs(60.0),
        })
    );
    assert_eq!(d.sharding.num_shards, 256);
    assert_eq!(d.replication.replicas, 2);
    assert_eq!(d.replication.min_acks, 1);
    assert_eq!(d.replication.ack_timeout, secs(5.0));

    let c = &cfg.cluster;
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.port, 25520);
    assert_eq!(
        c.seed_nodes,
        vec![
            SeedNode {
                host: "node1".into(),
                port: 25520
            },
            SeedNode {
                host: "node2".into(),
                port: 25520
            },
        ]
    );
    assert_eq!(c.roles, vec!["worker".to_string()]);
    assert_eq!(c.gossip.interval, secs(1.0));
    assert_eq!(c.heartbeat.interval, secs(0.5));
    assert_eq!(c.heartbeat.availability_check_interval, secs(2.0));
    let fd = &c.failure_detector;
    assert_eq!(fd.threshold, 8.0);
    assert_eq!(fd.max_sample_size, 200);
    assert_eq!(fd.min_std_deviation, Duration::from_millis(100));
    assert_eq!(fd.acceptable_heartbeat_pause, Duration::ZERO);
    assert_eq!(fd.first_heartbeat_estimate, Duration::from_millis(1000));

    // File order is kept.
    let patterns: Vec<&str> = cfg.actors.iter().map(|a| a.pattern.as_str()).collect();
    assert_eq!(patterns, ["orders", "my-worker", "child-\\d+"]);

    let orders = cfg.resolve("orders");
    assert_eq!(orders.sharding.num_shards, 512);
    assert_eq!(
        (orders.replication.replicas, orders.replication.min_acks),
        (3, 2)
    );
    assert_eq!(orders.replication.ack_timeout, secs(5.0)); // inherited
    assert_eq!(orders.mailbox.capacity, Some(1000)); // inherited

    let w = cfg.resolve("my-worker");
    assert_eq!(w.mailbox.capacity, Some(5000));
    assert_eq!(w.mailbox.overflow, Overflow::Reject);
    let sup = w.supervision.unwrap();
    assert_eq!(sup.directive, Directive::Stop);
    assert_eq!((sup.max_restarts, sup.within), (3, secs(60.0))); // inherited

    let child = cfg.resolve("child-42");
    assert_eq!(child.mailbox.capacity, Some(100));
    assert_eq!(child.mailbox.overflow, Overflow::DropOldest);
    assert_eq!(child.matched.as_deref(), Some("child-\\d+"));
}

#[test]
fn a_minimal_file_and_no_file_use_the_defaults() {
    let cfg = parse_str("[system]\nname = \"my-app\"\n", None).unwrap();
    assert_eq!(cfg.system.name, "my-app");
    let none = parse_str("", None).unwrap();
    assert_eq!(none.system.name, "casty");
    for c in [&cfg, &none] {
        let s = c.resolve("anything");
        assert_eq!(s.mailbox.capacity, None); // unbounded, as in code
        assert_eq!(s.supervision, None); // the runtime default (stop)
        assert_eq!(s.sharding.num_shards, 256);
        assert_eq!(c.cluster.port, 25520);
    }
}

#[test]
fn patterns_fully_match_in_file_order_and_skip_internal_names() {
    let cfg = parse_str(
        r#"
[defaults.mailbox]
capacity = 10

[actors."worker-\\d+"]
mailbox = { capacity = 1 }

[actors."worker-.*"]
mailbox = { capacity = 2 }

[actors.orders]
mailbox = { capacity = 3 }

[actors."_.*"]
mailbox = { capacity = 4 }
"#,
        None,
    )
    .unwrap();
    assert_eq!(cfg.resolve("worker-7").mailbox.capacity, Some(1)); // first match wins
    assert_eq!(cfg.resolve("worker-x").mailbox.capacity, Some(2));
    assert_eq!(cfg.resolve("orders").mailbox.capacity, Some(3));
    assert_eq!(cfg.resolve("orders-2").mailbox.capacity, Some(10)); // full match only
    assert_eq!(cfg.resolve("my-orders").mailbox.capacity, Some(10));
    assert_eq!(cfg.resolve("_internal").mailbox.capacity, None); // never matched, not even defaults
    assert_eq!(cfg.resolve("$1").mailbox.capacity, None);
}

#[test]
fn environment_variables_override_the_file() {
    let env = vec![
        ("CASTY__CLUSTER__PORT".to_string(), "25521".to_string()),
        ("CASTY__CLUSTER__HOST".to_string(), "10.0.0.5".to_string()),
        (
            "CASTY__CLUSTER__SEED_NODES".to_string(),
            r#"["a:1", "b:2"]"#.to_string(),
        ),
        (
            "CASTY__DEFAULTS__MAILBOX__CAPACITY".to_string(),
            "7".to_string(),
        ),
        (
            "CASTY__CLUSTER__GOSSIP__INTERVAL".to_string(),
            "0.25".to_string(),
        ),
        ("OTHER_VAR".to_string(), "ignored".to_string()),
    ];
    let cfg = parse_with_env(FULL_CONFIG_FILE, None, env).unwrap();
    assert_eq!(cfg.cluster.port, 25521);
    assert_eq!(cfg.cluster.host, "10.0.0.5");
    assert_eq!(cfg.cluster.seed_nodes.len(), 2);
    assert_eq!(cfg.defaults.mailbox.capacity, Some(7));
    assert_eq!(cfg.cluster.gossip.interval, secs(0.25));
    assert_eq!(cfg.resolve("orders").mailbox.capacity, Some(7));
    // Keys the file does not have can be set too.
    let cfg = parse_with_env(
        "",
        None,
        vec![("CASTY__SYSTEM__NAME".into(), "env-app".into())],
    )
    .unwrap();
    assert_eq!(cfg.system.name, "env-app");
}

#[test]
fn discovery_walks_up_and_explicit_paths_must_exist() {
    let root = std::env::temp_dir().join(format!("casty-config-{}", std::process::id()));
    let nested = root.join("a/b/c");
    std::fs::create_dir_all(&nested).unwrap();
    assert_eq!(
        discover(&nested),
        None::<std::path::PathBuf>.or_else(|| discover(&root))
    );
    std::fs::write(root.join("a/casty.toml"), "[system]\nname = \"found\"\n").unwrap();
    let found = discover(&nested).unwrap();
    assert_eq!(found, root.join("a/casty.toml"));
    let cfg = load_config(Some(&found)).unwrap();
    assert_eq!(cfg.system.name, "found");
    let e = load_config(Some(&root.join("missing.toml"))).unwrap_err();
    assert_eq!(e.kind, K::Io);
    assert!(e.to_string().contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn many_actors_with_a_large_bounded_mailbox_from_the_file_spawn_and_work() {
    // Before bounded mailboxes grew with their contents, each of these allocated 1,000,000 slots
    // at spawn (about 24 MB each, 4.8 GB in all).
    let cfg = parse_str(
        "[defaults.mailbox]\ncapacity = 1000000\nstrategy = \"backpressure\"\n",
        None,
    )
    .unwrap();
    let kit = TestKit::with_system(ActorSystem::builder().config(cfg).build());
    let mut probe = kit.probe::<u32>();
    let mut refs = Vec::new();
    for i in 0..200u32 {
        let to = probe.actor_ref();
        let r = kit
            .system()
            .spawn(
                Behaviors::receive(move |_ctx, n: u32| {
                    to.tell(n);
                    Behaviors::same()
                }),
                &format!("big-{i}"),
            )
            .unwrap();
        assert_eq!(
            r.mailbox(),
            Some(Mailbox::bounded(1_000_000, Overflow::Reject))
        );
        refs.push(r);
    }
    for (i, r) in refs.iter().enumerate() {
        r.tell(i as u32);
    }
    let mut got: Vec<u32> = Vec::new();
    for _ in 0..refs.len() {
        got.push(probe.expect_message(T).await);
    }
    got.sort_unstable();
    assert_eq!(got, (0..200).collect::<Vec<u32>>());
    kit.shutdown().await;
}

// ---------------------------------------------------------------- applied at spawn

/// A message that makes `flaky` fail.
#[derive(Debug, Clone, Copy)]
enum Cmd {
    Fail,
}
impl casty::Message for Cmd {}

fn flaky() -> Behavior<Cmd> {
    Behaviors::receive(|_ctx, c: Cmd| match c {
        Cmd::Fail => Err::<Behavior<Cmd>, _>(Boom::new("fail")),
    })
}

#[tokio::test]
async fn the_system_applies_mailboxes_and_supervision_at_spawn() {
    let cfg = parse_str(FULL_CONFIG_FILE, None).unwrap();
    let kit = TestKit::with_system(ActorSystem::builder().config(cfg).build());
    let s = kit.system();
    assert_eq!(s.name(), "my-app");

    let other = s.spawn(Behaviors::ignore::<u8>(), "other").unwrap();
    assert_eq!(
        other.mailbox(),
        Some(Mailbox::bounded(1000, Overflow::DropNew))
    );
    let w = s.spawn(Behaviors::ignore::<u8>(), "my-worker").unwrap();
    assert_eq!(w.mailbox(), Some(Mailbox::bounded(5000, Overflow::Reject)));
    // An explicit mailbox wins over the file.
    let explicit = s
        .spawn_with(
            Behaviors::ignore::<u8>(),
            "explicit",
            SpawnOptions::default().mailbox(Mailbox::unbounded()),
        )
        .unwrap();
    assert_eq!(explicit.mailbox(), Some(Mailbox::unbounded()));

    // Children are matched by their own name.
    let mut report = kit.probe::<Option<Mailbox>>();
    let to = report.actor_ref();
    s.spawn(
        Behaviors::setup(move |ctx| {
            let c = ctx.spawn(Behaviors::ignore::<u8>(), "child-7")?;
            to.tell(c.mailbox());
            Ok::<_, casty::SpawnError>(Behaviors::ignore::<u8>())
        }),
        "parent",
    )
    .unwrap();
    assert_eq!(
        report.expect_message(T).await,
        Some(Mailbox::bounded(100, Overflow::DropOldest))
    );

    // [defaults.supervision] restarts a failing actor...
    let mut restarted = kit.event_probe::<ActorRestarted>();
    let r = s.spawn(flaky(), "restarts").unwrap();
    r.tell(Cmd::Fail);
    assert_eq!(restarted.expect_message(T).await.path, *r.path());
    // "my-worker-2" does not fully match "my-worker": it gets the defaults, and is restarted.
    let st = s.spawn(flaky(), "my-worker-2").unwrap();
    assert_eq!(
        st.mailbox(),
        Some(Mailbox::bounded(1000, Overflow::DropNew))
    );
    st.tell(Cmd::Fail);
    assert_eq!(restarted.expect_message(T).await.path, *st.path());
    kit.shutdown().await;
}

#[tokio::test]
async fn code_supervision_wins_over_the_file_and_stop_overrides_apply() {
    let cfg = parse_str(
        "[defaults.supervision]\nstrategy = \"restart\"\n[actors.fragile]\nsupervision = { strategy = \"stop\" }\n",
        None,
    )
    .unwrap();
    let kit = TestKit::with_system(ActorSystem::builder().name("sup").config(cfg).build());
    assert_eq!(kit.system().name(), "sup"); // .name() wins over [system] name
    let mut probe = kit.probe::<()>();

    let fragile = kit.spawn(flaky(), "fragile");
    probe.watch(&fragile);
    fragile.tell(Cmd::Fail);
    probe.expect_terminated(&fragile, T).await;

    // Behaviors::supervise in code wins: this one stops although the file says restart.
    let stop_in_code = casty::SupervisorStrategy::new(1, Duration::from_secs(1))
        .decider(|_| casty::Directive::Stop);
    let coded = kit.spawn(Behaviors::supervise(flaky(), stop_in_code), "coded");
    probe.watch(&coded);
    coded.tell(Cmd::Fail);
    probe.expect_terminated(&coded, T).await;

    // The file's restart applies to the rest.
    let mut restarted = kit.event_probe::<ActorRestarted>();
    let plain = kit.spawn(flaky(), "plain");
    plain.tell(Cmd::Fail);
    assert_eq!(restarted.expect_message(T).await.path, *plain.path());
    kit.shutdown().await;
}
