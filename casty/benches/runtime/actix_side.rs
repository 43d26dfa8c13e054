//! actix, the second baseline, written the way actix's documentation writes it: actors are structs
//! with `Handler` impls that change `self`, tells are `addr.do_send(msg)` (which ignores the
//! mailbox's capacity, like an unbounded channel) and asks are `addr.send(msg).await`.
//!
//! How "2 workers" maps onto actix: actix runs each actor on an arbiter, a thread with its own
//! single-threaded event loop, and never moves it. The closest equivalent of a 2-worker tokio
//! runtime is 2 arbiters (`Arbiter::new()`, actors placed with `Actor::start_in_arbiter`), with the
//! system's own thread only driving the benchmark, as `block_on`'s thread does for casty and raw
//! tokio. tokio's scheduler keeps a task and the one it wakes on the same worker (its LIFO slot) and
//! spreads independent tasks over the workers by stealing; actix cannot move anything, so the
//! placement is chosen as an actix user would and as tokio ends up doing: the asking task and its
//! echo (W2) and the two players of a pair (W3, W6) share an arbiter; independent units go round
//! robin over the arbiters (W6's pairs, W4's actors, W5's producers, W1's producer away from its
//! counter).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::common::Done;

/// Runs `f` on a fresh actix system with `arbiters` arbiter threads, then stops them.
fn with_arbiters<F, Fut, R>(arbiters: usize, f: F) -> R
where
    F: FnOnce(Vec<ArbiterHandle>) -> Fut,
    Fut: Future<Output = R>,
{
    let system = System::new();
    let arbs: Vec<Arbiter> = (0..arbiters.max(1)).map(|_| Arbiter::new()).collect();
    let handles = arbs.iter().map(Arbiter::handle).collect();
    let r = system.block_on(f(handles));
    for a in arbs {
        a.stop();
        a.join().unwrap();
    }
    r
}

/// Runs `fut` on the arbiter `on` and returns its output.
async fn run_on<T: Send + 'static>(
    on: &ArbiterHandle,
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    let (tx, rx) = oneshot::channel();
    on.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.await.unwrap()
}

// ---------------------------------------------------------------- W1, W5: the counter

#[derive(Message)]
#[rtype(result = "()")]
struct Add(u64);

#[derive(Message)]
#[rtype(result = "u64")]
struct Get;

struct Counter {
    count: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Add> for Counter {
    type Result = ();
    fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) {
        self.count += msg.0;
    }
}

impl Handler<Get> for Counter {
    type Result = u64;
    fn handle(&mut self, _msg: Get, _ctx: &mut Context<Self>) -> u64 {
        self.count
    }
}

/// W1 and W5: the counter on the first arbiter; the producers (one: the task that then asks) on
/// the next arbiters, round robin. Returns millions of messages per second.
pub(crate) fn count(arbiters: usize, producers: u64, each: u64) -> f64 {
    with_arbiters(arbiters, |arbs| async move {
        let counter = Counter::start_in_arbiter(&arbs[0], |_| Counter { count: 0 });
        let driver = arbs[1 % arbs.len()].clone();
        run_on(&driver, async move {
            let t = Instant::now();
            if producers == 1 {
                for _ in 0..each {
                    counter.do_send(Add(1));
                }
            } else {
                let mut finished = Vec::new();
                for p in 0..producers as usize {
                    let c = counter.clone();
                    let (tx, rx) = oneshot::channel();
                    arbs[(1 + p) % arbs.len()].spawn(async move {
                        for _ in 0..each {
                            c.do_send(Add(1));
                        }
                        let _ = tx.send(());
                    });
                    finished.push(rx);
                }
                for f in finished {
                    f.await.unwrap();
                }
            }
            let total = counter.send(Get).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(total, producers * each);
            total as f64 / secs / 1e6
        })
        .await
    })
}

// ---------------------------------------------------------------- W2: the echo

#[derive(Message)]
#[rtype(result = "u64")]
struct Echo(u64);

struct Echoer;

impl Actor for Echoer {
    type Context = Context<Self>;
}

impl Handler<Echo> for Echoer {
    type Result = u64;
    fn handle(&mut self, msg: Echo, _ctx: &mut Context<Self>) -> u64 {
        msg.0 + 1
    }
}

/// W2: the echo and the asking task on one arbiter. Returns (mean, p50) latency in µs.
pub(crate) fn ask_echo(arbiters: usize, n: u64) -> (f64, f64) {
    with_arbiters(arbiters, |arbs| async move {
        let echo = Echoer::start_in_arbiter(&arbs[0], |_| Echoer);
        let lat = run_on(&arbs[0], async move {
            let mut lat = Vec::with_capacity(n as usize);
            for i in 0..n {
                let t = Instant::now();
                let v = echo.send(Echo(i)).await.unwrap();
                lat.push(t.elapsed());
                assert_eq!(v, i + 1);
            }
            lat
        })
        .await;
        crate::mean_p50(lat)
    })
}

// ---------------------------------------------------------------- W3, W6: bouncing pairs

#[derive(Message)]
#[rtype(result = "()")]
struct Peer(Addr<Player>);

#[derive(Message)]
#[rtype(result = "()")]
struct Hit(u32);

struct Player {
    peer: Option<Addr<Player>>,
    done: Arc<Done>,
}

impl Actor for Player {
    type Context = Context<Self>;
}

impl Handler<Peer> for Player {
    type Result = ();
    fn handle(&mut self, msg: Peer, _ctx: &mut Context<Self>) {
        self.peer = Some(msg.0);
    }
}

impl Handler<Hit> for Player {
    type Result = ();
    fn handle(&mut self, msg: Hit, _ctx: &mut Context<Self>) {
        if msg.0 == 0 {
            self.done.finish_one();
        } else if let Some(peer) = &self.peer {
            peer.do_send(Hit(msg.0 - 1));
        }
    }
}

/// W3 and W6: `pairs` pairs, pair `i` on arbiter `i % arbiters`, each bounce a count `hits` times.
/// Returns total messages per second (millions).
pub(crate) fn bounce(arbiters: usize, pairs: usize, hits: u32) -> f64 {
    with_arbiters(arbiters, |arbs| async move {
        let done = Done::new(pairs);
        let mut firsts = Vec::with_capacity(pairs);
        for i in 0..pairs {
            let arb = &arbs[i % arbs.len()];
            let (d1, d2) = (done.clone(), done.clone());
            let a = Player::start_in_arbiter(arb, |_| Player {
                peer: None,
                done: d1,
            });
            let b = Player::start_in_arbiter(arb, |_| Player {
                peer: None,
                done: d2,
            });
            a.do_send(Peer(b.clone()));
            b.do_send(Peer(a.clone()));
            firsts.push(a);
        }
        let t = Instant::now();
        for a in &firsts {
            a.do_send(Hit(hits));
        }
        done.notify.notified().await;
        (pairs as f64 * (hits as f64 + 1.0)) / t.elapsed().as_secs_f64() / 1e6
    })
}

// ---------------------------------------------------------------- W4: many actors

#[derive(Message)]
#[rtype(result = "()")]
struct Hello;

#[derive(Message)]
#[rtype(result = "()")]
struct Stop;

struct Greeted {
    handled: Arc<Done>,
    stopped: Arc<Done>,
}

impl Actor for Greeted {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stopped.finish_one();
    }
}

impl Handler<Hello> for Greeted {
    type Result = ();
    fn handle(&mut self, _msg: Hello, _ctx: &mut Context<Self>) {
        self.handled.finish_one();
    }
}

impl Handler<Stop> for Greeted {
    type Result = ();
    fn handle(&mut self, _msg: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// W4 as in `guide::spawn_many`: actor `i` on arbiter `i % arbiters`; each is stopped by a `Stop`
/// message whose handler calls `ctx.stop()`, and `stopped()` counts as its `post_stop`.
pub(crate) fn spawn_many(arbiters: usize, n: usize) -> (f64, f64) {
    with_arbiters(arbiters, |arbs| async move {
        let handled = Done::new(n);
        let stopped = Done::new(n);
        let before = crate::rss_bytes();
        let t = Instant::now();
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            let (h, s) = (handled.clone(), stopped.clone());
            let a = Greeted::start_in_arbiter(&arbs[i % arbs.len()], |_| Greeted {
                handled: h,
                stopped: s,
            });
            a.do_send(Hello);
            addrs.push(a);
        }
        handled.notify.notified().await;
        let up = t.elapsed();
        let per_actor = crate::rss_bytes().saturating_sub(before) as f64 / n as f64;
        let t = Instant::now();
        for a in &addrs {
            a.do_send(Stop);
        }
        stopped.notify.notified().await;
        ((up + t.elapsed()).as_secs_f64(), per_actor)
    })
}
