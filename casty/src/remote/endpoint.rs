//! The endpoint: one node's listener and its associations with peers (R1–R3, R5).
//!
//! **Outbound.** Each peer has one association: a byte buffer of encoded frames, a count bounding
//! it, and a writer task. A send encodes the frame straight into the buffer (no per-message
//! allocation) and wakes the writer, which swaps the whole buffer out and writes it with one
//! `write_all`: writes are batched, and order per peer is the buffer's order (R5). When the
//! connection is idle, the sender instead writes the buffer itself without waiting (one
//! non-blocking write), which saves the hop to the writer task on a request/reply round trip;
//! whatever the socket does not take at once, and every frame after it until the connection is
//! idle again, is the writer's, so bursts are still batched. The writer connects, performs the
//! handshake, and reconnects with exponential backoff; meanwhile frames queue up to the bound,
//! and overflow is refused to the caller, who turns it into dead letters. A slow or dead peer
//! fills only its own buffer.
//!
//! **Inbound.** Each accepted connection gets a task that runs the transport's upgrade (TLS) and
//! the responder handshake, under one deadline, then decodes frames and hands them up. The
//! listener only accepts, so a silent peer delays nobody else. Until its handshake is done a
//! connection may send frames of [`frame::HANDSHAKE_MAX_FRAME`] bytes at most, and only
//! `max_handshakes` connections may be in handshake at once: more are closed at once, unread.
//! An oversize or malformed frame, or a `Define` that would grow the connection's name table past
//! its bounds, closes that connection only (R3); the node goes on serving everyone else. Frames
//! only flow on the connection their sender opened, so each direction of a pair has its own
//! ordered stream.
//!
//! Every frame passes the transport's `outbound` / `inbound` hooks, which is where tests inject
//! partitions, delays and loss.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::{watch, Notify};
use tracing::Instrument;

use crate::actor::behavior::BoxFuture;
use crate::remote::frame::{self, Decoded, Frame, FrameDecoder, FrameError};
use crate::remote::handshake::{
    self, Initiator, LocalNode, Peer, Refusal, Responder, Step, NONCE_LEN,
};
use crate::remote::transport::{BoxStream, Fate, Severer, Transport};
use crate::remote::NodeAddress;

/// How many inbound connections may be in handshake at once, by default.
pub(crate) const DEFAULT_MAX_HANDSHAKES: usize = 128;

/// How an endpoint behaves.
#[derive(Debug, Clone)]
pub(crate) struct EndpointSettings {
    pub(crate) system: String,
    /// The host to bind and to announce.
    pub(crate) host: String,
    /// The port to bind (0 for any free port).
    pub(crate) port: u16,
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) max_frame: usize,
    /// Frames an association buffers for a peer before refusing more.
    pub(crate) outbound_capacity: usize,
    pub(crate) handshake_timeout: Duration,
    /// Inbound connections that may be in handshake at once; more are closed at once.
    pub(crate) max_handshakes: usize,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

impl EndpointSettings {
    pub(crate) fn new(system: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        EndpointSettings {
            system: system.into(),
            host: host.into(),
            port,
            secret: None,
            max_frame: frame::DEFAULT_MAX_FRAME,
            outbound_capacity: 100_000,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: DEFAULT_MAX_HANDSHAKES,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// What an [`Inbound`] handler keeps per compact recipient on one connection.
pub(crate) type DeliveryCache = Option<Box<dyn std::any::Any + Send>>;

/// A peer that completed the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerInfo {
    pub(crate) address: NodeAddress,
    pub(crate) uid: u64,
}

/// Where an endpoint hands what it receives.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// A frame from an established peer.
    fn frame(&self, from: &PeerInfo, frame: Frame);
    /// A compact envelope for a recipient defined on this connection. `cache` belongs to that
    /// recipient on this connection, for the handler to keep what it resolved.
    fn compact(
        &self,
        from: &PeerInfo,
        path: &str,
        uid: u64,
        payload: &[u8],
        cache: &mut DeliveryCache,
    ) {
        let _ = cache;
        self.envelope(from, path, uid, "", payload);
    }
    /// An envelope read in place, borrowing its parts from the connection's buffer. The default
    /// hands it to [`Inbound::frame`] as an owned frame.
    fn envelope(&self, from: &PeerInfo, path: &str, uid: u64, manifest: &str, payload: &[u8]) {
        self.frame(
            from,
            Frame::Envelope(crate::remote::frame::Envelope {
                recipient: crate::remote::frame::WirePath {
                    path: path.to_string(),
                    uid,
                },
                manifest: manifest.to_string(),
                payload: payload.to_vec(),
            }),
        );
    }
    /// A handshake with `peer` (an address or a socket address) was refused, by either side.
    fn refused(&self, peer: &str, refusal: &Refusal);
    /// An outbound association lost its connection, or its first attempts to connect failed.
    /// Called once per outage, not at every failed retry.
    fn disconnected(&self, _peer: &NodeAddress) {}
    /// An outbound association completed a handshake.
    fn connected(&self, _peer: &PeerInfo) {}
    /// An outbound association's handshake was refused (by either side). Sends to that peer are
    /// refused until a handshake succeeds again.
    fn node_refused(&self, _peer: &NodeAddress, _refusal: &Refusal) {}
    /// The peer said it is shutting down.
    fn peer_left(&self, _peer: &PeerInfo) {}
    /// Messages to or from `peer` were lost: `count` of them, the first (when it could be read)
    /// for `first` (path and uid), and `why`. Reported once per batch, not per message.
    fn dropped(&self, _peer: &NodeAddress, _first: Option<(&str, u64)>, _count: u64, _why: &str) {}
}

/// Counters of an endpoint, readable at any time.
///
/// # Examples
///
/// ```
/// use casty::remote::RemoteCounters;
/// let c = RemoteCounters::default();
/// assert_eq!(c.frames_out, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteCounters {
    /// Frames written to peers.
    pub frames_out: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Frames received from peers.
    pub frames_in: u64,
    /// Bytes received from peers.
    pub bytes_in: u64,
    /// Frames dropped: queue overflow, fault injection, oversize for the peer.
    pub dropped: u64,
    /// Connections re-established after a loss.
    pub reconnects: u64,
    /// Handshakes refused, by either side.
    pub refused: u64,
    /// Connections closed for an oversize or malformed frame.
    pub malformed: u64,
    /// Inbound connections closed at once, unread, because `max_handshakes` others were still
    /// in handshake.
    pub handshakes_shed: u64,
    /// Peer incarnations quarantined by this node.
    pub quarantined: u64,
    /// Remote actors watched from this node (a gauge).
    pub watching: u64,
    /// Watches other nodes hold on this node's actors (a gauge).
    pub watched_by: u64,
}

#[derive(Default)]
struct Counters {
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    handshakes_shed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RemoteCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RemoteCounters {
            frames_out: l(&self.frames_out),
            bytes_out: l(&self.bytes_out),
            frames_in: l(&self.frames_in),
            bytes_in: l(&self.bytes_in),
            dropped: l(&self.dropped),
            reconnects: l(&self.reconnects),
            refused: l(&self.refused),
            malformed: l(&self.malformed),
            handshakes_shed: l(&self.handshakes_shed),
            quarantined: 0,
            watching: 0,
            watched_by: 0,
        }
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why a frame was not queued for a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The frame is too large, or could not be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer's outbound queue is full (it is slow or unreachable).
    #[error("the outbound queue to {0} is full")]
    Overflow(String),
    /// The endpoint is shut down.
    #[error("remoting is shut down")]
    Closed,
    /// The peer refused the last handshake; sends are refused until one succeeds.
    #[error("{0}")]
    Refused(String),
}

struct OutQueue {
    buf: Vec<u8>,
    frames: usize,
    /// Recipients named for compact envelopes: (path, manifest) → id, and by id.
    ids: HashMap<(String, String), u32>,
    names: Vec<(String, String)>,
    /// Bytes of the paths in `names`, bounded by [`frame::MAX_COMPACT_NAME_BYTES`].
    name_bytes: usize,
    /// The connection's write half while nobody writes to it. The writer task, or a sender that
    /// finds it idle, takes it for one write and puts it back.
    out: Option<WriteHalf<BoxStream>>,
    /// Whether senders may write themselves: the transport injects no per-frame faults and the
    /// peer accepts our frame limit.
    direct: bool,
    /// Bumped when a connection ends, so a sender holding its write half drops it.
    generation: u64,
    /// A sender's write left bytes buffered inside the stream (TLS) that still need a flush.
    unflushed: bool,
    /// A spare buffer, swapped in while a sender writes the current one.
    spare: Vec<u8>,
}

/// One peer's outbound association.
struct Association {
    peer: NodeAddress,
    queue: Mutex<OutQueue>,
    wake: Notify,
    /// The frame limit agreed with the peer (the local limit until the first handshake).
    limit: AtomicUsize,
    /// The peer's incarnation as of the last handshake in either direction (0: none yet).
    peer_uid: AtomicU64,
    /// Set while the peer refuses our handshake, with the refusal; sends are refused meanwhile.
    refusing: AtomicBool,
    refusal: Mutex<String>,
}

struct Shared {
    settings: EndpointSettings,
    local: LocalNode,
    address: NodeAddress,
    transport: Arc<dyn Transport>,
    inbound: Arc<dyn Inbound>,
    assocs: Mutex<HashMap<NodeAddress, Arc<Association>>>,
    counters: Counters,
    closed: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// Peer incarnations that may never connect again.
    quarantined: Mutex<HashSet<u64>>,
    /// Live connections by peer incarnation, to close them on quarantine.
    links: Mutex<HashMap<u64, Vec<Severer>>>,
    /// The latest incarnation seen in a handshake with each peer, in either direction.
    /// Keyed by node key (`system@host:port`), so a lookup by key needs no parsing.
    known: Mutex<HashMap<String, u64>>,
    /// Held by every task of the endpoint; [`Endpoint::shutdown`] waits until all are dropped.
    alive: Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
    all_done: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>,
    /// Inbound connections in handshake now (see [`HandshakeSlot`]).
    handshaking: AtomicUsize,
}

/// One of the `max_handshakes` places for inbound connections in handshake, held by a connection
/// from its accept until its handshake ends, however it ends.
struct HandshakeSlot(Arc<Shared>);

impl HandshakeSlot {
    /// A free place, if there is one.
    fn take(shared: &Arc<Shared>) -> Option<HandshakeSlot> {
        let max = shared.settings.max_handshakes;
        shared
            .handshaking
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(HandshakeSlot(shared.clone()))
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.handshaking.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    /// A token for a task of the endpoint (see [`Shared::alive`]).
    fn task_token(&self) -> Option<tokio::sync::mpsc::Sender<()>> {
        self.alive.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the incarnation a handshake with `peer` showed.
    fn note_incarnation(&self, peer: &NodeAddress, uid: u64) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.node_key(), uid);
        if let Some(a) = self
            .assocs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
        {
            a.peer_uid.store(uid, Ordering::Release);
        }
    }

    /// Empties `assoc`'s queue, reporting what it held as lost for `why`. The recipient names
    /// stay: they are defined again on the next connection.
    fn drop_queued(&self, assoc: &Association, why: &str) {
        let (buf, frames, names) = {
            let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.frames == 0 {
                return;
            }
            let frames = std::mem::take(&mut q.frames);
            (std::mem::take(&mut q.buf), frames, q.names.clone())
        };
        // Definitions queued with the messages are not messages.
        let defines = frame::count_defines(&buf);
        let lost = (frames - defines.min(frames)) as u64;
        Counters::add(&self.counters.dropped, frames as u64);
        if lost > 0 {
            let first = frame::first_recipient(&buf, &names);
            self.inbound.dropped(
                &assoc.peer,
                first.as_ref().map(|(p, u)| (p.as_str(), *u)),
                lost,
                why,
            );
        }
    }

    fn is_quarantined(&self, uid: u64) -> bool {
        self.quarantined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&uid)
    }

    /// Registers a live connection with `uid`, until the guard drops. A connection whose peer
    /// was quarantined meanwhile is closed at once.
    fn link<'a>(&'a self, uid: u64, severer: &Severer) -> Link<'a> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(uid)
            .or_default()
            .push(severer.clone());
        if self.is_quarantined(uid) {
            severer.sever();
        }
        Link {
            shared: self,
            uid,
            severer: severer.clone(),
        }
    }
}

/// A live connection's registration in [`Shared::links`].
struct Link<'a> {
    shared: &'a Shared,
    uid: u64,
    severer: Severer,
}

impl Drop for Link<'_> {
    fn drop(&mut self) {
        let mut links = self.shared.links.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = links.get_mut(&self.uid) {
            list.retain(|s| !s.same(&self.severer));
            if list.is_empty() {
                links.remove(&self.uid);
            }
        }
    }
}

/// A node's remoting endpoint. Dropping it does not stop it; call [`Endpoint::shutdown`].
#[derive(Clone)]
pub(crate) struct Endpoint {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.shared.address)
            .finish()
    }
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    if getrandom::fill(&mut n).is_err() {
        // No OS randomness: fall back to a non-cryptographic source rather than a fixed value.
        for b in &mut n {
            *b = fastrand::u8(..);
        }
    }
    n
}

/// A fresh incarnation uid for a node (R1).
pub(crate) fn node_uid() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return fastrand::u64(1..);
    }
    u64::from_le_bytes(b).max(1)
}

impl Endpoint {
    /// Binds and starts accepting. The returned endpoint knows its real port.
    pub(crate) async fn bind(
        settings: EndpointSettings,
        uid: u64,
        transport: Arc<dyn Transport>,
        inbound: Arc<dyn Inbound>,
    ) -> io::Result<Endpoint> {
        let bind_addr = NodeAddress::new(&settings.system, &settings.host, settings.port);
        let mut listener = transport.bind(&bind_addr.socket_addr()).await?;
        let port = listener.local_addr()?.port();
        let address = NodeAddress::new(&settings.system, &settings.host, port);
        let max_frame = u32::try_from(settings.max_frame).unwrap_or(u32::MAX);
        let local = LocalNode {
            system: settings.system.clone(),
            address: address.to_string(),
            uid,
            max_frame,
            secret: settings.secret.clone(),
        };
        let (shutdown, _) = watch::channel(false);
        let (alive, all_done) = tokio::sync::mpsc::channel(1);
        let shared = Arc::new(Shared {
            settings,
            local,
            address,
            transport,
            inbound,
            assocs: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            shutdown,
            quarantined: Mutex::new(HashSet::new()),
            links: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            alive: Mutex::new(Some(alive)),
            all_done: tokio::sync::Mutex::new(all_done),
            handshaking: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let mut stop = shared.shutdown.subscribe();
        let token = shared.task_token();
        let span = tracing::info_span!("remote-listener", node = %shared.address);
        tokio::spawn(
            async move {
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = stop.changed() => return,
                    };
                    match accepted {
                        Ok((stream, from)) => {
                            // Unauthenticated connections are cheap to open: only so many may
                            // be in handshake at once, and the rest are closed unread.
                            let Some(slot) = HandshakeSlot::take(&s) else {
                                Counters::add(&s.counters.handshakes_shed, 1);
                                tracing::warn!(%from, "closing: too many connections in handshake");
                                drop(stream);
                                continue;
                            };
                            // A TLS handshake, if any, runs in the connection's own task.
                            let stream = listener.upgrade(stream, from);
                            let span = tracing::info_span!("remote-inbound", from = %from);
                            let token = s.task_token();
                            tokio::spawn(
                                async move {
                                    let _token = token;
                                    inbound_connection(slot, stream, from).await
                                }
                                .instrument(span),
                            );
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
            .instrument(span),
        );
        drop(token);
        Ok(Endpoint { shared })
    }

    /// This node's address, with the port actually bound.
    pub(crate) fn address(&self) -> &NodeAddress {
        &self.shared.address
    }

    /// This node's incarnation uid.
    #[cfg(test)]
    pub(crate) fn uid(&self) -> u64 {
        self.shared.local.uid
    }

    pub(crate) fn counters(&self) -> RemoteCounters {
        let mut c = self.shared.counters.snapshot();
        c.quarantined = self
            .shared
            .quarantined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u64;
        c
    }

    /// Queues `frame` for `peer`, connecting on first use.
    ///
    /// # Errors
    ///
    /// An oversize or unencodable frame, a full queue, or a shut-down endpoint. Nothing is queued.
    pub(crate) fn send(&self, peer: &NodeAddress, frame: &Frame) -> Result<(), SendError> {
        self.route(peer).send(frame)
    }

    /// The association with `peer`, to send to it many times without looking it up.
    pub(crate) fn route(&self, peer: &NodeAddress) -> Route {
        Route {
            shared: self.shared.clone(),
            assoc: self.association(peer),
        }
    }

    fn association(&self, peer: &NodeAddress) -> Arc<Association> {
        let shared = &self.shared;
        let mut map = shared.assocs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = map.get(peer) {
            return a.clone();
        }
        let a = Arc::new(Association {
            peer: peer.clone(),
            queue: Mutex::new(OutQueue {
                buf: Vec::with_capacity(64 * 1024),
                frames: 0,
                ids: HashMap::new(),
                names: Vec::new(),
                name_bytes: 0,
                out: None,
                direct: false,
                generation: 0,
                unflushed: false,
                spare: Vec::new(),
            }),
            wake: Notify::new(),
            limit: AtomicUsize::new(shared.settings.max_frame),
            peer_uid: AtomicU64::new(self.incarnation_of(peer)),
            refusing: AtomicBool::new(false),
            refusal: Mutex::new(String::new()),
        });
        map.insert(peer.clone(), a.clone());
        let span = tracing::info_span!("remote-association", node = %shared.address, peer = %peer);
        let token = shared.task_token();
        let (s, assoc) = (shared.clone(), a.clone());
        tokio::spawn(
            async move {
                let _token = token;
                run_association(s, assoc).await
            }
            .instrument(span),
        );
        a
    }

    /// The latest incarnation of `peer` seen in a handshake (0 if none).
    fn incarnation_of(&self, peer: &NodeAddress) -> u64 {
        self.incarnation_of_key(&peer.node_key())
    }

    /// [`Endpoint::incarnation_of`] by node key (`system@host:port`).
    pub(crate) fn incarnation_of_key(&self, node: &str) -> u64 {
        self.shared
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .copied()
            .unwrap_or(0)
    }

    /// Reports every message still queued for `peer` as lost for `why` (the peer is gone).
    pub(crate) fn drop_queued(&self, peer: &NodeAddress, why: &str) {
        let assoc = self
            .shared
            .assocs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .cloned();
        if let Some(a) = assoc {
            self.shared.drop_queued(&a, why);
        }
    }

    /// Quarantines the peer incarnation `uid` (R1): its live connections close, and it can never
    /// connect again, in either direction (handshakes are refused with
    /// [`Refusal::Quarantined`]). A restart of that peer is a new incarnation and is unaffected.
    /// Returns whether `uid` was newly quarantined.
    pub(crate) fn quarantine(&self, uid: u64) -> bool {
        let shared = &self.shared;
        let new = shared
            .quarantined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid);
        let live = shared
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            .cloned()
            .unwrap_or_default();
        for s in live {
            s.sever();
        }
        new
    }

    /// Says goodbye to every peer (a [`Frame::Bye`] after whatever is queued, on every
    /// connection in both directions), stops accepting, closes every connection and ends the
    /// association tasks. Returns once they have ended, or after about a second.
    pub(crate) async fn shutdown(&self) {
        let assocs: Vec<Arc<Association>> = self
            .shared
            .assocs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for a in &assocs {
            let mut q = a.queue.lock().unwrap_or_else(|e| e.into_inner());
            if frame::encode(&Frame::Bye, usize::MAX, &mut q.buf).is_ok() {
                q.frames += 1;
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        self.shared.shutdown.send_replace(true);
        for a in &assocs {
            a.wake.notify_one();
        }
        drop(
            self.shared
                .alive
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let mut done = self.shared.all_done.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), done.recv()).await;
    }
}

/// A resolved association: sends to one peer without a lookup.
#[derive(Clone)]
pub(crate) struct Route {
    shared: Arc<Shared>,
    assoc: Arc<Association>,
}

impl Route {
    /// Queues `frame` (a [`Frame`] or a borrowed frame) for the peer.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::send`].
    pub(crate) fn send<T: serde::Serialize + ?Sized>(&self, frame: &T) -> Result<(), SendError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let assoc = &self.assoc;
        if assoc.refusing.load(Ordering::Acquire) {
            let why = assoc
                .refusal
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return Err(SendError::Refused(why));
        }
        let limit = assoc.limit.load(Ordering::Relaxed);
        let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.frames >= shared.settings.outbound_capacity {
            drop(q);
            Counters::add(&shared.counters.dropped, 1);
            return Err(SendError::Overflow(assoc.peer.to_string()));
        }
        frame::encode(frame, limit, &mut q.buf)?;
        q.frames += 1;
        if q.direct && q.out.is_some() {
            // Nobody is writing: write now from this task instead of waking the writer.
            write_direct(shared, assoc, q);
            return Ok(());
        }
        // The writer drains everything queued when it wakes; one wake-up per batch is enough.
        let first = q.frames == 1;
        drop(q);
        if first {
            assoc.wake.notify_one();
        }
        Ok(())
    }
}

/// Writes everything queued from the calling task, which found the connection idle. The queue
/// lock is not held during the write: senders meanwhile append to a fresh buffer. What the socket
/// does not take at once (and any flush a TLS stream still owes) is handed to the writer task, so
/// a sender never waits for the network.
fn write_direct(shared: &Shared, assoc: &Association, mut q: std::sync::MutexGuard<'_, OutQueue>) {
    let generation = q.generation;
    let Some(mut w) = q.out.take() else { return };
    let mut buf = std::mem::take(&mut q.spare);
    std::mem::swap(&mut buf, &mut q.buf);
    let frames = std::mem::take(&mut q.frames);
    drop(q);
    let mut cx = Context::from_waker(Waker::noop());
    let mut pos = 0;
    let mut failed = false;
    while pos < buf.len() {
        match Pin::new(&mut w).poll_write(&mut cx, &buf[pos..]) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                failed = true;
                break;
            }
            Poll::Ready(Ok(n)) => pos += n,
            Poll::Pending => break,
        }
    }
    let flushed = !failed
        && pos == buf.len()
        && matches!(Pin::new(&mut w).poll_flush(&mut cx), Poll::Ready(Ok(())));
    Counters::add(&shared.counters.bytes_out, pos as u64);
    let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
    if q.generation != generation {
        // The connection ended while we wrote; its writer is gone and so is this write half.
        return;
    }
    if pos < buf.len() {
        // The rest goes ahead of whatever was queued meanwhile.
        buf.drain(..pos);
        buf.extend_from_slice(&q.buf);
        std::mem::swap(&mut buf, &mut q.buf);
        q.frames += frames;
    } else {
        Counters::add(&shared.counters.frames_out, frames as u64);
    }
    buf.clear();
    q.spare = buf;
    q.unflushed |= !flushed;
    q.out = Some(w);
    // One sender writes once, then the writer task takes over until the connection is idle
    // again: what comes meanwhile is batched rather than written one syscall per frame.
    q.direct = false;
    drop(q);
    assoc.wake.notify_one();
}

impl Route {
    /// The peer's incarnation as of the last handshake in either direction (0: none yet).
    pub(crate) fn incarnation(&self) -> u64 {
        self.assoc.peer_uid.load(Ordering::Acquire)
    }

    /// The number that names `path` (with `manifest`) on this association, defining it on first
    /// use. The definition is queued ahead of any envelope that uses it. `None` once the table
    /// is full ([`frame::MAX_COMPACT_NAMES`], [`frame::MAX_COMPACT_NAME_BYTES`]): that recipient
    /// travels with its full path.
    pub(crate) fn define(&self, path: &str, manifest: &str) -> Result<Option<u32>, SendError> {
        let assoc = &self.assoc;
        let limit = assoc.limit.load(Ordering::Relaxed);
        let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
        let key = (path.to_string(), manifest.to_string());
        if let Some(id) = q.ids.get(&key) {
            return Ok(Some(*id));
        }
        if q.names.len() >= frame::MAX_COMPACT_NAMES
            || q.name_bytes + path.len() > frame::MAX_COMPACT_NAME_BYTES
        {
            return Ok(None);
        }
        let id = u32::try_from(q.names.len())
            .map_err(|_| SendError::Overflow(assoc.peer.to_string()))?;
        frame::encode(
            &Frame::Define {
                id,
                path: key.0.clone(),
                manifest: key.1.clone(),
            },
            limit,
            &mut q.buf,
        )?;
        q.frames += 1;
        q.name_bytes += path.len();
        q.ids.insert(key.clone(), id);
        q.names.push(key);
        let first = q.frames == 1;
        drop(q);
        if first {
            assoc.wake.notify_one();
        }
        Ok(Some(id))
    }
}

/// Reads one frame, within `timeout`.
async fn read_frame(
    stream: &mut BoxStream,
    dec: &mut FrameDecoder,
    timeout: Duration,
) -> io::Result<Frame> {
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(timeout, async {
        loop {
            if let Some(f) = dec.next_frame().map_err(io::Error::other)? {
                return Ok(f);
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection",
                ));
            }
            dec.push(&chunk[..n]);
        }
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))?
}

async fn write_frame(stream: &mut BoxStream, frame: &Frame, max: usize) -> io::Result<()> {
    let mut buf = Vec::new();
    frame::encode(frame, max, &mut buf).map_err(io::Error::other)?;
    stream.write_all(&buf).await?;
    stream.flush().await
}

/// Why an outbound connection attempt failed.
enum ConnectError {
    Io(io::Error),
    Refused(Refusal),
}

async fn connect(shared: &Shared, peer: &NodeAddress) -> Result<(BoxStream, Peer), ConnectError> {
    let timeout = shared.settings.handshake_timeout;
    let mut stream = tokio::time::timeout(timeout, shared.transport.connect(&peer.socket_addr()))
        .await
        .map_err(|_| {
            ConnectError::Io(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
        })?
        .map_err(ConnectError::Io)?;
    let max = frame::HANDSHAKE_MAX_FRAME;
    let (init, hello) = Initiator::start(shared.local.clone(), nonce());
    write_frame(&mut stream, &hello, max)
        .await
        .map_err(ConnectError::Io)?;
    let mut dec = FrameDecoder::new(max);
    let answer = read_frame(&mut stream, &mut dec, timeout)
        .await
        .map_err(ConnectError::Io)?;
    let screened = handshake::screen(&answer, |uid| shared.is_quarantined(uid));
    match screened.and_then(|()| init.on_frame(answer)) {
        Ok((confirm, p)) => {
            write_frame(&mut stream, &confirm, max)
                .await
                .map_err(ConnectError::Io)?;
            Ok((stream, p))
        }
        Err(failed) => {
            if let Some(f) = failed.frame() {
                let _ = write_frame(&mut stream, &f, max).await;
            }
            Err(ConnectError::Refused(failed.refusal))
        }
    }
}

fn report_refusal(shared: &Shared, peer: &str, refusal: &Refusal) {
    Counters::add(&shared.counters.refused, 1);
    tracing::warn!(node = %shared.address, peer, reason = %refusal, "handshake refused");
    shared.inbound.refused(peer, refusal);
}

/// The peer of an outbound association refused us: sends to it are refused from now until a
/// handshake succeeds, and what is queued for it is lost.
fn refused_by(shared: &Shared, assoc: &Association, refusal: &Refusal) {
    report_refusal(shared, &assoc.peer.to_string(), refusal);
    *assoc.refusal.lock().unwrap_or_else(|e| e.into_inner()) =
        format!("{} refused the handshake: {refusal}", assoc.peer);
    assoc.refusing.store(true, Ordering::Release);
    shared.drop_queued(
        assoc,
        &format!("{} refused the handshake: {refusal}", assoc.peer),
    );
    shared.inbound.node_refused(&assoc.peer, refusal);
}

/// What a peer may say on a connection we opened, after the handshake.
enum PeerSaid {
    /// The connection ended.
    Closed,
    /// A late refusal (it quarantined us).
    Refuse(String),
    /// It is shutting down.
    Bye,
}

async fn run_association(shared: Arc<Shared>, assoc: Arc<Association>) {
    let mut stop = shared.shutdown.subscribe();
    let mut backoff = shared.settings.backoff_min;
    let mut connected_before = false;
    // Whether the current outage was reported. A peer never reached is as lost as one that went
    // away; after a connection ends, its loss is reported once, whatever the retries do.
    let mut outage_reported = false;
    loop {
        if *stop.borrow() {
            return;
        }
        match connect(&shared, &assoc.peer).await {
            Err(e) => {
                if !outage_reported {
                    outage_reported = true;
                    shared.inbound.disconnected(&assoc.peer);
                }
                match e {
                    ConnectError::Refused(r) => refused_by(&shared, &assoc, &r),
                    ConnectError::Io(e) => {
                        tracing::debug!(error = %e, "cannot reach the peer; retrying in {:?}", backoff)
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(shared.settings.backoff_max);
            }
            Ok((stream, p)) => {
                backoff = shared.settings.backoff_min;
                if connected_before {
                    Counters::add(&shared.counters.reconnects, 1);
                }
                connected_before = true;
                assoc.limit.store(p.max_frame, Ordering::Relaxed);
                assoc.refusing.store(false, Ordering::Release);
                shared.note_incarnation(&assoc.peer, p.uid);
                let info = PeerInfo {
                    address: assoc.peer.clone(),
                    uid: p.uid,
                };
                tracing::debug!(peer_uid = p.uid, "association established");
                shared.inbound.connected(&info);
                let severer = Severer::default();
                shared.transport.register(&assoc.peer, &severer);
                let _link = shared.link(p.uid, &severer);
                write_loop(&shared, &assoc, &info, stream, &severer, &mut stop).await;
                shared.inbound.disconnected(&assoc.peer);
                outage_reported = true;
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

/// Walks the length prefixes of a batch, applying the transport's fate and the peer's limit to
/// each frame. Returns the bytes to write and the longest delay asked for.
fn filter_batch(
    shared: &Shared,
    assoc: &Association,
    batch: &[u8],
    out: &mut Vec<u8>,
) -> (usize, Option<Duration>) {
    let limit = assoc.limit.load(Ordering::Relaxed);
    let mut pos = 0;
    let mut frames = 0;
    let mut delay: Option<Duration> = None;
    // Lost messages, reported once for the batch: how many, the first one, and why.
    let mut lost = 0u64;
    let mut first_lost: Option<usize> = None;
    let mut why = "";
    while let Some(h) = batch.get(pos..pos + 4) {
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let end = (pos + 4 + len).min(batch.len());
        let keep = if len > limit {
            tracing::warn!(
                size = len,
                limit,
                "dropping a frame larger than the peer accepts"
            );
            why = "larger than the peer accepts";
            false
        } else {
            match shared.transport.outbound(&assoc.peer) {
                Fate::Pass => true,
                Fate::Drop => {
                    why = "dropped by the link (fault injection)";
                    false
                }
                Fate::Delay(d) => {
                    delay = Some(delay.map_or(d, |x| x.max(d)));
                    true
                }
            }
        };
        if keep {
            out.extend_from_slice(&batch[pos..end]);
            frames += 1;
        } else {
            Counters::add(&shared.counters.dropped, 1);
            if !frame::is_define(&batch[pos..end]) {
                lost += 1;
                first_lost.get_or_insert(pos);
            }
        }
        pos = end;
    }
    if let Some(at) = first_lost {
        let names = assoc
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .names
            .clone();
        let first = frame::first_recipient(&batch[at..], &names);
        shared.inbound.dropped(
            &assoc.peer,
            first.as_ref().map(|(p, u)| (p.as_str(), *u)),
            lost,
            why,
        );
    }
    (frames, delay)
}

/// Ends a connection's use of the association's write half, however the writer leaves.
struct Release<'a>(&'a Association);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let mut q = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.out = None;
        q.direct = false;
        q.unflushed = false;
        q.generation += 1;
    }
}

async fn write_loop(
    shared: &Shared,
    assoc: &Association,
    info: &PeerInfo,
    stream: BoxStream,
    severer: &Severer,
    stop: &mut watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    // The peer writes nothing on this connection after the handshake, except a refusal or its
    // goodbye.
    let max = shared.settings.max_frame;
    let mut reader = Box::pin(async move {
        let mut dec = FrameDecoder::new(max);
        let mut chunk = [0u8; 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return PeerSaid::Closed,
                Ok(n) => {
                    dec.push(&chunk[..n]);
                    loop {
                        match dec.next_frame() {
                            Ok(Some(Frame::Refuse { reason })) => return PeerSaid::Refuse(reason),
                            Ok(Some(Frame::Bye)) => return PeerSaid::Bye,
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(_) => return PeerSaid::Closed,
                        }
                    }
                }
            }
        }
    });
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut filtered = Vec::with_capacity(64 * 1024);
    // A new connection has a fresh table on the other side: name every recipient again before
    // any compact envelope that may be queued.
    {
        let names: Vec<(String, String)> = assoc
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .names
            .clone();
        let mut prefix = Vec::new();
        for (id, (path, manifest)) in names.into_iter().enumerate() {
            let define = Frame::Define {
                id: id as u32,
                path,
                manifest,
            };
            if frame::encode(&define, assoc.limit.load(Ordering::Relaxed), &mut prefix).is_err() {
                return;
            }
        }
        if !prefix.is_empty() && wr.write_all(&prefix).await.is_err() {
            return;
        }
    }
    // The usual case writes each batch as it is, and lets senders write when the connection is
    // idle: no faults to apply, and every queued frame is within the peer's limit (which is
    // ours). Otherwise only this task writes, and it looks at each frame.
    let as_is = !shared.transport.filters_frames()
        && assoc.limit.load(Ordering::Relaxed) >= shared.settings.max_frame;
    let _release = Release(assoc);
    // Long-lived, so that each wake-up of the writer does not subscribe to them again.
    let mut severed = std::pin::pin!(severer.severed());
    let mut stopping = std::pin::pin!(stop.changed());
    {
        let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.out = Some(wr);
        q.direct = as_is;
    }
    loop {
        let (taken, queued, unflushed) = {
            let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.frames > 0 || q.unflushed {
                // `None` while a sender writes; it wakes us again if it leaves work behind.
                match q.out.take() {
                    Some(w) => {
                        std::mem::swap(&mut q.buf, &mut batch);
                        let unflushed = std::mem::take(&mut q.unflushed);
                        (Some(w), std::mem::take(&mut q.frames), unflushed)
                    }
                    None => (None, 0, false),
                }
            } else {
                // Idle: the next sender may write itself.
                q.direct = as_is;
                (None, 0, false)
            }
        };
        let Some(mut w) = taken else {
            tokio::select! {
                _ = assoc.wake.notified() => continue,
                r = &mut reader => {
                    match r {
                        PeerSaid::Refuse(reason) => {
                            refused_by(shared, assoc, &Refusal::ByPeer(reason));
                        }
                        PeerSaid::Bye => shared.inbound.peer_left(info),
                        PeerSaid::Closed => {}
                    }
                    return;
                }
                _ = &mut severed => return,
                _ = &mut stopping => {
                    // Shutting down: flush what is queued (Terminated notices, last replies),
                    // briefly, then close.
                    let (w, last) = {
                        let mut q = assoc.queue.lock().unwrap_or_else(|e| e.into_inner());
                        q.frames = 0;
                        (q.out.take(), std::mem::take(&mut q.buf))
                    };
                    let Some(mut w) = w else { return };
                    let mut out = Vec::new();
                    filter_batch(shared, assoc, &last, &mut out);
                    let _ = tokio::time::timeout(Duration::from_millis(500), async {
                        w.write_all(&out).await?;
                        w.flush().await
                    })
                    .await;
                    let _ = tokio::time::timeout(Duration::from_millis(100), w.shutdown()).await;
                    return;
                }
            }
        };
        let frames = if as_is {
            std::mem::swap(&mut batch, &mut filtered);
            queued
        } else {
            filtered.clear();
            let (frames, delay) = filter_batch(shared, assoc, &batch, &mut filtered);
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            frames
        };
        batch.clear();
        if filtered.is_empty() && !unflushed {
            assoc.queue.lock().unwrap_or_else(|e| e.into_inner()).out = Some(w);
            continue;
        }
        if severer.is_severed() {
            return;
        }
        // A TLS stream may keep part of a write buffered until flushed.
        let written = tokio::select! {
            biased;
            _ = &mut severed => return,
            r = async {
                w.write_all(&filtered).await?;
                w.flush().await
            } => r,
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed; reconnecting");
            return;
        }
        assoc.queue.lock().unwrap_or_else(|e| e.into_inner()).out = Some(w);
        Counters::add(&shared.counters.frames_out, frames as u64);
        Counters::add(&shared.counters.bytes_out, filtered.len() as u64);
        filtered.clear();
        // Keep a large buffer from being held forever after a burst.
        if batch.capacity() > 4 * 1024 * 1024 {
            batch = Vec::with_capacity(64 * 1024);
        }
    }
}

/// The recipients a peer named on one inbound connection (`Define`), for its compact envelopes,
/// and what the handler cached for each. Bounded in entries and bytes, and grown only near its
/// end, so a peer cannot make it large; a `Define` that would is malformed.
#[derive(Default)]
struct CompactTable {
    names: Vec<Option<(String, DeliveryCache)>>,
    /// Bytes of the paths in `names`.
    bytes: usize,
}

impl CompactTable {
    /// Names `id` (again, if it was named before).
    fn define(&mut self, id: u32, path: String) -> Result<(), String> {
        let i = id as usize;
        if i >= frame::MAX_COMPACT_NAMES {
            return Err(format!(
                "recipient id {id} beyond the limit of {} names",
                frame::MAX_COMPACT_NAMES
            ));
        }
        if i > self.names.len() + frame::MAX_DEFINE_GAP {
            return Err(format!(
                "recipient id {id} far past the {} names defined",
                self.names.len()
            ));
        }
        let old = self
            .names
            .get(i)
            .and_then(|n| n.as_ref())
            .map_or(0, |(p, _)| p.len());
        let bytes = self.bytes - old + path.len();
        if bytes > frame::MAX_COMPACT_NAME_BYTES {
            return Err(format!(
                "recipient names beyond the limit of {} bytes",
                frame::MAX_COMPACT_NAME_BYTES
            ));
        }
        if self.names.len() <= i {
            self.names.resize_with(i + 1, || None);
        }
        self.names[i] = Some((path, None));
        self.bytes = bytes;
        Ok(())
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut (String, DeliveryCache)> {
        self.names.get_mut(id as usize)?.as_mut()
    }
}

/// The responder's side of an inbound connection's handshake: the transport's upgrade (TLS),
/// then `Hello` / `Welcome` / `Confirm`, with frames limited to [`frame::HANDSHAKE_MAX_FRAME`].
/// Returns the stream, its decoder (which may hold frames that came right after), and the peer.
async fn inbound_handshake(
    shared: &Shared,
    upgrade: BoxFuture<'static, io::Result<BoxStream>>,
    from: SocketAddr,
) -> Option<(BoxStream, FrameDecoder, Peer)> {
    let max = frame::HANDSHAKE_MAX_FRAME;
    let timeout = shared.settings.handshake_timeout;
    let mut stream = match upgrade.await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "inbound connection refused by the transport");
            return None;
        }
    };
    let mut dec = FrameDecoder::new(max);
    let mut responder = Responder::new(shared.local.clone(), nonce());
    let peer = loop {
        let f = match read_frame(&mut stream, &mut dec, timeout).await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "inbound handshake failed");
                if e.kind() == io::ErrorKind::Other {
                    Counters::add(&shared.counters.malformed, 1);
                }
                return None;
            }
        };
        let screened = handshake::screen(&f, |uid| shared.is_quarantined(uid));
        match screened.and_then(|()| responder.on_frame(f)) {
            Ok(Step::Send(frame, next)) => {
                if write_frame(&mut stream, &frame, max).await.is_err() {
                    return None;
                }
                responder = *next;
            }
            Ok(Step::Done(p)) => break p,
            Err(failed) => {
                if let Some(f) = failed.frame() {
                    let _ = write_frame(&mut stream, &f, max).await;
                }
                report_refusal(shared, &from.to_string(), &failed.refusal);
                return None;
            }
        }
    };
    Some((stream, dec, peer))
}

async fn inbound_connection(
    slot: HandshakeSlot,
    upgrade: BoxFuture<'static, io::Result<BoxStream>>,
    from: SocketAddr,
) {
    let shared = slot.0.clone();
    if shared.closed.load(Ordering::Acquire) {
        // Shutting down: nobody new gets in.
        return;
    }
    let timeout = shared.settings.handshake_timeout;
    // One deadline for the whole handshake, the transport's part included.
    let handshake = tokio::time::timeout(timeout, inbound_handshake(&shared, upgrade, from)).await;
    drop(slot);
    let (mut stream, mut dec, peer) = match handshake {
        Ok(Some(done)) => done,
        Ok(None) => return,
        Err(_) => {
            tracing::debug!("inbound handshake timed out");
            return;
        }
    };
    dec.set_max(shared.settings.max_frame);
    let address = match NodeAddress::parse_actor(&peer.address) {
        Ok((a, _)) => a,
        Err(e) => {
            tracing::warn!(error = %e, "the peer announced a bad address");
            return;
        }
    };
    let info = PeerInfo {
        address,
        uid: peer.uid,
    };
    shared.note_incarnation(&info.address, info.uid);
    let severer = Severer::default();
    shared.transport.register(&info.address, &severer);
    let _link = shared.link(info.uid, &severer);
    let mut stop = shared.shutdown.subscribe();
    // Severed or shutting down (true): one future for the connection's life, not two per read.
    let closed = async {
        tokio::select! {
            _ = severer.severed() => false,
            // Also if the shutdown began before this connection subscribed.
            _ = stop.wait_for(|&stopping| stopping) => true,
        }
    };
    let mut closed = std::pin::pin!(closed);
    let mut chunk = vec![0u8; 64 * 1024];
    // Recipients this peer named for compact envelopes, and what the handler cached for each.
    let mut names = CompactTable::default();
    // Messages the link dropped on arrival (fault injection), reported once per read.
    let mut inbound_lost = 0u64;
    let mut first_inbound_lost: Option<(String, u64)> = None;
    loop {
        // Frames that came in with the handshake's last bytes are already buffered.
        loop {
            if severer.is_severed() {
                return;
            }
            let decoded = match dec.next() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    Counters::add(&shared.counters.malformed, 1);
                    tracing::warn!(peer = %info.address, error = %e, "closing the connection");
                    return;
                }
            };
            Counters::add(&shared.counters.frames_in, 1);
            // Names are connection state, not traffic: faults do not apply to them.
            if let Decoded::Frame(Frame::Define { id, path, .. }) = decoded {
                if let Err(e) = names.define(id, path) {
                    Counters::add(&shared.counters.malformed, 1);
                    tracing::warn!(peer = %info.address, id, "closing: {e}");
                    return;
                }
                continue;
            }
            match shared.transport.inbound(&info.address) {
                Fate::Pass => {}
                Fate::Drop => {
                    Counters::add(&shared.counters.dropped, 1);
                    let recipient = match &decoded {
                        Decoded::Compact { id, uid, .. } => {
                            names.get_mut(*id).map(|(p, _)| (p.clone(), *uid))
                        }
                        Decoded::Envelope { path, uid, .. } => Some((path.to_string(), *uid)),
                        Decoded::Frame(_) => None,
                    };
                    if let Some(r) = recipient {
                        inbound_lost += 1;
                        first_inbound_lost.get_or_insert(r);
                    }
                    continue;
                }
                Fate::Delay(d) => tokio::time::sleep(d).await,
            }
            match decoded {
                Decoded::Compact { id, uid, payload } => {
                    let Some((path, cache)) = names.get_mut(id) else {
                        Counters::add(&shared.counters.malformed, 1);
                        tracing::warn!(peer = %info.address, id, "closing: an undefined recipient id");
                        return;
                    };
                    shared.inbound.compact(&info, path, uid, &payload, cache);
                }
                Decoded::Envelope {
                    path,
                    uid,
                    manifest,
                    payload,
                } => shared.inbound.envelope(&info, path, uid, manifest, payload),
                Decoded::Frame(f) => shared.inbound.frame(&info, f),
            }
        }
        if inbound_lost > 0 {
            let first = first_inbound_lost.take();
            shared.inbound.dropped(
                &info.address,
                first.as_ref().map(|(p, u)| (p.as_str(), *u)),
                std::mem::take(&mut inbound_lost),
                "dropped on arrival by the link (fault injection)",
            );
        }
        let n = tokio::select! {
            biased;
            stopping = &mut closed => {
                if stopping {
                    // Say goodbye on the peer's connection too, so it need not wait for its
                    // failure detection to learn that this node is gone.
                    let _ = tokio::time::timeout(
                        Duration::from_millis(200),
                        write_frame(&mut stream, &Frame::Bye, shared.settings.max_frame),
                    )
                    .await;
                }
                return;
            }
            r = stream.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        Counters::add(&shared.counters.bytes_in, n as u64);
        dec.push(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::frame::{Envelope, FrameRef, WirePath};
    use crate::remote::TcpTransport;
    use crate::testing::{Direction, FaultyTransport};
    use tokio::sync::mpsc;

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
    }

    struct Node {
        ep: Endpoint,
        frames: mpsc::UnboundedReceiver<(PeerInfo, Frame)>,
        refusals: mpsc::UnboundedReceiver<Refusal>,
    }

    async fn node_with(system: &str, secret: Option<&str>, transport: Arc<dyn Transport>) -> Node {
        let (ftx, frames) = mpsc::unbounded_channel();
        let (rtx, refusals) = mpsc::unbounded_channel();
        let mut s = EndpointSettings::new(system, "127.0.0.1", 0);
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

    async fn nothing(rx: &mut mpsc::UnboundedReceiver<(PeerInfo, Frame)>) {
        assert!(
            tokio::time::timeout(QUIET, rx.recv()).await.is_err(),
            "expected nothing"
        );
    }

    // R5: 10,000 frames from A arrive at B in order, and B's own frames reach A.
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

    // R5 with senders racing each other and the writer: whoever finds the connection idle writes
    // (a sender or the writer task), and each sender's frames still arrive in its order.
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

    // R1: a quarantined incarnation loses its connections in both directions, cannot open new
    // ones in either role, and both sides know why. A new incarnation is unaffected.
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

    // R2: a wrong system name is refused, and each side knows why.
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

    // R2: a wrong secret is refused on both sides; the right one passes.
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
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(T, s.read(&mut b))
            .await
            .expect("closed in time");
        assert!(
            matches!(r, Ok(0) | Err(_)),
            "expected the connection closed, got {r:?}"
        );
    }

    // R3: garbage and an oversize frame each close only their own connection; a third peer's
    // traffic keeps flowing.
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

    // The compression table: a `Define` that would take it past its bounds, or far past its end,
    // is refused and leaves it as it was.
    #[test]
    fn the_compact_table_refuses_growth_past_its_bounds() {
        let mut t = CompactTable::default();
        t.define(0, "/user/a".into()).unwrap();
        assert!(t.define(1_000_000, "/x".into()).is_err());
        assert!(t.define(u32::MAX, "/x".into()).is_err());
        assert!(t
            .define((frame::MAX_DEFINE_GAP + 2) as u32, "/x".into())
            .is_err());
        assert_eq!((t.names.len(), t.bytes), (1, 7));
        // A small gap (a lost `Define`) is fine.
        t.define((frame::MAX_DEFINE_GAP + 1) as u32, "/b".into())
            .unwrap();
        assert_eq!((t.names.len(), t.bytes), (frame::MAX_DEFINE_GAP + 2, 9));
        assert!(t.get_mut(1).is_none());
        assert_eq!(t.get_mut(0).unwrap().0, "/user/a");
        // Redefining replaces, and counts only the new name.
        t.define(0, "/c".into()).unwrap();
        assert_eq!(t.bytes, 4);

        let mut t = CompactTable::default();
        for id in 0..frame::MAX_COMPACT_NAMES as u32 {
            t.define(id, "/".into()).unwrap();
        }
        let full = frame::MAX_COMPACT_NAMES as u32;
        assert!(t.define(full, "/".into()).is_err());
        assert_eq!(t.names.len(), frame::MAX_COMPACT_NAMES);

        let mut t = CompactTable::default();
        let big = "/".repeat(frame::MAX_COMPACT_NAME_BYTES / 4);
        for id in 0..4 {
            t.define(id, big.clone()).unwrap();
        }
        assert!(t.define(4, "/".into()).is_err());
        assert_eq!((t.names.len(), t.bytes), (4, frame::MAX_COMPACT_NAME_BYTES));
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
        a.ep.send(b.ep.address(), &env(1)).unwrap();
        assert_eq!(seq_of(&next(&mut b.frames).await.1), 1);
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
        a.ep.send(b.ep.address(), &env(1)).unwrap();
        assert_eq!(seq_of(&next(&mut b.frames).await.1), 1);
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
}
