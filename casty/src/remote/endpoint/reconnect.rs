//! The association loop: connect, write until the connection ends, reconnect with backoff.
//!
//! When to report an outage, when to count a reconnection and how long to wait are decided by
//! [`Reconnect`], a pure state machine without clock or I/O. It takes what happened to the
//! latest attempt (connect failed, connected, disconnected) and answers with commands, which
//! [`run_association`] carries out. An outage is reported once: a peer never reached is as lost
//! as one that went away, and after a connection ends its loss is reported once, whatever the
//! retries do.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::remote::transport::Severer;

use super::association::Association;
use super::connect::{connect, refused_by, ConnectError};
use super::counters::Counters;
use super::inbound::PeerInfo;
use super::writer::write_loop;
use super::Shared;

/// What [`Reconnect`] asks of its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// Tell the handler the peer is unreachable ([`super::Inbound::disconnected`]).
    ReportOutage,
    /// Count a connection re-established after a loss.
    CountReconnect,
    /// Wait this long before the next attempt.
    Sleep(Duration),
}

/// The reconnect and outage state of one association.
#[derive(Debug, Clone)]
pub(super) struct Reconnect {
    min: Duration,
    max: Duration,
    /// The wait after the next failed attempt.
    backoff: Duration,
    /// Whether a connection was ever established, so the next one is a reconnection.
    connected_before: bool,
    /// Whether the current outage was reported.
    outage_reported: bool,
}

impl Reconnect {
    /// A new association's state: never connected, waits from `min` doubling up to `max`.
    pub(super) fn new(min: Duration, max: Duration) -> Reconnect {
        Reconnect {
            min,
            max,
            backoff: min,
            connected_before: false,
            outage_reported: false,
        }
    }

    /// An attempt to connect (or its handshake) failed: report the outage if nobody did yet, and
    /// wait before the next attempt, longer each time.
    pub(super) fn connect_failed(&mut self) -> impl Iterator<Item = Command> {
        let report = !self.outage_reported;
        self.outage_reported = true;
        let wait = self.backoff;
        self.backoff = self.backoff.saturating_mul(2).min(self.max);
        [
            report.then_some(Command::ReportOutage),
            Some(Command::Sleep(wait)),
        ]
        .into_iter()
        .flatten()
    }

    /// A connection was established: the next failure waits the shortest time again, and a
    /// connection after an earlier one is a reconnection.
    pub(super) fn connected(&mut self) -> impl Iterator<Item = Command> {
        self.backoff = self.min;
        let again = self.connected_before;
        self.connected_before = true;
        again.then_some(Command::CountReconnect).into_iter()
    }

    /// The connection ended: that is an outage, reported now, and failed retries add nothing.
    pub(super) fn disconnected(&mut self) -> impl Iterator<Item = Command> {
        self.outage_reported = true;
        std::iter::once(Command::ReportOutage)
    }
}

/// Reports and counts as `commands` say, and returns the wait they ask for, if any.
fn carry_out(
    shared: &Shared,
    assoc: &Association,
    commands: impl Iterator<Item = Command>,
) -> Option<Duration> {
    let mut wait = None;
    for command in commands {
        match command {
            Command::ReportOutage => shared.inbound.disconnected(&assoc.peer),
            Command::CountReconnect => Counters::add(&shared.counters.reconnects, 1),
            Command::Sleep(d) => wait = Some(d),
        }
    }
    wait
}

/// Keeps `assoc` connected until the endpoint shuts down.
pub(super) async fn run_association(shared: Arc<Shared>, assoc: Arc<Association>) {
    let mut stop = shared.shutdown.subscribe();
    let mut state = Reconnect::new(shared.settings.backoff_min, shared.settings.backoff_max);
    loop {
        if *stop.borrow() {
            return;
        }
        match connect(&shared, &assoc.peer).await {
            Err(e) => {
                let wait = carry_out(&shared, &assoc, state.connect_failed());
                match e {
                    ConnectError::Refused(r) => refused_by(&shared, &assoc, &r),
                    ConnectError::Io(e) => {
                        tracing::debug!(error = %e, "cannot reach the peer; retrying in {:?}", wait.unwrap_or_default())
                    }
                }
                if let Some(wait) = wait {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        // The peer connected to us meanwhile: it is up, try now.
                        _ = assoc.retry_now.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
            }
            Ok((stream, p)) => {
                carry_out(&shared, &assoc, state.connected());
                assoc.limit.store(p.max_frame, Ordering::Relaxed);
                assoc.refusing.store(false, Ordering::Release);
                shared.note_incarnation(&assoc.peer, p.uid);
                let info = PeerInfo {
                    address: assoc.peer.clone(),
                    uid: p.uid,
                };
                tracing::debug!(peer_uid = p.uid, "association established");
                shared.inbound.connected(&info);
                let severer = Severer::default();
                shared.transport.register(&assoc.peer, &severer);
                let _link = shared.quarantine.link(p.uid, &severer);
                assoc.connected.store(true, Ordering::Release);
                write_loop(&shared, &assoc, &info, stream, &severer, &mut stop).await;
                assoc.connected.store(false, Ordering::Release);
                carry_out(&shared, &assoc, state.disconnected());
                if *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::{CountReconnect, ReportOutage, Sleep};

    const MS: Duration = Duration::from_millis(1);

    fn failed(r: &mut Reconnect) -> Vec<Command> {
        r.connect_failed().collect()
    }

    fn connected(r: &mut Reconnect) -> Vec<Command> {
        r.connected().collect()
    }

    fn disconnected(r: &mut Reconnect) -> Vec<Command> {
        r.disconnected().collect()
    }

    #[test]
    fn the_first_failure_reports_the_outage_once() {
        let mut r = Reconnect::new(10 * MS, 1000 * MS);
        assert_eq!(failed(&mut r), vec![ReportOutage, Sleep(10 * MS)]);
        assert_eq!(failed(&mut r), vec![Sleep(20 * MS)]);
        assert_eq!(failed(&mut r), vec![Sleep(40 * MS)]);
    }

    #[test]
    fn the_backoff_doubles_up_to_the_longest_wait() {
        let mut r = Reconnect::new(50 * MS, 400 * MS);
        let waits: Vec<Command> = (0..6).flat_map(|_| r.connect_failed()).collect();
        assert_eq!(
            waits,
            vec![
                ReportOutage,
                Sleep(50 * MS),
                Sleep(100 * MS),
                Sleep(200 * MS),
                Sleep(400 * MS),
                Sleep(400 * MS),
                Sleep(400 * MS),
            ]
        );
    }

    #[test]
    fn the_longest_wait_is_kept_even_near_the_largest_duration() {
        let mut r = Reconnect::new(Duration::MAX / 2 + MS, Duration::MAX);
        assert_eq!(
            failed(&mut r),
            vec![ReportOutage, Sleep(Duration::MAX / 2 + MS)]
        );
        assert_eq!(failed(&mut r), vec![Sleep(Duration::MAX)]);
        assert_eq!(failed(&mut r), vec![Sleep(Duration::MAX)]);
    }

    #[test]
    fn a_connection_resets_the_backoff() {
        let mut r = Reconnect::new(10 * MS, 1000 * MS);
        failed(&mut r);
        failed(&mut r);
        assert_eq!(failed(&mut r), vec![Sleep(40 * MS)]);
        // The first connection ever is not a reconnection.
        assert_eq!(connected(&mut r), vec![]);
        assert_eq!(disconnected(&mut r), vec![ReportOutage]);
        assert_eq!(failed(&mut r), vec![Sleep(10 * MS)]);
        assert_eq!(failed(&mut r), vec![Sleep(20 * MS)]);
    }

    #[test]
    fn a_connection_after_an_earlier_one_is_counted_as_a_reconnection() {
        let mut r = Reconnect::new(10 * MS, 1000 * MS);
        assert_eq!(connected(&mut r), vec![]);
        assert_eq!(disconnected(&mut r), vec![ReportOutage]);
        // Straight back, without a failed attempt.
        assert_eq!(connected(&mut r), vec![CountReconnect]);
        assert_eq!(disconnected(&mut r), vec![ReportOutage]);
        assert_eq!(failed(&mut r), vec![Sleep(10 * MS)]);
        assert_eq!(connected(&mut r), vec![CountReconnect]);
    }

    #[test]
    fn a_lost_connection_is_reported_once_however_many_retries_fail() {
        let mut r = Reconnect::new(10 * MS, 40 * MS);
        assert_eq!(connected(&mut r), vec![]);
        assert_eq!(disconnected(&mut r), vec![ReportOutage]);
        let retries: Vec<Command> = (0..20).flat_map(|_| r.connect_failed()).collect();
        assert_eq!(retries.len(), 20);
        assert!(!retries.contains(&ReportOutage), "{retries:?}");
        assert_eq!(
            retries[..3],
            [Sleep(10 * MS), Sleep(20 * MS), Sleep(40 * MS)]
        );
        assert_eq!(connected(&mut r), vec![CountReconnect]);
        // The next loss is a new outage.
        assert_eq!(disconnected(&mut r), vec![ReportOutage]);
    }

    #[test]
    fn a_peer_never_reached_is_reported_once_and_its_first_connection_is_not_a_reconnection() {
        let mut r = Reconnect::new(10 * MS, 40 * MS);
        let tries: Vec<Command> = (0..5).flat_map(|_| r.connect_failed()).collect();
        assert_eq!(
            tries.iter().filter(|c| **c == ReportOutage).count(),
            1,
            "{tries:?}"
        );
        assert_eq!(connected(&mut r), vec![]);
    }
}
