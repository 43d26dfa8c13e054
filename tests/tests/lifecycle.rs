//! Stopping, death watch, timers and the event stream: rules L7, L8, L11, L12.

use std::time::Duration;

use casty::testing::{FishingOutcome, TestKit};
use casty::{
    ActorRef, ActorRestarted, ActorStarted, ActorStopped, Behavior, Behaviors, DeadLetter,
    Directive, SupervisorStrategy, Terminated,
};
use casty_tests::{Boom, QUIET, T};

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

// S: L7 — stopping stops the children first, deepest first; then post_stop; then watchers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_children_stop_first_deepest_first() {
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

// S: L7 — messages still in the mailbox become dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_queued_messages_become_dead_letters() {
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

// S: L7 — shutdown returns only when every post_stop has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_shutdown_waits_for_every_post_stop() {
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

#[derive(Debug)]
enum W {
    Watch(ActorRef<u8>),
    WatchWith(ActorRef<u8>),
    Unwatch(ActorRef<u8>),
    Terminated(Terminated),
    Custom(String),
}
impl casty::Message for W {}
impl From<Terminated> for W {
    fn from(t: Terminated) -> Self {
        W::Terminated(t)
    }
}

fn watcher(report: ActorRef<String>) -> Behavior<W> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            W::Watch(r) => ctx.watch(&r),
            W::WatchWith(r) => ctx.watch_with(&r, W::Custom(format!("custom {}", r.path()))),
            W::Unwatch(r) => ctx.unwatch(&r),
            W::Terminated(t) => report.tell(format!("terminated {}", t.path)),
            W::Custom(s) => report.tell(s),
        }
        Behaviors::same()
    })
}

// S: L8 — Terminated exactly once, also for an actor already dead at watch time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l8_terminated_exactly_once_even_if_already_dead() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let w = kit.spawn(watcher(report.actor_ref()), "watcher");
    let target = kit.spawn(Behaviors::ignore::<u8>(), "target");
    w.tell(W::Watch(target.clone()));
    w.tell(W::Watch(target.clone())); // watching twice still yields one Terminated
    w.tell(W::Custom("both watches registered".into()));
    assert_eq!(report.expect_message(T).await, "both watches registered");
    kit.system().stop(&target);
    assert_eq!(report.expect_message(T).await, "terminated /target");
    report.expect_no_message(QUIET).await;

    w.tell(W::Watch(target.clone())); // already dead
    assert_eq!(report.expect_message(T).await, "terminated /target");
    report.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// S: L8 — watch_with delivers the custom message; unwatch suppresses delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l8_watch_with_and_unwatch() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let w = kit.spawn(watcher(report.actor_ref()), "watcher");
    let a = kit.spawn(Behaviors::ignore::<u8>(), "a");
    let b = kit.spawn(Behaviors::ignore::<u8>(), "b");
    w.tell(W::WatchWith(a.clone()));
    w.tell(W::Watch(b.clone()));
    w.tell(W::Unwatch(b.clone()));
    w.tell(W::Custom("synced".into()));
    assert_eq!(report.expect_message(T).await, "synced");
    kit.system().stop(&a);
    kit.system().stop(&b);
    assert_eq!(report.expect_message(T).await, "custom /a");
    report.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// S: L8 — unwatch suppresses a Terminated that is already queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l8_unwatch_suppresses_a_queued_terminated() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let target = kit.spawn(Behaviors::ignore::<u8>(), "target");
    let mut w8 = kit.probe::<()>();
    let sys = kit.system().clone();
    let r = report.actor_ref();
    // On "go": watch, stop the target, wait until it is gone (its Terminated is queued behind this
    // handler), then unwatch before returning.
    let w = kit.spawn(
        Behaviors::receive_async(move |ctx, msg: W| {
            let (sys, r) = (sys.clone(), r.clone());
            Box::pin(async move {
                match msg {
                    W::Watch(t) => {
                        ctx.watch(&t);
                        sys.stop(&t);
                        while sys.lookup::<u8>("/target").is_some() {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        ctx.unwatch(&t);
                        r.tell("unwatched".to_string());
                    }
                    W::Terminated(t) => r.tell(format!("terminated {}", t.path)),
                    _ => {}
                }
                Behaviors::same()
            })
        }),
        "w",
    );
    w.tell(W::Watch(target.clone()));
    assert_eq!(report.expect_message(T).await, "unwatched");
    report.expect_no_message(QUIET).await;
    w8.expect_terminated(&target, T).await;
    kit.shutdown().await;
}

#[derive(Debug, Clone)]
enum Tm {
    StartOnce(&'static str, u64, &'static str),
    StartPeriodic(&'static str, u64, &'static str),
    Cancel(&'static str),
    Fire(&'static str),
    /// Keeps the actor busy (handling nothing else) for this many milliseconds.
    Busy(u64),
    /// Keeps the actor busy, then restarts a timer key, in one message.
    BusyThenStart(u64, &'static str, u64, &'static str),
    Crash,
}
impl casty::Message for Tm {}

/// An actor driving timers; each `Fire` is reported. Busy periods await tokio's sleep, so on a
/// runtime with paused time they take exactly their virtual duration.
fn timers(report: ActorRef<String>) -> Behavior<Tm> {
    Behaviors::receive_async(move |ctx, msg| {
        let report = report.clone();
        Box::pin(async move {
            match msg {
                Tm::StartOnce(k, ms, m) => {
                    ctx.start_single_timer(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::StartPeriodic(k, ms, m) => {
                    ctx.start_timer_at_fixed_rate(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::Cancel(k) => ctx.cancel_timer(k),
                Tm::Fire(m) => report.tell(m.to_string()),
                Tm::Busy(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Tm::BusyThenStart(busy, k, ms, m) => {
                    tokio::time::sleep(Duration::from_millis(busy)).await;
                    ctx.start_single_timer(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::Crash => return Err(Boom::new("crash")),
            }
            Ok(Behaviors::same())
        })
    })
}

/// Receives reports until `until` (virtual time since `t0`), each with the milliseconds since
/// `t0` at which it arrived.
async fn reports_until(
    report: &mut casty::testing::TestProbe<String>,
    t0: tokio::time::Instant,
    until: Duration,
) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let deadline = t0 + until;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match report.receive_message(left).await {
            Some(m) => seen.push((t0.elapsed().as_millis() as u64, m)),
            None => return seen,
        }
    }
}

// Restarting a timer key replaces the timer (L11): the replaced timer's message is never
// delivered, even though it fired and was queued while the actor was busy. On virtual time: the
// old timer fires at 10 ms, the key is restarted at 60 ms for 30 ms, so "new" arrives at 90 ms.
#[tokio::test(start_paused = true)]
async fn restarting_a_timer_key_drops_the_old_timers_queued_message() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let a = kit.spawn(timers(report.actor_ref()), "timers");
    let t0 = tokio::time::Instant::now();
    a.tell(Tm::StartOnce("k", 10, "old"));
    a.tell(Tm::BusyThenStart(60, "k", 30, "new"));
    assert_eq!(
        reports_until(&mut report, t0, Duration::from_millis(500)).await,
        [(90, "new".to_string())]
    );
    kit.shutdown().await;
}

// A cancelled timer delivers nothing, and a periodic timer never catches up on the ticks it
// missed while the actor was busy (L11). On virtual time, with a 10 ms period and the actor busy
// from 0 to 205 ms: the one tick left pending arrives at 205 ms, then one every 10 ms; after the
// cancel at 255 ms nothing more.
#[tokio::test(start_paused = true)]
async fn a_periodic_timer_skips_missed_ticks_and_stops_when_cancelled() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let a = kit.spawn(timers(report.actor_ref()), "timers");
    let t0 = tokio::time::Instant::now();
    a.tell(Tm::StartOnce("once", 30, "never"));
    a.tell(Tm::Cancel("once"));
    a.tell(Tm::StartPeriodic("tick", 10, "tick"));
    a.tell(Tm::Busy(205));
    let ticks = reports_until(&mut report, t0, Duration::from_millis(255)).await;
    let expected: Vec<(u64, String)> = [205, 210, 220, 230, 240, 250]
        .into_iter()
        .map(|t| (t, "tick".to_string()))
        .collect();
    assert_eq!(ticks, expected);
    a.tell(Tm::Cancel("tick"));
    report.expect_no_message(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

// Timers are cancelled when the actor restarts (L11): the timer due at 50 ms never fires.
#[tokio::test(start_paused = true)]
async fn a_restart_cancels_the_actors_timers() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let a = kit.spawn(
        Behaviors::supervise(timers(report.actor_ref()), strategy),
        "timers",
    );
    a.tell(Tm::StartOnce("k", 50, "before-restart"));
    a.tell(Tm::Crash);
    report.expect_no_message(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

// Lifecycle events are published for every actor, and a slow subscriber does not hold up the
// publisher (L12): while one callback subscriber is stuck on its first event, the others see the
// actor start, restart and stop; released, it gets its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_reach_subscribers_while_another_subscriber_is_stuck() {
    let kit = TestKit::new();
    let mut started = kit.event_probe::<ActorStarted>();
    let mut stopped = kit.event_probe::<ActorStopped>();
    let mut restarted = kit.event_probe::<ActorRestarted>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel::<String>();
    let _slow = kit
        .system()
        .event_stream()
        .subscribe(move |e: &ActorStarted| {
            // Stuck until the test releases it (bounded, so a failing test cannot hang).
            let _ = released.lock().unwrap().recv_timeout(T);
            let _ = seen_tx.send(e.path.to_string());
        });
    let strategy = SupervisorStrategy::new(3, Duration::from_secs(60));
    let a = kit.spawn(
        Behaviors::supervise(
            Behaviors::receive(|_ctx, _: u8| Err::<Behavior<u8>, _>(Boom::new("x"))),
            strategy,
        ),
        "evented",
    );
    assert_eq!(started.expect_message(T).await.path, *a.path());
    a.tell(1u8);
    assert_eq!(restarted.expect_message(T).await.path, *a.path());
    kit.system().stop(&a);
    assert_eq!(stopped.expect_message(T).await.path, *a.path());
    assert!(
        seen.try_recv().is_err(),
        "the slow subscriber is still stuck on its first event"
    );
    drop(release);
    let first = tokio::time::timeout(T, seen.recv()).await.unwrap();
    assert_eq!(first, Some(a.path().to_string()));
    kit.shutdown().await;
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

#[derive(Debug)]
enum Parent {
    StopWorker,
    Terminated(Terminated),
}
impl casty::Message for Parent {}
impl From<Terminated> for Parent {
    fn from(t: Terminated) -> Self {
        Parent::Terminated(t)
    }
}

/// Watches its child "worker" and, when it terminates, reports its children and starts a
/// replacement under the same name.
fn replacing_parent(report: ActorRef<String>) -> Behavior<Parent> {
    Behaviors::setup(move |ctx| {
        let worker = ctx.spawn(Behaviors::ignore::<u8>(), "worker").unwrap();
        ctx.watch(&worker);
        let report = report.clone();
        Behaviors::receive(move |ctx, msg| {
            match msg {
                Parent::StopWorker => {
                    if let Some(w) = ctx.child::<u8>("worker") {
                        ctx.stop(&w);
                    }
                }
                Parent::Terminated(t) => {
                    let children: Vec<String> =
                        ctx.children().iter().map(|p| p.to_string()).collect();
                    let spawned = ctx.spawn(Behaviors::ignore::<u8>(), "worker");
                    let uid_changed = spawned.as_ref().is_ok_and(|n| n.path() != &t.path);
                    report.tell(format!(
                        "terminated {}; children {children:?}; replacement {}; new uid {uid_changed}",
                        t.path,
                        if spawned.is_ok() { "started" } else { "refused" },
                    ));
                    if let Ok(n) = spawned {
                        ctx.watch(&n);
                    }
                }
            }
            Behaviors::same()
        })
    })
}

// By the time a parent handles Terminated for its child, the child is gone from children() and
// its name is free, so "on Terminated, start a replacement" works, again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_child_is_gone_and_its_name_free_for_a_replacement() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let p = kit.spawn(replacing_parent(report.actor_ref()), "parent");
    for _ in 0..3 {
        p.tell(Parent::StopWorker);
        assert_eq!(
            report.expect_message(T).await,
            "terminated /parent/worker; children []; replacement started; new uid true"
        );
    }
    kit.shutdown().await;
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
/// How a test ends a subscription.
#[derive(Debug, Clone, Copy)]
enum End {
    Drop,
    Unsubscribe,
}

impl End {
    fn end(self, sub: casty::Subscription) {
        match self {
            End::Drop => drop(sub),
            End::Unsubscribe => sub.unsubscribe(),
        }
    }
}

// Dropping or unsubscribing a callback subscription delivers what was published before and
// nothing after: the callback's task drains its queue and ends (which closes the channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_callback_subscription_stops_delivery_exactly() {
    for how in [End::Drop, End::Unsubscribe] {
        let kit = TestKit::new();
        let stream = kit.system().event_stream().clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let sub = stream.subscribe(move |n: &u32| {
            let _ = tx.send(*n);
        });
        stream.publish(1u32);
        stream.publish(2u32);
        how.end(sub);
        stream.publish(3u32);
        assert!(!stream.has_subscribers::<u32>(), "{how:?}");
        let mut got = Vec::new();
        while let Some(n) = tokio::time::timeout(T, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{how:?}: the callback task did not end"))
        {
            got.push(n);
        }
        assert_eq!(got, [1, 2], "{how:?}");
        kit.shutdown().await;
    }
}

// The same for an actor subscriber: a message told after the end arrives right after the events
// published before it, with nothing in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_an_actor_subscription_stops_delivery_exactly() {
    for how in [End::Drop, End::Unsubscribe] {
        let kit = TestKit::new();
        let stream = kit.system().event_stream().clone();
        let mut probe = kit.probe::<u32>();
        let sub = stream.subscribe_actor(probe.actor_ref());
        stream.publish(1u32);
        stream.publish(2u32);
        how.end(sub);
        stream.publish(3u32);
        probe.actor_ref().tell(99u32);
        assert_eq!(probe.expect_message(T).await, 1, "{how:?}");
        assert_eq!(probe.expect_message(T).await, 2, "{how:?}");
        assert_eq!(probe.expect_message(T).await, 99, "{how:?}");
        assert!(!stream.has_subscribers::<u32>(), "{how:?}");
        kit.shutdown().await;
    }
}

// A detached subscription outlives its handle; ending one subscription leaves the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_subscription_keeps_delivering() {
    let kit = TestKit::new();
    let stream = kit.system().event_stream().clone();
    let mut kept = kit.probe::<u32>();
    let mut ended = kit.probe::<u32>();
    stream.subscribe_actor(kept.actor_ref()).detach();
    let sub = stream.subscribe_actor(ended.actor_ref());
    stream.publish(1u32);
    drop(sub);
    stream.publish(2u32);
    ended.actor_ref().tell(99u32);
    assert_eq!(kept.expect_message(T).await, 1);
    assert_eq!(kept.expect_message(T).await, 2);
    assert_eq!(ended.expect_message(T).await, 1);
    assert_eq!(ended.expect_message(T).await, 99);
    assert!(stream.has_subscribers::<u32>());
    kit.shutdown().await;
}
