//! The endpoint: one node's listener and its associations with peers (R1–R3, R5).
//!
//! **Outbound.** Each peer has one association (`association.rs`): a byte buffer of encoded
//! frames, a count bounding it, and a writer task. A send encodes the frame straight into the
//! buffer (no per-message allocation) and wakes the writer (`writer.rs`), which swaps the whole
//! buffer out and writes it with one `write_all`: writes are batched, and order per peer is the
//! buffer's order (R5). When the connection is idle, the sender instead writes the buffer itself
//! without waiting (one non-blocking write), which saves the hop to the writer task on a
//! request/reply round trip; whatever the socket does not take at once, and every frame after it
//! until the connection is idle again, is the writer's, so bursts are still batched. The
//! association's task (`reconnect.rs`) connects, performs the handshake (`connect.rs`), and
//! reconnects with exponential backoff; meanwhile frames queue up to the bound, and overflow is
//! refused to the caller, who turns it into dead letters. A slow or dead peer fills only its own
//! buffer. When to report an outage, count a reconnection or wait is decided by a pure state
//! machine (`Reconnect`), and the numbers that name recipients of compact envelopes by another
//! (`Naming`, `naming.rs`), which a new connection replays as `Define` frames before anything
//! else.
//!
//! **Inbound.** Each accepted connection gets a task (`reader.rs`) that runs the transport's
//! upgrade (TLS) and the responder handshake, under one deadline, then decodes frames and hands
//! them up through [`Inbound`] (`inbound.rs`). The listener only accepts, so a silent peer delays
//! nobody else. Until its handshake is done a connection may send frames of
//! [`frame::HANDSHAKE_MAX_FRAME`] bytes at most, and only `max_handshakes` connections may be in
//! handshake at once: more are closed at once, unread. An oversize or malformed frame, or a
//! `Define` that would grow the connection's name table (`compact_table.rs`) past its bounds,
//! closes that connection only (R3); the node goes on serving everyone else. Frames only flow on
//! the connection their sender opened, so each direction of a pair has its own ordered stream.
//!
//! **Quarantine** (`quarantine.rs`). A quarantined peer incarnation loses its live connections in
//! both directions and is refused at every later handshake (R1).
//!
//! Every frame passes the transport's `outbound` / `inbound` hooks, which is where tests inject
//! partitions, delays and loss. Frames are only ever parsed by `frame` (the decoder and its
//! helpers for runs of encoded frames); this module moves them as bytes.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use crate::remote::frame::{self, Frame};
use crate::remote::handshake::LocalNode;
use crate::remote::transport::Transport;
use crate::remote::NodeAddress;

mod association;
mod compact_table;
mod connect;
mod counters;
mod inbound;
mod naming;
mod quarantine;
mod reader;
mod reconnect;
mod settings;
#[cfg(test)]
mod tests;
mod writer;

use association::Association;
pub(crate) use association::Route;
pub use association::SendError;
use counters::Counters;
pub use counters::RemoteCounters;
pub(crate) use inbound::{DeliveryCache, Inbound, PeerInfo};
use quarantine::Quarantine;
pub(crate) use settings::{EndpointSettings, DEFAULT_MAX_HANDSHAKES};

/// What the endpoint's tasks share.
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
    /// Peer incarnations that may never connect again, and the live connections by incarnation.
    quarantine: Quarantine,
    /// The latest incarnation seen in a handshake with each peer, in either direction.
    /// Keyed by node key (`system@host:port`), so a lookup by key needs no parsing.
    known: Mutex<HashMap<String, u64>>,
    /// Held by every task of the endpoint; [`Endpoint::shutdown`] waits until all are dropped.
    alive: Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
    all_done: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>,
    /// Inbound connections in handshake now (see `reader::HandshakeSlot`).
    handshaking: AtomicUsize,
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

    /// `peer` has just connected to us: if our own connection to it is down and waiting out its
    /// backoff, try again now rather than after up to `backoff_max`. A restarted node would
    /// otherwise hear nothing back for seconds, though it is plainly up.
    fn peer_connected_to_us(&self, peer: &NodeAddress) {
        if let Some(a) = self
            .assocs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
        {
            if !a.connected.load(Ordering::Acquire) {
                a.retry_now.notify_one();
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
        let listener = transport.bind(&bind_addr.socket_addr()).await?;
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
            quarantine: Quarantine::default(),
            known: Mutex::new(HashMap::new()),
            alive: Mutex::new(Some(alive)),
            all_done: tokio::sync::Mutex::new(all_done),
            handshaking: AtomicUsize::new(0),
        });
        let stop = shared.shutdown.subscribe();
        let span = tracing::info_span!("remote-listener", node = %shared.address);
        // The listener holds a task token too: shutdown returns once the port is free again.
        let token = shared.task_token();
        let accepting = reader::accept_loop(shared.clone(), listener, stop);
        tokio::spawn(
            async move {
                let _token = token;
                accepting.await
            }
            .instrument(span),
        );
        Ok(Endpoint { shared })
    }

    /// This node's address, with the port actually bound.
    pub(crate) fn address(&self) -> &NodeAddress {
        &self.shared.address
    }

    /// This node's incarnation uid.
    #[cfg_attr(not(any(test, feature = "cluster")), allow(dead_code))]
    pub(crate) fn uid(&self) -> u64 {
        self.shared.local.uid
    }

    pub(crate) fn counters(&self) -> RemoteCounters {
        let mut c = self.shared.counters.snapshot();
        c.quarantined = self.shared.quarantine.len() as u64;
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
        let a = Arc::new(Association::new(
            peer,
            shared.settings.max_frame,
            self.incarnation_of(peer),
        ));
        map.insert(peer.clone(), a.clone());
        let span = tracing::info_span!("remote-association", node = %shared.address, peer = %peer);
        let token = shared.task_token();
        let (s, assoc) = (shared.clone(), a.clone());
        tokio::spawn(
            async move {
                let _token = token;
                reconnect::run_association(s, assoc).await
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
    /// [`crate::remote::Refusal::Quarantined`]). A restart of that peer is a new incarnation and
    /// is unaffected. Returns whether `uid` was newly quarantined.
    pub(crate) fn quarantine(&self, uid: u64) -> bool {
        self.shared.quarantine.add(uid)
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
        // What is queued (last replies, `Terminated` notices) goes out first, briefly: a reply
        // queued on an association still connecting is otherwise lost, and the goodbye on the
        // peer's own connection would fail the ask it answers.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while tokio::time::Instant::now() < deadline
            && assocs
                .iter()
                .any(|a| !a.refusing.load(Ordering::Acquire) && a.queue().frames > 0)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for a in &assocs {
            let mut q = a.queue();
            if frame::encode(&Frame::Bye, usize::MAX, &mut q.buf).is_ok() {
                q.frames += 1;
            }
        }
        self.shared.closed.store(true, Ordering::Release);
        self.shared.shutdown.send_replace(true);
        for a in &assocs {
            a.wake.notify_one();
            // Senders waiting for room are refused now instead.
            a.room.notify_waiters();
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
