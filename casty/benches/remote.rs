//! Remoting benchmarks, between two OS processes on loopback: this binary
//! starts itself again as the receiving node. Each figure is printed beside a raw baseline from
//! the same run: a bare tokio TCP socket carrying length-prefixed CBOR frames with a batching
//! writer, and no actor addressing.
//!
//! The remote workloads are named RW (remote workload), not to be confused with the remoting
//! rules R1–R5 of the guide's "Semantics and performance" chapter:
//!
//! - RW1 one-way remote tell throughput (small messages);
//! - RW2 remote ask round trip, p50 and p99;
//! - RW3 the one-way tell throughput of RW1 with TLS on (mutual authentication), beside the same
//!   raw baseline.
//!
//! Run: `cargo bench -p casty --bench remote` (filter with `RW1`, `RW2` or `RW3`).

#[allow(dead_code)] // the W1/W3 programs are for the other benches
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use casty::remote::{RemoteSettings, TlsConfig, TlsTransport};
use casty::{message_enum, ActorRef, ActorSystem, Behaviors};
use common::{env_usize, median, runtime, wanted};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[message_enum]
enum Sink {
    Add { n: u64 },
    Count { reply_to: ActorRef<u64> },
}

#[message_enum]
enum Echo {
    Ping { n: u64, reply_to: ActorRef<u64> },
}

const ROLE: &str = "CASTY_BENCH_REMOTE_ROLE";

fn sink(count: u64) -> casty::Behavior<Sink> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Sink::Add { .. } => sink(count + 1),
        Sink::Count { reply_to } => {
            reply_to.tell(count);
            Behaviors::same()
        }
    })
}

fn tls_from_env() -> TlsConfig {
    let get = |k: &str| std::env::var(k).unwrap();
    TlsConfig {
        ca_pem: get("CASTY_BENCH_TLS_CA"),
        cert_pem: get("CASTY_BENCH_TLS_CERT"),
        key_pem: get("CASTY_BENCH_TLS_KEY"),
    }
}

/// A CA and two node certificates (for 127.0.0.1), generated for this run.
fn tls_pair() -> (TlsConfig, TlsConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let node = || {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        TlsConfig {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    };
    (node(), node())
}

/// The receiving process: a casty node with `/sink` and `/echo`, a TLS node with `/sink`, and a
/// raw frame counter.
fn serve() {
    let rt = runtime(env_usize("CASTY_BENCH_WORKERS", 2));
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let addr = system
            .start_remote(RemoteSettings::new("127.0.0.1", 0))
            .await
            .unwrap();
        let tls_system = ActorSystem::new("bench");
        let tls_addr = tls_system
            .start_remote(
                RemoteSettings::new("127.0.0.1", 0).transport(std::sync::Arc::new(
                    TlsTransport::tcp(&tls_from_env()).unwrap(),
                )),
            )
            .await
            .unwrap();
        tls_system.spawn(sink(0), "sink").unwrap();
        system.spawn(sink(0), "sink").unwrap();
        system
            .spawn(
                Behaviors::receive(|_ctx, Echo::Ping { n, reply_to }| {
                    reply_to.tell(n);
                    Behaviors::same()
                }),
                "echo",
            )
            .unwrap();
        let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw_port = raw.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = raw.accept().await else {
                    return;
                };
                s.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    // Length-prefixed CBOR u64s; a frame of u64::MAX asks for the count.
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut pending = Vec::new();
                    let mut count = 0u64;
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        let mut pos = 0;
                        while pending.len() >= pos + 4 {
                            let len = u32::from_be_bytes(pending[pos..pos + 4].try_into().unwrap())
                                as usize;
                            if pending.len() < pos + 4 + len {
                                break;
                            }
                            let v: u64 =
                                ciborium::from_reader(&pending[pos + 4..pos + 4 + len]).unwrap();
                            pos += 4 + len;
                            if v == u64::MAX {
                                s.write_all(&count.to_be_bytes()).await.unwrap();
                            } else {
                                count += 1;
                            }
                        }
                        pending.drain(..pos);
                    }
                });
            }
        });
        println!("READY {addr} {raw_port} {tls_addr}");
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await;
    });
}

const RW1_N: u64 = 1_000_000;

fn rw1_casty(rt: &tokio::runtime::Runtime, system: &ActorSystem, node: &str) -> f64 {
    rt.block_on(async {
        let sink = system.remote_ref::<Sink>(&format!("{node}/sink")).unwrap();
        let base: u64 = system
            .ask(&sink, Sink::count, Duration::from_secs(60))
            .await
            .unwrap();
        let t = Instant::now();
        for n in 0..RW1_N {
            sink.tell(Sink::Add { n });
        }
        loop {
            let c: u64 = system
                .ask(&sink, Sink::count, Duration::from_secs(60))
                .await
                .unwrap();
            if c >= base + RW1_N {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        RW1_N as f64 / t.elapsed().as_secs_f64() / 1e6
    })
}

fn rw1_raw(rt: &tokio::runtime::Runtime, port: u16) -> f64 {
    rt.block_on(async {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.set_nodelay(true).unwrap();
        let (mut rd, mut wr) = s.into_split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        // A batching writer task, as in casty: frames are encoded into one buffer per batch.
        let writer = tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(v) = rx.recv().await {
                let push = |v: u64, buf: &mut Vec<u8>| {
                    let start = buf.len();
                    buf.extend_from_slice(&[0; 4]);
                    ciborium::into_writer(&v, &mut *buf).unwrap();
                    let len = (buf.len() - start - 4) as u32;
                    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
                };
                push(v, &mut buf);
                while let Ok(v) = rx.try_recv() {
                    push(v, &mut buf);
                    if buf.len() > 256 * 1024 {
                        break;
                    }
                }
                wr.write_all(&buf).await.unwrap();
                buf.clear();
            }
        });
        let t = Instant::now();
        for n in 0..RW1_N {
            tx.send(n).unwrap();
        }
        tx.send(u64::MAX).unwrap();
        let mut count = [0u8; 8];
        rd.read_exact(&mut count).await.unwrap();
        let r = RW1_N as f64 / t.elapsed().as_secs_f64() / 1e6;
        assert_eq!(u64::from_be_bytes(count), RW1_N);
        drop(tx);
        let _ = writer.await;
        r
    })
}

/// RW2 runs raw and casty round trips in alternating blocks, so that the VM's drift over a run
/// falls on both alike.
const RW2_BLOCK: usize = 1_000;
const RW2_BLOCKS: usize = 20;

/// A block of `RW2_BLOCK` casty asks (after `warm` unmeasured ones), from a task on the runtime as
/// an actor's code would run. Returns each latency in µs.
async fn rw2_casty_block(echo: &ActorRef<Echo>, system: &ActorSystem, warm: usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(RW2_BLOCK);
    for i in 0..warm + RW2_BLOCK {
        let n = i as u64;
        let t = Instant::now();
        let r: u64 = system
            .ask(
                echo,
                |reply_to| Echo::Ping { n, reply_to },
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(r, n);
        if i >= warm {
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat
}

/// A block of raw round trips: one frame out, 8 bytes back (the raw server answers a count
/// request).
async fn rw2_raw_block(s: &mut tokio::net::TcpStream, warm: usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(RW2_BLOCK);
    let mut frame = Vec::new();
    let mut reply = [0u8; 8];
    for i in 0..warm + RW2_BLOCK {
        frame.clear();
        frame.extend_from_slice(&[0; 4]);
        ciborium::into_writer(&u64::MAX, &mut frame).unwrap();
        let len = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let t = Instant::now();
        s.write_all(&frame).await.unwrap();
        s.read_exact(&mut reply).await.unwrap();
        if i >= warm {
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    lat
}

/// p50 and p99 of (casty, raw), in µs.
fn r2(
    rt: &tokio::runtime::Runtime,
    system: &ActorSystem,
    node: &str,
    port: u16,
) -> [(f64, f64); 2] {
    let system = system.clone();
    let echo = system.remote_ref::<Echo>(&format!("{node}/echo")).unwrap();
    rt.block_on(async move {
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            s.set_nodelay(true).unwrap();
            let (mut casty, mut raw) = (Vec::new(), Vec::new());
            for b in 0..RW2_BLOCKS {
                let warm = if b == 0 { 1_000 } else { 50 };
                raw.extend(rw2_raw_block(&mut s, warm).await);
                casty.extend(rw2_casty_block(&echo, &system, warm).await);
            }
            let pct = |mut v: Vec<f64>| {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
                (v[v.len() / 2], v[v.len() * 99 / 100])
            };
            [pct(casty), pct(raw)]
        })
        .await
        .unwrap()
    })
}

fn main() {
    if std::env::var(ROLE).is_ok_and(|r| r == "serve") {
        serve();
        return;
    }
    let want = wanted();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (tls_ours, tls_theirs) = tls_pair();
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "serve")
            .env("CASTY_BENCH_TLS_CA", &tls_theirs.ca_pem)
            .env("CASTY_BENCH_TLS_CERT", &tls_theirs.cert_pem)
            .env("CASTY_BENCH_TLS_KEY", &tls_theirs.key_pem)
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
    let tls_node = parts.next().unwrap().to_string();

    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let rt = runtime(workers);
    let system = rt.block_on(async {
        let s = ActorSystem::new("bench");
        // RW1 sends a million tells faster than loopback drains them; let them queue.
        let settings = RemoteSettings::new("127.0.0.1", 0).outbound_capacity(4_000_000);
        s.start_remote(settings).await.unwrap();
        s
    });
    let runs = env_usize("CASTY_BENCH_RUNS", 3);
    println!("casty remote benchmarks: two processes on loopback, {workers} workers each, median of {runs}");
    if want("RW1") {
        let raw = median((0..runs).map(|_| rw1_raw(&rt, raw_port)).collect());
        let c = median((0..runs).map(|_| rw1_casty(&rt, &system, &node)).collect());
        println!(
            "RW1 remote tell 1M, one-way         casty {c:>8.3} M msg/s | raw CBOR socket {raw:>8.3} M msg/s | ratio {:.2} (target casty >= 1.0 M/s and >= 0.25)",
            c / raw
        );
    }
    if want("RW3") {
        let tls_system = rt.block_on(async {
            let s = ActorSystem::new("bench");
            let settings = RemoteSettings::new("127.0.0.1", 0)
                .transport(std::sync::Arc::new(TlsTransport::tcp(&tls_ours).unwrap()))
                .outbound_capacity(4_000_000);
            s.start_remote(settings).await.unwrap();
            s
        });
        let raw = median((0..runs).map(|_| rw1_raw(&rt, raw_port)).collect());
        let c = median(
            (0..runs)
                .map(|_| rw1_casty(&rt, &tls_system, &tls_node))
                .collect(),
        );
        println!(
            "RW3 remote tell 1M, one-way, TLS    casty {c:>8.3} M msg/s | raw CBOR socket {raw:>8.3} M msg/s | ratio {:.2} (no separate target)",
            c / raw
        );
        rt.block_on(tls_system.shutdown());
    }
    if want("RW2") {
        let [(p50, p99), (rp50, rp99)] = r2(&rt, &system, &node, raw_port);
        println!(
            "RW2 remote ask round trip           casty p50 {p50:>7.1} us p99 {p99:>7.1} us | raw p50 {rp50:>7.1} us p99 {rp99:>7.1} us | ratio {:.2} (target casty p50 <= 60 us)",
            p50 / rp50
        );
    }
    rt.block_on(system.shutdown());
    drop(child);
}
