//! What cluster nodes send each other, as one message type read from the wire.
//!
//! Membership messages and heartbeats travel to one internal actor on each node, over the same
//! associations as every other remote message, encoded in CBOR. Reading one never panics: bytes
//! that are not a [`ClusterWire`] are refused with an error, and the node goes on.

use serde::{Deserialize, Serialize};

use super::member::UniqueAddress;
use super::membership::ClusterMsg;
use crate::actor::message::{cbor_decoder, Message, WireDecoder};

/// A message between the cluster actors of two nodes.
///
/// # Examples
///
/// ```
/// use casty::cluster::{ClusterWire, UniqueAddress};
/// use casty::remote::NodeAddress;
/// use casty::Message;
/// let from = UniqueAddress::new(NodeAddress::new("c", "127.0.0.1", 2551), 7);
/// let hb = ClusterWire::Heartbeat { from, seq: 1 };
/// let mut bytes = Vec::new();
/// ciborium::into_writer(&hb, &mut bytes).unwrap();
/// let decode = ClusterWire::wire_decoder().unwrap();
/// assert_eq!(decode(&bytes).unwrap(), hb);
/// assert!(decode(b"not cbor").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClusterWire {
    /// The membership protocol.
    Membership(ClusterMsg),
    /// "Are you there?", from a node to one it watches.
    Heartbeat {
        /// The watcher.
        from: UniqueAddress,
        /// Its sequence number.
        seq: u64,
    },
    /// "I am", back to the watcher.
    HeartbeatRsp {
        /// The node watched.
        from: UniqueAddress,
        /// The sequence number answered.
        seq: u64,
    },
}

impl Message for ClusterWire {
    fn wire_decoder() -> Option<WireDecoder<Self>> {
        Some(cbor_decoder::<Self>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Gossip, Member, VectorClock};
    use crate::remote::NodeAddress;
    use proptest::prelude::*;

    fn node(n: u16) -> UniqueAddress {
        UniqueAddress::new(
            NodeAddress::new("shop", "10.0.0.1", 2550 + n),
            0x1234_5678_9abc + u64::from(n),
        )
    }

    fn encode(w: &ClusterWire) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::into_writer(w, &mut bytes).unwrap();
        bytes
    }

    fn view(n: u16) -> Gossip {
        let mut g = Gossip::default();
        for i in 0..n {
            g.add_joining(Member::joining(node(i), ["web"]), &node(0));
        }
        for i in 0..n {
            g.mark_seen(&node(i));
        }
        g.leader_actions(&node(0), 0, &Default::default());
        g
    }

    #[test]
    fn every_kind_of_message_comes_back_as_it_was_sent() {
        let g = view(3);
        let messages = [
            ClusterWire::Heartbeat {
                from: node(1),
                seq: 9,
            },
            ClusterWire::HeartbeatRsp {
                from: node(2),
                seq: 9,
            },
            ClusterWire::Membership(ClusterMsg::Envelope {
                from: node(0),
                to: node(1),
                gossip: Box::new(g.clone()),
            }),
            ClusterWire::Membership(ClusterMsg::Status {
                from: node(0),
                version: g.version().clone(),
                seen_digest: 42,
            }),
        ];
        let decode = ClusterWire::wire_decoder().unwrap();
        for m in messages {
            let back = decode(&encode(&m)).unwrap();
            if let (
                ClusterWire::Membership(ClusterMsg::Envelope { gossip: a, .. }),
                ClusterWire::Membership(ClusterMsg::Envelope { gossip: b, .. }),
            ) = (&m, &back)
            {
                assert!(a.same_state(b) && a.seen() == b.seen());
            } else {
                assert_eq!(back, m);
            }
        }
    }

    #[test]
    fn a_version_costs_a_few_bytes_per_member() {
        // What a converged cluster sends each gossip round: its sender, the clock (one entry per
        // member that changed something: here the leader only) and a digest. Its size does not
        // grow with the number of members.
        let size = |n: u16| {
            let g = view(n);
            encode(&ClusterWire::Membership(ClusterMsg::Status {
                from: node(0),
                version: g.version().clone(),
                seen_digest: u64::MAX,
            }))
            .len()
        };
        // (The leader's count itself takes one byte more past 23.)
        assert!(
            size(25) - size(10) <= 1,
            "{} and {} bytes",
            size(10),
            size(25)
        );
        assert!(size(25) < 160, "{} bytes", size(25));
        let mut clock = VectorClock::new();
        for i in 0..25 {
            clock.increment(0x1234_5678_9abc + i);
        }
        let full = ClusterWire::Membership(ClusterMsg::Status {
            from: node(0),
            version: clock,
            seen_digest: u64::MAX,
        });
        // Even with every member in the clock: about 18 bytes each.
        assert!(encode(&full).len() < 25 * 20 + 100);
    }

    proptest! {
        #[test]
        fn reading_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let decode = ClusterWire::wire_decoder().unwrap();
            let _ = decode(&bytes);
        }
    }
}
