//! Remoting when the other side is not there for us: a node that refuses our handshake, a node
//! that restarted, a node that shuts down, and messages lost on the way. Asks fail at once with
//! the reason instead of waiting for their timeout, and every lost message is a dead letter with
//! its reason.

use std::sync::Arc;
use std::time::Duration;

use casty::remote::RemoteSettings;
use casty::testing::{Direction, FaultyTransport, TestProbe};
use casty::{message_enum, ActorRef, AskError, Behaviors, DeadLetter, DeadLetterReason};
use casty_tests::remote_kit::{address, bank, node, node_with, watcher, Bank, Watching};
use casty_tests::T;

/// Long enough that an ask failing by timeout would fail the test.
const LONG: Duration = Duration::from_secs(60);

#[message_enum]
enum Registry {
    /// Replies with a ref to this node's bank actor (a ref to that one incarnation).
    Lookup { reply_to: ActorRef<ActorRef<Bank>> },
}

fn registry(bank: ActorRef<Bank>) -> casty::Behavior<Registry> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Registry::Lookup { reply_to } => {
            reply_to.tell(bank.clone());
            Behaviors::same()
        }
    })
}

/// Collects dead letters until `count` messages are accounted for; returns the events.
async fn dead_letters_for(probe: &mut TestProbe<DeadLetter>, count: u64) -> Vec<DeadLetter> {
    let mut seen = Vec::new();
    let mut total = 0;
    while total < count {
        let d = probe.expect_message(T).await;
        total += d.count;
        seen.push(d);
    }
    assert_eq!(total, count, "{seen:?}");
    seen
}

// ANCHOR: refused
// An ask to a node that refuses our handshake fails at once with the refusal, whether the
// refusal is new (the first ask opens the connection) or known (a later ask); tells there are
// dead letters saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_to_a_node_that_refuses_us_fail_at_once_with_the_refusal() {
    let a = node_with("bank", RemoteSettings::new("127.0.0.1", 0).secret("one")).await;
    let b = node_with("bank", RemoteSettings::new("127.0.0.1", 0).secret("two")).await;
    b.spawn(bank(0), "accounts").unwrap();
    let mut dead = TestProbe::<DeadLetter>::new(&a);
    let _sub = a.event_stream().subscribe_actor(dead.actor_ref());
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    let b_node = b.remote_address().unwrap().to_string();
    for attempt in ["first", "second"] {
        let r = tokio::time::timeout(T, a.ask(&accounts, Bank::balance, LONG))
            .await
            .unwrap_or_else(|_| panic!("the {attempt} ask waited for its timeout"));
        match r {
            Err(AskError::Refused { node, reason }) => {
                assert_eq!(node, b_node, "{attempt}");
                assert!(reason.starts_with(&format!("{b_node} refused")), "{reason}");
            }
            other => panic!("{attempt} ask: {other:?}"),
        }
    }
    accounts.tell(Bank::Deposit { amount: 5 });
    let d = loop {
        // The first ask's request may show up first, lost when the refusal came.
        let d = dead.expect_message(T).await;
        if d.message.ends_with("Bank") {
            break d;
        }
    };
    assert_eq!(d.recipient.as_str(), "/accounts");
    assert!(
        matches!(&d.reason, DeadLetterReason::Remote(why) if why.contains("refused the handshake")),
        "{:?}",
        d.reason
    );

    // A wrong system name is refused the same way.
    let wrong = a
        .remote_ref::<Bank>(&format!(
            "casty://other@127.0.0.1:{}/accounts",
            b.remote_address().unwrap().port()
        ))
        .unwrap();
    let r = tokio::time::timeout(T, a.ask(&wrong, Bank::balance, LONG))
        .await
        .expect("the ask fails at once");
    assert!(matches!(r, Err(AskError::Refused { .. })), "{r:?}");
    a.shutdown().await;
    b.shutdown().await;
}
// ANCHOR_END: refused

// A ref to one incarnation of an actor leads nowhere once its node restarted: an ask through it
// fails at once (the actor is gone), and a tell is a dead letter saying so. A ref by path reaches
// the new incarnation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_to_a_restarted_node_fails_at_once() {
    // A reconnects quickly once B is back.
    let quick = RemoteSettings::new("127.0.0.1", 0)
        .backoff(Duration::from_millis(20), Duration::from_millis(100));
    let a = node_with("bank", quick).await;
    let b1 = node("bank").await;
    let port = b1.remote_address().unwrap().port();
    let vault = b1.spawn(bank(10), "vault").unwrap();
    b1.spawn(registry(vault), "registry").unwrap();
    // Takes a request and never answers; says when it has it.
    let (received, mut was_received) = tokio::sync::mpsc::unbounded_channel();
    b1.spawn(
        Behaviors::receive(move |_ctx, _m: Bank| {
            let _ = received.send(());
            Behaviors::same()
        }),
        "silent",
    )
    .unwrap();
    let reg = a
        .remote_ref::<Registry>(&address(&b1, "/registry"))
        .unwrap();
    let old_vault = a
        .ask(&reg, |r| Registry::Lookup { reply_to: r }, T)
        .await
        .unwrap();
    assert_eq!(a.ask(&old_vault, Bank::balance, T).await.unwrap(), 10);

    // An ask left pending at B1 ends when B1 says it is leaving: then A has seen it go.
    let silent = a.remote_ref::<Bank>(&address(&b1, "/silent")).unwrap();
    let pending = {
        let a = a.clone();
        tokio::spawn(async move { a.ask(&silent, Bank::balance, LONG).await })
    };
    was_received.recv().await.unwrap();
    b1.shutdown().await;
    let r = tokio::time::timeout(T, pending).await.unwrap().unwrap();
    assert_eq!(r, Err(AskError::Terminated("/silent".to_string())));
    let b2 = node_with("bank", RemoteSettings::new("127.0.0.1", port)).await;
    b2.spawn(bank(20), "vault").unwrap();
    // A ref by path reaches the new incarnation (and A now knows it by its handshake).
    let by_path = a.remote_ref::<Bank>(&address(&b2, "/vault")).unwrap();
    assert_eq!(a.ask(&by_path, Bank::balance, T).await.unwrap(), 20);

    let mut dead = TestProbe::<DeadLetter>::new(&a);
    let _sub = a.event_stream().subscribe_actor(dead.actor_ref());
    let r = tokio::time::timeout(T, a.ask(&old_vault, Bank::balance, LONG))
        .await
        .expect("the ask fails at once, not at its timeout");
    assert_eq!(r, Err(AskError::Terminated("/vault".to_string())));
    old_vault.tell(Bank::Deposit { amount: 1 });
    let d = loop {
        let d = dead.expect_message(T).await;
        if d.message.contains("Bank") {
            break d;
        }
    };
    assert_eq!(d.recipient.as_str(), "/vault");
    assert!(
        matches!(&d.reason, DeadLetterReason::Remote(why) if why.contains("restarted")),
        "{:?}",
        d.reason
    );
    assert_eq!(a.ask(&by_path, Bank::balance, T).await.unwrap(), 20);
    a.shutdown().await;
    b2.shutdown().await;
}

// A node that shuts down says so: a pending ask to it fails at once (not after
// `unreachable_after`, a minute here), and a watcher gets exactly one `Terminated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_ends_asks_and_watches_at_once() {
    let a = node_with(
        "bank",
        RemoteSettings::new("127.0.0.1", 0).unreachable_after(LONG),
    )
    .await;
    let b = node("bank").await;
    // Takes the request and never answers; says when it has it.
    let (received, mut was_received) = tokio::sync::mpsc::unbounded_channel();
    b.spawn(
        Behaviors::receive(move |_ctx, _m: Bank| {
            let _ = received.send(());
            Behaviors::same()
        }),
        "silent",
    )
    .unwrap();
    b.spawn(bank(0), "watched").unwrap();
    let silent = a.remote_ref::<Bank>(&address(&b, "/silent")).unwrap();
    let watched = a.remote_ref::<Bank>(&address(&b, "/watched")).unwrap();
    assert_eq!(a.ask(&watched, Bank::balance, T).await.unwrap(), 0);
    let mut report = TestProbe::<String>::new(&a);
    let w = a.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    w.tell(Watching::Watch { target: watched });
    casty_tests::eventually("B holds A's watch", || {
        b.remote_counters().unwrap().watched_by == 1
    })
    .await;
    let pending = {
        let a = a.clone();
        tokio::spawn(async move { a.ask(&silent, Bank::balance, LONG).await })
    };
    // The request reaches B before it goes.
    was_received.recv().await.unwrap();
    let b_shut = b.clone();
    tokio::spawn(async move { b_shut.shutdown().await });
    let r = tokio::time::timeout(T, pending)
        .await
        .expect("the ask fails at once")
        .unwrap();
    assert_eq!(r, Err(AskError::Terminated("/silent".to_string())));
    assert_eq!(report.expect_message(T).await, "terminated /watched");
    report.expect_no_message(casty_tests::QUIET).await;
    a.shutdown().await;
}

// ANCHOR: lost
// Messages lost by remoting are dead letters with the reason: those a blackholed link drops
// (reported per batch, with how many each event stands for), those refused because the queue to
// a node that cannot be reached is full, and those still queued when that node is declared gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_lost_by_remoting_are_dead_letters_with_the_reason() {
    let faults = FaultyTransport::tcp();
    let a = node_with(
        "bank",
        RemoteSettings::new("127.0.0.1", 0).transport(Arc::new(faults.clone())),
    )
    .await;
    let b = node("bank").await;
    b.spawn(bank(0), "accounts").unwrap();
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    assert_eq!(a.ask(&accounts, Bank::balance, T).await.unwrap(), 0);
    let mut dead = TestProbe::<DeadLetter>::new(&a);
    let _sub = a.event_stream().subscribe_actor(dead.actor_ref());

    faults.blackhole(&b.remote_address().unwrap(), Direction::Outbound);
    for _ in 0..50 {
        accounts.tell(Bank::Deposit { amount: 1 });
    }
    for d in dead_letters_for(&mut dead, 50).await {
        assert_eq!(d.recipient.as_str(), "/accounts");
        assert_eq!(
            d.reason,
            DeadLetterReason::Remote("dropped by the link (fault injection)".into())
        );
    }
    faults.heal_all();
    assert_eq!(a.ask(&accounts, Bank::balance, T).await.unwrap(), 0);

    // A node nobody listens at: 4 messages fit in the queue, 3 more are refused at once, and
    // the 4 are lost when the node is declared gone.
    let settings = RemoteSettings::new("127.0.0.1", 0)
        .unreachable_after(Duration::from_millis(300))
        .outbound_capacity(4);
    let c = node_with("bank", settings).await;
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut dead_c = TestProbe::<DeadLetter>::new(&c);
    let _sub_c = c.event_stream().subscribe_actor(dead_c.actor_ref());
    let lost = c
        .remote_ref::<Bank>(&format!("casty://bank@127.0.0.1:{nowhere}/accounts"))
        .unwrap();
    for _ in 0..7 {
        lost.tell(Bank::Deposit { amount: 1 });
    }
    let seen = dead_letters_for(&mut dead_c, 7).await;
    let reasons: Vec<(u64, String)> = seen
        .iter()
        .map(|d| match &d.reason {
            DeadLetterReason::Remote(why) => (d.count, why.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let node = format!("casty://bank@127.0.0.1:{nowhere}");
    // The queue holds the recipient's definition and 3 messages; the 4th is refused too.
    let full = format!("the outbound queue to {node} is full");
    let gone = format!("{node} is unreachable");
    assert_eq!(
        reasons,
        [
            (1, full.clone()),
            (1, full.clone()),
            (1, full.clone()),
            (1, full),
            (3, gone)
        ]
    );
    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
}
// ANCHOR_END: lost

// A watch made while the node refuses us can never be delivered there: it ends at once with
// `Terminated` instead of never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_of_a_node_that_refuses_us_ends_at_once() {
    let a = node_with("bank", RemoteSettings::new("127.0.0.1", 0).secret("one")).await;
    let b = node_with("bank", RemoteSettings::new("127.0.0.1", 0).secret("two")).await;
    b.spawn(bank(0), "accounts").unwrap();
    let accounts = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    // The first ask learns the refusal.
    let r = tokio::time::timeout(T, a.ask(&accounts, Bank::balance, LONG))
        .await
        .expect("the ask fails at once");
    assert!(matches!(r, Err(AskError::Refused { .. })), "{r:?}");
    let mut report = TestProbe::<String>::new(&a);
    let w = a.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    w.tell(Watching::Watch { target: accounts });
    assert_eq!(report.expect_message(T).await, "terminated /accounts");
    report.expect_no_message(casty_tests::QUIET).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[message_enum]
enum Echo {
    Ping { reply_to: ActorRef<u64> },
}

// A node that answers and then shuts down: its goodbye travels behind its reply on the same
// connection, so the reply arrives and the ask succeeds (the goodbye does not overtake it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_before_a_shutdown_arrives_before_the_goodbye() {
    // A later round may get an earlier round's port: A then reconnects to it quickly.
    let quick = RemoteSettings::new("127.0.0.1", 0)
        .backoff(Duration::from_millis(20), Duration::from_millis(100));
    let a = node_with("bank", quick).await;
    for round in 0..10 {
        let b = node("bank").await;
        let (answered, mut was_answered) = tokio::sync::mpsc::unbounded_channel();
        b.spawn(
            Behaviors::receive(move |_ctx, Echo::Ping { reply_to }| {
                reply_to.tell(round);
                let _ = answered.send(());
                Behaviors::same()
            }),
            "echo",
        )
        .unwrap();
        let echo = a.remote_ref::<Echo>(&address(&b, "/echo")).unwrap();
        let pending = {
            let a = a.clone();
            tokio::spawn(async move { a.ask(&echo, |r| Echo::Ping { reply_to: r }, LONG).await })
        };
        was_answered.recv().await.unwrap();
        b.shutdown().await;
        let r = tokio::time::timeout(T, pending).await.unwrap().unwrap();
        assert_eq!(r, Ok(round), "round {round}");
    }
    a.shutdown().await;
}

// A node back on its address connects to us: it is plainly up, so our own connection to it is
// tried again at once, not after the backoff it grew to while the node was away. Without that,
// a restarted node hears nothing from us for up to the longest backoff, although it reaches us:
// a restarted first seed node of a cluster would then form a cluster of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_connects_to_us_is_retried_at_once_not_after_the_backoff() {
    // B's waits between attempts to reach A: 1.5 s, then 3 s, then 6 s.
    let b = node_with(
        "back",
        RemoteSettings::new("127.0.0.1", 0)
            .backoff(Duration::from_millis(1_500), Duration::from_secs(30)),
    )
    .await;
    b.spawn(bank(7), "accounts").unwrap();
    let a1 = node("back").await;
    let port = a1.remote_address().unwrap().port();
    a1.spawn(bank(0), "accounts").unwrap();
    let on_a = b.remote_ref::<Bank>(&address(&a1, "/accounts")).unwrap();
    assert_eq!(b.ask(&on_a, Bank::balance, T).await.unwrap(), 0);
    a1.shutdown().await;
    // B's first attempt fails at once and it waits 1.5 s; its second fails, and it waits 3 s.
    tokio::time::sleep(Duration::from_millis(2_000)).await;

    let a2 = node_with("back", RemoteSettings::new("127.0.0.1", port)).await;
    let on_b = a2.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    let started = std::time::Instant::now();
    // The reply travels over B's own connection to A, which is waiting out its backoff.
    assert_eq!(a2.ask(&on_b, Bank::balance, LONG).await.unwrap(), 7);
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "the reply took {:?}: B waited out its backoff",
        started.elapsed()
    );
    a2.shutdown().await;
    b.shutdown().await;
}
