//! What the benchmarks share: the command-line filter, settings from the environment, medians,
//! the raw tokio baselines for W1 and W3, and the hand-written actors they are compared with, so
//! that every benchmark measures the same programs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Mailbox, Message, SpawnOptions};
use tokio::sync::{mpsc, Notify};

/// Which workloads to run: those named by a command-line filter (`W1`, `RW2`, ..), or all of them.
/// A filter names a whole workload, ignoring case: `W1` selects W1 but not W1b or RW1.
/// `cargo bench` passes `--bench`, which is not a filter.
pub(crate) fn wanted() -> impl Fn(&str) -> bool {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    move |w: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(w))
}

/// A number from the environment, or `default`.
pub(crate) fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A multi-threaded runtime with `workers` worker threads.
pub(crate) fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// The median of `v`.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Messages in W1.
pub(crate) const W1_N: u64 = 2_000_000;

/// W1 baseline: one producer sends `W1_N` numbers over an unbounded channel to one task.
pub(crate) fn w1_tokio(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let done = Arc::new(Notify::new());
        let d = done.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                if n == W1_N - 1 {
                    d.notify_one();
                }
            }
        });
        let t = Instant::now();
        for i in 0..W1_N {
            tx.send(i).unwrap();
        }
        done.notified().await;
        W1_N as f64 / t.elapsed().as_secs_f64() / 1e6
    })
}

/// The W1 sink written by hand: the fast-path handler.
pub(crate) fn hand_sink(done: Arc<Notify>) -> casty::Behavior<u64> {
    casty::Behaviors::receive(move |_ctx, n: u64| {
        if n == W1_N - 1 {
            done.notify_one();
        }
        casty::Behaviors::same()
    })
}

/// W1 in casty: one producer tells `W1_N` numbers to the sink `make` builds; it notifies when done.
pub(crate) fn w1_casty(
    rt: &tokio::runtime::Runtime,
    make: fn(Arc<Notify>) -> casty::Behavior<u64>,
) -> f64 {
    w1_casty_with(rt, make, Mailbox::unbounded())
}

/// W1 in casty with the sink's mailbox given.
pub(crate) fn w1_casty_with(
    rt: &tokio::runtime::Runtime,
    make: fn(Arc<Notify>) -> casty::Behavior<u64>,
    mailbox: Mailbox,
) -> f64 {
    rt.block_on(async {
        let system = casty::ActorSystem::new("bench");
        let done = Arc::new(Notify::new());
        let sink = system
            .spawn_with(
                make(done.clone()),
                "sink",
                SpawnOptions::default().mailbox(mailbox),
            )
            .unwrap();
        let t = Instant::now();
        for i in 0..W1_N {
            sink.tell(i);
        }
        done.notified().await;
        let r = W1_N as f64 / t.elapsed().as_secs_f64() / 1e6;
        system.shutdown().await;
        r
    })
}

/// Counts finished pairs and wakes the benchmark when the last one is done.
pub(crate) struct Done {
    left: AtomicUsize,
    /// Notified when the last pair finishes.
    pub(crate) notify: Notify,
}

impl Done {
    /// Expects `n` pairs.
    pub(crate) fn new(n: usize) -> Arc<Self> {
        Arc::new(Done {
            left: AtomicUsize::new(n),
            notify: Notify::new(),
        })
    }

    /// One pair finished.
    pub(crate) fn finish_one(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.notify.notify_one();
        }
    }
}

/// W3/W6 baseline: `pairs` pairs of tasks bounce a number `hits` times over unbounded channels;
/// returns total messages per second (millions).
pub(crate) fn bounce_tokio(rt: &tokio::runtime::Runtime, pairs: usize, hits: u32) -> f64 {
    rt.block_on(async {
        let done = Done::new(pairs);
        let mut firsts = Vec::new();
        for _ in 0..pairs {
            let (atx, mut arx) = mpsc::unbounded_channel::<u32>();
            let (btx, mut brx) = mpsc::unbounded_channel::<u32>();
            let (d1, d2) = (done.clone(), done.clone());
            let (a2, b2) = (atx.clone(), btx.clone());
            tokio::spawn(async move {
                while let Some(n) = arx.recv().await {
                    if n == 0 {
                        d1.finish_one();
                    } else {
                        let _ = b2.send(n - 1);
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(n) = brx.recv().await {
                    if n == 0 {
                        d2.finish_one();
                    } else {
                        let _ = a2.send(n - 1);
                    }
                }
            });
            firsts.push(atx);
        }
        let t = Instant::now();
        for a in &firsts {
            a.send(hits).unwrap();
        }
        done.notify.notified().await;
        (pairs as f64 * (hits as f64 + 1.0)) / t.elapsed().as_secs_f64() / 1e6
    })
}

/// The ball of W3/W6: first each player learns its peer, then a count bounces between them.
#[derive(Debug)]
pub(crate) enum Ball {
    Peer(ActorRef<Ball>),
    Hit(u32),
}

impl Message for Ball {}

/// The hand-written player: waits for its peer, then bounces the count down to zero.
pub(crate) fn hand_player(done: Arc<Done>) -> Behavior<Ball> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Ball::Peer(peer) => hand_playing(peer, done.clone()),
        Ball::Hit(_) => Behaviors::same(),
    })
}

fn hand_playing(peer: ActorRef<Ball>, done: Arc<Done>) -> Behavior<Ball> {
    Behaviors::receive(move |_ctx, msg| {
        if let Ball::Hit(n) = msg {
            if n == 0 {
                done.finish_one();
            } else {
                peer.tell(Ball::Hit(n - 1));
            }
        }
        Behaviors::same()
    })
}

/// The same player written with `#[behavior]`, as the "Macros" chapter writes it.
#[cfg(feature = "macros")]
#[casty::behavior]
pub(crate) fn macro_player(
    _ctx: &mut casty::ActorContext<Ball>,
    msg: Ball,
    done: Arc<Done>,
) -> Behavior<Ball> {
    match msg {
        Ball::Peer(peer) => macro_playing(peer, done.clone()),
        Ball::Hit(_) => Behaviors::same(),
    }
}

#[cfg(feature = "macros")]
#[casty::behavior]
fn macro_playing(
    _ctx: &mut casty::ActorContext<Ball>,
    msg: Ball,
    peer: ActorRef<Ball>,
    done: Arc<Done>,
) -> Behavior<Ball> {
    if let Ball::Hit(n) = msg {
        if n == 0 {
            done.finish_one();
        } else {
            peer.tell(Ball::Hit(n - 1));
        }
    }
    Behaviors::same()
}

/// W3/W6 in casty: `pairs` pairs of players made by `make` each bounce a ball `hits` times;
/// returns total messages per second (millions).
pub(crate) fn bounce_casty(
    rt: &tokio::runtime::Runtime,
    pairs: usize,
    hits: u32,
    make: fn(Arc<Done>) -> Behavior<Ball>,
) -> f64 {
    bounce_casty_with(rt, pairs, hits, make, Mailbox::unbounded())
}

/// W3/W6 in casty with every player's mailbox given.
pub(crate) fn bounce_casty_with(
    rt: &tokio::runtime::Runtime,
    pairs: usize,
    hits: u32,
    make: fn(Arc<Done>) -> Behavior<Ball>,
    mailbox: Mailbox,
) -> f64 {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let done = Done::new(pairs);
        let mut firsts = Vec::new();
        let opts = SpawnOptions::default().mailbox(mailbox);
        for i in 0..pairs {
            let a = system
                .spawn_with(make(done.clone()), &format!("a{i}"), opts.clone())
                .unwrap();
            let b = system
                .spawn_with(make(done.clone()), &format!("b{i}"), opts.clone())
                .unwrap();
            a.tell(Ball::Peer(b.clone()));
            b.tell(Ball::Peer(a.clone()));
            firsts.push(a);
        }
        let t = Instant::now();
        for a in &firsts {
            a.tell(Ball::Hit(hits));
        }
        done.notify.notified().await;
        let r = (pairs as f64 * (hits as f64 + 1.0)) / t.elapsed().as_secs_f64() / 1e6;
        system.shutdown().await;
        r
    })
}

/// The producers of W1 and W5: with one producer, the calling task tells `each` messages itself;
/// with more, `producers` tokio tasks tell `each` messages each, and this returns once all have.
pub(crate) async fn produce<S, T>(sink: &S, producers: u64, each: u64, tell: T)
where
    S: Clone + Send + 'static,
    T: Fn(&S) + Copy + Send + 'static,
{
    if producers == 1 {
        for _ in 0..each {
            tell(sink);
        }
        return;
    }
    let tasks: Vec<_> = (0..producers)
        .map(|_| {
            let s = sink.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    tell(&s);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
