//! Remoting between systems in one process: tells and asks both ways, order, refs that travel,
//! refusals (rules R1–R5 in the guide's "Semantics and performance" chapter).

use casty::remote::{HandshakeRefused, RemoteSettings};
use casty::testing::TestProbe;
use casty::{message_enum, ActorRef, ActorSystem, Behaviors, DeadLetter, DeadLetterReason};
use casty_tests::remote_kit::{address, bank, node, watcher, Bank, Watching};
use casty_tests::{eventually, QUIET, T};

#[message_enum]
enum Seq {
    Item { n: u64 },
    Report { reply_to: ActorRef<(u64, bool)> },
}

#[message_enum]
enum Relay {
    /// Forward a question to `to`, who answers `reply_to` directly.
    Forward {
        to: ActorRef<Question>,
        reply_to: ActorRef<String>,
    },
}

#[message_enum]
enum Question {
    Ask {
        who: String,
        reply_to: ActorRef<String>,
    },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_and_asks_cross_in_both_directions() {
    let a = node("bank").await;
    let b = node("bank").await;
    a.spawn(bank(0), "accounts").unwrap();
    b.spawn(bank(1000), "accounts").unwrap();

    let on_a = b.remote_ref::<Bank>(&address(&a, "/accounts")).unwrap();
    let on_b = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    assert_eq!(on_a.address(), address(&a, "/accounts"));
    on_a.tell(Bank::Deposit { amount: 70 });
    on_b.tell(Bank::Deposit { amount: 5 });
    assert_eq!(b.ask(&on_a, Bank::balance, T).await.unwrap(), 70);
    assert_eq!(a.ask(&on_b, Bank::balance, T).await.unwrap(), 1005);
    let ca = a.remote_counters().unwrap();
    assert!(ca.frames_out >= 2 && ca.frames_in >= 2, "{ca:?}");
    a.shutdown().await;
    b.shutdown().await;
}

fn sequence(next: u64, ordered: bool) -> casty::Behavior<Seq> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Seq::Item { n } => sequence(n + 1, ordered && n == next),
        Seq::Report { reply_to } => {
            reply_to.tell((next, ordered));
            Behaviors::same()
        }
    })
}

// 10,000 tells from A to one actor on B arrive in order (order per pair across nodes, R5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tells_arrive_in_order() {
    let a = node("seq").await;
    let b = node("seq").await;
    b.spawn(sequence(0, true), "sink").unwrap();
    let sink = a.remote_ref::<Seq>(&address(&b, "/sink")).unwrap();
    for n in 0..10_000 {
        sink.tell(Seq::Item { n });
    }
    assert_eq!(a.ask(&sink, Seq::report, T).await.unwrap(), (10_000, true));
    a.shutdown().await;
    b.shutdown().await;
}

// ANCHOR: relay
// A ref passed A→B→C gets the reply from C back to A (refs travel, R4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_passed_along_gets_the_reply_home() {
    let a = node("trio").await;
    let b = node("trio").await;
    let c = node("trio").await;
    b.spawn(
        Behaviors::receive(|_ctx, msg: Relay| {
            let Relay::Forward { to, reply_to } = msg;
            to.tell(Question::Ask {
                who: "b".into(),
                reply_to,
            });
            Behaviors::same()
        }),
        "relay",
    )
    .unwrap();
    c.spawn(
        Behaviors::receive(|ctx, msg: Question| {
            let Question::Ask { who, reply_to } = msg;
            reply_to.tell(format!(
                "{} answers {who} for {}",
                ctx.path(),
                reply_to.address()
            ));
            Behaviors::same()
        }),
        "oracle",
    )
    .unwrap();
    let relay = a.remote_ref::<Relay>(&address(&b, "/relay")).unwrap();
    let oracle = a.remote_ref::<Question>(&address(&c, "/oracle")).unwrap();
    let answer: String = a
        .ask(
            &relay,
            |reply_to| Relay::Forward {
                to: oracle.clone(),
                reply_to,
            },
            T,
        )
        .await
        .unwrap();
    let home = a.remote_address().unwrap().to_string();
    assert!(answer.starts_with("/oracle answers b for "), "{answer}");
    assert!(answer.contains(&home), "the reply ref names A: {answer}");
    for s in [a, b, c] {
        s.shutdown().await;
    }
}
// ANCHOR_END: relay

// The handshake refuses a wrong system name and a wrong secret; each side publishes why (R2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_published_on_both_sides() {
    let a = node("bank").await;
    let b = node("shop").await;
    let mut at_a = TestProbe::<HandshakeRefused>::new(&a);
    let mut at_b = TestProbe::<HandshakeRefused>::new(&b);
    let _s1 = a.event_stream().subscribe_actor(at_a.actor_ref());
    let _s2 = b.event_stream().subscribe_actor(at_b.actor_ref());
    b.spawn(bank(0), "accounts").unwrap();
    let r = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    r.tell(Bank::Deposit { amount: 1 });
    let seen_b = at_b.expect_message(T).await;
    let seen_a = at_a.expect_message(T).await;
    assert_eq!(
        seen_b.reason.to_string(),
        "system name mismatch: this node is `shop`, the peer is `bank`"
    );
    assert!(
        seen_a.reason.to_string().contains("system name mismatch"),
        "{:?}",
        seen_a
    );
    a.shutdown().await;
    b.shutdown().await;

    let a = ActorSystem::new("bank");
    let b = ActorSystem::new("bank");
    a.start_remote(RemoteSettings::new("127.0.0.1", 0).secret("one"))
        .await
        .unwrap();
    b.start_remote(RemoteSettings::new("127.0.0.1", 0).secret("two"))
        .await
        .unwrap();
    let mut at_a = TestProbe::<HandshakeRefused>::new(&a);
    let mut at_b = TestProbe::<HandshakeRefused>::new(&b);
    let _s1 = a.event_stream().subscribe_actor(at_a.actor_ref());
    let _s2 = b.event_stream().subscribe_actor(at_b.actor_ref());
    b.spawn(bank(0), "accounts").unwrap();
    let r = a.remote_ref::<Bank>(&address(&b, "/accounts")).unwrap();
    r.tell(Bank::Deposit { amount: 1 });
    assert!(at_a
        .expect_message(T)
        .await
        .reason
        .to_string()
        .contains("authentication failed"));
    assert!(at_b
        .expect_message(T)
        .await
        .reason
        .to_string()
        .contains("authentication failed"));
    a.shutdown().await;
    b.shutdown().await;
}

#[message_enum(local)]
enum LocalOnly {
    #[unit]
    Poke,
}

// A local-only actor cannot be reached from the wire: the message is a dead letter there, and
// an actor that is not there (or an old incarnation) likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_wire_messages_are_dead_letters() {
    let a = node("dl").await;
    let b = node("dl").await;
    let mut dead = TestProbe::<DeadLetter>::new(&b);
    let _s = b.event_stream().subscribe_actor(dead.actor_ref());
    let local = b.spawn(Behaviors::ignore::<LocalOnly>(), "local").unwrap();
    local.tell(LocalOnly::Poke); // fine locally
    let r = a.remote_ref::<Bank>(&address(&b, "/local")).unwrap();
    r.tell(Bank::Deposit { amount: 1 });
    let d = dead.expect_message(T).await;
    assert_eq!(d.recipient.as_str(), "/local");
    assert!(
        matches!(&d.reason, DeadLetterReason::Remote(why) if why.ends_with("is not readable from the wire")),
        "{:?}",
        d.reason
    );
    let gone = a.remote_ref::<Bank>(&address(&b, "/nobody")).unwrap();
    gone.tell(Bank::Deposit { amount: 1 });
    let d = dead.expect_message(T).await;
    assert_eq!(d.recipient.as_str(), "/nobody");
    assert_eq!(d.reason, DeadLetterReason::RecipientGone);
    dead.expect_no_message(QUIET).await;
    a.shutdown().await;
    b.shutdown().await;
}

// Remote death watch: stopping the remote actor delivers `Terminated` to the watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_remote_actor_delivers_terminated() {
    let a = node("watch").await;
    let b = node("watch").await;
    let worker = b.spawn(bank(0), "worker").unwrap();
    let mut report = TestProbe::<String>::new(&a);
    let w = a.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    let target = a.remote_ref::<Bank>(&address(&b, "/worker")).unwrap();
    // The watch is in place once a round trip has passed.
    w.tell(Watching::Watch {
        target: target.clone(),
    });
    assert_eq!(a.ask(&target, Bank::balance, T).await.unwrap(), 0);
    report.expect_no_message(QUIET).await;
    let gauges = |s: &ActorSystem| {
        let c = s.remote_counters().unwrap();
        (c.watching, c.watched_by)
    };
    assert_eq!((gauges(&a), gauges(&b)), ((1, 0), (0, 1)));
    b.stop(&worker);
    assert_eq!(report.expect_message(T).await, "terminated /worker");
    // Once delivered, the watch is gone on both sides.
    assert_eq!((gauges(&a), gauges(&b)), ((0, 0), (0, 0)));
    // Watching something that is not there is answered at once.
    w.tell(Watching::Watch {
        target: a.remote_ref::<Bank>(&address(&b, "/nobody")).unwrap(),
    });
    assert_eq!(report.expect_message(T).await, "terminated /nobody");
    assert_eq!((gauges(&a), gauges(&b)), ((0, 0), (0, 0)));
    a.shutdown().await;
    b.shutdown().await;
}

// ANCHOR: partition
// Until membership exists, a connection lost beyond `unreachable_after` counts as termination,
// and asks to that node fail long before their own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_node_terminates_watches_and_fails_asks() {
    let faults = casty::testing::FaultyTransport::tcp();
    let a = ActorSystem::new("part");
    a.start_remote(
        RemoteSettings::new("127.0.0.1", 0)
            .transport(std::sync::Arc::new(faults.clone()))
            .unreachable_after(std::time::Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let b = node("part").await;
    b.spawn(bank(0), "worker").unwrap();
    b.spawn(Behaviors::ignore::<Bank>(), "silent").unwrap();
    let mut report = TestProbe::<String>::new(&a);
    let w = a.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    let target = a.remote_ref::<Bank>(&address(&b, "/worker")).unwrap();
    w.tell(Watching::Watch {
        target: target.clone(),
    });
    assert_eq!(a.ask(&target, Bank::balance, T).await.unwrap(), 0);

    let silent = a.remote_ref::<Bank>(&address(&b, "/silent")).unwrap();
    let pending = {
        let a = a.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = a
                .ask(&silent, Bank::balance, std::time::Duration::from_secs(30))
                .await;
            (r, started.elapsed())
        })
    };
    tokio::time::sleep(QUIET).await;
    let b_addr = b.remote_address().unwrap();
    faults.blackhole(&b_addr, casty::testing::Direction::Both);
    faults.sever(&b_addr);
    assert_eq!(report.expect_message(T).await, "terminated /worker");
    let (r, took) = pending.await.unwrap();
    assert!(matches!(r, Err(casty::AskError::Unreachable(_))), "{r:?}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "failed after {took:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
// ANCHOR_END: partition

// A node that never answers is as gone as one that went away: after `unreachable_after`, a
// watch of one of its actors ends with `Terminated` and an ask fails early. A watch or ask made
// after that gets its own `unreachable_after` (the node might be coming back), then ends too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_never_reached_counts_as_gone() {
    let a = ActorSystem::new("never");
    a.start_remote(
        RemoteSettings::new("127.0.0.1", 0)
            .unreachable_after(std::time::Duration::from_millis(300)),
    )
    .await
    .unwrap();
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = format!("casty://never@127.0.0.1:{port}");
    let mut report = TestProbe::<String>::new(&a);
    let w = a.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    let target = a.remote_ref::<Bank>(&format!("{nowhere}/worker")).unwrap();
    w.tell(Watching::Watch {
        target: target.clone(),
    });
    let started = std::time::Instant::now();
    let r = a
        .ask(&target, Bank::balance, std::time::Duration::from_secs(30))
        .await;
    assert!(matches!(r, Err(casty::AskError::Unreachable(_))), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(report.expect_message(T).await, "terminated /worker");

    let other = a.remote_ref::<Bank>(&format!("{nowhere}/other")).unwrap();
    let started = std::time::Instant::now();
    w.tell(Watching::Watch {
        target: other.clone(),
    });
    assert_eq!(report.expect_message(T).await, "terminated /other");
    let r = a
        .ask(&other, Bank::balance, std::time::Duration::from_secs(30))
        .await;
    assert!(matches!(r, Err(casty::AskError::Unreachable(_))), "{r:?}");
    // Without a timer of their own, the watch would never end and the ask would wait 30 s.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "not at once: {:?}",
        started.elapsed()
    );
    assert_eq!(a.remote_counters().unwrap().watching, 0);
    a.shutdown().await;
}

// ANCHOR: quarantine
// A one-way partition: A cannot reach B, while B's connection to A stays up (A silently drops
// what comes over it). A declares B gone and drops the watch B holds on A's actor. B cannot learn
// that over a link that swallows everything, so A quarantines that incarnation of B: it closes
// B's connection and refuses it for good. B then sees A as gone too, and its watcher gets
// `Terminated` instead of waiting forever. A new incarnation of B is welcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_declared_gone_is_quarantined_so_its_watchers_learn_it_too() {
    let quick = std::time::Duration::from_millis(300);
    let faults = casty::testing::FaultyTransport::tcp();
    let a = ActorSystem::new("quar");
    a.start_remote(
        RemoteSettings::new("127.0.0.1", 0)
            .transport(std::sync::Arc::new(faults.clone()))
            .unreachable_after(quick),
    )
    .await
    .unwrap();
    let b = ActorSystem::new("quar");
    b.start_remote(RemoteSettings::new("127.0.0.1", 0).unreachable_after(quick))
        .await
        .unwrap();
    let mut refused_at_b = TestProbe::<HandshakeRefused>::new(&b);
    let _sub = b.event_stream().subscribe_actor(refused_at_b.actor_ref());
    a.spawn(bank(0), "vault").unwrap();
    let mut report = TestProbe::<String>::new(&b);
    let w = b.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    let vault = b.remote_ref::<Bank>(&address(&a, "/vault")).unwrap();
    w.tell(Watching::Watch {
        target: vault.clone(),
    });
    eventually("A holds B's watch", || {
        a.remote_counters().unwrap().watched_by == 1
    })
    .await;

    let b_addr = b.remote_address().unwrap();
    faults.blackhole(&b_addr, casty::testing::Direction::Both);
    faults.sever(&b_addr);
    // B's watcher learns it, one `unreachable_after` after A quarantined it.
    assert_eq!(report.expect_message(T).await, "terminated /vault");
    let c = a.remote_counters().unwrap();
    assert_eq!((c.watched_by, c.quarantined), (0, 1));
    assert_eq!(b.remote_counters().unwrap().watching, 0);

    // Healing the link does not bring that incarnation back: A refuses it, and says why.
    faults.heal(&b_addr);
    let refusal = loop {
        let r = refused_at_b.expect_message(T).await;
        // B's own attempts to reconnect, refused by A.
        let text = r.reason.to_string();
        if text.starts_with("refused by the peer") && text.contains("quarantined") {
            break r;
        }
    };
    assert!(refusal
        .peer
        .contains(&a.remote_address().unwrap().port().to_string()));
    // An ask from the quarantined incarnation fails at once, with A's refusal as its error.
    let r = tokio::time::timeout(
        T,
        b.ask(&vault, Bank::balance, std::time::Duration::from_secs(60)),
    )
    .await
    .expect("the ask fails at once, not at its timeout");
    match r {
        Err(casty::AskError::Refused { node, reason }) => {
            assert_eq!(node, a.remote_address().unwrap().to_string());
            assert!(reason.contains("quarantined"), "{reason}");
        }
        other => panic!("a quarantined incarnation got through: {other:?}"),
    }

    // A new incarnation of B talks to A at once.
    let b2 = node("quar").await;
    let vault2 = b2.remote_ref::<Bank>(&address(&a, "/vault")).unwrap();
    vault2.tell(Bank::Deposit { amount: 7 });
    assert_eq!(b2.ask(&vault2, Bank::balance, T).await.unwrap(), 7);
    a.shutdown().await;
    b.shutdown().await;
    b2.shutdown().await;
}
// ANCHOR_END: quarantine

/// A [`casty::testing::FaultyTransport`] whose connections, once the peer accepted them, wait
/// at a gate before their handshake, so that a test can act while one is being opened.
#[derive(Clone)]
struct GatedTransport {
    faults: casty::testing::FaultyTransport,
    /// How many connections reached the gate.
    reached: tokio::sync::watch::Sender<usize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl casty::remote::Transport for GatedTransport {
    fn bind<'a>(
        &'a self,
        addr: &'a str,
    ) -> casty::future::BoxFuture<'a, std::io::Result<Box<dyn casty::remote::Listener>>> {
        self.faults.bind(addr)
    }

    fn connect<'a>(
        &'a self,
        addr: &'a str,
    ) -> casty::future::BoxFuture<'a, std::io::Result<casty::remote::BoxStream>> {
        Box::pin(async move {
            let stream = self.faults.connect(addr).await?;
            self.reached.send_modify(|n| *n += 1);
            let _ = self.open.subscribe().wait_for(|open| *open).await;
            Ok(stream)
        })
    }

    fn filters_frames(&self) -> bool {
        self.faults.filters_frames()
    }

    fn outbound(&self, peer: &casty::remote::NodeAddress) -> casty::remote::Fate {
        self.faults.outbound(peer)
    }

    fn inbound(&self, peer: &casty::remote::NodeAddress) -> casty::remote::Fate {
        self.faults.inbound(peer)
    }

    fn register(&self, peer: &casty::remote::NodeAddress, severer: &casty::remote::Severer) {
        self.faults.register(peer, severer);
    }
}

// The partition of the test above, begun while A's own connection to B is still being opened
// (B connected to A and watches A's actor; A's connection back is in its handshake). That
// connection is cut with the others instead of coming up after the partition with everything
// on it lost, and although A never reached B itself, it declares gone the incarnation of B that
// connected to it, drops its watch and quarantines it: B's watcher learns it all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_while_the_connection_back_is_opening_still_quarantines() {
    let quick = std::time::Duration::from_millis(300);
    let gated = GatedTransport {
        faults: casty::testing::FaultyTransport::tcp(),
        reached: tokio::sync::watch::channel(0).0,
        open: tokio::sync::watch::channel(false).0,
    };
    let a = ActorSystem::new("gate");
    a.start_remote(
        RemoteSettings::new("127.0.0.1", 0)
            .transport(std::sync::Arc::new(gated.clone()))
            .unreachable_after(quick),
    )
    .await
    .unwrap();
    let b = ActorSystem::new("gate");
    b.start_remote(RemoteSettings::new("127.0.0.1", 0).unreachable_after(quick))
        .await
        .unwrap();
    a.spawn(bank(0), "vault").unwrap();
    let mut report = TestProbe::<String>::new(&b);
    let w = b.spawn(watcher(report.actor_ref()), "watcher").unwrap();
    let vault = b.remote_ref::<Bank>(&address(&a, "/vault")).unwrap();
    w.tell(Watching::Watch {
        target: vault.clone(),
    });
    eventually("A holds B's watch", || {
        a.remote_counters().unwrap().watched_by == 1
    })
    .await;
    // A's connection to B is open, its handshake not yet begun.
    let mut reached = gated.reached.subscribe();
    tokio::time::timeout(T, reached.wait_for(|n| *n == 1))
        .await
        .expect("A opens a connection to B")
        .unwrap();

    let b_addr = b.remote_address().unwrap();
    gated
        .faults
        .blackhole(&b_addr, casty::testing::Direction::Both);
    gated.faults.sever(&b_addr);
    gated.open.send_replace(true);
    assert_eq!(report.expect_message(T).await, "terminated /vault");
    let c = a.remote_counters().unwrap();
    assert_eq!((c.watched_by, c.quarantined), (0, 1));
    assert_eq!(b.remote_counters().unwrap().watching, 0);
    // A never connected to B: the connection that was opening did not come up.
    assert_eq!(*gated.reached.borrow(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

// A severed connection is re-established and the same ref keeps working: its compact name is
// defined again on the new connection before anything that uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_keeps_working_across_a_reconnect() {
    let faults = casty::testing::FaultyTransport::tcp();
    let a = ActorSystem::new("re");
    a.start_remote(
        RemoteSettings::new("127.0.0.1", 0).transport(std::sync::Arc::new(faults.clone())),
    )
    .await
    .unwrap();
    let b = node("re").await;
    b.spawn(sequence(0, true), "sink").unwrap();
    let sink = a.remote_ref::<Seq>(&address(&b, "/sink")).unwrap();
    for n in 0..100 {
        sink.tell(Seq::Item { n });
    }
    assert_eq!(a.ask(&sink, Seq::report, T).await.unwrap(), (100, true));
    faults.sever(&b.remote_address().unwrap());
    // Whatever was in flight when the link was cut may be lost; what is sent after arrives.
    let mut next = 100;
    let deadline = std::time::Instant::now() + T;
    loop {
        sink.tell(Seq::Item { n: next });
        next += 1;
        if let Ok((count, _)) = a
            .ask(&sink, Seq::report, std::time::Duration::from_millis(200))
            .await
        {
            if count == next {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ref did not recover"
        );
    }
    assert!(a.remote_counters().unwrap().reconnects >= 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[message_enum]
enum Blob {
    Put {
        bytes: Vec<u8>,
    },
    Size {
        reply_to: ActorRef<usize>,
    },
    Store {
        bytes: Vec<u8>,
        reply_to: ActorRef<usize>,
    },
}

// An outbound message larger than the frame limit is refused to its sender at once (an ask
// fails without waiting for its timeout, saying the request is too large), and the link keeps
// working for the next message (R3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_refused_to_the_sender() {
    let a = node("big").await;
    let b = node("big").await;
    b.spawn(
        Behaviors::receive(|_ctx, msg: Blob| {
            if let Blob::Size { reply_to } = msg {
                reply_to.tell(0usize);
            }
            Behaviors::same()
        }),
        "blobs",
    )
    .unwrap();
    let blobs = a.remote_ref::<Blob>(&address(&b, "/blobs")).unwrap();
    let huge = vec![0u8; casty::remote::DEFAULT_MAX_FRAME + 1];
    assert!(blobs
        .try_tell(Blob::Put {
            bytes: huge.clone()
        })
        .is_err());
    // An ask whose request is too large says so, with the frame limit.
    let too_large = a
        .ask(
            &blobs,
            |reply_to| Blob::Store {
                bytes: huge,
                reply_to,
            },
            T,
        )
        .await;
    match too_large {
        Err(casty::AskError::TooLarge { size, max }) => {
            assert_eq!(max, casty::remote::DEFAULT_MAX_FRAME);
            assert!(size > max, "{size}");
        }
        other => panic!("{other:?}"),
    }
    let started = std::time::Instant::now();
    assert_eq!(a.ask(&blobs, Blob::size, T).await.unwrap(), 0);
    assert!(started.elapsed() < T);
    a.shutdown().await;
    b.shutdown().await;
}
