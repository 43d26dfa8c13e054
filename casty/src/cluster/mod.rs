//! Cluster membership: which nodes form the cluster, which of them are reachable, and who leads.
//!
//! The protocol is built from pure parts that take input and time and return what to do, with
//! no clock read, socket or random number inside, so that each is tested without I/O and a whole
//! cluster can run in simulated time:
//! - `member`: incarnations ([`UniqueAddress`]), statuses ([`MemberStatus`]) and their precedence;
//! - `vclock`: vector clocks ([`VectorClock`]) over incarnations;
//! - `reachability`: each observer's verdicts on the members it watches ([`Reachability`]);
//! - `gossip`: the view gossip spreads ([`Gossip`]), its merge, convergence, leader and the
//!   leader's moves;
//! - `events`: membership events ([`ClusterEvent`]) as the difference of two views;
//! - `membership`: one node's protocol ([`Membership`]): joining, gossip, leading, stopping;
//! - `phi`: a phi-accrual failure detector ([`PhiAccrual`]) for one monitored node;
//! - `ring`: the ring ([`HeartbeatRing`]) that says which members each node heartbeats;
//! - `heartbeat`: the heartbeat sender's state ([`Heartbeats`]): receivers and their detectors;
//! - `downing`: the split-brain extension point ([`Downing`]), what a strategy sees
//!   ([`DowningView`], [`UnreachableRecord`]) and what it decides ([`Decision`]);
//! - `strategies`: the strategies shipped: [`KeepMajority`] (the default), [`StaticQuorum`],
//!   [`ManualDowning`];
//! - `sbr`: [`SplitBrainResolver`], when to ask the strategy: after `stable_after` without a
//!   [`StabilityChange`], on the leader only, and everything downed if reachability never settles;
//! - `wire`: what nodes send each other ([`ClusterWire`]), read from CBOR.
//!
//! The `driver` actor runs these for a node, and [`ClusteredActorSystem`] starts it.

mod downing;
mod driver;
mod events;
mod gossip;
mod heartbeat;
mod member;
mod membership;
mod phi;
mod reachability;
mod ring;
mod sbr;
mod strategies;
mod system;
mod vclock;
mod wire;

pub use downing::{Decision, Downing, DowningView, UnreachableRecord};
pub use events::{diff, ClusterEvent};
pub use gossip::{Gossip, Received};
pub use heartbeat::Heartbeats;
pub use member::{Member, MemberStatus, UniqueAddress, NOT_UP};
pub use membership::{
    ClusterMsg, Command, Input, JoinRefusal, Membership, MembershipSettings, StopReason,
};
pub use phi::{PhiAccrual, MAX_RECORDED_INTERVAL};
pub use reachability::{Reach, Reachability};
pub use ring::HeartbeatRing;
pub use sbr::{SplitBrainResolver, StabilityChange};
pub use strategies::{KeepMajority, ManualDowning, StaticQuorum};
pub use system::{Cluster, ClusterError, ClusteredActorSystem, ClusteredActorSystemBuilder};
pub use vclock::{Causal, VectorClock};
pub use wire::ClusterWire;
