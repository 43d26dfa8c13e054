//! Failure, restart, restart limits, backoff and escalation (rules L4, L5, L6 in the guide's
//! "Semantics and performance" chapter), plus the OTP supervisor.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use casty::otp::{ChildRestart, ChildSpec, SupervisorFlags, SupervisorMsg};
use casty::testing::TestKit;
use casty::{
    ActorRef, ActorRestarted, Backoff, Behavior, Behaviors, Directive, Failure, SupervisorStrategy,
};
use casty_tests::{Boom, QUIET, T};

#[derive(Debug)]
enum Cmd {
    Add(u64),
    Get(ActorRef<u64>),
    Fail(String),
    Panic,
}
impl casty::Message for Cmd {}

fn acc(n: u64) -> Behavior<Cmd> {
    Behaviors::receive(move |_ctx, cmd| match cmd {
        Cmd::Add(k) => Ok(acc(n + k)),
        Cmd::Get(r) => {
            r.tell(n);
            Ok(Behaviors::same())
        }
        Cmd::Fail(s) => Err(Boom(s)),
        Cmd::Panic => panic!("handler panicked"),
    })
}

fn restart_always(max: u32) -> SupervisorStrategy {
    SupervisorStrategy::new(max, Duration::from_secs(60))
}

/// `acc(0)` that reports, at each start, the milliseconds since it was first built.
fn reports_starts(report: ActorRef<u64>) -> Behavior<Cmd> {
    let t0 = Instant::now();
    Behaviors::setup(move |_ctx| {
        report.tell(t0.elapsed().as_millis() as u64);
        acc(0)
    })
}

// An Err and a panic are both failures; a panic takes down nothing else (L4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_and_panic_are_failures_and_the_system_survives() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let bystander = kit.spawn(acc(7), "bystander");
    let decided = Arc::new(std::sync::Mutex::new(Vec::new()));
    let d = decided.clone();
    let strategy = restart_always(10).decider(move |f: &Failure| {
        d.lock()
            .unwrap()
            .push(match (f.downcast_ref::<Boom>(), f.panic_message()) {
                (Some(b), _) => format!("err:{b}"),
                (_, Some(p)) => format!("panic:{p}"),
                _ => "other".into(),
            });
        Directive::Restart
    });
    let a = kit.spawn(Behaviors::supervise(acc(0), strategy), "faulty");
    a.tell(Cmd::Fail("e1".into()));
    a.tell(Cmd::Panic);
    a.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 0);
    assert_eq!(
        *decided.lock().unwrap(),
        ["err:e1", "panic:handler panicked"]
    );
    bystander.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 7);
    kit.shutdown().await;
}

// Without a supervise wrapper, a failure stops the actor (L4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupervised_failure_stops_the_actor() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(acc(0), "fragile");
    a.tell(Cmd::Panic);
    probe.expect_terminated(&a, T).await;
    kit.shutdown().await;
}

// A restart resets state, re-runs setup, runs pre_restart on the old incarnation and
// post_restart on the new one, and not post_stop (L5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resets_state_and_runs_hooks_in_order() {
    let kit = TestKit::new();
    let mut log = kit.probe::<String>();
    let mut probe = kit.probe::<u64>();
    let l = log.actor_ref();
    let (l1, l2, l3, l4) = (l.clone(), l.clone(), l.clone(), l.clone());
    let inner = Behaviors::setup(move |_ctx| {
        l.tell("setup".to_string());
        acc(0)
    });
    let b: Behavior<Cmd> =
        Behaviors::with_lifecycle(Behaviors::supervise(inner, restart_always(3)))
            .pre_start(move |_| l1.tell("pre_start".to_string()))
            .post_stop(move |_| l2.tell("post_stop".to_string()))
            .pre_restart(move |_, f| l3.tell(format!("pre_restart: {f}")))
            .post_restart(move |_| l4.tell("post_restart".to_string()))
            .into();
    let a = kit.spawn(b, "hooks");
    a.tell(Cmd::Add(5));
    a.tell(Cmd::Fail("boom".into()));
    a.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 0, "state was reset");
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(log.expect_message(T).await);
    }
    assert_eq!(
        seen,
        [
            "pre_start",
            "setup",
            "pre_restart: boom",
            "pre_start",
            "setup",
            "post_restart"
        ]
    );
    kit.system().stop(&a);
    assert_eq!(log.expect_message(T).await, "post_stop");
    log.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// Children of the failing actor are stopped before the restart (L5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_are_stopped_before_restart() {
    let kit = TestKit::new();
    let mut children = kit.probe::<ActorRef<Cmd>>();
    let mut watcher = kit.probe::<()>();
    let c = children.actor_ref();
    let parent = Behaviors::setup(move |ctx| {
        let child = ctx.spawn(acc(0), "child").expect("child");
        c.tell(child);
        acc(0)
    });
    let p = kit.spawn(Behaviors::supervise(parent, restart_always(3)), "parent");
    let first = children.expect_message(T).await;
    p.tell(Cmd::Fail("x".into()));
    watcher.expect_terminated(&first, T).await;
    let second = children.expect_message(T).await;
    assert_ne!(first, second);
    assert_eq!(first.path().as_str(), second.path().as_str());
    kit.shutdown().await;
}

// Messages that arrive during a backoff wait in the mailbox and none is lost (L5). On virtual
// time the restart happens exactly when the 200 ms backoff has passed.
#[tokio::test(start_paused = true)]
async fn messages_wait_in_the_mailbox_during_a_backoff() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let strategy = restart_always(3).backoff(Backoff::exponential(
        Duration::from_millis(200),
        Duration::from_secs(1),
    ));
    let a = kit.spawn(Behaviors::supervise(acc(0), strategy), "backoff");
    let started = Instant::now();
    a.tell(Cmd::Fail("x".into()));
    for _ in 0..10 {
        a.tell(Cmd::Add(1));
    }
    a.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 10);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(200),
        "the restart waited for exactly the backoff"
    );
    kit.shutdown().await;
}

// Past max_restarts within the window, the actor is stopped (L6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_limit_stops_the_actor() {
    let kit = TestKit::new();
    let mut restarted = kit.event_probe::<ActorRestarted>();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(Behaviors::supervise(acc(0), restart_always(2)), "limited");
    for i in 0..3 {
        a.tell(Cmd::Fail(format!("f{i}")));
    }
    assert_eq!(restarted.expect_message(T).await.failure.to_string(), "f0");
    assert_eq!(restarted.expect_message(T).await.failure.to_string(), "f1");
    probe.expect_terminated(&a, T).await;
    restarted.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// The backoff doubles between consecutive restarts up to its maximum (L6). On virtual time the
// actor's starts are exactly 100, 200, 400 and 400 ms apart (minimum 100 ms, maximum 400 ms, no
// jitter, a streak that does not reset in between).
#[tokio::test(start_paused = true)]
async fn backoff_gaps_double_up_to_the_maximum() {
    let kit = TestKit::new();
    let mut starts = kit.probe::<u64>();
    let counter = reports_starts(starts.actor_ref());
    let strategy = restart_always(10).backoff(
        Backoff::exponential(Duration::from_millis(100), Duration::from_millis(400))
            .reset_after(Duration::from_secs(10)),
    );
    let a = kit.spawn(Behaviors::supervise(counter, strategy), "growing");
    for i in 0..4 {
        a.tell(Cmd::Fail(format!("f{i}")));
    }
    let mut at = Vec::new();
    for _ in 0..5 {
        at.push(starts.expect_message(T).await);
    }
    assert_eq!(at, [0, 100, 300, 700, 1100]);
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [100, 200, 400, 400]);
    starts.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// After a quiet period (by default the maximum delay) without a failure, the backoff starts
// again from its minimum. On virtual time (minimum 100 ms, maximum 200 ms): the failures handled
// at 0, 100 and 300 ms wait 100, 200 and, 200 ms after the previous failure, 100 ms again.
#[tokio::test(start_paused = true)]
async fn backoff_starts_again_from_the_minimum_after_a_quiet_period() {
    let kit = TestKit::new();
    let mut starts = kit.probe::<u64>();
    let counter = reports_starts(starts.actor_ref());
    let strategy = restart_always(10).backoff(Backoff::exponential(
        Duration::from_millis(100),
        Duration::from_millis(200),
    ));
    let a = kit.spawn(Behaviors::supervise(counter, strategy), "resetting");
    for i in 0..4 {
        a.tell(Cmd::Fail(format!("f{i}")));
    }
    let mut at = Vec::new();
    for _ in 0..5 {
        at.push(starts.expect_message(T).await);
    }
    assert_eq!(at, [0, 100, 300, 400, 600]);
    kit.shutdown().await;
}

// Resume keeps the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_state() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(
        Behaviors::supervise(acc(0), restart_always(1).decider(|_| Directive::Resume)),
        "resumer",
    );
    a.tell(Cmd::Add(3));
    a.tell(Cmd::Fail("x".into()));
    a.tell(Cmd::Panic);
    a.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 3);
    kit.shutdown().await;
}

// An escalated failure makes the parent fail with ChildFailed (path and error), and the
// parent's own strategy decides (L6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_fails_the_parent_with_child_failed() {
    let kit = TestKit::new();
    let mut causes = kit.probe::<String>();
    let mut children = kit.probe::<ActorRef<Cmd>>();
    let (cz, ch) = (causes.actor_ref(), children.actor_ref());
    let parent = Behaviors::setup(move |ctx| {
        let child = ctx
            .spawn(
                Behaviors::supervise(acc(0), restart_always(3).decider(|_| Directive::Escalate)),
                "child",
            )
            .expect("child");
        ch.tell(child);
        acc(100)
    });
    let strategy = restart_always(3).decider(move |f| {
        let (path, cause) = f.as_child_failed().expect("a ChildFailed cause");
        cz.tell(format!("{path} failed: {cause}"));
        Directive::Restart
    });
    let _p = kit.spawn(Behaviors::supervise(parent, strategy), "parent");
    let child = children.expect_message(T).await;
    child.tell(Cmd::Fail("deep".into()));
    assert_eq!(causes.expect_message(T).await, "/parent/child failed: deep");
    let respawned = children.expect_message(T).await;
    assert_ne!(
        respawned, child,
        "the parent restarted and re-ran its setup"
    );
    kit.shutdown().await;
}

fn counted_worker(starts: Arc<AtomicUsize>) -> Behavior<Cmd> {
    Behaviors::setup(move |_ctx| {
        starts.fetch_add(1, Ordering::SeqCst);
        acc(0)
    })
}

async fn wait_for_new(kit: &TestKit, path: &str, old: &ActorRef<Cmd>) -> ActorRef<Cmd> {
    tokio::time::timeout(T, async {
        loop {
            if let Some(r) = kit.system().lookup::<Cmd>(path) {
                if &r != old {
                    return r;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("restarted child")
}

async fn child<T: Send + 'static>(kit: &TestKit, path: &str) -> ActorRef<T> {
    tokio::time::timeout(casty_tests::T, async {
        loop {
            if let Some(r) = kit.system().lookup::<T>(path) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("child")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_one_for_one_restarts_only_the_failed_child() {
    let kit = TestKit::new();
    let (s1, s2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let specs = vec![
        ChildSpec::new("a", counted_worker(s1.clone()), ChildRestart::Permanent),
        ChildSpec::new("b", counted_worker(s2.clone()), ChildRestart::Permanent),
    ];
    kit.spawn(
        Behaviors::supervisor(specs, SupervisorFlags::one_for_one()),
        "sup",
    );
    let a = child(&kit, "/sup/a").await;
    let b = child(&kit, "/sup/b").await;
    a.tell(Cmd::Fail("x".into()));
    wait_for_new(&kit, "/sup/a", &a).await;
    assert_eq!(kit.system().lookup::<Cmd>("/sup/b"), Some(b));
    // The new incarnation's setup runs on its own task, after it is registered.
    casty_tests::eventually("a's setup ran again", || s1.load(Ordering::SeqCst) == 2).await;
    assert_eq!(
        (s1.load(Ordering::SeqCst), s2.load(Ordering::SeqCst)),
        (2, 1)
    );
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_rest_for_one_restarts_later_children() {
    let kit = TestKit::new();
    let starts: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let specs = (0..3)
        .map(|i| {
            ChildSpec::new(
                format!("c{i}"),
                counted_worker(starts[i].clone()),
                ChildRestart::Permanent,
            )
        })
        .collect();
    kit.spawn(
        Behaviors::supervisor(specs, SupervisorFlags::rest_for_one()),
        "sup",
    );
    let c1 = child(&kit, "/sup/c1").await;
    let c2 = child(&kit, "/sup/c2").await;
    c1.tell(Cmd::Fail("x".into()));
    wait_for_new(&kit, "/sup/c1", &c1).await;
    wait_for_new(&kit, "/sup/c2", &c2).await;
    // The new incarnations' setups run on their own tasks, after they are registered.
    casty_tests::eventually("c1's and c2's setups ran again", || {
        starts[1].load(Ordering::SeqCst) == 2 && starts[2].load(Ordering::SeqCst) == 2
    })
    .await;
    let counts: Vec<usize> = starts.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 2, 2]);
    kit.shutdown().await;
}

// A transient child is restarted after a failure but not after a normal exit; a temporary child
// is never restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_transient_children_restart_only_after_a_failure_and_temporary_ones_never() {
    let kit = TestKit::new();
    let specs = vec![
        ChildSpec::new("transient", acc(0), ChildRestart::Transient),
        ChildSpec::new("temporary", acc(0), ChildRestart::Temporary),
        ChildSpec::new(
            "stopper",
            Behaviors::receive(|_ctx, _: u8| Behaviors::stopped()),
            ChildRestart::Transient,
        ),
    ];
    let sup = kit.spawn(
        Behaviors::supervisor(specs, SupervisorFlags::one_for_one()),
        "sup",
    );
    let transient: ActorRef<Cmd> = child(&kit, "/sup/transient").await;
    let temporary: ActorRef<Cmd> = child(&kit, "/sup/temporary").await;
    let stopper: ActorRef<u8> = child(&kit, "/sup/stopper").await;
    let mut w = kit.probe::<()>();
    stopper.tell(1u8); // a normal exit: a transient child is not restarted
    w.expect_terminated(&stopper, T).await;
    temporary.tell(Cmd::Fail("x".into())); // never restarted
    w.expect_terminated(&temporary, T).await;
    transient.tell(Cmd::Fail("x".into())); // a failure: restarted
    wait_for_new(&kit, "/sup/transient", &transient).await;
    // The supervisor hears of each child's end after the child's watchers do, so ask until it
    // has heard of all three.
    let expected = [
        ("transient".to_string(), true),
        ("temporary".to_string(), false),
        ("stopper".to_string(), false),
    ];
    let mut running = Vec::new();
    let deadline = Instant::now() + T;
    while running != expected && Instant::now() < deadline {
        let infos = kit
            .system()
            .ask(&sup, SupervisorMsg::WhichChildren, T)
            .await
            .unwrap();
        running = infos
            .iter()
            .map(|i| (i.name.clone(), i.path.is_some()))
            .collect();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(running, expected);
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_intensity_exceeded_fails_the_supervisor() {
    let kit = TestKit::new();
    let specs = vec![ChildSpec::new("w", acc(0), ChildRestart::Permanent)];
    let flags = SupervisorFlags::one_for_one().intensity(2, Duration::from_secs(60));
    let sup = kit.spawn(Behaviors::supervisor(specs, flags), "sup");
    let mut w = kit.probe::<()>();
    let mut current = child(&kit, "/sup/w").await;
    for _ in 0..2 {
        current.tell(Cmd::Fail("x".into()));
        current = wait_for_new(&kit, "/sup/w", &current).await;
    }
    current.tell(Cmd::Fail("x".into())); // the third restart exceeds the intensity
    w.expect_terminated(&sup, T).await;
    assert!(
        kit.system().lookup::<Cmd>("/sup/w").is_none(),
        "the supervisor's children are stopped"
    );
    kit.shutdown().await;
}

// The OTP supervisor's restart intensity is a sliding window: a restart more than `within` after
// the previous one is allowed again, one inside it fails the supervisor. On virtual time, with at
// most one restart per second.
#[tokio::test(start_paused = true)]
async fn otp_intensity_counts_only_restarts_within_the_window() {
    let kit = TestKit::new();
    let specs = vec![ChildSpec::new("w", acc(0), ChildRestart::Permanent)];
    let flags = SupervisorFlags::one_for_one().intensity(1, Duration::from_secs(1));
    let sup = kit.spawn(Behaviors::supervisor(specs, flags), "sup");
    let mut w = kit.probe::<()>();
    let mut current = child(&kit, "/sup/w").await;
    current.tell(Cmd::Fail("x".into()));
    current = wait_for_new(&kit, "/sup/w", &current).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    current.tell(Cmd::Fail("x".into())); // the first restart has left the window
    current = wait_for_new(&kit, "/sup/w", &current).await;
    current.tell(Cmd::Fail("x".into())); // the second is still in it
    w.expect_terminated(&sup, T).await;
    kit.shutdown().await;
}

/// A counter behind lifecycle hooks, for the hook-failure tests: `pre_start` and `post_restart`
/// panic while their `fail_*` budget lasts, and every hook call is logged.
fn hooked(
    log: ActorRef<String>,
    strategy: Option<SupervisorStrategy>,
    fail_pre_start: usize,
    fail_post_restart: usize,
) -> Behavior<Cmd> {
    let pre_start_left = Arc::new(AtomicUsize::new(fail_pre_start));
    let post_restart_left = Arc::new(AtomicUsize::new(fail_post_restart));
    let inner = match strategy {
        Some(s) => Behaviors::supervise(acc(0), s),
        None => acc(0),
    };
    let (l1, l2) = (log.clone(), log);
    Behaviors::with_lifecycle(inner)
        .pre_start(move |_| {
            l1.tell("pre_start".to_string());
            if pre_start_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                panic!("pre_start failed");
            }
        })
        .post_restart(move |_| {
            l2.tell("post_restart".to_string());
            if post_restart_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                panic!("post_restart failed");
            }
        })
        .into()
}

// A panic in pre_start is a failure of the start (L4): a restart strategy restarts the actor, and
// the new incarnation works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_start_panic_is_a_failure_that_supervision_restarts() {
    let kit = TestKit::new();
    let mut log = kit.probe::<String>();
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(
        hooked(log.actor_ref(), Some(restart_always(3)), 1, 0),
        "starter",
    );
    let r = restarts.expect_message(T).await;
    assert_eq!(r.path.as_str(), "/starter");
    assert_eq!(r.failure.panic_message(), Some("pre_start failed"));
    a.tell(Cmd::Add(2));
    a.tell(Cmd::Get(probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, 2);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(log.expect_message(T).await);
    }
    assert_eq!(seen, ["pre_start", "pre_start", "post_restart"]);
    kit.shutdown().await;
}

// Without supervision, a panic in pre_start stops the actor, as a failure in a handler does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_start_panic_without_supervision_stops_the_actor() {
    let kit = TestKit::new();
    let log = kit.probe::<String>();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(hooked(log.actor_ref(), None, 1, 0), "fragile-start");
    probe.expect_terminated(&a, T).await;
    kit.shutdown().await;
}

// A panic in post_restart fails the new incarnation: it counts against the restart limit, and
// past it the actor stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_restart_panic_fails_the_new_incarnation() {
    let kit = TestKit::new();
    let mut log = kit.probe::<String>();
    let mut probe = kit.probe::<u64>();
    let a = kit.spawn(
        hooked(log.actor_ref(), Some(restart_always(2)), 0, usize::MAX),
        "restarter",
    );
    a.tell(Cmd::Fail("first".into()));
    probe.expect_terminated(&a, T).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(log.expect_message(T).await);
    }
    assert_eq!(
        seen,
        [
            "pre_start",
            "pre_start",
            "post_restart",
            "pre_start",
            "post_restart"
        ]
    );
    log.expect_no_message(QUIET).await;
    kit.shutdown().await;
}
