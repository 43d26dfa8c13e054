//! `casty.toml` errors: every kind of bad input (unknown keys, wrong types, values out of range,
//! bad patterns, strategies and seed nodes, syntax errors), in the file and in environment
//! variables, each naming the key, its line and column or the variable, with a hint.

use std::path::Path;

use casty::config::{parse_str, parse_with_env, ConfigError, ConfigErrorKind as K, MAX_DURATION};
use casty::{Mailbox, Overflow};
use casty_tests::FULL_CONFIG_FILE;

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
        FULL_CONFIG_FILE,
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
