//! The casty side written as the guide writes it: the protocols, and behaviors built with
//! `Behaviors::receive` whose state lives in the closure, so a change of state returns a new
//! behavior (`counter(count + x)`). Asks go through `system.ask(&r, |reply_to| .., timeout)`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Mailbox, Message, SpawnOptions};

use crate::common::{produce, Done};

/// The timeout of W2's asks, the one the guide's examples use.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeout of the ask for the total in W1 and W5, which waits behind every tell.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The counter of W1 and W5.
#[derive(Debug)]
pub(crate) enum CounterMsg {
    Add(u64),
    Get { reply_to: ActorRef<u64> },
}
impl Message for CounterMsg {}

/// The echo of W2: replies `n + 1`.
#[derive(Debug)]
pub(crate) enum EchoMsg {
    Echo { n: u64, reply_to: ActorRef<u64> },
}
impl Message for EchoMsg {}

/// The one message each actor of W4 gets.
#[derive(Debug)]
pub(crate) struct Hello;
impl Message for Hello {}

// ANCHOR: counter
/// The functional counter: the state is the closure's `count`, and `Add` returns the next behavior.
pub(crate) fn counter(count: u64) -> Behavior<CounterMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        CounterMsg::Add(x) => counter(count + x),
        CounterMsg::Get { reply_to } => {
            reply_to.tell(count);
            Behaviors::same()
        }
    })
}
// ANCHOR_END: counter

/// The echo: replies `n + 1` to each `Echo`.
pub(crate) fn echo() -> Behavior<EchoMsg> {
    Behaviors::receive(|_ctx, msg| match msg {
        EchoMsg::Echo { n, reply_to } => {
            reply_to.tell(n + 1);
            Behaviors::same()
        }
    })
}

/// An actor of W4: counts its one message in `handled`.
pub(crate) fn greeted(handled: Arc<Done>) -> Behavior<Hello> {
    Behaviors::receive(move |_ctx, _msg: Hello| {
        handled.finish_one();
        Behaviors::same()
    })
}

/// W1 and W5: `producers` tokio tasks each tell `each` `Add(1)` to the counter `make` builds (one
/// producer: the task that then asks), then one ask for the total, which must be exact. Returns
/// millions of messages per second.
pub(crate) fn count(
    rt: &tokio::runtime::Runtime,
    make: fn(u64) -> Behavior<CounterMsg>,
    mailbox: Mailbox,
    producers: u64,
    each: u64,
) -> f64 {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let counter = system
            .spawn_with(make(0), "counter", SpawnOptions::default().mailbox(mailbox))
            .unwrap();
        let s = system.clone();
        let rate = tokio::spawn(async move {
            let t = Instant::now();
            produce(&counter, producers, each, |c: &ActorRef<CounterMsg>| {
                c.tell(CounterMsg::Add(1))
            })
            .await;
            let total = s
                .ask(
                    &counter,
                    |reply_to| CounterMsg::Get { reply_to },
                    TOTAL_TIMEOUT,
                )
                .await
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(total, producers * each);
            total as f64 / secs / 1e6
        })
        .await
        .unwrap();
        system.shutdown().await;
        rate
    })
}

/// W2: one task asks `Echo(i)` `n` times in sequence. Returns (mean, p50) latency in µs.
pub(crate) fn ask_echo(
    rt: &tokio::runtime::Runtime,
    make: fn() -> Behavior<EchoMsg>,
    n: u64,
) -> (f64, f64) {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let echo = system.spawn(make(), "echo").unwrap();
        let s = system.clone();
        let lat = tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n as usize);
            for i in 0..n {
                let t = Instant::now();
                let v = s
                    .ask(
                        &echo,
                        |reply_to| EchoMsg::Echo { n: i, reply_to },
                        ASK_TIMEOUT,
                    )
                    .await
                    .unwrap();
                lat.push(t.elapsed());
                assert_eq!(v, i + 1);
            }
            lat
        })
        .await
        .unwrap();
        system.shutdown().await;
        crate::mean_p50(lat)
    })
}

/// W4: spawns `n` actors (each behavior from `make`, with a `post_stop` hook), tells each one
/// `Hello`, waits until all have handled it, measures the resident memory per actor, then stops
/// each and waits for every `post_stop`. Returns (seconds spent spawning, messaging and stopping,
/// bytes per live idle actor).
pub(crate) fn spawn_many(
    rt: &tokio::runtime::Runtime,
    make: fn(Arc<Done>) -> Behavior<Hello>,
    mailbox: Mailbox,
    n: usize,
) -> (f64, f64) {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let handled = Done::new(n);
        let stopped = Done::new(n);
        let opts = SpawnOptions::default().mailbox(mailbox);
        let before = crate::rss_bytes();
        let t = Instant::now();
        let mut refs = Vec::with_capacity(n);
        for i in 0..n {
            let s = stopped.clone();
            let b = Behaviors::with_lifecycle(make(handled.clone()))
                .post_stop(move |_ctx| s.finish_one());
            let r = system
                .spawn_with(b, &format!("a{i}"), opts.clone())
                .unwrap();
            r.tell(Hello);
            refs.push(r);
        }
        handled.notify.notified().await;
        let up = t.elapsed();
        let per_actor = crate::rss_bytes().saturating_sub(before) as f64 / n as f64;
        let t = Instant::now();
        for r in &refs {
            system.stop(r);
        }
        stopped.notify.notified().await;
        let secs = (up + t.elapsed()).as_secs_f64();
        drop(refs);
        system.shutdown().await;
        (secs, per_actor)
    })
}
