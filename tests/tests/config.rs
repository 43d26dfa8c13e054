//! `casty.toml`: the seed's complete file, resolution order, environment overrides, every kind of
//! bad input, discovery, and what `ActorSystem::builder().config(..)` does at spawn.

use std::path::Path;
use std::time::Duration;

use casty::config::{
    discover, load_config, parse_str, parse_with_env, ConfigError, ConfigErrorKind as K, SeedNode,
    SupervisionConfig, MAX_DURATION,
};
use casty::testing::TestKit;
use casty::{
    ActorRestarted, ActorSystem, Behavior, Behaviors, Directive, Mailbox, Overflow, SpawnOptions,
};
use casty_tests::{Boom, T};
use proptest::prelude::*;

const SEED: &str = include_str!("../../examples/config/casty.toml");

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn the_seeds_complete_file_round_trips_into_the_structs() {
    let cfg = parse_str(SEED, None).unwrap();
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
    let cfg = parse_with_env(SEED, None, env).unwrap();
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
fn bad_environment_variables_name_the_variable() {
    let e =
        parse_with_env("", None, vec![("CASTY__CLUSTER__PROT".into(), "1".into())]).unwrap_err();
    assert_eq!(e.kind, K::UnknownKey);
    assert_eq!(e.env_var.as_deref(), Some("CASTY__CLUSTER__PROT"));
    assert!(
        e.to_string().contains("did you mean CASTY__CLUSTER__PORT?"),
        "{e}"
    );
    let e = parse_with_env(
        "",
        None,
        vec![("CASTY__CLUSTER__PORT".into(), "high".into())],
    )
    .unwrap_err();
    assert_eq!(e.kind, K::WrongType);
    assert_eq!(
        e.to_string(),
        "environment variable CASTY__CLUSTER__PORT: `cluster.port`: expected an integer, found string"
    );
}

/// Parses `text` as `casty.toml` and returns the error.
fn err(text: &str) -> ConfigError {
    parse_str(text, Some(Path::new("conf/casty.toml"))).unwrap_err()
}

#[test]
fn unknown_keys_suggest_the_closest_valid_key() {
    let e = err("[defaults.mailbox]\ncapacty = 10\n");
    assert_eq!(e.kind, K::UnknownKey);
    assert_eq!((e.line, e.column), (Some(2), Some(1)));
    assert_eq!(e.key, "defaults.mailbox.capacty");
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:1: `defaults.mailbox.capacty`: unknown key `capacty`\n  help: did you mean `defaults.mailbox.capacity`?"
    );
    let e = err("[clutser]\nport = 1\n");
    assert_eq!((e.kind, e.key.as_str()), (K::UnknownKey, "clutser"));
    assert!(e.to_string().contains("did you mean `cluster`?"), "{e}");
    let e = err("[actors.orders]\nmailbx = { capacity = 1 }\n");
    assert_eq!(e.key, "actors.\"orders\".mailbx");
    assert_eq!(e.line, Some(2));
}

#[test]
fn wrong_types_say_what_was_expected() {
    let e = err("[cluster]\nport = \"25520\"\n");
    assert_eq!(e.kind, K::WrongType);
    assert_eq!((e.line, e.column), (Some(2), Some(8)));
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:8: `cluster.port`: expected an integer, found string"
    );
    let e = err("[cluster]\nroles = [\"a\", 1]\n");
    assert_eq!((e.kind, e.column), (K::WrongType, Some(15)));
    let e = err("defaults = 3\n");
    assert_eq!((e.kind, e.key.as_str()), (K::WrongType, "defaults"));
}

#[test]
fn negative_and_zero_capacities_are_refused() {
    let e = err("[defaults.mailbox]\ncapacity = -5\n");
    assert_eq!(e.kind, K::OutOfRange);
    assert_eq!((e.line, e.column), (Some(2), Some(12)));
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:12: `defaults.mailbox.capacity`: must be between 1 and 1000000000, found -5\n  help: use a positive number, e.g. `5`"
    );
    let e = err("[actors.x]\nmailbox = { capacity = 0 }\n");
    assert_eq!(
        (e.kind, e.key.as_str()),
        (K::OutOfRange, "actors.\"x\".mailbox.capacity")
    );
    let e = err("[cluster]\nport = 70000\n");
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:8: `cluster.port`: must be between 0 and 65535, found 70000"
    );
    let e = err("[cluster.gossip]\ninterval = -1.0\n");
    assert_eq!(e.kind, K::OutOfRange);
}

#[test]
fn durations_too_large_for_a_duration_are_errors_naming_the_key_and_line() {
    // The inputs that used to panic in `Duration::from_secs_f64`.
    let e = err("[cluster.gossip]\ninterval = 1e20\n");
    assert_eq!(e.kind, K::OutOfRange);
    assert_eq!((e.line, e.column), (Some(2), Some(12)));
    assert_eq!(e.key, "cluster.gossip.interval");
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:12: `cluster.gossip.interval`: must be between 0 and 3153600000 seconds (100 years), found 1e20"
    );
    let e = err("[cluster.failure_detector]\nthreshold = 8.0\nmin_std_deviation_ms = 1e300\n");
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:3:24: `cluster.failure_detector.min_std_deviation_ms`: must be between 0 and 3153600000000 ms (100 years), found 1e300"
    );
    // Every duration key, in the defaults, in an actor override, and written as an integer.
    for (text, key, line) in [
        (
            "[cluster.heartbeat]\ninterval = 1e20",
            "cluster.heartbeat.interval",
            2,
        ),
        (
            "[cluster.heartbeat]\n\navailability_check_interval = 1e300",
            "cluster.heartbeat.availability_check_interval",
            3,
        ),
        (
            "[cluster.failure_detector]\nacceptable_heartbeat_pause_ms = 1e300",
            "cluster.failure_detector.acceptable_heartbeat_pause_ms",
            2,
        ),
        (
            "[cluster.failure_detector]\nfirst_heartbeat_estimate_ms = 1e20",
            "cluster.failure_detector.first_heartbeat_estimate_ms",
            2,
        ),
        (
            "[defaults.supervision]\nwithin_seconds = 100000000000000000000",
            "defaults.supervision.within_seconds",
            2,
        ),
        (
            "[defaults.replication]\nack_timeout = 1e20",
            "defaults.replication.ack_timeout",
            2,
        ),
        (
            "[actors.a]\nsupervision = { within_seconds = 1e300 }",
            "actors.\"a\".supervision.within_seconds",
            2,
        ),
        (
            "[actors.a]\nreplication = { ack_timeout = 1e20 }",
            "actors.\"a\".replication.ack_timeout",
            2,
        ),
    ] {
        let e = err(text);
        assert_eq!(
            (e.kind, e.key.as_str(), e.line),
            (K::OutOfRange, key, Some(line)),
            "{text}"
        );
        assert!(e.message.starts_with("must be between 0 and "), "{e}");
    }
    // Infinity and NaN are not durations either.
    for v in ["inf", "+inf", "nan", "-nan", "1e400"] {
        let e = err(&format!("[cluster.gossip]\ninterval = {v}\n"));
        assert_eq!((e.kind, e.line), (K::OutOfRange, Some(2)), "{v}: {e}");
    }
    // The longest accepted duration is exactly MAX_DURATION.
    let cfg = parse_str("[cluster.gossip]\ninterval = 3153600000\n", None).unwrap();
    assert_eq!(cfg.cluster.gossip.interval, MAX_DURATION);
    let cfg = parse_str(
        "[cluster.failure_detector]\nmin_std_deviation_ms = 3153600000000.0\n",
        None,
    )
    .unwrap();
    assert_eq!(cfg.cluster.failure_detector.min_std_deviation, MAX_DURATION);
    assert_eq!(
        err("[cluster.gossip]\ninterval = 3153600000.5\n").kind,
        K::OutOfRange
    );
}

#[test]
fn durations_too_large_in_environment_variables_name_the_variable() {
    let e = parse_with_env(
        SEED,
        None,
        vec![(
            "CASTY__CLUSTER__GOSSIP__INTERVAL".to_string(),
            "1e20".to_string(),
        )],
    )
    .unwrap_err();
    assert_eq!(e.kind, K::OutOfRange);
    assert_eq!(e.key, "cluster.gossip.interval");
    assert_eq!(
        e.env_var.as_deref(),
        Some("CASTY__CLUSTER__GOSSIP__INTERVAL")
    );
    assert_eq!(e.line, None); // the mistake is in the variable, not in the file
    assert_eq!(
        e.to_string(),
        "environment variable CASTY__CLUSTER__GOSSIP__INTERVAL: `cluster.gossip.interval`: must be between 0 and 3153600000 seconds (100 years), found 1e20"
    );
    let e = parse_with_env(
        "",
        None,
        vec![(
            "CASTY__CLUSTER__FAILURE_DETECTOR__FIRST_HEARTBEAT_ESTIMATE_MS".to_string(),
            "1e300".to_string(),
        )],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable CASTY__CLUSTER__FAILURE_DETECTOR__FIRST_HEARTBEAT_ESTIMATE_MS: `cluster.failure_detector.first_heartbeat_estimate_ms`: must be between 0 and 3153600000000 ms (100 years), found 1e300"
    );
    for var in [
        "CASTY__CLUSTER__HEARTBEAT__INTERVAL",
        "CASTY__CLUSTER__HEARTBEAT__AVAILABILITY_CHECK_INTERVAL",
        "CASTY__CLUSTER__FAILURE_DETECTOR__MIN_STD_DEVIATION_MS",
        "CASTY__CLUSTER__FAILURE_DETECTOR__ACCEPTABLE_HEARTBEAT_PAUSE_MS",
        "CASTY__DEFAULTS__SUPERVISION__WITHIN_SECONDS",
        "CASTY__DEFAULTS__REPLICATION__ACK_TIMEOUT",
    ] {
        let e = parse_with_env("", None, vec![(var.to_string(), "1e300".to_string())]).unwrap_err();
        assert_eq!(
            (e.kind, e.env_var.as_deref()),
            (K::OutOfRange, Some(var)),
            "{e}"
        );
    }
}

#[test]
fn capacities_above_the_maximum_are_refused() {
    assert_eq!(Mailbox::MAX_CAPACITY, 1_000_000_000);
    let e = err("[defaults.mailbox]\ncapacity = 18446744073709551615\n");
    assert_eq!(e.kind, K::OutOfRange);
    assert_eq!((e.line, e.column), (Some(2), Some(12)));
    assert_eq!(e.key, "defaults.mailbox.capacity");
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:12: `defaults.mailbox.capacity`: must be between 1 and 1000000000, found 18446744073709551615\n  help: the largest capacity is 1000000000; leave `capacity` out for an unbounded mailbox"
    );
    let e = err("[actors.big]\nmailbox = { capacity = 1000000001 }\n");
    assert_eq!(
        (e.kind, e.key.as_str(), e.line),
        (K::OutOfRange, "actors.\"big\".mailbox.capacity", Some(2))
    );
    // Beyond 64 bits, and through the environment.
    assert_eq!(
        err("[defaults.mailbox]\ncapacity = 18446744073709551616\n").kind,
        K::OutOfRange
    );
    let e = parse_with_env(
        "",
        None,
        vec![(
            "CASTY__DEFAULTS__MAILBOX__CAPACITY".to_string(),
            "18446744073709551615".to_string(),
        )],
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.env_var.as_deref()),
        (K::OutOfRange, Some("CASTY__DEFAULTS__MAILBOX__CAPACITY"))
    );
    // The maximum itself is accepted, and so is a large bound that is normal: 1,000,000.
    let cfg = parse_str("[defaults.mailbox]\ncapacity = 1000000000\n", None).unwrap();
    assert_eq!(cfg.defaults.mailbox.capacity, Some(Mailbox::MAX_CAPACITY));
    assert_eq!(
        cfg.defaults.mailbox.to_mailbox().capacity(),
        Some(Mailbox::MAX_CAPACITY)
    );
    let cfg = parse_str("[defaults.mailbox]\ncapacity = 1_000_000\n", None).unwrap();
    assert_eq!(cfg.defaults.mailbox.capacity, Some(1_000_000));
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

// ---------------------------------------------------------------- fuzzing the loader

/// Every key of the file format, with a valid value: the seed's file plus the override keys it
/// leaves out.
fn fuzz_base() -> String {
    format!(
        "{SEED}\n[actors.\"fuzz-\\\\d+\"]\nsupervision = {{ strategy = \"restart\", max_restarts = 5, within_seconds = 10.0 }}\nreplication = {{ replicas = 3, min_acks = 1, ack_timeout = 2.5 }}\nsharding = {{ num_shards = 16 }}\n"
    )
}

/// Values that have broken loaders: out of every range, not numbers, too long, wrong types.
const EXTREMES: &[&str] = &[
    "1e20",
    "1e300",
    "-1e300",
    "1e400",
    "-1",
    "-1.0",
    "-0.0",
    "0",
    "0.0",
    "1e-300",
    "5e-324",
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "65536",
    "1000000001",
    "3153600000.5",
    "3153600000000.5",
    "340282366920938463463374607431768211456",
    "0x7fffffffffffffff",
    "0xffffffffffffffffffffffffffffffffff",
    "0o777",
    "0b1",
    "1_000_000",
    "true",
    "\"\"",
    "\"big\"",
    "[]",
    "[1, 2]",
    "{}",
    "{ capacity = 1e300 }",
    "1979-05-27T07:32:00Z",
    "07:32:00",
];

/// The variables an environment override may set.
const ENV_VARS: &[&str] = &[
    "CASTY__SYSTEM__NAME",
    "CASTY__DEFAULTS__MAILBOX__CAPACITY",
    "CASTY__DEFAULTS__MAILBOX__STRATEGY",
    "CASTY__DEFAULTS__SUPERVISION__STRATEGY",
    "CASTY__DEFAULTS__SUPERVISION__MAX_RESTARTS",
    "CASTY__DEFAULTS__SUPERVISION__WITHIN_SECONDS",
    "CASTY__DEFAULTS__SHARDING__NUM_SHARDS",
    "CASTY__DEFAULTS__REPLICATION__REPLICAS",
    "CASTY__DEFAULTS__REPLICATION__MIN_ACKS",
    "CASTY__DEFAULTS__REPLICATION__ACK_TIMEOUT",
    "CASTY__CLUSTER__HOST",
    "CASTY__CLUSTER__PORT",
    "CASTY__CLUSTER__SEED_NODES",
    "CASTY__CLUSTER__ROLES",
    "CASTY__CLUSTER__GOSSIP__INTERVAL",
    "CASTY__CLUSTER__HEARTBEAT__INTERVAL",
    "CASTY__CLUSTER__HEARTBEAT__AVAILABILITY_CHECK_INTERVAL",
    "CASTY__CLUSTER__FAILURE_DETECTOR__THRESHOLD",
    "CASTY__CLUSTER__FAILURE_DETECTOR__MAX_SAMPLE_SIZE",
    "CASTY__CLUSTER__FAILURE_DETECTOR__MIN_STD_DEVIATION_MS",
    "CASTY__CLUSTER__FAILURE_DETECTOR__ACCEPTABLE_HEARTBEAT_PAUSE_MS",
    "CASTY__CLUSTER__FAILURE_DETECTOR__FIRST_HEARTBEAT_ESTIMATE_MS",
];

/// One change to a valid file. Indexes are taken modulo what they index.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the n-th number with an extreme value.
    Number(usize, usize),
    /// Replace the n-th number with a string of 1 to 400 digits, or a long quoted string.
    LongValue(usize, usize, bool),
    /// Replace the n-th quoted string's contents.
    Text(usize, String),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Insert text at a character position.
    Insert(usize, String),
    /// Cut the file at a character position.
    Truncate(usize),
}

/// Byte ranges of the numbers (and of `inf`/`nan`) in `text`.
fn numbers(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'-'))
            && !text[..i].ends_with("\\"); // not the `d` of `\\d`
        if starts {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"._+-".contains(&b[i])) {
                i += 1;
            }
            out.push(start..i);
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of the contents of `"..."` strings in `text`.
fn strings(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut open = None;
    for (i, c) in text.char_indices() {
        if c == '"' {
            match open.take() {
                None => open = Some(i + 1),
                Some(s) => out.push(s..i),
            }
        }
    }
    out
}

fn char_boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn mutate(text: &mut String, m: &Mutation) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match m {
        Mutation::Number(n, v) => {
            let nums = numbers(text);
            if !nums.is_empty() {
                text.replace_range(nums[n % nums.len()].clone(), EXTREMES[v % EXTREMES.len()]);
            }
        }
        Mutation::LongValue(n, len, quoted) => {
            let nums = numbers(text);
            if !nums.is_empty() {
                let v = if *quoted {
                    format!("\"{}\"", "x".repeat(len * 250))
                } else {
                    "9".repeat(len % 400 + 1)
                };
                text.replace_range(nums[n % nums.len()].clone(), &v);
            }
        }
        Mutation::Text(n, s) => {
            let strs = strings(text);
            if !strs.is_empty() {
                text.replace_range(strs[n % strs.len()].clone(), s);
            }
        }
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i % lines.len());
            *text = lines.join("\n");
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let l = lines[i % lines.len()].clone();
            lines.insert(i % lines.len(), l);
            *text = lines.join("\n");
        }
        Mutation::SwapLines(i, j) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(i % n, j % n);
            *text = lines.join("\n");
        }
        Mutation::Insert(at, s) => {
            let at = char_boundary(text, *at);
            text.insert_str(at, s);
        }
        Mutation::Truncate(at) => {
            let at = char_boundary(text, *at);
            text.truncate(at);
        }
        _ => {}
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<usize>()).prop_map(|(n, v)| Mutation::Number(n, v)),
        1 => (any::<usize>(), 0usize..400, any::<bool>())
            .prop_map(|(n, l, q)| Mutation::LongValue(n, l, q)),
        1 => (any::<usize>(), any::<String>()).prop_map(|(n, s)| Mutation::Text(n, s)),
        1 => any::<usize>().prop_map(Mutation::DeleteLine),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::SwapLines(i, j)),
        1 => (any::<usize>(), any::<String>()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        1 => (any::<usize>(), "[\\[\\]{}=\",.#\\\\ \\n0-9a-z_-]{1,8}")
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn env_override() -> impl Strategy<Value = (String, String)> {
    let var = prop_oneof![
        4 => (0..ENV_VARS.len()).prop_map(|i| ENV_VARS[i].to_string()),
        1 => "CASTY__[A-Za-z_]{0,40}",
        1 => any::<String>(),
    ];
    let value = prop_oneof![
        4 => (0..EXTREMES.len()).prop_map(|i| EXTREMES[i].to_string()),
        1 => any::<String>(),
        1 => (0usize..400).prop_map(|n| "9".repeat(n + 1)),
    ];
    (var, value)
}

/// What a loaded configuration must satisfy, whatever the input.
fn check_loaded(cfg: &casty::config::CastyConfig) {
    let durations = [
        cfg.cluster.gossip.interval,
        cfg.cluster.heartbeat.interval,
        cfg.cluster.heartbeat.availability_check_interval,
        cfg.cluster.failure_detector.min_std_deviation,
        cfg.cluster.failure_detector.acceptable_heartbeat_pause,
        cfg.cluster.failure_detector.first_heartbeat_estimate,
        cfg.defaults.replication.ack_timeout,
    ];
    assert!(
        durations.iter().all(|d| *d <= MAX_DURATION),
        "{durations:?}"
    );
    assert!(cfg.cluster.failure_detector.threshold.is_finite());
    for name in [
        "orders",
        "my-worker",
        "child-7",
        "fuzz-1",
        "other",
        "_internal",
    ] {
        let s = cfg.resolve(name);
        if let Some(c) = s.mailbox.capacity {
            assert!((1..=Mailbox::MAX_CAPACITY).contains(&c), "{c}");
        }
        assert_eq!(s.mailbox.to_mailbox().capacity(), s.mailbox.capacity);
        assert!(s.replication.ack_timeout <= MAX_DURATION);
        assert!(s.replication.min_acks <= s.replication.replicas);
        if let Some(sup) = s.supervision {
            assert!(sup.within <= MAX_DURATION);
            let _ = sup.to_strategy();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A mutated file, with mutated environment overrides, loads or is refused with an error
    /// that says where; the loader never panics.
    #[test]
    fn mutated_files_and_overrides_give_an_error_or_a_value_never_a_panic(
        mutations in proptest::collection::vec(mutation(), 1..5),
        env in proptest::collection::vec(env_override(), 0..3),
    ) {
        let mut text = fuzz_base();
        for m in &mutations {
            mutate(&mut text, m);
        }
        match parse_with_env(&text, Some(Path::new("casty.toml")), env.clone()) {
            Ok(cfg) => check_loaded(&cfg),
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                let lines = text.split('\n').count();
                prop_assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "{e}");
                // An error in a variable names it, an error in the file gives its line.
                prop_assert!(e.env_var.is_some() || e.line.is_some() || e.kind == K::Io, "{e}");
                let _ = e.to_string();
            }
        }
    }

    /// Any text at all, not only near-valid files.
    #[test]
    fn arbitrary_text_gives_an_error_or_a_value_never_a_panic(text in any::<String>()) {
        if let Ok(cfg) = parse_str(&text, None) {
            check_loaded(&cfg);
        }
    }
}

#[test]
fn the_fuzzed_base_file_is_valid_and_its_numbers_are_found() {
    // Guards the fuzz test: it mutates a file that loads, and the mutations reach every value (and
    // the numbers in a comment and in the host, which makes no difference).
    let base = fuzz_base();
    let cfg = parse_str(&base, None).unwrap();
    assert_eq!(cfg.resolve("fuzz-3").sharding.num_shards, 16);
    let nums: Vec<&str> = numbers(&base).into_iter().map(|r| &base[r]).collect();
    assert_eq!(
        nums,
        [
            "0.6", "1000", "3", "60.0", "256", "2", "1", "5.0", "0.0.0.0", "25520", "25520",
            "25520", "1.0", "0.5", "2.0", "8.0", "200", "100.0", "0.0", "1000.0", "512", "3", "2",
            "5000", "100", "5", "10.0", "3", "1", "2.5", "16"
        ]
    );
}

#[test]
fn min_acks_above_replicas_is_refused() {
    let e = err("[defaults.replication]\nreplicas = 2\nmin_acks = 3\n");
    assert_eq!(e.kind, K::MinAcksExceedReplicas);
    assert_eq!((e.line, e.column), (Some(3), Some(12)));
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:3:12: `defaults.replication.min_acks`: min_acks (3) is greater than replicas (2): a write could never be acknowledged\n  help: set min_acks to at most 2"
    );
    // Against the inherited default replicas (2).
    let e = err("[actors.orders]\nreplication = { min_acks = 5 }\n");
    assert_eq!(e.kind, K::MinAcksExceedReplicas);
    assert_eq!(e.key, "actors.\"orders\".replication.min_acks");
    assert_eq!(e.line, Some(2));
}

#[test]
fn invalid_patterns_are_refused() {
    let e = err("[actors.\"child-(\\\\d+\"]\nmailbox = { capacity = 1 }\n");
    assert_eq!(e.kind, K::InvalidPattern);
    assert_eq!((e.line, e.column), (Some(1), Some(9)));
    assert!(
        e.message
            .starts_with("`child-(\\d+` is not a valid pattern"),
        "{e}"
    );
}

#[test]
fn unknown_strategies_list_the_valid_ones() {
    let e = err("[defaults.mailbox]\nstrategy = \"drop_newest\"\n");
    assert_eq!(e.kind, K::UnknownStrategy);
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:12: `defaults.mailbox.strategy`: unknown strategy `drop_newest`\n  help: did you mean `drop_new`? valid strategies: `drop_new`, `drop_oldest`, `backpressure`"
    );
    let e = err("[defaults.supervision]\nstrategy = \"resume-ish\"\n");
    assert!(
        e.to_string()
            .ends_with("valid strategies: `restart`, `stop`, `escalate`"),
        "{e}"
    );
}

#[test]
fn mailbox_strategy_backpressure_and_reject_both_parse_to_the_core_reject_overflow() {
    for name in ["backpressure", "reject"] {
        let cfg = parse_str(
            &format!("[defaults.mailbox]\ncapacity = 4\nstrategy = \"{name}\"\n"),
            None,
        )
        .unwrap();
        assert_eq!(cfg.defaults.mailbox.overflow, Overflow::Reject, "{name}");
        assert_eq!(
            cfg.defaults.mailbox.to_mailbox(),
            Mailbox::bounded(4, Overflow::Reject)
        );
    }
}

#[test]
fn a_configured_supervision_strategy_cannot_be_resume() {
    let e = err("[defaults.supervision]\nstrategy = \"resume\"\n");
    assert_eq!(e.kind, K::UnknownStrategy);
}

#[test]
fn malformed_seed_nodes_are_refused() {
    let e = err("[cluster]\nseed_nodes = [\"node1:25520\", \"node2\"]\n");
    assert_eq!(e.kind, K::BadSeedNode);
    assert_eq!((e.line, e.column), (Some(2), Some(30)));
    assert_eq!(
        e.to_string(),
        "conf/casty.toml:2:30: `cluster.seed_nodes`: seed node `node2` is not `host:port`\n  help: write it as `host:port` with a port from 0 to 65535, e.g. `node1:25520`"
    );
    assert_eq!(
        err("[cluster]\nseed_nodes = [\"n:99999\"]\n").kind,
        K::BadSeedNode
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = err("[system]\nname = \n");
    assert_eq!(e.kind, K::Syntax);
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with("conf/casty.toml:2:"), "{e}");
    let e = err("[system]\nname = \"a\"\nname = \"b\"\n");
    assert_eq!((e.kind, e.line), (K::Syntax, Some(3)));
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
    let cfg = parse_str(SEED, None).unwrap();
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
