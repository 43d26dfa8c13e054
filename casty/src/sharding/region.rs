//! A shard region of one sharded type on one node, as a pure state machine: messages, the
//! coordinator's answers, membership views and time in; deliveries and messages to send out.
//!
//! The region knows, for each shard, one of three things:
//! - it **hosts** the shard: messages go to the shard's entities on this node;
//! - the shard lives at another region: messages are **forwarded** there, with no round trip
//!   to the coordinator;
//! - the home is **unknown**: messages wait in a bounded buffer (overflow is dropped, with a
//!   reason), and the region asks the coordinator, once per shard and again every
//!   `retry_interval` while it waits.
//!
//! A hosted shard moves in a handoff. The coordinator tells every region; each forgets the
//! shard's home (its new messages wait), and acknowledges to the owner *on the path it forwarded
//! messages on*, so that when the owner holds every acknowledgement it also holds every message
//! forwarded to it before. While it waits, the owner delivers what other regions forward and
//! buffers what its own node sends; then it stops the shard's entities, letting each finish its
//! mailbox, reports the shard stopped, and sends what it buffered to the shard's next home. So no
//! message from one sender to one entity is lost or overtaken across a move, and no two
//! incarnations of an entity ever run at once.
//!
//! The region follows one coordinator at a time: the oldest hosting member in its view. When
//! that changes it forgets every home, cancels the handoffs it was waiting on, and registers
//! with the new one, reporting the shards it hosts. It ignores messages from any other
//! coordinator, so an old coordinator that has not yet heard it was replaced cannot place a
//! shard here behind the new one's back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::coordinator::Coordinator;
use super::wire::{Epoch, ShardingWire};
use super::ShardId;
use crate::cluster::{Member, MemberStatus, UniqueAddress};

/// Where a message for a shard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Told on this node.
    Local,
    /// Forwarded by another region.
    Forwarded,
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The shard's buffer was full.
    BufferFull(ShardId),
    /// This region stopped: its node left the cluster or was downed.
    RegionStopped,
}

/// What to do with one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery<T> {
    /// Deliver to the entity on this node.
    Local(T),
    /// Forward to the region on that node.
    Remote(UniqueAddress, T),
    /// Drop it, as a dead letter.
    Dead(T, DropReason),
}

/// What the region asks of its driver.
// Commands are few (one per protocol step, none per message): their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionCommand {
    /// Send a message to the region (or coordinator) on a node, which may be this one.
    Send {
        /// The node.
        to: UniqueAddress,
        /// The message.
        msg: ShardingWire,
    },
    /// Stop the shard's entities here, each once it has handled its mailbox, and report
    /// [`Region::shard_stopped`] when all have.
    StopShard(ShardId),
    /// This node is out of the cluster: stop every entity now.
    StopAll,
}

/// The region's settings.
#[derive(Debug, Clone)]
pub struct RegionSettings {
    /// The number of shards of the type.
    pub num_shards: u32,
    /// Only members with this role host shards.
    pub role: Option<String>,
    /// Messages kept per shard while its home is unknown or it is moving.
    pub buffer_size: usize,
    /// How often an unanswered request to the coordinator is repeated.
    pub retry_interval: Duration,
}

#[derive(Debug, PartialEq, Eq)]
enum HostState {
    Active,
    HandOff {
        waiting: BTreeSet<UniqueAddress>,
        acked: BTreeSet<UniqueAddress>,
    },
    Stopping {
        restart: bool,
    },
}

#[derive(Debug)]
enum Slot<T> {
    Hosted {
        epoch: Epoch,
        state: HostState,
        buffer: VecDeque<T>,
    },
    Remote(UniqueAddress),
    Pending {
        buffer: VecDeque<T>,
        asked: Option<Instant>,
    },
}

impl<T> Slot<T> {
    fn pending() -> Self {
        Slot::Pending {
            buffer: VecDeque::new(),
            asked: None,
        }
    }
}

/// A shard region. See the module documentation.
///
/// # Examples
///
/// A region whose coordinator places shard 3 on another node forwards its messages there.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use casty::cluster::{Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// use casty::sharding::{Delivery, Origin, Region, RegionSettings, ShardingWire};
/// let node = |p| UniqueAddress::new(NodeAddress::new("bank", "127.0.0.1", p), 1);
/// let up = |p, n| Member::joining(node(p), Vec::<String>::new())
///     .with_status(MemberStatus::Up)
///     .with_up_number(n);
/// let settings = RegionSettings {
///     num_shards: 10,
///     role: None,
///     buffer_size: 100,
///     retry_interval: Duration::from_secs(2),
/// };
/// let now = Instant::now();
/// let mut region: Region<&str> = Region::new(node(2552), settings);
/// region.members_changed(&[up(2551, 1), up(2552, 2)], now);
/// // The message waits: the home of shard 3 is not known yet.
/// assert_eq!(region.route(3, Origin::Local, "hello", now), None);
/// let coordinator = node(2551);
/// region.receive(ShardingWire::RegisterAck { coordinator: coordinator.clone() }, now);
/// region.receive(
///     ShardingWire::ShardHome { coordinator, shard: 3, home: node(2551), epoch: 1 },
///     now,
/// );
/// let flushed: Vec<_> = region.take_flushed().collect();
/// assert_eq!(flushed, vec![Delivery::Remote(node(2551), "hello")]);
/// assert_eq!(
///     region.route(3, Origin::Local, "again", now),
///     Some(Delivery::Remote(node(2551), "again"))
/// );
/// ```
#[derive(Debug)]
pub struct Region<T> {
    me: UniqueAddress,
    settings: RegionSettings,
    hosting: bool,
    slots: Vec<Slot<T>>,
    coordinator: Option<UniqueAddress>,
    registered: bool,
    last_register: Option<Instant>,
    /// Acknowledgements that came before the coordinator's word, by shard and ending allocation.
    early_acks: BTreeMap<(ShardId, Epoch), BTreeSet<UniqueAddress>>,
    was_member: bool,
    stopped: bool,
    leaving: bool,
    last_shutdown_notice: Option<Instant>,
    commands: Vec<RegionCommand>,
    flushed: VecDeque<Delivery<T>>,
}

impl<T> Region<T> {
    /// A region on the node `me`, knowing nothing yet.
    pub fn new(me: UniqueAddress, settings: RegionSettings) -> Self {
        let slots = (0..settings.num_shards.max(1))
            .map(|_| Slot::pending())
            .collect();
        Region {
            me,
            hosting: false,
            settings,
            slots,
            coordinator: None,
            registered: false,
            last_register: None,
            early_acks: BTreeMap::new(),
            was_member: false,
            stopped: false,
            leaving: false,
            last_shutdown_notice: None,
            commands: Vec::new(),
            flushed: VecDeque::new(),
        }
    }

    /// The coordinator this region follows.
    pub fn coordinator(&self) -> Option<&UniqueAddress> {
        self.coordinator.as_ref()
    }

    /// Whether the coordinator it follows acknowledged it.
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Whether the region stopped for good (its node is out of the cluster).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The shards hosted here, in any state.
    pub fn hosted(&self) -> Vec<ShardId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Hosted { .. }))
            .map(|(i, _)| i as ShardId)
            .collect()
    }

    /// Whether the shard is hosted here and accepts messages from this node now.
    pub fn is_active(&self, shard: ShardId) -> bool {
        matches!(
            self.slots.get(shard as usize),
            Some(Slot::Hosted {
                state: HostState::Active,
                ..
            })
        )
    }

    /// The region of another node that `shard` is routed to now, if it is.
    pub fn remote_home(&self, shard: ShardId) -> Option<&UniqueAddress> {
        match self.slots.get(shard as usize) {
            Some(Slot::Remote(home)) => Some(home),
            _ => None,
        }
    }

    /// The number of shards of the type.
    pub fn num_shards(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The most messages kept per shard.
    pub fn buffer_size(&self) -> usize {
        self.settings.buffer_size
    }

    /// Whether a message from `origin` for `shard` goes straight to its entity here now.
    #[inline]
    pub fn accepts(&self, shard: ShardId, origin: Origin) -> bool {
        match self.slots.get(shard as usize) {
            Some(Slot::Hosted { state, .. }) => match state {
                HostState::Active => true,
                HostState::HandOff { .. } => origin == Origin::Forwarded,
                HostState::Stopping { .. } => false,
            },
            _ => false,
        }
    }

    /// Puts messages back, first in line, into the buffer of `shard`: those that waited for an
    /// entity that was stopping when its shard began to move.
    pub fn unstash(&mut self, shard: ShardId, msgs: impl DoubleEndedIterator<Item = T>) {
        match self.slots.get_mut(shard as usize) {
            Some(Slot::Hosted { buffer, .. }) | Some(Slot::Pending { buffer, .. }) => {
                for m in msgs.rev() {
                    buffer.push_front(m);
                }
            }
            Some(Slot::Remote(home)) => {
                let home = home.clone();
                self.flushed
                    .extend(msgs.map(|m| Delivery::Remote(home.clone(), m)));
            }
            None => {}
        }
    }

    /// Whether this region was told to leave (or its node is leaving).
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Whether this region is leaving, hosts nothing any more and holds no message back.
    pub fn is_drained(&self) -> bool {
        (self.leaving || self.stopped)
            && self.slots.iter().all(|s| match s {
                Slot::Hosted { .. } => false,
                Slot::Remote(_) => true,
                Slot::Pending { buffer, .. } => buffer.is_empty(),
            })
    }

    /// The commands produced since the last call.
    pub fn take_commands(&mut self) -> std::vec::Drain<'_, RegionCommand> {
        self.commands.drain(..)
    }

    /// The buffered messages released since the last call, in the order to deliver them.
    pub fn take_flushed(&mut self) -> std::collections::vec_deque::Drain<'_, Delivery<T>> {
        self.flushed.drain(..)
    }

    /// Routes one message for `shard`: `None` when it was buffered.
    pub fn route(
        &mut self,
        shard: ShardId,
        origin: Origin,
        msg: T,
        now: Instant,
    ) -> Option<Delivery<T>> {
        if self.stopped {
            return Some(Delivery::Dead(msg, DropReason::RegionStopped));
        }
        let cap = self.settings.buffer_size;
        let Some(slot) = self.slots.get_mut(shard as usize) else {
            return Some(Delivery::Dead(msg, DropReason::BufferFull(shard)));
        };
        match slot {
            Slot::Hosted {
                state: HostState::Active,
                ..
            } => Some(Delivery::Local(msg)),
            Slot::Hosted {
                state: HostState::HandOff { .. },
                ..
            } if origin == Origin::Forwarded => Some(Delivery::Local(msg)),
            Slot::Hosted { buffer, .. } => Self::buffer(buffer, cap, shard, msg),
            Slot::Remote(home) => Some(Delivery::Remote(home.clone(), msg)),
            Slot::Pending { buffer, .. } => {
                let out = Self::buffer(buffer, cap, shard, msg);
                self.ask(shard, now);
                out
            }
        }
    }

    fn buffer(buffer: &mut VecDeque<T>, cap: usize, shard: ShardId, msg: T) -> Option<Delivery<T>> {
        if buffer.len() >= cap {
            return Some(Delivery::Dead(msg, DropReason::BufferFull(shard)));
        }
        buffer.push_back(msg);
        None
    }

    /// Asks the coordinator for the home of a shard whose messages wait, unless it was asked
    /// less than `retry_interval` ago.
    fn ask(&mut self, shard: ShardId, now: Instant) {
        let Some(to) = self.coordinator.clone() else {
            return;
        };
        if !self.registered {
            return;
        }
        let retry = self.settings.retry_interval;
        if let Some(Slot::Pending { buffer, asked }) = self.slots.get_mut(shard as usize) {
            if buffer.is_empty() || asked.is_some_and(|t| now.saturating_duration_since(t) < retry)
            {
                return;
            }
            *asked = Some(now);
            self.commands.push(RegionCommand::Send {
                to,
                msg: ShardingWire::GetShardHome {
                    region: self.me.clone(),
                    shard,
                },
            });
        }
    }

    /// A new view of the members.
    pub fn members_changed(&mut self, members: &[Member], now: Instant) {
        if self.stopped {
            return;
        }
        match members.iter().find(|m| m.node == self.me) {
            Some(m) => {
                self.was_member = true;
                self.hosting = self.settings.role.as_deref().is_none_or(|r| m.has_role(r));
                match m.status {
                    MemberStatus::Down | MemberStatus::Removed => return self.stop_all(),
                    MemberStatus::Leaving | MemberStatus::Exiting if !self.leaving => {
                        self.leave(now);
                    }
                    _ => {}
                }
            }
            None if self.was_member => return self.stop_all(),
            None => {}
        }
        let coordinator = Coordinator::coordinator_of(members, self.settings.role.as_deref());
        if coordinator != self.coordinator {
            // A coordinator handing over is followed until it says it has stopped, or is down
            // or gone: until then it may still place shards, and this region must hear them
            // before it reports to the next one.
            let handing_over = self.registered
                && self.coordinator.as_ref().is_some_and(|old| {
                    members.iter().any(|m| {
                        m.node == *old
                            && matches!(m.status, MemberStatus::Leaving | MemberStatus::Exiting)
                    })
                });
            if !handing_over {
                self.follow(coordinator, now);
            }
        }
    }

    /// Follows a new coordinator: forgets every home, cancels the handoffs it was part of, and
    /// registers with it.
    fn follow(&mut self, coordinator: Option<UniqueAddress>, now: Instant) {
        self.coordinator = coordinator;
        self.registered = false;
        self.early_acks.clear();
        for slot in &mut self.slots {
            match slot {
                Slot::Remote(_) => *slot = Slot::pending(),
                Slot::Pending { asked, .. } => *asked = None,
                Slot::Hosted { state, buffer, .. } => {
                    if matches!(state, HostState::HandOff { .. }) {
                        *state = HostState::Active;
                        self.flushed.extend(buffer.drain(..).map(Delivery::Local));
                    }
                }
            }
        }
        self.register(now);
    }

    fn register(&mut self, now: Instant) {
        let Some(to) = self.coordinator.clone() else {
            return;
        };
        self.last_register = Some(now);
        let shards = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Hosted { epoch, .. } => Some((i as ShardId, *epoch)),
                _ => None,
            })
            .collect();
        let stopping = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Slot::Hosted {
                    state: HostState::Stopping { .. },
                    ..
                } => Some(i as ShardId),
                _ => None,
            })
            .collect();
        self.commands.push(RegionCommand::Send {
            to,
            msg: ShardingWire::Register {
                region: self.me.clone(),
                hosting: self.hosting,
                shards,
                stopping,
            },
        });
    }

    /// This region leaves: the coordinator moves its shards away and gives it no more.
    pub fn leave(&mut self, now: Instant) {
        self.leaving = true;
        self.notify_leaving(now);
    }

    fn notify_leaving(&mut self, now: Instant) {
        if let Some(to) = self.coordinator.clone() {
            self.last_shutdown_notice = Some(now);
            self.commands.push(RegionCommand::Send {
                to,
                msg: ShardingWire::GracefulShutdown {
                    region: self.me.clone(),
                },
            });
        }
    }

    /// Stops this region for good, as when its node is removed: what it holds is released as
    /// [`Delivery::Dead`] (see [`Region::take_flushed`]), and it routes nothing again. For a
    /// region whose actor stops before it has seen its node removed.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stop_all();
        }
    }

    fn stop_all(&mut self) {
        self.stopped = true;
        for slot in &mut self.slots {
            let buffer = match std::mem::replace(slot, Slot::pending()) {
                Slot::Hosted { buffer, .. } | Slot::Pending { buffer, .. } => buffer,
                Slot::Remote(_) => VecDeque::new(),
            };
            self.flushed.extend(
                buffer
                    .into_iter()
                    .map(|m| Delivery::Dead(m, DropReason::RegionStopped)),
            );
        }
        self.commands.push(RegionCommand::StopAll);
    }

    /// A message from the coordinator or another region.
    pub fn receive(&mut self, msg: ShardingWire, now: Instant) {
        if self.stopped {
            return;
        }
        match msg {
            ShardingWire::RegisterAck { coordinator }
                if Some(&coordinator) == self.coordinator.as_ref() && !self.registered =>
            {
                self.registered = true;
                self.ask_all(now);
            }
            ShardingWire::ShardHome {
                coordinator,
                shard,
                home,
                epoch,
            } => {
                if Some(&coordinator) != self.coordinator.as_ref() {
                    return;
                }
                if !self.registered {
                    self.registered = true;
                    self.ask_all(now);
                }
                self.shard_home(shard, home, epoch);
            }
            ShardingWire::BeginHandOff {
                coordinator,
                shard,
                owner,
                epoch,
                regions,
            } => {
                if Some(&coordinator) != self.coordinator.as_ref() {
                    return;
                }
                self.begin_hand_off(coordinator, shard, owner, epoch, regions);
            }
            // A handoff of a coordinator this region no longer follows was cancelled: its
            // acknowledgements are ignored.
            ShardingWire::HandOffAck {
                shard,
                from,
                epoch,
                coordinator,
            } if Some(&coordinator) == self.coordinator.as_ref() => {
                self.hand_off_ack(shard, from, epoch)
            }
            ShardingWire::CoordinatorRetired { from, successor }
                if Some(&from) == self.coordinator.as_ref() =>
            {
                self.follow(Some(successor), now);
            }
            _ => {}
        }
    }

    fn ask_all(&mut self, now: Instant) {
        for shard in 0..self.slots.len() as ShardId {
            self.ask(shard, now);
        }
    }

    fn shard_home(&mut self, shard: ShardId, home: UniqueAddress, new_epoch: Epoch) {
        let Some(slot) = self.slots.get_mut(shard as usize) else {
            return;
        };
        if home == self.me {
            match slot {
                Slot::Hosted {
                    epoch,
                    state,
                    buffer,
                } => match state {
                    // Placed here again while it stops: it starts again once stopped.
                    HostState::Stopping { restart } => {
                        if new_epoch > *epoch {
                            *restart = true;
                            *epoch = new_epoch;
                        }
                    }
                    _ => {
                        *epoch = (*epoch).max(new_epoch);
                        *state = HostState::Active;
                        self.flushed.extend(buffer.drain(..).map(Delivery::Local));
                    }
                },
                Slot::Remote(_) | Slot::Pending { .. } => {
                    let old = std::mem::replace(
                        slot,
                        Slot::Hosted {
                            epoch: new_epoch,
                            state: HostState::Active,
                            buffer: VecDeque::new(),
                        },
                    );
                    if let Slot::Pending { buffer, .. } = old {
                        self.flushed.extend(buffer.into_iter().map(Delivery::Local));
                    }
                }
            }
            return;
        }
        match slot {
            Slot::Hosted { state, .. } => {
                // The coordinator placed it elsewhere: stop it here first; what waits goes to
                // the new home once it has stopped.
                match state {
                    HostState::Stopping { restart } => *restart = false,
                    _ => {
                        *state = HostState::Stopping { restart: false };
                        self.commands.push(RegionCommand::StopShard(shard));
                    }
                }
            }
            Slot::Remote(_) | Slot::Pending { .. } => {
                let old = std::mem::replace(slot, Slot::Remote(home.clone()));
                if let Slot::Pending { buffer, .. } = old {
                    self.flushed.extend(
                        buffer
                            .into_iter()
                            .map(|m| Delivery::Remote(home.clone(), m)),
                    );
                }
            }
        }
    }

    fn begin_hand_off(
        &mut self,
        coordinator: UniqueAddress,
        shard: ShardId,
        owner: UniqueAddress,
        ending: Epoch,
        regions: Vec<UniqueAddress>,
    ) {
        let Some(slot) = self.slots.get_mut(shard as usize) else {
            return;
        };
        if owner != self.me {
            if let Slot::Remote(_) = slot {
                *slot = Slot::pending();
            }
            self.commands.push(RegionCommand::Send {
                to: owner,
                msg: ShardingWire::HandOffAck {
                    shard,
                    from: self.me.clone(),
                    epoch: ending,
                    coordinator,
                },
            });
            return;
        }
        match slot {
            // A handoff of an earlier allocation of the shard, long finished.
            Slot::Hosted { epoch, .. } if *epoch != ending => {}
            Slot::Hosted { state, .. } => {
                let early = self.early_acks.remove(&(shard, ending)).unwrap_or_default();
                // Those of earlier allocations of the shard are stale.
                self.early_acks
                    .retain(|(s, e), _| *s != shard || *e > ending);
                let expected: BTreeSet<UniqueAddress> =
                    regions.into_iter().filter(|r| *r != self.me).collect();
                match state {
                    HostState::Active => {
                        let waiting = expected.difference(&early).cloned().collect();
                        *state = HostState::HandOff {
                            waiting,
                            acked: early,
                        };
                    }
                    HostState::HandOff { waiting, acked } => {
                        acked.extend(early);
                        *waiting = expected.difference(acked).cloned().collect();
                    }
                    HostState::Stopping { .. } => return,
                }
                self.check_hand_off(shard);
            }
            Slot::Remote(_) | Slot::Pending { .. } => {
                // Not here (any more): nothing to stop. The coordinator's word placing it
                // here came before this one, so it will not come later.
                self.commands.push(RegionCommand::Send {
                    to: coordinator,
                    msg: ShardingWire::ShardStopped {
                        region: self.me.clone(),
                        shard,
                        epoch: ending,
                    },
                });
            }
        }
    }

    fn hand_off_ack(&mut self, shard: ShardId, from: UniqueAddress, ending: Epoch) {
        match self.slots.get_mut(shard as usize) {
            Some(Slot::Hosted {
                epoch,
                state: HostState::HandOff { waiting, acked },
                ..
            }) if *epoch == ending => {
                waiting.remove(&from);
                acked.insert(from);
                self.check_hand_off(shard);
            }
            // About an allocation that ended here already: stale.
            Some(Slot::Hosted { epoch, .. }) if *epoch > ending => {}
            Some(_) => {
                // Before the coordinator's own word reached this owner: kept for it.
                self.early_acks
                    .entry((shard, ending))
                    .or_default()
                    .insert(from);
            }
            None => {}
        }
    }

    fn check_hand_off(&mut self, shard: ShardId) {
        if let Some(Slot::Hosted { state, .. }) = self.slots.get_mut(shard as usize) {
            if matches!(state, HostState::HandOff { waiting, .. } if waiting.is_empty()) {
                *state = HostState::Stopping { restart: false };
                self.commands.push(RegionCommand::StopShard(shard));
            }
        }
    }

    /// Every entity of `shard` on this node has stopped (after [`RegionCommand::StopShard`]).
    pub fn shard_stopped(&mut self, shard: ShardId, now: Instant) {
        let Some(slot) = self.slots.get_mut(shard as usize) else {
            return;
        };
        let Slot::Hosted {
            epoch,
            state: HostState::Stopping { restart },
            buffer,
        } = slot
        else {
            return;
        };
        let epoch = *epoch;
        self.early_acks
            .retain(|(s, e), _| *s != shard || *e > epoch);
        let restart = *restart;
        let buffer = std::mem::take(buffer);
        if restart {
            // The coordinator placed it here again meanwhile: it starts again at once, and what
            // waited goes to it in order.
            *slot = Slot::Hosted {
                epoch,
                state: HostState::Active,
                buffer: VecDeque::new(),
            };
            self.flushed.extend(buffer.into_iter().map(Delivery::Local));
            return;
        }
        *slot = Slot::Pending {
            buffer,
            asked: None,
        };
        if let Some(to) = self.coordinator.clone() {
            self.commands.push(RegionCommand::Send {
                to,
                msg: ShardingWire::ShardStopped {
                    region: self.me.clone(),
                    shard,
                    epoch,
                },
            });
        }
        self.ask(shard, now);
    }

    /// Time passed: repeat what went unanswered.
    pub fn tick(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        let retry = self.settings.retry_interval;
        let due = |t: Option<Instant>| t.is_none_or(|t| now.saturating_duration_since(t) >= retry);
        if self.coordinator.is_some() && !self.registered && due(self.last_register) {
            self.register(now);
        }
        if self.registered {
            self.ask_all(now);
        }
        if self.leaving && !self.hosted().is_empty() && due(self.last_shutdown_notice) {
            self.notify_leaving(now);
        }
    }
}
