//! Mailboxes: the queue in front of every actor, and how its task is woken.
//!
//! A mailbox owns a lock-free queue of user messages: crossbeam's `SegQueue` for the unbounded
//! default (it allocates in blocks, never per message, and nothing until the first message) or an
//! `ArrayQueue` for a bounded one. `tell` pushes and then wakes the actor only if it is parked, so
//! while an actor is busy a producer pays one push and one load: no lock, no allocation (see the
//! benchmarks). Bounded mailboxes apply one [`Overflow`] policy (L10).
//!
//! The park/wake protocol is Dekker-style: the consumer registers its waker, sets `parked`, and
//! re-checks for work; a producer pushes and then checks `parked`. Both sides use `SeqCst`, so at
//! least one of them sees the other and no wake-up is lost.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::{ArrayQueue, SegQueue};
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
    /// An unbounded mailbox. Never drops a message while the actor lives.
    pub const fn unbounded() -> Self {
        Mailbox { bounded: None }
    }

    /// A mailbox that holds at most `capacity` messages (at least 1) and applies `overflow` when
    /// full.
    pub fn bounded(capacity: usize, overflow: Overflow) -> Self {
        Mailbox {
            bounded: Some((capacity.max(1), overflow)),
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

enum Queue<M> {
    Unbounded(SegQueue<M>),
    Bounded {
        q: ArrayQueue<M>,
        overflow: Overflow,
        space: Box<Space>,
    },
}

struct Space {
    notify: Notify,
    waiters: AtomicUsize,
}

/// The shared half of a mailbox: the queue, the closed flag and the wake-up state.
pub(crate) struct MailboxQueue<M> {
    queue: Queue<M>,
    closed: AtomicBool,
    parked: AtomicBool,
    waker: AtomicWaker,
}

impl<M> MailboxQueue<M> {
    /// The kind of mailbox this is.
    pub(crate) fn kind(&self) -> Mailbox {
        match &self.queue {
            Queue::Unbounded(_) => Mailbox::unbounded(),
            Queue::Bounded { q, overflow, .. } => Mailbox::bounded(q.capacity(), *overflow),
        }
    }

    pub(crate) fn new(kind: Mailbox) -> Self {
        let queue = match kind.bounded {
            None => Queue::Unbounded(SegQueue::new()),
            Some((cap, overflow)) => Queue::Bounded {
                q: ArrayQueue::new(cap),
                overflow,
                space: Box::new(Space {
                    notify: Notify::new(),
                    waiters: AtomicUsize::new(0),
                }),
            },
        };
        MailboxQueue {
            queue,
            closed: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Pushes a message and wakes the consumer if it is parked.
    #[inline]
    pub(crate) fn push(&self, msg: M) -> Push<M> {
        if self.closed.load(Ordering::Acquire) {
            return Push::Closed(msg);
        }
        let r = match &self.queue {
            Queue::Unbounded(q) => {
                q.push(msg);
                Push::Queued
            }
            Queue::Bounded { q, overflow, .. } => match overflow {
                Overflow::DropNew => match q.push(msg) {
                    Ok(()) => Push::Queued,
                    Err(m) => return Push::Dropped(m),
                },
                Overflow::DropOldest => match q.force_push(msg) {
                    None => Push::Queued,
                    Some(old) => Push::Dropped(old),
                },
                Overflow::Reject => match q.push(msg) {
                    Ok(()) => Push::Queued,
                    Err(m) => return Push::Full(m),
                },
            },
        };
        self.wake();
        r
    }

    /// Wakes the consumer if it is parked. Costs one load while it is busy.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.parked.load(Ordering::SeqCst) && self.parked.swap(false, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    /// Pops the next message. Only the actor's own task calls this.
    #[inline]
    pub(crate) fn pop(&self) -> Option<M> {
        match &self.queue {
            Queue::Unbounded(q) => q.pop(),
            Queue::Bounded { q, space, .. } => {
                let m = q.pop();
                if m.is_some() && space.waiters.load(Ordering::SeqCst) > 0 {
                    space.notify.notify_one();
                }
                m
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match &self.queue {
            Queue::Unbounded(q) => q.is_empty(),
            Queue::Bounded { q, .. } => q.is_empty(),
        }
    }

    /// Waits until `has_work` holds, parking the task in between.
    pub(crate) async fn park_until(&self, has_work: impl Fn() -> bool) {
        poll_fn(|cx| {
            if has_work() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A SeqCst store followed by the SeqCst loads in `has_work` cannot be reordered, and the
            // producer's push is a SeqCst read-modify-write followed by a SeqCst load of `parked`:
            // in the single total order one side sees the other.
            self.parked.store(true, Ordering::SeqCst);
            if has_work() {
                self.parked.store(false, Ordering::Relaxed);
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Marks the mailbox closed. Later pushes are refused; the caller drains what is left.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Queue::Bounded { space, .. } = &self.queue {
            space.notify.notify_waiters();
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
                space,
                ..
            } => space,
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
}
