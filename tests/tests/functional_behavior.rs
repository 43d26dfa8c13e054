//! The functional style, where a handler returns a new behavior that captures the new state
//! (`counter(n + x)`): it allocates nothing per message, every captured value is dropped exactly
//! once, a panic inside such a handler is a failure that restarts from the initial behavior, and
//! clones of a behavior share its closure. Handlers too large or too aligned to be kept inline in
//! the behavior work the same way.
//!
//! This file installs a global allocator that counts the allocations of the thread that asks it
//! to, so that the allocation test can see what the actor's own thread allocates.

// The counting allocator is the only unsafe code here: it forwards to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Directive, Message, SupervisorStrategy};
use casty_tests::T;

/// Forwards to the system allocator, and counts the allocations made on a thread while that
/// thread's `COUNTING` flag is set.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread's locals may already be gone while it exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the counting touches only const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Debug)]
enum Counter {
    Add(u64),
    Get(ActorRef<u64>),
    Explode,
}

impl Message for Counter {}

/// The guide's functional counter: each `Add` returns a new behavior with the new count.
fn counter(n: u64) -> Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add(x) => counter(n + x),
        Counter::Get(reply_to) => {
            reply_to.tell(n);
            Behaviors::same()
        }
        Counter::Explode => panic!("counter exploded at {n}"),
    })
}

async fn get(system: &ActorSystem, c: &ActorRef<Counter>) -> u64 {
    system.ask(c, Counter::Get, T).await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn returning_a_new_behavior_from_a_handler_allocates_nothing() {
    const N: u64 = 1_000;
    static DONE: AtomicUsize = AtomicUsize::new(0);
    fn counting(n: u64) -> Behavior<u64> {
        Behaviors::receive(move |_ctx, x: u64| {
            if (n + x).is_multiple_of(N) {
                DONE.fetch_add(1, Ordering::SeqCst);
            }
            counting(n + x)
        })
    }
    let system = ActorSystem::new("functional");
    let c = system.spawn(counting(0), "counter").unwrap();
    // Two rounds of `N` messages, queued while the actor waits (one thread: it runs only when
    // this task awaits). The first round warms up what the runtime keeps between messages; the
    // second is counted, from the first message handled to the last.
    for round in 1..=2 {
        for _ in 0..N {
            c.tell(1u64);
        }
        COUNTING.with(|on| on.set(round == 2));
        while DONE.load(Ordering::SeqCst) < round {
            tokio::task::yield_now().await;
        }
        COUNTING.with(|on| on.set(false));
    }
    assert_eq!(
        ALLOCATIONS.with(Cell::get),
        0,
        "allocations while the actor handled {N} messages, each returning a new behavior"
    );
    system.shutdown().await;
}

#[tokio::test]
async fn a_functional_counter_keeps_its_state_across_new_behaviors() {
    let system = ActorSystem::new("functional");
    let c = system.spawn(counter(5), "counter").unwrap();
    for x in 1..=10_000 {
        c.tell(Counter::Add(x));
    }
    assert_eq!(get(&system, &c).await, 5 + 10_000 * 10_001 / 2);
    system.shutdown().await;
}

#[tokio::test]
async fn a_panic_in_a_functional_handler_restarts_from_the_initial_behavior() {
    let system = ActorSystem::new("functional");
    let strategy =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let c = system
        .spawn(Behaviors::supervise(counter(100), strategy), "counter")
        .unwrap();
    c.tell(Counter::Add(7));
    assert_eq!(get(&system, &c).await, 107);
    c.tell(Counter::Explode);
    assert_eq!(get(&system, &c).await, 100, "back to the initial count");
    c.tell(Counter::Add(1));
    assert_eq!(get(&system, &c).await, 101);
    system.shutdown().await;
}

/// A value that counts how many of its kind are alive.
#[derive(Debug)]
struct Token(Arc<AtomicUsize>);

impl Token {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Token(live.clone())
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A functional behavior whose closure owns a `Token`, a fresh one per behavior.
fn holding(n: u64, token: Token) -> Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add(x) => holding(n + x, Token::new(&token.0)),
        Counter::Get(reply_to) => {
            reply_to.tell(n);
            Behaviors::same()
        }
        Counter::Explode => panic!("exploded holding a token"),
    })
}

#[tokio::test]
async fn every_value_captured_by_a_replaced_behavior_is_dropped_once() {
    let live = Arc::new(AtomicUsize::new(0));
    let system = ActorSystem::new("functional");
    let strategy =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let c = system
        .spawn(
            Behaviors::supervise(holding(0, Token::new(&live)), strategy),
            "holder",
        )
        .unwrap();
    for _ in 0..1_000 {
        c.tell(Counter::Add(1));
    }
    assert_eq!(get(&system, &c).await, 1_000);
    // The initial behavior, kept for restarts, and the current one.
    assert_eq!(live.load(Ordering::SeqCst), 2);
    // A panic drops the current behavior; the restart starts again from the initial one, which
    // shares its closure with the kept one.
    c.tell(Counter::Explode);
    assert_eq!(get(&system, &c).await, 0);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    c.tell(Counter::Add(1));
    assert_eq!(get(&system, &c).await, 1);
    assert_eq!(live.load(Ordering::SeqCst), 2);
    system.shutdown().await;
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "nothing left once the actor is gone"
    );
}

#[tokio::test]
async fn clones_of_a_behavior_share_a_closure_that_is_not_clone() {
    let live = Arc::new(AtomicUsize::new(0));
    // A `Mutex` is not `Clone`, so neither is the closure; the behavior still is.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Mutex::new(seen.clone());
    let token = Token::new(&live);
    let b: Behavior<u64> = Behaviors::receive(move |_ctx, x: u64| {
        let _ = &token;
        log.lock().unwrap().lock().unwrap().push(x);
        Behaviors::same()
    });
    let copies: Vec<Behavior<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| b.clone())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(live.load(Ordering::SeqCst), 1, "one closure, shared");
    let system = ActorSystem::new("functional");
    let refs: Vec<ActorRef<u64>> = copies
        .into_iter()
        .chain([b])
        .enumerate()
        .map(|(i, b)| system.spawn(b, &format!("copy{i}")).unwrap())
        .collect();
    for (i, r) in refs.iter().enumerate() {
        r.tell(i as u64);
    }
    casty_tests::eventually("every copy handled its message", || {
        seen.lock().unwrap().len() == 4
    })
    .await;
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2, 3]);
    system.shutdown().await;
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A capture too large to be kept inline in a behavior.
#[derive(Clone, Copy)]
struct Large([u64; 32]);

/// A capture aligned beyond a machine word.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Aligned(u64);

fn large(l: Large, token: Arc<Token>) -> Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add(x) => {
            let mut next = l;
            next.0[31] += x;
            large(next, token.clone())
        }
        Counter::Get(reply_to) => {
            reply_to.tell(l.0[31] + l.0[0]);
            Behaviors::same()
        }
        Counter::Explode => panic!("a large behavior exploded"),
    })
}

fn aligned(a: Aligned, token: Arc<Token>) -> Behavior<Counter> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Counter::Add(x) => {
            assert_eq!(&a as *const Aligned as usize % 64, 0, "kept aligned");
            aligned(Aligned(a.0 + x), token.clone())
        }
        Counter::Get(reply_to) => {
            reply_to.tell(a.0);
            Behaviors::same()
        }
        Counter::Explode => panic!("an aligned behavior exploded"),
    })
}

#[tokio::test]
async fn large_and_over_aligned_captures_work_like_small_ones() {
    let live = Arc::new(AtomicUsize::new(0));
    let system = ActorSystem::new("functional");
    let strategy =
        || SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let mut start = Large([0; 32]);
    start.0[0] = 1_000;
    let l = system
        .spawn(
            Behaviors::supervise(large(start, Arc::new(Token::new(&live))), strategy()),
            "large",
        )
        .unwrap();
    let a = system
        .spawn(
            Behaviors::supervise(
                aligned(Aligned(2_000), Arc::new(Token::new(&live))),
                strategy(),
            ),
            "aligned",
        )
        .unwrap();
    for x in 1..=100 {
        l.tell(Counter::Add(x));
        a.tell(Counter::Add(x));
    }
    assert_eq!(get(&system, &l).await, 1_000 + 5_050);
    assert_eq!(get(&system, &a).await, 2_000 + 5_050);
    l.tell(Counter::Explode);
    a.tell(Counter::Explode);
    assert_eq!(
        get(&system, &l).await,
        1_000,
        "restarted from the initial behavior"
    );
    assert_eq!(
        get(&system, &a).await,
        2_000,
        "restarted from the initial behavior"
    );
    assert_eq!(live.load(Ordering::SeqCst), 2);
    system.shutdown().await;
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_handler_that_captures_nothing_works() {
    fn second() -> Behavior<ActorRef<u8>> {
        Behaviors::receive_message(|reply_to: ActorRef<u8>| {
            reply_to.tell(2);
            Behaviors::same()
        })
    }
    let system = ActorSystem::new("functional");
    let r = system
        .spawn(
            Behaviors::receive_message(|reply_to: ActorRef<u8>| {
                reply_to.tell(1);
                second()
            }),
            "nothing",
        )
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(system.ask(&r, |reply_to| reply_to, T).await.unwrap());
    }
    assert_eq!(got, vec![1, 2, 2]);
    system.shutdown().await;
}
