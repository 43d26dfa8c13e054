//! The bounded queue of messages waiting for another node, seen from the sender: a ref to a
//! remote actor behaves like a ref to a local actor with a bounded `Reject` mailbox.
//! `send().await` waits for room, `try_tell` hands the message back, `tell` makes it one dead
//! letter, and an ask fails saying that this node's outbound queue is full.
//!
//! The queue is filled deterministically by partitioning the link before the first connection:
//! nothing leaves until the partition heals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casty::remote::RemoteSettings;
use casty::testing::{Direction, FaultyTransport, TestProbe};
use casty::{ActorSystem, AskError, DeadLetter, DeadLetterReason, TellError};
use casty_tests::remote_kit::{address, bank, node, node_with, Bank};
use casty_tests::{eventually, QUIET, T};

/// The outbound capacity of the sending node in these tests. The queue holds the recipient's
/// definition (its compact name) and then `CAPACITY - 1` messages.
const CAPACITY: usize = 4;
const QUEUED: usize = CAPACITY - 1;

/// A receiving node with a bank at `/accounts`, and a sending node whose link to it is
/// partitioned (it cannot connect until `faults` heal), with a small outbound queue.
async fn partitioned_pair() -> (ActorSystem, ActorSystem, FaultyTransport) {
    let b = node("bank").await;
    b.spawn(bank(0), "accounts").unwrap();
    let faults = FaultyTransport::tcp();
    faults.blackhole(&b.remote_address().unwrap(), Direction::Both);
    let a = node_with(
        "bank",
        RemoteSettings::new("127.0.0.1", 0)
            .transport(Arc::new(faults.clone()))
            .outbound_capacity(CAPACITY)
            .backoff(Duration::from_millis(5), Duration::from_millis(20)),
    )
    .await;
    (a, b, faults)
}

fn dead_letter_probe(system: &ActorSystem) -> (TestProbe<DeadLetter>, casty::Subscription) {
    let probe = TestProbe::<DeadLetter>::new(system);
    let sub = system.event_stream().subscribe_actor(probe.actor_ref());
    (probe, sub)
}

// While the queue to the other node is full, `send().await` waits instead of dropping the
// message; once the link heals, every message arrives, and none was a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_for_room_in_the_outbound_queue() {
    let (a, b, faults) = partitioned_pair().await;
    let (mut dead, _sub) = dead_letter_probe(&a);
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut sender = tokio::spawn({
        let (accounts, sent) = (accounts.clone(), sent.clone());
        async move {
            for _ in 0..10 {
                accounts.send(Bank::Deposit { amount: 1 }).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    eventually("the queue is full", || {
        sent.load(Ordering::SeqCst) == QUEUED
    })
    .await;
    assert!(
        tokio::time::timeout(QUIET, &mut sender).await.is_err(),
        "the sender waits for room"
    );
    assert_eq!(sent.load(Ordering::SeqCst), QUEUED);

    faults.heal_all();
    tokio::time::timeout(T, sender).await.unwrap().unwrap();
    assert_eq!(a.ask(&accounts, Bank::balance, T).await.unwrap(), 10);
    dead.expect_no_message(QUIET).await;
    assert_eq!(a.remote_counters().unwrap().dropped, 0);
    a.shutdown().await;
    b.shutdown().await;
}

// `tell` beyond the bound is one dead letter per message, saying the outbound queue to that
// node is full, and one drop in the counters; `try_tell` hands the message back instead, with
// no dead letter and no drop, as a full `Reject` mailbox does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tell_beyond_the_outbound_queue_is_one_dead_letter() {
    let (a, b, faults) = partitioned_pair().await;
    let (mut dead, _sub) = dead_letter_probe(&a);
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    let b_node = b.remote_address().unwrap().to_string();
    for _ in 0..10 {
        accounts.tell(Bank::Deposit { amount: 1 });
    }
    for _ in QUEUED..10 {
        let d = dead.expect_message(T).await;
        assert_eq!(d.count, 1);
        assert_eq!(d.recipient.as_str(), "/accounts");
        assert_eq!(
            d.reason,
            DeadLetterReason::Remote(format!("the outbound queue to {b_node} is full"))
        );
    }
    dead.expect_no_message(QUIET).await;
    assert_eq!(a.remote_counters().unwrap().dropped, (10 - QUEUED) as u64);

    let refused = accounts.try_tell(Bank::Deposit { amount: 100 });
    assert!(matches!(
        refused,
        Err(TellError::Full(Bank::Deposit { amount: 100 }))
    ));
    dead.expect_no_message(QUIET).await;
    assert_eq!(a.remote_counters().unwrap().dropped, (10 - QUEUED) as u64);

    faults.heal_all();
    eventually("the queue is written once the link heals", || {
        a.remote_counters().unwrap().frames_out >= CAPACITY as u64
    })
    .await;
    assert_eq!(
        a.ask(&accounts, Bank::balance, T).await.unwrap(),
        QUEUED as i64
    );
    dead.expect_no_message(QUIET).await;
    a.shutdown().await;
    b.shutdown().await;
}

// An ask whose request finds this node's own outbound queue full waits for room within its
// timeout; if the queue is still full then, it fails saying so (not that the remote actor's
// mailbox is full, nor a bare timeout), and its request is one dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_refused_by_a_full_outbound_queue_says_so() {
    let (a, b, _faults) = partitioned_pair().await;
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    let b_node = b.remote_address().unwrap().to_string();
    for _ in 0..QUEUED {
        accounts.tell(Bank::Deposit { amount: 1 });
    }
    let (mut dead, _sub) = dead_letter_probe(&a);
    let r = tokio::time::timeout(T, a.ask(&accounts, Bank::balance, QUIET))
        .await
        .expect("fails at its timeout");
    assert_eq!(
        r,
        Err(AskError::OutboundFull {
            node: b_node.clone()
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        format!("the outbound queue to {b_node} is full")
    );
    let d = dead.expect_message(T).await;
    assert_eq!(
        d.reason,
        DeadLetterReason::Remote(format!("the outbound queue to {b_node} is full"))
    );
    dead.expect_no_message(QUIET).await;
    assert_eq!(a.remote_counters().unwrap().dropped, 1);
    a.shutdown().await;
    b.shutdown().await;
}

// An ask whose request finds the outbound queue full is sent once there is room, and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_waits_for_room_in_the_outbound_queue() {
    let (a, b, faults) = partitioned_pair().await;
    let (mut dead, _sub) = dead_letter_probe(&a);
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    for _ in 0..QUEUED {
        accounts.tell(Bank::Deposit { amount: 1 });
    }
    let mut asking = tokio::spawn({
        let (a, accounts) = (a.clone(), accounts.clone());
        async move { a.ask(&accounts, Bank::balance, T).await }
    });
    assert!(tokio::time::timeout(QUIET, &mut asking).await.is_err());
    faults.heal_all();
    let balance = tokio::time::timeout(T, asking).await.unwrap().unwrap();
    assert_eq!(balance, Ok(QUEUED as i64));
    dead.expect_no_message(QUIET).await;
    a.shutdown().await;
    b.shutdown().await;
}

// A sender waiting for room does not wait forever when remoting shuts down: it gets its
// message back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waiting_for_room_ends_when_remoting_shuts_down() {
    let (a, b, _faults) = partitioned_pair().await;
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    for _ in 0..QUEUED {
        accounts.tell(Bank::Deposit { amount: 1 });
    }
    let mut waiting = tokio::spawn({
        let accounts = accounts.clone();
        async move { accounts.send(Bank::Deposit { amount: 7 }).await }
    });
    assert!(tokio::time::timeout(QUIET, &mut waiting).await.is_err());
    a.shutdown().await;
    let r = tokio::time::timeout(T, waiting).await.unwrap().unwrap();
    assert!(matches!(
        r,
        Err(TellError::Full(Bank::Deposit { amount: 7 }))
    ));
    b.shutdown().await;
}

// A burst sent with `send().await` through a queue far smaller than the burst loses nothing:
// the queue signals room each time the writer takes what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_sent_with_send_loses_nothing_through_a_small_queue() {
    const BURST: i64 = 20_000;
    let b = node("bank").await;
    b.spawn(bank(0), "accounts").unwrap();
    let a = node_with(
        "bank",
        RemoteSettings::new("127.0.0.1", 0).outbound_capacity(16),
    )
    .await;
    let (mut dead, _sub) = dead_letter_probe(&a);
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    // ANCHOR: burst
    for _ in 0..BURST {
        // Waits while the queue to the other node is full, instead of dropping.
        accounts.send(Bank::Deposit { amount: 1 }).await.unwrap();
    }
    // Order is kept per sender and receiver: the reply comes after every deposit.
    assert_eq!(a.ask(&accounts, Bank::balance, T).await.unwrap(), BURST);
    // ANCHOR_END: burst
    dead.expect_no_message(QUIET).await;
    assert_eq!(a.remote_counters().unwrap().dropped, 0);
    a.shutdown().await;
    b.shutdown().await;
}
