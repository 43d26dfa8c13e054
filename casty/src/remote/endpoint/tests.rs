//! The endpoint's tests: real endpoints on loopback TCP, talking to each other or to a raw
//! client that breaks the rules.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::connect::{nonce, read_frame, write_frame};
use super::*;
use crate::remote::frame::{self, Envelope, Frame, FrameDecoder, FrameError, FrameRef, WirePath};
use crate::remote::handshake::{Initiator, LocalNode, Refusal};
use crate::remote::transport::{BoxStream, Transport};
use crate::remote::{NodeAddress, TcpTransport};
use crate::testing::{Direction, FaultyTransport};

const T: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(200);

struct Collect {
    frames: mpsc::UnboundedSender<(PeerInfo, Frame)>,
    refusals: mpsc::UnboundedSender<Refusal>,
}

impl Inbound for Collect {
    fn frame(&self, from: &PeerInfo, frame: Frame) {
        let _ = self.frames.send((from.clone(), frame));
    }
    fn refused(&self, _peer: &str, refusal: &Refusal) {
        let _ = self.refusals.send(refusal.clone());
    }
    /// A goodbye read by a writer, on a connection we opened: recorded as the frame it was.
    fn peer_left(&self, from: &PeerInfo) {
        let _ = self.frames.send((from.clone(), Frame::Bye));
    }
}

struct Node {
    ep: Endpoint,
    frames: mpsc::UnboundedReceiver<(PeerInfo, Frame)>,
    refusals: mpsc::UnboundedReceiver<Refusal>,
}

async fn node_with(system: &str, secret: Option<&str>, transport: Arc<dyn Transport>) -> Node {
    node_at(system, 0, secret, transport).await
}

async fn node_at(
    system: &str,
    port: u16,
    secret: Option<&str>,
    transport: Arc<dyn Transport>,
) -> Node {
    let (ftx, frames) = mpsc::unbounded_channel();
    let (rtx, refusals) = mpsc::unbounded_channel();
    let mut s = EndpointSettings::new(system, "127.0.0.1", port);
    s.secret = secret.map(|x| x.as_bytes().to_vec());
    s.backoff_min = Duration::from_millis(10);
    s.backoff_max = Duration::from_millis(100);
    let inbound = Arc::new(Collect {
        frames: ftx,
        refusals: rtx,
    });
    let ep = Endpoint::bind(s, node_uid(), transport, inbound)
        .await
        .unwrap();
    Node {
        ep,
        frames,
        refusals,
    }
}

async fn node(system: &str) -> Node {
    node_with(system, None, Arc::new(TcpTransport)).await
}

fn env(n: u64) -> Frame {
    Frame::Envelope(Envelope {
        recipient: WirePath {
            path: "/user/sink".into(),
            uid: n,
        },
        manifest: "u64".into(),
        payload: n.to_le_bytes().to_vec(),
    })
}

fn seq_of(f: &Frame) -> u64 {
    match f {
        Frame::Envelope(e) => e.recipient.uid,
        other => panic!("not an envelope: {other:?}"),
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(PeerInfo, Frame)>) -> (PeerInfo, Frame) {
    tokio::time::timeout(T, rx.recv())
        .await
        .expect("in time")
        .expect("open")
}

/// `b` still takes frames from `a`: what a bad connection must not have changed.
async fn still_serving(a: &Node, b: &mut Node) {
    a.ep.send(b.ep.address(), &env(1)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 1);
}

async fn nothing(rx: &mut mpsc::UnboundedReceiver<(PeerInfo, Frame)>) {
    assert!(
        tokio::time::timeout(QUIET, rx.recv()).await.is_err(),
        "expected nothing"
    );
}

// Order is kept per sender and receiver across the network (R5): 10,000 frames from A arrive
// at B in order, and B's own frames reach A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_in_order_both_ways() {
    let mut a = node("bank").await;
    let mut b = node("bank").await;
    for i in 0..10_000 {
        a.ep.send(b.ep.address(), &env(i)).unwrap();
    }
    for i in 0..10_000 {
        let (from, f) = next(&mut b.frames).await;
        assert_eq!(seq_of(&f), i);
        if i == 0 {
            assert_eq!((&from.address, from.uid), (a.ep.address(), a.ep.uid()));
        }
    }
    b.ep.send(a.ep.address(), &env(7)).unwrap();
    let (from, f) = next(&mut a.frames).await;
    assert_eq!((seq_of(&f), from.uid), (7, b.ep.uid()));
    let c = a.ep.counters();
    assert_eq!(c.frames_out, 10_000);
    assert!(c.bytes_out > 10_000 * 20, "{c:?}");
    assert_eq!(b.ep.counters().frames_in, 10_000);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// Order per sender holds with senders racing each other and the writer (R5): whoever finds the
// connection idle writes (a sender or the writer task), and each sender's frames still arrive in
// its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_keep_their_order() {
    let a = node("bank").await;
    let mut b = node("bank").await;
    const SENDERS: u64 = 4;
    const EACH: u64 = 3_000;
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let route = a.ep.route(b.ep.address());
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                route.send(&env(s * 1_000_000 + i)).unwrap();
                // Pauses let the connection go idle now and then, so both paths are taken.
                if i % (7 + s) == 0 {
                    tokio::task::yield_now().await;
                }
                if i % 500 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut next_of = [0u64; SENDERS as usize];
    for _ in 0..SENDERS * EACH {
        let (_, f) = next(&mut b.frames).await;
        let seq = seq_of(&f);
        let (s, i) = ((seq / 1_000_000) as usize, seq % 1_000_000);
        assert_eq!(i, next_of[s], "sender {s} out of order");
        next_of[s] += 1;
    }
    assert_eq!(next_of, [EACH; SENDERS as usize]);
    nothing(&mut b.frames).await;
    assert_eq!(a.ep.counters().frames_out, SENDERS * EACH);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// A quarantined node incarnation is cut off (R1): it loses its connections in both directions,
// cannot open new ones in either role, and both sides know why. A new incarnation is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_incarnation_is_cut_off_both_ways() {
    let mut a = node("bank").await;
    let mut b = node("bank").await;
    a.ep.send(b.ep.address(), &env(1)).unwrap();
    b.ep.send(a.ep.address(), &env(2)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 1);
    assert_eq!(seq_of(&next(&mut a.frames).await.1), 2);

    assert!(a.ep.quarantine(b.ep.uid()));
    assert!(!a.ep.quarantine(b.ep.uid()), "once is enough");
    let q = Refusal::Quarantined { uid: b.ep.uid() };
    // A's own reconnection finds B's incarnation in the Welcome and refuses it.
    let at_a = tokio::time::timeout(T, a.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_a, q);
    // B's reconnection is refused at its Hello, with the reason.
    let at_b = loop {
        let r = tokio::time::timeout(T, b.refusals.recv())
            .await
            .unwrap()
            .unwrap();
        if r == Refusal::ByPeer(q.to_string()) {
            break r;
        }
    };
    assert_eq!(at_b, Refusal::ByPeer(q.to_string()));
    let _ = b.ep.send(a.ep.address(), &env(3));
    let _ = a.ep.send(b.ep.address(), &env(4));
    nothing(&mut a.frames).await;
    nothing(&mut b.frames).await;
    assert_eq!(a.ep.counters().quarantined, 1);

    let mut c = node("bank").await;
    c.ep.send(a.ep.address(), &env(5)).unwrap();
    assert_eq!(seq_of(&next(&mut a.frames).await.1), 5);
    a.ep.send(c.ep.address(), &env(6)).unwrap();
    assert_eq!(seq_of(&next(&mut c.frames).await.1), 6);
    for n in [&a, &b, &c] {
        n.ep.shutdown().await;
    }
}

// The handshake refuses a wrong system name, and each side knows why (R2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_system_name_is_refused_on_both_sides() {
    let mut a = node("bank").await;
    let mut b = node("shop").await;
    a.ep.send(b.ep.address(), &env(1)).unwrap();
    let at_b = tokio::time::timeout(T, b.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    let at_a = tokio::time::timeout(T, a.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        at_b.to_string(),
        "system name mismatch: this node is `shop`, the peer is `bank`"
    );
    assert_eq!(at_a, Refusal::ByPeer(at_b.to_string()));
    nothing(&mut b.frames).await;
    assert!(a.ep.counters().refused >= 1 && b.ep.counters().refused >= 1);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// The handshake refuses a wrong secret on both sides; the right one passes (R2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_checked() {
    let mut a = node_with("bank", Some("one"), Arc::new(TcpTransport)).await;
    let mut b = node_with("bank", Some("two"), Arc::new(TcpTransport)).await;
    a.ep.send(b.ep.address(), &env(1)).unwrap();
    let at_a = tokio::time::timeout(T, a.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    let at_b = tokio::time::timeout(T, b.refusals.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_a, Refusal::BadSecret);
    assert!(
        matches!(&at_b, Refusal::ByPeer(r) if r.contains("authentication failed")),
        "{at_b}"
    );
    nothing(&mut b.frames).await;

    let a2 = node_with("bank", Some("same"), Arc::new(TcpTransport)).await;
    let mut b2 = node_with("bank", Some("same"), Arc::new(TcpTransport)).await;
    a2.ep.send(b2.ep.address(), &env(5)).unwrap();
    assert_eq!(seq_of(&next(&mut b2.frames).await.1), 5);
    for n in [a, b, a2, b2] {
        n.ep.shutdown().await;
    }
}

/// A raw client that completes the handshake, for sending bad frames afterwards.
async fn raw_handshaked(to: &NodeAddress) -> BoxStream {
    let mut s = TcpTransport.connect(&to.socket_addr()).await.unwrap();
    let local = LocalNode {
        system: to.system().into(),
        address: "casty://bank@127.0.0.1:1".into(),
        uid: 42,
        max_frame: frame::DEFAULT_MAX_FRAME as u32,
        secret: None,
    };
    let (init, hello) = Initiator::start(local, nonce());
    write_frame(&mut s, &hello, frame::DEFAULT_MAX_FRAME)
        .await
        .unwrap();
    let mut dec = FrameDecoder::new(frame::DEFAULT_MAX_FRAME);
    let w = read_frame(&mut s, &mut dec, T).await.unwrap();
    let (confirm, _) = init.on_frame(w).unwrap();
    write_frame(&mut s, &confirm, frame::DEFAULT_MAX_FRAME)
        .await
        .unwrap();
    s
}

async fn closed_by_peer(s: &mut BoxStream) {
    closed_within(s, T).await;
}

// Garbage and an oversize frame each close only their own connection; a third peer's
// traffic keeps flowing (R3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_lose_only_their_own_connection() {
    let a = node("bank").await;
    let mut b = node("bank").await;
    a.ep.send(b.ep.address(), &env(0)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 0);

    let mut garbage = TcpTransport
        .connect(&b.ep.address().socket_addr())
        .await
        .unwrap();
    garbage
        .write_all(&[0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    closed_by_peer(&mut garbage).await;

    let mut oversize = raw_handshaked(b.ep.address()).await;
    oversize
        .write_all(&(10_000_000u32).to_be_bytes())
        .await
        .unwrap();
    closed_by_peer(&mut oversize).await;

    for i in 1..=100 {
        a.ep.send(b.ep.address(), &env(i)).unwrap();
    }
    for i in 1..=100 {
        assert_eq!(seq_of(&next(&mut b.frames).await.1), i);
    }
    assert_eq!(b.ep.counters().malformed, 2);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// One 40-byte `Define` naming recipient 1,000,000 used to make the receiver allocate a
// million table entries (about 40 MB). Now it is malformed: that connection closes, it is
// counted, and another peer is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_define_with_a_huge_id_closes_only_its_connection() {
    let a = node("bank").await;
    let mut b = node("bank").await;
    let mut attack = Vec::new();
    frame::encode(
        &Frame::Define {
            id: 1_000_000,
            path: "/a".into(),
            manifest: String::new(),
        },
        frame::DEFAULT_MAX_FRAME,
        &mut attack,
    )
    .unwrap();
    assert!(attack.len() <= 40, "{} bytes", attack.len());
    let mut bad = raw_handshaked(b.ep.address()).await;
    bad.write_all(&attack).await.unwrap();
    closed_by_peer(&mut bad).await;
    assert_eq!(b.ep.counters().malformed, 1);
    still_serving(&a, &mut b).await;
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// A sender names at most what a receiver accepts; past that, recipients go by their full
// path, and the connection stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_names_no_more_recipients_than_a_receiver_accepts() {
    let a = node("bank").await;
    let mut b = node("bank").await;
    let route = a.ep.route(b.ep.address());
    let last = frame::MAX_COMPACT_NAMES as u64 - 1;
    for i in 0..=last {
        assert_eq!(
            route.define(&format!("/user/r{i}"), "m").unwrap(),
            Some(i as u32)
        );
    }
    assert_eq!(route.define("/user/one-more", "m").unwrap(), None);
    assert_eq!(
        route.define("/user/r7", "m").unwrap(),
        Some(7),
        "still named"
    );
    route
        .send(&FrameRef::Compact(frame::CompactRef(last as u32, 5, &[1])))
        .unwrap();
    route.send(&env(6)).unwrap();
    let (_, f) = next(&mut b.frames).await;
    assert!(
        matches!(&f, Frame::Envelope(e) if e.recipient.path == format!("/user/r{last}")),
        "{f:?}"
    );
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 6);
    assert_eq!(b.ep.counters().malformed, 0);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

/// A TCP-only node whose settings `tune` adjusts.
async fn node_tuned(system: &str, tune: impl FnOnce(&mut EndpointSettings)) -> Node {
    let (ftx, frames) = mpsc::unbounded_channel();
    let (rtx, refusals) = mpsc::unbounded_channel();
    let mut s = EndpointSettings::new(system, "127.0.0.1", 0);
    tune(&mut s);
    let inbound = Arc::new(Collect {
        frames: ftx,
        refusals: rtx,
    });
    let ep = Endpoint::bind(s, node_uid(), Arc::new(TcpTransport), inbound)
        .await
        .unwrap();
    Node {
        ep,
        frames,
        refusals,
    }
}

async fn closed_within(s: &mut BoxStream, within: Duration) {
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(within, s.read(&mut b))
        .await
        .unwrap_or_else(|_| panic!("not closed within {within:?}"));
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "expected the connection closed, got {r:?}"
    );
}

// Before its handshake, a connection may send frames of a few KiB only: one announcing
// 200 KB is closed from its header, at once, instead of being buffered until the handshake
// deadline. Other peers are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_handshake_frame_closes_only_that_connection_at_once() {
    let a = node("bank").await;
    let mut b = node("bank").await;
    let mut big = TcpTransport
        .connect(&b.ep.address().socket_addr())
        .await
        .unwrap();
    big.write_all(&200_000u32.to_be_bytes()).await.unwrap();
    big.write_all(&[0xa1; 3000]).await.unwrap();
    closed_within(&mut big, Duration::from_secs(1)).await;
    assert_eq!(b.ep.counters().malformed, 1);
    still_serving(&a, &mut b).await;
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// With room for two connections in handshake, a third is closed at once, unread, and counted;
// the two silent ones are closed at the handshake deadline, and a real peer then gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_handshake_cap_are_closed_at_once() {
    let a = node("bank").await;
    let mut b = node_tuned("bank", |s| {
        s.max_handshakes = 2;
        s.handshake_timeout = Duration::from_secs(1);
    })
    .await;
    let to = b.ep.address().socket_addr();
    let mut silent1 = TcpTransport.connect(&to).await.unwrap();
    let mut silent2 = TcpTransport.connect(&to).await.unwrap();
    // Accepted after the two above (the listen queue is first in, first out).
    let mut third = TcpTransport.connect(&to).await.unwrap();
    closed_within(&mut third, Duration::from_millis(500)).await;
    assert_eq!(b.ep.counters().handshakes_shed, 1);

    a.ep.send(b.ep.address(), &env(1)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 1);
    closed_within(&mut silent1, Duration::from_secs(1)).await;
    closed_within(&mut silent2, Duration::from_secs(1)).await;
    assert_eq!(b.ep.counters().malformed, 0);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// An oversize outbound frame is refused to the sender at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_outbound_is_refused_to_the_sender() {
    let a = node("bank").await;
    let b = node("bank").await;
    let big = Frame::Envelope(Envelope {
        recipient: WirePath {
            path: "/user/x".into(),
            uid: 1,
        },
        manifest: "blob".into(),
        payload: vec![0; frame::DEFAULT_MAX_FRAME + 1],
    });
    let e = a.ep.send(b.ep.address(), &big).unwrap_err();
    assert!(
        matches!(e, SendError::Frame(FrameError::Oversize { .. })),
        "{e:?}"
    );
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// A peer that cannot be reached fills only its own bounded queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_queue_is_bounded() {
    let (ftx, _frames) = mpsc::unbounded_channel();
    let (rtx, _refusals) = mpsc::unbounded_channel();
    let mut s = EndpointSettings::new("bank", "127.0.0.1", 0);
    s.outbound_capacity = 10;
    let inbound = Arc::new(Collect {
        frames: ftx,
        refusals: rtx,
    });
    let a = Endpoint::bind(s, 1, Arc::new(TcpTransport), inbound)
        .await
        .unwrap();
    let mut b = node("bank").await;
    // Nobody listens on port 1.
    let dead = NodeAddress::new("bank", "127.0.0.1", 1);
    for i in 0..10 {
        a.send(&dead, &env(i)).unwrap();
    }
    assert!(matches!(
        a.send(&dead, &env(10)),
        Err(SendError::Overflow(_))
    ));
    // Another peer is not affected.
    a.send(b.ep.address(), &env(99)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 99);
    assert_eq!(a.counters().dropped, 1);
    a.shutdown().await;
    b.ep.shutdown().await;
}

// Fault injection: a blackholed link delivers nothing; after `heal` it resumes. `sever`
// closes the connection and the association reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_heal_and_sever() {
    let faults = FaultyTransport::tcp();
    let a = node_with("bank", None, Arc::new(faults.clone())).await;
    let mut b = node("bank").await;
    a.ep.send(b.ep.address(), &env(0)).unwrap();
    assert_eq!(seq_of(&next(&mut b.frames).await.1), 0);

    faults.blackhole(b.ep.address(), Direction::Outbound);
    for i in 1..=10 {
        a.ep.send(b.ep.address(), &env(i)).unwrap();
    }
    nothing(&mut b.frames).await;
    faults.heal(b.ep.address());
    a.ep.send(b.ep.address(), &env(11)).unwrap();
    assert_eq!(
        seq_of(&next(&mut b.frames).await.1),
        11,
        "the blackholed frames are lost"
    );

    faults.sever(b.ep.address());
    // The association notices, reconnects and delivers what is sent next.
    let mut got = None;
    for i in 12..200 {
        a.ep.send(b.ep.address(), &env(i)).unwrap();
        if let Ok(Some((_, f))) =
            tokio::time::timeout(Duration::from_millis(20), b.frames.recv()).await
        {
            got = Some(seq_of(&f));
            break;
        }
    }
    assert!(got.is_some(), "traffic resumes after a sever");
    assert!(a.ep.counters().reconnects >= 1);
    assert_eq!(a.ep.counters().dropped, 10);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// Inbound faults: a node can stop hearing a peer, and dropped fractions lose about that share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_blackhole_and_loss() {
    let a = node("bank").await;
    let faults = FaultyTransport::tcp();
    let mut b = node_with("bank", None, Arc::new(faults.clone())).await;
    a.ep.send(b.ep.address(), &env(0)).unwrap();
    next(&mut b.frames).await;
    faults.blackhole(a.ep.address(), Direction::Inbound);
    a.ep.send(b.ep.address(), &env(1)).unwrap();
    nothing(&mut b.frames).await;
    faults.heal(a.ep.address());
    faults.drop_fraction(a.ep.address(), 0.5);
    for i in 0..2000 {
        a.ep.send(b.ep.address(), &env(i)).unwrap();
    }
    // Heal only once all 2000 have passed the fault (2 frames came before them).
    let deadline = tokio::time::Instant::now() + T;
    while b.ep.counters().frames_in < 2002 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the frames did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    faults.heal(a.ep.address());
    a.ep.send(b.ep.address(), &env(u64::MAX)).unwrap();
    let mut got = 0;
    let mut last = 0;
    loop {
        let f = seq_of(&next(&mut b.frames).await.1);
        if f == u64::MAX {
            break;
        }
        assert!(f >= last, "order is kept among the survivors");
        last = f;
        got += 1;
    }
    assert!(
        (600..1400).contains(&got),
        "about half of 2000 dropped, got {got}"
    );
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// A new connection starts with an empty name table on the receiving side: the sender names
// every recipient again before the compact envelopes that use them, so a compact envelope
// sent after a reconnect reaches its recipient instead of closing the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_names_are_defined_again_after_a_reconnect() {
    let faults = FaultyTransport::tcp();
    let a = node_with("bank", None, Arc::new(faults.clone())).await;
    let mut b = node("bank").await;
    let route = a.ep.route(b.ep.address());
    let compact =
        |id: u32, uid: u64| route.send(&FrameRef::Compact(frame::CompactRef(id, uid, &[1])));
    let recipient = |f: &Frame| match f {
        Frame::Envelope(e) => (e.recipient.path.clone(), e.recipient.uid),
        other => panic!("not an envelope: {other:?}"),
    };
    assert_eq!(route.define("/user/zero", "m").unwrap(), Some(0));
    assert_eq!(route.define("/user/one", "m").unwrap(), Some(1));
    compact(1, 5).unwrap();
    assert_eq!(
        recipient(&next(&mut b.frames).await.1),
        ("/user/one".into(), 5)
    );

    faults.sever(b.ep.address());
    let deadline = tokio::time::Instant::now() + T;
    while a.ep.counters().reconnects == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no reconnection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    compact(1, 6).unwrap();
    compact(0, 7).unwrap();
    assert_eq!(
        recipient(&next(&mut b.frames).await.1),
        ("/user/one".into(), 6)
    );
    assert_eq!(
        recipient(&next(&mut b.frames).await.1),
        ("/user/zero".into(), 7)
    );
    assert_eq!(
        route.define("/user/one", "m").unwrap(),
        Some(1),
        "same number"
    );
    assert_eq!(b.ep.counters().malformed, 0);
    a.ep.shutdown().await;
    b.ep.shutdown().await;
}

// A peer's goodbye retires every connection with it before anyone hears of it: nothing sent
// afterwards goes into the socket it closed (a direct write there would be lost without a
// trace); it waits for the next connection, to a node restarted on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_goodbye_nothing_is_written_to_the_old_connection() {
    for round in 0..20 {
        let mut a = node("bank").await;
        let mut b1 = node("bank").await;
        let port = b1.ep.address().port();
        // Connections both ways: A's to B1 idle and open for direct writes, B1's to A carrying
        // its goodbye.
        a.ep.send(b1.ep.address(), &env(1)).unwrap();
        assert_eq!(seq_of(&next(&mut b1.frames).await.1), 1);
        b1.ep.send(a.ep.address(), &env(2)).unwrap();
        assert_eq!(seq_of(&next(&mut a.frames).await.1), 2);
        let b_addr = b1.ep.address().clone();
        b1.ep.shutdown().await;
        let (from, bye) = next(&mut a.frames).await;
        assert_eq!((bye, from.address.clone()), (Frame::Bye, b_addr.clone()));
        {
            let assoc = a.ep.shared.assocs.lock().unwrap()[&b_addr].clone();
            let q = assoc.queue();
            assert!(
                q.out.is_none() && !q.direct,
                "round {round}: the old connection is still open for writes"
            );
        }
        // Sent before the new incarnation exists: it waits, and reaches it.
        a.ep.send(&b_addr, &env(3)).unwrap();
        let mut b2 = node_at("bank", port, None, Arc::new(TcpTransport)).await;
        assert_eq!(seq_of(&next(&mut b2.frames).await.1), 3, "round {round}");
        a.ep.shutdown().await;
        b2.ep.shutdown().await;
    }
}
