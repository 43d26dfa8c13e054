//! How an actor's task parks when its mailbox is empty and how a producer wakes it: one state
//! byte that owns the slot holding the task's waker.
//!
//! The byte is in one of four states:
//! - `IDLE`: the task is not parked. No producer touches the slot.
//! - `REGISTERING`: a poll of the task owns the slot and is putting its waker in.
//! - `PARKED`: the task is parked; its waker is in the slot.
//! - `WAKING`: the one producer that moved the state out of `PARKED` owns the slot and wakes
//!   the waker in it, in place, then puts the state back to `IDLE`.
//!
//! A poll takes the slot (`IDLE` or `PARKED` to `REGISTERING`), replaces the waker only if the
//! one in the slot would not wake the same task, publishes `PARKED` and then looks for work once
//! more. A producer pushes and then loads the state; only one that sees `PARKED` and wins the
//! move to `WAKING` goes further. Both the publication and that load are sequentially
//! consistent, as is the push and the consumer's look for work, so in their single total order
//! one side sees the other: a push made while the task parks either is seen by the task's second
//! look, or sees `PARKED` and wakes the task. No wake-up is lost.
//!
//! The waker stays in the slot from one parking to the next, so a task that parks again with the
//! same waker (the usual case) neither clones nor drops one, and the producer wakes it by
//! reference: per wake-up, one read-modify-write on each side of this byte. A poll that finds
//! the slot busy (a producer between `WAKING` and `IDLE`, or another poll registering) does not
//! wait: it wakes its own task so that it is polled again soon, and returns `Pending`.
//!
//! This module, `mpsc`, `handler_box`, `reply_slot`, `deadlines`, `sharding`'s `entity_id`,
//! `route_cache` and `direct`, and `cell`'s interceptor (`Intercept::intercept` and `lend`, its
//! one caller) are the crate's only `unsafe` code; each block says why it is sound, and the
//! tests below exercise many producers against a task that parks, polls without a wake-up, a
//! waker that changes between polls, a waker that panics, and dropping a parked future and the
//! slot.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

/// The task is not parked, and nobody owns the slot.
const IDLE: u8 = 0;
/// A poll owns the slot and is registering its waker.
const REGISTERING: u8 = 1;
/// The task is parked with its waker in the slot.
const PARKED: u8 = 2;
/// A producer owns the slot and is waking the waker in it.
const WAKING: u8 = 3;

/// The park/wake state of one mailbox (see the module's documentation).
pub(crate) struct Park {
    state: AtomicU8,
    /// Read or written only by whoever moved `state` to `REGISTERING` or `WAKING`, until it
    /// moves it on.
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the slot holds a `Waker`, which is `Send + Sync`; every access to it is made by the one
// party that moved the state to `REGISTERING` or `WAKING`, as each access below says.
unsafe impl Send for Park {}
// SAFETY: as for `Send`: concurrent callers reach the slot one at a time.
unsafe impl Sync for Park {}

/// Puts the state back to `IDLE` when dropped: a waker that panics while it is cloned, dropped
/// or woken does not leave the slot owned for ever.
struct BackToIdle<'a>(&'a AtomicU8);

impl Drop for BackToIdle<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: whoever takes the slot next (with an acquire read-modify-write) sees this
        // owner's last access to it as done.
        self.0.store(IDLE, Ordering::Release);
    }
}

impl Park {
    pub(crate) const fn new() -> Self {
        Park {
            state: AtomicU8::new(IDLE),
            waker: UnsafeCell::new(None),
        }
    }

    /// Wakes the parked task, if it is parked. Called after a push: costs one load while the
    /// task is not parked.
    #[inline]
    pub(crate) fn wake(&self) {
        // SeqCst: the push before this was a SeqCst read-modify-write, and the task publishes
        // `PARKED` with a SeqCst store before it looks for work again; one of the two sees the
        // other.
        if self.state.load(Ordering::SeqCst) == PARKED {
            self.wake_parked();
        }
    }

    #[inline]
    fn wake_parked(&self) {
        // Acquire: pairs with the task's store of `PARKED`, so its waker is seen in the slot.
        if self
            .state
            .compare_exchange(PARKED, WAKING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Another producer is waking it, or the task took the slot back.
            return;
        }
        let _idle = BackToIdle(&self.state);
        // SAFETY: this producer moved the state from `PARKED` to `WAKING`, which gives it the slot
        // until `_idle` stores `IDLE`: the task takes the slot only from `IDLE` or `PARKED`, and
        // other producers only from `PARKED`. It only reads the slot.
        if let Some(w) = unsafe { &*self.waker.get() } {
            w.wake_by_ref();
        }
    }

    /// Parks the task polled with `cx` unless `has_work` holds: `Ready` if it does, before or
    /// after registering the waker; `Pending` once parked, and the task is woken by the next
    /// [`Park::wake`]. Polling again while parked (without a wake-up) is allowed, with the same
    /// waker or another: the slot then holds the latest. Dropping the future that polls this
    /// while it is parked leaves the state `PARKED`: a later wake-up wakes that task once more,
    /// which a task must tolerate anyway.
    ///
    /// `has_work` must read what producers write before [`Park::wake`] with SeqCst loads.
    #[inline]
    pub(crate) fn poll_park(&self, cx: &mut Context<'_>, has_work: impl Fn() -> bool) -> Poll<()> {
        if has_work() {
            return Poll::Ready(());
        }
        let mut current = IDLE;
        loop {
            // Acquire: pairs with the release of the last owner of the slot.
            match self.state.compare_exchange_weak(
                current,
                REGISTERING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) if now == IDLE || now == PARKED => current = now,
                Err(_) => {
                    // A producer is waking this task (perhaps the wake-up that led to this poll),
                    // or another poll is registering. Have this task polled again instead of
                    // waiting here: by then the slot is free.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
        }
        {
            let idle = BackToIdle(&self.state);
            // SAFETY: this poll moved the state to `REGISTERING`, which gives it the slot until it
            // stores another state: producers take the slot only from `PARKED`, and other polls
            // only from `IDLE` or `PARKED`.
            let slot = unsafe { &mut *self.waker.get() };
            match slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
            std::mem::forget(idle);
        }
        // SeqCst, and a release: the producer that moves the state to `WAKING` sees the waker.
        // Followed by the SeqCst loads of `has_work`, which cannot move before it.
        self.state.store(PARKED, Ordering::SeqCst);
        if has_work() {
            // Take the task off parked so that the next push does not wake it for nothing. If a
            // producer has claimed the wake-up meanwhile, it wakes the task once more: harmless.
            let _ = self
                .state
                .compare_exchange(PARKED, IDLE, Ordering::Relaxed, Ordering::Relaxed);
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Drops the waker in the slot, if nobody else owns the slot right now, so that a task that
    /// has finished is not kept allocated by its mailbox. Called by the task once it will not
    /// park again; a wake-up after it finds no waker and does nothing.
    pub(crate) fn forget_waker(&self) {
        let mut current = self.state.load(Ordering::Relaxed);
        while current == IDLE || current == PARKED {
            match self.state.compare_exchange_weak(
                current,
                REGISTERING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let idle = BackToIdle(&self.state);
                    // SAFETY: moving the state to `REGISTERING` gave this call the slot, as in
                    // `poll_park`.
                    let old = unsafe { (*self.waker.get()).take() };
                    drop(idle);
                    drop(old);
                    return;
                }
                Err(now) => current = now,
            }
        }
        // A producer is waking the task, which is finishing anyway: the waker stays in the slot
        // until the mailbox is dropped.
    }

    /// Whether the slot holds a waker, for tests; `None` if someone else owns the slot now. While
    /// it looks, a parked task is not woken: only for tests that push nothing meanwhile.
    #[cfg(test)]
    pub(crate) fn holds_waker(&self) -> Option<bool> {
        let current = self.state.load(Ordering::Acquire);
        if current != IDLE && current != PARKED {
            return None;
        }
        self.state
            .compare_exchange(current, REGISTERING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: moving the state to `REGISTERING` gave this call the slot, as in `poll_park`;
        // it is given back in the state it was found in.
        let holds = unsafe { (*self.waker.get()).is_some() };
        self.state.store(current, Ordering::Release);
        Some(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{poll_fn, Future};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Counting>, Waker) {
        let c = Arc::new(Counting::default());
        (c.clone(), Waker::from(c))
    }

    fn wakes(c: &Counting) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn a_parked_task_is_woken_once_by_the_next_producer() {
        let park = Park::new();
        let work = AtomicUsize::new(0);
        let has_work = || work.load(Ordering::SeqCst) > 0;
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(park.poll_park(&mut cx, has_work), Poll::Pending);
        assert_eq!(park.state.load(Ordering::SeqCst), PARKED);
        work.fetch_add(1, Ordering::SeqCst);
        park.wake();
        park.wake();
        assert_eq!(
            wakes(&count),
            1,
            "the second producer finds the task no longer parked"
        );
        assert_eq!(park.state.load(Ordering::SeqCst), IDLE);
        assert_eq!(park.poll_park(&mut cx, has_work), Poll::Ready(()));
    }

    #[test]
    fn work_present_before_parking_is_ready_without_registering() {
        let park = Park::new();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(park.poll_park(&mut cx, || true), Poll::Ready(()));
        assert_eq!(park.state.load(Ordering::SeqCst), IDLE);
        assert_eq!(Arc::strong_count(&count), 2, "no copy of the waker kept");
    }

    #[test]
    fn work_found_after_registering_unparks_the_task() {
        let park = Park::new();
        let looks = AtomicUsize::new(0);
        // No work at the first look, work at the second: as if a push came in between.
        let has_work = || looks.fetch_add(1, Ordering::SeqCst) >= 1;
        let (count, waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), has_work),
            Poll::Ready(())
        );
        assert_eq!(park.state.load(Ordering::SeqCst), IDLE);
        park.wake();
        assert_eq!(wakes(&count), 0, "a task that is not parked is not woken");
    }

    #[test]
    fn polls_without_a_wake_up_keep_the_task_parked_with_one_waker() {
        let park = Park::new();
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        for _ in 0..3 {
            assert_eq!(park.poll_park(&mut cx, || false), Poll::Pending);
            assert_eq!(park.state.load(Ordering::SeqCst), PARKED);
        }
        // The counter, the test's waker, and one copy in the slot: re-polling with the same
        // waker does not clone it again.
        assert_eq!(Arc::strong_count(&count), 3);
        park.wake();
        assert_eq!(wakes(&count), 1);
    }

    #[test]
    fn a_waker_that_changes_between_polls_is_the_one_woken() {
        let park = Park::new();
        let (first, first_waker) = counting();
        let (second, second_waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&first_waker), || false),
            Poll::Pending
        );
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&second_waker), || false),
            Poll::Pending
        );
        // The counter and the test's waker: the copy in the slot was dropped when replaced.
        assert_eq!(Arc::strong_count(&first), 2);
        park.wake();
        assert_eq!((wakes(&first), wakes(&second)), (0, 1));
    }

    #[test]
    fn a_poll_that_finds_a_producer_waking_asks_to_be_polled_again() {
        let park = Park::new();
        let (count, waker) = counting();
        // As if a producer had claimed the wake-up and not finished it yet.
        park.state.store(WAKING, Ordering::SeqCst);
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), || false),
            Poll::Pending
        );
        assert_eq!(wakes(&count), 1, "the task woke itself");
        assert_eq!(
            park.state.load(Ordering::SeqCst),
            WAKING,
            "the slot left alone"
        );
        park.state.store(IDLE, Ordering::SeqCst);
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), || false),
            Poll::Pending
        );
        assert_eq!(park.state.load(Ordering::SeqCst), PARKED);
    }

    #[test]
    fn a_dropped_parked_future_leaves_a_wake_up_harmless_and_parking_possible_again() {
        let park = Park::new();
        let (count, waker) = counting();
        {
            let mut fut = std::pin::pin!(poll_fn(|cx| park.poll_park(cx, || false)));
            let mut cx = Context::from_waker(&waker);
            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        }
        assert_eq!(park.state.load(Ordering::SeqCst), PARKED);
        park.wake();
        assert_eq!(wakes(&count), 1);
        let (again, again_waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&again_waker), || false),
            Poll::Pending
        );
        park.wake();
        assert_eq!((wakes(&count), wakes(&again)), (1, 1));
    }

    #[test]
    fn dropping_the_slot_while_parked_drops_the_waker() {
        let park = Park::new();
        let (count, waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), || false),
            Poll::Pending
        );
        assert_eq!(Arc::strong_count(&count), 3);
        drop(park);
        assert_eq!(Arc::strong_count(&count), 2);
        assert_eq!(wakes(&count), 0);
    }

    #[test]
    fn forgetting_the_waker_releases_it_and_later_wake_ups_do_nothing() {
        let park = Park::new();
        let (count, waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), || false),
            Poll::Pending
        );
        assert_eq!(park.holds_waker(), Some(true));
        park.forget_waker();
        assert_eq!(park.holds_waker(), Some(false));
        assert_eq!(Arc::strong_count(&count), 2);
        assert_eq!(park.state.load(Ordering::SeqCst), IDLE);
        park.wake();
        assert_eq!(wakes(&count), 0);
    }

    /// A waker whose wake-up panics.
    struct Panicking;

    impl Wake for Panicking {
        fn wake(self: Arc<Self>) {
            panic!("a waker that panics");
        }
    }

    #[test]
    fn a_waker_that_panics_does_not_leave_the_slot_taken() {
        let park = Park::new();
        let waker = Waker::from(Arc::new(Panicking));
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&waker), || false),
            Poll::Pending
        );
        let woken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| park.wake()));
        assert!(woken.is_err());
        assert_eq!(park.state.load(Ordering::SeqCst), IDLE);
        // Parking and waking work again.
        let (count, counting_waker) = counting();
        assert_eq!(
            park.poll_park(&mut Context::from_waker(&counting_waker), || false),
            Poll::Pending
        );
        park.wake();
        assert_eq!(wakes(&count), 1);
    }

    /// Runs a task that handles the messages counted in `pushed` (recording how many in
    /// `handled`) until it has handled `total`, parking whenever it finds none.
    fn consumer(
        park: Arc<Park>,
        pushed: Arc<AtomicUsize>,
        handled: Arc<AtomicUsize>,
        total: usize,
    ) -> tokio::task::JoinHandle<usize> {
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < total {
                let now = pushed.load(Ordering::SeqCst);
                if now > seen {
                    seen = now;
                    handled.store(seen, Ordering::SeqCst);
                    continue;
                }
                poll_fn(|cx| park.poll_park(cx, || pushed.load(Ordering::SeqCst) > seen)).await;
            }
            seen
        })
    }

    /// One producer pushes a message, waits until it is handled, and pushes the next: every
    /// push races with the task going back to park, and a lost wake-up leaves the task parked
    /// with the message unhandled for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_push_racing_with_the_task_parking_always_wakes_it() {
        const MESSAGES: usize = 5_000;
        let park = Arc::new(Park::new());
        let (pushed, handled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let task = consumer(park.clone(), pushed.clone(), handled.clone(), MESSAGES);
        let producer = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            for i in 1..=MESSAGES {
                pushed.fetch_add(1, Ordering::SeqCst);
                park.wake();
                while handled.load(Ordering::SeqCst) < i {
                    if std::time::Instant::now() > deadline {
                        return Err(i);
                    }
                    std::thread::yield_now();
                }
            }
            Ok(())
        });
        let sent = tokio::task::spawn_blocking(move || producer.join().unwrap())
            .await
            .unwrap();
        assert_eq!(
            sent,
            Ok(()),
            "the message left unhandled with the task parked"
        );
        assert_eq!(task.await.unwrap(), MESSAGES);
    }

    /// Many producers push (count a message) and wake; one task handles every message and parks
    /// whenever it finds none. A lost wake-up leaves the task parked with messages unhandled, and
    /// the timeout fails the test. Repeated to try many interleavings.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_message_is_left_unhandled_while_the_task_is_parked() {
        const PRODUCERS: usize = 3;
        const EACH: usize = 2_000;
        const ROUNDS: usize = 20;
        for round in 0..ROUNDS {
            let park = Arc::new(Park::new());
            let pushed = Arc::new(AtomicUsize::new(0));
            let handled = Arc::new(AtomicUsize::new(0));
            let task = consumer(park.clone(), pushed.clone(), handled, PRODUCERS * EACH);
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|_| {
                    let (park, pushed) = (park.clone(), pushed.clone());
                    std::thread::spawn(move || {
                        for i in 0..EACH {
                            pushed.fetch_add(1, Ordering::SeqCst);
                            park.wake();
                            if i % 64 == 0 {
                                std::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for p in producers {
                p.join().unwrap();
            }
            let handled = tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a wake-up was lost"))
                .unwrap();
            assert_eq!(handled, PRODUCERS * EACH);
        }
    }
}
