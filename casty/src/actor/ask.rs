//! The ask pattern: a request whose reply is awaited.
//!
//! `ask` creates a one-shot reply slot, wraps it in an `ActorRef<R>` (a [`Promise`] target), lets the
//! caller build the request around it, and awaits the reply with a deadline (L9). The ask fails at
//! once, without waiting for the deadline, when the target is already stopped or when every copy
//! of the reply ref has been dropped (the request was discarded, so no reply can come). A reply that
//! arrives after the deadline becomes a dead letter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::actor::actor_ref::{ActorRef, NotDelivered, RefTarget, TellError};
use crate::actor::event_stream::DeadLetterReason;
use crate::actor::path::{next_uid, ActorPath};
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
    /// No reply arrived before the deadline.
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

pub(crate) struct Promise<R> {
    path: ActorPath,
    slot: Mutex<Option<oneshot::Sender<R>>>,
    system: Arc<SystemInner>,
    /// Set when the ask is failed early because the target's node is down.
    down: Arc<std::sync::OnceLock<NodeDown>>,
}

impl<R: Send + 'static> RefTarget<R> for Promise<R> {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn system(&self) -> &Arc<SystemInner> {
        &self.system
    }

    fn is_closed(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|tx| tx.is_closed())
    }

    fn deliver(&self, msg: R) -> Result<(), TellError<R>> {
        let tx = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match tx {
            Some(tx) => match tx.send(msg) {
                Ok(()) => Ok(()),
                Err(m) => {
                    self.system
                        .dead_letter_typed::<R>(&self.path, DeadLetterReason::RecipientGone);
                    Err(TellError::Closed(m))
                }
            },
            None => {
                self.system
                    .dead_letter_typed::<R>(&self.path, DeadLetterReason::RecipientGone);
                Err(TellError::Closed(msg))
            }
        }
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
    /// [`AskError::Timeout`] after `timeout`; [`AskError::Terminated`] at once if the target has
    /// stopped; [`AskError::NoReply`] at once if the request was dropped unanswered; for a
    /// remote target, [`AskError::Unreachable`] or [`AskError::Refused`] when its node is, and
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
    let (tx, rx) = oneshot::channel();
    let down = Arc::new(std::sync::OnceLock::new());
    let uid = next_uid();
    let path = ActorPath::new(system.name.clone(), format!("/_temp/ask-{uid}"), uid);
    let promise = Arc::new(Promise {
        path,
        slot: Mutex::new(Some(tx)),
        system: system.clone(),
        down: down.clone(),
    });
    let reply_ref = ActorRef::from_target(promise.clone());
    if let (Some(node), Some(provider)) = (target.remote_node(), system.wire.get()) {
        let weak = Arc::downgrade(&promise);
        provider.on_node_down(
            node,
            Box::new(move |why| {
                let Some(p) = weak.upgrade() else {
                    return false;
                };
                if let Some(why) = why {
                    let _ = p.down.set(why.clone());
                    drop(p.slot.lock().unwrap_or_else(|e| e.into_inner()).take());
                }
                !p.is_closed()
            }),
        );
    }
    // Only the reply ref keeps the promise: a request dropped without a reply fails at once (L9).
    drop(promise);
    let failed_early = |down: &std::sync::OnceLock<NodeDown>| {
        down.get().map(|why| match why {
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
    let msg = make(reply_ref);
    let deadline = tokio::time::Instant::now() + timeout;
    match target.deliver_for_ask(msg, deadline).await {
        Ok(()) => {}
        Err(_) if down.get().is_some() => {
            return Err(failed_early(&down).unwrap_or(AskError::NoReply))
        }
        Err(NotDelivered::Closed) => return Err(AskError::Terminated(target.path().to_string())),
        Err(NotDelivered::Full) => return Err(AskError::MailboxFull(target.path().to_string())),
        Err(NotDelivered::Route(e)) => return Err(e.ask_error(target.path())),
    }
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(failed_early(&down).unwrap_or(AskError::NoReply)),
        Err(_) => Err(AskError::Timeout(timeout)),
    }
}
