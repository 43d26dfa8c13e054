//! Node reachability and quarantine decisions, as a pure state machine with no I/O.
//!
//! [`Reachability`] knows, for every other node this one has dealt with, its incarnation uid as
//! of the last handshake, whether a connection to it is up, whether that incarnation was already
//! declared gone, and whether it refuses our handshake. It takes inputs (a connection came up or
//! went down, a timer fired, the node said it is shutting down, it refused us, a watch or an ask
//! is made) and returns [`Command`]s: start a timer, declare an incarnation down, fail what
//! waits on a refusing node. It reads no clock, spawns nothing and locks nothing; the driver in
//! `remote::system` holds it behind the mutex that also guards the watches and ask hooks, and
//! carries the commands out (sleeping with tokio's time, terminating watches, failing asks,
//! quarantining through the endpoint).
//!
//! Invariants:
//! - a lost connection starts a timer tagged with a fresh generation; only the timer of the
//!   latest generation for a node, firing while the node is still not connected, declares it
//!   unreachable, so a reconnection or a later disconnection supersedes earlier timers;
//! - a new incarnation seen on connect downs the old one, unless the old one was already gone;
//! - a node our own handshakes never showed an incarnation of is declared gone as the latest
//!   incarnation that connected to us, if any: the watches it holds here are that one's, so
//!   they are dropped and it can be quarantined, as if we had reached it ourselves;
//! - a shutdown notice counts only for the incarnation we know (or when we know none) and only
//!   once, since a node says it on every connection;
//! - a watch or an ask made while the node is gone and not back arms a timer of its own, so
//!   that it ends too unless the node returns meanwhile;
//! - a refusal is remembered until a handshake succeeds: until then asks fail at once with it.

use std::collections::HashMap;
use std::time::Duration;

use crate::actor::wire::NodeDown;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Call [`Reachability::timer_fired`] with `node` and `generation` after `after`.
    StartTimer {
        node: String,
        generation: u64,
        after: Duration,
    },
    /// Incarnation `uid` of `node` is gone: terminate the actors watched there, fail the asks
    /// to it with `why`, and drop the watches it holds here.
    NodeDown {
        node: String,
        uid: u64,
        why: NodeDown,
        /// Whether to drop the frames queued for it (they can no longer arrive in time).
        drop_queued: bool,
        /// Whether to quarantine that incarnation if watches crossed between us and it: it
        /// could not otherwise learn that its watches here are gone (identity, R1).
        quarantine_if_watches_crossed: bool,
    },
    /// `node` refuses our handshake: terminate the actors watched there (no notice can come)
    /// and fail the asks to it with `reason`.
    Refused { node: String, reason: String },
    /// The ask being made to `node` fails at once with `reason`: the node refuses us.
    FailAsk { node: String, reason: String },
}

/// What this node knows of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    /// Its incarnation uid, as of the last handshake of ours (0 if none yet).
    uid: u64,
    /// The latest incarnation that opened a connection to us (0 if none): the one declared gone
    /// while none of our handshakes showed one.
    accepted: u64,
    /// Whether a connection to it is up.
    up: bool,
    /// Which disconnection (or watch or ask while gone) the pending timer belongs to.
    generation: u64,
    /// Whether that incarnation was already declared gone (its watches and asks are done).
    gone: bool,
}

/// Reachability of the other nodes, by node key. See the module notes.
#[derive(Debug)]
pub(crate) struct Reachability {
    /// How long a lost connection may stay lost before the node counts as gone.
    unreachable_after: Duration,
    status: HashMap<String, Status>,
    /// Why each node that refuses our handshake now does so.
    refusals: HashMap<String, String>,
    /// The last timer generation handed out (for all nodes).
    generation: u64,
}

impl Reachability {
    /// Nothing known yet; a lost connection counts as gone after `unreachable_after`.
    pub(crate) fn new(unreachable_after: Duration) -> Self {
        Reachability {
            unreachable_after,
            status: HashMap::new(),
            refusals: HashMap::new(),
            generation: 0,
        }
    }

    /// A handshake with incarnation `uid` of `node` succeeded. If another incarnation was known
    /// there and not already gone, it is down: it restarted.
    pub(crate) fn connected(&mut self, node: &str, uid: u64) -> Vec<Command> {
        let mut commands = Vec::new();
        let previous = self.status.get(node).copied();
        if let Some(p) = previous {
            // A node first reached after failed attempts (uid 0: never seen) did not restart.
            if p.uid != 0 && p.uid != uid && !p.gone {
                // Whatever was watched or asked of the old incarnation is over.
                commands.push(self.down(node, p.uid, NodeDown::Restarted));
            }
        }
        self.refusals.remove(node);
        self.status.insert(
            node.to_string(),
            Status {
                uid,
                accepted: previous.map_or(0, |p| p.accepted),
                up: true,
                generation: self.generation,
                gone: false,
            },
        );
        commands
    }

    /// Incarnation `uid` of `node` opened a connection to us and its handshake succeeded. Only
    /// our own connection to a node says whether we reach it (and whether it restarted), so
    /// this changes nothing of that; but while no handshake of ours showed an incarnation of
    /// `node`, `uid` is the one a loss declares gone (the watches it holds here are that
    /// incarnation's). Without it, a node we never reached would be declared gone as uid 0:
    /// its watches here would stay, and it would not be quarantined.
    pub(crate) fn accepted(&mut self, node: &str, uid: u64) {
        let generation = self.generation;
        self.status
            .entry(node.to_string())
            .or_insert(Status {
                uid: 0,
                accepted: 0,
                up: false,
                generation,
                gone: false,
            })
            .accepted = uid;
    }

    /// The connection to `node` is lost (or it could not be reached): it is declared
    /// unreachable unless it connects before the timer started here fires.
    pub(crate) fn disconnected(&mut self, node: &str) -> Vec<Command> {
        self.generation += 1;
        let generation = self.generation;
        let s = self.status.entry(node.to_string()).or_insert(Status {
            uid: 0,
            accepted: 0,
            up: false,
            generation,
            gone: false,
        });
        s.up = false;
        s.generation = generation;
        vec![self.timer(node, generation)]
    }

    /// The timer `generation` for `node` fired: if it is still the latest for the node and the
    /// node has not connected since, its incarnation is down, unreachable.
    pub(crate) fn timer_fired(&mut self, node: &str, generation: u64) -> Vec<Command> {
        match self.status.get(node) {
            Some(s) if !s.up && s.generation == generation => {
                let uid = if s.uid != 0 { s.uid } else { s.accepted };
                vec![self.down(node, uid, NodeDown::Unreachable)]
            }
            _ => Vec::new(),
        }
    }

    /// Incarnation `uid` of `node` said it is shutting down. It says so on every connection, so
    /// only the first notice counts, and only while that incarnation is the one we know.
    pub(crate) fn left(&mut self, node: &str, uid: u64) -> Vec<Command> {
        let current = match self.status.get(node) {
            None => true,
            Some(s) => (s.uid == uid || s.uid == 0) && !s.gone,
        };
        if current {
            vec![self.down(node, uid, NodeDown::ShutDown)]
        } else {
            Vec::new()
        }
    }

    /// `node` refuses our handshake for `reason`: what waits on it fails now, and asks to it
    /// fail at once until a handshake succeeds.
    pub(crate) fn refused(&mut self, node: &str, reason: String) -> Vec<Command> {
        self.refusals.insert(node.to_string(), reason.clone());
        vec![Command::Refused {
            node: node.to_string(),
            reason,
        }]
    }

    /// A watch of an actor on `node` is made. If the node was declared gone and is not back,
    /// the watch gets its own timer, so that it ends too unless the node returns meanwhile.
    pub(crate) fn watch(&mut self, node: &str) -> Vec<Command> {
        self.rearm(node).into_iter().collect()
    }

    /// An ask to `node` is made. It fails at once if the node refuses us; otherwise it waits,
    /// with a timer of its own if the node was declared gone and is not back (as for
    /// [`Reachability::watch`]).
    pub(crate) fn ask(&mut self, node: &str) -> Vec<Command> {
        if let Some(reason) = self.refusals.get(node) {
            return vec![Command::FailAsk {
                node: node.to_string(),
                reason: reason.clone(),
            }];
        }
        self.rearm(node).into_iter().collect()
    }

    /// Why `node` refuses our handshake, if it does (until a handshake succeeds).
    #[cfg(test)]
    pub(crate) fn refusal(&self, node: &str) -> Option<&str> {
        self.refusals.get(node).map(String::as_str)
    }

    fn rearm(&mut self, node: &str) -> Option<Command> {
        let s = self.status.get_mut(node).filter(|s| s.gone && !s.up)?;
        self.generation += 1;
        s.generation = self.generation;
        let generation = self.generation;
        Some(self.timer(node, generation))
    }

    fn timer(&self, node: &str, generation: u64) -> Command {
        Command::StartTimer {
            node: node.to_string(),
            generation,
            after: self.unreachable_after,
        }
    }

    /// Incarnation `uid` of `node` is gone (unreachable too long, replaced by a restart, or
    /// shut down). An incarnation that left by itself is not quarantined: it knows it is gone.
    fn down(&mut self, node: &str, uid: u64, why: NodeDown) -> Command {
        if let Some(s) = self.status.get_mut(node) {
            s.gone = true;
        }
        Command::NodeDown {
            node: node.to_string(),
            uid,
            drop_queued: why == NodeDown::Unreachable,
            quarantine_if_watches_crossed: uid != 0 && why != NodeDown::ShutDown,
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    const AFTER: Duration = Duration::from_secs(10);
    const B: &str = "b@127.0.0.1:2";

    fn timer(node: &str, generation: u64) -> Command {
        Command::StartTimer {
            node: node.to_string(),
            generation,
            after: AFTER,
        }
    }

    fn down(node: &str, uid: u64, why: NodeDown) -> Command {
        Command::NodeDown {
            node: node.to_string(),
            uid,
            drop_queued: why == NodeDown::Unreachable,
            quarantine_if_watches_crossed: uid != 0 && why != NodeDown::ShutDown,
            why,
        }
    }

    #[test]
    fn a_lost_connection_downs_the_node_when_its_timer_fires() {
        let mut r = Reachability::new(AFTER);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(
            r.timer_fired(B, 1),
            vec![Command::NodeDown {
                node: B.to_string(),
                uid: 7,
                why: NodeDown::Unreachable,
                drop_queued: true,
                quarantine_if_watches_crossed: true,
            }]
        );
        // Connected again: the old timer, firing late, finds the node up.
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
    }

    #[test]
    fn reconnecting_before_the_timer_fires_keeps_the_node() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
    }

    // A node that is not up yet when we first try it (say it starts a moment after us) is not
    // a restart once it answers: what was watched or asked of it meanwhile goes on.
    #[test]
    fn a_node_reached_after_failed_first_attempts_is_not_a_restart() {
        let mut r = Reachability::new(AFTER);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
        // Its real restart later is one.
        assert_eq!(r.connected(B, 8), vec![down(B, 7, NodeDown::Restarted)]);
    }

    // B connected to us and watches something here, but our own connection to B never came up
    // (a partition began while it was opening). Its loss still names B's incarnation, so the
    // watches it holds here are dropped and it is quarantined; with no incarnation (uid 0)
    // neither would happen, and B would wait forever for a `Terminated`.
    #[test]
    fn a_node_we_never_reached_is_declared_gone_as_the_incarnation_that_connected_to_us() {
        let mut r = Reachability::new(AFTER);
        r.accepted(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 7, NodeDown::Unreachable)]);

        // Also when our attempts failed before it connected to us; the latest one counts.
        let mut r = Reachability::new(AFTER);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        r.accepted(B, 7);
        r.accepted(B, 8);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 8, NodeDown::Unreachable)]);

        // It says nothing of whether we reach it: a connection of ours still supersedes the
        // pending timer, and one to the same incarnation is not a restart.
        let mut r = Reachability::new(AFTER);
        r.accepted(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![]);

        // What our own handshakes showed comes first.
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        r.accepted(B, 8);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 7, NodeDown::Unreachable)]);

        // A shutdown notice counts as before, once.
        let mut r = Reachability::new(AFTER);
        r.accepted(B, 7);
        assert_eq!(r.left(B, 7), vec![down(B, 7, NodeDown::ShutDown)]);
        assert_eq!(r.left(B, 7), vec![]);
    }

    #[test]
    fn only_the_latest_disconnection_s_timer_downs_the_node() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.disconnected(B), vec![timer(B, 2)]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
        assert_eq!(r.timer_fired(B, 2), vec![down(B, 7, NodeDown::Unreachable)]);

        // Two losses in a row, with no connection between: the later timer counts.
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.disconnected(B), vec![timer(B, 2)]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
        assert_eq!(r.timer_fired(B, 2), vec![down(B, 7, NodeDown::Unreachable)]);
    }

    #[test]
    fn timer_generations_are_shared_by_all_nodes() {
        let a = "a@127.0.0.1:1";
        let mut r = Reachability::new(AFTER);
        assert_eq!(r.disconnected(a), vec![timer(a, 1)]);
        assert_eq!(r.disconnected(B), vec![timer(B, 2)]);
        assert_eq!(r.timer_fired(a, 2), vec![]);
        assert_eq!(r.timer_fired(a, 1), vec![down(a, 0, NodeDown::Unreachable)]);
    }

    #[test]
    fn a_restart_downs_the_old_incarnation_and_its_late_shutdown_notice_is_ignored() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.connected(B, 8), vec![down(B, 7, NodeDown::Restarted)]);
        assert_eq!(r.timer_fired(B, 1), vec![]);
        assert_eq!(r.left(B, 7), vec![]);
        assert_eq!(r.left(B, 8), vec![down(B, 8, NodeDown::ShutDown)]);
    }

    #[test]
    fn a_restart_after_the_old_incarnation_is_gone_downs_nothing_more() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        r.disconnected(B);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 7, NodeDown::Unreachable)]);
        assert_eq!(r.connected(B, 8), vec![]);

        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.left(B, 7), vec![down(B, 7, NodeDown::ShutDown)]);
        assert_eq!(r.connected(B, 8), vec![]);
    }

    #[test]
    fn a_shutdown_notice_counts_once_and_only_for_the_current_incarnation() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(r.left(B, 6), vec![]);
        // Said on a connection that is still up: not quarantined, queued frames kept.
        assert_eq!(
            r.left(B, 7),
            vec![Command::NodeDown {
                node: B.to_string(),
                uid: 7,
                why: NodeDown::ShutDown,
                drop_queued: false,
                quarantine_if_watches_crossed: false,
            }]
        );
        assert_eq!(r.left(B, 7), vec![]);
        // The connection then goes: its timer finds the node gone and not back, and says so
        // again for whatever was watched or asked meanwhile.
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.left(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 7, NodeDown::Unreachable)]);

        // A node never connected: the notice counts for the incarnation that gave it.
        let mut r = Reachability::new(AFTER);
        r.disconnected(B);
        assert_eq!(r.left(B, 9), vec![down(B, 9, NodeDown::ShutDown)]);
        assert_eq!(r.left(B, 9), vec![]);
    }

    #[test]
    fn a_watch_or_an_ask_while_the_node_is_gone_arms_a_timer_of_its_own() {
        let mut r = Reachability::new(AFTER);
        assert_eq!(r.watch(B), vec![]);
        assert_eq!(r.ask(B), vec![]);
        r.connected(B, 7);
        assert_eq!(r.watch(B), vec![]);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        // Lost but not yet gone: the pending timer covers it.
        assert_eq!(r.watch(B), vec![]);
        assert_eq!(r.timer_fired(B, 1), vec![down(B, 7, NodeDown::Unreachable)]);
        assert_eq!(r.watch(B), vec![timer(B, 2)]);
        assert_eq!(r.ask(B), vec![timer(B, 3)]);
        assert_eq!(r.timer_fired(B, 2), vec![]);
        assert_eq!(r.timer_fired(B, 3), vec![down(B, 7, NodeDown::Unreachable)]);
        // Back before the timer: nothing ends.
        assert_eq!(r.ask(B), vec![timer(B, 4)]);
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.timer_fired(B, 4), vec![]);
    }

    #[test]
    fn a_refusal_fails_asks_with_its_reason_until_a_handshake_succeeds() {
        let mut r = Reachability::new(AFTER);
        r.connected(B, 7);
        assert_eq!(
            r.refused(B, "bad secret".into()),
            vec![Command::Refused {
                node: B.into(),
                reason: "bad secret".into()
            }]
        );
        let fail = |reason: &str| {
            vec![Command::FailAsk {
                node: B.into(),
                reason: reason.into(),
            }]
        };
        assert_eq!(r.ask(B), fail("bad secret"));
        assert_eq!(r.ask(B), fail("bad secret"));
        // Watches are not refused: they are sent, and end with the next refusal or loss.
        assert_eq!(r.watch(B), vec![]);
        assert_eq!(r.disconnected(B), vec![timer(B, 1)]);
        assert_eq!(r.ask(B), fail("bad secret"));
        r.refused(B, "wrong system".into());
        assert_eq!(r.ask(B), fail("wrong system"));
        assert_eq!(r.refusal(B), Some("wrong system"));
        assert_eq!(r.connected(B, 7), vec![]);
        assert_eq!(r.refusal(B), None);
        assert_eq!(r.ask(B), vec![]);
    }

    #[derive(Debug, Clone)]
    enum Input {
        Connected(usize, u64),
        Accepted(usize, u64),
        Disconnected(usize),
        /// Fires one of the timers started and not yet fired (by index, modulo their number).
        FireTimer(usize),
        Left(usize, u64),
        Refused(usize, u8),
        Watch(usize),
        Ask(usize),
    }

    fn input() -> impl Strategy<Value = Input> {
        let node = 0usize..2;
        let uid = 1u64..4;
        prop_oneof![
            (node.clone(), uid.clone()).prop_map(|(n, u)| Input::Connected(n, u)),
            (node.clone(), uid.clone()).prop_map(|(n, u)| Input::Accepted(n, u)),
            node.clone().prop_map(Input::Disconnected),
            any::<usize>().prop_map(Input::FireTimer),
            (node.clone(), uid).prop_map(|(n, u)| Input::Left(n, u)),
            (node.clone(), 0u8..3).prop_map(|(n, r)| Input::Refused(n, r)),
            node.clone().prop_map(Input::Watch),
            node.prop_map(Input::Ask),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        // Over random inputs: only the latest timer of a node that is still not connected downs
        // it, naming the incarnation last known there (from our own handshakes, or else the
        // latest that connected to us); a restart downs the old incarnation, never the one now
        // up; a shutdown counts once for a known node until it connects again; asks fail with
        // the latest refusal until a handshake succeeds; and each command says to quarantine
        // and to drop queued frames exactly for the reasons that call for it.
        #[test]
        fn random_inputs_keep_the_reachability_rules(
            inputs in proptest::collection::vec(input(), 0..64)
        ) {
            let nodes = ["a@h:1", "b@h:2"];
            let mut r = Reachability::new(AFTER);
            let mut pending: Vec<(usize, u64)> = Vec::new();
            let mut last_generation = 0u64;
            let mut latest: [u64; 2] = [0, 0];
            // Per node: (uid, up) as of the last connection change, whether it was ever known.
            let mut current: [Option<(u64, bool)>; 2] = [None, None];
            let mut refusal: [Option<String>; 2] = [None, None];
            // Per node: the latest incarnation that connected to us (0 if none).
            let mut accepted: [u64; 2] = [0, 0];
            let mut shut_down: HashSet<(usize, u64)> = HashSet::new();
            for input in inputs {
                let mut fired = 0;
                let (n, commands) = match input.clone() {
                    Input::Connected(n, uid) => (n, r.connected(nodes[n], uid)),
                    Input::Accepted(n, uid) => {
                        r.accepted(nodes[n], uid);
                        (n, Vec::new())
                    }
                    Input::Disconnected(n) => (n, r.disconnected(nodes[n])),
                    Input::FireTimer(i) => {
                        if pending.is_empty() {
                            continue;
                        }
                        let (n, generation) = pending.remove(i % pending.len());
                        fired = generation;
                        (n, r.timer_fired(nodes[n], generation))
                    }
                    Input::Left(n, uid) => (n, r.left(nodes[n], uid)),
                    Input::Refused(n, reason) => {
                        (n, r.refused(nodes[n], format!("reason {reason}")))
                    }
                    Input::Watch(n) => (n, r.watch(nodes[n])),
                    Input::Ask(n) => (n, r.ask(nodes[n])),
                };
                let known = current[n].is_some();
                let mut downs = Vec::new();
                for c in &commands {
                    match c {
                        Command::StartTimer { node, generation, after } => {
                            prop_assert_eq!(node, nodes[n]);
                            prop_assert_eq!(*after, AFTER);
                            prop_assert!(*generation > last_generation, "{:?}", input);
                            last_generation = *generation;
                            latest[n] = *generation;
                            pending.push((n, *generation));
                        }
                        Command::NodeDown {
                            node,
                            uid,
                            why,
                            drop_queued,
                            quarantine_if_watches_crossed,
                        } => {
                            prop_assert_eq!(node, nodes[n]);
                            prop_assert_eq!(*drop_queued, *why == NodeDown::Unreachable);
                            prop_assert_eq!(
                                *quarantine_if_watches_crossed,
                                *uid != 0 && *why != NodeDown::ShutDown
                            );
                            downs.push((*uid, why.clone()));
                        }
                        Command::Refused { node, reason } => {
                            prop_assert_eq!(node, nodes[n]);
                            prop_assert!(matches!(input, Input::Refused(..)));
                            refusal[n] = Some(reason.clone());
                        }
                        Command::FailAsk { node, reason } => {
                            prop_assert_eq!(node, nodes[n]);
                            prop_assert!(matches!(input, Input::Ask(_)));
                            prop_assert_eq!(Some(reason), refusal[n].as_ref());
                        }
                    }
                }
                prop_assert!(downs.len() <= 1, "{:?}: {:?}", input, commands);
                match input {
                    Input::Connected(_, uid) => {
                        for (old, why) in &downs {
                            prop_assert_eq!(why, &NodeDown::Restarted);
                            prop_assert_ne!(*old, uid);
                        }
                        current[n] = Some((uid, true));
                        refusal[n] = None;
                        shut_down.retain(|(m, _)| *m != n);
                    }
                    Input::Accepted(_, uid) => {
                        prop_assert!(commands.is_empty());
                        accepted[n] = uid;
                    }
                    Input::Disconnected(_) => {
                        prop_assert_eq!(commands.len(), 1);
                        current[n] = Some((current[n].map_or(0, |c| c.0), false));
                    }
                    Input::FireTimer(_) => {
                        for (uid, why) in &downs {
                            prop_assert_eq!(why, &NodeDown::Unreachable);
                            // The latest timer, of a node still not connected, downs the
                            // incarnation last known there: from our own handshakes, or else
                            // the latest that connected to us.
                            let (own, up) = current[n].unwrap_or((0, false));
                            prop_assert!(!up);
                            prop_assert_eq!(*uid, if own != 0 { own } else { accepted[n] });
                            prop_assert_eq!(fired, latest[n]);
                        }
                    }
                    Input::Left(_, uid) => {
                        for (down_uid, why) in &downs {
                            prop_assert_eq!(why, &NodeDown::ShutDown);
                            prop_assert_eq!(*down_uid, uid);
                            if known {
                                prop_assert!(shut_down.insert((n, uid)), "{:?} twice", input);
                            }
                        }
                    }
                    Input::Ask(_) => {
                        let failed = commands.iter().any(|c| matches!(c, Command::FailAsk { .. }));
                        prop_assert_eq!(failed, refusal[n].is_some());
                        prop_assert!(downs.is_empty());
                    }
                    Input::Refused(..) | Input::Watch(_) => prop_assert!(downs.is_empty()),
                }
                prop_assert_eq!(r.refusal(nodes[n]), refusal[n].as_deref());
            }
        }
    }
}
