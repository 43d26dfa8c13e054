//! What the regions and the coordinator of one sharded type send each other.
//!
//! Every message names the incarnation that sent it, so that a receiver can tell a message from
//! the coordinator it follows from one sent by an older coordinator that has not heard it was
//! replaced, and can ignore the latter. The messages travel between the region actors of the
//! type (the coordinator runs inside the region of its node), in CBOR, over remoting.

use serde::{Deserialize, Serialize};

use super::ShardId;
use crate::cluster::UniqueAddress;

/// Which allocation of a shard a message is about. Each time a coordinator gives a shard a
/// home it takes a new, larger epoch (a new coordinator starts above every epoch reported to
/// it), so that a late answer about an earlier allocation is never taken for one about the
/// current one.
pub type Epoch = u64;

/// A control message of the sharding protocol, between the regions and the coordinator of one
/// sharded type.
///
/// # Examples
///
/// ```
/// use casty::cluster::UniqueAddress;
/// use casty::remote::NodeAddress;
/// use casty::sharding::ShardingWire;
/// let region = UniqueAddress::new(NodeAddress::new("bank", "127.0.0.1", 2551), 7);
/// let ask = ShardingWire::GetShardHome { region, shard: 70 };
/// let mut bytes = Vec::new();
/// ciborium::into_writer(&ask, &mut bytes).unwrap();
/// let back: ShardingWire = ciborium::from_reader(&bytes[..]).unwrap();
/// assert_eq!(back, ask);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardingWire {
    /// Region → coordinator: "I am here, I may host shards (`hosting`), and I host these". Sent
    /// to each new coordinator and repeated until acknowledged; a new coordinator rebuilds its
    /// table from these reports.
    Register {
        /// The region's node.
        region: UniqueAddress,
        /// Whether it may host shards (it has the role), or is a proxy only.
        hosting: bool,
        /// The shards it hosts now, each with the allocation it hosts it under.
        shards: Vec<(ShardId, Epoch)>,
        /// Those of them whose entities are stopping (a handoff under an earlier
        /// coordinator): the new one gives them no home until they have stopped.
        #[serde(default)]
        stopping: Vec<ShardId>,
    },
    /// Coordinator → region: registration accepted.
    RegisterAck {
        /// The coordinator's node.
        coordinator: UniqueAddress,
    },
    /// Region → coordinator: where does `shard` live?
    GetShardHome {
        /// The asking region's node.
        region: UniqueAddress,
        /// The shard.
        shard: ShardId,
    },
    /// Coordinator → region: `shard` lives at `home` (which may be the receiver itself: then it
    /// hosts the shard from now on).
    ShardHome {
        /// The coordinator's node.
        coordinator: UniqueAddress,
        /// The shard.
        shard: ShardId,
        /// The region that hosts it.
        home: UniqueAddress,
        /// Which allocation of the shard this is.
        epoch: Epoch,
    },
    /// Coordinator → every registered region: `shard` is leaving `owner`. Each region forgets
    /// the shard's home, buffers its messages and acknowledges to the owner, on the same path as
    /// the messages it forwarded there before, so that the owner has every one of them before
    /// it stops the shard.
    BeginHandOff {
        /// The coordinator's node.
        coordinator: UniqueAddress,
        /// The shard.
        shard: ShardId,
        /// The region that hosts it now.
        owner: UniqueAddress,
        /// The allocation that ends.
        epoch: Epoch,
        /// The regions whose acknowledgements the owner waits for.
        regions: Vec<UniqueAddress>,
    },
    /// Region → owner: this region forwards nothing more for `shard` until it learns its new home.
    HandOffAck {
        /// The shard.
        shard: ShardId,
        /// The acknowledging region's node.
        from: UniqueAddress,
        /// The allocation whose end it acknowledges (that of the [`ShardingWire::BeginHandOff`]),
        /// so that an acknowledgement of an earlier handoff never counts for a later one.
        epoch: Epoch,
        /// The coordinator that asked for the handoff: an owner counts only acknowledgements of
        /// handoffs asked by the coordinator it follows (one cancelled by a handover is not).
        coordinator: UniqueAddress,
    },
    /// Owner → coordinator: every entity of `shard` has stopped here.
    ShardStopped {
        /// The owner's node.
        region: UniqueAddress,
        /// The shard.
        shard: ShardId,
        /// The allocation that ended.
        epoch: Epoch,
    },
    /// Region → coordinator: this region is leaving; move its shards away and give it no more.
    GracefulShutdown {
        /// The leaving region's node.
        region: UniqueAddress,
    },
    /// New coordinator → an older one: stop coordinating, for good.
    TakeOver {
        /// The new coordinator's node.
        coordinator: UniqueAddress,
    },
    /// Older coordinator → new one: done, it coordinates nothing any more.
    HandedOver {
        /// The older coordinator's node.
        from: UniqueAddress,
    },
    /// Older coordinator → its regions: it has stopped for good; follow `successor`. A region
    /// moves to the next coordinator on this word (or once the old one is down or gone), so it
    /// has every placement the old one sent it before it reports to the new one.
    CoordinatorRetired {
        /// The retired coordinator's node.
        from: UniqueAddress,
        /// The node that coordinates next.
        successor: UniqueAddress,
    },
}

impl ShardingWire {
    /// Whether the coordinator, rather than a region, handles this message.
    pub fn is_for_coordinator(&self) -> bool {
        matches!(
            self,
            ShardingWire::Register { .. }
                | ShardingWire::GetShardHome { .. }
                | ShardingWire::ShardStopped { .. }
                | ShardingWire::GracefulShutdown { .. }
                | ShardingWire::TakeOver { .. }
                | ShardingWire::HandedOver { .. }
        )
    }
}
