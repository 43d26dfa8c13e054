//! Runtime benchmarks W1–W6, each printed beside a raw-tokio baseline measured in the same run.
//!
//! Run: `cargo bench -p casty --bench runtime`. W1b, W3b, W4b and W5b repeat W1, W3, W4 and W5
//! with bounded mailboxes (W4b's capacity comes from `CASTY_BENCH_W4_CAPACITY`, default
//! 1,000,000). Worker threads come from `CASTY_BENCH_WORKERS` (default 2); W6 runs once per count
//! in `CASTY_BENCH_W6_WORKERS` (default `1,2`). Each figure is the median of `CASTY_BENCH_RUNS` runs
//! (default 3).

use std::time::{Duration, Instant};

mod common;

use casty::{ActorRef, ActorSystem, Behaviors, Mailbox, Overflow, SpawnOptions};
use common::{
    bounce_casty, bounce_casty_with, bounce_tokio, env_usize, hand_player, hand_sink, median,
    runtime, w1_casty, w1_casty_with, w1_tokio, wanted, Done, W1_N,
};
use tokio::sync::{mpsc, oneshot};

/// A bounded `drop_new` mailbox of `capacity`.
fn bounded(capacity: usize) -> Mailbox {
    Mailbox::bounded(capacity, Overflow::DropNew)
}

fn runs<F: FnMut() -> f64>(mut f: F) -> f64 {
    median((0..env_usize("CASTY_BENCH_RUNS", 3)).map(|_| f()).collect())
}

fn report(name: &str, unit: &str, casty: f64, tokio: f64, higher_is_better: bool, target: &str) {
    let ratio = casty / tokio;
    let dir = if higher_is_better {
        "casty/tokio"
    } else {
        "casty/tokio (lower is better)"
    };
    println!("{name:<34} casty {casty:>10.3} {unit:<8} | tokio {tokio:>10.3} {unit:<8} | {dir} {ratio:.2} (target {target})");
}

// ---------------------------------------------------------------- W1: one producer, one actor

// ---------------------------------------------------------------- W2: sequential asks

const W2_N: usize = 200_000;

fn w2_casty(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let echo = system
            .spawn(
                Behaviors::receive(|_ctx, r: ActorRef<u64>| {
                    r.tell(1u64);
                    Behaviors::same()
                }),
                "echo",
            )
            .unwrap();
        let mut lat = Vec::with_capacity(W2_N);
        for _ in 0..W2_N {
            let t = Instant::now();
            let v = system
                .ask(&echo, |r| r, Duration::from_secs(5))
                .await
                .unwrap();
            lat.push(t.elapsed());
            assert_eq!(v, 1);
        }
        system.shutdown().await;
        mean_p50(lat)
    })
}

fn w2_tokio(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let _ = r.send(1);
            }
        });
        let mut lat = Vec::with_capacity(W2_N);
        for _ in 0..W2_N {
            let t = Instant::now();
            let (otx, orx) = oneshot::channel();
            tx.send(otx).unwrap();
            let v = tokio::time::timeout(Duration::from_secs(5), orx)
                .await
                .unwrap()
                .unwrap();
            lat.push(t.elapsed());
            assert_eq!(v, 1);
        }
        mean_p50(lat)
    })
}

fn mean_p50(mut lat: Vec<Duration>) -> (f64, f64) {
    let mean = lat.iter().map(|d| d.as_secs_f64()).sum::<f64>() / lat.len() as f64 * 1e6;
    lat.sort();
    (mean, lat[lat.len() / 2].as_secs_f64() * 1e6)
}

// ---------------------------------------------------------------- W4: many actors

const W4_N: usize = 100_000;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Returns (seconds for spawn + one message each + stop all, bytes per idle actor); every actor
/// gets `mailbox`.
fn w4_casty(rt: &tokio::runtime::Runtime, mailbox: Mailbox) -> (f64, f64) {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let done = Done::new(W4_N);
        let before = rss_bytes();
        let t = Instant::now();
        let mut refs = Vec::with_capacity(W4_N);
        let opts = SpawnOptions::default().mailbox(mailbox);
        for i in 0..W4_N {
            let d = done.clone();
            refs.push(
                system
                    .spawn_with(
                        Behaviors::receive(move |_ctx, _: u8| {
                            d.finish_one();
                            Behaviors::same()
                        }),
                        &format!("a{i}"),
                        opts.clone(),
                    )
                    .unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // let every actor start and park
        let per_actor = (rss_bytes().saturating_sub(before)) as f64 / W4_N as f64;
        for r in &refs {
            r.tell(1u8);
        }
        done.notify.notified().await;
        drop(refs);
        system.shutdown().await;
        (t.elapsed().as_secs_f64() - 0.05, per_actor)
    })
}

fn w4_tokio(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    rt.block_on(async {
        let done = Done::new(W4_N);
        let before = rss_bytes();
        let t = Instant::now();
        let mut txs = Vec::with_capacity(W4_N);
        let mut handles = Vec::with_capacity(W4_N);
        for _ in 0..W4_N {
            let (tx, mut rx) = mpsc::unbounded_channel::<u8>();
            let d = done.clone();
            handles.push(tokio::spawn(async move {
                while rx.recv().await.is_some() {
                    d.finish_one();
                }
            }));
            txs.push(tx);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let per_task = (rss_bytes().saturating_sub(before)) as f64 / W4_N as f64;
        for tx in &txs {
            tx.send(1).unwrap();
        }
        done.notify.notified().await;
        drop(txs);
        for h in handles {
            h.await.unwrap();
        }
        (t.elapsed().as_secs_f64() - 0.05, per_task)
    })
}

// ---------------------------------------------------------------- W5: many producers

const W5_PRODUCERS: u64 = 8;
const W5_EACH: u64 = 250_000;

fn w5_casty(rt: &tokio::runtime::Runtime, mailbox: Mailbox) -> f64 {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let done = Done::new((W5_PRODUCERS * W5_EACH) as usize);
        let d = done.clone();
        let sink = system
            .spawn_with(
                Behaviors::receive(move |_ctx, _n: u64| {
                    d.finish_one();
                    Behaviors::same()
                }),
                "sink",
                SpawnOptions::default().mailbox(mailbox),
            )
            .unwrap();
        let t = Instant::now();
        for p in 0..W5_PRODUCERS {
            let s = sink.clone();
            tokio::spawn(async move {
                for i in 0..W5_EACH {
                    s.tell(p * W5_EACH + i);
                }
            });
        }
        done.notify.notified().await;
        let r = (W5_PRODUCERS * W5_EACH) as f64 / t.elapsed().as_secs_f64() / 1e6;
        system.shutdown().await;
        r
    })
}

fn w5_tokio(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let done = Done::new((W5_PRODUCERS * W5_EACH) as usize);
        let d = done.clone();
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                d.finish_one();
            }
        });
        let t = Instant::now();
        for p in 0..W5_PRODUCERS {
            let s = tx.clone();
            tokio::spawn(async move {
                for i in 0..W5_EACH {
                    s.send(p * W5_EACH + i).unwrap();
                }
            });
        }
        done.notify.notified().await;
        (W5_PRODUCERS * W5_EACH) as f64 / t.elapsed().as_secs_f64() / 1e6
    })
}

fn main() {
    let want = wanted();
    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let rt = runtime(workers);
    println!(
        "casty runtime benchmarks: {workers} worker threads, median of {} runs",
        env_usize("CASTY_BENCH_RUNS", 3)
    );

    if want("W1") {
        let t = runs(|| w1_tokio(&rt));
        let c = runs(|| w1_casty(&rt, hand_sink));
        report("W1 tell 2M, 1 producer", "M msg/s", c, t, true, ">= 0.6");
        // The same with a bounded mailbox that never fills (capacity 2M, drop_new).
        let b = runs(|| w1_casty_with(&rt, hand_sink, bounded(W1_N as usize)));
        report(
            "W1b as W1, bounded mailbox",
            "M msg/s",
            b,
            t,
            true,
            ">= 0.6",
        );
    }
    if want("W2") {
        let (tm, tp) = {
            let v: Vec<_> = (0..env_usize("CASTY_BENCH_RUNS", 3))
                .map(|_| w2_tokio(&rt))
                .collect();
            (
                median(v.iter().map(|x| x.0).collect()),
                median(v.iter().map(|x| x.1).collect()),
            )
        };
        let (cm, cp) = {
            let v: Vec<_> = (0..env_usize("CASTY_BENCH_RUNS", 3))
                .map(|_| w2_casty(&rt))
                .collect();
            (
                median(v.iter().map(|x| x.0).collect()),
                median(v.iter().map(|x| x.1).collect()),
            )
        };
        report(
            "W2 ask 200k sequential, mean",
            "us",
            cm,
            tm,
            false,
            "<= 1.3",
        );
        report("W2 ask 200k sequential, p50", "us", cp, tp, false, "-");
    }
    if want("W3") {
        let t = runs(|| bounce_tokio(&rt, 1, 1_000_000));
        let c = runs(|| bounce_casty(&rt, 1, 1_000_000, hand_player));
        report("W3 bounce 1M, 2 actors", "M msg/s", c, t, true, ">= 0.8");
        let b = runs(|| bounce_casty_with(&rt, 1, 1_000_000, hand_player, bounded(1000)));
        report(
            "W3b as W3, bounded mailboxes",
            "M msg/s",
            b,
            t,
            true,
            ">= 0.8",
        );
    }
    if want("W4") {
        let (ts, tb) = w4_tokio(&rt);
        let (cs, cb) = w4_casty(&rt, Mailbox::unbounded());
        report("W4 spawn+msg+stop 100k", "s", cs, ts, false, "-");
        report(
            "W4 memory per idle actor",
            "bytes",
            cb,
            tb,
            false,
            "casty <= 1000 B",
        );
    }
    if want("W4b") {
        // W4 with every actor's mailbox bounded (capacity `CASTY_BENCH_W4_CAPACITY`, default
        // 1,000,000): its memory must not depend on the bound. Run it alone (`-- W4b`) for its
        // memory figure: after W4 in the same process it reuses the memory W4 freed.
        let cap = env_usize("CASTY_BENCH_W4_CAPACITY", 1_000_000);
        let (ts, tb) = w4_tokio(&rt);
        let (bs, bb) = w4_casty(&rt, bounded(cap));
        report(
            &format!("W4b as W4, bounded {cap}"),
            "s",
            bs,
            ts,
            false,
            "-",
        );
        report(
            &format!("W4b memory per idle actor, bounded {cap}"),
            "bytes",
            bb,
            tb,
            false,
            "casty <= 1000 B",
        );
    }
    if want("W5") {
        let t = runs(|| w5_tokio(&rt));
        let c = runs(|| w5_casty(&rt, Mailbox::unbounded()));
        report(
            "W5 tell 8x250k, 8 producers",
            "M msg/s",
            c,
            t,
            true,
            ">= 0.9",
        );
        // The same with a bounded mailbox that never fills (capacity 2M, drop_new).
        let b = runs(|| w5_casty(&rt, bounded((W5_PRODUCERS * W5_EACH) as usize)));
        report(
            "W5b as W5, bounded mailbox",
            "M msg/s",
            b,
            t,
            true,
            ">= 0.9",
        );
    }
    if want("W6") {
        let counts = std::env::var("CASTY_BENCH_W6_WORKERS").unwrap_or_else(|_| "1,2".into());
        for w in counts
            .split(',')
            .filter_map(|s| s.trim().parse::<usize>().ok())
        {
            let rt = runtime(w);
            let t = runs(|| bounce_tokio(&rt, 1000, 2000));
            let c = runs(|| bounce_casty(&rt, 1000, 2000, hand_player));
            report(
                &format!("W6 1000 pairs x 2000, {w} workers"),
                "M msg/s",
                c,
                t,
                true,
                ">= 0.6",
            );
        }
    }
}
