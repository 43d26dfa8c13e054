use super::*;
use std::collections::{BTreeMap, VecDeque};

fn addr(port: u16) -> NodeAddress {
    NodeAddress::new("c", "127.0.0.1", port)
}

fn inc(port: u16, uid: u64) -> UniqueAddress {
    UniqueAddress::new(addr(port), uid)
}

/// A network of state machines in one test: messages go through a queue, time moves by hand,
/// and links can be cut.
struct Net {
    nodes: BTreeMap<u16, Membership>,
    queue: VecDeque<(u16, u16, ClusterMsg)>,
    events: BTreeMap<u16, Vec<ClusterEvent>>,
    refusals: BTreeMap<u16, Vec<JoinRefusal>>,
    stops: BTreeMap<u16, StopReason>,
    /// Links cut in both directions.
    cut: BTreeSet<(u16, u16)>,
    now: Instant,
    wall_ms: u64,
    rand: u64,
}

fn settings(seeds: &[u16]) -> MembershipSettings {
    MembershipSettings::default()
        .seed_nodes(seeds.iter().map(|p| addr(*p)))
        .retry_interval(Duration::from_secs(1))
        .seed_node_timeout(Duration::from_secs(5))
        .weakly_up_after(None)
}

impl Net {
    fn new() -> Self {
        Net {
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            events: BTreeMap::new(),
            refusals: BTreeMap::new(),
            stops: BTreeMap::new(),
            cut: BTreeSet::new(),
            now: Instant::now(),
            wall_ms: 1_000,
            rand: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn add(&mut self, node: UniqueAddress, settings: MembershipSettings) {
        let port = node.address.port();
        self.nodes.insert(port, Membership::new(node, settings));
        self.events.remove(&port);
        self.stops.remove(&port);
    }

    fn input(&mut self, port: u16, input: Input) {
        let Some(node) = self.nodes.get_mut(&port) else {
            return;
        };
        let commands = node.handle(input, self.now, self.wall_ms);
        for c in commands {
            match c {
                Command::Send { to, msg } => self.queue.push_back((port, to.port(), msg)),
                Command::Publish(e) => self.events.entry(port).or_default().push(e),
                Command::Refused { reason, .. } => {
                    self.refusals.entry(port).or_default().push(reason)
                }
                Command::Stop(reason) => {
                    self.stops.insert(port, reason);
                }
            }
        }
    }

    fn linked(&self, a: u16, b: u16) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Delivers every message in flight (and those they cause), except over cut links and to
    /// stopped nodes.
    fn deliver(&mut self) {
        let mut budget = 10_000;
        while let Some((from, to, msg)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "messages never stop");
            if self.linked(from, to) && !self.stops.contains_key(&to) {
                self.input(to, Input::Received(msg));
            }
        }
    }

    /// One tick on every running node, a second later, then delivery.
    fn tick(&mut self) {
        self.now += Duration::from_secs(1);
        self.wall_ms += 1_000;
        let ports: Vec<u16> = self.nodes.keys().copied().collect();
        for p in ports {
            if !self.stops.contains_key(&p) {
                // A fixed sequence of random numbers (xorshift), so that runs repeat.
                self.rand ^= self.rand << 13;
                self.rand ^= self.rand >> 7;
                self.rand ^= self.rand << 17;
                let rand = self.rand;
                self.input(p, Input::Tick { rand });
            }
        }
        self.deliver();
    }

    fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            self.tick();
        }
    }

    fn start_all(&mut self) {
        let ports: Vec<u16> = self.nodes.keys().copied().collect();
        for p in ports {
            self.input(p, Input::Start);
        }
        self.deliver();
    }

    fn view(&self, port: u16) -> &Gossip {
        self.nodes[&port].gossip()
    }

    fn statuses(&self, port: u16) -> Vec<(u16, MemberStatus)> {
        self.view(port)
            .members()
            .map(|m| (m.node.address.port(), m.status))
            .collect()
    }

    /// The running nodes' views are all the same, converged, and every member Up.
    fn all_up(&self, ports: &[u16]) -> bool {
        ports.iter().all(|p| {
            let v = self.view(*p);
            v.same_state(self.view(ports[0]))
                && v.converged(self.nodes[p].me(), &BTreeSet::new())
                && v.members().count() == ports.len()
                && v.members().all(|m| m.status == MemberStatus::Up)
        })
    }

    fn event_names(&self, port: u16, about: u16) -> Vec<&'static str> {
        self.events
            .get(&port)
            .into_iter()
            .flatten()
            .filter(|e| e.member().is_some_and(|m| m.node.address.port() == about))
            .map(|e| match e {
                ClusterEvent::MemberJoined(_) => "joined",
                ClusterEvent::MemberWeaklyUp(_) => "weakly up",
                ClusterEvent::MemberUp(_) => "up",
                ClusterEvent::MemberLeft(_) => "left",
                ClusterEvent::MemberExited(_) => "exited",
                ClusterEvent::MemberDowned(_) => "downed",
                ClusterEvent::MemberRemoved { .. } => "removed",
                ClusterEvent::UnreachableMember(_) => "unreachable",
                ClusterEvent::ReachableMember(_) => "reachable",
                ClusterEvent::LeaderChanged(_) => "leader",
                ClusterEvent::JoinRefused { .. } => "refused",
            })
            .collect()
    }
}

fn three_nodes() -> Net {
    let mut net = Net::new();
    for (port, uid) in [(1, 11), (2, 22), (3, 33)] {
        net.add(inc(port, uid), settings(&[1, 2, 3]));
    }
    net.start_all();
    net
}

#[test]
fn three_nodes_with_one_seed_list_form_one_cluster() {
    let mut net = three_nodes();
    // Nodes 2 and 3 said no to node 1, the first seed, which then formed the cluster alone; they
    // are not members yet.
    assert!(net.nodes[&1].is_member());
    assert!(!net.nodes[&2].is_member() && !net.nodes[&3].is_member());
    let mut rounds = 0;
    while !net.all_up(&[1, 2, 3]) {
        net.tick();
        rounds += 1;
        assert!(rounds < 30, "no convergence: {:?}", net.statuses(1));
    }
    assert_eq!(net.view(3).leader(&inc(3, 33)), Some(inc(1, 11)));
    assert_eq!(net.event_names(2, 3), ["joined", "up"]);
}

#[test]
fn the_first_seed_joins_a_cluster_that_exists_instead_of_forming_one() {
    let mut net = three_nodes();
    net.ticks(10);
    assert!(net.all_up(&[1, 2, 3]));
    // Node 1 crashes, and the failure detectors of 2 and 3 say so; it restarts as a new
    // incarnation: it must join the cluster of 2 and 3, not form one.
    net.input(2, Input::Unreachable([inc(1, 11)].into()));
    net.input(3, Input::Unreachable([inc(1, 11)].into()));
    net.add(inc(1, 111), settings(&[1, 2, 3]));
    net.input(1, Input::Start);
    net.deliver();
    assert_eq!(net.refusals.get(&1), Some(&vec![JoinRefusal::RetryLater]));
    net.ticks(15);
    let view = net.view(2);
    assert!(view.member(&inc(1, 11)).is_none() && view.is_tombstoned(&inc(1, 11)));
    assert!(net.all_up(&[1, 2, 3]), "{:?}", net.statuses(2));
    assert_eq!(
        net.view(1).member(&inc(1, 111)).map(|m| m.status),
        Some(MemberStatus::Up)
    );
    // Node 2 joined when node 1 was Up already; the old incarnation went unreachable, then the
    // new one's Join had it downed and removed; the new one joins.
    assert_eq!(
        net.event_names(2, 1)[..],
        ["up", "unreachable", "downed", "removed", "joined", "up"]
    );
}

#[test]
fn a_node_that_is_not_the_first_seed_never_forms_a_cluster_alone() {
    let mut net = Net::new();
    net.add(inc(2, 22), settings(&[1, 2]));
    net.start_all();
    net.ticks(30);
    assert!(!net.nodes[&2].is_member());
    assert!(net.view(2).members().next().is_none());
}

#[test]
fn two_nodes_listing_each_other_in_either_order_form_one_cluster() {
    let mut net = Net::new();
    net.add(inc(1, 11), settings(&[2, 1]));
    net.add(inc(2, 22), settings(&[1, 2]));
    net.start_all();
    net.ticks(10);
    assert!(
        net.all_up(&[1, 2]),
        "{:?} {:?}",
        net.statuses(1),
        net.statuses(2)
    );
}

#[test]
fn a_node_of_another_system_is_refused_and_stops() {
    let mut net = three_nodes();
    net.ticks(10);
    let stranger = UniqueAddress::new(NodeAddress::new("other", "127.0.0.1", 9), 99);
    net.add(stranger, settings(&[1]));
    net.input(9, Input::Start);
    net.deliver();
    assert_eq!(
        net.refusals.get(&9),
        Some(&vec![JoinRefusal::OtherSystem("c".into())])
    );
    assert_eq!(net.stops.get(&9), Some(&StopReason::Refused));
    assert_eq!(net.view(1).members().count(), 3);
}

#[test]
fn a_graceful_leave_goes_through_exiting_to_removed() {
    let mut net = three_nodes();
    net.ticks(10);
    net.input(1, Input::Leave(addr(3)));
    net.ticks(10);
    assert_eq!(net.stops.get(&3), Some(&StopReason::Left));
    assert!(net.all_up(&[1, 2]), "{:?}", net.statuses(1));
    assert!(net.view(1).is_tombstoned(&inc(3, 33)));
    // Node 1 leads, so it saw every step; node 2 may see Leaving and Exiting, or only the removal.
    assert_eq!(
        net.event_names(1, 3),
        ["joined", "up", "left", "exited", "removed"]
    );
    let at_2 = net.event_names(2, 3);
    assert_eq!(at_2.last(), Some(&"removed"));
}

#[test]
fn the_leader_can_leave_and_another_takes_over() {
    let mut net = three_nodes();
    net.ticks(10);
    net.input(1, Input::Leave(addr(1)));
    net.ticks(10);
    assert_eq!(net.stops.get(&1), Some(&StopReason::Left));
    assert!(net.all_up(&[2, 3]), "{:?}", net.statuses(2));
    assert_eq!(net.view(3).leader(&inc(3, 33)), Some(inc(2, 22)));
}

#[test]
fn a_crashed_member_is_unreachable_then_downed_then_removed() {
    let mut net = three_nodes();
    net.ticks(10);
    // Node 3 crashes: it stops answering, and the failure detectors of 1 and 2 say so.
    net.stops.insert(3, StopReason::Downed);
    net.input(1, Input::Unreachable([inc(3, 33)].into()));
    net.input(2, Input::Unreachable([inc(3, 33)].into()));
    net.ticks(3);
    // Unreachable and not down: no convergence, so nothing is removed.
    assert_eq!(
        net.view(1).member(&inc(3, 33)).map(|m| m.status),
        Some(MemberStatus::Up)
    );
    net.input(1, Input::Down(addr(3)));
    net.ticks(5);
    assert!(net.view(2).is_tombstoned(&inc(3, 33)));
    assert!(net.all_up(&[1, 2]));
    assert_eq!(
        net.event_names(2, 3),
        ["joined", "up", "unreachable", "downed", "removed"]
    );
}

#[test]
fn a_short_isolation_heals_without_downing() {
    let mut net = three_nodes();
    net.ticks(10);
    net.cut.insert((1, 3));
    net.cut.insert((2, 3));
    net.input(1, Input::Unreachable([inc(3, 33)].into()));
    net.input(2, Input::Unreachable([inc(3, 33)].into()));
    net.input(3, Input::Unreachable([inc(1, 11), inc(2, 22)].into()));
    net.ticks(3);
    net.cut.clear();
    for p in [1, 2, 3] {
        net.input(p, Input::Unreachable(BTreeSet::new()));
    }
    net.ticks(5);
    assert!(net.all_up(&[1, 2, 3]), "{:?}", net.statuses(1));
    assert_eq!(
        net.event_names(1, 3),
        ["joined", "up", "unreachable", "reachable"]
    );
    assert!(net.stops.is_empty());
}

#[test]
fn a_downed_member_that_hears_of_it_stops() {
    let mut net = three_nodes();
    net.ticks(10);
    net.input(1, Input::Down(addr(2)));
    net.ticks(5);
    assert_eq!(net.stops.get(&2), Some(&StopReason::Downed));
    // Node 2 is down and still reachable as far as the others know: it is not removed until the
    // failure detector says it is gone.
    assert!(net.view(1).member(&inc(2, 22)).is_some());
    net.input(1, Input::Unreachable([inc(2, 22)].into()));
    net.ticks(3);
    assert!(net.view(1).is_tombstoned(&inc(2, 22)));
    assert!(net.all_up(&[1, 3]));
}

#[test]
fn converged_members_exchange_only_versions() {
    let mut net = three_nodes();
    net.ticks(10);
    assert!(net.all_up(&[1, 2, 3]));
    net.tick();
    // Drive one more tick by hand and look at what is sent.
    let node = net.nodes.get_mut(&2).unwrap();
    let sent = node.handle(Input::Tick { rand: 7 }, net.now, net.wall_ms);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        &sent[0],
        Command::Send {
            msg: ClusterMsg::Status { .. },
            ..
        }
    ));
}

#[test]
fn joining_members_become_weakly_up_while_a_member_is_unreachable() {
    let mut net = Net::new();
    for (port, uid) in [(1, 11), (2, 22)] {
        net.add(
            inc(port, uid),
            settings(&[1, 2]).weakly_up_after(Some(Duration::from_secs(3))),
        );
    }
    net.start_all();
    net.ticks(10);
    assert!(net.all_up(&[1, 2]));
    net.stops.insert(2, StopReason::Downed);
    net.input(1, Input::Unreachable([inc(2, 22)].into()));
    net.add(inc(4, 44), settings(&[1, 2]));
    net.input(4, Input::Start);
    net.deliver();
    net.ticks(2);
    assert_eq!(
        net.view(1).member(&inc(4, 44)).map(|m| m.status),
        Some(MemberStatus::Joining)
    );
    net.ticks(3);
    assert_eq!(
        net.view(4).member(&inc(4, 44)).map(|m| m.status),
        Some(MemberStatus::WeaklyUp)
    );
}

#[test]
fn an_incarnation_known_to_be_gone_is_downed_and_removed_without_the_failure_detector() {
    let mut net = three_nodes();
    net.ticks(10);
    // Node 3 restarted: remoting at node 1 saw the new incarnation take its address. No
    // failure detector has said anything.
    net.stops.insert(3, StopReason::Downed);
    net.input(1, Input::Terminated(inc(3, 33)));
    assert_eq!(
        net.view(1).member(&inc(3, 33)).map(|m| m.status),
        Some(MemberStatus::Down)
    );
    net.ticks(5);
    assert!(net.view(2).is_tombstoned(&inc(3, 33)));
    assert!(net.all_up(&[1, 2]));
    // Node 2 learns the down and node 1's mark in one view: member events come first.
    assert_eq!(
        net.event_names(2, 3),
        ["joined", "up", "downed", "unreachable", "removed"]
    );
}

#[test]
fn a_member_that_left_and_is_gone_is_removed_without_being_downed() {
    let mut net = three_nodes();
    net.ticks(10);
    // Node 2 is told to make node 3 leave, so it holds it Leaving at once.
    net.input(2, Input::Leave(addr(3)));
    // Its shutdown notice reaches node 2 while node 2 still holds it Leaving (node 3 stops once
    // it sees itself Exiting, which node 2 may learn later).
    net.input(2, Input::Terminated(inc(3, 33)));
    assert_eq!(
        net.view(2).member(&inc(3, 33)).map(|m| m.status),
        Some(MemberStatus::Leaving)
    );
    // Node 1 leads: it moves node 3 on from Leaving once every member saw it.
    while net.view(1).member(&inc(3, 33)).map(|m| m.status) != Some(MemberStatus::Exiting) {
        net.tick();
    }
    // And the notice reaches node 1 while it holds it Exiting.
    net.input(1, Input::Terminated(inc(3, 33)));
    assert_eq!(
        net.view(1).member(&inc(3, 33)).map(|m| m.status),
        Some(MemberStatus::Exiting)
    );
    net.ticks(5);
    assert!(net.view(1).is_tombstoned(&inc(3, 33)));
    for port in [1, 2] {
        assert!(!net.event_names(port, 3).contains(&"downed"));
    }
}

#[test]
fn a_node_told_that_it_is_gone_itself_changes_nothing() {
    let mut net = three_nodes();
    net.ticks(10);
    let before = net.view(1).clone();
    net.input(1, Input::Terminated(inc(1, 11)));
    net.input(1, Input::Terminated(inc(9, 99)));
    assert!(net.view(1).same_state(&before));
}

#[test]
fn a_member_refused_for_good_by_another_member_stops_as_removed() {
    let mut net = three_nodes();
    net.ticks(10);
    // Node 3 is told that node 1 refuses this incarnation for good.
    net.input(3, Input::QuarantinedBy(addr(1)));
    assert_eq!(net.stops.get(&3), Some(&StopReason::Removed));
    // A refusal from a node that is no member changes nothing.
    net.input(2, Input::QuarantinedBy(addr(9)));
    assert_eq!(net.stops.get(&2), None);
}
