//! `ActorRef::ask`: asking through the target's ref, without the system, behaves like
//! `ActorSystem::ask` (the reply, a deadline, an immediate failure for a stopped actor, a late
//! reply as a dead letter), for local, probe and remote refs.

use std::time::{Duration, Instant};

use casty::remote::RemoteSettings;
use casty::testing::TestKit;
use casty::{ActorRef, AskError, Behaviors, DeadLetter};
use casty_tests::remote_kit::{address, bank, node, node_with, Bank};
use casty_tests::T;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_through_a_ref_returns_the_reply() {
    let kit = TestKit::new();
    let doubler = kit.spawn(
        Behaviors::receive_message(|(n, reply_to): (u64, ActorRef<u64>)| {
            reply_to.tell(n * 2);
            Behaviors::same()
        }),
        "doubler",
    );
    let doubled = doubler.ask(|reply_to| (21, reply_to), T).await;
    assert_eq!(doubled, Ok(42));
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_through_a_ref_times_out_and_its_late_reply_is_a_dead_letter() {
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<DeadLetter>();
    let slow = kit.spawn(casty_tests::slow_echo(), "slow");
    let deadline = Duration::from_millis(50);
    let r = slow.ask(|reply_to| (200u64, reply_to), deadline).await;
    assert_eq!(r, Err(AskError::Timeout(deadline)));
    let d = dead.expect_message(T).await;
    assert!(
        d.recipient.as_str().starts_with("/_temp/ask-"),
        "the late reply is a dead letter: {d:?}"
    );
    assert_eq!(d.message, "u64");
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_through_a_ref_to_a_stopped_actor_fails_at_once() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<()>();
    let gone = kit.spawn(Behaviors::ignore::<ActorRef<u8>>(), "gone");
    kit.system().stop(&gone);
    probe.expect_terminated(&gone, T).await;
    let started = Instant::now();
    let r = gone
        .ask(|reply_to: ActorRef<u8>| reply_to, Duration::from_secs(30))
        .await;
    assert_eq!(r, Err(AskError::Terminated("/gone".into())));
    assert!(started.elapsed() < Duration::from_secs(1));
    kit.shutdown().await;
}

// A probe's ref belongs to the probe's system too: the test answers the request itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_ref_can_be_asked_and_the_test_answers() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<(String, ActorRef<usize>)>();
    let asked = probe.actor_ref();
    let ask = tokio::spawn(async move {
        asked
            .ask(|reply_to| ("hello".to_string(), reply_to), T)
            .await
    });
    let (text, reply_to) = probe.expect_message(T).await;
    reply_to.tell(text.len());
    assert_eq!(ask.await.unwrap(), Ok(5));
    kit.shutdown().await;
}

// A remote ref asks through the same call; the reply comes home over the wire, and a node that
// refuses this one fails the ask at once with the refusal, as `system.ask` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ref_asks_through_the_same_call() {
    let a = node("bank").await;
    let b = node("bank").await;
    b.spawn(bank(1000), "accounts").unwrap();
    let on_b = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    on_b.tell(Bank::Deposit { amount: 5 });
    assert_eq!(on_b.ask(Bank::balance, T).await, Ok(1005));

    let locked = node_with("bank", RemoteSettings::new("127.0.0.1", 0).secret("other")).await;
    locked.spawn(bank(0), "accounts").unwrap();
    let refused = a
        .remote_ref::<Bank>(&address(&locked, "/accounts"))
        .unwrap();
    let started = Instant::now();
    match refused.ask(Bank::balance, Duration::from_secs(30)).await {
        Err(AskError::Refused { node, .. }) => {
            assert_eq!(node, locked.remote_address().unwrap().to_string());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    a.shutdown().await;
    b.shutdown().await;
    locked.shutdown().await;
}

// Asks made through the ref and through the system fail the same way for the same cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_and_its_system_report_the_same_errors() {
    let kit = TestKit::new();
    let sink = kit.spawn(Behaviors::ignore::<ActorRef<u8>>(), "sink");
    let long = Duration::from_secs(30);
    let from_ref = sink.ask(|reply_to: ActorRef<u8>| reply_to, long).await;
    let from_system = kit
        .system()
        .ask(&sink, |reply_to: ActorRef<u8>| reply_to, long)
        .await;
    assert_eq!(from_ref, Err(AskError::NoReply));
    assert_eq!(from_ref, from_system);
    kit.shutdown().await;
}
