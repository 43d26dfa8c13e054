//! `ActorRef<M>`: the typed address of an actor.
//!
//! A ref is either *local*, pointing straight at the actor's mailbox (the hot path: `tell` is a
//! lock-free push), or a dynamic *target* behind the small [`RefTarget`] trait: the reply side of an
//! `ask`, a test probe, or a remote actor. The actor core never names those upper layers; they
//! implement `RefTarget`.
//!
//! Equality and hashing use the path and the incarnation uid, so a ref to an old incarnation is never
//! equal to a ref to a new actor under the same name.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::actor::behavior::BoxFuture;
use crate::actor::cell::{Shared, SysMsg, Watcher};
use crate::actor::event_stream::DeadLetterReason;
use crate::actor::mailbox::Push;
use crate::actor::path::ActorPath;
use crate::actor::system::SystemInner;
use crate::actor::wire::RouteError;

/// Something other than a local mailbox that a ref can point at (an ask's reply slot, a test
/// probe, a remote actor).
/// Told when a ref to a target is copied or dropped, so that a target can count the refs to it
/// apart from other holders of its `Arc` (an ask's reply slot, which its asker also holds,
/// closes when the last ref to it is dropped). A trait of its own, not generic over the message
/// type, so that `ActorRef`'s `Clone` and `Drop` can reach it for any message type.
pub(crate) trait RefCount: Send + Sync {
    /// A ref to this target was copied.
    fn ref_cloned(&self) {}
    /// A ref to this target was dropped.
    fn ref_dropped(&self) {}
}

pub(crate) trait RefTarget<M>: RefCount + Send + Sync + 'static {
    fn path(&self) -> &ActorPath;
    /// The system this target belongs to: where an ask through the ref keeps its reply slot
    /// and publishes its dead letters (for a remote target, the local system that reaches it).
    fn system(&self) -> &Arc<SystemInner>;
    /// Delivers the message, or turns it into a dead letter. Returns `Closed` when the target is
    /// known to be gone.
    fn deliver(&self, msg: M) -> Result<(), TellError<M>>;
    /// Registers a watcher; by default the watcher is told at once that the target is gone, since
    /// a target that cannot be watched can never tell it later.
    fn watch(&self, watcher: Arc<dyn Watcher>) {
        watcher.notify_death(self.path().clone(), None);
    }
    fn unwatch(&self, _watcher_uid: u64) {}
    /// Whether the target is known to be gone (used to prune exported refs).
    fn is_closed(&self) -> bool {
        false
    }
    /// The node a remote target lives on (`system@host:port`), for asks that should fail as soon
    /// as that node is unreachable.
    fn remote_node(&self) -> Option<&str> {
        None
    }
    /// The incarnation uid to write on the wire, when it differs from the path's (a remote ref
    /// that addresses whichever actor is at its path writes 0).
    fn wire_uid(&self) -> Option<u64> {
        None
    }
    /// For `try_tell` and `send().await`: like [`RefTarget::deliver`], except that a target
    /// with no room now (a remote actor whose node's outbound queue is full) hands the message
    /// back as [`Offer::Full`] instead of dropping it; [`RefTarget::room`] says when to offer
    /// again.
    fn offer(&self, msg: M) -> Offer<M> {
        Offer::Done(self.deliver(msg))
    }
    /// Resolves once an offer refused with [`Offer::Full`] may succeed: there is room, or the
    /// target will refuse for another reason. Allocates only for a target that can be full.
    fn room(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
    /// Whether an offer now would not be refused with [`Offer::Full`].
    fn has_room(&self) -> bool {
        true
    }
    /// For an ask: delivers, or says why not. A remote target says which failure of remoting
    /// it was, so the ask can name it.
    fn deliver_checked(&self, msg: M) -> Result<(), NotDelivered> {
        self.deliver(msg).map_err(|e| match e {
            TellError::Full(_) => NotDelivered::Full,
            TellError::Closed(_) => NotDelivered::Closed,
        })
    }
}

/// What [`RefTarget::offer`] did with a message.
pub(crate) enum Offer<M> {
    /// Delivered, or refused for good (as [`RefTarget::deliver`] does).
    Done(Result<(), TellError<M>>),
    /// Not taken for now, with no dead letter: the message is handed back.
    Full(M),
}

/// Why an ask's request was not delivered (see [`ActorRef::deliver_checked`]).
#[derive(Debug)]
pub(crate) enum NotDelivered {
    /// A bounded `Reject` mailbox was full.
    Full,
    /// The target has stopped.
    Closed,
    /// A remote target: the request was not sent from this node, for this reason.
    Route(RouteError),
}

/// Finishes a push: a queued message may need draining (the actor stopped meanwhile), a dropped
/// one becomes a dead letter, and a refused one goes back to the caller.
fn settle<M: Send + 'static>(s: &Shared<M>, push: Push<M>) -> Result<(), TellError<M>> {
    match push {
        Push::Queued => {
            s.after_queued();
            Ok(())
        }
        Push::Dropped(m) => {
            s.dead_letter(m, DeadLetterReason::MailboxFull);
            Ok(())
        }
        Push::Full(m) => Err(TellError::Full(m)),
        Push::Closed(m) => Err(TellError::Closed(m)),
    }
}

pub(crate) enum RefInner<M> {
    Local(Arc<Shared<M>>),
    Target(Arc<dyn RefTarget<M>>),
}

/// The typed handle through which actors receive messages of type `M`.
///
/// Refs are cheap to clone, `Send + Sync`, and never block the sender. A message sent to a stopped
/// actor becomes a `DeadLetter` event (L1, L7).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors};
/// let system = ActorSystem::new("demo");
/// let r = system.spawn(Behaviors::ignore::<String>(), "sink").unwrap();
/// r.tell("hello");              // anything `Into<String>`
/// let copy = r.clone();
/// assert_eq!(copy, r);
/// # system.shutdown().await; }
/// ```
pub struct ActorRef<M> {
    pub(crate) inner: RefInner<M>,
}

/// Why a message was not accepted by `try_tell` or `send`. The message is handed back.
///
/// # Examples
///
/// ```
/// use casty::TellError;
/// let e = TellError::Full(5u8);
/// assert_eq!(e.into_inner(), 5);
/// ```
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum TellError<M> {
    /// A bounded mailbox with the `Reject` policy is full.
    Full(M),
    /// The actor has stopped.
    Closed(M),
}

impl<M> TellError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            TellError::Full(m) | TellError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for TellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TellError::Full(_) => f.write_str("TellError::Full(..)"),
            TellError::Closed(_) => f.write_str("TellError::Closed(..)"),
        }
    }
}

impl<M> fmt::Display for TellError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TellError::Full(_) => f.write_str("the mailbox is full"),
            TellError::Closed(_) => f.write_str("the actor has stopped"),
        }
    }
}

impl<M> std::error::Error for TellError<M> {}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn local(shared: Arc<Shared<M>>) -> Self {
        ActorRef {
            inner: RefInner::Local(shared),
        }
    }

    pub(crate) fn from_target(target: Arc<dyn RefTarget<M>>) -> Self {
        ActorRef {
            inner: RefInner::Target(target),
        }
    }

    /// Sends a message without waiting (fire and forget). Never blocks.
    ///
    /// If the actor has stopped, or its bounded mailbox drops the message, a `DeadLetter` event is
    /// published instead.
    #[inline]
    pub fn tell(&self, msg: impl Into<M>) {
        match &self.inner {
            RefInner::Local(s) => s.tell(msg.into()),
            RefInner::Target(t) => {
                let _ = t.deliver(msg.into());
            }
        }
    }

    /// Sends a message, handing it back if a `Reject` mailbox is full or the actor has stopped.
    ///
    /// # Errors
    ///
    /// [`TellError::Full`] or [`TellError::Closed`], with the message.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorSystem, Behaviors, Mailbox, Overflow, SpawnOptions, TellError};
    /// let system = ActorSystem::new("demo");
    /// let opts = SpawnOptions::default().mailbox(Mailbox::bounded(1, Overflow::Reject));
    /// let r = system.spawn_with(Behaviors::ignore::<u32>(), "one", opts).unwrap();
    /// // The actor has not run yet on this single-threaded runtime, so the second message is refused.
    /// assert!(r.try_tell(1u32).is_ok());
    /// assert_eq!(r.try_tell(2u32), Err(TellError::Full(2)));
    /// # system.shutdown().await; }
    /// ```
    pub fn try_tell(&self, msg: impl Into<M>) -> Result<(), TellError<M>> {
        match &self.inner {
            RefInner::Local(s) => settle(s, s.push(msg.into())),
            RefInner::Target(t) => match t.offer(msg.into()) {
                Offer::Done(r) => r,
                Offer::Full(m) => Err(TellError::Full(m)),
            },
        }
    }

    /// Sends a message, waiting for room if a `Reject` mailbox is full. For a ref to an actor
    /// on another node, it waits likewise while the queue of messages for that node is full,
    /// so a burst sent this way is slowed down to what the connection carries instead of
    /// turning into dead letters.
    ///
    /// # Errors
    ///
    /// [`TellError::Closed`] if the actor has stopped. For a remote actor, the message is
    /// handed back in [`TellError::Full`] when it cannot be sent at all (it is larger than the
    /// frame limit, its node refuses this one, remoting is shut down), with a dead letter
    /// saying why.
    pub async fn send(&self, msg: impl Into<M>) -> Result<(), TellError<M>> {
        match &self.inner {
            RefInner::Local(s) => settle(s, s.push_wait(msg.into()).await),
            RefInner::Target(t) => {
                let mut msg = msg.into();
                loop {
                    match t.offer(msg) {
                        Offer::Done(r) => return r,
                        Offer::Full(m) => {
                            msg = m;
                            t.room().await;
                        }
                    }
                }
            }
        }
    }

    /// Whether a request sent now could be refused only because there is no room for it yet:
    /// a remote target whose node's outbound queue is full. Local refs always have room.
    #[inline]
    pub(crate) fn lacks_room(&self) -> bool {
        match &self.inner {
            RefInner::Local(_) => false,
            RefInner::Target(t) => !t.has_room(),
        }
    }

    /// For an `ask` whose deadline is `deadline`, after [`ActorRef::lacks_room`]: waits until
    /// there may be room (as `send().await` waits), or until the deadline.
    pub(crate) async fn room_until(&self, deadline: Option<tokio::time::Instant>) {
        if let RefInner::Target(t) = &self.inner {
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d, t.room()).await;
                }
                // A timeout too long to be a point in time: wait as long as it takes.
                None => t.room().await,
            }
        }
    }

    /// Delivers for an `ask`: like `tell`, but reports why the request was not delivered.
    pub(crate) fn deliver_checked(&self, msg: M) -> Result<(), NotDelivered> {
        match &self.inner {
            RefInner::Local(s) => match settle(s, s.push(msg)) {
                Ok(()) => Ok(()),
                Err(TellError::Full(m)) => {
                    s.dead_letter_ref(&m, DeadLetterReason::MailboxFull);
                    Err(NotDelivered::Full)
                }
                Err(TellError::Closed(m)) => {
                    s.dead_letter_ref(&m, DeadLetterReason::RecipientGone);
                    Err(NotDelivered::Closed)
                }
            },
            RefInner::Target(t) => t.deliver_checked(msg),
        }
    }

    /// A view of this ref that accepts any `U` convertible into `M` (Akka's `narrow`): a
    /// `ActorRef<MonitorMsg>` can serve as the `ActorRef<i64>` reply-to of a request when
    /// `i64: Into<MonitorMsg>`. The view has the same path and forwards each message converted.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorRef, ActorSystem, Behaviors};
    /// let system = ActorSystem::new("demo");
    /// let r: ActorRef<i64> = system.spawn(Behaviors::ignore::<i64>(), "n").unwrap();
    /// let small: ActorRef<i32> = r.narrow::<i32>();
    /// small.tell(5i32);
    /// assert_eq!(small.path(), r.path());
    /// # system.shutdown().await; }
    /// ```
    pub fn narrow<U>(&self) -> ActorRef<U>
    where
        U: Into<M> + Send + 'static,
    {
        ActorRef::from_target(Arc::new(Narrowed {
            inner: self.clone(),
            _u: std::marker::PhantomData::<fn(U)>,
        }))
    }

    /// Tells without publishing a dead letter if the actor is gone (used by the event stream).
    pub(crate) fn tell_quiet(&self, msg: M) {
        match &self.inner {
            RefInner::Local(s) => s.tell_quiet(msg),
            RefInner::Target(t) => {
                let _ = t.deliver(msg);
            }
        }
    }

    /// Asks a local actor to stop once it has handled every message in its mailbox, instead of
    /// after the current one as a stop does. It goes on handling messages, and when it finds its
    /// mailbox empty it stops by the usual sequence (children, `post_stop`, watchers, parent).
    /// Only messages told after it stopped become dead letters. A stop or a failure meanwhile
    /// goes its own way; a restart keeps the request. Timers do not keep the actor alive.
    ///
    /// Returns `false`, doing nothing, if this ref is not a local actor (a remote actor, an ask's
    /// reply slot, a narrowed view).
    #[allow(dead_code)] // for the upper layers; the core itself never calls it
    pub(crate) fn stop_when_drained(&self) -> bool {
        match &self.inner {
            RefInner::Local(s) => {
                s.send_sys(SysMsg::StopWhenDrained);
                true
            }
            RefInner::Target(_) => false,
        }
    }

    pub(crate) fn watch_by(&self, watcher: Arc<dyn Watcher>) {
        match &self.inner {
            RefInner::Local(s) => s.send_sys(SysMsg::Watch(watcher)),
            RefInner::Target(t) => t.watch(watcher),
        }
    }

    pub(crate) fn remote_node(&self) -> Option<&str> {
        match &self.inner {
            RefInner::Local(_) => None,
            RefInner::Target(t) => t.remote_node(),
        }
    }

    /// The uid this ref is written with on the wire.
    pub(crate) fn wire_uid(&self) -> u64 {
        match &self.inner {
            RefInner::Local(s) => s.path.uid(),
            RefInner::Target(t) => t.wire_uid().unwrap_or_else(|| t.path().uid()),
        }
    }

    pub(crate) fn unwatch_by(&self, watcher_uid: u64) {
        match &self.inner {
            RefInner::Local(s) => s.send_sys(SysMsg::Unwatch(watcher_uid)),
            RefInner::Target(t) => t.unwatch(watcher_uid),
        }
    }

    /// The system this ref belongs to (see [`RefTarget::system`]).
    pub(crate) fn system_inner(&self) -> &Arc<SystemInner> {
        match &self.inner {
            RefInner::Local(s) => s.system.inner(),
            RefInner::Target(t) => t.system(),
        }
    }
}

impl<M: 'static> ActorRef<M> {
    /// The actor's path and incarnation.
    pub fn path(&self) -> &ActorPath {
        match &self.inner {
            RefInner::Local(s) => &s.path,
            RefInner::Target(t) => t.path(),
        }
    }

    /// The full address (`casty://system/path`), like `ref.address` in Casty (Python).
    pub fn address(&self) -> String {
        self.path().address()
    }

    /// The mailbox of a local actor (`None` for other refs), e.g. to check what a configuration
    /// gave it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorSystem, Behaviors, Mailbox, Overflow, SpawnOptions};
    /// let system = ActorSystem::new("demo");
    /// let opts = SpawnOptions::default().mailbox(Mailbox::bounded(4, Overflow::DropOldest));
    /// let r = system.spawn_with(Behaviors::ignore::<u8>(), "a", opts).unwrap();
    /// assert_eq!(r.mailbox(), Some(Mailbox::bounded(4, Overflow::DropOldest)));
    /// # system.shutdown().await; }
    /// ```
    pub fn mailbox(&self) -> Option<crate::Mailbox> {
        self.as_local().map(|s| s.mailbox.kind())
    }

    pub(crate) fn as_local(&self) -> Option<&Arc<Shared<M>>> {
        match &self.inner {
            RefInner::Local(s) => Some(s),
            RefInner::Target(_) => None,
        }
    }
}

impl<M> Clone for ActorRef<M> {
    #[inline]
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            RefInner::Local(s) => RefInner::Local(s.clone()),
            RefInner::Target(t) => {
                t.ref_cloned();
                RefInner::Target(t.clone())
            }
        };
        ActorRef { inner }
    }
}

impl<M> Drop for ActorRef<M> {
    #[inline]
    fn drop(&mut self) {
        if let RefInner::Target(t) = &self.inner {
            t.ref_dropped();
        }
    }
}

impl<M: 'static> PartialEq for ActorRef<M> {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl<M: 'static> Eq for ActorRef<M> {}

impl<M: 'static> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path().hash(state)
    }
}

impl<M: 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({:?})", self.path())
    }
}

impl<M: 'static> fmt::Display for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.path(), f)
    }
}

struct Narrowed<M, U> {
    inner: ActorRef<M>,
    _u: std::marker::PhantomData<fn(U)>,
}

impl<M: Send + 'static, U: Send> RefCount for Narrowed<M, U> {}

impl<M: Send + 'static, U: Into<M> + Send + 'static> RefTarget<U> for Narrowed<M, U> {
    fn path(&self) -> &ActorPath {
        self.inner.path()
    }

    fn system(&self) -> &Arc<SystemInner> {
        self.inner.system_inner()
    }

    fn deliver(&self, msg: U) -> Result<(), TellError<U>> {
        self.inner.tell(msg);
        Ok(())
    }

    fn watch(&self, watcher: Arc<dyn Watcher>) {
        self.inner.watch_by(watcher);
    }

    fn unwatch(&self, watcher_uid: u64) {
        self.inner.unwatch_by(watcher_uid);
    }
}
