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
//! The wheel holds no reference count of its entries: an entry is put in through a [`Waiting`],
//! which owns the entry's `Arc` and takes the entry out again when it is dropped, before it lets
//! go of the `Arc`; the wheel keeps a pointer, and uses it only under its lock. This saves two
//! atomic read-modify-writes per waiting ask, and is this module's only `unsafe` code.
//!
//! A deadline never fires early: an entry is stamped no sooner than its ask started, and a bucket
//! is due only once the clock has reached its tick, at or after every deadline in it. It fires at
//! most [`GRANULARITY`] late (one epoch of waiting to be stamped, one tick of rounding), plus
//! scheduling.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
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
    /// The deadline has passed. Called under the wheel's lock, so it must not wake anything
    /// there: it returns the waker to wake once the lock is released.
    fn expire(&self) -> Option<Waker>;
    /// Where the entry is in the wheel.
    fn place(&self) -> &Place;
}

/// An entry and its timeout (which counts from the moment it is stamped).
struct Entry {
    /// The [`Waiting`] that put the entry in owns an `Arc` of it and takes the entry out (under
    /// the wheel's lock) before that `Arc` goes; a leaked `Waiting` leaks its `Arc` too. So
    /// while the entry is in the wheel, and while the wheel's lock is held after taking it out,
    /// the pointer is valid.
    expire: NonNull<dyn Expire>,
    timeout: Duration,
}

// SAFETY: the pointee is `Send + Sync` (a bound of `Expire`); the pointer is only dereferenced
// under the wheel's lock, while it is valid (see `Entry::expire`).
unsafe impl Send for Entry {}

impl Entry {
    /// The entry. Call only with the wheel's lock held, on an entry that is in the wheel or was
    /// taken out under the same hold of the lock.
    fn get(&self) -> &dyn Expire {
        // SAFETY: see `Entry::expire`: the lock is held and the entry was in the wheel when it
        // was taken, so the `Waiting` that owns it has not finished dropping.
        unsafe { self.expire.as_ref() }
    }
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
    /// Reads no clock. A timeout too long to be a point in time never fires. Only
    /// [`Waiting::wait`] calls this, which guarantees that `entry` stays valid until it is taken
    /// out.
    fn insert(self: &Arc<Self>, timeout: Duration, entry: NonNull<dyn Expire>) {
        let mut wheel = self.wheel();
        let place = wheel.young.len();
        let entry = Entry {
            expire: entry,
            timeout,
        };
        entry.get().place().set(YOUNG, place);
        wheel.young.push(entry);
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
    fn remove(&self, entry: &dyn Expire) {
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
            .is_some_and(|e| std::ptr::addr_eq(e.expire.as_ptr(), entry as *const dyn Expire));
        if !ours {
            return;
        }
        let removed = list.swap_remove(at);
        if let Some(moved) = list.get(at) {
            moved.get().place().set(tick, at);
        }
        removed.get().place().set(YOUNG, NOWHERE);
        wheel.pending -= 1;
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
                    entry.get().place().set(tick, bucket.len());
                    bucket.push(entry);
                }
                // A deadline too far away to ever come.
                None => {
                    entry.get().place().set(YOUNG, NOWHERE);
                    wheel.pending -= 1;
                }
            }
        }
    }

    /// The reaper: stamps young entries, expires due ones, sleeps until the next stamping or due
    /// bucket, and ends when the wheel is empty.
    async fn reap(self: Arc<Self>) {
        loop {
            let mut wakers = Vec::new();
            let (wake_at, end) = {
                let mut wheel = self.wheel();
                // Read under the lock: every young entry was put in before it.
                let now = Instant::now();
                if wheel.stamp_at.is_some_and(|at| now >= at) {
                    self.stamp(&mut wheel, now);
                    wheel.stamp_at = None;
                }
                let due = wheel.take_due(self.tick_at_or_before(now));
                wheel.pending -= due.len();
                // Expired under the lock, which keeps each entry valid (see `Entry::expire`); the
                // askers are woken after it is released, so that no waker runs under it.
                for e in &due {
                    e.get().place().set(YOUNG, NOWHERE);
                    wakers.extend(e.get().expire());
                }
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
                (wake_at, end)
            };
            for w in wakers {
                w.wake();
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

/// An entry with a deadline, owned for as long as it may wait in the wheel: [`Waiting::wait`]
/// puts it in, and dropping the `Waiting` takes it out before its `Arc` is released.
pub(crate) struct Waiting<'a, T: Expire + 'static> {
    wheel: &'a Arc<Deadlines>,
    entry: Arc<T>,
    /// Whether the entry was put in the wheel.
    in_wheel: bool,
}

impl<'a, T: Expire + 'static> Waiting<'a, T> {
    pub(crate) fn new(wheel: &'a Arc<Deadlines>, entry: Arc<T>) -> Self {
        Waiting {
            wheel,
            entry,
            in_wheel: false,
        }
    }

    pub(crate) fn entry(&self) -> &Arc<T> {
        &self.entry
    }

    /// Puts the entry in the wheel, to expire `timeout` (up to [`GRANULARITY`] more) from now,
    /// unless it already is (or was).
    pub(crate) fn wait(&mut self, timeout: Duration) {
        if !self.in_wheel {
            let entry: &(dyn Expire + 'static) = &*self.entry;
            self.wheel.insert(timeout, NonNull::from(entry));
            self.in_wheel = true;
        }
    }
}

impl<T: Expire + 'static> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if self.in_wheel {
            // Before `self.entry` is dropped, so the wheel's pointer stays valid while it holds
            // it (see `Entry::expire`).
            self.wheel.remove(&*self.entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry that records when it expired, and hands back `waker` to be woken then.
    struct Probe {
        fired: Mutex<Option<Instant>>,
        place: Place,
        waker: Mutex<Option<Waker>>,
    }

    impl Probe {
        fn new() -> Arc<Self> {
            Arc::new(Probe {
                fired: Mutex::new(None),
                place: Place::new(),
                waker: Mutex::new(None),
            })
        }

        fn fired(&self) -> Option<Instant> {
            *self.fired.lock().unwrap()
        }
    }

    impl Expire for Probe {
        fn expire(&self) -> Option<Waker> {
            let mut f = self.fired.lock().unwrap();
            assert!(f.is_none(), "an entry expired twice");
            *f = Some(Instant::now());
            self.waker.lock().unwrap().take()
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

    /// Puts a new probe in `wheel` with `timeout`.
    fn waiting(wheel: &Arc<Deadlines>, timeout: Duration) -> Waiting<'_, Probe> {
        let mut w = Waiting::new(wheel, Probe::new());
        w.wait(timeout);
        w
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_fires_at_or_after_it_and_within_the_granularity() {
        let wheel = Deadlines::new(Handle::current());
        // Not on a tick boundary, so rounding has to go up.
        tokio::time::advance(Duration::from_millis(3)).await;
        let deadline = Instant::now() + Duration::from_millis(25);
        let probe = waiting(&wheel, Duration::from_millis(25));
        assert_eq!(wheel.pending(), 1);

        tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
        assert_eq!(probe.entry().fired(), None, "fired before its deadline");

        until_idle(&wheel).await;
        let fired = probe.entry().fired().expect("never fired");
        assert!(fired >= deadline, "fired {:?} early", deadline - fired);
        assert!(
            fired <= deadline + GRANULARITY,
            "fired {:?} late",
            fired - deadline
        );
        assert_eq!(wheel.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiting_entry_is_taken_out_never_fires_and_is_freed() {
        let wheel = Deadlines::new(Handle::current());
        // One dropped while young, one after it was stamped into a bucket.
        let young = waiting(&wheel, Duration::from_millis(50));
        let stamped = waiting(&wheel, Duration::from_millis(50));
        let (young_probe, stamped_probe) = (young.entry().clone(), stamped.entry().clone());
        assert!(wheel.reaper_running());
        drop(young);
        assert_eq!(wheel.pending(), 1);
        tokio::time::sleep(EPOCH * 2).await;
        assert_ne!(stamped_probe.place.tick.load(Ordering::Relaxed), YOUNG);
        drop(stamped);
        assert_eq!(wheel.pending(), 0);
        for p in [&young_probe, &stamped_probe] {
            assert_eq!(p.place.index.load(Ordering::Relaxed), NOWHERE);
        }
        until_idle(&wheel).await;
        assert_eq!(young_probe.fired(), None);
        assert_eq!(stamped_probe.fired(), None);
        // The wheel kept no count of them: only these handles still hold them.
        assert_eq!(Arc::strong_count(&young_probe), 1);
        assert_eq!(Arc::strong_count(&stamped_probe), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_entry_dropped_after_it_fired_leaves_nothing_behind() {
        let wheel = Deadlines::new(Handle::current());
        let w = waiting(&wheel, Duration::from_millis(5));
        until_idle(&wheel).await;
        assert!(w.entry().fired().is_some());
        let probe = w.entry().clone();
        drop(w);
        assert_eq!(wheel.pending(), 0);
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaked_waiting_entry_stays_valid_and_still_fires() {
        let wheel = Deadlines::new(Handle::current());
        let w = waiting(&wheel, Duration::from_millis(20));
        let probe = w.entry().clone();
        // Leaking the handle leaks its count of the entry, so the wheel's pointer stays valid.
        std::mem::forget(w);
        until_idle(&wheel).await;
        assert!(probe.fired().is_some());
        assert_eq!(Arc::strong_count(&probe), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_put_in_while_the_reaper_sleeps_long_is_stamped_and_fires_in_time() {
        let wheel = Deadlines::new(Handle::current());
        let start = Instant::now();
        let late = waiting(&wheel, Duration::from_secs(60));
        // The reaper has stamped the first entry and sleeps until its bucket, a minute away.
        tokio::time::sleep(EPOCH * 2).await;
        let soon_start = Instant::now();
        let soon = waiting(&wheel, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(40)).await;
        let fired = soon
            .entry()
            .fired()
            .expect("the sooner deadline waited for the later one");
        assert!(fired >= soon_start + Duration::from_millis(20));
        assert!(fired <= soon_start + Duration::from_millis(20) + GRANULARITY);
        assert_eq!(late.entry().fired(), None);
        assert_eq!(wheel.pending(), 1);
        until_idle(&wheel).await;
        assert!(late.entry().fired().unwrap() >= start + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_long_to_be_a_point_in_time_never_fires_and_does_not_keep_the_reaper() {
        let wheel = Deadlines::new(Handle::current());
        let never = waiting(&wheel, Duration::MAX);
        until_idle(&wheel).await;
        assert_eq!(never.entry().fired(), None);
        assert_eq!(wheel.pending(), 0);
        // Dropping it afterwards is harmless.
        let probe = never.entry().clone();
        drop(never);
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn many_entries_with_mixed_timeouts_fire_in_time_or_not_at_all_once_dropped() {
        let wheel = Deadlines::new(Handle::current());
        let mut entries = Vec::new();
        for i in 0..500u64 {
            // Timeouts from 0 to 997 ms, in no particular order, some sharing a tick, put in
            // over a few epochs.
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            let timeout = Duration::from_millis((i * 389) % 998);
            entries.push((Instant::now() + timeout, Some(waiting(&wheel, timeout))));
        }
        let probes: Vec<Arc<Probe>> = entries
            .iter()
            .map(|(_, w)| w.as_ref().unwrap().entry().clone())
            .collect();
        // Every third entry that has not fired yet completes and is dropped: most of them are
        // in buckets by now, the last ones still young.
        let mut removed = vec![false; entries.len()];
        for (i, (_, w)) in entries.iter_mut().enumerate() {
            if i % 3 == 0 && probes[i].fired().is_none() {
                *w = None;
                removed[i] = true;
            }
        }
        assert!(removed.iter().filter(|r| **r).count() > 100);
        until_idle(&wheel).await;
        assert_eq!(wheel.pending(), 0);
        for (i, (deadline, _)) in entries.iter().enumerate() {
            match probes[i].fired() {
                None => assert!(removed[i], "entry {i} never fired"),
                Some(fired) => {
                    assert!(!removed[i], "entry {i} fired after it was dropped");
                    assert!(fired >= *deadline, "entry {i} fired early");
                    assert!(fired <= *deadline + GRANULARITY, "entry {i} fired late");
                }
            }
        }
        drop(entries);
        for (i, p) in probes.iter().enumerate() {
            assert_eq!(Arc::strong_count(p), 1, "entry {i} is still held");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_dropped_while_the_reaper_expires_them_are_each_expired_at_most_once() {
        // On real time and two workers: tasks drop their entries around the moment the reaper
        // expires them, so a drop often waits for the reaper's lock while it expires the very
        // entry being dropped. Each entry fires at most once, and none is held afterwards.
        let wheel = Deadlines::new(Handle::current());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400u64 {
            let wheel = wheel.clone();
            tasks.spawn(async move {
                let w = waiting(&wheel, Duration::from_millis(i % 3));
                let probe = w.entry().clone();
                tokio::time::sleep(Duration::from_micros(9_000 + (i * 37) % 3_000)).await;
                drop(w);
                probe
            });
        }
        let mut probes = Vec::new();
        while let Some(p) = tasks.join_next().await {
            probes.push(p.unwrap());
        }
        until_idle(&wheel).await;
        assert_eq!(wheel.pending(), 0);
        for p in &probes {
            assert_eq!(Arc::strong_count(p), 1);
        }
    }

    /// A waker that, when woken, looks into the wheel (takes its lock) and counts.
    struct LooksIntoTheWheel {
        wheel: Arc<Deadlines>,
        woken: std::sync::atomic::AtomicUsize,
    }

    impl std::task::Wake for LooksIntoTheWheel {
        fn wake(self: Arc<Self>) {
            let _ = self.wheel.pending();
            self.woken.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_entry_s_waker_runs_after_the_wheel_s_lock_is_released() {
        // A waker that takes the wheel's lock would deadlock if it were woken under it.
        let wheel = Deadlines::new(Handle::current());
        let looks = Arc::new(LooksIntoTheWheel {
            wheel: wheel.clone(),
            woken: std::sync::atomic::AtomicUsize::new(0),
        });
        let w = Waiting::new(&wheel, Probe::new());
        *w.entry().waker.lock().unwrap() = Some(Waker::from(looks.clone()));
        let mut w = w;
        w.wait(Duration::from_millis(5));
        until_idle(&wheel).await;
        assert!(w.entry().fired().is_some());
        assert_eq!(looks.woken.load(Ordering::SeqCst), 1);
    }
}
