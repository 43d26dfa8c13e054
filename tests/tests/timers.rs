//! Timers (L11): restarting a key replaces its timer, a cancelled timer delivers nothing, a
//! periodic timer skips the ticks it missed, and a restart cancels the actor's timers. On paused
//! (virtual) time, so the exact arrival times are checked.

use std::time::Duration;

use casty::testing::TestKit;
use casty::{ActorRef, Behavior, Behaviors, Directive, SupervisorStrategy};
use casty_tests::Boom;

#[derive(Debug, Clone)]
enum Tm {
    StartOnce(&'static str, u64, &'static str),
    StartPeriodic(&'static str, u64, &'static str),
    Cancel(&'static str),
    Fire(&'static str),
    /// Keeps the actor busy (handling nothing else) for this many milliseconds.
    Busy(u64),
    /// Keeps the actor busy, then restarts a timer key, in one message.
    BusyThenStart(u64, &'static str, u64, &'static str),
    Crash,
}
impl casty::Message for Tm {}

/// An actor driving timers; each `Fire` is reported. Busy periods await tokio's sleep, so on a
/// runtime with paused time they take exactly their virtual duration.
fn timers(report: ActorRef<String>) -> Behavior<Tm> {
    Behaviors::receive_async(move |ctx, msg| {
        let report = report.clone();
        Box::pin(async move {
            match msg {
                Tm::StartOnce(k, ms, m) => {
                    ctx.start_single_timer(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::StartPeriodic(k, ms, m) => {
                    ctx.start_timer_at_fixed_rate(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::Cancel(k) => ctx.cancel_timer(k),
                Tm::Fire(m) => report.tell(m.to_string()),
                Tm::Busy(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Tm::BusyThenStart(busy, k, ms, m) => {
                    tokio::time::sleep(Duration::from_millis(busy)).await;
                    ctx.start_single_timer(k, Tm::Fire(m), Duration::from_millis(ms))
                }
                Tm::Crash => return Err(Boom::new("crash")),
            }
            Ok(Behaviors::same())
        })
    })
}

/// Receives reports until `until` (virtual time since `t0`), each with the milliseconds since
/// `t0` at which it arrived.
async fn reports_until(
    report: &mut casty::testing::TestProbe<String>,
    t0: tokio::time::Instant,
    until: Duration,
) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let deadline = t0 + until;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match report.receive_message(left).await {
            Some(m) => seen.push((t0.elapsed().as_millis() as u64, m)),
            None => return seen,
        }
    }
}

// Restarting a timer key replaces the timer (L11): the replaced timer's message is never
// delivered, even though it fired and was queued while the actor was busy. On virtual time: the
// old timer fires at 10 ms, the key is restarted at 60 ms for 30 ms, so "new" arrives at 90 ms.
#[tokio::test(start_paused = true)]
async fn restarting_a_timer_key_drops_the_old_timers_queued_message() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let a = kit.spawn(timers(report.actor_ref()), "timers");
    let t0 = tokio::time::Instant::now();
    a.tell(Tm::StartOnce("k", 10, "old"));
    a.tell(Tm::BusyThenStart(60, "k", 30, "new"));
    assert_eq!(
        reports_until(&mut report, t0, Duration::from_millis(500)).await,
        [(90, "new".to_string())]
    );
    kit.shutdown().await;
}

// A cancelled timer delivers nothing, and a periodic timer never catches up on the ticks it
// missed while the actor was busy (L11). On virtual time, with a 10 ms period and the actor busy
// from 0 to 205 ms: the one tick left pending arrives at 205 ms, then one every 10 ms; after the
// cancel at 255 ms nothing more.
#[tokio::test(start_paused = true)]
async fn a_periodic_timer_skips_missed_ticks_and_stops_when_cancelled() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let a = kit.spawn(timers(report.actor_ref()), "timers");
    let t0 = tokio::time::Instant::now();
    a.tell(Tm::StartOnce("once", 30, "never"));
    a.tell(Tm::Cancel("once"));
    a.tell(Tm::StartPeriodic("tick", 10, "tick"));
    a.tell(Tm::Busy(205));
    let ticks = reports_until(&mut report, t0, Duration::from_millis(255)).await;
    let expected: Vec<(u64, String)> = [205, 210, 220, 230, 240, 250]
        .into_iter()
        .map(|t| (t, "tick".to_string()))
        .collect();
    assert_eq!(ticks, expected);
    a.tell(Tm::Cancel("tick"));
    report.expect_no_message(Duration::from_secs(1)).await;
    kit.shutdown().await;
}

// Timers are cancelled when the actor restarts (L11): the timer due at 50 ms never fires.
#[tokio::test(start_paused = true)]
async fn a_restart_cancels_the_actors_timers() {
    let kit = TestKit::new();
    let mut report = kit.probe::<String>();
    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let a = kit.spawn(
        Behaviors::supervise(timers(report.actor_ref()), strategy),
        "timers",
    );
    a.tell(Tm::StartOnce("k", 50, "before-restart"));
    a.tell(Tm::Crash);
    report.expect_no_message(Duration::from_secs(1)).await;
    kit.shutdown().await;
}
