//! The backoff snippet of the guide's "Supervision" chapter, compiled and run: the restarts of a
//! failing actor wait out an exponential backoff, and messages sent meanwhile wait in the mailbox.

use std::time::{Duration, Instant};

use casty::testing::TestKit;
use casty::{ActorRef, Backoff, Behavior, Behaviors, SupervisorStrategy};

#[derive(Debug, thiserror::Error)]
#[error("asked to fail")]
struct AskedToFail;

/// Fails on `None`; answers `Some(reply_to)` with how many messages this incarnation handled.
fn flaky(handled: u32) -> Behavior<Option<ActorRef<u32>>> {
    Behaviors::receive(move |_ctx, msg: Option<ActorRef<u32>>| match msg {
        None => Err(AskedToFail),
        Some(reply_to) => {
            reply_to.tell(handled + 1);
            Ok(flaky(handled + 1))
        }
    })
}

// Each restart waits the backoff's delay (100 ms, then 200 ms, .. up to 10 s, plus up to 20 %
// jitter), and a message sent during it is handled by the restarted actor afterwards.
#[tokio::test]
async fn restarts_wait_out_the_exponential_backoff() {
    // ANCHOR: backoff
    let strategy = SupervisorStrategy::new(5, Duration::from_secs(60)).backoff(
        Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.2),
    );
    // ANCHOR_END: backoff
    let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10));
    assert_eq!(
        [1, 2, 3, 9].map(|n| backoff.delay(n)),
        [100, 200, 400, 10_000].map(Duration::from_millis)
    );

    let kit = TestKit::new();
    let mut probe = kit.probe::<u32>();
    let actor = kit.spawn(Behaviors::supervise(flaky(0), strategy), "flaky");
    actor.tell(Some(probe.actor_ref()));
    assert_eq!(probe.expect_message(Duration::from_secs(5)).await, 1);
    let failed_at = Instant::now();
    actor.tell(None); // fails: the restart waits 100 to 120 ms
    actor.tell(Some(probe.actor_ref())); // waits in the mailbox for the restarted actor
    assert_eq!(probe.expect_message(Duration::from_secs(5)).await, 1);
    assert!(
        failed_at.elapsed() >= Duration::from_millis(100),
        "answered after the backoff: {:?}",
        failed_at.elapsed()
    );
    kit.shutdown().await;
}
