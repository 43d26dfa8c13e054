//! Cluster membership: which nodes form the cluster, which of them are reachable, and who leads.
//!
//! The protocol is built from pure parts that take input and time and return what to do, with
//! no clock read, socket or random number inside, so that each is tested without I/O and a whole
//! cluster can run in simulated time:
//! - `member`: incarnations ([`UniqueAddress`]), statuses ([`MemberStatus`]) and their precedence;
//! - `vclock`: vector clocks ([`VectorClock`]) over incarnations;
//! - `phi`: a phi-accrual failure detector ([`PhiAccrual`]) for one monitored node;
//! - `ring`: the ring ([`HeartbeatRing`]) that says which members each node heartbeats;
//! - `heartbeat`: the heartbeat sender's state ([`Heartbeats`]): receivers and their detectors.

mod heartbeat;
mod member;
mod phi;
mod ring;
mod vclock;

pub use heartbeat::Heartbeats;
pub use member::{Member, MemberStatus, UniqueAddress, NOT_UP};
pub use phi::{PhiAccrual, MAX_RECORDED_INTERVAL};
pub use ring::HeartbeatRing;
pub use vclock::{Causal, VectorClock};
