//! Cluster sharding: entities addressed by id, spread over the nodes of a cluster in shards.
//!
//! An entity id maps to a shard by a fixed hash ([`shard_id`], the same placement as Casty
//! (Python)). Each node runs a *region* of the sharded type: it hosts some shards, runs their
//! entities as its children, and forwards messages for the other shards to the regions that host
//! them. One node's region also runs the *coordinator*, which decides where each shard lives, with
//! an [`AllocationStrategy`] ([`LeastShardAllocation`] by default) answering where a new shard goes
//! and which shards should move to even out the load. [`ShardingSettings`] holds the settings of
//! one entity type, in code or from `casty.toml`.
//!
//! The protocol is built from pure parts, with no I/O, clock or randomness inside:
//! - `shard_id`, `allocation`, `settings`: placement, the allocation strategy, the settings;
//! - `wire`: what regions and the coordinator send each other ([`ShardingWire`]);
//! - `coordinator`: the coordinator ([`Coordinator`]): taking over from an older one,
//!   rebuilding its table from the regions' reports, placing, rebalancing, handoffs;
//! - `region`: a region ([`Region`]): routing, buffering, following one coordinator, the
//!   owner's side of a handoff.
//!
//! The `region_actor` drives both for a node and runs the entities; `api` is the user's side:
//! [`Behaviors::sharded`](crate::Behaviors::sharded), [`EntityRef`], [`Passivate`].
//!
//! The rule the protocol keeps: at no moment do two incarnations of one entity run. A shard gets
//! a new home only after its owner has stopped every entity of it, or after its owner's node was
//! removed from the cluster at least `down_removal_margin` ago.

mod allocation;
mod api;
mod coordinator;
mod direct;
mod entity_id;
mod envelope;
#[cfg(test)]
mod protocol_tests;
mod region;
mod region_actor;
#[cfg(test)]
mod review_tests;
mod route_cache;
mod settings;
mod shard_id;
mod wire;

pub use allocation::{AllocationStrategy, Allocations, LeastShardAllocation};
pub use api::{EntityRef, Passivate, RegionState, ShardedEntity};
pub use coordinator::{Coordinator, CoordinatorSettings, Phase, Send};
pub use envelope::{EntityId, ShardEnvelope};
pub use region::{Delivery, DropReason, Origin, Region, RegionCommand, RegionSettings};
pub use settings::ShardingSettings;
pub use shard_id::{shard_id, ShardId};
pub use wire::{Epoch, ShardingWire};
