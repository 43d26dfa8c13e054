//! The event stream: a system-wide publish/subscribe bus for observability (L12).
//!
//! Subscribers register for one event type. Publishing clones the event for each subscriber of
//! that type and never waits: an actor subscriber gets a `tell`, and a callback subscriber has its
//! own task fed by an unbounded channel, so a slow callback delays only itself.
//!
//! Lifecycle events ([`ActorStarted`], [`ActorStopped`], [`ActorRestarted`]) and [`DeadLetter`],
//! [`UnhandledMessage`] are published by the runtime for every actor. Users may publish their own
//! types too.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::actor::actor_ref::ActorRef;
use crate::actor::failure::Failure;
use crate::actor::message::Message;
use crate::actor::path::ActorPath;

/// An actor has started (its first incarnation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStarted {
    /// The actor.
    pub path: ActorPath,
}

/// An actor has stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStopped {
    /// The actor.
    pub path: ActorPath,
}

/// An actor was restarted after a failure.
#[derive(Debug, Clone)]
pub struct ActorRestarted {
    /// The actor.
    pub path: ActorPath,
    /// Why it was restarted.
    pub failure: Failure,
}

/// Which lifecycle hook a [`LifecycleHookFailed`] event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleHook {
    /// `pre_restart`, run on the failing incarnation: the restart goes on.
    PreRestart,
    /// `post_stop`: the stop completes all the same.
    PostStop,
}

/// A `pre_restart` or `post_stop` hook panicked. The restart or stop it belonged to went on.
///
/// A panic in `pre_start` or `post_restart` is not reported this way: it fails the incarnation
/// being started, and supervision handles it like a failure in a handler.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors, LifecycleHook, LifecycleHookFailed};
/// let system = ActorSystem::new("demo");
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let _sub = system.event_stream().subscribe(move |e: &LifecycleHookFailed| {
///     let _ = tx.send((e.path.to_string(), e.hook));
/// });
/// let a = system
///     .spawn(Behaviors::with_lifecycle(Behaviors::ignore::<u8>()).post_stop(|_| panic!("oops")), "a")
///     .unwrap();
/// system.stop(&a);
/// assert_eq!(rx.recv().await.unwrap(), ("/a".to_string(), LifecycleHook::PostStop));
/// # system.shutdown().await; }
/// ```
#[derive(Debug, Clone)]
pub struct LifecycleHookFailed {
    /// The actor.
    pub path: ActorPath,
    /// Which hook panicked.
    pub hook: LifecycleHook,
    /// The panic.
    pub failure: Failure,
}

/// A message could not be delivered: its recipient had stopped, a bounded mailbox dropped it, or
/// remoting could not carry it. [`DeadLetter::reason`] says which.
///
/// Remoting may report many lost messages as one event (a batch on a dead link, say), so that a
/// dead peer cannot flood the event stream: [`DeadLetter::count`] says how many it stands for.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors, DeadLetter, DeadLetterReason};
/// let system = ActorSystem::new("demo");
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let _sub = system.event_stream().subscribe(move |d: &DeadLetter| { let _ = tx.send(d.clone()); });
/// let a = system.spawn(Behaviors::ignore::<u8>(), "a").unwrap();
/// system.stop(&a);
/// # while system.lookup::<u8>("/a").is_some() { tokio::task::yield_now().await; }
/// a.tell(7);
/// let d = rx.recv().await.unwrap();
/// assert_eq!((d.message.as_str(), &d.reason, d.count), ("7", &DeadLetterReason::RecipientGone, 1));
/// # system.shutdown().await; }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Where the message was sent.
    pub recipient: ActorPath,
    /// The message, rendered with `Debug` (or its type name where the runtime cannot render it;
    /// a description such as `<120 messages>` when the event stands for several).
    pub message: String,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// How many messages this event stands for: 1, except for remoting's aggregated reports.
    pub count: u64,
}

/// Why a message became a [`DeadLetter`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The recipient had stopped (or never existed), or the ask it answered had already ended.
    RecipientGone,
    /// A bounded mailbox was full: its overflow policy dropped or refused the message.
    MailboxFull,
    /// Remoting could not carry it; the text says why: the outbound queue to the node was full,
    /// the node refused the handshake, the node (or the incarnation the ref pointed to) is gone,
    /// the link dropped it, or the bytes could not be read on arrival.
    Remote(String),
    /// A layer above the core dropped it; the text says why (a shard's buffer was full, a
    /// shard region stopped).
    Dropped(String),
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadLetterReason::RecipientGone => f.write_str("the recipient is gone"),
            DeadLetterReason::MailboxFull => f.write_str("the mailbox is full"),
            DeadLetterReason::Remote(why) => write!(f, "remoting: {why}"),
            DeadLetterReason::Dropped(why) => write!(f, "dropped: {why}"),
        }
    }
}

/// An actor returned `Behaviors::unhandled()` for a message, or had an `empty` behavior.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnhandledMessage {
    /// The actor.
    pub recipient: ActorPath,
    /// The message, rendered with `Debug` where the runtime still holds it, else its type name.
    pub message: String,
}

impl Message for ActorStarted {}
impl Message for ActorStopped {}
impl Message for ActorRestarted {}
impl Message for DeadLetter {}
impl Message for UnhandledMessage {}
impl Message for LifecycleHookFailed {}

type Deliver = Box<dyn Fn(&dyn Any) + Send + Sync>;

struct Sub {
    id: u64,
    deliver: Deliver,
}

pub(crate) struct StreamInner {
    subs: RwLock<HashMap<TypeId, Vec<Sub>>>,
    /// How many subscriptions there are, of any type; changed under the write lock. While it is
    /// zero, publishing touches nothing shared but this count (the runtime publishes lifecycle
    /// events for every actor, mostly to nobody).
    count: AtomicUsize,
    next_id: AtomicU64,
    handle: Handle,
}

/// The system's event bus. Get it with `ActorSystem::event_stream()`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorStarted, ActorSystem, Behaviors};
/// let system = ActorSystem::new("demo");
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let sub = system.event_stream().subscribe(move |e: &ActorStarted| {
///     let _ = tx.send(e.path.to_string());
/// });
/// system.spawn(Behaviors::ignore::<u8>(), "a").unwrap();
/// assert_eq!(rx.recv().await.unwrap(), "/a");
/// sub.unsubscribe();
/// # system.shutdown().await; }
/// ```
#[derive(Clone)]
pub struct EventStream {
    inner: Arc<StreamInner>,
}

impl EventStream {
    pub(crate) fn new(handle: Handle) -> Self {
        EventStream {
            inner: Arc::new(StreamInner {
                subs: RwLock::new(HashMap::new()),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                handle,
            }),
        }
    }

    /// Calls `f` for every published event of type `E`, on a task of its own, for as long as the
    /// returned [`Subscription`] is kept (or for good, after [`Subscription::detach`]).
    pub fn subscribe<E>(&self, f: impl Fn(&E) + Send + Sync + 'static) -> Subscription
    where
        E: Clone + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<E>();
        self.inner.handle.spawn(async move {
            while let Some(e) = rx.recv().await {
                f(&e);
            }
        });
        self.add::<E>(Box::new(move |any| {
            if let Some(e) = any.downcast_ref::<E>() {
                let _ = tx.send(e.clone());
            }
        }))
    }

    /// Tells every published event of type `E` to an actor, for as long as the returned
    /// [`Subscription`] is kept (or for good, after [`Subscription::detach`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorStopped, ActorSystem, Behaviors};
    /// let system = ActorSystem::new("demo");
    /// let watcher = system
    ///     .spawn(Behaviors::receive(|_ctx, e: ActorStopped| {
    ///         println!("stopped: {}", e.path);
    ///         Behaviors::same()
    ///     }), "watcher")
    ///     .unwrap();
    /// let sub = system.event_stream().subscribe_actor(watcher);
    /// // ... later
    /// sub.unsubscribe();
    /// # system.shutdown().await; }
    /// ```
    pub fn subscribe_actor<E>(&self, subscriber: ActorRef<E>) -> Subscription
    where
        E: Clone + Send + 'static,
    {
        self.add::<E>(Box::new(move |any| {
            if let Some(e) = any.downcast_ref::<E>() {
                subscriber.tell_quiet(e.clone());
            }
        }))
    }

    fn add<E: 'static>(&self, deliver: Deliver) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let type_id = TypeId::of::<E>();
        let mut subs = self.inner.subs.write().unwrap_or_else(|e| e.into_inner());
        subs.entry(type_id).or_default().push(Sub { id, deliver });
        self.inner.count.fetch_add(1, Ordering::SeqCst);
        drop(subs);
        Subscription {
            id,
            type_id,
            stream: Arc::downgrade(&self.inner),
            detached: false,
        }
    }

    /// Publishes an event to every subscriber of its type. Never blocks on a subscriber.
    pub fn publish<E: Clone + Send + 'static>(&self, event: E) {
        self.publish_with(|| event);
    }

    /// Publishes the event `make` builds, building it only if anyone subscribes at all.
    pub(crate) fn publish_with<E: Clone + Send + 'static>(&self, make: impl FnOnce() -> E) {
        if self.inner.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let subs = self.inner.subs.read().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = subs.get(&TypeId::of::<E>()) {
            let event = make();
            for s in list {
                (s.deliver)(&event);
            }
        }
    }

    /// Whether anyone listens for `E` (lets the runtime skip rendering unwanted events).
    pub fn has_subscribers<E: 'static>(&self) -> bool {
        if self.inner.count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let subs = self.inner.subs.read().unwrap_or_else(|e| e.into_inner());
        subs.get(&TypeId::of::<E>()).is_some_and(|l| !l.is_empty())
    }

    pub(crate) fn clear(&self) {
        let mut subs = self.inner.subs.write().unwrap_or_else(|e| e.into_inner());
        subs.clear();
        self.inner.count.store(0, Ordering::SeqCst);
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n: usize = self
            .inner
            .subs
            .read()
            .map(|s| s.values().map(Vec::len).sum())
            .unwrap_or(0);
        f.debug_struct("EventStream")
            .field("subscribers", &n)
            .finish()
    }
}

/// A handle to one subscription: the subscription lasts as long as the handle.
///
/// Dropping the handle, or calling [`Subscription::unsubscribe`], ends the subscription: events
/// published before the end are still delivered (a callback subscriber drains what is already
/// queued for it), events published after it are not. To keep a subscription for the life of the
/// system without holding the handle, call [`Subscription::detach`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::ActorSystem;
/// let system = ActorSystem::new("demo");
/// let stream = system.event_stream();
///
/// let sub = stream.subscribe(|n: &u32| println!("got {n}"));
/// assert!(stream.has_subscribers::<u32>());
/// drop(sub); // ends it
/// assert!(!stream.has_subscribers::<u32>());
///
/// // Kept until the system shuts down.
/// stream.subscribe(|n: &u32| println!("got {n}")).detach();
/// assert!(stream.has_subscribers::<u32>());
/// # system.shutdown().await; }
/// ```
#[derive(Debug)]
#[must_use = "dropping a `Subscription` ends it at once: keep it in a variable (`let _sub = ...`, \
              not `let _ = ...`) or call `.detach()` to keep it for the life of the system"]
pub struct Subscription {
    id: u64,
    type_id: TypeId,
    stream: Weak<StreamInner>,
    detached: bool,
}

impl Subscription {
    /// Ends the subscription, as dropping it does. Events published before are still delivered
    /// (a callback subscriber's task ends once its queue is drained); events published after are
    /// not.
    pub fn unsubscribe(self) {
        drop(self);
    }

    /// Lets go of the handle but keeps the subscription, for the life of the event stream (until
    /// the system shuts down).
    pub fn detach(mut self) {
        self.detached = true;
    }

    fn end(&self) {
        if let Some(s) = self.stream.upgrade() {
            let mut subs = s.subs.write().unwrap_or_else(|e| e.into_inner());
            if let Some(list) = subs.get_mut(&self.type_id) {
                let before = list.len();
                list.retain(|sub| sub.id != self.id);
                s.count.fetch_sub(before - list.len(), Ordering::SeqCst);
                if list.is_empty() {
                    subs.remove(&self.type_id);
                }
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.detached {
            self.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorSystem;
    use std::sync::atomic::AtomicUsize;

    // The runtime publishes lifecycle events for every actor: with nobody subscribed to an event's
    // type the event is not even built, and a subscription that ends leaves nothing behind.
    #[tokio::test]
    async fn an_event_nobody_subscribes_to_is_not_built() {
        let system = ActorSystem::new("quiet");
        let events = system.event_stream();
        let built = AtomicUsize::new(0);
        let make = || {
            built.fetch_add(1, Ordering::SeqCst);
            5u32
        };
        events.publish_with(make);
        assert_eq!(built.load(Ordering::SeqCst), 0);
        // A subscriber of another type does not make `u32` events worth building.
        let other = events.subscribe(|_: &String| {});
        events.publish_with(make);
        assert_eq!(built.load(Ordering::SeqCst), 0);

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sub = events.subscribe(move |n: &u32| {
            let _ = tx.send(*n);
        });
        events.publish_with(make);
        assert_eq!(built.load(Ordering::SeqCst), 1);
        assert_eq!(rx.recv().await, Some(5));

        drop(sub);
        drop(other);
        assert!(!events.has_subscribers::<u32>());
        events.publish_with(make);
        events.publish(6u32);
        assert_eq!(built.load(Ordering::SeqCst), 1);
        assert_eq!(rx.recv().await, None);
        // Subscribing again after everything ended works as the first time.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _again = events.subscribe(move |n: &u32| {
            let _ = tx.send(*n);
        });
        events.publish(7u32);
        assert_eq!(rx.recv().await, Some(7));
        system.shutdown().await;
    }
}
