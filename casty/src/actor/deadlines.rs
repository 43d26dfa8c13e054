//! Ask deadlines: one coarse timer wheel per system instead of a tokio timer per ask, and no
//! clock read when an ask starts waiting.
//!
//! Arming and cancelling a tokio timer for every ask costs a trip through tokio's timer wheel
//! and often a wake-up of the thread that drives it, and even reading the clock costs as much as
//! a good part of a local round trip. Instead, an ask that has to wait puts its reply slot, with
//! its timeout, in the wheel's *young* list, without reading the clock (only the first young
//! entry of an epoch reads it, to set when the epoch ends). One reaper task per system stamps the
//! young entries [`EPOCH`] after the first of them came in: it reads the clock then, which is at
//! or after the moment each of them started waiting, and files each one in the bucket of the
//! first [`TICK`] at or after `stamp + timeout`. The reaper sleeps
//! (with tokio's clock, so paused-time tests advance it) until the next stamping or the earliest
//! bucket that holds an entry, fails every entry of the buckets that are due, and ends once
//! nothing is pending. An ask that completes takes its entry out again, wherever it is, so a
//! finished ask leaves nothing behind.
//!
//! A deadline never fires early: an entry is stamped no sooner than its ask started, and a bucket
//! is due only once the clock has reached its tick, at or after every deadline in it. It fires at
//! most [`GRANULARITY`] late (one epoch of waiting to be stamped, one tick of rounding), plus
//! scheduling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest a young entry waits to be stamped.
const EPOCH: Duration = Duration::from_millis(5);

/// The width of a bucket.
const TICK: Duration = Duration::from_millis(5);

/// How late an ask may time out: it times out between its deadline and this much after it.
pub(crate) const GRANULARITY: Duration = Duration::from_millis(10);
const _: () = assert!(EPOCH.as_nanos() + TICK.as_nanos() == GRANULARITY.as_nanos());

/// [`TICK`] in nanoseconds, and how many ticks make a second: tick arithmetic stays in 64 bits
/// (a 128-bit division costs more than the rest of an insert).
const TICK_NANOS: u32 = 5_000_000;
const TICKS_PER_SECOND: u64 = 200;
const _: () = assert!(TICK.as_nanos() == TICK_NANOS as u128);
const _: () = assert!(TICK_NANOS as u64 * TICKS_PER_SECOND == 1_000_000_000);

/// The index of an entry that is in no list.
const NOWHERE: usize = usize::MAX;

/// The tick of an entry that is in the young list.
const YOUNG: u64 = u64::MAX;

/// Where an entry is in the wheel. Read and written only under the wheel's lock; atomics only so
/// that it needs no `unsafe`.
pub(crate) struct Place {
    /// The tick of its bucket, or [`YOUNG`].
    tick: AtomicU64,
    /// Its index in that list, or [`NOWHERE`].
    index: AtomicUsize,
}

impl Place {
    pub(crate) fn new() -> Self {
        Place {
            tick: AtomicU64::new(YOUNG),
            index: AtomicUsize::new(NOWHERE),
        }
    }

    fn set(&self, tick: u64, index: usize) {
        self.tick.store(tick, Ordering::Relaxed);
        self.index.store(index, Ordering::Relaxed);
    }
}

/// Something with a deadline in the wheel (an ask's reply slot).
pub(crate) trait Expire: Send + Sync {
    /// The deadline has passed.
    fn expire(&self);
    /// Where the entry is in the wheel.
    fn place(&self) -> &Place;
}

/// An entry and its timeout (which counts from the moment it is stamped).
struct Entry {
    expire: Arc<dyn Expire>,
    timeout: Duration,
}

type Bucket = Vec<Entry>;

#[derive(Default)]
struct Wheel {
    /// Entries not stamped yet.
    young: Bucket,
    /// Stamped entries by the tick they are due at, for ticks before [`Wheel::newest`]. A bucket
    /// emptied by completed asks stays until its tick passes.
    buckets: BTreeMap<u64, Bucket>,
    /// The latest tick an entry was filed in, whose bucket is kept out of the map: entries with
    /// the same timeout stamped together (the usual case) reach it without a search.
    newest: u64,
    /// The bucket of `newest`.
    newest_bucket: Bucket,
    /// How many entries the young list and the buckets hold.
    pending: usize,
    /// Whether a reaper task runs.
    running: bool,
    /// When the reaper stamps the young entries: one epoch after the first of them came in.
    /// `None` while there are none.
    stamp_at: Option<Instant>,
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

    /// The list an entry at `tick` is in, if there is one.
    fn list(&mut self, tick: u64) -> Option<&mut Bucket> {
        if tick == YOUNG {
            Some(&mut self.young)
        } else if tick == self.newest {
            Some(&mut self.newest_bucket)
        } else {
            self.buckets.get_mut(&tick)
        }
    }

    /// Takes out every entry due at or before `now`.
    fn take_due(&mut self, now: u64) -> Bucket {
        let later = match now.checked_add(1) {
            Some(after) => self.buckets.split_off(&after),
            None => BTreeMap::new(),
        };
        let past = std::mem::replace(&mut self.buckets, later);
        let mut due: Bucket = past.into_values().flatten().collect();
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
    /// Wakes the reaper when young entries come in while it sleeps.
    young: Notify,
}

impl Deadlines {
    pub(crate) fn new(handle: Handle) -> Arc<Self> {
        Arc::new(Deadlines {
            origin: Instant::now(),
            handle,
            wheel: Mutex::new(Wheel::default()),
            young: Notify::new(),
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

    /// The last tick at or before `at`.
    fn tick_at_or_before(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        since
            .as_secs()
            .saturating_mul(TICKS_PER_SECOND)
            .saturating_add(u64::from(since.subsec_nanos() / TICK_NANOS))
    }

    /// When `tick` begins, if that is a representable instant.
    fn instant_of(&self, tick: u64) -> Option<Instant> {
        let secs = tick / TICKS_PER_SECOND;
        // Below `TICKS_PER_SECOND`, so the product is below one second.
        let sub = (tick % TICKS_PER_SECOND) as u32 * TICK_NANOS;
        self.origin.checked_add(Duration::new(secs, sub))
    }

    /// Puts `entry` in the wheel, to expire `timeout` or up to [`GRANULARITY`] later from now.
    /// Reads no clock. A timeout too long to be a point in time never fires.
    pub(crate) fn insert(self: &Arc<Self>, timeout: Duration, entry: Arc<dyn Expire>) {
        let mut wheel = self.wheel();
        entry.place().set(YOUNG, wheel.young.len());
        wheel.young.push(Entry {
            expire: entry,
            timeout,
        });
        wheel.pending += 1;
        if wheel.stamp_at.is_some() {
            return;
        }
        // The first young entry since the last stamping: the young entries are stamped one
        // epoch from now. This is the only clock read of an insert, once per epoch at most.
        let now = Instant::now();
        wheel.stamp_at = Some(now.checked_add(EPOCH).unwrap_or(now));
        if wheel.running {
            drop(wheel);
            self.young.notify_one();
        } else {
            wheel.running = true;
            drop(wheel);
            self.handle.spawn(self.clone().reap());
        }
    }

    /// Takes `entry` out of the wheel if it is still there (it is not once it has expired).
    pub(crate) fn remove(&self, entry: &dyn Expire) {
        let mut wheel = self.wheel();
        let place = entry.place();
        let (tick, at) = (
            place.tick.load(Ordering::Relaxed),
            place.index.load(Ordering::Relaxed),
        );
        if at == NOWHERE {
            return;
        }
        let Some(list) = wheel.list(tick) else {
            return;
        };
        let ours = list
            .get(at)
            .is_some_and(|e| std::ptr::addr_eq(Arc::as_ptr(&e.expire), entry as *const dyn Expire));
        if !ours {
            return;
        }
        let removed = list.swap_remove(at);
        if let Some(moved) = list.get(at) {
            moved.expire.place().set(tick, at);
        }
        removed.expire.place().set(YOUNG, NOWHERE);
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
        self.wheel().running
    }

    /// Files the young entries, stamped `now`, in their buckets.
    fn stamp(&self, wheel: &mut Wheel, now: Instant) {
        for entry in std::mem::take(&mut wheel.young) {
            let tick = now
                .checked_add(entry.timeout)
                .and_then(|deadline| self.tick_at_or_after(deadline))
                .filter(|tick| self.instant_of(*tick).is_some());
            match tick {
                Some(tick) => {
                    let bucket = wheel.bucket_for(tick);
                    entry.expire.place().set(tick, bucket.len());
                    bucket.push(entry);
                }
                // A deadline too far away to ever come.
                None => {
                    entry.expire.place().set(YOUNG, NOWHERE);
                    wheel.pending -= 1;
                }
            }
        }
    }

    /// The reaper: stamps young entries, expires due ones, sleeps until the next stamping or due
    /// bucket, and ends when the wheel is empty.
    async fn reap(self: Arc<Self>) {
        loop {
            let (due, wake_at, end) = {
                let mut wheel = self.wheel();
                // Read under the lock: every young entry was put in before it.
                let now = Instant::now();
                if wheel.stamp_at.is_some_and(|at| now >= at) {
                    self.stamp(&mut wheel, now);
                    wheel.stamp_at = None;
                }
                let due = wheel.take_due(self.tick_at_or_before(now));
                for e in &due {
                    e.expire.place().set(YOUNG, NOWHERE);
                }
                wheel.pending -= due.len();
                let next = wheel.next_due().and_then(|t| self.instant_of(t));
                let wake_at = match (next, wheel.stamp_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let end = wheel.pending == 0 && wheel.stamp_at.is_none();
                if end {
                    // Nothing pending: drop the emptied buckets and end; the next ask that has
                    // to wait starts a new reaper.
                    wheel.buckets.clear();
                    wheel.running = false;
                }
                (due, wake_at, end)
            };
            for e in due {
                e.expire.expire();
            }
            if end {
                return;
            }
            let young = self.young.notified();
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = young => {}
                    }
                }
                None => young.await,
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
        place: Place,
    }

    impl Probe {
        fn new() -> Arc<Self> {
            Arc::new(Probe {
                fired: Mutex::new(None),
                place: Place::new(),
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

        fn place(&self) -> &Place {
            &self.place
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
    async fn a_deadline_fires_at_or_after_it_and_within_the_granularity() {
        let wheel = Deadlines::new(Handle::current());
        // Not on a tick boundary, so rounding has to go up.
        tokio::time::advance(Duration::from_millis(3)).await;
        let deadline = Instant::now() + Duration::from_millis(25);
        let probe = Probe::new();
        wheel.insert(Duration::from_millis(25), probe.clone());
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
        // One removed while young, one after it was stamped into a bucket.
        let young = Probe::new();
        let stamped = Probe::new();
        wheel.insert(Duration::from_millis(50), young.clone());
        wheel.insert(Duration::from_millis(50), stamped.clone());
        assert!(wheel.reaper_running());
        wheel.remove(&*young);
        assert_eq!(wheel.pending(), 1);
        tokio::time::sleep(EPOCH * 2).await;
        assert_ne!(stamped.place.tick.load(Ordering::Relaxed), YOUNG);
        wheel.remove(&*stamped);
        assert_eq!(wheel.pending(), 0);
        for p in [&young, &stamped] {
            assert_eq!(p.place.index.load(Ordering::Relaxed), NOWHERE);
            // Removing again (as a finished ask's drop may) changes nothing.
            wheel.remove(&**p);
        }
        assert_eq!(wheel.pending(), 0);

        until_idle(&wheel).await;
        assert_eq!(young.fired(), None);
        assert_eq!(stamped.fired(), None);
        // Only the probes themselves still hold them: the wheel kept no copy.
        assert_eq!(Arc::strong_count(&young), 1);
        assert_eq!(Arc::strong_count(&stamped), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_put_in_while_the_reaper_sleeps_long_is_stamped_and_fires_in_time() {
        let wheel = Deadlines::new(Handle::current());
        let late = Probe::new();
        let start = Instant::now();
        wheel.insert(Duration::from_secs(60), late.clone());
        // The reaper has stamped the first entry and sleeps until its bucket, a minute away.
        tokio::time::sleep(EPOCH * 2).await;
        let soon = Probe::new();
        let soon_start = Instant::now();
        wheel.insert(Duration::from_millis(20), soon.clone());
        tokio::time::sleep(Duration::from_millis(40)).await;
        let fired = soon
            .fired()
            .expect("the sooner deadline waited for the later one");
        assert!(fired >= soon_start + Duration::from_millis(20));
        assert!(fired <= soon_start + Duration::from_millis(20) + GRANULARITY);
        assert_eq!(late.fired(), None);
        assert_eq!(wheel.pending(), 1);
        until_idle(&wheel).await;
        assert!(late.fired().unwrap() >= start + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_to_be_a_point_in_time_never_fires_and_does_not_keep_the_reaper() {
        let wheel = Deadlines::new(Handle::current());
        let never = Probe::new();
        wheel.insert(Duration::MAX, never.clone());
        until_idle(&wheel).await;
        assert_eq!(never.fired(), None);
        assert_eq!(wheel.pending(), 0);
        // Removing it afterwards is harmless.
        wheel.remove(&*never);
        assert_eq!(Arc::strong_count(&never), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn many_entries_with_mixed_timeouts_fire_in_time_or_not_at_all_once_removed() {
        let wheel = Deadlines::new(Handle::current());
        let mut entries = Vec::new();
        for i in 0..500u64 {
            // Timeouts from 0 to 997 ms, in no particular order, some sharing a tick, put in
            // over a few epochs.
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            let timeout = Duration::from_millis((i * 389) % 998);
            let probe = Probe::new();
            wheel.insert(timeout, probe.clone());
            entries.push((Instant::now() + timeout, probe));
        }
        // Every third entry that has not fired yet completes and is taken out: most of them
        // are in buckets by now, the last ones still young.
        let removed: Vec<bool> = entries
            .iter()
            .enumerate()
            .map(|(i, (_, probe))| {
                let remove = i % 3 == 0 && probe.fired().is_none();
                if remove {
                    wheel.remove(&**probe);
                }
                remove
            })
            .collect();
        assert!(removed.iter().filter(|r| **r).count() > 100);
        until_idle(&wheel).await;
        assert_eq!(wheel.pending(), 0);
        for (i, (deadline, probe)) in entries.iter().enumerate() {
            match probe.fired() {
                None => assert!(removed[i], "entry {i} never fired"),
                Some(fired) => {
                    assert!(!removed[i], "entry {i} fired after it was removed");
                    assert!(fired >= *deadline, "entry {i} fired early");
                    assert!(fired <= *deadline + GRANULARITY, "entry {i} fired late");
                }
            }
            assert_eq!(Arc::strong_count(probe), 1, "the wheel kept entry {i}");
        }
    }
}
