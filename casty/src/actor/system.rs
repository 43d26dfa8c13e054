//! `ActorSystem`: the root of a tree of actors.
//!
//! The system owns the registry of live actors (path → cell, for typed `lookup` and for unique
//! names), the event stream, the scheduler, and the count of live actors that `shutdown` waits on.
//! It is a cheap, cloneable handle; actors reach it through their context.
//!
//! Top-level actors live directly under the root (`/greeter`), as in Casty (Python). Names starting
//! with `_` are reserved for internal actors and `$` for anonymous ones.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::actor::actor_ref::ActorRef;
use crate::actor::ask::{self, AskError};
use crate::actor::behavior::Behavior;
use crate::actor::cell::{start_actor, AnyCell, Shared, SysMsg};
use crate::actor::event_stream::{DeadLetter, DeadLetterReason, EventStream};
use crate::actor::failure::Failure;
use crate::actor::mailbox::Mailbox;
use crate::actor::message::Message;
use crate::actor::path::{next_uid, validate_name, ActorPath};
use crate::actor::registry::{Refused, Registry};
use crate::actor::scheduler::Scheduler;

/// Options for spawning an actor.
///
/// # Examples
///
/// ```
/// use casty::{Mailbox, Overflow, SpawnOptions};
/// let o = SpawnOptions::default().mailbox(Mailbox::bounded(10, Overflow::DropNew));
/// assert_eq!(o.mailbox.map(|m| m.capacity()), Some(Some(10)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// The actor's mailbox. `None` takes it from the system's configuration (`casty.toml`), or
    /// unbounded without one; a mailbox given here always wins over the file.
    pub mailbox: Option<Mailbox>,
}

impl SpawnOptions {
    /// Sets the mailbox.
    pub fn mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = Some(mailbox);
        self
    }
}

/// Why an actor could not be spawned.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors, SpawnError};
/// let system = ActorSystem::new("demo");
/// system.spawn(Behaviors::ignore::<u8>(), "a").unwrap();
/// let err = system.spawn(Behaviors::ignore::<u8>(), "a").unwrap_err();
/// assert_eq!(err, SpawnError::DuplicateName("/a".into()));
/// assert!(matches!(system.spawn(Behaviors::ignore::<u8>(), "a/b"), Err(SpawnError::InvalidName { .. })));
/// # system.shutdown().await; }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The name is not allowed.
    #[error("invalid actor name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A live actor already has this path.
    #[error("an actor named {0} already exists")]
    DuplicateName(String),
    /// The system is shutting down.
    #[error("the actor system is shutting down")]
    SystemTerminated,
}

pub(crate) struct SystemInner {
    pub(crate) name: Arc<str>,
    root: ActorPath,
    handle: Handle,
    registry: Registry,
    pub(crate) events: EventStream,
    scheduler: Scheduler,
    live: AtomicUsize,
    idle: Notify,
    terminating: AtomicBool,
    shutdown_timeout: Duration,
    defaults: Option<Arc<dyn SpawnDefaults>>,
    /// The remoting layer, once one is started.
    pub(crate) wire: std::sync::OnceLock<Arc<dyn crate::actor::wire::WireProvider>>,
    /// Refs written to the wire, by (path, uid), for replies coming back.
    pub(crate) exports: crate::actor::wire::Exports,
    /// The deadlines of pending asks.
    pub(crate) deadlines: Arc<crate::actor::deadlines::Deadlines>,
    /// What upper layers attached to this system, one value per type (see
    /// [`ActorSystem::put_extension`]); `None` once the system has shut down.
    extensions: Mutex<Option<Extensions>>,
}

/// A system's extensions by type: each value is an `Arc<T>` stored under `TypeId::of::<T>()`.
type Extensions = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

impl SystemInner {
    pub(crate) fn spawn_task<F>(&self, fut: F) -> AbortHandle
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut).abort_handle()
    }

    pub(crate) fn register(&self, cell: Arc<dyn AnyCell>) -> Result<(), SpawnError> {
        // The check runs under the registry's lock: a shutdown that has collected the actors
        // to stop has seen every registration made before it set `terminating`.
        let terminating = || match self.terminating.load(Ordering::SeqCst) {
            true => Err(SpawnError::SystemTerminated),
            false => Ok(()),
        };
        // Counted live under the lock as well: a shutdown whose snapshot has this actor waits
        // for it.
        let counted = || {
            self.live.fetch_add(1, Ordering::SeqCst);
        };
        match self.registry.insert(cell, terminating, counted) {
            Ok(()) => Ok(()),
            Err(Refused::Taken(path)) => Err(SpawnError::DuplicateName(path.as_str().into())),
            Err(Refused::Check(e)) => Err(e),
        }
    }

    /// Unregisters one incarnation; a later one under the same path stays registered.
    pub(crate) fn unregister(&self, path: &ActorPath) {
        self.registry.remove(path);
    }

    /// Returns once no actor is alive.
    async fn until_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    pub(crate) fn actor_finished(&self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn top_level_terminated(
        &self,
        path: &ActorPath,
        failure: Option<&Failure>,
        escalate: bool,
    ) {
        if let (Some(f), true) = (failure, escalate) {
            tracing::error!(actor = %path, error = %f, "a top-level actor escalated a failure; it has stopped");
        }
    }

    /// Publishes a dead letter, rendering the message only if someone listens.
    pub(crate) fn dead_letter(
        &self,
        recipient: &ActorPath,
        reason: DeadLetterReason,
        describe: impl FnOnce() -> String,
    ) {
        self.dead_letters(recipient, 1, || (describe(), reason));
    }

    /// Publishes one dead letter standing for `count` messages, rendering it (message text and
    /// reason) only if someone listens.
    pub(crate) fn dead_letters(
        &self,
        recipient: &ActorPath,
        count: u64,
        describe: impl FnOnce() -> (String, DeadLetterReason),
    ) {
        if self.events.has_subscribers::<DeadLetter>() {
            let (message, reason) = describe();
            self.events.publish(DeadLetter {
                recipient: recipient.clone(),
                message,
                reason,
                count,
            });
        }
    }

    pub(crate) fn dead_letter_typed<R>(&self, recipient: &ActorPath, reason: DeadLetterReason) {
        self.dead_letter(recipient, reason, || std::any::type_name::<R>().to_string());
    }

    /// The mailbox and behavior an actor named `name` starts with: what the code gave, else what
    /// the configuration resolves for the name.
    pub(crate) fn configure<M>(
        &self,
        name: &str,
        behavior: Behavior<M>,
        mailbox: Option<Mailbox>,
    ) -> (Behavior<M>, Mailbox) {
        let Some(defaults) = &self.defaults else {
            return (behavior, mailbox.unwrap_or_default());
        };
        let found = defaults.for_actor(name);
        let mailbox = mailbox.or(found.mailbox).unwrap_or_default();
        let behavior = match found.supervision {
            Some(s) if !behavior.is_supervised() => crate::Behaviors::supervise(behavior, s),
            _ => behavior,
        };
        (behavior, mailbox)
    }

    pub(crate) fn lookup_cell(&self, path: &str) -> Option<Arc<dyn AnyCell>> {
        self.registry.get(path)
    }
}

/// What [`ActorSystem::shutdown`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownOutcome {
    aborted: Vec<ActorPath>,
}

impl ShutdownOutcome {
    /// Whether every actor finished its stop sequence in time.
    pub fn is_complete(&self) -> bool {
        self.aborted.is_empty()
    }

    /// The actors that were still running when the timeout passed and were aborted, by path.
    pub fn aborted(&self) -> &[ActorPath] {
        &self.aborted
    }
}

/// Published when a shutdown ran out of time and aborted the actors still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownTimedOut {
    /// The timeout that passed.
    pub timeout: Duration,
    /// The actors aborted, by path.
    pub aborted: Vec<ActorPath>,
}

impl crate::actor::message::Message for ShutdownTimedOut {}

/// A tree of actors with its event stream and scheduler.
///
/// Create it inside a tokio runtime. Clones are handles to the same system.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors};
/// use std::time::Duration;
///
/// let system = ActorSystem::new("demo");
/// let adder = system
///     .spawn(Behaviors::receive(|_ctx, (a, b, r): (i64, i64, casty::ActorRef<i64>)| {
///         r.tell(a + b);
///         Behaviors::same()
///     }), "adder")
///     .unwrap();
/// let sum = system.ask(&adder, |r| (2, 3, r), Duration::from_secs(1)).await.unwrap();
/// assert_eq!(sum, 5);
/// system.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<SystemInner>,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.inner.name)
            .field("live_actors", &self.inner.live.load(Ordering::Relaxed))
            .finish()
    }
}

/// Builds an [`ActorSystem`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let system = casty::ActorSystem::builder().name("bank").build();
/// assert_eq!(system.name(), "bank");
/// # system.shutdown().await; }
/// ```
#[derive(Default)]
pub struct ActorSystemBuilder {
    pub(crate) name: Option<String>,
    handle: Option<Handle>,
    /// The system's name, if `name` is not given (a configuration's `[system] name`).
    pub(crate) default_name: Option<String>,
    pub(crate) defaults: Option<Arc<dyn SpawnDefaults>>,
    shutdown_timeout: Option<Duration>,
    /// Extensions an upper layer asked to install once the system is built.
    pub(crate) extensions: Vec<InstallExtension>,
}

/// Installs one extension on a system just built.
pub(crate) type InstallExtension = Box<dyn FnOnce(&ActorSystem) + Send>;

impl std::fmt::Debug for ActorSystemBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystemBuilder")
            .field("name", &self.name)
            .field("default_name", &self.default_name)
            .field("defaults", &self.defaults)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Where an actor's mailbox and supervision come from when the code that spawns it does not say:
/// a source of defaults by actor name, such as a `casty.toml` (`config::CastyConfig` implements
/// it, and `ActorSystemBuilder::config` installs one).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorDefaults, ActorSystem, Behaviors, Mailbox, Overflow, SpawnDefaults};
/// use std::sync::Arc;
///
/// /// Every actor whose name starts with `queue-` gets a bounded mailbox.
/// #[derive(Debug)]
/// struct Queues;
/// impl SpawnDefaults for Queues {
///     fn for_actor(&self, name: &str) -> ActorDefaults {
///         let mut d = ActorDefaults::default();
///         if name.starts_with("queue-") {
///             d.mailbox = Some(Mailbox::bounded(10, Overflow::DropNew));
///         }
///         d
///     }
/// }
/// let system = ActorSystem::builder().spawn_defaults(Arc::new(Queues)).build();
/// let q = system.spawn(Behaviors::ignore::<u8>(), "queue-1").unwrap();
/// assert_eq!(q.mailbox().and_then(|m| m.capacity()), Some(10));
/// # system.shutdown().await; }
/// ```
pub trait SpawnDefaults: Send + Sync + std::fmt::Debug + 'static {
    /// The defaults for an actor named `name` (its last path segment).
    fn for_actor(&self, name: &str) -> ActorDefaults;
}

/// What a [`SpawnDefaults`] gives one actor. `None` leaves the runtime's own default (an unbounded
/// mailbox; no supervision, so a failure stops the actor). A mailbox in `SpawnOptions` and a
/// `Behaviors::supervise` in code win over these.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ActorDefaults {
    /// The mailbox.
    pub mailbox: Option<Mailbox>,
    /// The supervision strategy.
    pub supervision: Option<crate::SupervisorStrategy>,
}

/// How long [`ActorSystem::shutdown`] waits for the actors' stop sequences by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

impl ActorSystemBuilder {
    /// The system's name (default `"casty"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Takes each actor's mailbox and supervision, where the spawning code gives none, from
    /// `defaults` (see [`SpawnDefaults`]; `ActorSystemBuilder::config` installs a `casty.toml`).
    pub fn spawn_defaults(mut self, defaults: Arc<dyn SpawnDefaults>) -> Self {
        self.defaults = Some(defaults);
        self
    }

    /// How long [`ActorSystem::shutdown`] waits for every actor to finish its stop sequence
    /// before it aborts the ones left (default [`DEFAULT_SHUTDOWN_TIMEOUT`], 10 s).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let system = casty::ActorSystem::builder().shutdown_timeout(Duration::from_secs(2)).build();
    /// assert!(system.shutdown().await.is_complete());
    /// # }
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The tokio runtime to run actors on (default: the current one).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Builds the system.
    ///
    /// # Panics
    ///
    /// Panics if no runtime was given and this is not called from inside a tokio runtime.
    pub fn build(self) -> ActorSystem {
        let handle = self.handle.unwrap_or_else(|| {
            Handle::try_current().expect("casty: an ActorSystem must be created inside a tokio runtime, or given one with `.runtime(handle)`")
        });
        let name: Arc<str> = self
            .name
            .or(self.default_name)
            .unwrap_or_else(|| "casty".to_string())
            .into();
        let root = ActorPath::new(name.clone(), "/".into(), 0);
        let system = ActorSystem {
            inner: Arc::new(SystemInner {
                name,
                root,
                events: EventStream::new(handle.clone()),
                scheduler: Scheduler::new(handle.clone()),
                deadlines: crate::actor::deadlines::Deadlines::new(handle.clone()),
                handle,
                registry: Registry::default(),
                wire: std::sync::OnceLock::new(),
                exports: Default::default(),
                live: AtomicUsize::new(0),
                idle: Notify::new(),
                terminating: AtomicBool::new(false),
                shutdown_timeout: self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
                defaults: self.defaults,
                extensions: Mutex::new(Some(HashMap::new())),
            }),
        };
        for install in self.extensions {
            install(&system);
        }
        system
    }
}

impl ActorSystem {
    /// A system named `name`, running on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder().name(name).build()
    }

    /// A builder for a system with options.
    pub fn builder() -> ActorSystemBuilder {
        ActorSystemBuilder::default()
    }

    pub(crate) fn from_inner(inner: Arc<SystemInner>) -> Self {
        ActorSystem { inner }
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Spawns a top-level actor at `/name`.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the name is invalid or taken, or the system is shutting down.
    pub fn spawn<M: Message>(
        &self,
        behavior: impl Into<Behavior<M>>,
        name: &str,
    ) -> Result<ActorRef<M>, SpawnError> {
        self.spawn_with(behavior, name, SpawnOptions::default())
    }

    /// Spawns a top-level actor with options (mailbox).
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the name is invalid or taken, or the system is shutting down.
    pub fn spawn_with<M: Message>(
        &self,
        behavior: impl Into<Behavior<M>>,
        name: &str,
        options: SpawnOptions,
    ) -> Result<ActorRef<M>, SpawnError> {
        validate_name(name, false).map_err(|reason| SpawnError::InvalidName {
            name: name.to_string(),
            reason,
        })?;
        self.spawn_top(behavior.into(), name, options)
    }

    /// Spawns a top-level actor of the runtime's own, under a reserved name (`_name`).
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) fn spawn_internal<M: Message>(
        &self,
        behavior: Behavior<M>,
        name: &str,
    ) -> Result<ActorRef<M>, SpawnError> {
        debug_assert!(validate_name(name, true).is_ok() && name.starts_with('_'));
        self.spawn_top(behavior, name, SpawnOptions::default())
    }

    fn spawn_top<M: Message>(
        &self,
        behavior: Behavior<M>,
        name: &str,
        options: SpawnOptions,
    ) -> Result<ActorRef<M>, SpawnError> {
        let (behavior, mailbox) = self.inner.configure(name, behavior, options.mailbox);
        let path = self.inner.root.child(name, next_uid());
        let shared = Arc::new(Shared::<M>::new(path, mailbox, self.inner.clone(), None));
        let behavior = behavior.prepare(&shared);
        self.inner.register(shared.clone())?;
        Ok(start_actor(shared, behavior))
    }

    /// Sends a request built around a fresh reply ref and waits for the reply (L9).
    ///
    /// Meant for code outside actors. Inside an actor, use `ctx.ask` (the reply arrives as a
    /// message) or pass `ctx.self_ref()` as the reply ref, so the mailbox is never blocked.
    ///
    /// # Errors
    ///
    /// [`AskError::Timeout`] after `timeout` (checked every 10 ms, so up to 10 ms later, never
    /// sooner); [`AskError::Terminated`] at once if the target has stopped; [`AskError::NoReply`]
    /// at once if the request was dropped unanswered.
    pub async fn ask<M, R, T>(
        &self,
        target: &ActorRef<M>,
        make: impl FnOnce(ActorRef<R>) -> T,
        timeout: Duration,
    ) -> Result<R, AskError>
    where
        M: Send + 'static,
        R: Send + 'static,
        T: Into<M>,
    {
        ask::ask(&self.inner, target, |r| make(r).into(), timeout).await
    }

    /// A typed ref to the live actor at `path` (`/team/worker-2`), or `None` if there is none or its
    /// message type is not `M`. Never returns a ref of the wrong type.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorSystem, Behaviors};
    /// let system = ActorSystem::new("demo");
    /// system.spawn(Behaviors::ignore::<String>(), "a").unwrap();
    /// assert!(system.lookup::<String>("/a").is_some());
    /// assert!(system.lookup::<u64>("/a").is_none());
    /// assert!(system.lookup::<String>("/b").is_none());
    /// # system.shutdown().await; }
    /// ```
    pub fn lookup<M: Send + 'static>(&self, path: &str) -> Option<ActorRef<M>> {
        let cell = self.inner.lookup_cell(path)?;
        cell.into_any()
            .downcast::<Shared<M>>()
            .ok()
            .map(ActorRef::local)
    }

    /// Runs `f` with this system as the resolver for every `ActorRef` deserialized inside it (on
    /// this thread), so that refs carried in messages or events come back as working refs.
    ///
    /// A ref to a live local actor of the same incarnation resolves to it. Any other ref (a stopped
    /// actor, an older incarnation, another system) resolves to a ref whose messages become dead
    /// letters. Outside this scope, deserializing a ref fails with an error.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorRef, ActorSystem, Behaviors};
    /// let system = ActorSystem::new("demo");
    /// let a = system.spawn(Behaviors::ignore::<String>(), "a").unwrap();
    /// let mut bytes = Vec::new();
    /// ciborium::into_writer(&a, &mut bytes).unwrap();
    ///
    /// let back: ActorRef<String> = system
    ///     .resolving_refs(|| ciborium::from_reader(bytes.as_slice()))
    ///     .unwrap();
    /// assert_eq!(back, a);
    /// // Without a system to resolve against, a ref cannot be read.
    /// assert!(ciborium::from_reader::<ActorRef<String>, _>(bytes.as_slice()).is_err());
    /// # system.shutdown().await; }
    /// ```
    pub fn resolving_refs<R>(&self, f: impl FnOnce() -> R) -> R {
        crate::actor::serde_refs::with_resolver(self, f)
    }

    pub(crate) fn inner(&self) -> &Arc<SystemInner> {
        &self.inner
    }

    /// Resolves a path to a ref: the live local actor of that incarnation, or a dead ref.
    pub(crate) fn resolve<M: Send + 'static>(&self, path: ActorPath) -> ActorRef<M> {
        if path.system_name() == &*self.inner.name {
            let live = self
                .inner
                .lookup_cell(path.as_str())
                .filter(|c| c.path().uid() == path.uid())
                .and_then(|c| c.into_any().downcast::<Shared<M>>().ok());
            if let Some(shared) = live {
                return ActorRef::local(shared);
            }
        }
        ActorRef::from_target(Arc::new(crate::actor::serde_refs::DeadRef::new(
            path,
            self.inner.clone(),
        )))
    }

    /// Stops an actor (and its children first). Returns `false` if the ref is not a local actor.
    pub fn stop<M: Send + 'static>(&self, actor: &ActorRef<M>) -> bool {
        match actor.as_local() {
            Some(s) => {
                s.send_sys(SysMsg::Stop);
                true
            }
            None => false,
        }
    }

    /// Installs `value` as this system's extension of type `T`, unless one is installed already,
    /// and returns the one installed: the first wins, so concurrent callers all get the same.
    ///
    /// This is how an upper layer attaches its state to a system (one value per type) for code
    /// that has only the system, such as a handler with `ctx.system()`. Read rarely, under a
    /// lock; never on the path of a message. The extensions are dropped at the end of
    /// [`ActorSystem::shutdown`], since one may hold refs into the system that would otherwise
    /// keep it allocated; from then on nothing is installed and `value` is handed back as is.
    #[allow(dead_code)] // for the upper layers; the core itself never calls it
    pub(crate) fn put_extension<T: Send + Sync + 'static>(&self, value: Arc<T>) -> Arc<T> {
        let mut guard = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(map) = guard.as_mut() else {
            return value;
        };
        let installed = map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.clone().downcast::<T>().ok());
        match installed {
            Some(first) => first,
            None => {
                map.insert(TypeId::of::<T>(), value.clone());
                value
            }
        }
    }

    /// This system's extension of type `T`, if one is installed (see
    /// [`ActorSystem::put_extension`]).
    #[allow(dead_code)] // for the upper layers; the core itself never calls it
    pub(crate) fn extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let guard = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|v| v.clone().downcast::<T>().ok())
    }

    /// The system's event stream.
    pub fn event_stream(&self) -> &EventStream {
        &self.inner.events
    }

    /// The system's scheduler for timed messages.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// How many actors are alive.
    pub fn live_actors(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// Spawns a plain task on the system's runtime.
    pub(crate) fn spawn_task<F>(&self, fut: F) -> AbortHandle
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn_task(fut)
    }

    /// Stops every actor (children first, then `post_stop`, then the watchers) and returns once
    /// every `post_stop` has run, or once the system's shutdown timeout has passed (see
    /// [`ActorSystemBuilder::shutdown_timeout`]; 10 s by default). New spawns fail from the moment
    /// shutdown begins.
    ///
    /// Actors still running when the timeout passes (a handler awaiting something that never
    /// completes, say) are aborted: their tasks are cancelled without their stop sequence, what
    /// their mailboxes hold becomes dead letters, and they are listed in the returned
    /// [`ShutdownOutcome`] and in a [`ShutdownTimedOut`] event.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let system = casty::ActorSystem::new("demo");
    /// system.spawn(casty::Behaviors::ignore::<u8>(), "a").unwrap();
    /// let outcome = system.shutdown().await;
    /// assert!(outcome.is_complete());
    /// assert_eq!(system.live_actors(), 0);
    /// # }
    /// ```
    pub async fn shutdown(&self) -> ShutdownOutcome {
        self.shutdown_timeout(self.inner.shutdown_timeout).await
    }

    /// [`ActorSystem::shutdown`] with its own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorSystem, Behaviors};
    /// use std::time::Duration;
    /// let system = ActorSystem::new("demo");
    /// // An actor whose handler never returns.
    /// let stuck = system
    ///     .spawn(Behaviors::receive_async(|_ctx, _m: u8| Box::pin(async {
    ///         std::future::pending::<()>().await;
    ///         Behaviors::same()
    ///     })), "stuck")
    ///     .unwrap();
    /// stuck.tell(1);
    /// # tokio::task::yield_now().await;
    /// let outcome = system.shutdown_timeout(Duration::from_millis(50)).await;
    /// assert_eq!(outcome.aborted().len(), 1);
    /// assert_eq!(outcome.aborted()[0].to_string(), "/stuck");
    /// # }
    /// ```
    pub async fn shutdown_timeout(&self, timeout: Duration) -> ShutdownOutcome {
        self.inner.terminating.store(true, Ordering::SeqCst);
        self.inner.scheduler.cancel_all();
        let mut tops = self.inner.registry.cells();
        tops.retain(|c| c.path().parent_str() == Some("/"));
        for c in tops {
            c.send_sys(SysMsg::Stop);
        }
        let mut aborted = Vec::new();
        if tokio::time::timeout(timeout, self.inner.until_idle())
            .await
            .is_err()
        {
            let left = self.inner.registry.cells();
            for c in &left {
                c.abort();
            }
            aborted = left.iter().map(|c| c.path().clone()).collect();
            aborted.sort_by(|a: &ActorPath, b| a.as_str().cmp(b.as_str()));
            tracing::error!(
                ?timeout,
                actors = aborted.len(),
                "shutdown timed out; aborting the actors still running"
            );
            self.inner.events.publish(ShutdownTimedOut {
                timeout,
                aborted: aborted.clone(),
            });
            // Cancelled tasks finish at their next poll; one that never yields (a blocking loop)
            // cannot be cancelled and is not waited for.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.inner.until_idle()).await;
        }
        if let Some(w) = self.inner.wire.get() {
            w.shutdown().await;
        }
        self.inner.events.clear();
        // Taken out of the lock before they are dropped: dropping one may reach the system.
        let extensions = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(extensions);
        ShutdownOutcome { aborted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Behaviors;

    // An actor spawned while the system shuts down is either refused or stopped, its post_stop
    // run, before the shutdown returns: it is counted live under the same lock as it is
    // registered, so a shutdown that sees it waits for it.
    #[test]
    fn an_actor_spawned_during_a_shutdown_is_refused_or_stopped_before_the_shutdown_returns() {
        use std::sync::atomic::AtomicBool;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for _ in 0..100 {
            rt.block_on(async {
                let system = ActorSystem::new("race");
                let stopped = Arc::new(AtomicBool::new(false));
                let (s, st) = (system.clone(), stopped.clone());
                let spawner = tokio::spawn(async move {
                    let b = Behaviors::with_lifecycle(Behaviors::ignore::<u8>())
                        .post_stop(move |_| st.store(true, Ordering::SeqCst));
                    s.spawn(b, "late").is_ok()
                });
                system.shutdown().await;
                let spawned = spawner.await.unwrap();
                let done = stopped.load(Ordering::SeqCst);
                assert!(
                    !spawned || done,
                    "spawned, yet not stopped when the shutdown returned"
                );
            });
        }
    }

    // The first value installed for a type stays: a second `put_extension` of that type gets
    // the first one back and installs nothing.
    #[tokio::test]
    async fn the_first_extension_of_a_type_wins() {
        let system = ActorSystem::new("ext");
        let first = system.put_extension(Arc::new(String::from("first")));
        assert_eq!(*first, "first");
        let second = system.put_extension(Arc::new(String::from("second")));
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(*second, "first");
        assert_eq!(
            system.extension::<String>().as_deref().map(String::as_str),
            Some("first")
        );
        system.shutdown().await;
    }

    // An extension is found by its type only: another type finds nothing until it is installed,
    // and two types installed side by side each find their own; clones of the system share them.
    #[tokio::test]
    async fn extensions_are_looked_up_by_type_and_two_types_coexist() {
        #[derive(Debug, PartialEq)]
        struct Counter(u32);
        let system = ActorSystem::new("ext");
        assert!(system.extension::<Counter>().is_none());
        system.put_extension(Arc::new(String::from("text")));
        assert!(system.extension::<Counter>().is_none());
        system.put_extension(Arc::new(Counter(7)));
        let clone = system.clone();
        assert_eq!(clone.extension::<Counter>().as_deref(), Some(&Counter(7)));
        assert_eq!(
            clone.extension::<String>().as_deref().map(String::as_str),
            Some("text")
        );
        assert!(clone.extension::<u64>().is_none());
        system.shutdown().await;
    }

    // An extension that holds a ref into its system does not keep the system allocated: the
    // extensions are dropped when the shutdown ends, and none is installed after it.
    #[tokio::test]
    async fn extensions_are_dropped_at_shutdown_and_none_is_installed_after() {
        struct HoldsSystem(#[allow(dead_code)] ActorSystem);
        let system = ActorSystem::new("ext");
        system.put_extension(Arc::new(HoldsSystem(system.clone())));
        let weak = Arc::downgrade(&system.inner);
        system.shutdown().await;
        assert!(system.extension::<HoldsSystem>().is_none());
        let late = system.put_extension(Arc::new(5u8));
        assert_eq!(*late, 5);
        assert!(system.extension::<u8>().is_none());
        drop(system);
        assert!(
            weak.upgrade().is_none(),
            "the extension kept its system allocated"
        );
    }

    // The registry holds one incarnation per path: an older incarnation leaving (its stop
    // sequence runs late, or an abort) never takes the newer one's entry with it.
    #[tokio::test]
    async fn an_old_incarnation_leaving_keeps_the_new_one_registered() {
        let system = ActorSystem::new("reg");
        let a = system.spawn(Behaviors::ignore::<u8>(), "a").unwrap();
        let old = ActorPath::new(system.inner.name.clone(), "/a".into(), a.path().uid() ^ 1);
        system.inner.unregister(&old);
        let found = system.lookup::<u8>("/a").expect("still registered");
        assert_eq!(found.path().uid(), a.path().uid());
        system.inner.unregister(a.path());
        assert!(system.lookup::<u8>("/a").is_none());
        system.shutdown().await;
    }
}
