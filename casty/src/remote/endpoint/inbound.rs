//! Where an endpoint hands up what it receives and what happens to its associations.

use crate::remote::frame::{Envelope, Frame, WirePath};
use crate::remote::handshake::Refusal;
use crate::remote::NodeAddress;

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
            Frame::Envelope(Envelope {
                recipient: WirePath {
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
    /// A connection the peer opened to us completed its handshake.
    fn accepted(&self, _peer: &PeerInfo) {}
    /// An outbound association's handshake was refused (by either side). Sends to that peer are
    /// refused until a handshake succeeds again.
    fn node_refused(&self, _peer: &NodeAddress, _refusal: &Refusal) {}
    /// The peer said it is shutting down.
    fn peer_left(&self, _peer: &PeerInfo) {}
    /// Messages to or from `peer` were lost: `count` of them, the first (when it could be read)
    /// for `first` (path and uid), and `why`. Reported once per batch, not per message.
    fn dropped(&self, _peer: &NodeAddress, _first: Option<(&str, u64)>, _count: u64, _why: &str) {}
}
