//! Cluster sharding: entities addressed by id, spread over the nodes of a cluster in shards.
//!
//! An entity id maps to a shard by a fixed hash ([`shard_id`], the same placement as Casty
//! (Python)); a coordinator decides which region (one per hosting node) holds each shard, with an
//! [`AllocationStrategy`] ([`LeastShardAllocation`] by default) answering where a new shard goes
//! and which shards should move to even out the load; [`ShardingSettings`] holds the settings of
//! one entity type, in code or from `casty.toml`. These parts are pure: no I/O, no clock, no
//! randomness, so every node computes the same answers from the same inputs.

mod allocation;
mod settings;
mod shard_id;

pub use allocation::{AllocationStrategy, Allocations, LeastShardAllocation};
pub use settings::ShardingSettings;
pub use shard_id::{shard_id, ShardId};
