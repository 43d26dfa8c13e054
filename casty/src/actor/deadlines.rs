//! Ask deadlines: one coarse timer wheel per system instead of a tokio timer per ask.
//!
//! Arming and cancelling a tokio timer for every ask costs a trip through tokio's timer wheel
//! and often a wake-up of the thread that drives it. Instead, an ask that has to wait puts its
//! reply slot in a bucket of [`GRANULARITY`] (10 ms): the bucket of the first tick at or after its
//! deadline. One reaper task per system sleeps (with tokio's clock, so paused-time tests advance
//! it) until the earliest bucket that holds an entry, fails every entry of the buckets that are
//! due, and ends once nothing is pending. An ask that completes takes its entry out again, so a
//! finished ask leaves nothing behind.
//!
//! A deadline never fires early: a bucket is due only once the clock has reached its tick, which
//! is at or after every deadline in it. It may fire up to one tick late (plus scheduling).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How coarse ask deadlines are: an ask times out between its deadline and one tick after it.
pub(crate) const GRANULARITY: Duration = Duration::from_millis(10);

/// [`GRANULARITY`] in nanoseconds, and how many ticks make a second: tick arithmetic stays in
/// 64 bits (a 128-bit division costs more than the rest of an insert).
const TICK_NANOS: u32 = 10_000_000;
const TICKS_PER_SECOND: u64 = 100;
const _: () = assert!(GRANULARITY.as_nanos() == TICK_NANOS as u128);
const _: () = assert!(TICK_NANOS as u64 * TICKS_PER_SECOND == 1_000_000_000);

/// The position of an entry that is in no bucket.
const NOWHERE: usize = usize::MAX;

/// Something with a deadline in the wheel (an ask's reply slot).
pub(crate) trait Expire: Send + Sync {
    /// The deadline has passed.
    fn expire(&self);
    /// Where the entry sits in its bucket ([`usize::MAX`] when in none). Read and written only
    /// under the wheel's lock; an atomic only so that it needs no `unsafe`.
    fn position(&self) -> &AtomicUsize;
}

type Bucket = Vec<Arc<dyn Expire>>;

#[derive(Default)]
struct Wheel {
    /// Entries by the tick they are due at, for ticks before [`Wheel::newest`]. A bucket emptied
    /// by completed asks stays until its tick passes, so asks started in the same tick reuse it
    /// without allocating.
    buckets: BTreeMap<u64, Bucket>,
    /// The latest tick an entry was put in, whose bucket is kept out of the map: asks with the
    /// same timeout started in the same tick (the usual case) reach it without a search.
    newest: u64,
    /// The bucket of `newest`.
    newest_bucket: Bucket,
    /// How many entries the buckets hold.
    pending: usize,
    /// The tick the reaper sleeps until, or `None` when no reaper runs.
    reaper: Option<u64>,
}

impl Wheel {
    /// The bucket of `tick`, made if there is none.
    fn bucket_for(&mut self, tick: u64) -> &mut Bucket {
        if tick > self.newest {
            if !self.newest_bucket.is_empty() {
                let older = std::mem::take(&mut self.newest_bucket);
                self.buckets.insert(self.newest, older);
            }
            self.newest = tick;
        }
        if tick == self.newest {
            &mut self.newest_bucket
        } else {
            self.buckets.entry(tick).or_default()
        }
    }

    /// The bucket of `tick`, if there is one.
    fn bucket(&mut self, tick: u64) -> Option<&mut Bucket> {
        if tick == self.newest {
            Some(&mut self.newest_bucket)
        } else {
            self.buckets.get_mut(&tick)
        }
    }

    /// Takes out every entry due at or before `now`.
    fn take_due(&mut self, now: u64) -> Vec<Arc<dyn Expire>> {
        let later = match now.checked_add(1) {
            Some(after) => self.buckets.split_off(&after),
            None => BTreeMap::new(),
        };
        let past = std::mem::replace(&mut self.buckets, later);
        let mut due: Vec<Arc<dyn Expire>> = past.into_values().flatten().collect();
        if self.newest <= now {
            due.append(&mut self.newest_bucket);
        }
        due
    }

    /// The earliest tick that holds an entry.
    fn next_due(&self) -> Option<u64> {
        self.buckets
            .iter()
            .find(|(_, b)| !b.is_empty())
            .map(|(t, _)| *t)
            .or((!self.newest_bucket.is_empty()).then_some(self.newest))
    }
}

/// The ask deadlines of one system.
pub(crate) struct Deadlines {
    /// Tick 0.
    origin: Instant,
    handle: Handle,
    wheel: Mutex<Wheel>,
    /// Wakes the reaper when an entry is due before the tick it sleeps until.
    sooner: Notify,
}

impl Deadlines {
    pub(crate) fn new(handle: Handle) -> Arc<Self> {
        Arc::new(Deadlines {
            origin: Instant::now(),
            handle,
            wheel: Mutex::new(Wheel::default()),
            sooner: Notify::new(),
        })
    }

    fn wheel(&self) -> std::sync::MutexGuard<'_, Wheel> {
        self.wheel.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first tick at or after `at`.
    fn tick_at_or_after(&self, at: Instant) -> Option<u64> {
        let since = at.saturating_duration_since(self.origin);
        since
            .as_secs()
            .checked_mul(TICKS_PER_SECOND)?
            .checked_add(u64::from(since.subsec_nanos().div_ceil(TICK_NANOS)))
    }

    /// The last tick at or before now.
    fn current_tick(&self) -> u64 {
        let since = Instant::now().saturating_duration_since(self.origin);
        since
            .as_secs()
            .saturating_mul(TICKS_PER_SECOND)
            .saturating_add(u64::from(since.subsec_nanos() / TICK_NANOS))
    }

    /// When `tick` begins, if that is a representable instant.
    fn instant_of(&self, tick: u64) -> Option<Instant> {
        let secs = tick / TICKS_PER_SECOND;
        // Below 100, so the product is below one second.
        let sub = (tick % TICKS_PER_SECOND) as u32 * TICK_NANOS;
        self.origin.checked_add(Duration::new(secs, sub))
    }

    /// Puts `entry` in the wheel, to expire at or after `deadline`. Returns the tick to hand to
    /// [`Deadlines::remove`], or `None` for a deadline too far away to ever come.
    pub(crate) fn insert(
        self: &Arc<Self>,
        deadline: Instant,
        entry: Arc<dyn Expire>,
    ) -> Option<u64> {
        let tick = self.tick_at_or_after(deadline)?;
        self.instant_of(tick)?;
        let mut wheel = self.wheel();
        let bucket = wheel.bucket_for(tick);
        entry.position().store(bucket.len(), Ordering::Relaxed);
        bucket.push(entry);
        wheel.pending += 1;
        match wheel.reaper {
            None => {
                wheel.reaper = Some(tick);
                drop(wheel);
                self.handle.spawn(self.clone().reap());
            }
            Some(t) if tick < t => {
                wheel.reaper = Some(tick);
                drop(wheel);
                self.sooner.notify_one();
            }
            Some(_) => {}
        }
        Some(tick)
    }

    /// Takes `entry` out of the wheel if it is still there (it is not once it has expired).
    pub(crate) fn remove(&self, tick: u64, entry: &dyn Expire) {
        let mut wheel = self.wheel();
        let at = entry.position().load(Ordering::Relaxed);
        let Some(bucket) = wheel.bucket(tick) else {
            return;
        };
        let ours = bucket
            .get(at)
            .is_some_and(|e| std::ptr::addr_eq(Arc::as_ptr(e), entry as *const dyn Expire));
        if !ours {
            return;
        }
        let removed = bucket.swap_remove(at);
        if let Some(moved) = bucket.get(at) {
            moved.position().store(at, Ordering::Relaxed);
        }
        removed.position().store(NOWHERE, Ordering::Relaxed);
        wheel.pending -= 1;
        drop(wheel);
        drop(removed);
    }

    /// How many entries are in the wheel.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.wheel().pending
    }

    /// Whether a reaper task is running.
    #[cfg(test)]
    pub(crate) fn reaper_running(&self) -> bool {
        self.wheel().reaper.is_some()
    }

    /// The reaper: expires due entries, sleeps until the next due bucket, and ends when the wheel
    /// is empty.
    async fn reap(self: Arc<Self>) {
        loop {
            let (due, next) = {
                let mut wheel = self.wheel();
                let due = wheel.take_due(self.current_tick());
                for e in &due {
                    e.position().store(NOWHERE, Ordering::Relaxed);
                }
                wheel.pending -= due.len();
                let next = wheel.next_due();
                if next.is_none() {
                    // Nothing pending: drop the emptied buckets and end; the next ask that has
                    // to wait starts a new reaper.
                    wheel.buckets.clear();
                }
                wheel.reaper = next;
                (due, next)
            };
            for e in due {
                e.expire();
            }
            let Some(next) = next else {
                return;
            };
            let at = self.instant_of(next);
            let sooner = self.sooner.notified();
            match at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = sooner => {}
                    }
                }
                None => sooner.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry that records when it expired.
    struct Probe {
        fired: Mutex<Option<Instant>>,
        position: AtomicUsize,
    }

    impl Probe {
        fn new() -> Arc<Self> {
            Arc::new(Probe {
                fired: Mutex::new(None),
                position: AtomicUsize::new(NOWHERE),
            })
        }

        fn fired(&self) -> Option<Instant> {
            *self.fired.lock().unwrap()
        }
    }

    impl Expire for Probe {
        fn expire(&self) {
            let mut f = self.fired.lock().unwrap();
            assert!(f.is_none(), "an entry expired twice");
            *f = Some(Instant::now());
        }

        fn position(&self) -> &AtomicUsize {
            &self.position
        }
    }

    /// Lets the reaper run until the wheel is empty and the reaper has ended.
    async fn until_idle(wheel: &Deadlines) {
        tokio::time::timeout(Duration::from_secs(3600), async {
            while wheel.reaper_running() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the reaper never ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_fires_at_or_after_it_and_within_one_tick() {
        let wheel = Deadlines::new(Handle::current());
        // Not on a tick boundary, so rounding has to go up.
        tokio::time::advance(Duration::from_millis(3)).await;
        let deadline = Instant::now() + Duration::from_millis(25);
        let probe = Probe::new();
        wheel.insert(deadline, probe.clone()).unwrap();
        assert_eq!(wheel.pending(), 1);

        tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
        assert_eq!(probe.fired(), None, "fired before its deadline");

        until_idle(&wheel).await;
        let fired = probe.fired().expect("never fired");
        assert!(fired >= deadline, "fired {:?} early", deadline - fired);
        assert!(
            fired <= deadline + GRANULARITY,
            "fired {:?} late",
            fired - deadline
        );
        assert_eq!(wheel.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_removed_entry_never_fires_and_leaves_nothing_pending() {
        let wheel = Deadlines::new(Handle::current());
        let probe = Probe::new();
        let tick = wheel
            .insert(Instant::now() + Duration::from_millis(50), probe.clone())
            .unwrap();
        assert!(wheel.reaper_running());
        wheel.remove(tick, &*probe);
        assert_eq!(wheel.pending(), 0);
        assert_eq!(probe.position.load(Ordering::Relaxed), NOWHERE);
        // Removing again (as a finished ask's drop may) changes nothing.
        wheel.remove(tick, &*probe);
        assert_eq!(wheel.pending(), 0);

        until_idle(&wheel).await;
        assert_eq!(probe.fired(), None);
        // Only the probe itself still holds it: the wheel kept no copy.
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_deadline_wakes_the_sleeping_reaper() {
        let wheel = Deadlines::new(Handle::current());
        let late = Probe::new();
        let start = Instant::now();
        wheel
            .insert(start + Duration::from_secs(60), late.clone())
            .unwrap();
        tokio::task::yield_now().await;
        let soon = Probe::new();
        wheel
            .insert(start + Duration::from_millis(20), soon.clone())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let fired = soon
            .fired()
            .expect("the sooner deadline waited for the later one");
        assert!(fired >= start + Duration::from_millis(20));
        assert_eq!(late.fired(), None);
        assert_eq!(wheel.pending(), 1);
        until_idle(&wheel).await;
        assert!(late.fired().unwrap() >= start + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn many_entries_with_mixed_deadlines_fire_in_time_or_not_at_all_once_removed() {
        let wheel = Deadlines::new(Handle::current());
        let start = Instant::now();
        let mut entries = Vec::new();
        for i in 0..500u64 {
            // Deadlines from 0 to 997 ms, in no particular order, some sharing a tick.
            let deadline = start + Duration::from_millis((i * 389) % 998);
            let probe = Probe::new();
            let tick = wheel.insert(deadline, probe.clone()).unwrap();
            entries.push((deadline, probe, tick));
        }
        // Every third entry completes before its deadline and is taken out.
        for (deadline, probe, tick) in entries.iter().step_by(3) {
            if *deadline > start {
                wheel.remove(*tick, &**probe);
            }
        }
        until_idle(&wheel).await;
        assert_eq!(wheel.pending(), 0);
        for (i, (deadline, probe, _)) in entries.iter().enumerate() {
            let removed = i % 3 == 0 && *deadline > start;
            match probe.fired() {
                None => assert!(removed, "entry {i} never fired"),
                Some(fired) => {
                    assert!(!removed, "entry {i} fired after it was removed");
                    assert!(fired >= *deadline, "entry {i} fired early");
                    assert!(fired <= *deadline + GRANULARITY, "entry {i} fired late");
                }
            }
            assert_eq!(Arc::strong_count(probe), 1, "the wheel kept entry {i}");
        }
    }
}
