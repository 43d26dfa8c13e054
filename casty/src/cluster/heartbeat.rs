//! The heartbeat sender's state: whom to heartbeat, and what their answers say about them.
//!
//! [`Heartbeats`] owns a [`HeartbeatRing`] and one [`PhiAccrual`] detector per receiver. A driver
//! calls [`Heartbeats::tick`] every heartbeat interval and sends a heartbeat to each node it
//! returns, feeds every answer to [`Heartbeats::on_response`], calls
//! [`Heartbeats::set_members`] whenever the members or their reachability change, and asks
//! [`Heartbeats::unavailable`] which receivers to report unreachable. Rather than asking at a
//! fixed rate, it can ask [`Heartbeats::next_suspicion`] when the next receiver will become
//! unavailable if no answer comes, and ask again at that instant.
//!
//! Invariants:
//! - the *active* receivers are the ring's receivers plus the *lingering* ones: members that
//!   were dropped from the ring while unreachable. A lingering member is still heartbeated, so
//!   that it can be seen again, until it answers or stops being a member;
//! - there is a detector only for an active receiver, and a receiver keeps its detector (its
//!   history) across [`Heartbeats::set_members`] for as long as it stays active;
//! - the first heartbeat sent to a receiver starts its detector with a faked heartbeat at that
//!   moment, so a node that never answers still becomes unavailable, after about the first
//!   estimate plus the acceptable pause. The faked heartbeat only stands in for an answer: the
//!   first real answer restarts the detector from it, so the time between the send and the
//!   answer (a round trip, not an interval between heartbeats) never enters the history;
//! - answers from nodes that are not active receivers are ignored.
//!
//! Everything iterates in address order, so the same inputs give the same outputs on every run.

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use super::member::UniqueAddress;
use super::phi::PhiAccrual;
use super::ring::HeartbeatRing;
use crate::config::FailureDetectorConfig;

/// What is known of one receiver.
#[derive(Debug, Clone)]
struct Receiver {
    detector: PhiAccrual,
    /// Whether it has answered since its detector was started with a faked heartbeat.
    answered: bool,
}

/// The state of a node's heartbeat sender: its ring, the lingering unreachable receivers, and
/// a failure detector per receiver.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use casty::cluster::{Heartbeats, UniqueAddress};
/// use casty::config::FailureDetectorConfig;
/// use casty::remote::NodeAddress;
/// use tokio::time::Instant;
///
/// let node = |port| UniqueAddress::new(NodeAddress::new("shop", "10.0.0.1", port), 1);
/// let cfg = FailureDetectorConfig {
///     first_heartbeat_estimate: Duration::from_millis(100),
///     min_std_deviation: Duration::from_millis(10),
///     acceptable_heartbeat_pause: Duration::from_millis(300),
///     ..FailureDetectorConfig::default()
/// };
/// let mut hb = Heartbeats::new(node(1), &cfg, 5);
/// hb.set_members([node(1), node(2)], []);
///
/// let t0 = Instant::now();
/// assert_eq!(hb.tick(t0), vec![node(2)]);
/// hb.on_response(&node(2), t0 + Duration::from_millis(2));
/// assert!(hb.unavailable(t0 + Duration::from_millis(300)).is_empty());
/// // Silent for a second: suspected.
/// assert!(hb.unavailable(t0 + Duration::from_secs(1)).contains(&node(2)));
/// ```
#[derive(Debug, Clone)]
pub struct Heartbeats {
    cfg: FailureDetectorConfig,
    ring: HeartbeatRing,
    /// Members dropped from the ring's receivers while unreachable, not yet answering.
    lingering: BTreeSet<UniqueAddress>,
    /// A detector per active receiver that was sent to or answered.
    receivers: BTreeMap<UniqueAddress, Receiver>,
}

impl Heartbeats {
    /// The sender state of `self_node`, alone so far, whose ring will give each node `k`
    /// reachable receivers and whose detectors use `cfg`.
    pub fn new(self_node: UniqueAddress, cfg: &FailureDetectorConfig, k: usize) -> Self {
        Heartbeats {
            cfg: *cfg,
            ring: HeartbeatRing::new(self_node, [], [], k),
            lingering: BTreeSet::new(),
            receivers: BTreeMap::new(),
        }
    }

    /// Rebuilds the ring from the current `members` and the ones among them that are
    /// `unreachable`.
    ///
    /// A receiver that stays keeps its detector. A receiver the new ring drops is forgotten,
    /// unless it is unreachable and still a member: then it lingers, heartbeated until it
    /// answers or leaves the members.
    pub fn set_members(
        &mut self,
        members: impl IntoIterator<Item = UniqueAddress>,
        unreachable: impl IntoIterator<Item = UniqueAddress>,
    ) {
        let members: BTreeSet<UniqueAddress> = members.into_iter().collect();
        let unreachable: BTreeSet<UniqueAddress> = unreachable
            .into_iter()
            .filter(|n| members.contains(n))
            .collect();
        let ring = HeartbeatRing::new(
            self.ring.self_node().clone(),
            members.iter().cloned(),
            unreachable.iter().cloned(),
            self.ring.monitored_by(),
        );
        self.lingering.retain(|n| members.contains(n));
        for dropped in self.ring.receivers().difference(ring.receivers()) {
            if unreachable.contains(dropped) {
                self.lingering.insert(dropped.clone());
            }
        }
        self.lingering.retain(|n| !ring.receivers().contains(n));
        self.ring = ring;
        let (ring, lingering) = (&self.ring, &self.lingering);
        self.receivers
            .retain(|n, _| ring.receivers().contains(n) || lingering.contains(n));
    }

    /// The nodes to send a heartbeat to now, in address order.
    ///
    /// A receiver sent to for the first time gets its detector started with a faked heartbeat
    /// at `now` (see the module documentation).
    pub fn tick(&mut self, now: Instant) -> Vec<UniqueAddress> {
        let to: Vec<UniqueAddress> = self.active().cloned().collect();
        for node in &to {
            if !self.receivers.contains_key(node) {
                let mut detector = PhiAccrual::new(&self.cfg);
                detector.heartbeat(now);
                let receiver = Receiver {
                    detector,
                    answered: false,
                };
                self.receivers.insert(node.clone(), receiver);
            }
        }
        to
    }

    /// Records an answer from `from` at `now`. Ignored unless `from` is an active receiver.
    ///
    /// A lingering receiver that answers is no longer heartbeated (and its detector dropped)
    /// unless the ring has made it a receiver again.
    pub fn on_response(&mut self, from: &UniqueAddress, now: Instant) {
        if !self.is_receiver(from) {
            return;
        }
        match self.receivers.get_mut(from) {
            Some(r) if r.answered => r.detector.heartbeat(now),
            Some(r) => {
                r.detector = PhiAccrual::new(&self.cfg);
                r.detector.heartbeat(now);
                r.answered = true;
            }
            None => {
                let mut detector = PhiAccrual::new(&self.cfg);
                detector.heartbeat(now);
                let receiver = Receiver {
                    detector,
                    answered: true,
                };
                self.receivers.insert(from.clone(), receiver);
            }
        }
        if self.lingering.remove(from) {
            self.receivers.remove(from);
        }
    }

    /// The active receivers whose detector says they are unavailable at `now`.
    pub fn unavailable(&self, now: Instant) -> BTreeSet<UniqueAddress> {
        self.receivers
            .iter()
            .filter(|(_, r)| !r.detector.is_available(now))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The earliest instant after `now` at which some active receiver becomes unavailable, if
    /// none of them answers before: the earliest [`PhiAccrual::suspected_at`] later than `now`.
    ///
    /// Receivers already unavailable at `now` do not count (their deadline has passed), so a
    /// driver that reports [`unavailable`](Self::unavailable) at `now` and then waits for this
    /// instant misses no change. `None` when no receiver can become unavailable later.
    ///
    /// An answer usually moves its receiver's deadline later, but may bring it forward (see
    /// [`PhiAccrual`]), and a new receiver brings a new deadline: ask again after each.
    pub fn next_suspicion(&self, now: Instant) -> Option<Instant> {
        self.receivers
            .values()
            .filter_map(|r| r.detector.suspected_at())
            .filter(|at| *at > now)
            .min()
    }

    /// Whether `node` is heartbeated: a receiver on the ring, or a lingering one.
    pub fn is_receiver(&self, node: &UniqueAddress) -> bool {
        self.ring.receivers().contains(node) || self.lingering.contains(node)
    }

    /// Whether `node` is heartbeated only because it was dropped from the ring while
    /// unreachable.
    pub fn is_lingering(&self, node: &UniqueAddress) -> bool {
        self.lingering.contains(node)
    }

    /// The detector of receiver `node`, once it has been sent to or has answered.
    pub fn detector(&self, node: &UniqueAddress) -> Option<&PhiAccrual> {
        self.receivers.get(node).map(|r| &r.detector)
    }

    /// The current ring.
    pub fn ring(&self) -> &HeartbeatRing {
        &self.ring
    }

    /// The active receivers in address order.
    fn active(&self) -> impl Iterator<Item = &UniqueAddress> + '_ {
        let mut ring = self.ring.receivers().iter().peekable();
        let mut lingering = self.lingering.iter().peekable();
        // A merge of two sorted, disjoint sets.
        std::iter::from_fn(move || match (ring.peek(), lingering.peek()) {
            (Some(a), Some(b)) if b < a => lingering.next(),
            (Some(_), _) => ring.next(),
            (None, _) => lingering.next(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::NodeAddress;
    use std::time::Duration;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(NodeAddress::new("c", "10.0.0.1", port), u64::from(port))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Heartbeats every 100 ms, a pause of 300 ms, the first estimate set to the interval, and
    /// a deviation floor of a tenth of it.
    fn config() -> FailureDetectorConfig {
        FailureDetectorConfig {
            threshold: 8.0,
            max_sample_size: 200,
            min_std_deviation: ms(10),
            acceptable_heartbeat_pause: ms(300),
            first_heartbeat_estimate: ms(100),
        }
    }

    const INTERVAL: u64 = 100;
    const RTT: u64 = 2;

    /// `me` (port 1) with `others`, everyone watching everyone.
    fn pair() -> (Heartbeats, UniqueAddress) {
        let mut hb = Heartbeats::new(node(1), &config(), 5);
        hb.set_members([node(1), node(2)], []);
        (hb, node(2))
    }

    /// Ticks every 100 ms from `t0` for `rounds` rounds, each answered 2 ms later. Returns the
    /// time of the next tick.
    fn answered_rounds(hb: &mut Heartbeats, t0: Instant, rounds: u64) -> Instant {
        for i in 0..rounds {
            let t = t0 + ms(i * INTERVAL);
            for to in hb.tick(t) {
                hb.on_response(&to, t + ms(RTT));
            }
        }
        t0 + ms(rounds * INTERVAL)
    }

    #[test]
    fn a_silent_receiver_is_suspected_at_the_fifth_tick_after_its_last_answer() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 20);
        let last_answer = next - ms(INTERVAL) + ms(RTT);
        let fd = hb.detector(&peer).unwrap();
        // 75 ms, 125 ms and nineteen 100 ms intervals: the 10 ms floor is the deviation used.
        assert_eq!((fd.sample_count(), fd.mean()), (21, ms(100)));
        assert!(fd.std_deviation() < ms(10));
        // The peer stops answering. Phi crosses 8 at 400 ms + 5.2 × 10 ms = 452 ms of silence.
        let mut flipped = None;
        for j in 0..10 {
            let t = next + ms(j * INTERVAL);
            assert_eq!(hb.tick(t), vec![peer.clone()]);
            if hb.unavailable(t).contains(&peer) {
                flipped = Some(t);
                break;
            }
        }
        let flipped = flipped.expect("never suspected");
        assert_eq!(flipped, next + ms(4 * INTERVAL));
        assert_eq!(flipped - last_answer, ms(498));
        assert!(flipped - last_answer <= ms(300 + 2 * INTERVAL));
        assert!(hb.unavailable(flipped - ms(INTERVAL)).is_empty());
    }

    #[test]
    fn the_next_suspicion_is_when_the_silent_receiver_becomes_unavailable() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 20);
        let last_answer = next - ms(INTERVAL) + ms(RTT);
        let deadline = hb.next_suspicion(next).unwrap();
        // 400 ms (mean and pause) plus 5.226 times the 10 ms floor after the last answer.
        assert_eq!((deadline - last_answer).as_micros(), 452_259);
        assert!(hb
            .unavailable(deadline - Duration::from_nanos(1))
            .is_empty());
        assert_eq!(
            hb.unavailable(deadline).into_iter().collect::<Vec<_>>(),
            vec![peer]
        );
        // Once it has passed, nothing else is pending.
        assert_eq!(hb.next_suspicion(deadline), None);
        assert_eq!(hb.next_suspicion(deadline - ms(1)), Some(deadline));
    }

    #[test]
    fn an_answer_moves_the_next_suspicion_later() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 20);
        let before = hb.next_suspicion(next).unwrap();
        hb.tick(next);
        hb.on_response(&peer, next + ms(RTT));
        let after = hb.next_suspicion(next + ms(RTT)).unwrap();
        assert_eq!(after - before, ms(INTERVAL));
    }

    #[test]
    fn the_next_suspicion_is_the_earliest_over_the_receivers() {
        let mut hb = Heartbeats::new(node(1), &config(), 5);
        hb.set_members([node(1), node(2), node(3)], []);
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 20);
        // Node 3 answers the next round, node 2 does not.
        hb.tick(next);
        hb.on_response(&node(3), next + ms(RTT));
        let early = hb.detector(&node(2)).unwrap().suspected_at().unwrap();
        let late = hb.detector(&node(3)).unwrap().suspected_at().unwrap();
        assert!(early < late);
        assert_eq!(hb.next_suspicion(next + ms(RTT)), Some(early));
        assert_eq!(hb.next_suspicion(early), Some(late));
        assert_eq!(hb.next_suspicion(late), None);
    }

    #[test]
    fn nothing_is_pending_before_the_first_heartbeat_is_sent() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        assert_eq!(hb.next_suspicion(t0), None);
        hb.tick(t0);
        // The faked heartbeat: 100 ms estimate, 25 ms deviation, 300 ms pause.
        let deadline = hb.next_suspicion(t0).unwrap();
        assert_eq!((deadline - t0).as_micros(), 530_649);
        assert!(hb.unavailable(deadline).contains(&peer));
    }

    #[test]
    fn a_receiver_that_never_answers_is_suspected_after_the_first_estimate_and_the_pause() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        // Faked first heartbeat at t0: mean 100 ms, deviation 25 ms, plus the 300 ms pause.
        // Phi crosses 8 at 400 ms + 5.2 × 25 ms = 531 ms.
        let mut flipped = None;
        for j in 0..10 {
            let t = t0 + ms(j * INTERVAL);
            assert_eq!(hb.tick(t), vec![peer.clone()]);
            if hb.unavailable(t).contains(&peer) {
                flipped = Some(t);
                break;
            }
        }
        assert_eq!(flipped, Some(t0 + ms(600)));
        assert!(hb.unavailable(t0 + ms(530)).is_empty());
        assert!(!hb.unavailable(t0 + ms(531)).is_empty());
    }

    #[test]
    fn the_first_answer_replaces_the_faked_heartbeat() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        hb.tick(t0);
        assert_eq!(hb.detector(&peer).unwrap().last_heartbeat(), Some(t0));
        hb.on_response(&peer, t0 + ms(RTT));
        let fd = hb.detector(&peer).unwrap();
        // Still the two seeded intervals: the 2 ms round trip was not recorded.
        assert_eq!((fd.sample_count(), fd.mean()), (2, ms(100)));
        assert_eq!(fd.last_heartbeat(), Some(t0 + ms(RTT)));
    }

    #[test]
    fn a_receiver_that_answers_again_becomes_available() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 10);
        let late = next + ms(2000);
        hb.tick(late);
        assert!(hb.unavailable(late).contains(&peer));
        hb.on_response(&peer, late + ms(RTT));
        assert!(hb.unavailable(late + ms(RTT)).is_empty());
        // The long silence did not enter the history.
        assert_eq!(hb.detector(&peer).unwrap().mean(), ms(100));
        assert!(hb.unavailable(late + ms(RTT + 400)).is_empty());
    }

    #[test]
    fn a_response_from_a_node_not_heartbeated_is_ignored() {
        let mut hb = Heartbeats::new(node(1), &config(), 1);
        let members: Vec<_> = (1..=4).map(node).collect();
        hb.set_members(members.clone(), []);
        let t0 = Instant::now();
        let to = hb.tick(t0);
        assert_eq!(to.len(), 1);
        let stranger = members
            .iter()
            .find(|m| **m != node(1) && !to.contains(m))
            .unwrap();
        hb.on_response(stranger, t0 + ms(RTT));
        hb.on_response(&node(77), t0 + ms(RTT));
        assert!(hb.detector(stranger).is_none() && hb.detector(&node(77)).is_none());
        assert!(!hb.is_receiver(stranger));
        assert_eq!(hb.tick(t0 + ms(INTERVAL)), to);
        assert!(hb.unavailable(t0 + ms(10_000)).iter().eq(to.iter()));
    }

    #[test]
    fn set_members_keeps_the_history_of_a_receiver_that_stays() {
        let (mut hb, peer) = pair();
        let t0 = Instant::now();
        let next = answered_rounds(&mut hb, t0, 10);
        assert_eq!(hb.detector(&peer).unwrap().sample_count(), 11);
        hb.set_members([node(1), node(2), node(3)], []);
        assert_eq!(hb.detector(&peer).unwrap().sample_count(), 11);
        assert!(hb.detector(&node(3)).is_none());
        assert_eq!(hb.tick(next), vec![node(2), node(3)]);
        // Removed from the members: forgotten.
        hb.set_members([node(1), node(3)], []);
        assert!(hb.detector(&peer).is_none());
        assert_eq!(hb.tick(next + ms(INTERVAL)), vec![node(3)]);
        hb.on_response(&peer, next + ms(INTERVAL + RTT));
        assert!(hb.detector(&peer).is_none());
    }

    #[test]
    fn a_receiver_dropped_from_the_ring_while_unreachable_is_heartbeated_until_it_answers() {
        let me = node(1);
        let base: Vec<_> = (1..=4).map(node).collect();
        let mut hb = Heartbeats::new(me.clone(), &config(), 1);
        hb.set_members(base.clone(), []);
        let watched = hb.ring().receivers().iter().next().unwrap().clone();
        // A newcomer that the ring places between `me` and `watched`, so that it takes over.
        let newcomer = (100..400)
            .map(node)
            .find(|n| {
                let mut m = base.clone();
                m.push(n.clone());
                let ring = HeartbeatRing::new(me.clone(), m, [watched.clone()], 1);
                !ring.receivers().contains(&watched)
            })
            .expect("some port lands between them");
        let t0 = Instant::now();
        hb.tick(t0);
        let mut members = base.clone();
        members.push(newcomer.clone());
        hb.set_members(members.clone(), [watched.clone()]);
        assert!(hb.is_lingering(&watched));
        assert!(hb.detector(&watched).is_some());
        let mut expected = vec![newcomer.clone(), watched.clone()];
        expected.sort();
        assert_eq!(hb.tick(t0 + ms(INTERVAL)), expected);
        // Still lingering after another rebuild, as long as it is a member.
        hb.set_members(members.clone(), [watched.clone()]);
        assert!(hb.is_lingering(&watched));
        // It answers: no longer heartbeated.
        hb.on_response(&watched, t0 + ms(INTERVAL + RTT));
        assert!(!hb.is_receiver(&watched) && hb.detector(&watched).is_none());
        assert_eq!(hb.tick(t0 + ms(2 * INTERVAL)), vec![newcomer.clone()]);
    }

    #[test]
    fn a_lingering_receiver_removed_from_the_members_is_forgotten() {
        let me = node(1);
        let base: Vec<_> = (1..=4).map(node).collect();
        let mut hb = Heartbeats::new(me.clone(), &config(), 1);
        hb.set_members(base.clone(), []);
        let watched = hb.ring().receivers().iter().next().unwrap().clone();
        let newcomer = (100..400)
            .map(node)
            .find(|n| {
                let mut m = base.clone();
                m.push(n.clone());
                !HeartbeatRing::new(me.clone(), m, [watched.clone()], 1)
                    .receivers()
                    .contains(&watched)
            })
            .unwrap();
        let mut members = base.clone();
        members.push(newcomer.clone());
        hb.set_members(members.clone(), [watched.clone()]);
        assert!(hb.is_lingering(&watched));
        members.retain(|m| *m != watched);
        hb.set_members(members, []);
        assert!(!hb.is_receiver(&watched));
        assert_eq!(hb.tick(Instant::now()), vec![newcomer]);
    }

    #[test]
    fn a_receiver_dropped_while_reachable_is_forgotten_at_once() {
        let me = node(1);
        let mut hb = Heartbeats::new(me.clone(), &config(), 1);
        hb.set_members((1..=4).map(node), []);
        let watched = hb.ring().receivers().iter().next().unwrap().clone();
        hb.tick(Instant::now());
        let newcomer = (100..400)
            .map(node)
            .find(|n| {
                HeartbeatRing::new(me.clone(), (1..=4).map(node).chain([n.clone()]), [], 1)
                    .receivers()
                    .contains(n)
            })
            .unwrap();
        hb.set_members((1..=4).map(node).chain([newcomer]), []);
        assert!(!hb.is_receiver(&watched) && hb.detector(&watched).is_none());
    }
}
