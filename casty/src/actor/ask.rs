//! The ask pattern: a request whose reply is awaited.
//!
//! `ask` makes a one-shot reply slot ([`AskCell`]), wraps it in an `ActorRef<R>` (the cell is
//! the ref's target), lets the caller build the request around it, and awaits the reply with a deadline
//! (L9). The ask fails at once, without waiting for the deadline, when the target is already
//! stopped or when every copy of the reply ref has been dropped (the request was discarded, so no
//! reply can come). A reply that arrives after the deadline becomes a dead letter addressed to the
//! ask's temporary path (`/_temp/ask-<uid>`).
//!
//! What one ask costs: one small allocation (the cell: a lock-free one-shot channel, and the
//! reply ref's target) and, only if the reply is not there at the first look, an entry in the
//! system's coarse deadline wheel (see [`crate::actor::deadlines`]) instead of a tokio timer: one
//! short critical section to put it in and one to take it out, with no clock read and no
//! reference count for the wheel. The temporary path is built only when something needs it (a
//! dead letter, `Debug`, the wire).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::actor::actor_ref::{ActorRef, NotDelivered, RefCount, RefTarget, TellError};
use crate::actor::deadlines::{Expire, Place, Waiting};
use crate::actor::event_stream::DeadLetterReason;
use crate::actor::path::{next_uid, ActorPath};
use crate::actor::reply_slot::{Closed, Ended, ReplySlot, CLOSED, TIMED_OUT};
use crate::actor::system::SystemInner;
use crate::actor::wire::NodeDown;

/// Why an ask produced no reply.
///
/// # Examples
///
/// ```
/// use casty::AskError;
/// use std::time::Duration;
/// let e = AskError::Timeout(Duration::from_millis(5));
/// assert_eq!(e.to_string(), "no reply within 5ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No reply arrived before the deadline. Deadlines are kept at a granularity of 10 ms: the
    /// ask fails at its deadline or up to 10 ms after it (plus scheduling), never sooner.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The target had stopped when the request was sent, or its node shut down (or restarted)
    /// before it replied.
    #[error("the actor {0} has stopped")]
    Terminated(String),
    /// The target's `Reject` mailbox was full.
    #[error("the mailbox of {0} is full")]
    MailboxFull(String),
    /// The request was dropped without a reply (every copy of the reply ref is gone).
    #[error("the request was dropped without a reply")]
    NoReply,
    /// The target's node stayed unreachable for longer than remoting's `unreachable_after`.
    #[error("the node of {0} is unreachable")]
    Unreachable(String),
    /// The target's node refused this node's handshake (a wrong secret or system name, or this
    /// node is quarantined there); `reason` is the refusal.
    #[error("the node {node} refused this node: {reason}")]
    Refused {
        /// The node, `casty://system@host:port`.
        node: String,
        /// The refusal, as both sides log it.
        reason: String,
    },
    /// The target is on another node and the queue of messages from this node to it stayed
    /// full (it is slow or unreachable) until the ask's deadline: the request was not sent.
    /// `node` is `casty://system@host:port`. This is this node's own queue, not the target's
    /// mailbox: an ask waits for room in it, within its timeout, as `ActorRef::send(..).await`
    /// does.
    #[error("the outbound queue to {node} is full")]
    OutboundFull {
        /// The target's node.
        node: String,
    },
    /// The target is on another node and the encoded request is larger than the frame limit of
    /// the connection: it was not sent.
    #[error("the request of {size} bytes exceeds the frame limit of {max}")]
    TooLarge {
        /// The size of the request's frame.
        size: usize,
        /// The frame limit.
        max: usize,
    },
    /// The target is on another node and the request could not be sent from this node for
    /// another reason: it could not be encoded, or remoting is not running here (not started,
    /// or shut down). `reason` is what the request's dead letter says.
    #[error("the request to {node} was not sent: {reason}")]
    NotSent {
        /// The target's node, `casty://system@host:port`.
        node: String,
        /// Why.
        reason: String,
    },
}

/// The reply slot of one ask, with what the deadline wheel and remoting need beside it. It is
/// also the target of the ask's reply ref: one allocation per ask. It counts the refs to it
/// apart from the asker's own `Arc`: when the last ref is dropped, the slot closes, no reply can
/// come, and the asker fails at once with [`AskError::NoReply`].
pub(crate) struct AskCell<R> {
    slot: ReplySlot<R>,
    /// Set, before the slot is closed, when the ask is failed early because the target's node
    /// is down.
    down: OnceLock<NodeDown>,
    /// The slot's place in the deadline wheel.
    place: Place,
    /// How many refs to the cell (copies of the reply ref) are alive.
    refs: AtomicUsize,
    system: Arc<SystemInner>,
    /// `/_temp/ask-<uid>`, made on first use.
    path: OnceLock<ActorPath>,
}

impl<R> AskCell<R> {
    /// A cell with one ref to it, which the caller makes with [`ActorRef::from_target`].
    pub(crate) fn new(system: Arc<SystemInner>) -> Self {
        AskCell {
            slot: ReplySlot::new(),
            down: OnceLock::new(),
            place: Place::new(),
            refs: AtomicUsize::new(1),
            system,
            path: OnceLock::new(),
        }
    }

    /// Whether a reply can still come.
    pub(crate) fn is_open(&self) -> bool {
        self.slot.is_open()
    }
}

impl<R: Send> Expire for AskCell<R> {
    fn expire(&self) -> Option<Waker> {
        match self.slot.close_deferred(TIMED_OUT) {
            Closed::Yes(waker) => waker,
            Closed::No => None,
        }
    }

    fn place(&self) -> &Place {
        &self.place
    }
}

impl<R: Send> RefCount for AskCell<R> {
    fn ref_cloned(&self) {
        // A copy is made from a live ref, so the count is above zero and stays so.
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    fn ref_dropped(&self) {
        // Acquire-release, so that whatever the other refs did happens before the close.
        if self.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.slot.close(CLOSED);
        }
    }
}

impl<R: Send + 'static> RefTarget<R> for AskCell<R> {
    fn path(&self) -> &ActorPath {
        self.path.get_or_init(|| {
            let uid = next_uid();
            ActorPath::new(self.system.name.clone(), format!("/_temp/ask-{uid}"), uid)
        })
    }

    fn system(&self) -> &Arc<SystemInner> {
        &self.system
    }

    fn is_closed(&self) -> bool {
        !self.is_open()
    }

    fn deliver(&self, msg: R) -> Result<(), TellError<R>> {
        self.slot.put(msg).map_err(|m| {
            self.system
                .dead_letter_typed::<R>(self.path(), DeadLetterReason::RecipientGone);
            TellError::Closed(m)
        })
    }
}

/// The asker's side of an ask: waits for the reply, putting the slot in the deadline wheel only
/// if it has to wait. Dropping it takes the slot out of the wheel and closes it, so a reply that
/// comes afterwards is a dead letter.
struct Reply<'a, R: Send + 'static> {
    cell: Waiting<'a, AskCell<R>>,
    timeout: Duration,
}

/// How an ask ended without a reply.
enum NoReply {
    /// The slot was closed; with why, if the target's node went down.
    Closed(Option<NodeDown>),
    TimedOut,
}

impl<R: Send + 'static> Future for Reply<'_, R> {
    type Output = Result<R, NoReply>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let cell = this.cell.entry();
        match cell.slot.poll_take(cx) {
            Poll::Ready(Ok(r)) => Poll::Ready(Ok(r)),
            Poll::Ready(Err(Ended::Closed)) => {
                Poll::Ready(Err(NoReply::Closed(cell.down.get().cloned())))
            }
            Poll::Ready(Err(Ended::TimedOut)) => Poll::Ready(Err(NoReply::TimedOut)),
            Poll::Pending => {
                this.cell.wait(this.timeout);
                Poll::Pending
            }
        }
    }
}

impl<R: Send + 'static> Drop for Reply<'_, R> {
    fn drop(&mut self) {
        // Before `cell` is dropped, which takes the slot out of the wheel.
        self.cell.entry().slot.close(CLOSED);
    }
}

impl<M: Send + 'static> ActorRef<M> {
    /// Sends a request built around a fresh reply ref and waits for the reply, like
    /// [`ActorSystem::ask`](crate::ActorSystem::ask) with this ref as the target: the same
    /// errors, and a reply that comes after the deadline is a dead letter. Works the same for a
    /// local ref and a ref to an actor on another node.
    ///
    /// Meant for code outside actors. Inside an actor, use `ctx.ask` (the reply arrives as a
    /// message) or pass `ctx.self_ref()` as the reply ref, so the mailbox is never blocked.
    ///
    /// # Errors
    ///
    /// [`AskError::Timeout`] after `timeout` (kept in steps of 10 ms, so up to 10 ms later, never
    /// sooner); [`AskError::Terminated`] at once if the target has stopped; [`AskError::NoReply`]
    /// at once if the request was dropped unanswered; for a remote target,
    /// [`AskError::Unreachable`] or [`AskError::Refused`] when its node is, and
    /// [`AskError::OutboundFull`], [`AskError::TooLarge`] or [`AskError::NotSent`] when the
    /// request could not be sent from this node.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorRef, ActorSystem, AskError, Behaviors};
    /// use std::time::Duration;
    ///
    /// let system = ActorSystem::new("demo");
    /// let doubler = system
    ///     .spawn(
    ///         Behaviors::receive_message(|(n, reply_to): (u64, ActorRef<u64>)| {
    ///             reply_to.tell(n * 2);
    ///             Behaviors::same()
    ///         }),
    ///         "doubler",
    ///     )
    ///     .unwrap();
    /// let timeout = Duration::from_secs(1);
    /// assert_eq!(doubler.ask(|reply_to| (21, reply_to), timeout).await, Ok(42));
    ///
    /// // An actor that drops what it gets: the ask fails at once, not at the deadline.
    /// let sink = system.spawn(Behaviors::ignore::<(u64, ActorRef<u64>)>(), "sink").unwrap();
    /// assert_eq!(sink.ask(|reply_to| (1, reply_to), timeout).await, Err(AskError::NoReply));
    /// # system.shutdown().await; }
    /// ```
    pub async fn ask<R, T>(
        &self,
        make: impl FnOnce(ActorRef<R>) -> T,
        timeout: Duration,
    ) -> Result<R, AskError>
    where
        R: Send + 'static,
        T: Into<M>,
    {
        let system = self.system_inner().clone();
        ask(&system, self, |r| make(r).into(), timeout).await
    }
}

/// Sends a request built around a fresh reply ref and awaits the reply.
pub(crate) async fn ask<M, R>(
    system: &Arc<SystemInner>,
    target: &ActorRef<M>,
    make: impl FnOnce(ActorRef<R>) -> M,
    timeout: Duration,
) -> Result<R, AskError>
where
    M: Send + 'static,
    R: Send + 'static,
{
    let cell = Arc::new(AskCell::new(system.clone()));
    // The reply ref is counted apart from `cell`: a request dropped without a reply fails at
    // once (L9).
    let reply_ref = ActorRef::from_target(cell.clone());
    if let (Some(node), Some(provider)) = (target.remote_node(), system.wire.get()) {
        let weak = Arc::downgrade(&cell);
        provider.on_node_down(
            node,
            Box::new(move |why| {
                let Some(cell) = weak.upgrade() else {
                    return false;
                };
                if let Some(why) = why {
                    let _ = cell.down.set(why.clone());
                    cell.slot.close(CLOSED);
                }
                cell.is_open()
            }),
        );
    }
    let failed_early = |down: Option<&NodeDown>| {
        down.map(|why| match why {
            NodeDown::Unreachable => AskError::Unreachable(target.path().address()),
            NodeDown::Refused(reason) => AskError::Refused {
                node: format!("casty://{}", target.path().system_name()),
                reason: reason.clone(),
            },
            NodeDown::ShutDown | NodeDown::Restarted => {
                AskError::Terminated(target.path().to_string())
            }
        })
    };
    // A remote target whose node's outbound queue is full is given until the deadline to make
    // room. The request is built only then, so that it never waits inside this future.
    // The time left for the reply: all of it, unless the request had to wait for room.
    let mut left = timeout;
    if target.lacks_room() {
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        // Boxed: the wait holds a timer, which would otherwise make every ask's future larger.
        Box::pin(target.room_until(deadline)).await;
        if let Some(deadline) = deadline {
            left = deadline.saturating_duration_since(tokio::time::Instant::now());
        }
    }
    match target.deliver_checked(make(reply_ref)) {
        Ok(()) => {}
        Err(_) if cell.down.get().is_some() => {
            return Err(failed_early(cell.down.get()).unwrap_or(AskError::NoReply))
        }
        Err(NotDelivered::Closed) => return Err(AskError::Terminated(target.path().to_string())),
        Err(NotDelivered::Full) => return Err(AskError::MailboxFull(target.path().to_string())),
        Err(NotDelivered::Route(e)) => return Err(e.ask_error(target.path())),
    }
    let reply = Reply {
        cell: Waiting::new(&system.deadlines, cell),
        timeout: left,
    };
    match reply.await {
        Ok(r) => Ok(r),
        Err(NoReply::Closed(down)) => Err(failed_early(down.as_ref()).unwrap_or(AskError::NoReply)),
        Err(NoReply::TimedOut) => Err(AskError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::deadlines::GRANULARITY;
    use crate::{ActorSystem, Behaviors, DeadLetter};
    use std::sync::Mutex;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_completed_ask_leaves_nothing_in_the_deadline_wheel() {
        let system = ActorSystem::new("asks");
        let echo = system
            .spawn(
                Behaviors::receive_message(|(n, r): (u64, ActorRef<u64>)| {
                    r.tell(n + 1);
                    Behaviors::same()
                }),
                "echo",
            )
            .unwrap();
        for n in 0..100 {
            let got = system.ask(&echo, |r| (n, r), Duration::from_secs(60)).await;
            assert_eq!(got, Ok(n + 1));
            assert_eq!(system.inner().deadlines.pending(), 0);
        }
        system.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_asks_with_mixed_timeouts_time_out_at_or_just_after_their_deadlines() {
        let system = ActorSystem::new("asks");
        // Answers even requests; keeps the reply refs of odd ones without answering, so those
        // can only time out.
        let kept = Arc::new(Mutex::new(Vec::new()));
        let held = kept.clone();
        let half = system
            .spawn(
                Behaviors::receive_message(move |(n, r): (u64, ActorRef<u64>)| {
                    if n % 2 == 0 {
                        r.tell(n);
                    } else {
                        held.lock().unwrap().push(r);
                    }
                    Behaviors::same()
                }),
                "half",
            )
            .unwrap();
        let mut asks = tokio::task::JoinSet::new();
        for n in 0..60u64 {
            let (system, half) = (system.clone(), half.clone());
            let timeout = Duration::from_millis(1 + (n * 37) % 200);
            asks.spawn(async move {
                let start = tokio::time::Instant::now();
                let got = system.ask(&half, |r| (n, r), timeout).await;
                (n, timeout, got, start.elapsed())
            });
        }
        while let Some(done) = asks.join_next().await {
            let (n, timeout, got, took) = done.unwrap();
            if n % 2 == 0 {
                assert_eq!(got, Ok(n));
            } else {
                assert_eq!(got, Err(AskError::Timeout(timeout)));
                assert!(
                    took >= timeout,
                    "ask {n} timed out {:?} early",
                    timeout - took
                );
                assert!(
                    took <= timeout + GRANULARITY + Duration::from_millis(1),
                    "ask {n} timed out {:?} late",
                    took - timeout
                );
            }
        }
        assert_eq!(system.inner().deadlines.pending(), 0);
        assert_eq!(kept.lock().unwrap().len(), 30);
        system.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_ask_takes_its_deadline_out_and_its_late_reply_is_a_dead_letter() {
        let system = ActorSystem::new("asks");
        let (refs_tx, mut refs) = tokio::sync::mpsc::unbounded_channel::<ActorRef<u64>>();
        let keeper = system
            .spawn(
                Behaviors::receive_message(move |r: ActorRef<u64>| {
                    let _ = refs_tx.send(r);
                    Behaviors::same()
                }),
                "keeper",
            )
            .unwrap();
        let (dead_tx, mut dead) = tokio::sync::mpsc::unbounded_channel::<DeadLetter>();
        let _sub = system.event_stream().subscribe(move |d: &DeadLetter| {
            let _ = dead_tx.send(d.clone());
        });
        let ask = system.ask(&keeper, |r| r, Duration::from_secs(60));
        let gave_up = tokio::time::timeout(Duration::from_millis(5), ask).await;
        assert!(gave_up.is_err(), "the ask cannot have been answered");
        assert_eq!(system.inner().deadlines.pending(), 0);

        let reply_to = refs.recv().await.unwrap();
        assert!(reply_to.is_closed());
        reply_to.tell(7u64);
        let d = dead.recv().await.unwrap();
        assert!(d.recipient.as_str().starts_with("/_temp/ask-"), "{d:?}");
        assert_eq!(&d.recipient, reply_to.path());
        system.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_ask_whose_request_is_dropped_fails_at_once_without_waiting_for_the_deadline() {
        let system = ActorSystem::new("asks");
        let sink = system
            .spawn(Behaviors::ignore::<ActorRef<u64>>(), "sink")
            .unwrap();
        let start = tokio::time::Instant::now();
        let got = system.ask(&sink, |r| r, Duration::from_secs(60)).await;
        assert_eq!(got, Err(AskError::NoReply));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(system.inner().deadlines.pending(), 0);
        system.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_ask_fails_with_no_reply_only_once_every_copy_of_its_reply_ref_is_dropped() {
        let system = ActorSystem::new("asks");
        let (refs_tx, mut refs) = tokio::sync::mpsc::unbounded_channel::<ActorRef<u64>>();
        let keeper = system
            .spawn(
                Behaviors::receive_message(move |r: ActorRef<u64>| {
                    // Keeps a copy and a narrowed view, and drops the original.
                    let _ = refs_tx.send(r.clone());
                    let _ = refs_tx.send(r.narrow::<u64>());
                    Behaviors::same()
                }),
                "keeper",
            )
            .unwrap();
        let start = tokio::time::Instant::now();
        let mut ask = {
            let (system, keeper) = (system.clone(), keeper.clone());
            tokio::spawn(async move { system.ask(&keeper, |r| r, Duration::from_secs(60)).await })
        };
        let copy = refs.recv().await.unwrap();
        let view = refs.recv().await.unwrap();
        drop(copy);
        // The narrowed view still holds the reply ref: the ask goes on waiting.
        let waited = tokio::time::timeout(Duration::from_secs(10), &mut ask).await;
        assert!(waited.is_err(), "the ask ended while a copy was alive");
        drop(view);
        assert_eq!(ask.await.unwrap(), Err(AskError::NoReply));
        assert!(start.elapsed() < Duration::from_secs(11));
        assert_eq!(system.inner().deadlines.pending(), 0);
        system.shutdown().await;
    }
}
