//! Mailboxes: the queue in front of every actor, and how its task is woken.
//!
//! A mailbox owns a lock-free queue of user messages (`actor::mpsc`): many producers, one
//! consumer at a time, in blocks of 31 slots allocated as messages arrive and freed once drained,
//! never per message, and nothing until the first message. The queue sits inline in the actor's
//! shared part, five words. A bounded mailbox is the same queue plus atomic
//! counts that enforce its bound, so its memory follows its contents, not its bound: a capacity of
//! 1,000,000 costs nothing up front. `tell` pushes and then wakes the actor only if it is parked,
//! so while an actor is busy a producer pays one push and one load (a bounded one adds a
//! compare-and-swap on the producers' count): no lock, no allocation (see the benchmarks).
//! Bounded mailboxes apply one [`Overflow`] policy (L10).
//!
//! A producer takes a slot (counts it in `taken`) before it pushes, and the consumer gives it
//! back (counts it in `given`) after it pops, so `taken - given` is never below the number of
//! messages queued and never above the bound. The two counts sit on separate cache lines, and a
//! producer reads `given` only when the last value it saw says the mailbox is full.
//!
//! The park/wake protocol is Dekker-style (`actor::park`): the consumer registers its waker,
//! publishes that it is parked, and re-checks for work; a producer pushes and then checks whether
//! the consumer is parked. Both sides use `SeqCst`, so at least one of them sees the other and no
//! wake-up is lost. `send().await` on a full `Reject` mailbox waits the same way: it counts itself
//! in `waiters` and then reads `given`, while the consumer adds to `given` and then reads
//! `waiters`.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::actor::mpsc::{InPlace, Queue as Mpsc};
use crate::actor::park::Park;
use tokio::sync::Notify;

/// What a bounded mailbox does when it is full (L10). Every drop publishes a `DeadLetter`.
///
/// # Examples
///
/// ```
/// use casty::{Mailbox, Overflow};
/// let m = Mailbox::bounded(100, Overflow::DropOldest);
/// assert_eq!(m.capacity(), Some(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Discard the incoming message.
    DropNew,
    /// Discard the oldest message in the mailbox to make room.
    DropOldest,
    /// Refuse the message: `try_tell` returns it, `send().await` waits for room, and `tell` turns it
    /// into a dead letter.
    Reject,
}

/// The kind of mailbox an actor gets at spawn: unbounded (the default) or bounded with a policy.
///
/// # Examples
///
/// ```
/// use casty::{Mailbox, Overflow};
/// assert_eq!(Mailbox::default(), Mailbox::unbounded());
/// assert_eq!(Mailbox::bounded(8, Overflow::Reject).overflow(), Some(Overflow::Reject));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mailbox {
    bounded: Option<(usize, Overflow)>,
}

impl Mailbox {
    /// The largest capacity of a bounded mailbox: 1,000,000,000 messages. A larger bound is not a
    /// bound in practice; leave the mailbox unbounded instead. The configuration loader refuses a
    /// larger `capacity`, and [`Mailbox::bounded`] lowers one to this.
    pub const MAX_CAPACITY: usize = 1_000_000_000;

    /// An unbounded mailbox. Never drops a message while the actor lives.
    pub const fn unbounded() -> Self {
        Mailbox { bounded: None }
    }

    /// A mailbox that holds at most `capacity` messages and applies `overflow` when full.
    ///
    /// Its memory follows what it holds, not its bound: nothing is allocated up front, so a large
    /// capacity on many actors costs nothing until messages queue up. `capacity` is kept within
    /// `1..=`[`Mailbox::MAX_CAPACITY`]: 0 becomes 1 and anything above the maximum becomes the
    /// maximum, so no value makes spawning fail.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Mailbox, Overflow};
    /// assert_eq!(Mailbox::bounded(1_000_000, Overflow::DropNew).capacity(), Some(1_000_000));
    /// assert_eq!(Mailbox::bounded(0, Overflow::DropNew).capacity(), Some(1));
    /// assert_eq!(
    ///     Mailbox::bounded(usize::MAX, Overflow::Reject).capacity(),
    ///     Some(Mailbox::MAX_CAPACITY)
    /// );
    /// ```
    pub fn bounded(capacity: usize, overflow: Overflow) -> Self {
        Mailbox {
            bounded: Some((capacity.clamp(1, Self::MAX_CAPACITY), overflow)),
        }
    }

    /// The capacity, or `None` for an unbounded mailbox.
    pub fn capacity(&self) -> Option<usize> {
        self.bounded.map(|(c, _)| c)
    }

    /// The overflow policy, or `None` for an unbounded mailbox.
    pub fn overflow(&self) -> Option<Overflow> {
        self.bounded.map(|(_, o)| o)
    }
}

/// The result of pushing a message.
pub(crate) enum Push<M> {
    /// Enqueued.
    Queued,
    /// Enqueued, but the policy dropped this message (the new one or the evicted head).
    Dropped(M),
    /// Refused because the mailbox is full (`Reject`).
    Full(M),
    /// Refused because the actor has stopped.
    Closed(M),
}

/// The queue, and for a bounded mailbox its bound and policy.
enum Queue<M> {
    Unbounded(Mpsc<M>),
    Bounded {
        q: Mpsc<M>,
        cap: usize,
        overflow: Overflow,
        bound: Box<Bound>,
    },
}

// `Bound::take_slot` tells a stale `taken` from a full mailbox by this.
const _: () = assert!(Mailbox::MAX_CAPACITY < isize::MAX as usize / 2);

/// Keeps what it holds on a cache line of its own. 64 bytes, not the 128 of crossbeam's
/// `CachePadded`: two lines cost a bounded mailbox 128 bytes instead of 256, and measured as fast.
#[repr(align(64))]
struct Padded<T>(T);

/// The counts of a bounded mailbox. Producers take slots and the consumer gives them back, each
/// on its own cache line; a producer reads the consumer's line only when its cached view of it
/// says the mailbox is full, so a mailbox that is not full costs a producer no more cache traffic
/// than an unbounded one. `taken - given` (wrapping) is the number of messages queued or being
/// pushed: never below what is queued, never above the capacity.
struct Bound {
    producers: Padded<ProducerSide>,
    consumer: Padded<ConsumerSide>,
}

struct ProducerSide {
    /// Slots ever taken.
    taken: AtomicUsize,
    /// A value `given` had (the latest a producer read): a lower bound on it.
    given_seen: AtomicUsize,
}

struct ConsumerSide {
    /// Slots ever given back (one per message popped).
    given: AtomicUsize,
    /// `send().await` calls waiting for room.
    waiters: AtomicUsize,
    notify: Notify,
}

impl Bound {
    fn new() -> Box<Self> {
        Box::new(Bound {
            producers: Padded(ProducerSide {
                taken: AtomicUsize::new(0),
                given_seen: AtomicUsize::new(0),
            }),
            consumer: Padded(ConsumerSide {
                given: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                notify: Notify::new(),
            }),
        })
    }

    /// Takes one of the `cap` slots, unless all are taken.
    #[inline]
    fn take_slot(&self, cap: usize) -> bool {
        let p = &self.producers.0;
        let mut taken = p.taken.load(Ordering::SeqCst);
        loop {
            // `given_seen` is at most `given`, so room by it is room indeed.
            if taken.wrapping_sub(p.given_seen.load(Ordering::Relaxed)) >= cap {
                // SeqCst: `push_wait` counts itself in `waiters` and then reads `given` here,
                // while `pop` adds to `given` and then reads `waiters`; one sees the other.
                let given = self.consumer.0.given.load(Ordering::SeqCst);
                p.given_seen.store(given, Ordering::Relaxed);
                let held = taken.wrapping_sub(given);
                // A true count is at most `cap` <= MAX_CAPACITY < isize::MAX, so a "count" above
                // isize::MAX is a negative one.
                if held > isize::MAX as usize {
                    // `taken` was read before slots taken since were given back: read it again.
                    taken = p.taken.load(Ordering::SeqCst);
                    continue;
                }
                if held >= cap {
                    return false;
                }
            }
            match p.taken.compare_exchange_weak(
                taken,
                taken.wrapping_add(1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => taken = now,
            }
        }
    }

    /// Gives a slot back after a pop, and lets one waiting `send().await` retry.
    #[inline]
    fn give_back(&self) {
        let c = &self.consumer.0;
        c.given.fetch_add(1, Ordering::SeqCst);
        if c.waiters.load(Ordering::SeqCst) > 0 {
            c.notify.notify_one();
        }
    }

    /// Messages queued or being pushed.
    #[cfg(test)]
    fn held(&self) -> usize {
        let given = self.consumer.0.given.load(Ordering::SeqCst);
        self.producers
            .0
            .taken
            .load(Ordering::SeqCst)
            .wrapping_sub(given)
    }
}

/// The shared half of a mailbox: the queue, the closed flag and the wake-up state.
pub(crate) struct MailboxQueue<M> {
    queue: Queue<M>,
    closed: AtomicBool,
    park: Park,
}

impl<M> MailboxQueue<M> {
    /// The kind of mailbox this is.
    pub(crate) fn kind(&self) -> Mailbox {
        match &self.queue {
            Queue::Unbounded(_) => Mailbox::unbounded(),
            Queue::Bounded { cap, overflow, .. } => Mailbox::bounded(*cap, *overflow),
        }
    }

    pub(crate) fn new(kind: Mailbox) -> Self {
        let queue = match kind.bounded {
            None => Queue::Unbounded(Mpsc::new()),
            Some((cap, overflow)) => Queue::Bounded {
                q: Mpsc::new(),
                cap,
                overflow,
                bound: Bound::new(),
            },
        };
        MailboxQueue {
            queue,
            closed: AtomicBool::new(false),
            park: Park::new(),
        }
    }

    /// Pushes a message and wakes the consumer if it is parked. Inlined into `tell`, so that the
    /// message goes from the caller into its slot without a copy through each frame between.
    #[inline(always)]
    pub(crate) fn push(&self, msg: M) -> Push<M> {
        if self.closed.load(Ordering::Acquire) {
            return Push::Closed(msg);
        }
        match &self.queue {
            Queue::Unbounded(q) => {
                q.push(msg);
                self.wake();
                Push::Queued
            }
            Queue::Bounded { .. } => self.push_bounded(msg),
        }
    }

    /// `push` into a bounded mailbox.
    #[inline]
    fn push_bounded(&self, msg: M) -> Push<M> {
        let Queue::Bounded {
            q,
            cap,
            overflow,
            bound,
        } = &self.queue
        else {
            unreachable!("only called for a bounded mailbox")
        };
        let r = if bound.take_slot(*cap) {
            q.push(msg);
            Push::Queued
        } else {
            match overflow {
                Overflow::DropNew => return Push::Dropped(msg),
                Overflow::Reject => return Push::Full(msg),
                Overflow::DropOldest => Self::replace_oldest(q, bound, *cap, msg),
            }
        };
        self.wake();
        r
    }

    /// `DropOldest` on a full mailbox: the incoming message takes the slot of the oldest one.
    #[cold]
    fn replace_oldest(q: &Mpsc<M>, bound: &Bound, cap: usize, msg: M) -> Push<M> {
        let mut spins = 0u32;
        loop {
            if let Some(old) = pop_from(q) {
                // The popped message's slot passes to the new one: the counts are unchanged.
                q.push(msg);
                return Push::Dropped(old);
            }
            // Every slot is taken but none is queued yet: pushes are between taking a slot and
            // pushing, or the consumer between popping and giving its slot back. Both finish
            // without waiting for anything, so this ends; a slot may also come free meanwhile.
            if bound.take_slot(cap) {
                q.push(msg);
                return Push::Queued;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Wakes the consumer if it is parked. Costs one load while it is busy.
    #[inline]
    pub(crate) fn wake(&self) {
        self.park.wake();
    }

    /// Pops the next message.
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<M> {
        match &self.queue {
            Queue::Unbounded(q) => pop_from(q),
            Queue::Bounded { q, bound, .. } => {
                let m = pop_from(q);
                if m.is_some() {
                    bound.give_back();
                }
                m
            }
        }
    }

    /// The consumer for a run of pops, if no one else holds it and the mailbox allows holding
    /// it while user code runs: every kind but `DropOldest`, whose producers pop the oldest
    /// message themselves and must never wait for a handler. While it is held, others who must
    /// pop leave the popping to the holder (`drain`), which drains a closed mailbox when it lets
    /// go.
    #[inline]
    pub(crate) fn batch(&self) -> Option<Batch<'_, M>> {
        let (q, bound) = match &self.queue {
            Queue::Unbounded(q) => (q, None),
            Queue::Bounded {
                overflow: Overflow::DropOldest,
                ..
            } => return None,
            Queue::Bounded { q, bound, .. } => (q, Some(&**bound)),
        };
        Some(Batch {
            c: q.consumer()?,
            bound,
        })
    }

    /// Pops every message left, handing each to `f`, unless another thread holds the consumer.
    /// For a closed mailbox: everyone who lets go of the consumer then checks for a closed
    /// mailbox and drains it, so a push that found the consumer taken is not left behind.
    pub(crate) fn drain(&self, mut f: impl FnMut(M)) {
        let (q, bound) = match &self.queue {
            Queue::Unbounded(q) => (q, None),
            Queue::Bounded { q, bound, .. } => (q, Some(&**bound)),
        };
        loop {
            let Some(c) = q.consumer() else { return };
            let mut b = Batch { c, bound };
            let mut popped = false;
            while let Some(m) = b.pop() {
                popped = true;
                f(m);
            }
            drop(b);
            // A push that found the consumer taken while this held it counts on this to look
            // again. A push still being written when nothing was popped drains after itself.
            if !popped || !q.maybe_nonempty() {
                return;
            }
        }
    }

    /// Whether no push has been claimed that is not yet popped. A push still being written
    /// counts as a message: the caller will find it once it is written.
    pub(crate) fn is_empty(&self) -> bool {
        let q = match &self.queue {
            Queue::Unbounded(q) => q,
            Queue::Bounded { q, .. } => q,
        };
        !q.maybe_nonempty()
    }

    /// Waits until `has_work` holds, parking the task in between. A plain `poll_fn`, not an
    /// `async fn`, so that the future an actor's task holds while it is idle is two pointers.
    pub(crate) fn park_until<'a>(
        &'a self,
        has_work: impl Fn() -> bool + 'a,
    ) -> impl std::future::Future<Output = ()> + 'a {
        // The push is a SeqCst read-modify-write followed by the producer's SeqCst load of the park
        // state, and `has_work` reads the queue with SeqCst loads (see `actor::park`).
        poll_fn(move |cx| self.park.poll_park(cx, &has_work))
    }

    /// Lets go of the waker of the task that consumed this mailbox, once that task has finished,
    /// so that the mailbox (which lives as long as any reference to the actor) does not keep the
    /// finished task allocated.
    pub(crate) fn forget_waker(&self) {
        self.park.forget_waker();
    }

    /// Whether the park slot holds a waker (see `Park::holds_waker`), for tests.
    #[cfg(test)]
    pub(crate) fn holds_waker(&self) -> Option<bool> {
        self.park.holds_waker()
    }

    /// Marks the mailbox closed. Later pushes are refused; the caller drains what is left.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Queue::Bounded { bound, .. } = &self.queue {
            bound.consumer.0.notify.notify_waiters();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits for room in a `Reject` mailbox, retrying the push. Other policies push at once.
    pub(crate) async fn push_wait(&self, mut msg: M) -> Push<M> {
        let space = match &self.queue {
            Queue::Bounded {
                overflow: Overflow::Reject,
                bound,
                ..
            } => &bound.consumer.0,
            _ => return self.push(msg),
        };
        loop {
            let notified = space.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            space.waiters.fetch_add(1, Ordering::SeqCst);
            let r = self.push(msg);
            match r {
                Push::Full(m) => {
                    msg = m;
                    notified.await;
                    space.waiters.fetch_sub(1, Ordering::SeqCst);
                }
                other => {
                    space.waiters.fetch_sub(1, Ordering::SeqCst);
                    return other;
                }
            }
        }
    }
}

/// The consumer of a mailbox, held for a run of pops (see [`MailboxQueue::batch`]).
pub(crate) struct Batch<'a, M> {
    c: crate::actor::mpsc::Consumer<'a, M>,
    bound: Option<&'a Bound>,
}

impl<M> Batch<'_, M> {
    /// Pops the next message, if one is ready.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<M> {
        self.pop_in_place(|m| m.take())
    }

    /// Pops the next message into `f`, lent where it lies (see `Consumer::pop_in_place`).
    #[inline(always)]
    pub(crate) fn pop_in_place<R>(&mut self, f: impl FnOnce(InPlace<'_, M>) -> R) -> Option<R> {
        let bound = self.bound;
        self.c.pop_in_place(|m| {
            if let Some(bound) = bound {
                bound.give_back();
            }
            f(m)
        })
    }
}

/// Runs `f` holding the queue's consumer. Whoever holds it runs no user code and lets go within
/// a pop, so waiting for it is short: spin a little, then yield the thread.
#[inline(always)]
fn with_consumer<M, R>(
    q: &Mpsc<M>,
    f: impl FnOnce(&mut crate::actor::mpsc::Consumer<'_, M>) -> R,
) -> R {
    match q.consumer() {
        Some(mut c) => f(&mut c),
        None => with_consumer_slow(q, f),
    }
}

#[cold]
#[inline(never)]
fn with_consumer_slow<M, R>(
    q: &Mpsc<M>,
    f: impl FnOnce(&mut crate::actor::mpsc::Consumer<'_, M>) -> R,
) -> R {
    let mut spins = 0u32;
    loop {
        if let Some(mut c) = q.consumer() {
            return f(&mut c);
        }
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Pops the oldest message, if one is ready. An empty queue is seen from its two indexes,
/// without taking the consumer.
#[inline(always)]
fn pop_from<M>(q: &Mpsc<M>) -> Option<M> {
    if !q.maybe_nonempty() {
        return None;
    }
    with_consumer(q, |c| c.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_keeps_order() {
        let q = MailboxQueue::new(Mailbox::unbounded());
        for i in 0..100 {
            assert!(matches!(q.push(i), Push::Queued));
        }
        for i in 0..100 {
            assert_eq!(q.pop(), Some(i));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn drop_new_discards_incoming() {
        let q = MailboxQueue::new(Mailbox::bounded(2, Overflow::DropNew));
        assert!(matches!(q.push(1), Push::Queued));
        assert!(matches!(q.push(2), Push::Queued));
        assert!(matches!(q.push(3), Push::Dropped(3)));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(2));
    }

    #[test]
    fn drop_oldest_evicts_head() {
        let q = MailboxQueue::new(Mailbox::bounded(2, Overflow::DropOldest));
        q.push(1);
        q.push(2);
        assert!(matches!(q.push(3), Push::Dropped(1)));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), Some(3));
    }

    #[test]
    fn reject_returns_message() {
        let q = MailboxQueue::new(Mailbox::bounded(1, Overflow::Reject));
        q.push(1);
        assert!(matches!(q.push(2), Push::Full(2)));
    }

    #[test]
    fn closed_refuses() {
        let q = MailboxQueue::new(Mailbox::unbounded());
        q.close();
        assert!(matches!(q.push(1), Push::Closed(1)));
    }

    #[test]
    fn nonsense_capacities_are_kept_within_one_and_the_maximum() {
        assert_eq!(Mailbox::bounded(0, Overflow::DropNew).capacity(), Some(1));
        assert_eq!(
            Mailbox::bounded(usize::MAX, Overflow::DropNew).capacity(),
            Some(Mailbox::MAX_CAPACITY)
        );
        assert_eq!(
            Mailbox::bounded(Mailbox::MAX_CAPACITY + 1, Overflow::Reject).capacity(),
            Some(Mailbox::MAX_CAPACITY)
        );
        // Building the queue of the largest mailbox allocates nothing up front and works.
        let q = MailboxQueue::new(Mailbox::bounded(usize::MAX, Overflow::DropNew));
        assert_eq!(
            q.kind(),
            Mailbox::bounded(Mailbox::MAX_CAPACITY, Overflow::DropNew)
        );
        for i in 0..1000 {
            assert!(matches!(q.push(i), Push::Queued));
        }
        for i in 0..1000 {
            assert_eq!(q.pop(), Some(i));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn a_bounded_mailbox_holds_exactly_its_capacity() {
        let q = MailboxQueue::new(Mailbox::bounded(3, Overflow::DropNew));
        for i in 1..=3 {
            assert!(matches!(q.push(i), Push::Queued));
        }
        assert!(matches!(q.push(4), Push::Dropped(4)));
        assert_eq!(q.pop(), Some(1));
        assert!(matches!(q.push(5), Push::Queued));
        assert!(matches!(q.push(6), Push::Dropped(6)));
        assert_eq!(
            (q.pop(), q.pop(), q.pop(), q.pop()),
            (Some(2), Some(3), Some(5), None)
        );
        // Emptied, it takes `capacity` messages again.
        for i in 7..=9 {
            assert!(matches!(q.push(i), Push::Queued));
        }
        assert!(matches!(q.push(10), Push::Dropped(10)));
    }

    /// The count of a bounded queue (messages queued plus pushes in progress).
    fn held<M>(q: &MailboxQueue<M>) -> usize {
        match &q.queue {
            Queue::Bounded { bound, .. } => bound.held(),
            Queue::Unbounded(_) => unreachable!("a bounded queue"),
        }
    }

    #[test]
    fn the_counts_of_a_bounded_mailbox_may_wrap_around() {
        let q = MailboxQueue::new(Mailbox::bounded(3, Overflow::DropNew));
        let Queue::Bounded { bound, .. } = &q.queue else {
            unreachable!("a bounded queue")
        };
        // As after usize::MAX messages: the next ones cross the wrap.
        let start = usize::MAX - 4;
        bound.producers.0.taken.store(start, Ordering::SeqCst);
        bound.producers.0.given_seen.store(start, Ordering::SeqCst);
        bound.consumer.0.given.store(start, Ordering::SeqCst);
        for round in 0..4 {
            for i in 0..3 {
                assert!(matches!(q.push(round * 10 + i), Push::Queued));
            }
            assert!(matches!(q.push(99), Push::Dropped(99)));
            assert_eq!(held(&q), 3);
            for i in 0..3 {
                assert_eq!(q.pop(), Some(round * 10 + i));
            }
            assert_eq!(held(&q), 0);
        }
    }

    #[test]
    fn concurrent_drop_new_producers_never_exceed_the_bound() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        const CAP: usize = 16;
        let q = MailboxQueue::new(Mailbox::bounded(CAP, Overflow::DropNew));
        let popped = AtomicUsize::new(0);
        let producing = AtomicUsize::new(PRODUCERS);
        let (queued, dropped) = std::thread::scope(|s| {
            s.spawn(|| loop {
                assert!(held(&q) <= CAP);
                match q.pop() {
                    Some(_) => {
                        popped.fetch_add(1, Ordering::SeqCst);
                    }
                    None if producing.load(Ordering::SeqCst) == 0 && q.is_empty() => break,
                    None => std::hint::spin_loop(),
                }
            });
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let (q, producing) = (&q, &producing);
                    s.spawn(move || {
                        let (mut queued, mut dropped) = (0, 0);
                        for i in 0..EACH {
                            match q.push(p * EACH + i) {
                                Push::Queued => queued += 1,
                                Push::Dropped(m) => {
                                    assert_eq!(m, p * EACH + i);
                                    dropped += 1;
                                }
                                _ => unreachable!("open drop_new queue"),
                            }
                        }
                        producing.fetch_sub(1, Ordering::SeqCst);
                        (queued, dropped)
                    })
                })
                .collect();
            producers
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
        });
        assert_eq!(queued + dropped, PRODUCERS * EACH);
        assert_eq!(popped.load(Ordering::SeqCst), queued);
        assert_eq!(held(&q), 0);
    }

    #[test]
    fn concurrent_drop_oldest_accounts_for_every_message() {
        const PRODUCERS: usize = 4;
        const EACH: usize = 20_000;
        const CAP: usize = 8;
        let q = MailboxQueue::new(Mailbox::bounded(CAP, Overflow::DropOldest));
        let producing = AtomicUsize::new(PRODUCERS);
        let mut seen: Vec<usize> = std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut got = Vec::new();
                loop {
                    assert!(held(&q) <= CAP);
                    match q.pop() {
                        Some(m) => got.push(m),
                        None if producing.load(Ordering::SeqCst) == 0 && q.is_empty() => {
                            return got
                        }
                        None => std::hint::spin_loop(),
                    }
                }
            });
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let (q, producing) = (&q, &producing);
                    s.spawn(move || {
                        let mut evicted = Vec::new();
                        for i in 0..EACH {
                            match q.push(p * EACH + i) {
                                Push::Queued => {}
                                Push::Dropped(old) => evicted.push(old),
                                _ => unreachable!("open drop_oldest queue"),
                            }
                        }
                        producing.fetch_sub(1, Ordering::SeqCst);
                        evicted
                    })
                })
                .collect();
            let mut all: Vec<usize> = producers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            all.extend(consumer.join().unwrap());
            all
        });
        // Every message was either handled or handed back as evicted, exactly once.
        seen.sort_unstable();
        assert_eq!(seen, (0..PRODUCERS * EACH).collect::<Vec<_>>());
        assert_eq!(held(&q), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_waits_for_room_and_every_message_arrives_in_order() {
        const PRODUCERS: u32 = 4;
        const EACH: u32 = 5_000;
        let q = std::sync::Arc::new(MailboxQueue::new(Mailbox::bounded(2, Overflow::Reject)));
        let senders: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        assert!(matches!(q.push_wait((p, i)).await, Push::Queued));
                    }
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut next = vec![0u32; PRODUCERS as usize];
                for _ in 0..PRODUCERS * EACH {
                    let (p, i) = loop {
                        match q.pop() {
                            Some(m) => break m,
                            None => q.park_until(|| !q.is_empty()).await,
                        }
                    };
                    assert_eq!(i, next[p as usize], "each sender's messages in order");
                    next[p as usize] += 1;
                }
                next
            })
        };
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), consumer)
            .await
            .expect("no send was left waiting with room in the mailbox")
            .unwrap();
        assert_eq!(next, vec![EACH; PRODUCERS as usize]);
        for s in senders {
            s.await.unwrap();
        }
        assert!(q.is_empty());
    }
}
