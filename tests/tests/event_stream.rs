//! The event stream (L12): lifecycle events reach every subscriber even while one is stuck, and
//! ending a subscription (drop or unsubscribe) stops delivery exactly; detached subscriptions.

use std::time::Duration;

use casty::testing::TestKit;
use casty::{ActorRestarted, ActorStarted, ActorStopped, Behavior, Behaviors, SupervisorStrategy};
use casty_tests::{Boom, T};

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
