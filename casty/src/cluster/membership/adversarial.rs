//! Adversarial tests of the membership state machine: a simulated network that loses, duplicates,
//! delays, reorders and replays messages, cuts links, crashes and restarts nodes, with every rule
//! of cluster membership checked after every step.
//!
//! [`Sim`] drives several [`Membership`] machines by hand. Each node is one incarnation at a time
//! (a restart draws a new uid); messages wait in flight until a schedule delivers, drops,
//! duplicates or replays them. After every input it checks:
//! - every view is well formed ([`Gossip::check`]);
//! - per observer and member, the status never goes down, and a member gone from a view never
//!   comes back into it; a stopped incarnation never becomes a member again anywhere;
//! - a node's clock never goes backwards;
//! - two views with the same clock are the same view, over all nodes and all time;
//! - two nodes holding the same view, both converged, agree on the leader;
//! - a node moves members Up, Exiting or out only on a tick where it leads a converged view;
//! - running members all descend from one formation of a cluster;
//! - events per observer and member go up the lifecycle, end with one `MemberRemoved`, and
//!   unreachable and reachable alternate.
//!
//! The proptests run random schedules through it. The scripted histories below each broke a rule
//! once (found by the random search or by reasoning) and are kept as regression tests.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};

fn addr(port: u16) -> NodeAddress {
    NodeAddress::new("c", "127.0.0.1", port)
}

fn settings(seeds: &[u16]) -> MembershipSettings {
    MembershipSettings::default()
        .seed_nodes(seeds.iter().map(|p| addr(*p)))
        .retry_interval(Duration::from_secs(1))
        .seed_node_timeout(Duration::from_secs(5))
        .retry_join_after(Duration::from_secs(10))
        .weakly_up_after(Some(Duration::from_secs(3)))
}

/// One message in flight.
#[derive(Debug, Clone)]
struct Msg {
    from: u16,
    to: u16,
    /// The system the message is meant for: a node of another system never takes it.
    system: String,
    msg: ClusterMsg,
}

/// One port: its current incarnation.
struct Node {
    m: Membership,
    crashed: bool,
    stopped: bool,
}

impl Node {
    fn running(&self) -> bool {
        !self.crashed && !self.stopped
    }
}

/// Where a member's events stand for one observer.
#[derive(Debug, Default, Clone)]
struct EventState {
    status: Option<(MemberStatus, u32)>,
    removed: bool,
    unreachable: bool,
}

/// A network of membership machines with the rules checked after every step.
struct Sim {
    settings: MembershipSettings,
    nodes: BTreeMap<u16, Node>,
    next_uid: u64,
    flight: Vec<Msg>,
    /// Every message ever sent (the last few hundred), for replays.
    sent: Vec<Msg>,
    cut: BTreeSet<(u16, u16)>,
    now: Instant,
    wall_ms: u64,
    /// The view first seen with each clock.
    by_clock: HashMap<VectorClock, Gossip>,
    /// (observer uid, member uid) → the highest status the observer's view has held.
    status_seen: BTreeMap<(u64, u64), MemberStatus>,
    /// (observer uid, member uid): the member has left the observer's view.
    gone: BTreeSet<(u64, u64)>,
    events: BTreeMap<(u64, u64), EventState>,
    /// Incarnations that stopped, or crashed.
    dead: BTreeSet<u64>,
    /// Incarnations that crashed.
    crashed: BTreeSet<u64>,
    /// Incarnations stopped by a refusal.
    refused: BTreeSet<u64>,
    /// Member incarnation uid → the uid of the incarnation that formed its cluster.
    origin: BTreeMap<u64, u64>,
    /// Whether to check that running members all belong to one cluster.
    check_one_cluster: bool,
    /// What happened, for the message of a failed check.
    log: Vec<String>,
    /// Known breaks (a part of their message) that end a run instead of failing it.
    tolerated: Vec<&'static str>,
    /// The known break that ended the run.
    halted: Option<String>,
    /// Known breaks (a part of their message) that neither fail nor end a run.
    overlooked: Vec<&'static str>,
}

impl Sim {
    fn new(settings: MembershipSettings) -> Self {
        Sim {
            settings,
            nodes: BTreeMap::new(),
            next_uid: 1,
            flight: Vec::new(),
            sent: Vec::new(),
            cut: BTreeSet::new(),
            now: Instant::now(),
            wall_ms: 1_000_000,
            by_clock: HashMap::new(),
            status_seen: BTreeMap::new(),
            gone: BTreeSet::new(),
            events: BTreeMap::new(),
            dead: BTreeSet::new(),
            crashed: BTreeSet::new(),
            refused: BTreeSet::new(),
            origin: BTreeMap::new(),
            check_one_cluster: true,
            log: Vec::new(),
            tolerated: Vec::new(),
            halted: None,
            overlooked: Vec::new(),
        }
    }

    /// Reports a broken rule: panics, unless this run tolerates that break (`tolerated`), which
    /// ends the run quietly instead, or overlooks it (`overlooked`).
    fn fail(&mut self, what: String) {
        if self.halted.is_some() {
            return;
        }
        if self.overlooked.iter().any(|k| what.contains(k)) {
            return;
        }
        if self.tolerated.iter().any(|k| what.contains(k)) {
            self.halted = Some(what);
            return;
        }
        let tail: Vec<&String> = self.log.iter().rev().take(40).collect();
        let views: Vec<String> = self
            .nodes
            .iter()
            .map(|(p, n)| {
                format!(
                    "node {p} {} running={} member={}: {}",
                    n.m.me().uid,
                    n.running(),
                    n.m.is_member(),
                    describe(n.m.gossip())
                )
            })
            .collect();
        panic!(
            "RULE BROKEN: {what}\nviews:\n{}\nlast steps (newest first):\n{}",
            views.join("\n"),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Starts the node at `port`, as a new incarnation if it ran before.
    fn start(&mut self, port: u16) {
        if self.nodes.get(&port).is_some_and(Node::running) {
            return;
        }
        let uid = u64::from(port) * 1000 + self.next_uid;
        self.next_uid += 1;
        let me = UniqueAddress::new(addr(port), uid);
        self.log.push(format!("start {port} as {uid}"));
        self.nodes.insert(
            port,
            Node {
                m: Membership::new(me, self.settings.clone()),
                crashed: false,
                stopped: false,
            },
        );
        self.input(port, Input::Start);
    }

    fn crash(&mut self, port: u16) {
        if let Some(n) = self.nodes.get_mut(&port) {
            if n.running() {
                n.crashed = true;
                self.dead.insert(n.m.me().uid);
                self.crashed.insert(n.m.me().uid);
                self.log.push(format!("crash {port}"));
            }
        }
    }

    fn a_member_runs(&self) -> bool {
        self.nodes.values().any(|n| n.running() && n.m.is_member())
    }

    fn running(&self, port: u16) -> bool {
        self.nodes.get(&port).is_some_and(Node::running)
    }

    fn alive(&self, node: &UniqueAddress) -> bool {
        self.nodes
            .get(&node.address.port())
            .is_some_and(|n| n.running() && n.m.me() == node)
    }

    fn view(&self, port: u16) -> &Gossip {
        self.nodes[&port].m.gossip()
    }

    fn linked(&self, a: u16, b: u16) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Hands `input` to the node at `port` (if it runs), carries out its commands and checks
    /// every rule.
    fn input(&mut self, port: u16, input: Input) {
        if self.halted.is_some() {
            return;
        }
        let Some(node) = self.nodes.get_mut(&port) else {
            return;
        };
        if !node.running() {
            return;
        }
        let me = node.m.me().clone();
        let before = node.m.gossip().clone();
        let was_member = node.m.is_member();
        let confirmed_before = node.m.exiting_confirmed.clone();
        let is_tick = matches!(input, Input::Tick { .. });
        let welcomed_by = match &input {
            Input::Received(ClusterMsg::Welcome { from, .. }) => Some(from.uid),
            // A member's view that holds a node still waiting to be let in is its welcome.
            Input::Received(ClusterMsg::Envelope { from, .. }) => Some(from.uid),
            _ => None,
        };
        let label = short(&input);
        let out = node.m.handle(input, self.now, self.wall_ms);
        let is_member = node.m.is_member();
        let after = node.m.gossip().clone();
        self.log.push(format!(
            "{port}#{} <- {label}: {} -> {}",
            me.uid,
            describe(&before),
            describe(&after)
        ));
        for c in out {
            match c {
                Command::Send { to, msg } => {
                    let m = Msg {
                        from: port,
                        to: to.port(),
                        system: to.system().to_string(),
                        msg,
                    };
                    self.sent.push(m.clone());
                    if self.sent.len() > 400 {
                        self.sent.remove(0);
                    }
                    self.flight.push(m);
                }
                Command::Publish(e) => self.check_event(&me, &e),
                Command::Refused { .. } => {}
                Command::Stop(reason) => {
                    if reason == StopReason::Refused {
                        self.refused.insert(me.uid);
                    }
                    self.log
                        .push(format!("{port}#{} stops: {reason:?}", me.uid));
                    if let Some(n) = self.nodes.get_mut(&port) {
                        n.stopped = true;
                    }
                    self.dead.insert(me.uid);
                }
            }
        }
        if !was_member && is_member {
            let origin = match welcomed_by {
                Some(by) => self.origin.get(&by).copied().unwrap_or(by),
                None => me.uid,
            };
            self.origin.insert(me.uid, origin);
        }
        self.check_step(&me, &before, &after, is_tick, &confirmed_before);
        self.check_global();
    }

    /// The rules about one node's step from `before` to `after`.
    fn check_step(
        &mut self,
        me: &UniqueAddress,
        before: &Gossip,
        after: &Gossip,
        is_tick: bool,
        confirmed_before: &BTreeSet<UniqueAddress>,
    ) {
        if let Err(e) = after.check() {
            self.fail(format!("view of {me} is malformed: {e}"));
        }
        if !matches!(
            after.version().compare(before.version()),
            Causal::Same | Causal::After
        ) {
            self.fail(format!(
                "clock of {me} went back: {:?} -> {:?}",
                before.version(),
                after.version()
            ));
        }
        let clash = self
            .by_clock
            .get(after.version())
            .filter(|old| !old.same_state(after))
            .map(describe);
        if let Some(old) = clash {
            self.fail(format!(
                "two views with clock {:?}: {old} and, at {me}, {}",
                after.version(),
                describe(after)
            ));
        } else if !self.by_clock.contains_key(after.version()) && after.members().next().is_some() {
            self.by_clock.insert(after.version().clone(), after.clone());
        }
        for m in after.members() {
            let key = (me.uid, m.node.uid);
            if self.gone.contains(&key) {
                self.fail(format!("{} came back into the view of {me}", m.node));
            }
            let prev = self.status_seen.get(&key).copied();
            if prev.is_some_and(|p| p > m.status) {
                self.fail(format!(
                    "{} went from {prev:?} to {:?} in the view of {me}",
                    m.node, m.status
                ));
            }
            self.status_seen.insert(key, m.status);
        }
        for m in before.members() {
            if after.member(&m.node).is_none() {
                self.gone.insert((me.uid, m.node.uid));
            }
        }
        for n in after.tombstones().keys() {
            self.gone.insert((me.uid, n.uid));
        }
        if is_tick && before.members().next().is_some() {
            let leader_move = before.members().any(|m| {
                let now = after.member(&m.node).map(|a| a.status);
                match m.status {
                    MemberStatus::Joining | MemberStatus::WeaklyUp => {
                        now.is_none() || now == Some(MemberStatus::Up)
                    }
                    MemberStatus::Leaving => now.is_none() || now == Some(MemberStatus::Exiting),
                    _ => now.is_none(),
                }
            });
            if leader_move
                && !(before.converged(me, confirmed_before)
                    && before.leader(me).as_ref() == Some(me))
            {
                self.fail(format!(
                    "{me} made a leader's move without leading a converged view"
                ));
            }
        }
    }

    /// The rules across nodes.
    fn check_global(&mut self) {
        if let Some(broken) = self.global_break() {
            self.fail(broken);
        }
    }

    fn global_break(&self) -> Option<String> {
        let members: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.running() && n.m.is_member())
            .collect();
        for a in &members {
            for b in &members {
                let (ga, gb) = (a.m.gossip(), b.m.gossip());
                if a.m.me() < b.m.me()
                    && ga.same_state(gb)
                    && ga.converged(a.m.me(), &a.m.exiting_confirmed)
                    && gb.converged(b.m.me(), &b.m.exiting_confirmed)
                    && ga.leader(a.m.me()) != gb.leader(b.m.me())
                {
                    return Some(format!(
                        "{} and {} hold one converged view and disagree on the leader",
                        a.m.me(),
                        b.m.me()
                    ));
                }
            }
        }
        if self.check_one_cluster {
            let origins: BTreeSet<u64> = members
                .iter()
                .filter_map(|n| self.origin.get(&n.m.me().uid).copied())
                .collect();
            if origins.len() > 1 {
                return Some(format!("two clusters run at once, formed by {origins:?}"));
            }
        }
        None
    }

    fn check_event(&mut self, me: &UniqueAddress, e: &ClusterEvent) {
        let Some(m) = e.member() else {
            return;
        };
        let key = (me.uid, m.node.uid);
        let mut st = self.events.get(&key).cloned().unwrap_or_default();
        if st.removed {
            self.fail(format!("{me} published {e:?} after MemberRemoved"));
        }
        match e {
            ClusterEvent::MemberRemoved { .. } => st.removed = true,
            ClusterEvent::UnreachableMember(_) => {
                if st.unreachable {
                    self.fail(format!("{me} published Unreachable twice for {}", m.node));
                }
                st.unreachable = true;
            }
            ClusterEvent::ReachableMember(_) => {
                if !st.unreachable {
                    self.fail(format!(
                        "{me} published Reachable for {} that was not unreachable",
                        m.node
                    ));
                }
                st.unreachable = false;
            }
            _ => {
                let now = (m.status, m.up_number);
                if let Some(prev) = st.status {
                    let rises = now.0 > prev.0 || (now.0 == prev.0 && now.1 < prev.1);
                    if !rises {
                        self.fail(format!(
                            "{me} published {:?} for {} after {:?}",
                            now.0, m.node, prev.0
                        ));
                    }
                }
                st.status = Some(now);
            }
        }
        self.events.insert(key, st);
    }

    fn deliver(&mut self, i: usize) {
        if self.flight.is_empty() {
            return;
        }
        let m = self.flight.remove(i % self.flight.len());
        self.deliver_msg(m);
    }

    fn deliver_msg(&mut self, m: Msg) {
        let system_ok = self
            .nodes
            .get(&m.to)
            .is_some_and(|n| n.m.me().address.system() == m.system);
        if system_ok && self.linked(m.from, m.to) {
            self.input(m.to, Input::Received(m.msg));
        }
    }

    /// Delivers every message in flight, and those they cause; fails if that never ends.
    fn deliver_all(&mut self) {
        let mut budget = 5_000;
        while !self.flight.is_empty() {
            if budget == 0 {
                let n = self.flight.len();
                self.fail(format!("messages never stop: {n} still in flight"));
                self.flight.clear();
                return;
            }
            budget -= 1;
            let m = self.flight.remove(0);
            self.deliver_msg(m);
        }
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.wall_ms += secs * 1000;
    }

    fn tick(&mut self, port: u16, rand: u64) {
        self.input(port, Input::Tick { rand });
    }

    /// A second passes; every running node ticks; all messages are delivered.
    fn round(&mut self, rand: &mut u64) {
        self.advance(1);
        let ports: Vec<u16> = self.nodes.keys().copied().collect();
        for p in ports {
            *rand ^= *rand << 13;
            *rand ^= *rand >> 7;
            *rand ^= *rand << 17;
            self.tick(p, *rand);
        }
        self.deliver_all();
    }

    /// The failure detector of every running member tells the truth: the members that do not run
    /// are unreachable, the others reachable.
    fn truthful_fd(&mut self) {
        let ports: Vec<u16> = self.nodes.keys().copied().collect();
        for p in ports {
            if !self.running(p) {
                continue;
            }
            let dead: BTreeSet<UniqueAddress> = self
                .view(p)
                .members()
                .map(|m| m.node.clone())
                .filter(|n| !self.alive(n))
                .collect();
            self.input(p, Input::Unreachable(dead));
        }
    }

    /// Downs, at every running member, the members that crashed, or stopped while the view
    /// still has them Joining to Leaving (their farewell was lost: they look crashed). A member
    /// the view has Exiting is not downed: its exit must complete by itself.
    fn down_the_dead(&mut self) {
        let ports: Vec<u16> = self.nodes.keys().copied().collect();
        for p in ports {
            if !self.running(p) {
                continue;
            }
            let dead: Vec<NodeAddress> = self
                .view(p)
                .members()
                .filter(|m| {
                    !self.alive(&m.node)
                        && (self.crashed.contains(&m.node.uid) || m.status < MemberStatus::Exiting)
                        && m.status != MemberStatus::Down
                })
                .map(|m| m.node.address.clone())
                .collect();
            for a in dead {
                self.input(p, Input::Down(a));
            }
        }
    }

    /// Heals every link, makes the failure detectors truthful, downs the dead, and runs rounds
    /// until every running node is a member of one converged view with everyone Up. Returns the
    /// number of rounds it took, or `None`.
    fn settle(&mut self, max_rounds: usize) -> Option<usize> {
        self.cut.clear();
        // Nodes that never started start now.
        for p in PORTS {
            if !self.nodes.contains_key(&p) {
                self.start(p);
            }
        }
        let mut rand = 0x9e37_79b9_7f4a_7c15;
        for round in 0..max_rounds {
            // Once no member runs (every one left, say), the first seed starts again.
            if !self.running(1) && !self.a_member_runs() {
                self.start(1);
            }
            self.truthful_fd();
            self.down_the_dead();
            self.round(&mut rand);
            if self.settled() {
                return Some(round);
            }
        }
        None
    }

    /// Every running node is a member; all hold the same converged view, whose members are the
    /// running nodes, all Up.
    ///
    /// A node that is no member, while none of its seeds runs as a member, is left out: it has
    /// nobody to ask (Akka's seed rule, by design).
    fn settled(&self) -> bool {
        if self.nodes.values().any(Node::running) && !self.a_member_runs() {
            return false;
        }
        let member_seed = self.settings.seed_nodes.iter().any(|s| {
            self.nodes
                .get(&s.port())
                .is_some_and(|n| n.running() && n.m.is_member())
        });
        let running: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.running() && (member_seed || n.m.is_member()))
            .collect();
        let Some(first) = running.first() else {
            return true;
        };
        let expected: BTreeSet<&UniqueAddress> = running.iter().map(|n| n.m.me()).collect();
        running.iter().all(|n| {
            let g = n.m.gossip();
            n.m.is_member()
                && g.same_state(first.m.gossip())
                && g.converged(n.m.me(), &BTreeSet::new())
                && g.members().map(|m| &m.node).collect::<BTreeSet<_>>() == expected
                && g.members().all(|m| m.status == MemberStatus::Up)
        })
    }

    fn describe_all(&self) -> String {
        self.nodes
            .iter()
            .map(|(p, n)| {
                format!(
                    "node {p}#{} running={} member={}: {}",
                    n.m.me().uid,
                    n.running(),
                    n.m.is_member(),
                    describe(n.m.gossip())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn short(input: &Input) -> String {
    match input {
        Input::Received(m) => match m {
            ClusterMsg::InitJoin { from } => format!("InitJoin from {}", from.uid),
            ClusterMsg::InitJoinAck { from, to } => {
                format!("InitJoinAck from {} to {}", from.uid, to.uid)
            }
            ClusterMsg::InitJoinNack { from, to } => {
                format!("InitJoinNack from {} to {}", from.uid, to.uid)
            }
            ClusterMsg::Join { node, .. } => format!("Join from {}", node.uid),
            ClusterMsg::Welcome { from, .. } => format!("Welcome from {}", from.uid),
            ClusterMsg::JoinRefused { from, reason, .. } => {
                format!("JoinRefused {reason:?} from {}", from.uid)
            }
            ClusterMsg::Status { from, version, .. } => {
                format!("Status {version:?} from {}", from.uid)
            }
            ClusterMsg::Envelope { from, to, gossip } => format!(
                "Envelope from {} to {}: {}",
                from.uid,
                to.uid,
                describe(gossip)
            ),
            ClusterMsg::ExitingConfirmed { node } => format!("ExitingConfirmed {}", node.uid),
        },
        Input::Tick { .. } => "tick".into(),
        other => format!("{other:?}"),
    }
}

/// A view in one line: members with status, unreachable marks, tombstones and the clock.
fn describe(g: &Gossip) -> String {
    let members: Vec<String> = g
        .members()
        .map(|m| format!("{}:{:?}", m.node.uid, m.status))
        .collect();
    let marks: Vec<String> = g
        .reachability()
        .records()
        .map(|(o, s, r)| format!("{}->{}:{r:?}", o.uid, s.uid))
        .collect();
    let tombs: Vec<u64> = g.tombstones().keys().map(|n| n.uid).collect();
    let seen: Vec<u64> = g.seen().iter().map(|n| n.uid).collect();
    format!(
        "[{}] marks {marks:?} tomb {tombs:?} seen {seen:?} clock {:?}",
        members.join(" "),
        g.version().entries().collect::<Vec<_>>()
    )
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Op {
    /// Start the node at the port (a new incarnation if it ran before).
    Start(u16),
    Crash(u16),
    Tick(u16, u64),
    /// A second passes.
    Advance,
    /// A second passes, every node ticks, and every message in flight arrives.
    Round(u64),
    /// Deliver the message in flight at this index (modulo their number).
    Deliver(usize),
    DeliverAll,
    Drop(usize),
    Duplicate(usize),
    /// Send again a message sent earlier, to the address it went to.
    Replay(usize),
    Cut(u16, u16),
    HealAll,
    /// The failure detector of the first node now holds the members at these ports (a bit
    /// mask) unreachable.
    Verdict(u16, u8),
    Leave(u16, u16),
    Down(u16, u16),
    /// A message that does not belong: for another incarnation, from a stranger, of another
    /// system.
    Junk(u16, u16, u8),
}

const PORTS: [u16; 4] = [1, 2, 3, 4];

fn port() -> impl Strategy<Value = u16> {
    prop::sample::select(PORTS.to_vec())
}

/// Faults that the protocol must survive without breaking a safety rule.
fn any_op(restart_first_seed: bool) -> impl Strategy<Value = Op> {
    let _ = restart_first_seed;
    let start = port();
    prop_oneof![
        2 => port().prop_map(Op::Start),
        1 => port().prop_map(Op::Crash),
        12 => (port(), any::<u64>()).prop_map(|(p, r)| Op::Tick(p, r)),
        6 => Just(Op::Advance),
        5 => any::<u64>().prop_map(Op::Round),
        20 => any::<usize>().prop_map(Op::Deliver),
        3 => Just(Op::DeliverAll),
        3 => any::<usize>().prop_map(Op::Drop),
        2 => any::<usize>().prop_map(Op::Duplicate),
        2 => any::<usize>().prop_map(Op::Replay),
        2 => (port(), port()).prop_map(|(a, b)| Op::Cut(a, b)),
        2 => Just(Op::HealAll),
        3 => (port(), any::<u8>()).prop_map(|(p, m)| Op::Verdict(p, m)),
        1 => (port(), port()).prop_map(|(a, b)| Op::Leave(a, b)),
        1 => (port(), port()).prop_map(|(a, b)| Op::Down(a, b)),
        1 => (port(), port(), any::<u8>()).prop_map(|(a, b, k)| Op::Junk(a, b, k)),
        2 => start.prop_map(Op::Start),
    ]
}

impl Sim {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Start(p) => {
                // The first seed restarts only while no member runs, when one cluster is
                // checked: otherwise a restart with every answer lost forms a second cluster, as
                // the seed rule allows (the first seed forms one when no other seed answers).
                let restart_of_first = p == 1 && self.nodes.contains_key(&1);
                if !(restart_of_first && self.check_one_cluster && self.a_member_runs()) {
                    self.start(p)
                }
            }
            Op::Crash(p) => self.crash(p),
            Op::Tick(p, r) => self.tick(p, r),
            Op::Advance => self.advance(1),
            Op::Round(r) => {
                let mut rand = r | 1;
                self.round(&mut rand);
            }
            Op::Deliver(i) => self.deliver(i),
            Op::DeliverAll => self.deliver_all(),
            Op::Drop(i) => {
                if !self.flight.is_empty() {
                    let n = self.flight.len();
                    self.flight.remove(i % n);
                }
            }
            Op::Duplicate(i) => {
                if !self.flight.is_empty() {
                    let m = self.flight[i % self.flight.len()].clone();
                    self.flight.push(m);
                }
            }
            Op::Replay(i) => {
                if !self.sent.is_empty() {
                    let m = self.sent[i % self.sent.len()].clone();
                    self.flight.push(m);
                }
            }
            Op::Cut(a, b) => {
                if a != b {
                    self.cut.insert((a.min(b), a.max(b)));
                }
            }
            Op::HealAll => self.cut.clear(),
            Op::Verdict(p, mask) => {
                if self.running(p) {
                    let set: BTreeSet<UniqueAddress> = self
                        .view(p)
                        .members()
                        .filter(|m| mask & (1 << (m.node.address.port() % 8)) != 0)
                        .map(|m| m.node.clone())
                        .collect();
                    self.input(p, Input::Unreachable(set));
                }
            }
            Op::Leave(at, who) => self.input(at, Input::Leave(addr(who))),
            Op::Down(at, who) => self.input(at, Input::Down(addr(who))),
            Op::Junk(to, about, kind) => self.junk(to, about, kind),
        }
    }

    fn junk(&mut self, to: u16, about: u16, kind: u8) {
        let Some(target) = self.nodes.get(&to) else {
            return;
        };
        let target = target.m.me().clone();
        let stale = UniqueAddress::new(addr(about), 7);
        let stranger = UniqueAddress::new(NodeAddress::new("other", "127.0.0.1", about), 9);
        let someone = self
            .nodes
            .get(&about)
            .map(|n| n.m.me().clone())
            .unwrap_or(stale.clone());
        let view = self
            .nodes
            .get(&about)
            .map(|n| n.m.gossip().clone())
            .unwrap_or_default();
        let msg = match kind % 9 {
            // A whole view meant for another incarnation of the receiver.
            0 => ClusterMsg::Envelope {
                from: someone,
                to: UniqueAddress::new(target.address.clone(), 5),
                gossip: Box::new(view),
            },
            // A view from an incarnation that is no member.
            1 => ClusterMsg::Envelope {
                from: stale,
                to: target,
                gossip: Box::new(view),
            },
            // A version from a stranger.
            2 => ClusterMsg::Status {
                from: stranger,
                version: view.version().clone(),
                seen_digest: 1,
            },
            // A welcome nobody asked for.
            3 => ClusterMsg::Welcome {
                from: someone,
                to: target.clone(),
                gossip: Box::new(view),
            },
            4 => ClusterMsg::Join {
                node: stranger,
                roles: BTreeSet::new(),
            },
            5 => ClusterMsg::InitJoin { from: stranger },
            6 => ClusterMsg::ExitingConfirmed { node: stale },
            7 => ClusterMsg::JoinRefused {
                from: someone,
                to: target.clone(),
                reason: JoinRefusal::RetryLater,
            },
            _ => ClusterMsg::Status {
                from: someone,
                version: VectorClock::new(),
                seen_digest: 0,
            },
        };
        self.input(to, Input::Received(msg));
    }
}

fn run(ops: &[Op], restart_first_seed: bool) -> Sim {
    run_with(settings(&[1, 2, 3]), ops, restart_first_seed)
}

fn run_with(settings: MembershipSettings, ops: &[Op], restart_first_seed: bool) -> Sim {
    let mut sim = Sim::new(settings);
    sim.check_one_cluster = !restart_first_seed;
    for op in ops {
        sim.log.push(format!("op {op:?}"));
        sim.apply(op);
    }
    sim
}

/// Which faults a schedule may hold besides loss, duplication, reordering, partitions and
/// flapping failure detectors.
#[derive(Debug, Clone, Copy)]
struct Faults {
    crash: bool,
    replay: bool,
    leave: bool,
    down: bool,
}

const ALL_FAULTS: Faults = Faults {
    crash: true,
    replay: true,
    leave: true,
    down: true,
};

fn ops(faults: Faults, len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(any_op(false), 1..len).prop_map(move |ops| {
        ops.into_iter()
            .filter(|op| match op {
                Op::Crash(_) => faults.crash,
                Op::Replay(_) => faults.replay,
                Op::Leave(..) => faults.leave,
                Op::Down(..) => faults.down,
                _ => true,
            })
            .collect()
    })
}

/// The number of random schedules per proptest: `ADVERSARIAL_CASES` if set (for a long search),
/// else `default`.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("ADVERSARIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Random schedules of loss, duplication, reordering, replays, partitions, crashes,
    /// restarts, leaves, downs and stray messages: every safety rule holds after every step.
    #[test]
    fn no_schedule_of_faults_breaks_a_safety_rule(ops in ops(ALL_FAULTS, 300)) {
        run(&ops, false);
    }

    /// As above, with restarts of the first seed at any time: a restart whose questions all go
    /// unanswered may form a second cluster (the seed rule allows it), so the check of one
    /// cluster is off; every other rule holds.
    #[test]
    fn restarts_of_the_first_seed_break_no_other_safety_rule(ops in ops(ALL_FAULTS, 300)) {
        run(&ops, true);
    }

    /// After random faults, links heal, detectors tell the truth and crashed nodes are downed:
    /// within sixty rounds every running node is a member of one converged view, all Up.
    #[test]
    fn after_the_faults_stop_the_running_nodes_converge_with_everyone_up(ops in ops(ALL_FAULTS, 200)) {
        let mut sim = run(&ops, false);
        if sim.halted.is_none() {
            let rounds = sim.settle(60);
            prop_assert!(
                rounds.is_some() || sim.halted.is_some(),
                "no convergence:\n{}",
                sim.describe_all()
            );
        }
    }
}

// Scripted histories. Each helper builds a state step by step; the checks of `Sim` run all along.

impl Sim {
    /// Starts the nodes and runs rounds until they are all Up in one converged view.
    fn cluster(seeds: &[u16], ports: &[u16]) -> Sim {
        let mut sim = Sim::new(settings(seeds));
        for p in ports {
            sim.start(*p);
        }
        sim.deliver_all();
        let mut rand = 1;
        for _ in 0..30 {
            sim.round(&mut rand);
            if sim.settled() && ports.iter().all(|p| sim.nodes[p].m.is_member()) {
                return sim;
            }
        }
        panic!("no cluster formed:\n{}", sim.describe_all());
    }

    /// Delivers the first message in flight that `pick` chooses; whether there was one.
    fn deliver_first(&mut self, pick: impl Fn(&Msg) -> bool) -> bool {
        match self.flight.iter().position(pick) {
            Some(i) => {
                let m = self.flight.remove(i);
                self.deliver_msg(m);
                true
            }
            None => false,
        }
    }

    /// Delivers everything in flight (and what it causes) but what `hold` keeps back.
    fn deliver_all_but(&mut self, hold: impl Fn(&Msg) -> bool) {
        let mut budget = 5_000;
        while budget > 0 && self.deliver_first(|m| !hold(m)) {
            budget -= 1;
        }
    }

    fn drop_where(&mut self, pick: impl Fn(&Msg) -> bool) {
        self.flight.retain(|m| !pick(m));
    }

    fn me(&self, port: u16) -> UniqueAddress {
        self.nodes[&port].m.me().clone()
    }

    fn status_at(&self, port: u16, of: &UniqueAddress) -> Option<MemberStatus> {
        self.view(port).member(of).map(|m| m.status)
    }
}

fn is_to(m: &Msg, port: u16) -> bool {
    m.to == port
}

#[test]
fn two_incarnations_of_one_address_joining_at_two_members_never_share_a_view() {
    let mut sim = Sim::cluster(&[1, 2], &[1, 2]);
    // Node 3 asks node 1 only, and node 1 takes it in as Joining; the Welcome is lost, and node 3
    // crashes before node 1 gossips.
    sim.start(3);
    sim.drop_where(|m| is_to(m, 2));
    sim.deliver_first(|m| is_to(m, 1));
    sim.deliver_first(|m| matches!(m.msg, ClusterMsg::InitJoinAck { .. }));
    assert!(sim.deliver_first(|m| is_to(m, 1) && matches!(m.msg, ClusterMsg::Join { .. })));
    let first = sim.me(3);
    assert_eq!(sim.status_at(1, &first), Some(MemberStatus::Joining));
    sim.flight.clear();
    sim.crash(3);
    // It restarts, asks node 2 only, and node 2, which has not heard of the first incarnation,
    // takes the second in.
    sim.start(3);
    sim.drop_where(|m| is_to(m, 1));
    sim.deliver_first(|m| is_to(m, 2));
    sim.deliver_first(|m| matches!(m.msg, ClusterMsg::InitJoinAck { .. }));
    assert!(sim.deliver_first(|m| is_to(m, 2) && matches!(m.msg, ClusterMsg::Join { .. })));
    let second = sim.me(3);
    assert_eq!(sim.status_at(2, &second), Some(MemberStatus::Joining));
    // Gossip between 1 and 2 merges the two views: `Gossip::check` fails on the result ("share
    // an address"), inside `Sim::input`.
    let mut rand = 3;
    for _ in 0..5 {
        sim.round(&mut rand);
    }
    assert!(sim.view(1).check().is_ok() && sim.view(2).check().is_ok());
}

#[test]
fn a_no_meant_for_an_earlier_incarnation_never_lets_the_first_seed_form_a_second_cluster() {
    let mut sim = Sim::new(settings(&[1, 2, 3]));
    sim.start(2);
    sim.start(3);
    sim.deliver_all();
    // Node 1 starts; nodes 2 and 3 are not members yet and say no. Their answers are slow.
    sim.start(1);
    sim.deliver_all_but(|m| matches!(m.msg, ClusterMsg::InitJoinNack { .. }));
    let is_old_no = |m: &Msg| matches!(m.msg, ClusterMsg::InitJoinNack { .. }) && m.to == 1;
    assert_eq!(sim.flight.iter().filter(|m| is_old_no(m)).count(), 2);
    // Node 1 forms the cluster after the seed timeout, and 2 and 3 join it; the two noes are
    // still on their way.
    let mut rand: u64 = 5;
    for _ in 0..30 {
        sim.advance(1);
        for p in [1, 2, 3] {
            rand = rand.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            sim.tick(p, rand);
        }
        sim.deliver_all_but(is_old_no);
        if sim.settled() && sim.view(2).members().count() == 3 {
            break;
        }
    }
    assert!(
        sim.settled() && sim.view(2).members().count() == 3,
        "{}",
        sim.describe_all()
    );
    // Node 1 restarts. It asks 2 and 3, which will say yes; but the old noes arrive first and
    // the new incarnation forms a cluster of its own beside the one of 2 and 3 (the check of
    // one cluster fails inside `Sim::input`).
    sim.crash(1);
    sim.start(1);
    while sim.deliver_first(is_old_no) {}
    sim.deliver_all();
    assert!(!sim.nodes[&1].m.is_member() || sim.view(1).members().count() > 1);
}

/// Nodes 1, 2 and 3 Up; node 3 cut off, downed by node 1 and removed; then the links heal.
fn a_removed_node_that_was_cut_off() -> Sim {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    let (one, two, three) = (sim.me(1), sim.me(2), sim.me(3));
    sim.cut.insert((1, 3));
    sim.cut.insert((2, 3));
    sim.input(1, Input::Unreachable([three.clone()].into()));
    sim.input(2, Input::Unreachable([three.clone()].into()));
    sim.input(3, Input::Unreachable([one, two].into()));
    sim.input(1, Input::Down(addr(3)));
    let mut rand = 7;
    for _ in 0..5 {
        sim.round(&mut rand);
    }
    assert!(sim.view(1).is_tombstoned(&three) && sim.view(2).is_tombstoned(&three));
    // Node 3 still runs, unaware: it thinks 1 and 2 are members it cannot reach.
    assert!(sim.running(3));
    sim.cut.clear();
    sim.input(3, Input::Unreachable(BTreeSet::new()));
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    sim
}

#[test]
fn a_removed_node_that_was_cut_off_learns_of_its_removal_once_the_links_heal() {
    let sim = a_removed_node_that_was_cut_off();
    // Twenty rounds after the heal node 3 still runs as a member with 1, 2 and 3 Up in its view,
    // while 1 and 2 have removed it.
    assert!(
        !sim.running(3),
        "node 3 runs on as a member: {}",
        sim.describe_all()
    );
}

#[test]
fn a_new_node_never_joins_through_a_removed_node() {
    let mut sim = a_removed_node_that_was_cut_off();
    // Node 4 (same seed list) asks all seeds; the answers of 1 and 2 are lost, that of 3 arrives.
    sim.start(4);
    sim.drop_where(|m| m.from == 4 && m.to != 3);
    let mut rand = 11;
    for _ in 0..10 {
        sim.round(&mut rand);
    }
    let four = sim.me(4);
    // Node 4 is Up in node 3's view, a cluster nobody else knows; 1 and 2 never hear of it.
    assert!(
        sim.view(1).member(&four).is_some() || !sim.nodes[&4].m.is_member(),
        "{}",
        sim.describe_all()
    );
}

#[test]
fn a_joiner_welcomed_by_a_member_that_crashes_at_once_still_gets_in() {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    // Node 4 asks the seeds; only node 2 answers.
    sim.start(4);
    sim.drop_where(|m| m.from == 4 && m.to != 2);
    sim.deliver_all_but(|m| {
        m.from == 4 && m.to == 2 && matches!(m.msg, ClusterMsg::Envelope { .. })
    });
    assert!(sim.nodes[&4].m.is_member());
    // Node 2 crashes before it tells anyone of node 4 (its first gossip from node 4 is lost).
    sim.flight.clear();
    sim.crash(2);
    // Links fine, detectors truthful, node 2 downed: node 4 must end Up with 1 and 3.
    let rounds = sim.settle(60);
    assert!(
        rounds.is_some(),
        "node 4 stays outside: {}",
        sim.describe_all()
    );
}

#[test]
fn a_member_that_exits_right_after_a_blip_is_still_removed() {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    let two = sim.me(2);
    let three = sim.me(3);
    sim.input(1, Input::Leave(addr(3)));
    // Rounds, node 1 (the leader) first, until node 1 moves node 3 to Exiting.
    let mut rand: u64 = 13;
    for _ in 0..20 {
        sim.advance(1);
        sim.tick(1, rand);
        if sim.status_at(1, &three) == Some(MemberStatus::Exiting) {
            break;
        }
        for p in [2, 3] {
            rand = rand.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            sim.tick(p, rand);
        }
        sim.deliver_all();
    }
    assert_eq!(sim.status_at(1, &three), Some(MemberStatus::Exiting));
    // Just then node 3's detector loses node 2 for a moment. Node 3 writes the mark, hears
    // it is Exiting, hands its view (with the mark) to node 1, and stops.
    sim.input(3, Input::Unreachable([two].into()));
    sim.deliver_all();
    for _ in 0..5 {
        sim.round(&mut rand);
    }
    assert!(!sim.running(3));
    // Faults over: node 3 must be removed and 1 and 2 converge. Node 3's mark on node 2 stays,
    // counts (node 3 is Exiting, not Down), and blocks every convergence from now on.
    assert!(sim.settle(60).is_some(), "{}", sim.describe_all());
}

#[test]
fn a_refusal_meant_for_a_removed_incarnation_never_stops_its_successor() {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    let old = sim.me(3);
    sim.input(1, Input::Leave(addr(3)));
    let mut rand = 17;
    for _ in 0..10 {
        sim.round(&mut rand);
    }
    assert!(sim.view(1).is_tombstoned(&old));
    // Node 3 starts again; a duplicate of the old incarnation's Join, long delayed, reaches node
    // 1, which refuses it as removed. The refusal goes to the address, where the new incarnation
    // now runs, and stops it.
    sim.start(3);
    sim.input(
        1,
        Input::Received(ClusterMsg::Join {
            node: old,
            roles: BTreeSet::new(),
        }),
    );
    sim.deliver_first(|m| matches!(m.msg, ClusterMsg::JoinRefused { .. }));
    assert!(sim.running(3), "the new incarnation stopped");
    assert!(sim.settle(30).is_some(), "{}", sim.describe_all());
}

#[test]
fn pruning_old_tombstones_never_moves_the_clock_back() {
    let mut s = settings(&[1, 2, 3]);
    s.tombstone_ttl = Duration::from_secs(3);
    let mut sim = Sim::new(s);
    for p in [1, 2, 3] {
        sim.start(p);
    }
    let mut rand = 19;
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    assert!(sim.settled());
    // Node 3 leaves: the change is its own, so the clock gets an entry for it.
    sim.input(3, Input::Leave(addr(3)));
    // Node 3 is removed; three seconds later the leader prunes its tombstone and its clock entry,
    // and its clock is no longer After the one before (the check fails inside `Sim::input`).
    for _ in 0..10 {
        sim.round(&mut rand);
    }
}

#[test]
fn a_view_with_a_clock_entry_at_its_maximum_never_panics_the_receiver() {
    let mut sim = Sim::cluster(&[1, 2], &[1, 2]);
    let one = sim.me(1);
    let two = sim.me(2);
    // Node 2's view, with node 1's clock entry set to u64::MAX, as decoded off the wire.
    let mut value = ciborium::Value::serialized(sim.view(2)).unwrap();
    set_clock_entry(&mut value, one.uid, u64::MAX);
    let forged: Gossip = value.deserialized().unwrap();
    assert_eq!(forged.version().get(one.uid), u64::MAX);
    sim.input(
        1,
        Input::Received(ClusterMsg::Envelope {
            from: two.clone(),
            to: one,
            gossip: Box::new(forged),
        }),
    );
    // Node 1 adopted it; its next change (a verdict of its detector) adds one to that entry.
    sim.input(1, Input::Unreachable([two].into()));
}

/// Sets the entry of `uid` in the clock of a gossip encoded as a CBOR value.
fn set_clock_entry(v: &mut ciborium::Value, uid: u64, count: u64) {
    use ciborium::Value;
    let Value::Map(fields) = v else {
        panic!("a gossip encodes as a map");
    };
    for (k, val) in fields.iter_mut() {
        if k.as_text() == Some("version") {
            let Value::Map(clock) = val else { panic!() };
            let Value::Map(entries) = &mut clock[0].1 else {
                panic!()
            };
            for (k, c) in entries.iter_mut() {
                if k.as_integer().and_then(|i| u64::try_from(i).ok()) == Some(uid) {
                    *c = Value::Integer(count.into());
                }
            }
        }
    }
}

#[test]
fn a_pruned_tombstone_stays_pruned_and_the_views_come_to_rest() {
    let mut s = settings(&[1, 2, 3]);
    s.tombstone_ttl = Duration::from_secs(3);
    let mut sim = Sim::new(s);
    for p in [1, 2, 3] {
        sim.start(p);
    }
    let mut rand = 19;
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    sim.input(3, Input::Leave(addr(3)));
    let mut versions = Vec::new();
    for _ in 0..30 {
        sim.round(&mut rand);
        sim.halted = None;
        versions.push(sim.view(1).version().clone());
    }
    // Node 2 merges node 1's pruned view with its own (their clocks are concurrent), which brings
    // the tombstone and its clock entry back; node 1 adopts that, and prunes again: a new version
    // every other round, for ever.
    assert!(
        sim.view(1).tombstones().is_empty() && sim.view(2).tombstones().is_empty(),
        "{}",
        sim.describe_all()
    );
    assert!(versions[25..].iter().all(|v| v == &versions[25]));
}

#[test]
fn a_malformed_view_from_a_peer_is_never_adopted() {
    let mut sim = Sim::cluster(&[1, 2], &[1, 2]);
    let (one, two) = (sim.me(1), sim.me(2));
    // Node 2's view with two incarnations of one address in it, both moved Up: well-formed
    // parts, merged.
    let mut a = sim.view(2).clone();
    let mut b = a.clone();
    let (x, y) = (
        UniqueAddress::new(addr(9), 90),
        UniqueAddress::new(addr(9), 91),
    );
    a.add_joining(Member::joining(x.clone(), ["r"]), &two);
    a.set_status(&x, MemberStatus::Up, &two);
    b.add_joining(Member::joining(y.clone(), ["r"]), &one);
    b.set_status(&y, MemberStatus::Up, &one);
    let bad = a.merge(&b);
    assert!(bad.check().is_err());
    // Node 1 takes it in; `Gossip::check` fails on its view inside `Sim::input`.
    sim.input(
        1,
        Input::Received(ClusterMsg::Envelope {
            from: two,
            to: one,
            gossip: Box::new(bad),
        }),
    );
}

#[test]
fn a_stale_join_from_an_earlier_incarnation_never_downs_the_member_that_runs_now() {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    let three = sim.me(3);
    // An earlier incarnation of node 3 asked node 1 to join and crashed before it was taken in;
    // its Join, long delayed, arrives now. Node 1 takes it for a restart of node 3, and downs the
    // incarnation that runs.
    let earlier = UniqueAddress::new(addr(3), 1);
    sim.input(
        1,
        Input::Received(ClusterMsg::Join {
            node: earlier,
            roles: BTreeSet::new(),
        }),
    );
    let mut rand = 29;
    for _ in 0..5 {
        sim.round(&mut rand);
    }
    assert_eq!(
        sim.status_at(1, &three),
        Some(MemberStatus::Up),
        "{}",
        sim.describe_all()
    );
    assert!(sim.running(3));
}

#[test]
fn a_removed_member_never_comes_back_after_its_tombstone_is_pruned() {
    let mut s = settings(&[1, 2, 3]);
    s.tombstone_ttl = Duration::from_secs(3);
    let mut sim = Sim::new(s);
    for p in [1, 2, 3] {
        sim.start(p);
    }
    let mut rand: u64 = 31;
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    let three = sim.me(3);
    sim.input(3, Input::Leave(addr(3)));
    // Rounds, node 1 (the leader) first, until node 1 has removed node 3 and pruned its
    // tombstone.
    for _ in 0..30 {
        sim.advance(1);
        sim.tick(1, rand);
        if sim.view(1).member(&three).is_none() && !sim.view(1).is_tombstoned(&three) {
            break;
        }
        for p in [2, 3] {
            rand = rand.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            sim.tick(p, rand);
        }
        sim.deliver_all();
    }
    assert!(sim.view(1).member(&three).is_none() && !sim.view(1).is_tombstoned(&three));
    // A whole view node 2 sent node 1 while node 3 was leaving (so with node 3's clock entry),
    // delayed in the network.
    let stale = sim
        .sent
        .iter()
        .rev()
        .find(|m| {
            m.from == 2
                && m.to == 1
                && matches!(&m.msg, ClusterMsg::Envelope { gossip, .. }
                    if gossip.member(&three).is_some() && gossip.version().get(three.uid) > 0)
        })
        .cloned()
        .expect("node 2 sent node 1 its view");
    // It arrives: its clock is concurrent with node 1's (node 1 pruned node 3's
    // entry), so the two merge, and node 3, with no tombstone left to stop it, is a member again
    // (the check of members coming back fails inside `Sim::input`).
    sim.deliver_msg(stale);
    assert!(sim.view(1).member(&three).is_none());
}

#[test]
fn a_joiner_stranded_by_its_welcomer_never_leads_a_second_cluster() {
    let mut sim = Sim::cluster(&[1, 2, 3], &[1, 2, 3]);
    // As in the test above: node 4 is welcomed by node 2, which crashes before telling anyone.
    sim.start(4);
    sim.drop_where(|m| m.from == 4 && m.to != 2);
    sim.deliver_all_but(|m| {
        m.from == 4 && m.to == 2 && matches!(m.msg, ClusterMsg::Envelope { .. })
    });
    sim.flight.clear();
    sim.crash(2);
    // Node 4's own gossip introduces it to nodes 1 and 3 (its view holds them and itself), so
    // it is not stranded: the views settle.
    assert!(sim.settle(20).is_some());
    // Then nodes 1 and 3 leave. Node 4 never hears of it: they just go silent, and it downs
    // them (as an operator or a downing strategy would, for silent members).
    sim.input(1, Input::Leave(addr(1)));
    sim.input(1, Input::Leave(addr(3)));
    sim.start(5);
    let mut rand = 37;
    for _ in 0..10 {
        sim.round(&mut rand);
    }
    sim.settle(30);
    // Node 4 leads a converged view with itself alone Up, beside the cluster of node 5, which
    // took over the seeds' cluster: two clusters from one seed list.
    let four = sim.me(4);
    let leaders: BTreeSet<UniqueAddress> = sim
        .nodes
        .values()
        .filter(|n| n.running() && n.m.is_member())
        .filter(|n| n.m.gossip().converged(n.m.me(), &BTreeSet::new()))
        .filter_map(|n| n.m.gossip().leader(n.m.me()))
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "leaders {leaders:?} ({four}):\n{}",
        sim.describe_all()
    );
}

#[test]
fn a_removed_node_cut_off_past_its_tombstone_never_gossips_itself_back_in() {
    let mut s = settings(&[1, 2, 3]);
    s.tombstone_ttl = Duration::from_secs(3);
    let mut sim = Sim::new(s);
    for p in [1, 2, 3] {
        sim.start(p);
    }
    let mut rand: u64 = 11;
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    assert!(sim.settled(), "{}", sim.describe_all());
    let (one, two, three) = (sim.me(1), sim.me(2), sim.me(3));
    // Node 3 is cut off; its failure detector marks 1 and 2 (a change of its own, so its view
    // is concurrent with theirs). Node 1 downs it, the leader removes it, and three seconds later
    // prunes its tombstone.
    sim.cut.insert((1, 3));
    sim.cut.insert((2, 3));
    sim.input(1, Input::Unreachable([three.clone()].into()));
    sim.input(2, Input::Unreachable([three.clone()].into()));
    sim.input(3, Input::Unreachable([one, two].into()));
    sim.input(1, Input::Down(addr(3)));
    for _ in 0..10 {
        sim.round(&mut rand);
    }
    assert!(sim.view(1).member(&three).is_none() && !sim.view(1).is_tombstoned(&three));
    assert!(sim.view(2).member(&three).is_none() && !sim.view(2).is_tombstoned(&three));
    assert!(sim.running(3));
    // The links heal. Node 3 still takes itself for a member and gossips its view, which holds
    // itself Up; with no tombstone left, nodes 1 and 2 must still not take it back (the check
    // that a member gone from a view never comes back fails inside `Sim::input`).
    sim.cut.clear();
    sim.input(3, Input::Unreachable(BTreeSet::new()));
    for _ in 0..20 {
        sim.round(&mut rand);
    }
    assert!(sim.view(1).member(&three).is_none() && sim.view(2).member(&three).is_none());
    // And node 3, answered with their view, finds itself gone and stops.
    assert!(!sim.running(3), "{}", sim.describe_all());
}
