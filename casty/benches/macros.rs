//! `#[behavior]` against the hand-written fastest path, with raw tokio as the baseline, all in the
//! same run. Target: the macro within 10% of hand-written. Its W1 is a stateless sink that returns
//! `Behaviors::same()` (the runtime benchmark's W1 is the guide's functional counter, and has its
//! own `#[behavior]` line); its W3 is the runtime benchmark's W3.
//!
//! Run: `cargo bench -p casty --bench macros`. `CASTY_BENCH_WORKERS` (default 2) and
//! `CASTY_BENCH_RUNS` (default 5) as in the runtime benchmark; hand-written and macro runs are
//! interleaved so that machine noise hits both alike.

#[allow(dead_code)] // the programs of the other benches
mod common;

use std::sync::Arc;

use casty::{behavior, ActorContext, Behavior, Behaviors};
use common::{
    bounce_casty, bounce_tokio, env_usize, hand_player, hand_sink, macro_player, median, runtime,
    w1_casty, w1_tokio, wanted, W1_N,
};
use tokio::sync::Notify;

// ---------------------------------------------------------------- W1: one producer, one actor

#[behavior]
fn macro_sink(_ctx: &mut ActorContext<u64>, n: u64, done: Arc<Notify>) -> Behavior<u64> {
    if n == W1_N - 1 {
        done.notify_one();
    }
    Behaviors::same()
}

/// The same sink, counting in a `mut` state parameter kept in place.
#[behavior]
fn macro_counter(
    _ctx: &mut ActorContext<u64>,
    _n: u64,
    mut seen: u64,
    done: Arc<Notify>,
) -> Behavior<u64> {
    seen += 1;
    if seen == W1_N {
        done.notify_one();
    }
    Behaviors::same()
}

// ---------------------------------------------------------------- W3: a bouncing pair

const W3_HITS: u32 = 1_000_000;

fn line(name: &str, tokio: f64, hand: f64, mac: f64) {
    println!(
        "{name:<30} tokio {tokio:>7.3} | hand-written {hand:>7.3} ({:.2}x tokio) | #[behavior] {mac:>7.3} ({:.2}x tokio) | macro/hand {:.3} (target >= 0.90)",
        hand / tokio,
        mac / tokio,
        mac / hand
    );
}

fn main() {
    let want = wanted();
    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let n = env_usize("CASTY_BENCH_RUNS", 5);
    let rt = runtime(workers);
    println!(
        "casty macro benchmarks: {workers} worker threads, median of {n} interleaved runs, M msg/s"
    );
    if want("W1") {
        let (mut t, mut h, mut m, mut c) = (vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            t.push(w1_tokio(&rt));
            h.push(w1_casty(&rt, hand_sink));
            m.push(w1_casty(&rt, macro_sink));
            c.push(w1_casty(&rt, |d| macro_counter(0, d)));
        }
        let (t, h) = (median(t), median(h));
        line("W1 tell 2M, 1 producer", t, h, median(m));
        line("W1 ... with `mut` state", t, h, median(c));
    }
    if want("W3") {
        let (mut t, mut h, mut m) = (vec![], vec![], vec![]);
        for _ in 0..n {
            t.push(bounce_tokio(&rt, 1, W3_HITS));
            h.push(bounce_casty(&rt, 1, W3_HITS, hand_player));
            m.push(bounce_casty(&rt, 1, W3_HITS, macro_player));
        }
        line("W3 bounce 1M, 2 actors", median(t), median(h), median(m));
    }
}
