//! What an endpoint counts: atomics bumped by its tasks, read as one [`RemoteCounters`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

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

/// The endpoint's own counters, bumped from any task. The gauges of [`RemoteCounters`] are
/// filled in by their owners.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) frames_out: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) frames_in: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) handshakes_shed: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> RemoteCounters {
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

    pub(super) fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}
