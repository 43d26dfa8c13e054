//! Stopping an actor and shutting a system down: children stop first, deepest first, then
//! `post_stop`, then watchers are told (L7); queued messages become dead letters; shutdown waits
//! for every `post_stop`, or aborts what is stuck once its timeout passes.

use std::time::Duration;

use casty::testing::{FishingOutcome, TestKit};
use casty::{ActorRef, Behavior, Behaviors, DeadLetter};
use casty_tests::T;

/// A node of a tree that logs its post_stop to `log` and spawns `depth` more levels.
fn node(name: String, depth: u32, log: ActorRef<String>) -> Behavior<String> {
    let l = log.clone();
    Behaviors::with_lifecycle(Behaviors::setup(move |ctx| {
        if depth > 0 {
            ctx.spawn(node(format!("{name}.a"), depth - 1, log.clone()), "a")
                .expect("a");
            ctx.spawn(node(format!("{name}.b"), depth - 1, log.clone()), "b")
                .expect("b");
        }
        Behaviors::ignore()
    }))
    .post_stop(move |ctx| l.tell(ctx.path().to_string()))
    .into()
}

// Stopping an actor stops its children first, deepest first; then its post_stop runs; then its
// watchers are told (L7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_stops_children_first_deepest_first_then_tells_watchers() {
    let kit = TestKit::new();
    let mut log = kit.probe::<String>();
    let mut watcher = kit.probe::<()>();
    let root = kit.spawn(node("root".into(), 2, log.actor_ref()), "root");
    // Wait until the whole tree (7 actors) is up.
    tokio::time::timeout(T, async {
        while kit.system().lookup::<String>("/root/b/b").is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    watcher.watch(&root);
    kit.system().stop(&root);
    let mut order = Vec::new();
    for _ in 0..7 {
        order.push(log.expect_message(T).await);
    }
    let pos = |p: &str| order.iter().position(|x| x == p).unwrap();
    for parent in ["/root/a", "/root/b"] {
        for leaf in ["a", "b"] {
            assert!(pos(&format!("{parent}/{leaf}")) < pos(parent), "{order:?}");
        }
        assert!(pos(parent) < pos("/root"), "{order:?}");
    }
    assert_eq!(order.last().map(String::as_str), Some("/root"));
    watcher.expect_terminated(&root, T).await;
    kit.shutdown().await;
}

// Messages still in the mailbox of a stopped actor become dead letters (L7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_at_stop_become_dead_letters() {
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<DeadLetter>();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (g, stopper) = (gate.clone(), kit.system().clone());
    let a: ActorRef<u32> = kit.spawn(
        Behaviors::receive_async(move |ctx, n: u32| {
            let (g, sys, me) = (g.clone(), stopper.clone(), ctx.self_ref().clone());
            Box::pin(async move {
                if n == 0 {
                    sys.stop(&me);
                    let _ = g.acquire().await.map(|p| p.forget());
                }
                Behaviors::same()
            })
        }),
        "busy",
    );
    a.tell(0u32);
    a.tell(1u32);
    a.tell(2u32);
    gate.add_permits(1);
    let msgs = dead
        .fish_for_message(T, |d| {
            if d.message == "2" {
                FishingOutcome::Complete
            } else {
                FishingOutcome::Continue
            }
        })
        .await;
    let texts: Vec<&str> = msgs.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(texts, ["1", "2"]);
    kit.shutdown().await;
}

// Shutdown returns only when every post_stop has finished (L7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_every_post_stop() {
    let kit = TestKit::new();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..20 {
        let d = done.clone();
        let b: Behavior<u8> = Behaviors::with_lifecycle(Behaviors::ignore())
            .post_stop(move |_| {
                std::thread::sleep(Duration::from_millis(5));
                d.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .into();
        kit.spawn(b, &format!("a{i}"));
    }
    kit.shutdown().await;
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 20);
    assert_eq!(kit.system().live_actors(), 0);
}

// A panic in post_stop is logged and published; the stop completes (watchers are told) and the
// system shuts down cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_stop_panic_is_published_and_the_stop_completes() {
    let kit = TestKit::new();
    let mut failed = kit.event_probe::<casty::LifecycleHookFailed>();
    let mut probe = kit.probe::<u8>();
    let b: Behavior<u8> = Behaviors::with_lifecycle(Behaviors::ignore())
        .post_stop(|_| panic!("post_stop failed"))
        .into();
    let a = kit.spawn(b, "bad-stop");
    kit.system().stop(&a);
    probe.expect_terminated(&a, T).await;
    let e = failed.expect_message(T).await;
    assert_eq!(e.path.as_str(), "/bad-stop");
    assert_eq!(e.hook, casty::LifecycleHook::PostStop);
    assert_eq!(e.failure.panic_message(), Some("post_stop failed"));
    assert!(kit.system().shutdown().await.is_complete());
}

/// An actor whose handler never completes once it gets a message (it says so on `entered`
/// first); it has one child.
fn stuck_parent(entered: ActorRef<u8>) -> Behavior<u8> {
    Behaviors::setup(move |ctx| {
        ctx.spawn(Behaviors::ignore::<u8>(), "child").unwrap();
        let entered = entered.clone();
        Behaviors::receive_async(move |_ctx, m: u8| {
            entered.tell(m);
            Box::pin(async {
                std::future::pending::<()>().await;
                Behaviors::same()
            })
        })
    })
}

// ANCHOR: shutdown_timeout
// A shutdown bounded by a timeout aborts what is still running when it passes, reports those
// actors (return value and event), and lets everything else stop normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_aborts_and_reports_stuck_actors() {
    let kit = TestKit::new();
    let system = kit.system().clone();
    let mut timed_out = kit.event_probe::<casty::ShutdownTimedOut>();
    let mut dead = kit.event_probe::<DeadLetter>();
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stopped.clone();
    let fine: Behavior<u8> = Behaviors::with_lifecycle(Behaviors::ignore())
        .post_stop(move |_| s.store(true, std::sync::atomic::Ordering::SeqCst))
        .into();
    kit.spawn(fine, "fine");
    let mut entered = kit.probe::<u8>();
    let stuck = kit.spawn(stuck_parent(entered.actor_ref()), "stuck");
    stuck.tell(1);
    stuck.tell(2); // still in the mailbox when the actor is aborted
    assert_eq!(entered.expect_message(T).await, 1); // the handler now waits forever
    let started = std::time::Instant::now();
    let outcome = system.shutdown_timeout(Duration::from_millis(300)).await;
    let took = started.elapsed();
    let aborted: Vec<String> = outcome.aborted().iter().map(|p| p.to_string()).collect();
    assert_eq!(aborted, ["/stuck", "/stuck/child"]);
    assert!(!outcome.is_complete());
    assert!(
        took >= Duration::from_millis(300),
        "waited the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "then stopped waiting: {took:?}"
    );
    assert!(
        stopped.load(std::sync::atomic::Ordering::SeqCst),
        "/fine stopped normally"
    );
    assert_eq!(system.live_actors(), 0);
    let e = timed_out.expect_message(T).await;
    assert_eq!(e.timeout, Duration::from_millis(300));
    assert_eq!(e.aborted, outcome.aborted());
    let d = dead.expect_message(T).await;
    assert_eq!((d.recipient.as_str(), d.message.as_str()), ("/stuck", "2"));
}
// ANCHOR_END: shutdown_timeout

// `shutdown()` uses the timeout set on the builder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_uses_the_builders_timeout() {
    let system = casty::ActorSystem::builder()
        .shutdown_timeout(Duration::from_millis(100))
        .build();
    let mut entered = casty::testing::TestProbe::new(&system);
    let stuck = system
        .spawn(stuck_parent(entered.actor_ref()), "stuck")
        .unwrap();
    stuck.tell(1);
    assert_eq!(entered.expect_message(T).await, 1);
    let outcome = tokio::time::timeout(T, system.shutdown())
        .await
        .expect("shutdown is bounded");
    assert_eq!(outcome.aborted().len(), 2);
}

// Producers keep telling while the actor stops: each message is handled or becomes a dead
// letter, exactly once, whatever the mailbox (the last pushes race the close of the mailbox and
// the drain of what it still holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_told_while_an_actor_stops_is_handled_or_a_dead_letter_once() {
    use casty::{Mailbox, Overflow, SpawnOptions};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    const PRODUCERS: u64 = 4;
    const EACH: u64 = 5_000;
    let kinds = [
        Mailbox::unbounded(),
        Mailbox::bounded(1_000_000, Overflow::DropNew),
        Mailbox::bounded(1_000_000, Overflow::DropOldest),
        Mailbox::bounded(1_000_000, Overflow::Reject),
    ];
    for (round, mailbox) in kinds.into_iter().enumerate() {
        let kit = TestKit::new();
        let dead = Arc::new(AtomicU64::new(0));
        let d = dead.clone();
        let _sub = kit
            .system()
            .event_stream()
            .subscribe(move |e: &DeadLetter| {
                d.fetch_add(e.count, Ordering::SeqCst);
            });
        let handled = Arc::new(AtomicU64::new(0));
        let h = handled.clone();
        let target = kit
            .system()
            .spawn_with(
                Behaviors::receive(move |_ctx, n: u64| {
                    // Slower than the producers, so that messages are still queued at the stop.
                    let mut x = n;
                    for _ in 0..300 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    Behaviors::same()
                }),
                "target",
                SpawnOptions::default().mailbox(mailbox),
            )
            .unwrap();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|_| {
                let t = target.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        t.tell(i);
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        casty_tests::eventually("some messages handled", || {
            handled.load(Ordering::SeqCst) > 0
        })
        .await;
        kit.system().stop(&target);
        for p in producers {
            p.await.unwrap();
        }
        casty_tests::eventually("every message accounted for", || {
            handled.load(Ordering::SeqCst) + dead.load(Ordering::SeqCst) >= PRODUCERS * EACH
        })
        .await;
        kit.shutdown().await;
        assert_eq!(
            handled.load(Ordering::SeqCst) + dead.load(Ordering::SeqCst),
            PRODUCERS * EACH,
            "mailbox {round}: handled {} and dead letters {}",
            handled.load(Ordering::SeqCst),
            dead.load(Ordering::SeqCst)
        );
    }
}
