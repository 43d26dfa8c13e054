//! Cluster membership: which nodes form the cluster, which of them are reachable, and who leads.
//!
//! The protocol is built from pure parts that take input and time and return what to do, with
//! no clock read, socket or random number inside, so that each is tested without I/O and a whole
//! cluster can run in simulated time:
//! - `member`: incarnations ([`UniqueAddress`]), statuses ([`MemberStatus`]) and their precedence;
//! - `vclock`: vector clocks ([`VectorClock`]) over incarnations;
//! - `downing`: the split-brain extension point ([`Downing`]), what a strategy sees
//!   ([`DowningView`], [`UnreachableRecord`]) and what it decides ([`Decision`]);
//! - `strategies`: the strategies shipped: [`KeepMajority`] (the default), [`StaticQuorum`],
//!   [`ManualDowning`];
//! - `sbr`: [`SplitBrainResolver`], when to ask the strategy: after `stable_after` without a
//!   [`StabilityChange`], on the leader only, and everything downed if reachability never settles.

mod downing;
mod member;
mod sbr;
mod strategies;
mod vclock;

pub use downing::{Decision, Downing, DowningView, UnreachableRecord};
pub use member::{Member, MemberStatus, UniqueAddress, NOT_UP};
pub use sbr::{SplitBrainResolver, StabilityChange};
pub use strategies::{KeepMajority, ManualDowning, StaticQuorum};
pub use vclock::{Causal, VectorClock};
