//! Delivery order, one message at a time, the next behavior, asks and mailbox overflow (rules L1,
//! L2, L3, L9, L10 in the guide's "Semantics and performance" chapter).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casty::testing::{TestKit, TestProbe};
use casty::{
    ActorRef, AskError, Behavior, Behaviors, DeadLetter, Mailbox, Overflow, SpawnError,
    SpawnOptions, TellError, UnhandledMessage,
};
use casty_tests::{QUIET, T};

fn forwarder(to: ActorRef<u64>) -> Behavior<u64> {
    Behaviors::receive(move |_ctx, n: u64| {
        to.tell(n);
        Behaviors::same()
    })
}

// Order is kept per sender→receiver pair (L1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_kept_per_sender_receiver_pair() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let fwd = kit.spawn(forwarder(probe.actor_ref()), "fwd");
    for i in 0..10_000u64 {
        fwd.tell(i);
    }
    for i in 0..10_000u64 {
        assert_eq!(probe.expect_message(T).await, i);
    }
    kit.shutdown().await;
}

// With two senders, each sender's own order holds, whatever the interleaving (L1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_two_senders_keeps_its_own_order() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let fwd = kit.spawn(forwarder(probe.actor_ref()), "fwd");
    let (a, b) = (fwd.clone(), fwd.clone());
    let ta = tokio::spawn(async move { (0..5000u64).for_each(|i| a.tell(i)) });
    let tb = tokio::spawn(async move { (0..5000u64).for_each(|i| b.tell(1_000_000 + i)) });
    ta.await.unwrap();
    tb.await.unwrap();
    let (mut next_a, mut next_b) = (0, 1_000_000);
    for _ in 0..10_000 {
        let m = probe.expect_message(T).await;
        if m >= 1_000_000 {
            assert_eq!(m, next_b);
            next_b += 1;
        } else {
            assert_eq!(m, next_a);
            next_a += 1;
        }
    }
    kit.shutdown().await;
}

// An actor handles one message at a time, even when the handler awaits (L2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_at_a_time_even_across_awaits() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<usize>();
    let inside = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let (i2, m2, p) = (inside.clone(), max_seen.clone(), probe.actor_ref());
    let a = kit.spawn(
        Behaviors::receive_async(move |_ctx, n: usize| {
            let (inside, max_seen, p) = (i2.clone(), m2.clone(), p.clone());
            Box::pin(async move {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                p.tell(n);
                Behaviors::same()
            })
        }),
        "serial",
    );
    for i in 0..50usize {
        a.tell(i);
    }
    for i in 0..50 {
        assert_eq!(probe.expect_message(T).await, i);
    }
    assert_eq!(max_seen.load(Ordering::SeqCst), 1);
    kit.shutdown().await;
}

fn counter(n: u64, probe: ActorRef<u64>) -> Behavior<u64> {
    Behaviors::receive(move |_ctx, cmd: u64| match cmd {
        0 => {
            probe.tell(n);
            Behaviors::same()
        }
        1 => counter(n + 1, probe.clone()),
        2 => Behaviors::stopped(),
        _ => Behaviors::unhandled(),
    })
}

// The returned behavior is the next one (L3): `same` keeps state, a new behavior replaces it,
// `stopped` stops after the message, `unhandled` publishes UnhandledMessage and keeps the behavior.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_new_stopped_and_unhandled_set_the_next_behavior() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<u64>();
    let mut unhandled = kit.event_probe::<UnhandledMessage>();
    let c = kit.spawn(counter(0, probe.actor_ref()), "counter");
    c.tell(1u64);
    c.tell(1u64);
    c.tell(0u64);
    assert_eq!(probe.expect_message(T).await, 2);
    c.tell(99u64);
    let u = unhandled.expect_message(T).await;
    assert_eq!(u.recipient, *c.path());
    c.tell(0u64);
    assert_eq!(
        probe.expect_message(T).await,
        2,
        "unhandled kept the behavior and its state"
    );
    c.tell(2u64);
    probe.expect_terminated(&c, T).await;
    kit.shutdown().await;
}

// `empty` treats every message as unhandled; `ignore` drops silently (next behavior, L3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_reports_unhandled_and_ignore_drops_silently() {
    let kit = TestKit::new();
    let mut unhandled = kit.event_probe::<UnhandledMessage>();
    let e = kit.spawn(Behaviors::empty::<String>(), "empty");
    e.tell("x");
    let u = unhandled.expect_message(T).await;
    assert_eq!(
        (u.recipient.as_str(), u.message.as_str()),
        ("/empty", "\"x\"")
    );
    let i = kit.spawn(Behaviors::ignore::<String>(), "ignore");
    i.tell("y");
    unhandled.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// An ask returns the reply; a missing reply times out; the late reply is a dead letter (L9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_gets_the_reply_or_times_out_and_a_late_reply_is_a_dead_letter() {
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<DeadLetter>();
    let slow = kit.spawn(casty_tests::slow_echo(), "slow");
    let sys = kit.system();
    assert_eq!(sys.ask(&slow, |r| (0u64, r), T).await, Ok(0));
    let err = sys
        .ask(&slow, |r| (300u64, r), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(err, AskError::Timeout(Duration::from_millis(50)));
    let d = dead.expect_message(T).await;
    assert!(
        d.recipient.as_str().starts_with("/_temp/ask-"),
        "late reply is a dead letter: {d:?}"
    );
    kit.shutdown().await;
}

// An ask to a stopped actor fails at once (L9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_to_a_stopped_actor_fails_at_once() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<()>();
    let a = kit.spawn(Behaviors::ignore::<ActorRef<u8>>(), "gone");
    kit.system().stop(&a);
    probe.expect_terminated(&a, T).await;
    let started = std::time::Instant::now();
    let err = kit
        .system()
        .ask(&a, |r: ActorRef<u8>| r, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(err, AskError::Terminated("/gone".into()));
    assert!(started.elapsed() < Duration::from_secs(1));
    kit.shutdown().await;
}

// A request dropped without a reply fails the ask at once, not at the deadline (L9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_whose_request_is_dropped_fails_at_once() {
    let kit = TestKit::new();
    let a = kit.spawn(Behaviors::ignore::<ActorRef<u8>>(), "drops");
    let started = std::time::Instant::now();
    let err = kit
        .system()
        .ask(&a, |r: ActorRef<u8>| r, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(err, AskError::NoReply);
    assert!(started.elapsed() < Duration::from_secs(1));
    kit.shutdown().await;
}

/// An actor that reports each message; on message 0 it reports and then blocks until released, so
/// later messages pile up in its mailbox.
fn gate(release: Arc<tokio::sync::Semaphore>, seen: ActorRef<u32>) -> Behavior<u32> {
    Behaviors::receive_async(move |_ctx, n: u32| {
        let (release, seen) = (release.clone(), seen.clone());
        Box::pin(async move {
            seen.tell(n);
            if n == 0 {
                let _ = release.acquire().await.map(|p| p.forget());
            }
            Behaviors::same()
        })
    })
}

/// Blocks a capacity-2 mailbox, sends 1, 2, 3, releases, and reports what was handled and dropped.
async fn mailbox_case(overflow: Overflow) -> (Vec<u32>, Vec<String>) {
    let kit = TestKit::new();
    let mut seen: TestProbe<u32> = kit.probe();
    let mut dead = kit.event_probe::<DeadLetter>();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let opts = SpawnOptions::default().mailbox(Mailbox::bounded(2, overflow));
    let a = kit.spawn_with(gate(release.clone(), seen.actor_ref()), "bounded", opts);
    a.tell(0u32);
    assert_eq!(seen.expect_message(T).await, 0); // the actor is now blocked, its mailbox empty
    for n in 1..=3u32 {
        a.tell(n);
    }
    let dropped = vec![dead.expect_message(T).await.message];
    release.add_permits(1);
    let got = vec![seen.expect_message(T).await, seen.expect_message(T).await];
    seen.expect_no_message(QUIET).await;
    dead.expect_no_message(QUIET).await;
    kit.shutdown().await;
    (got, dropped)
}

// A full mailbox with DropNew discards the incoming message; each drop is a dead letter (L10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_new_discards_the_incoming_message() {
    assert_eq!(
        mailbox_case(Overflow::DropNew).await,
        (vec![1, 2], vec!["3".to_string()])
    );
}

// A full mailbox with DropOldest discards the head (L10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_discards_the_head() {
    assert_eq!(
        mailbox_case(Overflow::DropOldest).await,
        (vec![2, 3], vec!["1".to_string()])
    );
}

// A full mailbox with Reject: try_tell hands the message back, send().await waits for room, tell
// makes a dead letter (L10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_hands_the_message_back_or_waits_for_room() {
    let kit = TestKit::new();
    let mut seen = kit.probe::<u32>();
    let mut dead = kit.event_probe::<DeadLetter>();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let opts = SpawnOptions::default().mailbox(Mailbox::bounded(1, Overflow::Reject));
    let a = kit.spawn_with(gate(release.clone(), seen.actor_ref()), "reject", opts);
    a.tell(0u32);
    assert_eq!(seen.expect_message(T).await, 0);
    assert_eq!(a.try_tell(1u32), Ok(()));
    assert_eq!(a.try_tell(2u32), Err(TellError::Full(2)));
    a.tell(4u32);
    assert_eq!(dead.expect_message(T).await.message, "4");
    let a2 = a.clone();
    let sender = tokio::spawn(async move { a2.send(3u32).await });
    tokio::time::sleep(QUIET).await;
    assert!(
        !sender.is_finished(),
        "send waits while the mailbox is full"
    );
    release.add_permits(1);
    assert_eq!(sender.await.unwrap(), Ok(()));
    assert_eq!(seen.expect_message(T).await, 1);
    assert_eq!(seen.expect_message(T).await, 3);
    kit.shutdown().await;
}

// The default mailbox is unbounded and never drops (L10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_mailbox_is_unbounded_and_never_drops() {
    let kit = TestKit::new();
    let mut seen = kit.probe::<u32>();
    let mut dead = kit.event_probe::<DeadLetter>();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let a = kit.spawn(gate(release.clone(), seen.actor_ref()), "unbounded");
    a.tell(0u32);
    assert_eq!(seen.expect_message(T).await, 0);
    for n in 1..1000u32 {
        a.tell(n);
    }
    release.add_permits(1);
    for n in 1..1000u32 {
        assert_eq!(seen.expect_message(T).await, n);
    }
    dead.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_names_are_checked() {
    let kit = TestKit::new();
    let sys = kit.system();
    sys.spawn(Behaviors::ignore::<u8>(), "a").unwrap();
    assert_eq!(
        sys.spawn(Behaviors::ignore::<u8>(), "a").unwrap_err(),
        SpawnError::DuplicateName("/a".into())
    );
    for bad in ["", "a/b", "with space", "_internal", "$anon"] {
        assert!(
            matches!(
                sys.spawn(Behaviors::ignore::<u8>(), bad),
                Err(SpawnError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    kit.shutdown().await;
    assert_eq!(
        sys.spawn(Behaviors::ignore::<u8>(), "late").unwrap_err(),
        SpawnError::SystemTerminated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_is_typed() {
    let kit = TestKit::new();
    let a = kit.spawn(Behaviors::ignore::<String>(), "typed");
    assert_eq!(kit.system().lookup::<String>("/typed"), Some(a));
    assert_eq!(kit.system().lookup::<u32>("/typed"), None);
    assert_eq!(kit.system().lookup::<String>("/missing"), None);
    kit.shutdown().await;
}

// A ref to a stopped actor turns its messages into dead letters (delivery and stop, L1 and L7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_stopped_actor_are_dead_letters() {
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<DeadLetter>();
    let mut probe = kit.probe::<()>();
    let a = kit.spawn(Behaviors::ignore::<String>(), "stopped");
    kit.system().stop(&a);
    probe.expect_terminated(&a, T).await;
    a.tell("late");
    assert_eq!(
        dead.expect_message(T).await,
        DeadLetter {
            recipient: a.path().clone(),
            message: "\"late\"".into(),
            reason: casty::DeadLetterReason::RecipientGone,
            count: 1,
        }
    );
    assert_eq!(
        a.try_tell("later"),
        Err(TellError::Closed("later".to_string()))
    );
    kit.shutdown().await;
}
