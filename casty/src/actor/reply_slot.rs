//! The reply slot of an ask: a one-shot channel whose state, reply and waker share one atomic
//! byte, so that a round trip costs a handful of atomic read-modify-writes and no lock.
//!
//! Any number of writers may race to [`ReplySlot::put`] a reply (every copy of an ask's reply ref
//! can), and any number of parties may race to [`ReplySlot::close`] it (the last reply ref going
//! away, the deadline wheel, a node going down); exactly one of them moves the slot out of
//! *open*. One reader, the asker, polls for the outcome with [`ReplySlot::poll_take`].
//!
//! The state byte holds a phase and one flag, `WAKER`: the asker's waker is in the slot. The phase
//! moves `OPEN → WRITING → FULL → TAKEN` for a reply (the writer that wins `OPEN → WRITING` owns
//! the reply cell until it publishes `FULL`; the taker that wins `FULL → TAKEN` owns it after), or
//! `OPEN → CLOSED` / `OPEN → TIMED_OUT` without one. The waker cell follows the protocol of tokio's
//! oneshot channel: the asker writes it only while `WAKER` is clear, then sets `WAKER`; the one
//! party that ends the slot (publishes `FULL`, or closes it) takes the waker only if `WAKER` was
//! set in the state its read-modify-write replaced. An asker that must change its waker first
//! clears `WAKER`; if the state it replaced had already ended, the ending party may be reading the
//! waker, and the asker leaves it alone.
//!
//! This module, `mpsc`, `handler_box`, `deadlines` and `park` are the modules of the crate with
//! `unsafe` code; each block says why it is sound, and the tests below exercise drops, races
//! between writers, closers and the reader, and zero-sized and over-aligned replies.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

/// The asker's waker is in the slot.
const WAKER: u8 = 1;
/// No reply yet, and one may still come.
const OPEN: u8 = 0;
/// A writer won the slot and is putting its reply in.
const WRITING: u8 = 2;
/// The reply is in the slot.
const FULL: u8 = 4;
/// The asker took the reply.
const TAKEN: u8 = 6;
/// No reply can come any more (see [`Ended::Closed`]).
pub(crate) const CLOSED: u8 = 8;
/// The deadline passed before a reply came.
pub(crate) const TIMED_OUT: u8 = 10;

/// The phase of a state: the state without the `WAKER` flag.
fn phase(state: u8) -> u8 {
    state & !WAKER
}

/// Whether [`ReplySlot::close_deferred`] closed the slot, with the asker's waker to wake if so.
pub(crate) enum Closed {
    /// The slot had ended already, or a reply is on its way.
    No,
    /// Closed; the asker's waker, if it was waiting.
    Yes(Option<Waker>),
}

/// How a slot ended without a reply for its asker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The slot was closed: every reply ref was dropped, the target's node went down, the asker
    /// gave up, or the reply was already taken.
    Closed,
    /// The deadline passed first.
    TimedOut,
}

/// A one-shot reply slot (see the module's documentation).
pub(crate) struct ReplySlot<R> {
    state: AtomicU8,
    /// Initialized from the moment the phase is `FULL` until it is `TAKEN`.
    reply: UnsafeCell<MaybeUninit<R>>,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the slot hands an `R` from the thread that puts it to the thread that takes it, so `R`
// must be `Send`; it never gives out a shared reference to the reply, so `R` need not be `Sync`.
// Every access to the two cells is made exclusive by the state protocol described above (each
// access below says which transition grants it), and the waker is `Send + Sync`.
unsafe impl<R: Send> Send for ReplySlot<R> {}
// SAFETY: as for `Send`: concurrent callers only ever reach the cells one at a time.
unsafe impl<R: Send> Sync for ReplySlot<R> {}

impl<R> ReplySlot<R> {
    pub(crate) fn new() -> Self {
        ReplySlot {
            state: AtomicU8::new(OPEN),
            reply: UnsafeCell::new(MaybeUninit::uninit()),
            waker: UnsafeCell::new(None),
        }
    }

    /// Puts the reply in and wakes the asker; hands the reply back if the slot is no longer open
    /// (it has its reply, or it was closed or timed out).
    pub(crate) fn put(&self, reply: R) -> Result<(), R> {
        // The usual case first: the asker is waiting, with its waker in.
        let mut current = WAKER;
        loop {
            if phase(current) != OPEN {
                return Err(reply);
            }
            match self.state.compare_exchange_weak(
                current,
                current | WRITING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        // SAFETY: this writer moved the phase from `OPEN` to `WRITING`, which only one party can
        // do, and nobody else touches the reply cell until the phase is `FULL`.
        unsafe { (*self.reply.get()).write(reply) };
        // `WRITING` to `FULL` without touching the `WAKER` bit, which the asker may flip
        // meanwhile; only this writer changes the phase from `WRITING`.
        let before = self.state.fetch_add(FULL - WRITING, Ordering::AcqRel);
        if before & WAKER != 0 {
            self.wake();
        }
        Ok(())
    }

    /// Ends the slot without a reply (`why` is [`CLOSED`] or [`TIMED_OUT`]) unless it has a reply
    /// or one is on its way, and wakes the asker. Returns whether it did.
    pub(crate) fn close(&self, why: u8) -> bool {
        match self.end(why) {
            None => false,
            Some(replaced) => {
                if replaced & WAKER != 0 {
                    self.wake();
                }
                true
            }
        }
    }

    /// Like [`ReplySlot::close`], but hands back the asker's waker (if it was waiting) instead of
    /// waking it, for a caller that must not run a waker where it is (under a lock).
    pub(crate) fn close_deferred(&self, why: u8) -> Closed {
        match self.end(why) {
            None => Closed::No,
            Some(replaced) if replaced & WAKER != 0 => Closed::Yes(self.take_waker()),
            Some(_) => Closed::Yes(None),
        }
    }

    /// Moves the slot from open to `why`, if it is open; returns the state it replaced.
    #[inline]
    fn end(&self, why: u8) -> Option<u8> {
        debug_assert!(why == CLOSED || why == TIMED_OUT);
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if phase(current) != OPEN {
                return None;
            }
            match self.state.compare_exchange_weak(
                current,
                current | why,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(current),
                Err(actual) => current = actual,
            }
        }
    }

    /// Wakes the asker. Called only by the party that ended the slot, after seeing `WAKER` in the
    /// state it replaced.
    fn wake(&self) {
        if let Some(w) = self.take_waker() {
            w.wake();
        }
    }

    /// Takes the asker's waker out. Called only by the party that ended the slot, after seeing
    /// `WAKER` in the state it replaced.
    fn take_waker(&self) -> Option<Waker> {
        // SAFETY: the asker wrote its waker before setting `WAKER` (release), and the caller's
        // read-modify-write saw `WAKER` set (acquire). The asker touches the cell again only
        // after clearing `WAKER` and finding the slot still open, which it no longer is.
        unsafe { (*self.waker.get()).take() }
    }

    /// Whether a reply can still come.
    pub(crate) fn is_open(&self) -> bool {
        phase(self.state.load(Ordering::Acquire)) == OPEN
    }

    /// The outcome for the asker, if the slot has ended. Takes the reply out if it is there.
    fn outcome(&self, state: u8) -> Option<Result<R, Ended>> {
        match phase(state) {
            OPEN | WRITING => None,
            FULL => {
                let taken = self
                    .state
                    .compare_exchange(
                        state,
                        TAKEN | (state & WAKER),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok();
                if !taken {
                    // Another taker won; only the asker takes, so this does not happen, but the
                    // reply is then not ours.
                    return Some(Err(Ended::Closed));
                }
                // SAFETY: the phase was `FULL`, published with release after the writer's write,
                // and this call moved it to `TAKEN`, which only one caller can do: the reply is
                // initialized and now ours, and `Drop` will not drop it again.
                Some(Ok(unsafe { (*self.reply.get()).assume_init_read() }))
            }
            TIMED_OUT => Some(Err(Ended::TimedOut)),
            _ => Some(Err(Ended::Closed)),
        }
    }

    /// The asker's side: the reply (taken out of the slot) or why there is none, or `Pending`
    /// with the waker registered to be woken when the slot ends. Only one task may poll a slot
    /// (the asker); it may change wakers between polls.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<R, Ended>> {
        let mut state = self.state.load(Ordering::Acquire);
        if let Some(done) = self.outcome(state) {
            return Poll::Ready(done);
        }
        if state & WAKER != 0 {
            // Take the waker cell back before looking at it.
            state = self.state.fetch_and(!WAKER, Ordering::AcqRel) & !WAKER;
            if let Some(done) = self.outcome(state) {
                return Poll::Ready(done);
            }
        }
        // SAFETY: `WAKER` is clear and the slot was still open when it was cleared (or it was
        // never set): no party that ends the slot reads the cell, and only the asker writes it.
        unsafe {
            let slot = &mut *self.waker.get();
            match slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        let before = self.state.fetch_or(WAKER, Ordering::AcqRel);
        match self.outcome(before | WAKER) {
            Some(done) => Poll::Ready(done),
            None => Poll::Pending,
        }
    }
}

impl<R> Drop for ReplySlot<R> {
    fn drop(&mut self) {
        if phase(*self.state.get_mut()) == FULL {
            // SAFETY: `FULL` means the reply was written and not taken; `&mut self` means no
            // one else can reach it.
            unsafe { self.reply.get_mut().assume_init_drop() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts how many times values made with it were dropped.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that counts its wake-ups.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Wakes>, Waker) {
        let w = Arc::new(Wakes(AtomicUsize::new(0)));
        (w.clone(), Waker::from(w))
    }

    fn poll<R>(slot: &ReplySlot<R>, waker: &Waker) -> Poll<Result<R, Ended>> {
        slot.poll_take(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_reply_put_and_never_taken_is_dropped_once_with_the_slot() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = ReplySlot::new();
        assert!(slot.put(Counted(drops.clone())).is_ok());
        assert!(!slot.is_open());
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_taken_reply_belongs_to_the_taker_and_is_not_dropped_again() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = ReplySlot::new();
        let (_, w) = waker();
        assert!(slot.put(Counted(drops.clone())).is_ok());
        let Poll::Ready(Ok(reply)) = poll(&slot, &w) else {
            panic!("the reply is in");
        };
        assert!(
            matches!(poll(&slot, &w), Poll::Ready(Err(Ended::Closed))),
            "a reply is taken only once"
        );
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(reply);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_refused_reply_is_handed_back_and_the_slot_keeps_the_first() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = ReplySlot::new();
        assert!(slot.put(Counted(drops.clone())).is_ok());
        let back = slot.put(Counted(drops.clone())).expect_err("refused");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(!slot.close(CLOSED), "an answered slot does not close");
        drop(slot);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_waiting_asker_is_woken_once_by_whoever_ends_the_slot() {
        for end in 0..3 {
            let slot = ReplySlot::new();
            let (wakes, w) = waker();
            assert!(poll(&slot, &w).is_pending());
            assert!(
                poll(&slot, &w).is_pending(),
                "polling again changes nothing"
            );
            assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
            match end {
                0 => assert!(slot.put(7u32).is_ok()),
                1 => assert!(slot.close(CLOSED)),
                _ => assert!(slot.close(TIMED_OUT)),
            }
            assert!(!slot.close(TIMED_OUT), "the slot ends once");
            assert_eq!(slot.put(8), Err(8));
            assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
            let expected = match end {
                0 => Ok(7),
                1 => Err(Ended::Closed),
                _ => Err(Ended::TimedOut),
            };
            assert_eq!(poll(&slot, &w), Poll::Ready(expected));
        }
    }

    #[test]
    fn a_new_waker_replaces_the_old_one_and_only_it_is_woken() {
        let slot = ReplySlot::new();
        let (first, w1) = waker();
        let (second, w2) = waker();
        assert!(poll(&slot, &w1).is_pending());
        assert!(poll(&slot, &w2).is_pending());
        assert!(slot.put(1u8).is_ok());
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&slot, &w2), Poll::Ready(Ok(1)));
        // The slot let go of its clones of both wakers.
        drop((slot, w1, w2));
        assert_eq!(Arc::strong_count(&first), 1);
        assert_eq!(Arc::strong_count(&second), 1);
    }

    #[test]
    fn zero_sized_and_over_aligned_replies_go_through() {
        let (_, w) = waker();
        let unit = ReplySlot::new();
        assert_eq!(unit.put(()), Ok(()));
        assert_eq!(poll(&unit, &w), Poll::Ready(Ok(())));

        #[derive(Debug, PartialEq)]
        #[repr(align(64))]
        struct Wide([u8; 3]);
        let wide = ReplySlot::new();
        assert_eq!(wide.put(Wide([1, 2, 3])), Ok(()));
        let Poll::Ready(Ok(back)) = poll(&wide, &w) else {
            panic!("the reply is in");
        };
        assert_eq!(back, Wide([1, 2, 3]));
        assert_eq!(std::ptr::from_ref(&back) as usize % 64, 0);
    }

    #[test]
    fn racing_writers_closers_and_the_asker_end_each_slot_exactly_once() {
        // Many rounds of: two writers and a closer race on a fresh slot while the asker polls
        // with a waker that changes between polls. Exactly one outcome, no reply lost or dropped
        // twice, and the asker learns the outcome.
        for _ in 0..2_000 {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(ReplySlot::new());
            let accepted = Arc::new(AtomicUsize::new(0));
            let mut threads = Vec::new();
            for _ in 0..2 {
                let (slot, drops, accepted) = (slot.clone(), drops.clone(), accepted.clone());
                threads.push(std::thread::spawn(move || {
                    if slot.put(Counted(drops)).is_ok() {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }));
            }
            let closer = slot.clone();
            let closed = std::thread::spawn(move || closer.close(CLOSED));
            let mut outcome = None;
            let mut polls = 0u32;
            while outcome.is_none() {
                let (_, w) = waker();
                if let Poll::Ready(r) = poll(&slot, &w) {
                    outcome = Some(r);
                }
                polls += 1;
                if polls.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
            for t in threads {
                t.join().unwrap();
            }
            let closed = closed.join().unwrap();
            let accepted = accepted.load(Ordering::SeqCst);
            match outcome.unwrap() {
                Ok(reply) => {
                    assert_eq!((accepted, closed), (1, false));
                    drop(reply);
                }
                Err(e) => {
                    assert_eq!((accepted, closed, e), (0, true, Ended::Closed));
                }
            }
            drop(slot);
            assert_eq!(
                drops.load(Ordering::SeqCst),
                2,
                "each value dropped exactly once"
            );
        }
    }
}
