//! W7: 1,000,000 tells between two OS processes on 127.0.0.1, with the default remote settings,
//! and nothing lost.
//!
//! This binary starts itself again as the receiving process (the environment variable
//! `CASTY_BENCH_W7_ROLE=receiver` selects that role). The receiver hosts a casty node with a
//! counter actor at `/counter`, and a raw TCP listener.
//!
//! - **casty**, written as the guide's remoting chapter writes it: a `#[message_enum]` protocol,
//!   a functional-state counter (`counter(total + n)`), `RemoteSettings::new(host, 0)` with
//!   nothing changed, `remote_ref`, a burst sent with `send(..).await` (which waits for room in
//!   the outbound queue instead of dropping), and one `system.ask` at the end. Order is kept
//!   per sender and receiver pair, so the ask is answered only after every tell arrived; its
//!   answer must be the whole burst.
//! - **raw**: what a hand-written transport would do: the same message, CBOR-encoded with
//!   ciborium into length-prefixed frames, written through a `BufWriter` over a tokio
//!   `TcpStream`; the receiver reads the frames through a `BufReader`, decodes and counts them,
//!   and answers the final `Count` frame with the count.
//!
//! Each round runs raw then casty; the report gives the median throughput of each and the
//! median of the per-round ratios. A last line shows the same burst sent with `tell` (no
//! backpressure): what the default outbound queue did not take is counted by the dead letters,
//! and delivered plus dead letters must be the whole burst.
//!
//! Run: `cargo bench -p casty --bench remote_processes` (`CASTY_BENCH_RUNS`, default 5;
//! `CASTY_BENCH_WORKERS`, default 2 per process).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use casty::remote::RemoteSettings;
use casty::{message_enum, ActorRef, ActorSystem, Behavior, Behaviors, DeadLetter};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader, BufWriter};

const ROLE: &str = "CASTY_BENCH_W7_ROLE";
const N: u64 = 1_000_000;
const T: Duration = Duration::from_secs(120);

/// The counter's protocol, as the guide writes one.
#[message_enum]
enum Counter {
    Add { n: u64 },
    Count { reply_to: ActorRef<u64> },
}

fn counter(total: u64) -> Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add { n } => counter(total + n),
        Counter::Count { reply_to } => {
            reply_to.tell(total);
            Behaviors::same()
        }
    })
}

/// The same message for the raw socket (`Add` is encoded exactly as casty encodes it); the
/// final `Count` asks for the total.
#[derive(Serialize, Deserialize)]
enum RawCounter {
    Add { n: u64 },
    Count,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_usize("CASTY_BENCH_WORKERS", 2))
        .enable_all()
        .build()
        .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Appends one length-prefixed CBOR frame of `msg` to `buf`.
fn frame(msg: &RawCounter, buf: &mut Vec<u8>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    ciborium::into_writer(msg, &mut *buf).unwrap();
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// The receiving process: a casty node with `/counter`, and a raw listener; prints both
/// addresses, then serves until its stdin closes.
fn receiver() {
    let rt = runtime();
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let address = system
            .start_remote(RemoteSettings::new("127.0.0.1", 0))
            .await
            .unwrap();
        system.spawn(counter(0), "counter").unwrap();
        let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw_port = raw.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = raw.accept().await {
                s.set_nodelay(true).unwrap();
                tokio::spawn(raw_connection(s));
            }
        });
        println!("READY {address} {raw_port}");
        std::io::stdout().flush().unwrap();
        tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
            .await
            .unwrap();
        system.shutdown().await;
    });
}

/// Reads frames until `Count`, which it answers with the total.
async fn raw_connection(s: tokio::net::TcpStream) {
    let (rd, mut wr) = s.into_split();
    let mut rd = AsyncBufReader::with_capacity(64 * 1024, rd);
    let mut body = Vec::new();
    let mut total = 0u64;
    loop {
        let mut len = [0u8; 4];
        if rd.read_exact(&mut len).await.is_err() {
            return;
        }
        body.resize(u32::from_be_bytes(len) as usize, 0);
        if rd.read_exact(&mut body).await.is_err() {
            return;
        }
        match ciborium::from_reader::<RawCounter, _>(&body[..]).unwrap() {
            RawCounter::Add { n } => total += n,
            RawCounter::Count => {
                if wr.write_all(&total.to_be_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Raw: M messages per second.
fn raw_round(rt: &tokio::runtime::Runtime, port: u16) -> f64 {
    rt.block_on(async {
        tokio::spawn(async move {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            s.set_nodelay(true).unwrap();
            let (mut rd, wr) = s.into_split();
            let mut wr = BufWriter::new(wr);
            let mut buf = Vec::with_capacity(64);
            let started = Instant::now();
            for _ in 0..N {
                buf.clear();
                frame(&RawCounter::Add { n: 1 }, &mut buf);
                wr.write_all(&buf).await.unwrap();
            }
            buf.clear();
            frame(&RawCounter::Count, &mut buf);
            wr.write_all(&buf).await.unwrap();
            wr.flush().await.unwrap();
            let mut total = [0u8; 8];
            rd.read_exact(&mut total).await.unwrap();
            let rate = N as f64 / started.elapsed().as_secs_f64() / 1e6;
            assert_eq!(u64::from_be_bytes(total), N, "raw: messages lost");
            rate
        })
        .await
        .unwrap()
    })
}

/// casty, as the guide writes it: M messages per second.
fn casty_round(rt: &tokio::runtime::Runtime, system: &ActorSystem, node: &str) -> f64 {
    let system = system.clone();
    let node = node.to_string();
    rt.block_on(async move {
        tokio::spawn(async move {
            let counter = system
                .remote_ref::<Counter>(&format!("{node}/counter"))
                .unwrap();
            let before = system.ask(&counter, Counter::count, T).await.unwrap();
            let started = Instant::now();
            for _ in 0..N {
                counter.send(Counter::Add { n: 1 }).await.unwrap();
            }
            let after = system.ask(&counter, Counter::count, T).await.unwrap();
            let rate = N as f64 / started.elapsed().as_secs_f64() / 1e6;
            assert_eq!(after - before, N, "casty: messages lost");
            rate
        })
        .await
        .unwrap()
    })
}

/// The same burst with `tell`: (delivered, dead letters).
fn casty_tell_burst(rt: &tokio::runtime::Runtime, system: &ActorSystem, node: &str) -> (u64, u64) {
    let system = system.clone();
    let node = node.to_string();
    rt.block_on(async move {
        let dead = Arc::new(AtomicU64::new(0));
        let counted = dead.clone();
        let counting = system
            .spawn(
                Behaviors::receive_message(move |d: DeadLetter| {
                    counted.fetch_add(d.count, Ordering::Relaxed);
                    Behaviors::same()
                }),
                "dead-letters",
            )
            .unwrap();
        let _sub = system.event_stream().subscribe_actor(counting.clone());
        let counter = system
            .remote_ref::<Counter>(&format!("{node}/counter"))
            .unwrap();
        let before = system.ask(&counter, Counter::count, T).await.unwrap();
        for _ in 0..N {
            counter.tell(Counter::Add { n: 1 });
        }
        let delivered = system.ask(&counter, Counter::count, T).await.unwrap() - before;
        // Every dead letter was published before the final ask was sent; wait for the counting
        // actor to have read them all.
        let deadline = Instant::now() + T;
        while delivered + dead.load(Ordering::Relaxed) < N && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (delivered, dead.load(Ordering::Relaxed))
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    if std::env::var(ROLE).is_ok_and(|r| r == "receiver") {
        receiver();
        return;
    }
    struct Receiver(std::process::Child);
    impl Drop for Receiver {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            let _ = self.0.wait();
        }
    }
    let mut child = Receiver(
        Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "receiver")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace().skip(1);
    let node = parts.next().unwrap().to_string();
    let raw_port: u16 = parts.next().unwrap().parse().unwrap();

    let rt = runtime();
    let system = rt.block_on(async {
        let system = ActorSystem::new("bench");
        system
            .start_remote(RemoteSettings::new("127.0.0.1", 0))
            .await
            .unwrap();
        system
    });
    let runs = env_usize("CASTY_BENCH_RUNS", 5);
    println!(
        "W7 remote: {N} tells between two processes on 127.0.0.1, default settings, nothing lost; \
         {} workers per process, {runs} interleaved rounds",
        env_usize("CASTY_BENCH_WORKERS", 2)
    );
    println!(
        "cpu: {}; load average before: {}",
        cpu_model(),
        load_average()
    );
    // For profiling one side alone: `CASTY_BENCH_W7_SIDE=casty` (or `raw`) runs only that side.
    match std::env::var("CASTY_BENCH_W7_SIDE").as_deref() {
        Ok("casty") => {
            for _ in 0..runs {
                println!("casty {:.3} M msg/s", casty_round(&rt, &system, &node));
            }
            return;
        }
        Ok("raw") => {
            for _ in 0..runs {
                println!("raw {:.3} M msg/s", raw_round(&rt, raw_port));
            }
            return;
        }
        _ => {}
    }
    let (mut raw, mut casty, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=runs {
        let r = raw_round(&rt, raw_port);
        let c = casty_round(&rt, &system, &node);
        println!(
            "  round {round}: casty {c:.3} M msg/s, raw {r:.3} M msg/s, ratio {:.2}",
            c / r
        );
        raw.push(r);
        casty.push(c);
        ratio.push(c / r);
    }
    println!(
        "W7 send().await 1M, default settings  casty {:>7.3} M msg/s | raw CBOR socket {:>7.3} M msg/s | ratio {:.2} (median of rounds; target >= 0.6, nothing lost)",
        median(casty),
        median(raw),
        median(ratio)
    );
    let (delivered, dead) = casty_tell_burst(&rt, &system, &node);
    println!(
        "W7 tell 1M (no backpressure), defaults  delivered {delivered}, dead letters {dead}, accounted for {} of {N}",
        delivered + dead
    );
    println!("load average after: {}", load_average());
    rt.block_on(system.shutdown());
    drop(child);
}
