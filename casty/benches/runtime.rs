//! Runtime benchmarks W1–W6: casty written as its guide writes it, beside raw tokio and actix,
//! all measured in the same run.
//!
//! Run: `cargo bench -p casty --bench runtime`, or name whole workloads to run only those
//! (`cargo bench -p casty --bench runtime -- W2 W4`; `W1` does not select `W1b`).
//!
//! The workloads:
//! - **W1**: one producer tokio task tells 2,000,000 `Add(1)` to a counter, then asks it once for
//!   the total (which must be 2,000,000). Millions of messages per second.
//! - **W2**: one task asks an echo 200,000 times in sequence (`Echo(i)` answered with `i + 1`).
//!   Mean and median latency.
//! - **W3**: two actors bounce a count down from 1,000,000. Messages per second.
//! - **W4**: spawn 100,000 actors, tell each one message, stop each and wait for its `post_stop`:
//!   total time; and the resident memory per actor while all are alive and idle (growth of the
//!   process's RSS over the spawn, divided by 100,000). Each W4 measurement runs in a fresh child
//!   process of this bench, so that no implementation reuses memory another one freed.
//! - **W5**: 8 producer tasks tell 250,000 `Add(1)` each to one counter, then one ask for the
//!   total.
//! - **W6**: 1,000 pairs bounce a count 2,000 times each, on 1 and on 2 workers.
//! - **W1b, W3b, W4b, W5b** repeat W1, W3, W4 and W5 with bounded `drop_new` mailboxes that never
//!   fill: capacity 2,000,001 for W1b and W5b (room for every tell and the ask), 1,000 for W3b,
//!   `CASTY_BENCH_W4_CAPACITY` (default 1,000,000) for W4b; casty's functional form against raw
//!   tokio.
//!
//! The implementations, each measured in every round:
//! - **casty, `Behaviors::receive`**: the guide's functional state (`guide.rs`): the counter's
//!   `Add` returns `counter(count + x)`, asks go through `system.ask(&r, |reply_to| .., timeout)`;
//!   a player of W3 and W6 returns `playing(peer)` once it learns its peer (`common::hand_player`).
//! - **casty, `#[behavior]`**: the same actors written with the macro (`macro_form.rs`; the
//!   W3/W6 player is `common::macro_player`, shared with the macros bench).
//! - **raw tokio**: tasks, unbounded `mpsc` channels and `oneshot` replies, no framework
//!   (`raw.rs`); W2 is a plain `oneshot` round trip, with no timeout.
//! - **actix**: written as actix's documentation writes it (`actix_side.rs`), on as many arbiters
//!   as tokio has workers; that file says why this is the closest equivalent and where each actor
//!   is placed.
//!
//! casty and raw tokio run on a multi-thread tokio runtime with `CASTY_BENCH_WORKERS` workers
//! (default 2), from tasks spawned on it. Each figure is the median over `CASTY_BENCH_RUNS` rounds
//! (default 5); a round runs every implementation once, starting each round with the next
//! implementation, so that the machine's drift falls on all alike. Ratios are to raw tokio in the
//! same round, then the median over rounds. W6 runs once per worker count in
//! `CASTY_BENCH_W6_WORKERS` (default `1,2`).

use std::process::Command;
use std::time::Duration;

#[path = "runtime/actix_side.rs"]
mod actix_side;
#[allow(dead_code)] // the programs of the other benches
mod common;
#[path = "runtime/guide.rs"]
mod guide;
#[path = "runtime/macro_form.rs"]
mod macro_form;
#[path = "runtime/raw.rs"]
mod raw;

use casty::{Mailbox, Overflow};
use common::{bounce_casty_with, bounce_tokio, env_usize, hand_player, median, runtime, wanted};

const W1_N: u64 = 2_000_000;
const W2_N: u64 = 200_000;
const W3_HITS: u32 = 1_000_000;
const W4_N: usize = 100_000;
const W5_PRODUCERS: u64 = 8;
const W5_EACH: u64 = 250_000;
const W6_PAIRS: usize = 1_000;
const W6_HITS: u32 = 2_000;

/// The environment variable that makes this bench a W4 child process: `<implementation>:<workers>`.
const W4_CHILD: &str = "CASTY_BENCH_W4_CHILD";

/// The process's resident memory in bytes (Linux), or 0 where unknown.
pub(crate) fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Mean and median of latencies, in µs.
pub(crate) fn mean_p50(mut lat: Vec<Duration>) -> (f64, f64) {
    let mean = lat.iter().map(|d| d.as_secs_f64()).sum::<f64>() / lat.len() as f64 * 1e6;
    lat.sort();
    (mean, lat[lat.len() / 2].as_secs_f64() * 1e6)
}

/// A bounded `drop_new` mailbox of `capacity`.
fn bounded(capacity: usize) -> Mailbox {
    Mailbox::bounded(capacity, Overflow::DropNew)
}

/// The target the issue sets for casty's figure.
#[derive(Clone, Copy)]
enum Target {
    /// None.
    Not,
    /// casty / raw at least this.
    RatioAtLeast(f64),
    /// casty / raw at most this.
    RatioAtMost(f64),
    /// The figure itself at most this.
    AtMost(f64),
}

/// One figure a workload measures.
struct Figure {
    what: &'static str,
    unit: &'static str,
    target: Target,
}

/// Names of the implementations, as printed.
const CASTY: &str = "casty, Behaviors::receive";
const CASTY_MACRO: &str = "casty, #[behavior]";
const RAW: &str = "raw tokio";

/// One implementation of a workload: its name and one measurement of every figure.
type Run<'a> = (String, Box<dyn FnMut() -> Vec<f64> + 'a>);

/// Runs every implementation once per round, each round starting with the next one, then prints
/// each figure's median per implementation with its median ratio to raw tokio in the same round.
fn measure(name: &str, title: &str, figures: &[Figure], mut runs: Vec<Run<'_>>) {
    let rounds = env_usize("CASTY_BENCH_RUNS", 5).max(1);
    let k = runs.len();
    let raw = runs.iter().position(|(n, _)| n == RAW).expect("a raw line");
    let mut got: Vec<Vec<Vec<f64>>> = vec![Vec::new(); k];
    for round in 0..rounds {
        for j in 0..k {
            let i = (round + j) % k;
            got[i].push((runs[i].1)());
        }
    }
    println!("\n{name} {title}");
    for (f, figure) in figures.iter().enumerate() {
        println!("  {} [{}]", figure.what, figure.unit);
        for (i, (label, _)) in runs.iter().enumerate() {
            let value = median(got[i].iter().map(|v| v[f]).collect());
            let ratio = median((0..rounds).map(|r| got[i][r][f] / got[raw][r][f]).collect());
            let mut line = format!("    {label:<30} {value:>12.3}");
            if i != raw {
                line += &format!("   {ratio:>6.2}x raw");
                if label.starts_with("casty") {
                    line += &match figure.target {
                        Target::Not => String::new(),
                        Target::RatioAtLeast(t) => {
                            format!("   target >= {t}x: {}", met(ratio >= t))
                        }
                        Target::RatioAtMost(t) => {
                            format!("   target <= {t}x: {}", met(ratio <= t))
                        }
                        Target::AtMost(t) => {
                            format!("   target <= {t} {}: {}", figure.unit, met(value <= t))
                        }
                    };
                }
            }
            println!("{line}");
        }
    }
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "NOT MET"
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs one W4 measurement in a fresh child process of this bench; returns (seconds, bytes per
/// actor).
fn w4_in_child(implementation: &str, workers: usize) -> Vec<f64> {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(W4_CHILD, format!("{implementation}:{workers}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "W4 child {implementation} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// The W4 child: measures one implementation and prints "seconds bytes-per-actor".
fn w4_child(spec: &str) {
    let (implementation, workers) = spec.split_once(':').unwrap();
    let workers: usize = workers.parse().unwrap();
    let (secs, bytes) = match implementation {
        "actix" => actix_side::spawn_many(workers, W4_N),
        _ => {
            let rt = runtime(workers);
            match implementation {
                "casty" => guide::spawn_many(&rt, guide::greeted, Mailbox::unbounded(), W4_N),
                "macro" => guide::spawn_many(&rt, macro_form::greeted, Mailbox::unbounded(), W4_N),
                "bounded" => {
                    let cap = env_usize("CASTY_BENCH_W4_CAPACITY", 1_000_000);
                    guide::spawn_many(&rt, guide::greeted, bounded(cap), W4_N)
                }
                "raw" => raw::spawn_many(&rt, W4_N),
                other => panic!("unknown W4 implementation {other}"),
            }
        }
    };
    println!("{secs} {bytes}");
}

fn main() {
    if let Ok(spec) = std::env::var(W4_CHILD) {
        w4_child(&spec);
        return;
    }
    let want = wanted();
    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let rt = runtime(workers);
    let actix = format!("actix, {workers} arbiters");
    println!("casty runtime benchmarks");
    println!(
        "CPU: {} ({} logical CPUs); load average {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "{workers} tokio worker threads (actix: {workers} arbiters) unless a line says otherwise; \
         median of {} interleaved rounds; ratios are to raw tokio in the same round",
        env_usize("CASTY_BENCH_RUNS", 5)
    );

    let rate = |target| {
        [Figure {
            what: "throughput",
            unit: "M msg/s",
            target,
        }]
    };

    if want("W1") {
        measure(
            "W1",
            "one producer task tells 2,000,000 Add(1), then one ask for the total",
            &rate(Target::RatioAtLeast(0.8)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            guide::counter,
                            Mailbox::unbounded(),
                            1,
                            W1_N,
                        )]
                    }),
                ),
                (RAW.into(), Box::new(|| vec![raw::count(&rt, 1, W1_N)])),
                (
                    CASTY_MACRO.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            macro_form::counter,
                            Mailbox::unbounded(),
                            1,
                            W1_N,
                        )]
                    }),
                ),
                (
                    actix.clone(),
                    Box::new(|| vec![actix_side::count(workers, 1, W1_N)]),
                ),
            ],
        );
    }
    if want("W1b") {
        measure(
            "W1b",
            "as W1, the counter's mailbox bounded (2,000,001: room for all, drop_new)",
            &rate(Target::RatioAtLeast(0.8)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            guide::counter,
                            bounded(W1_N as usize + 1),
                            1,
                            W1_N,
                        )]
                    }),
                ),
                (RAW.into(), Box::new(|| vec![raw::count(&rt, 1, W1_N)])),
            ],
        );
    }
    if want("W2") {
        let two = |(mean, p50): (f64, f64)| vec![mean, p50];
        measure(
            "W2",
            "200,000 sequential asks, Echo(i) -> i + 1 (lower is better)",
            &[
                Figure {
                    what: "mean latency",
                    unit: "us",
                    target: Target::RatioAtMost(1.5),
                },
                Figure {
                    what: "p50 latency",
                    unit: "us",
                    target: Target::Not,
                },
            ],
            vec![
                (
                    CASTY.into(),
                    Box::new(|| two(guide::ask_echo(&rt, guide::echo, W2_N))),
                ),
                (RAW.into(), Box::new(|| two(raw::ask_echo(&rt, W2_N)))),
                (
                    CASTY_MACRO.into(),
                    Box::new(|| two(guide::ask_echo(&rt, macro_form::echo, W2_N))),
                ),
                (
                    actix.clone(),
                    Box::new(|| two(actix_side::ask_echo(workers, W2_N))),
                ),
            ],
        );
    }
    if want("W3") {
        measure(
            "W3",
            "two actors bounce a count 1,000,000 times",
            &rate(Target::RatioAtLeast(0.9)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![bounce_casty_with(
                            &rt,
                            1,
                            W3_HITS,
                            hand_player,
                            Mailbox::unbounded(),
                        )]
                    }),
                ),
                (RAW.into(), Box::new(|| vec![bounce_tokio(&rt, 1, W3_HITS)])),
                (
                    CASTY_MACRO.into(),
                    Box::new(|| {
                        vec![bounce_casty_with(
                            &rt,
                            1,
                            W3_HITS,
                            common::macro_player,
                            Mailbox::unbounded(),
                        )]
                    }),
                ),
                (
                    actix.clone(),
                    Box::new(|| vec![actix_side::bounce(workers, 1, W3_HITS)]),
                ),
            ],
        );
    }
    if want("W3b") {
        measure(
            "W3b",
            "as W3, both mailboxes bounded (1,000, drop_new)",
            &rate(Target::RatioAtLeast(0.9)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![bounce_casty_with(
                            &rt,
                            1,
                            W3_HITS,
                            hand_player,
                            bounded(1000),
                        )]
                    }),
                ),
                (RAW.into(), Box::new(|| vec![bounce_tokio(&rt, 1, W3_HITS)])),
            ],
        );
    }
    let w4_figures = [
        Figure {
            what: "spawn, one message each, stop each and await its post_stop",
            unit: "s",
            target: Target::RatioAtMost(1.5),
        },
        Figure {
            what: "resident memory per live idle actor",
            unit: "B",
            target: Target::AtMost(1000.0),
        },
    ];
    if want("W4") {
        measure(
            "W4",
            "100,000 actors, each measured in a fresh process (lower is better)",
            &w4_figures,
            vec![
                (CASTY.into(), Box::new(|| w4_in_child("casty", workers))),
                (RAW.into(), Box::new(|| w4_in_child("raw", workers))),
                (
                    CASTY_MACRO.into(),
                    Box::new(|| w4_in_child("macro", workers)),
                ),
                (actix.clone(), Box::new(|| w4_in_child("actix", workers))),
            ],
        );
    }
    if want("W4b") {
        let cap = env_usize("CASTY_BENCH_W4_CAPACITY", 1_000_000);
        measure(
            "W4b",
            &format!("as W4, every mailbox bounded ({cap}, drop_new)"),
            &w4_figures,
            vec![
                (CASTY.into(), Box::new(|| w4_in_child("bounded", workers))),
                (RAW.into(), Box::new(|| w4_in_child("raw", workers))),
            ],
        );
    }
    if want("W5") {
        measure(
            "W5",
            "8 producer tasks tell 250,000 Add(1) each to one counter, then one ask",
            &rate(Target::RatioAtLeast(1.1)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            guide::counter,
                            Mailbox::unbounded(),
                            W5_PRODUCERS,
                            W5_EACH,
                        )]
                    }),
                ),
                (
                    RAW.into(),
                    Box::new(|| vec![raw::count(&rt, W5_PRODUCERS, W5_EACH)]),
                ),
                (
                    CASTY_MACRO.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            macro_form::counter,
                            Mailbox::unbounded(),
                            W5_PRODUCERS,
                            W5_EACH,
                        )]
                    }),
                ),
                (
                    actix.clone(),
                    Box::new(|| vec![actix_side::count(workers, W5_PRODUCERS, W5_EACH)]),
                ),
            ],
        );
    }
    if want("W5b") {
        let cap = (W5_PRODUCERS * W5_EACH) as usize + 1;
        measure(
            "W5b",
            "as W5, the counter's mailbox bounded (2,000,001: room for all, drop_new)",
            &rate(Target::RatioAtLeast(1.1)),
            vec![
                (
                    CASTY.into(),
                    Box::new(|| {
                        vec![guide::count(
                            &rt,
                            guide::counter,
                            bounded(cap),
                            W5_PRODUCERS,
                            W5_EACH,
                        )]
                    }),
                ),
                (
                    RAW.into(),
                    Box::new(|| vec![raw::count(&rt, W5_PRODUCERS, W5_EACH)]),
                ),
            ],
        );
    }
    if want("W6") {
        let counts = std::env::var("CASTY_BENCH_W6_WORKERS").unwrap_or_else(|_| "1,2".into());
        for w in counts
            .split(',')
            .filter_map(|s| s.trim().parse::<usize>().ok())
        {
            let rt = runtime(w);
            let rt = &rt;
            measure(
                "W6",
                &format!("1,000 pairs bounce a count 2,000 times each, {w} worker(s)"),
                &rate(Target::RatioAtLeast(0.8)),
                vec![
                    (
                        CASTY.into(),
                        Box::new(move || {
                            vec![bounce_casty_with(
                                rt,
                                W6_PAIRS,
                                W6_HITS,
                                hand_player,
                                Mailbox::unbounded(),
                            )]
                        }),
                    ),
                    (
                        RAW.into(),
                        Box::new(move || vec![bounce_tokio(rt, W6_PAIRS, W6_HITS)]),
                    ),
                    (
                        CASTY_MACRO.into(),
                        Box::new(move || {
                            vec![bounce_casty_with(
                                rt,
                                W6_PAIRS,
                                W6_HITS,
                                common::macro_player,
                                Mailbox::unbounded(),
                            )]
                        }),
                    ),
                    (
                        format!("actix, {w} arbiter(s)"),
                        Box::new(move || vec![actix_side::bounce(w, W6_PAIRS, W6_HITS)]),
                    ),
                ],
            );
        }
    }
    println!("\nload average at the end: {}", load_average());
}
