//! Fuzzing the `casty.toml` loader: mutated files and environment overrides, and arbitrary text,
//! load or are refused with an error that says where; the loader never panics.

use std::path::Path;

use casty::config::{parse_str, parse_with_env, ConfigErrorKind as K, MAX_DURATION};
use casty::Mailbox;
use casty_tests::FULL_CONFIG_FILE;
use proptest::prelude::*;

/// Every key of the file format, with a valid value: the example file plus the override keys it
/// leaves out.
fn fuzz_base() -> String {
    format!(
        "{FULL_CONFIG_FILE}\n[actors.\"fuzz-\\\\d+\"]\nsupervision = {{ strategy = \"restart\", max_restarts = 5, within_seconds = 10.0 }}\nreplication = {{ replicas = 3, min_acks = 1, ack_timeout = 2.5 }}\nsharding = {{ num_shards = 16, role = \"fuzz\", passivate_idle = 30.0, buffer_size = 100, rebalance_interval = 10.0, rebalance_threshold = 2, max_simultaneous_rebalance = 3, handoff_timeout = 60.0, retry_interval = 2.0, down_removal_margin = 20.0 }}\n"
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
    "CASTY__DEFAULTS__SHARDING__ROLE",
    "CASTY__DEFAULTS__SHARDING__PASSIVATE_IDLE",
    "CASTY__DEFAULTS__SHARDING__BUFFER_SIZE",
    "CASTY__DEFAULTS__SHARDING__REBALANCE_INTERVAL",
    "CASTY__DEFAULTS__SHARDING__REBALANCE_THRESHOLD",
    "CASTY__DEFAULTS__SHARDING__MAX_SIMULTANEOUS_REBALANCE",
    "CASTY__DEFAULTS__SHARDING__HANDOFF_TIMEOUT",
    "CASTY__DEFAULTS__SHARDING__RETRY_INTERVAL",
    "CASTY__DEFAULTS__SHARDING__DOWN_REMOVAL_MARGIN",
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
        let sh = &s.sharding;
        assert!(sh.num_shards >= 1);
        assert!((1..=Mailbox::MAX_CAPACITY).contains(&sh.buffer_size));
        assert!(sh.rebalance_threshold >= 1);
        for d in [sh.rebalance_interval, sh.handoff_timeout, sh.retry_interval] {
            assert!(!d.is_zero() && d <= MAX_DURATION, "{d:?}");
        }
        if let Some(d) = sh.passivate_idle {
            assert!(!d.is_zero() && d <= MAX_DURATION, "{d:?}");
        }
        assert!(sh.down_removal_margin <= MAX_DURATION);
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
    let sharding = cfg.resolve("fuzz-3").sharding;
    assert_eq!(sharding.num_shards, 16);
    assert_eq!(sharding.down_removal_margin.as_secs(), 20);
    let nums: Vec<&str> = numbers(&base).into_iter().map(|r| &base[r]).collect();
    assert_eq!(
        nums,
        [
            "0.6", "1000", "3", "60.0", "256", "2", "1", "5.0", "0.0.0.0", "25520", "25520",
            "25520", "1.0", "0.5", "2.0", "8.0", "200", "100.0", "0.0", "1000.0", "512", "3", "2",
            "5000", "100", "5", "10.0", "3", "1", "2.5", "16", "30.0", "100", "10.0", "2", "3",
            "60.0", "2.0", "20.0"
        ]
    );
}
