//! Scripted histories of the sharding protocol, step by step: a few regions and coordinators,
//! a network that keeps order per pair of nodes, membership views handed to each node by hand,
//! and an allocation strategy that places and moves shards where the script says. Each test
//! names the rule its history checks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::allocation::{AllocationStrategy, Allocations};
use super::coordinator::{Coordinator, CoordinatorSettings};
use super::region::{Delivery, Origin, Region, RegionCommand, RegionSettings};
use super::wire::ShardingWire;
use super::ShardId;
use crate::cluster::{Member, MemberStatus, UniqueAddress};
use crate::remote::NodeAddress;

/// Places every shard on the region named in `target`, and moves the shards in `moves` at the
/// next rebalance.
#[derive(Debug, Default)]
struct Scripted {
    target: Mutex<Option<UniqueAddress>>,
    moves: Mutex<BTreeSet<ShardId>>,
}

impl AllocationStrategy for Scripted {
    fn allocate(
        &self,
        _shard: ShardId,
        _requester: &UniqueAddress,
        allocations: &Allocations,
    ) -> Option<UniqueAddress> {
        let target = self.target.lock().unwrap().clone();
        target.filter(|t| allocations.contains_key(t))
    }

    fn rebalance(&self, _: &Allocations, _: &BTreeSet<ShardId>) -> BTreeSet<ShardId> {
        std::mem::take(&mut *self.moves.lock().unwrap())
    }
}

/// A message for an entity of shard 0: its sender's node and its number among that sender's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Msg {
    from: usize,
    seq: u64,
}

#[derive(Debug)]
enum Packet {
    Control(ShardingWire),
    Data(Msg),
}

const SHARD: ShardId = 0;

struct Node {
    addr: UniqueAddress,
    region: Region<Msg>,
    coordinator: Coordinator,
    /// Shards asked to stop, not yet reported stopped.
    stopping: BTreeSet<ShardId>,
}

struct Script {
    now: Instant,
    strategy: Arc<Scripted>,
    nodes: Vec<Node>,
    members: Vec<Member>,
    net: BTreeMap<(usize, usize), VecDeque<Packet>>,
    sent: BTreeMap<usize, u64>,
    /// Every message handled, in order: (node that handled it, message).
    handled: Vec<(usize, Msg)>,
}

fn address(i: usize) -> UniqueAddress {
    UniqueAddress::new(
        NodeAddress::new("review", "10.0.0.1", 2551 + i as u16),
        10 + i as u64,
    )
}

impl Script {
    /// `n` nodes, all Up, node 0 the oldest; every node has seen the view and registered.
    fn new(n: usize) -> Script {
        let strategy = Arc::new(Scripted::default());
        let mut s = Script {
            now: Instant::now(),
            strategy: strategy.clone(),
            nodes: Vec::new(),
            members: Vec::new(),
            net: BTreeMap::new(),
            sent: BTreeMap::new(),
            handled: Vec::new(),
        };
        for i in 0..n {
            let addr = address(i);
            s.nodes.push(Node {
                addr: addr.clone(),
                region: Region::new(
                    addr.clone(),
                    RegionSettings {
                        num_shards: 4,
                        role: None,
                        buffer_size: 100,
                        retry_interval: Duration::from_millis(50),
                    },
                ),
                coordinator: Coordinator::new(
                    addr.clone(),
                    CoordinatorSettings {
                        role: None,
                        handoff_timeout: Duration::from_millis(300),
                        retry_interval: Duration::from_millis(50),
                        down_removal_margin: Duration::from_millis(500),
                        rebalance_interval: Duration::from_millis(100),
                    },
                    strategy.clone(),
                ),
                stopping: BTreeSet::new(),
            });
            s.members.push(
                Member::joining(addr, Vec::<String>::new())
                    .with_status(MemberStatus::Up)
                    .with_up_number(1 + i as u32),
            );
        }
        for i in 0..n {
            s.view(i);
        }
        s.deliver_all();
        s
    }

    fn set_status(&mut self, i: usize, status: MemberStatus) {
        let addr = self.nodes[i].addr.clone();
        for m in &mut self.members {
            if m.node == addr {
                m.status = status;
            }
        }
    }

    /// Node `i` sees the membership as it is now.
    fn view(&mut self, i: usize) {
        let view = self.members.clone();
        let now = self.now;
        self.nodes[i].region.members_changed(&view, now);
        let out = self.nodes[i].coordinator.members_changed(view, now);
        for s in out {
            self.send(i, &s.to, s.msg);
        }
        self.drain(i);
    }

    fn send(&mut self, from: usize, to: &UniqueAddress, msg: ShardingWire) {
        let j = self.nodes.iter().position(|n| n.addr == *to).unwrap();
        self.net
            .entry((from, j))
            .or_default()
            .push_back(Packet::Control(msg));
    }

    fn drain(&mut self, i: usize) {
        loop {
            let commands: Vec<RegionCommand> = self.nodes[i].region.take_commands().collect();
            let flushed: Vec<Delivery<Msg>> = self.nodes[i].region.take_flushed().collect();
            if commands.is_empty() && flushed.is_empty() {
                return;
            }
            for c in commands {
                match c {
                    RegionCommand::Send { to, msg } => self.send(i, &to, msg),
                    RegionCommand::StopShard(s) => {
                        self.nodes[i].stopping.insert(s);
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
        match d {
            Delivery::Local(m) => self.handled.push((i, m)),
            Delivery::Remote(to, m) => {
                let j = self.nodes.iter().position(|n| n.addr == to).unwrap();
                self.net
                    .entry((i, j))
                    .or_default()
                    .push_back(Packet::Data(m));
            }
            Delivery::Dead(m, why) => panic!("{m:?} dropped: {why:?}"),
        }
    }

    /// Node `i` tells the next message of its own to the entity.
    fn tell(&mut self, i: usize) {
        let seq = self.sent.entry(i).or_insert(0);
        *seq += 1;
        let m = Msg { from: i, seq: *seq };
        let now = self.now;
        if let Some(d) = self.nodes[i].region.route(SHARD, Origin::Local, m, now) {
            self.deliver(i, d);
        }
        self.drain(i);
    }

    /// Delivers the next packet from `from` to `to`.
    fn step(&mut self, from: usize, to: usize) {
        let p = self
            .net
            .get_mut(&(from, to))
            .and_then(|q| q.pop_front())
            .unwrap_or_else(|| panic!("nothing in flight from {from} to {to}"));
        let now = self.now;
        match p {
            Packet::Control(msg) if msg.is_for_coordinator() => {
                let out = self.nodes[to].coordinator.receive(msg, now);
                for s in out {
                    self.send(to, &s.to, s.msg);
                }
            }
            Packet::Control(msg) => self.nodes[to].region.receive(msg, now),
            Packet::Data(m) => {
                if let Some(d) = self.nodes[to]
                    .region
                    .route(SHARD, Origin::Forwarded, m, now)
                {
                    self.deliver(to, d);
                }
            }
        }
        self.drain(to);
    }

    /// Delivers everything in flight from `from` to `to`.
    fn flush(&mut self, from: usize, to: usize) {
        while self.net.get(&(from, to)).is_some_and(|q| !q.is_empty()) {
            self.step(from, to);
        }
    }

    fn deliver_all(&mut self) {
        while let Some(&(from, to)) = self.net.iter().find(|(_, q)| !q.is_empty()).map(|(k, _)| k) {
            self.step(from, to);
        }
    }

    /// Node `i`'s entities of the shard have all stopped.
    fn stopped(&mut self, i: usize) {
        assert!(self.nodes[i].stopping.remove(&SHARD));
        let now = self.now;
        self.nodes[i].region.shard_stopped(SHARD, now);
        self.drain(i);
    }

    fn tick(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].region.tick(now);
        let out = self.nodes[i].coordinator.tick(now);
        for s in out {
            self.send(i, &s.to, s.msg);
        }
        self.drain(i);
    }

    /// The numbers of the messages from node `from`, in the order they were handled.
    fn handled_from(&self, from: usize) -> Vec<u64> {
        self.handled
            .iter()
            .filter(|(_, m)| m.from == from)
            .map(|(_, m)| m.seq)
            .collect()
    }
}

/// Rule 2 (no loss, in order, without faults), broken by a coordinator handover during a
/// handoff. The owner B is still stopping the shard (its entities finish long mailboxes) when
/// the oldest node A leaves and B takes over. B reports the shard as hosted; C, whose messages
/// waited since the handoff began, asks the new coordinator and is told "B", so it forwards to
/// B, where they wait behind the stop. Once stopped, B places the shard on C: C's next message is
/// handled at once, before the earlier ones B sends back.
#[test]

fn a_handoff_that_spans_a_coordinator_handover_keeps_each_senders_order() {
    let (a, b, c) = (0, 1, 2);
    let mut s = Script::new(3);
    assert!(s.nodes[a].coordinator.is_active());
    // The shard lives at B; C's first message is handled there.
    *s.strategy.target.lock().unwrap() = Some(address(b));
    s.tell(c);
    s.deliver_all();
    assert_eq!(s.handled, vec![(b, Msg { from: c, seq: 1 })]);
    // A moves it: every region acknowledges to B, which starts stopping its entities.
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(a);
    s.deliver_all();
    assert!(s.nodes[b].stopping.contains(&SHARD));
    // C's second message waits at C for the shard's next home.
    s.tell(c);
    s.deliver_all();
    // A leaves gracefully: its region holds nothing, so it is drained at once.
    let now = s.now;
    s.nodes[a].region.leave(now);
    s.drain(a);
    s.deliver_all();
    assert!(s.nodes[a].region.is_drained());
    s.set_status(a, MemberStatus::Leaving);
    for i in [a, b, c] {
        s.view(i);
    }
    s.deliver_all();
    // B and C see A Exiting before A does: B takes over, and A hands over.
    s.set_status(a, MemberStatus::Exiting);
    s.view(b);
    s.view(c);
    s.deliver_all();
    assert!(s.nodes[b].coordinator.is_active());
    assert_eq!(s.nodes[c].region.coordinator(), Some(&address(b)));
    // C was told the shard lives at B, and sent its waiting message there.
    assert!(s.handled_from(c) == vec![1]);
    // C's third message follows the same path.
    s.tell(c);
    s.deliver_all();
    // B's entities have stopped: B places the shard on C, and tells C first.
    *s.strategy.target.lock().unwrap() = Some(address(c));
    s.stopped(b);
    // B's coordinator and region talk to each other locally; then C hears its new shard.
    s.flush(b, b);
    s.step(b, c);
    assert!(s.nodes[c].region.is_active(SHARD));
    // C's fourth message.
    s.tell(c);
    s.deliver_all();
    assert_eq!(s.handled_from(c), vec![1, 2, 3, 4]);
}

/// Rule 2 (no loss, in order, without faults), broken by an acknowledgement from an earlier
/// handoff. A handoff asked for again (after `handoff_timeout`) makes every region acknowledge
/// twice; a second acknowledgement that reaches the old owner after it stopped the shard is kept
/// as an early one, and counted, much later, for the next handoff of the shard from that node.
/// The owner then stops before the messages the acknowledging region forwarded to it have
/// arrived; they reach the next home by way of the old owner, after later ones sent directly.
#[test]
fn an_acknowledgement_of_an_earlier_handoff_does_not_count_for_the_next() {
    let (a, b, c) = (0, 1, 2);
    let mut s = Script::new(3);
    // The shard lives at B; C's first message is handled there.
    *s.strategy.target.lock().unwrap() = Some(address(b));
    s.tell(c);
    s.deliver_all();
    // A moves it; B waits for its entities to stop.
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(a);
    s.deliver_all();
    assert!(s.nodes[b].stopping.contains(&SHARD));
    // The stop takes longer than the handoff timeout: A asks again. A's own region acknowledges
    // again at once; the word to C is slow.
    s.now += Duration::from_millis(300);
    s.tick(a);
    s.flush(a, a);
    s.flush(a, b);
    // B stops; A places the shard on itself.
    *s.strategy.target.lock().unwrap() = Some(address(a));
    s.stopped(b);
    s.flush(b, a);
    s.flush(a, a);
    assert!(s.nodes[a].region.is_active(SHARD));
    // Now C hears the repeated handoff, and acknowledges it to B, which no longer hosts it.
    s.flush(a, c);
    s.flush(c, b);
    // C's second message goes to A.
    s.tell(c);
    s.deliver_all();
    assert_eq!(s.handled_from(c), vec![1, 2]);
    // The shard moves back to B.
    *s.strategy.target.lock().unwrap() = Some(address(b));
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(a);
    s.deliver_all();
    s.stopped(a);
    s.deliver_all();
    assert!(s.nodes[b].region.is_active(SHARD));
    // C's third message is on its way to B.
    s.tell(c);
    s.flush(c, a);
    s.flush(a, c);
    assert_eq!(s.net[&(c, b)].len(), 1);
    // The shard moves to A again. B must wait for C's acknowledgement, which follows the third
    // message on the path from C.
    *s.strategy.target.lock().unwrap() = Some(address(a));
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(a);
    s.flush(a, a);
    s.flush(a, b);
    let stopped_early = s.nodes[b].stopping.contains(&SHARD);
    if stopped_early {
        s.stopped(b);
        s.flush(b, a);
        s.flush(a, a);
        // C hears the move, and its fourth message goes straight to A.
        s.flush(a, c);
        s.tell(c);
        s.flush(c, a);
        s.flush(a, c);
        s.flush(c, a);
    }
    s.deliver_all();
    if s.nodes[b].stopping.contains(&SHARD) {
        // C's acknowledgement came after its third message: now B stops.
        s.stopped(b);
        s.deliver_all();
    }
    s.tell(c);
    s.deliver_all();
    assert_eq!(s.handled_from(c), (1..=s.sent[&c]).collect::<Vec<_>>());
    assert!(!stopped_early, "B stopped before C acknowledged");
}

/// Rule 2 (no loss, in order, without faults), broken by an acknowledgement of a handoff that
/// a coordinator handover cancelled. A new coordinator keeps the allocation (and so the epoch)
/// the owner reports, so an acknowledgement sent for the old coordinator's handoff, arriving
/// after the owner followed the new one, is kept as an early one and counted for the new
/// coordinator's handoff of the same allocation: the owner stops before the messages the
/// acknowledging region forwarded since have arrived.
#[test]
fn an_acknowledgement_of_a_handoff_cancelled_by_a_handover_does_not_count_for_the_next() {
    let (a, b, c, d) = (0, 1, 2, 3);
    let mut s = Script::new(4);
    *s.strategy.target.lock().unwrap() = Some(address(c));
    s.tell(d);
    s.deliver_all();
    assert_eq!(s.handled_from(d), vec![1]);
    // A starts moving the shard off C; D's acknowledgement to C is slow.
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(a);
    s.flush(a, a);
    s.flush(a, b);
    s.flush(a, d);
    // A leaves; B and D see it Exiting first; B takes over and A hands over.
    let now = s.now;
    s.nodes[a].region.leave(now);
    s.drain(a);
    s.flush(a, a);
    s.set_status(a, MemberStatus::Leaving);
    for i in [a, b, c, d] {
        s.view(i);
    }
    s.set_status(a, MemberStatus::Exiting);
    for i in [b, c, d] {
        s.view(i);
    }
    s.flush(b, a);
    // C hears the handoff, A's acknowledgement, then that A retired: it follows B.
    s.flush(a, c);
    assert_eq!(s.nodes[c].region.coordinator(), Some(&address(b)));
    // The old acknowledgements arrive.
    s.flush(d, c);
    s.flush(b, c);
    s.deliver_all();
    assert!(s.nodes[b].coordinator.is_active());
    // D's second message goes to C.
    s.tell(d);
    s.flush(d, b);
    s.flush(b, d);
    assert_eq!(s.net[&(d, c)].len(), 1);
    // B moves the shard to itself. C must wait for D's acknowledgement, behind the message.
    *s.strategy.target.lock().unwrap() = Some(address(b));
    s.strategy.moves.lock().unwrap().insert(SHARD);
    s.now += Duration::from_millis(200);
    s.tick(b);
    s.flush(b, b);
    s.flush(b, a);
    s.flush(b, c);
    s.flush(a, c);
    let stopped_early = s.nodes[c].stopping.contains(&SHARD);
    if stopped_early {
        s.stopped(c);
        s.flush(c, b);
        s.flush(b, b);
        // D hears the move, and its third message goes straight to B.
        s.flush(b, d);
        s.tell(d);
        s.flush(d, b);
        s.flush(b, d);
        s.flush(d, b);
    }
    s.deliver_all();
    if s.nodes[c].stopping.contains(&SHARD) {
        s.stopped(c);
        s.deliver_all();
    }
    s.tell(d);
    s.deliver_all();
    assert_eq!(s.handled_from(d), (1..=s.sent[&d]).collect::<Vec<_>>());
    assert!(!stopped_early, "C stopped before D acknowledged");
}
