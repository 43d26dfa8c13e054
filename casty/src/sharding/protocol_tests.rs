//! The sharding protocol as a whole, without I/O: regions and coordinators on several nodes,
//! a network that keeps order per pair of nodes but interleaves pairs at random, membership
//! views that reach each node late, joins, graceful leaves, rebalances, crashes and partitions,
//! all drawn from a seed. After every step the checks run:
//! - no shard is hosted by two live regions at once (single incarnation), counting a region
//!   cut off by a partition as live until it has stopped itself;
//! - no message is handled twice;
//! - without crashes or partitions, every message sent arrives exactly once and in the order
//!   sent (per sender and entity), across every handoff, graceful leave and coordinator change;
//!   except that a node which is leaving keeps telling until it stops, and what its region
//!   still holds then (waiting for a shard's home) is dropped as a dead letter: only those
//!   last messages of each of its senders, never one before a message that arrived.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::allocation::LeastShardAllocation;
use super::coordinator::{Coordinator, CoordinatorSettings};
use super::region::{Delivery, DropReason, Origin, Region, RegionCommand, RegionSettings};
use super::wire::ShardingWire;
use super::ShardId;
use crate::cluster::{Member, MemberStatus, UniqueAddress};
use crate::remote::NodeAddress;

const SHARDS: u32 = 12;
const ENTITIES: u32 = 30;
const MARGIN: Duration = Duration::from_millis(500);

/// A message for an entity: who sent it, and its number among that sender's messages to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    entity: u32,
    from: usize,
    seq: u64,
}

fn shard_of(entity: u32) -> ShardId {
    entity % SHARDS
}

#[derive(Debug)]
enum Packet {
    Control(ShardingWire),
    Data(Msg),
}

struct Node {
    addr: UniqueAddress,
    region: Region<Msg>,
    coordinator: Coordinator,
    alive: bool,
    /// Cut off: nothing reaches it or leaves it.
    isolated: bool,
    /// Shards whose entities are stopping, and the step at which they will have.
    stopping: BTreeMap<ShardId, u32>,
    /// The last membership view it saw.
    seen: Vec<Member>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

struct World {
    rng: Rng,
    now: Instant,
    step: u32,
    nodes: Vec<Node>,
    /// The membership as it is; each node sees it when it next refreshes.
    truth: Vec<Member>,
    next_up: u32,
    net: BTreeMap<(usize, usize), VecDeque<Packet>>,
    sent: BTreeMap<(usize, u32), u64>,
    delivered: BTreeMap<(usize, u32), u64>,
    /// Where each delivered message was handled: (node, entity) of every delivery.
    faults: bool,
    /// Pending membership moves: (step, node, status).
    scheduled: Vec<(u32, usize, MemberStatus)>,
    /// What happened, for a failure's report.
    log: Vec<String>,
    /// Cut-off nodes that will see themselves downed, and when.
    self_down: Vec<(u32, usize)>,
    /// Every message handled, with faults (where order is not promised).
    seen_once: BTreeSet<(usize, u32, u64)>,
    /// Messages a leaving node's region dropped when it stopped, by sender and entity.
    dropped: BTreeMap<(usize, u32), BTreeSet<u64>>,
}

fn address(i: usize) -> UniqueAddress {
    UniqueAddress::new(
        NodeAddress::new("sim", "10.0.0.1", 2551 + i as u16),
        100 + i as u64,
    )
}

impl World {
    fn new(seed: u64, initial: usize, faults: bool) -> World {
        let mut w = World {
            rng: Rng(seed),
            now: Instant::now(),
            step: 0,
            nodes: Vec::new(),
            truth: Vec::new(),
            next_up: 1,
            net: BTreeMap::new(),
            sent: BTreeMap::new(),
            delivered: BTreeMap::new(),
            faults,
            scheduled: Vec::new(),
            log: Vec::new(),
            self_down: Vec::new(),
            seen_once: BTreeSet::new(),
            dropped: BTreeMap::new(),
        };
        for _ in 0..initial {
            let i = w.add_node();
            w.set_status(i, MemberStatus::Up);
        }
        w
    }

    fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let addr = address(i);
        let region = Region::new(
            addr.clone(),
            RegionSettings {
                num_shards: SHARDS,
                role: None,
                buffer_size: 10_000,
                retry_interval: Duration::from_millis(50),
            },
        );
        let coordinator = Coordinator::new(
            addr.clone(),
            CoordinatorSettings {
                role: None,
                handoff_timeout: Duration::from_millis(300),
                retry_interval: Duration::from_millis(50),
                down_removal_margin: MARGIN,
                rebalance_interval: Duration::from_millis(100),
            },
            Arc::new(LeastShardAllocation::default()),
        );
        self.nodes.push(Node {
            addr: addr.clone(),
            region,
            coordinator,
            alive: true,
            isolated: false,
            stopping: BTreeMap::new(),
            seen: Vec::new(),
        });
        self.truth.push(Member::joining(addr, Vec::<String>::new()));
        i
    }

    fn set_status(&mut self, i: usize, status: MemberStatus) {
        let addr = self.nodes[i].addr.clone();
        if status == MemberStatus::Removed {
            self.truth.retain(|m| m.node != addr);
            return;
        }
        for m in &mut self.truth {
            if m.node == addr && m.status.can_become(status) {
                m.status = status;
                if status == MemberStatus::Up {
                    m.up_number = self.next_up;
                    self.next_up += 1;
                }
            }
        }
    }

    fn status(&self, i: usize) -> Option<MemberStatus> {
        let addr = &self.nodes[i].addr;
        self.truth
            .iter()
            .find(|m| m.node == *addr)
            .map(|m| m.status)
    }

    fn index(&self, addr: &UniqueAddress) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == *addr)
    }

    /// What a node sees of the membership: the truth, except that a node cut off sees every
    /// other member as it was, and itself downed once the others have downed it.
    fn view_of(&self, _i: usize) -> Vec<Member> {
        self.truth.clone()
    }

    fn refresh(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        self.log.push(format!(
            "step {} node {i} refreshes: {:?}",
            self.step,
            self.truth
                .iter()
                .map(|m| (m.node.address.port(), m.status))
                .collect::<Vec<_>>()
        ));
        let view = self.view_of(i);
        let now = self.now;
        let node = &mut self.nodes[i];
        if node.isolated {
            return;
        }
        node.seen = view.clone();
        node.region.members_changed(&view, now);
        let out = node.coordinator.members_changed(view, now);
        for s in out {
            self.send_control(i, s.to, s.msg);
        }
        self.drain_region(i);
    }

    fn send_control(&mut self, from: usize, to: UniqueAddress, msg: ShardingWire) {
        let Some(j) = self.index(&to) else { return };
        self.net
            .entry((from, j))
            .or_default()
            .push_back(Packet::Control(msg));
    }

    fn drain_region(&mut self, i: usize) {
        loop {
            let commands: Vec<RegionCommand> = self.nodes[i].region.take_commands().collect();
            let flushed: Vec<Delivery<Msg>> = self.nodes[i].region.take_flushed().collect();
            if commands.is_empty() && flushed.is_empty() {
                return;
            }
            for c in commands {
                match c {
                    RegionCommand::Send { to, msg } => self.send_control(i, to, msg),
                    RegionCommand::StopShard(s) => {
                        self.log
                            .push(format!("step {} node {i} stops shard {s}", self.step));
                        let done = self.step + 1 + self.rng.below(20) as u32;
                        self.nodes[i].stopping.insert(s, done);
                    }
                    RegionCommand::StopAll => self.nodes[i].stopping.clear(),
                }
            }
            for d in flushed {
                self.deliver(i, d);
            }
        }
    }

    fn deliver(&mut self, i: usize, d: Delivery<Msg>) {
        self.log
            .push(format!("step {} node {i} delivers {d:?}", self.step));
        match d {
            Delivery::Local(m) => self.handled(i, m),
            Delivery::Remote(to, m) => {
                if let Some(j) = self.index(&to) {
                    self.net
                        .entry((i, j))
                        .or_default()
                        .push_back(Packet::Data(m));
                }
            }
            Delivery::Dead(m, why) => {
                if self.faults {
                    return;
                }
                // Without faults, only a leaving node's region drops, as it stops.
                assert!(
                    why == DropReason::RegionStopped
                        && self.nodes[i].region.is_leaving()
                        && self.nodes[i].region.is_stopped(),
                    "without faults nothing is dropped but by a leaving node as it stops, but \
                     {m:?} was, on node {i}: {why:?}"
                );
                assert_eq!(
                    m.from, i,
                    "{m:?}, from another node, was dropped by node {i}"
                );
                let key = (m.from, m.entity);
                assert!(
                    m.seq > self.delivered.get(&key).copied().unwrap_or(0),
                    "{m:?} was dropped after it arrived"
                );
                self.dropped.entry(key).or_default().insert(m.seq);
            }
        }
    }

    /// An entity on node `i` handles a message.
    fn handled(&mut self, i: usize, m: Msg) {
        let shard = shard_of(m.entity);
        assert!(
            self.nodes[i].region.hosted().contains(&shard),
            "node {i} handled {m:?} for shard {shard}, which it does not host"
        );
        let key = (m.from, m.entity);
        let last = self.delivered.get(&key).copied().unwrap_or(0);
        if self.faults {
            // A placement lost with a crashed coordinator can leave messages on a stale path:
            // they still arrive once, but may come after later ones.
            assert!(
                self.seen_once.insert((m.from, m.entity, m.seq)),
                "{m:?} arrived twice"
            );
            self.delivered.insert(key, last.max(m.seq));
            return;
        } else {
            assert_eq!(m.seq, last + 1, "{m:?}: lost or out of order (last {last})");
            assert!(
                !self.dropped.get(&key).is_some_and(|d| d.contains(&m.seq)),
                "{m:?} arrived after it was dropped"
            );
        }
        self.delivered.insert(key, m.seq);
    }

    fn tell(&mut self, i: usize, entity: u32) {
        let seq = {
            let s = self.sent.entry((i, entity)).or_insert(0);
            *s += 1;
            *s
        };
        let m = Msg {
            entity,
            from: i,
            seq,
        };
        let now = self.now;
        self.log
            .push(format!("step {} node {i} tells {m:?}", self.step));
        if let Some(d) = self.nodes[i]
            .region
            .route(shard_of(entity), Origin::Local, m, now)
        {
            self.deliver(i, d);
        }
        self.drain_region(i);
    }

    fn receive(&mut self, from: usize, to: usize, p: Packet) {
        let now = self.now;
        self.log
            .push(format!("step {} {from}->{to}: {}", self.step, short(&p)));
        match p {
            Packet::Control(msg) => {
                if msg.is_for_coordinator() {
                    let out = self.nodes[to].coordinator.receive(msg, now);
                    for s in out {
                        self.send_control(to, s.to, s.msg);
                    }
                } else {
                    self.nodes[to].region.receive(msg, now);
                }
            }
            Packet::Data(m) => {
                let _ = from;
                if let Some(d) =
                    self.nodes[to]
                        .region
                        .route(shard_of(m.entity), Origin::Forwarded, m, now)
                {
                    self.deliver(to, d);
                }
            }
        }
        self.drain_region(to);
    }

    /// Checks that no shard is hosted by two regions that may still run entities.
    fn check_single_incarnation(&self) {
        let mut hosts: BTreeMap<ShardId, Vec<usize>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.alive {
                continue;
            }
            for s in n.region.hosted() {
                hosts.entry(s).or_default().push(i);
            }
        }
        for (s, on) in hosts {
            assert!(on.len() <= 1, "shard {s} is hosted on nodes {on:?} at once");
        }
    }

    fn one_step(&mut self) {
        self.step += 1;
        self.now += Duration::from_millis(1 + self.rng.below(3));
        // Scheduled membership moves.
        let due: Vec<(u32, usize, MemberStatus)> = self
            .scheduled
            .iter()
            .filter(|(t, _, _)| *t <= self.step)
            .cloned()
            .collect();
        self.scheduled.retain(|(t, _, _)| *t > self.step);
        for (_, i, status) in due {
            self.log
                .push(format!("step {} node {i} becomes {status:?}", self.step));
            self.set_status(i, status);
            if status == MemberStatus::Removed && self.nodes[i].isolated {
                // The far side downs itself well within the margin.
                let at = self.step + self.rng.below(60) as u32;
                self.self_down.push((at, i));
            }
        }
        let downed: Vec<usize> = self
            .self_down
            .iter()
            .filter(|(t, _)| *t <= self.step)
            .map(|(_, i)| *i)
            .collect();
        self.self_down.retain(|(t, _)| *t > self.step);
        for i in downed {
            self.sees_itself_down(i);
        }
        // Stops that completed.
        for i in 0..self.nodes.len() {
            let done: Vec<ShardId> = self.nodes[i]
                .stopping
                .iter()
                .filter(|(_, t)| **t <= self.step)
                .map(|(s, _)| *s)
                .collect();
            for s in done {
                self.nodes[i].stopping.remove(&s);
                self.log
                    .push(format!("step {} node {i} stopped shard {s}", self.step));
                let now = self.now;
                self.nodes[i].region.shard_stopped(s, now);
                self.drain_region(i);
            }
        }
        match self.rng.below(100) {
            0..=59 => {
                // Deliver the head of one pair's queue.
                let keys: Vec<(usize, usize)> = self
                    .net
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(k, _)| *k)
                    .collect();
                if !keys.is_empty() {
                    let (from, to) = keys[self.rng.below(keys.len() as u64) as usize];
                    let p = self.net.get_mut(&(from, to)).and_then(|q| q.pop_front());
                    if let Some(p) = p {
                        let cut = self.nodes[from].isolated || self.nodes[to].isolated;
                        if self.nodes[to].alive && !cut {
                            self.receive(from, to, p);
                        }
                    }
                }
            }
            60..=74 => {
                // Any member sends, also while it leaves, until its region has stopped.
                let live: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| {
                        self.nodes[*i].alive
                            && !self.nodes[*i].isolated
                            && self.status(*i).is_some()
                            && !self.nodes[*i].region.is_stopped()
                    })
                    .collect();
                if !live.is_empty() {
                    let i = live[self.rng.below(live.len() as u64) as usize];
                    let e = self.rng.below(ENTITIES as u64) as u32;
                    self.tell(i, e);
                }
            }
            75..=84 => {
                let i = self.rng.below(self.nodes.len() as u64) as usize;
                self.refresh(i);
            }
            _ => {
                let i = self.rng.below(self.nodes.len() as u64) as usize;
                if self.nodes[i].alive && !self.nodes[i].isolated {
                    let now = self.now;
                    self.nodes[i].region.tick(now);
                    let out = self.nodes[i].coordinator.tick(now);
                    for s in out {
                        self.send_control(i, s.to, s.msg);
                    }
                    self.drain_region(i);
                }
            }
        }
        self.check_single_incarnation();
    }

    /// Each sender and entity whose messages have not all arrived, with how many did (without
    /// faults): every message sent has arrived, or is one of the last ones of a leaving node,
    /// dropped as it stopped.
    fn missing(&self) -> Vec<((usize, u32), u64)> {
        self.sent
            .iter()
            .filter(|(k, sent)| {
                let arrived = self.delivered.get(k).copied().unwrap_or(0);
                let dropped = self.dropped.get(k);
                let tail = (arrived + 1..=**sent).collect::<BTreeSet<u64>>();
                tail != dropped.cloned().unwrap_or_default()
            })
            .map(|(k, _)| (*k, self.delivered.get(k).copied().unwrap_or(0)))
            .collect()
    }

    /// A node cut off sees itself downed: it stops every entity, and is gone.
    fn sees_itself_down(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        self.log
            .push(format!("step {} node {i} sees itself down", self.step));
        let mut view = self.nodes[i].seen.clone();
        for m in &mut view {
            if m.node == self.nodes[i].addr {
                m.status = MemberStatus::Down;
            }
        }
        let now = self.now;
        self.nodes[i].region.members_changed(&view, now);
        self.drain_region(i);
        assert!(self.nodes[i].region.is_stopped());
        self.nodes[i].alive = false;
    }

    /// Runs quietly until the network is empty and nothing changes, then checks that every
    /// message sent was handled.
    fn settle(&mut self) {
        // Partitions end with the far side downing itself.
        for i in 0..self.nodes.len() {
            if self.nodes[i].isolated {
                self.sees_itself_down(i);
            }
        }
        self.self_down.clear();
        for _ in 0..20_000 {
            self.step += 1;
            self.now += Duration::from_millis(5);
            let due: Vec<(u32, usize, MemberStatus)> = self.scheduled.drain(..).collect();
            for (_, i, status) in due {
                self.set_status(i, status);
            }
            for i in 0..self.nodes.len() {
                let done: Vec<ShardId> = self.nodes[i].stopping.keys().copied().collect();
                for s in done {
                    self.nodes[i].stopping.remove(&s);
                    let now = self.now;
                    self.nodes[i].region.shard_stopped(s, now);
                    self.drain_region(i);
                }
                self.refresh(i);
                if self.nodes[i].alive {
                    let now = self.now;
                    self.nodes[i].region.tick(now);
                    let out = self.nodes[i].coordinator.tick(now);
                    for s in out {
                        self.send_control(i, s.to, s.msg);
                    }
                    self.drain_region(i);
                }
            }
            let keys: Vec<(usize, usize)> = self.net.keys().copied().collect();
            for (from, to) in keys {
                while let Some(p) = self.net.get_mut(&(from, to)).and_then(|q| q.pop_front()) {
                    if self.nodes[to].alive {
                        self.receive(from, to, p);
                    }
                }
            }
            self.check_single_incarnation();
            if !self.faults && self.missing().is_empty() {
                return;
            }
        }
        if !self.faults {
            panic!(
                "messages never arrived: {:?}\n{}",
                self.missing(),
                self.dump()
            );
        }
    }
}

/// A history with joins, graceful leaves and rebalances, and no faults.
fn quiet_history(seed: u64) {
    let mut w = World::new(seed, 3, false);
    for _ in 0..20 {
        w.refresh_all();
    }
    for round in 0..6 {
        for _ in 0..300 {
            w.one_step();
        }
        match w.rng.below(3) {
            0 if w.nodes.len() < 7 => {
                let i = w.add_node();
                let at = w.step + 5;
                w.scheduled.push((at, i, MemberStatus::Up));
            }
            1 if round > 1 => {
                // A graceful leave: the node's region hands everything off first; the
                // membership moves on when it has (as the system's shutdown waits for it).
                let live: Vec<usize> = (0..w.nodes.len())
                    .filter(|i| w.status(*i) == Some(MemberStatus::Up))
                    .collect();
                if live.len() > 2 {
                    let i = live[w.rng.below(live.len() as u64) as usize];
                    w.leave(i);
                }
            }
            _ => {}
        }
    }
    w.settle();
}

/// A history with crashes and partitions besides joins and leaves. A crashed node's entities
/// die with it; a node cut off keeps running its entities until it sees itself downed, which
/// happens within the margin after the others removed it.
fn faulty_history(seed: u64) {
    let mut w = World::new(seed, 4, true);
    for _ in 0..20 {
        w.refresh_all();
    }
    for _ in 0..8 {
        for _ in 0..300 {
            w.one_step();
        }
        let up: Vec<usize> = (0..w.nodes.len())
            .filter(|i| {
                w.status(*i) == Some(MemberStatus::Up) && w.nodes[*i].alive && !w.nodes[*i].isolated
            })
            .collect();
        match w.rng.below(5) {
            0 if w.nodes.len() < 8 => {
                let i = w.add_node();
                let at = w.step + 5;
                w.scheduled.push((at, i, MemberStatus::Up));
            }
            1 if up.len() > 2 => {
                let i = up[w.rng.below(up.len() as u64) as usize];
                w.log.push(format!("step {} node {i} crashes", w.step));
                w.nodes[i].alive = false;
                w.downed_later(i);
            }
            2 if up.len() > 2 => {
                let i = up[w.rng.below(up.len() as u64) as usize];
                w.log.push(format!("step {} node {i} is cut off", w.step));
                w.nodes[i].isolated = true;
                w.downed_later(i);
            }
            3 if up.len() > 2 => {
                let i = up[w.rng.below(up.len() as u64) as usize];
                w.leave(i);
            }
            _ => {}
        }
    }
    w.settle();
}

impl World {
    /// The others notice, down and remove the node after a while.
    fn downed_later(&mut self, i: usize) {
        let down = self.step + 20 + self.rng.below(100) as u32;
        let removed = down + 10 + self.rng.below(50) as u32;
        self.scheduled.push((down, i, MemberStatus::Down));
        self.scheduled.push((removed, i, MemberStatus::Removed));
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::mem::take(&mut self.log);
            LOG.with(|l| *l.borrow_mut() = log);
        }
    }
}

impl World {
    fn refresh_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.refresh(i);
        }
        self.settle_network();
    }

    fn settle_network(&mut self) {
        let keys: Vec<(usize, usize)> = self.net.keys().copied().collect();
        for (from, to) in keys {
            while let Some(p) = self.net.get_mut(&(from, to)).and_then(|q| q.pop_front()) {
                self.receive(from, to, p);
            }
        }
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            out += &format!(
                "node {i} alive={} status={:?} follows={:?} registered={} hosted={:?} stopping={:?}\n  coordinator {:?} homes={:?} handoffs={:?}\n  region {:?}\n",
                n.alive,
                self.status(i),
                n.region.coordinator().map(|c| c.address.port()),
                n.region.is_registered(),
                n.region.hosted(),
                n.stopping,
                n.coordinator.phase(),
                n.coordinator.homes().iter().map(|(s, h)| (*s, h.address.port())).collect::<Vec<_>>(),
                n.coordinator.handoffs_in_progress(),
                n.region,
            );
        }
        for ((f, t), q) in &self.net {
            if !q.is_empty() {
                out += &format!("net {f}->{t}: {q:?}\n");
            }
        }
        out
    }

    /// A graceful leave as the system's shutdown does it: the region hands every shard off
    /// while its node is still Up, then the node leaves the membership.
    fn leave(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].region.leave(now);
        self.drain_region(i);
        for _ in 0..5_000 {
            self.one_step();
            if self.nodes[i].region.is_drained() {
                break;
            }
        }
        assert!(
            self.nodes[i].region.is_drained(),
            "node {i} never handed its shards off\n{}",
            self.dump()
        );
        self.set_status(i, MemberStatus::Leaving);
        for _ in 0..50 {
            self.one_step();
        }
        self.set_status(i, MemberStatus::Exiting);
        for _ in 0..50 {
            self.one_step();
        }
        self.set_status(i, MemberStatus::Removed);
        // It sees itself removed, so its region stops (dropping what it still holds), and then
        // it is gone.
        self.refresh(i);
        assert!(self.nodes[i].region.is_stopped(), "{}", self.dump());
        self.nodes[i].alive = false;
    }
}

thread_local! {
    static LOG: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn short(p: &Packet) -> String {
    match p {
        Packet::Data(m) => format!("{m:?}"),
        Packet::Control(c) => {
            let port = |u: &UniqueAddress| u.address.port();
            match c {
                ShardingWire::BeginHandOff { shard, owner, .. } => {
                    format!("BeginHandOff shard {shard} owner {}", port(owner))
                }
                ShardingWire::ShardHome { shard, home, .. } => {
                    format!("ShardHome shard {shard} home {}", port(home))
                }
                ShardingWire::HandOffAck { shard, from, .. } => {
                    format!("HandOffAck shard {shard} from {}", port(from))
                }
                ShardingWire::GetShardHome { shard, region } => {
                    format!("GetShardHome shard {shard} from {}", port(region))
                }
                ShardingWire::ShardStopped { shard, region, .. } => {
                    format!("ShardStopped shard {shard} at {}", port(region))
                }
                other => format!("{other:?}"),
            }
        }
    }
}

/// Runs `history` for each seed, naming the seed that fails.
fn for_seeds(count: u64, history: fn(u64)) {
    let first = std::env::var("CASTY_SHARDING_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let count = std::env::var("CASTY_SHARDING_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(count);
    let seeds: Vec<u64> = match first {
        Some(s) => vec![s],
        None => (0..count).collect(),
    };
    for seed in seeds {
        if std::panic::catch_unwind(|| history(seed)).is_err() {
            LOG.with(|l| {
                let filter = std::env::var("CASTY_SHARDING_LOG").ok();
                for line in l.borrow().iter() {
                    if filter.as_ref().is_none_or(|f| line.contains(f.as_str())) {
                        eprintln!("{line}");
                    }
                }
            });
            panic!("seed {seed} failed; replay with CASTY_SHARDING_SEED={seed}");
        }
    }
}

#[test]
fn without_faults_every_message_arrives_once_in_order_and_no_shard_runs_twice() {
    for_seeds(64, quiet_history);
}

#[test]
fn through_crashes_and_partitions_no_shard_runs_twice_and_no_message_is_handled_twice() {
    for_seeds(64, faulty_history);
}
