//! The shard coordinator of one sharded type, as a pure state machine: membership views,
//! messages from regions and time in; messages to send out.
//!
//! One node coordinates: the oldest member with the hosting role that is Up or Leaving (its
//! age is its `up_number`, which never changes, so every node that sees the same members agrees).
//! The coordinator decides where each shard lives and when it moves; the regions route by what
//! it tells them. Nothing it knows is stored: when the coordinating node changes, the new one
//! rebuilds the table from what the regions report.
//!
//! Its phases, which only move forward, for one incarnation:
//! - **Idle**: another node coordinates.
//! - **TakingOver**: this node is now the oldest, but an older one may still be coordinating.
//!   It waits until every older hosting member has either answered [`ShardingWire::TakeOver`]
//!   (and so stopped for good) or was removed at least `down_removal_margin` ago (long enough
//!   for a node on the far side of a partition to have downed itself and stopped its entities).
//! - **Rebuilding**: it waits until every hosting member that may host shards (Up, Leaving,
//!   Exiting or Down) has registered with the shards it hosts, and until every hosting member
//!   removed within the margin is past it. Only then does it know every shard that may be
//!   running, and it answers nothing before.
//! - **Active**: it allocates shards on demand ([`AllocationStrategy::allocate`]), rebalances
//!   every `rebalance_interval` ([`AllocationStrategy::rebalance`]), moves every shard off a
//!   leaving region, and gives a removed region's shards new homes after the margin.
//! - **Retired**: it was told to stop (or stopped being the oldest); it never coordinates again.
//!
//! The rule it keeps (single incarnation, from the regions' side): a shard is given a new home
//! only when its owner has acknowledged that every entity of it has stopped
//! ([`ShardingWire::ShardStopped`]), or its owner was removed from the cluster at least the margin
//! ago.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::allocation::{AllocationStrategy, Allocations};
use super::wire::{Epoch, ShardingWire};
use super::ShardId;
use crate::cluster::{Member, MemberStatus, UniqueAddress};

/// What the coordinator needs to know besides its inputs.
#[derive(Debug, Clone)]
pub struct CoordinatorSettings {
    /// Only members with this role host shards (and coordinate).
    pub role: Option<String>,
    /// A handoff not finished after this long is asked for again, with the regions still there.
    pub handoff_timeout: Duration,
    /// How often the coordinator repeats an unanswered request ([`ShardingWire::TakeOver`]).
    pub retry_interval: Duration,
    /// How long after a node is removed its shards may start elsewhere.
    pub down_removal_margin: Duration,
    /// How often it asks the allocation strategy for shards to move.
    pub rebalance_interval: Duration,
}

/// Where the coordinator is in its life (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Another node coordinates.
    Idle,
    /// This node waits for the older ones to hand over (or to be gone long enough).
    TakingOver {
        /// Older members that answered [`ShardingWire::TakeOver`].
        handed_over: BTreeSet<UniqueAddress>,
    },
    /// This node waits for the regions' reports.
    Rebuilding,
    /// This node coordinates.
    Active,
    /// This node coordinates no more, for good.
    Retired,
}

/// A message to send to a region (or to an older coordinator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// The node of the region.
    pub to: UniqueAddress,
    /// The message.
    pub msg: ShardingWire,
}

#[derive(Debug, Clone, Default)]
struct RegionEntry {
    hosting: bool,
    leaving: bool,
    shards: BTreeSet<ShardId>,
}

#[derive(Debug, Clone)]
struct HandOff {
    owner: UniqueAddress,
    sent: Instant,
}

/// The coordinator of one sharded type on one node. See the module documentation.
///
/// # Examples
///
/// One node: it takes over at once (no older member), registers its own region, and then
/// allocates shard 7 to it.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use casty::cluster::{Member, MemberStatus, UniqueAddress};
/// use casty::remote::NodeAddress;
/// use casty::sharding::{Coordinator, CoordinatorSettings, LeastShardAllocation, ShardingWire};
/// let me = UniqueAddress::new(NodeAddress::new("bank", "127.0.0.1", 2551), 1);
/// let settings = CoordinatorSettings {
///     role: None,
///     handoff_timeout: Duration::from_secs(60),
///     retry_interval: Duration::from_secs(2),
///     down_removal_margin: Duration::from_secs(20),
///     rebalance_interval: Duration::from_secs(10),
/// };
/// let mut c = Coordinator::new(me.clone(), settings, Arc::new(LeastShardAllocation::default()));
/// let now = Instant::now();
/// let up = Member::joining(me.clone(), Vec::<String>::new())
///     .with_status(MemberStatus::Up)
///     .with_up_number(1);
/// c.members_changed(vec![up], now);
/// let out = c.receive(
///     ShardingWire::Register { region: me.clone(), hosting: true, shards: vec![], stopping: vec![] },
///     now,
/// );
/// assert!(c.is_active());
/// assert!(out.iter().any(|s| s.msg == ShardingWire::RegisterAck { coordinator: me.clone() }));
/// let out = c.receive(ShardingWire::GetShardHome { region: me.clone(), shard: 7 }, now);
/// assert_eq!(
///     out[0].msg,
///     ShardingWire::ShardHome { coordinator: me.clone(), shard: 7, home: me.clone(), epoch: 1 }
/// );
/// ```
#[derive(Debug)]
pub struct Coordinator {
    me: UniqueAddress,
    settings: CoordinatorSettings,
    strategy: Arc<dyn AllocationStrategy>,
    phase: Phase,
    members: BTreeMap<UniqueAddress, Member>,
    /// Hosting members seen removed, and when.
    removed: BTreeMap<UniqueAddress, Instant>,
    regions: BTreeMap<UniqueAddress, RegionEntry>,
    homes: BTreeMap<ShardId, UniqueAddress>,
    /// The allocation each home is.
    epochs: BTreeMap<ShardId, Epoch>,
    next_epoch: Epoch,
    /// Shards whose owner was removed: free from the instant given.
    orphans: BTreeMap<ShardId, Instant>,
    handoffs: BTreeMap<ShardId, HandOff>,
    /// Regions waiting for the home of a shard the coordinator could not give yet.
    deferred: BTreeMap<ShardId, BTreeSet<UniqueAddress>>,
    last_take_over: Option<Instant>,
    last_rebalance: Option<Instant>,
}

impl Coordinator {
    /// A coordinator for the node `me`, idle until a view makes it the oldest hosting member.
    pub fn new(
        me: UniqueAddress,
        settings: CoordinatorSettings,
        strategy: Arc<dyn AllocationStrategy>,
    ) -> Self {
        Coordinator {
            me,
            settings,
            strategy,
            phase: Phase::Idle,
            members: BTreeMap::new(),
            removed: BTreeMap::new(),
            regions: BTreeMap::new(),
            homes: BTreeMap::new(),
            epochs: BTreeMap::new(),
            next_epoch: 1,
            orphans: BTreeMap::new(),
            handoffs: BTreeMap::new(),
            deferred: BTreeMap::new(),
            last_take_over: None,
            last_rebalance: None,
        }
    }

    /// The phase it is in.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether it coordinates now.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// The home of each allocated shard.
    pub fn homes(&self) -> &BTreeMap<ShardId, UniqueAddress> {
        &self.homes
    }

    /// The shards moving now.
    pub fn handoffs_in_progress(&self) -> BTreeSet<ShardId> {
        self.handoffs.keys().copied().collect()
    }

    /// The member that coordinates in a view: the oldest one with `role` that is Up or Leaving.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::cluster::{Member, MemberStatus, UniqueAddress};
    /// use casty::remote::NodeAddress;
    /// use casty::sharding::Coordinator;
    /// let node = |p| UniqueAddress::new(NodeAddress::new("bank", "127.0.0.1", p), 1);
    /// let m = |p, n| Member::joining(node(p), ["web"]).with_status(MemberStatus::Up).with_up_number(n);
    /// let members = vec![m(2552, 1), m(2551, 2)];
    /// assert_eq!(Coordinator::coordinator_of(members.iter(), None), Some(node(2552)));
    /// assert_eq!(Coordinator::coordinator_of(members.iter(), Some("db")), None);
    /// ```
    pub fn coordinator_of<'a>(
        members: impl IntoIterator<Item = &'a Member>,
        role: Option<&str>,
    ) -> Option<UniqueAddress> {
        members
            .into_iter()
            .filter(|m| m.status.is_up_or_leaving() && role.is_none_or(|r| m.has_role(r)))
            .min_by(|a, b| (a.up_number, &a.node).cmp(&(b.up_number, &b.node)))
            .map(|m| m.node.clone())
    }

    fn hosts(&self, m: &Member) -> bool {
        self.settings.role.as_deref().is_none_or(|r| m.has_role(r))
    }

    /// A new view of the members. Members gone from it are taken as removed.
    pub fn members_changed(&mut self, members: Vec<Member>, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        let new: BTreeMap<UniqueAddress, Member> = members
            .into_iter()
            .filter(|m| m.status != MemberStatus::Removed)
            .map(|m| (m.node.clone(), m))
            .collect();
        let gone: Vec<UniqueAddress> = self
            .members
            .keys()
            .filter(|n| !new.contains_key(*n))
            .cloned()
            .collect();
        let old = std::mem::replace(&mut self.members, new);
        for node in gone {
            // Only a member that may have hosted shards makes anyone wait, and only one whose
            // shards this coordinator does not know: a region that reported to it has its
            // shards kept from new homes one by one, for the margin (below).
            if !self.regions.contains_key(&node)
                && old.get(&node).is_some_and(|m| {
                    self.hosts(m)
                        && !matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp)
                })
            {
                self.removed.insert(node.clone(), now);
            }
            self.region_removed(&node, now, &mut out);
        }
        // A member that is leaving, or was downed, takes no new shards; a leaving one gives its
        // shards away.
        for (node, entry) in &mut self.regions {
            if let Some(m) = self.members.get(node) {
                if !matches!(
                    m.status,
                    MemberStatus::Up | MemberStatus::WeaklyUp | MemberStatus::Joining
                ) {
                    entry.leaving = true;
                }
            }
        }
        self.advance(now, &mut out);
        out
    }

    /// A message from a region (or from another coordinator).
    pub fn receive(&mut self, msg: ShardingWire, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        match msg {
            ShardingWire::TakeOver { coordinator } => {
                if coordinator != self.me {
                    // The regions that follow this one hear it stopped, after everything it
                    // sent them before.
                    for to in self.regions.keys() {
                        out.push(Send {
                            to: to.clone(),
                            msg: ShardingWire::CoordinatorRetired {
                                from: self.me.clone(),
                                successor: coordinator.clone(),
                            },
                        });
                    }
                    self.retire();
                    out.push(Send {
                        to: coordinator,
                        msg: ShardingWire::HandedOver {
                            from: self.me.clone(),
                        },
                    });
                }
            }
            ShardingWire::HandedOver { from } => {
                if let Phase::TakingOver { handed_over } = &mut self.phase {
                    handed_over.insert(from);
                }
            }
            _ if self.phase == Phase::Idle || self.phase == Phase::Retired => {}
            ShardingWire::Register {
                region,
                hosting,
                shards,
                stopping,
            } => self.register(region, hosting, shards, stopping, now, &mut out),
            ShardingWire::GetShardHome { region, shard } => {
                if self.regions.contains_key(&region) {
                    self.deferred.entry(shard).or_default().insert(region);
                }
            }
            ShardingWire::ShardStopped {
                region,
                shard,
                epoch,
            } => {
                // Only an answer about the current allocation: a late one about an earlier
                // allocation of the shard (here or elsewhere) says nothing about this one.
                if self.homes.get(&shard) == Some(&region)
                    && self.epochs.get(&shard) == Some(&epoch)
                {
                    self.homes.remove(&shard);
                    self.epochs.remove(&shard);
                    if let Some(e) = self.regions.get_mut(&region) {
                        e.shards.remove(&shard);
                    }
                    // A shard that moved is placed at once, so that it has its new home
                    // before its next message (its entities start on that message).
                    if self.handoffs.remove(&shard).is_some() {
                        self.deferred.entry(shard).or_default();
                    }
                }
            }
            ShardingWire::GracefulShutdown { region } => {
                if let Some(e) = self.regions.get_mut(&region) {
                    e.leaving = true;
                }
            }
            // Messages for regions are not the coordinator's.
            ShardingWire::RegisterAck { .. }
            | ShardingWire::ShardHome { .. }
            | ShardingWire::BeginHandOff { .. }
            | ShardingWire::HandOffAck { .. }
            | ShardingWire::CoordinatorRetired { .. } => {}
        }
        self.advance(now, &mut out);
        out
    }

    /// Time passed: repeat what went unanswered, rebalance, free orphans past the margin.
    pub fn tick(&mut self, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        if self.phase == Phase::Active {
            let due: Vec<ShardId> = self
                .handoffs
                .iter()
                .filter(|(_, h)| {
                    now.saturating_duration_since(h.sent) >= self.settings.handoff_timeout
                })
                .map(|(s, _)| *s)
                .collect();
            for shard in due {
                self.send_begin_hand_off(shard, now, &mut out);
            }
            let rebalance_due = self.last_rebalance.is_none_or(|t| {
                now.saturating_duration_since(t) >= self.settings.rebalance_interval
            });
            if rebalance_due {
                self.last_rebalance = Some(now);
                let in_progress = self.handoffs_in_progress();
                let moves = self.strategy.rebalance(&self.eligible(), &in_progress);
                for shard in moves {
                    if self.homes.contains_key(&shard) && !self.handoffs.contains_key(&shard) {
                        self.send_begin_hand_off(shard, now, &mut out);
                    }
                }
            }
        }
        out
    }

    fn retire(&mut self) {
        self.phase = Phase::Retired;
        // The regions are kept: they hear from a retired coordinator that it has stopped, and
        // whom to follow, when its successor asks it to hand over.
        self.homes.clear();
        self.epochs.clear();
        self.orphans.clear();
        self.handoffs.clear();
        self.deferred.clear();
    }

    fn register(
        &mut self,
        region: UniqueAddress,
        hosting: bool,
        shards: Vec<(ShardId, Epoch)>,
        stopping: Vec<ShardId>,
        now: Instant,
        out: &mut Vec<Send>,
    ) {
        let Some(member) = self.members.get(&region) else {
            // Not (yet, or any more) a member: it will ask again.
            return;
        };
        let hosting = hosting && self.hosts(member);
        let leaving = !matches!(
            member.status,
            MemberStatus::Up | MemberStatus::WeaklyUp | MemberStatus::Joining
        );
        let rebuilding = self.phase != Phase::Active;
        let entry = self
            .regions
            .entry(region.clone())
            .or_insert_with(|| RegionEntry {
                hosting,
                leaving,
                shards: BTreeSet::new(),
            });
        entry.hosting = hosting;
        entry.leaving |= leaving;
        for (shard, epoch) in shards {
            self.next_epoch = self.next_epoch.max(epoch + 1);
            // While rebuilding, every report is the truth; once active, the table is, and a
            // report only adds a shard nobody holds.
            let free = match self.homes.get(&shard) {
                None => true,
                Some(h) => rebuilding && *h == region,
            };
            if free {
                self.homes.insert(shard, region.clone());
                self.epochs.insert(shard, epoch);
                self.orphans.remove(&shard);
                entry.shards.insert(shard);
            }
        }
        // A shard still stopping there (a handoff under an earlier coordinator) is moving: it
        // gets no home until its owner reports it stopped, and then one at once.
        for shard in stopping {
            if self.homes.get(&shard) == Some(&region) && !self.handoffs.contains_key(&shard) {
                self.handoffs.insert(
                    shard,
                    HandOff {
                        owner: region.clone(),
                        sent: now,
                    },
                );
            }
        }
        out.push(Send {
            to: region,
            msg: ShardingWire::RegisterAck {
                coordinator: self.me.clone(),
            },
        });
    }

    fn region_removed(&mut self, node: &UniqueAddress, now: Instant, out: &mut Vec<Send>) {
        let free_at = now + self.settings.down_removal_margin;
        if let Some(entry) = self.regions.remove(node) {
            for shard in entry.shards {
                if self.homes.get(&shard) == Some(node) {
                    self.homes.remove(&shard);
                    self.epochs.remove(&shard);
                    self.orphans.insert(shard, free_at);
                }
            }
        }
        let owned: Vec<ShardId> = self
            .handoffs
            .iter()
            .filter(|(_, h)| h.owner == *node)
            .map(|(s, _)| *s)
            .collect();
        for shard in owned {
            self.handoffs.remove(&shard);
            self.orphans.insert(shard, free_at);
        }
        for requesters in self.deferred.values_mut() {
            requesters.remove(node);
        }
        // Owners waiting for the removed region's acknowledgement wait no more.
        if self.phase == Phase::Active {
            let waiting: Vec<ShardId> = self.handoffs.keys().copied().collect();
            for shard in waiting {
                self.send_begin_hand_off(shard, now, out);
            }
        }
    }

    /// The regions that may take shards now: registered, hosting, Up, not leaving.
    fn eligible(&self) -> Allocations {
        self.regions
            .iter()
            .filter(|(node, e)| {
                e.hosting
                    && !e.leaving
                    && self
                        .members
                        .get(*node)
                        .is_some_and(|m| m.status == MemberStatus::Up)
            })
            .map(|(node, e)| (node.clone(), e.shards.clone()))
            .collect()
    }

    fn older_hosting(&self) -> Vec<UniqueAddress> {
        let Some(me) = self.members.get(&self.me) else {
            return Vec::new();
        };
        self.members
            .values()
            .filter(|m| m.node != self.me && self.hosts(m) && m.is_older_than(me))
            .map(|m| m.node.clone())
            .collect()
    }

    /// Whether every hosting member removed within the margin is past it.
    fn removals_settled(&self, now: Instant) -> bool {
        self.removed
            .values()
            .all(|t| now >= *t + self.settings.down_removal_margin)
    }

    fn advance(&mut self, now: Instant, out: &mut Vec<Send>) {
        loop {
            let before = self.phase.clone();
            self.step(now, out);
            if self.phase == before {
                break;
            }
        }
        if self.phase == Phase::Active {
            self.answer_deferred(now, out);
            self.move_off_leaving(now, out);
        }
        // Removals older than the margin no longer matter.
        let margin = self.settings.down_removal_margin;
        self.removed.retain(|_, t| now < *t + margin);
        self.orphans.retain(|_, t| now < *t);
    }

    fn step(&mut self, now: Instant, out: &mut Vec<Send>) {
        let oldest = Self::coordinator_of(self.members.values(), self.settings.role.as_deref());
        let mine = oldest.as_ref() == Some(&self.me);
        match &self.phase {
            Phase::Retired => {}
            Phase::Idle => {
                if mine {
                    self.phase = Phase::TakingOver {
                        handed_over: BTreeSet::new(),
                    };
                    self.last_take_over = None;
                }
            }
            // A node stops being the oldest only by leaving or being downed: it never
            // coordinates again.
            _ if !mine => self.retire(),
            Phase::TakingOver { handed_over } => {
                let older = self.older_hosting();
                let waiting: Vec<UniqueAddress> = older
                    .into_iter()
                    .filter(|n| !handed_over.contains(n))
                    .collect();
                if waiting.is_empty() && self.removals_settled(now) {
                    self.phase = Phase::Rebuilding;
                } else if self.last_take_over.is_none_or(|t| {
                    now.saturating_duration_since(t) >= self.settings.retry_interval
                }) {
                    self.last_take_over = Some(now);
                    for to in waiting {
                        out.push(Send {
                            to,
                            msg: ShardingWire::TakeOver {
                                coordinator: self.me.clone(),
                            },
                        });
                    }
                }
            }
            Phase::Rebuilding => {
                let missing = self.members.values().any(|m| {
                    self.hosts(m)
                        && !matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp)
                        && !self.regions.contains_key(&m.node)
                });
                if !missing && self.removals_settled(now) {
                    self.phase = Phase::Active;
                    self.last_rebalance = Some(now);
                }
            }
            Phase::Active => {}
        }
    }

    fn answer_deferred(&mut self, now: Instant, out: &mut Vec<Send>) {
        // A coordinator whose node is leaving places no shard any more: the next one will,
        // once every region follows it. A home given now could reach a region that already
        // follows the next coordinator, and open a second path to the shard.
        let placing = self
            .members
            .get(&self.me)
            .is_some_and(|m| m.status == MemberStatus::Up);
        let shards: Vec<ShardId> = self.deferred.keys().copied().collect();
        let mut notified = BTreeSet::new();
        let mut eligible = self.eligible();
        for shard in shards {
            if self.handoffs.contains_key(&shard) {
                continue;
            }
            if self.orphans.get(&shard).is_some_and(|t| now < *t) {
                continue;
            }
            let home = match self.homes.get(&shard) {
                Some(h) => Some(h.clone()),
                None if !placing => None,
                None => {
                    let Some(requesters) = self.deferred.get(&shard) else {
                        continue;
                    };
                    let requester = requesters
                        .iter()
                        .next()
                        .cloned()
                        .unwrap_or_else(|| self.me.clone());
                    let home = self.strategy.allocate(shard, &requester, &eligible);
                    if let Some(h) = &home {
                        // Only a region that may take shards now.
                        let Some(held) = eligible.get_mut(h) else {
                            continue;
                        };
                        held.insert(shard);
                        self.homes.insert(shard, h.clone());
                        self.epochs.insert(shard, self.next_epoch);
                        self.next_epoch += 1;
                        self.orphans.remove(&shard);
                        if let Some(e) = self.regions.get_mut(h) {
                            e.shards.insert(shard);
                        }
                        // The new home learns it hosts the shard.
                        notified.insert((shard, h.clone()));
                        out.push(Send {
                            to: h.clone(),
                            msg: ShardingWire::ShardHome {
                                coordinator: self.me.clone(),
                                shard,
                                home: h.clone(),
                                epoch: self.epochs.get(&shard).copied().unwrap_or(0),
                            },
                        });
                    }
                    home
                }
            };
            let Some(home) = home else { continue };
            for to in self.deferred.remove(&shard).unwrap_or_default() {
                if to == home && notified.contains(&(shard, to.clone())) {
                    continue;
                }
                out.push(Send {
                    to,
                    msg: ShardingWire::ShardHome {
                        coordinator: self.me.clone(),
                        shard,
                        home: home.clone(),
                        epoch: self.epochs.get(&shard).copied().unwrap_or(0),
                    },
                });
            }
        }
    }

    fn move_off_leaving(&mut self, now: Instant, out: &mut Vec<Send>) {
        let moving: Vec<ShardId> = self
            .regions
            .values()
            .filter(|e| e.leaving)
            .flat_map(|e| e.shards.iter().copied())
            .filter(|s| !self.handoffs.contains_key(s))
            .collect();
        for shard in moving {
            self.send_begin_hand_off(shard, now, out);
        }
    }

    fn send_begin_hand_off(&mut self, shard: ShardId, now: Instant, out: &mut Vec<Send>) {
        let (Some(owner), Some(epoch)) = (
            self.homes.get(&shard).cloned(),
            self.epochs.get(&shard).copied(),
        ) else {
            self.handoffs.remove(&shard);
            return;
        };
        self.handoffs.insert(
            shard,
            HandOff {
                owner: owner.clone(),
                sent: now,
            },
        );
        let regions: Vec<UniqueAddress> = self.regions.keys().cloned().collect();
        for to in &regions {
            out.push(Send {
                to: to.clone(),
                msg: ShardingWire::BeginHandOff {
                    coordinator: self.me.clone(),
                    shard,
                    owner: owner.clone(),
                    epoch,
                    regions: regions.clone(),
                },
            });
        }
    }
}
