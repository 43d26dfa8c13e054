//! Behaviors: what an actor does with its next message, as a value.
//!
//! A `Behavior<M>` is either a *directive* returned from a handler (`same`, `stopped`, `unhandled`,
//! `restart`), a *handler* (`receive`, `receive_async`, `receive_message`, `ignore`, `empty`, and
//! `stateful`/`stateful_async`, whose handler owns a state value: see `stateful.rs`), a deferred
//! *setup* that runs when the actor starts, or a *wrapper* that adds a concern around an inner
//! behavior (`supervise`, `with_lifecycle`). The cell interprets these values; state transitions
//! are nothing but returning the next value (L3).
//!
//! Behaviors are `Clone`, so the runtime can keep the pristine initial behavior and go back to it
//! on a restart (L5) without asking the user for a factory. A handler is kept inline in the
//! `Behavior` value when it is small (see `handler_box.rs`), and a closure is held by value until
//! the behavior is first cloned, when it moves behind an `Arc` that the clones share: so returning
//! a new behavior from a handler (`counter(n + 1)`) allocates nothing.
//!
//! Handlers come in two shapes. A synchronous handler returns its result directly and runs without
//! boxing a future: this is the fast path. An asynchronous handler returns a boxed future that may
//! `.await`; the actor takes no new message until it completes (L2).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::actor::context::ActorContext;
use crate::actor::failure::Failure;
use crate::actor::handler_box::{HandlerBox, SharedFn};
use crate::actor::path::ActorPath;
use crate::actor::stateful::Next;
use crate::actor::supervision::SupervisorStrategy;

/// A boxed, `Send` future that may borrow for `'a`: what an async handler returns (borrowing the
/// actor's context), and what the journal and transport traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of running a handler, before the cell interprets it.
pub(crate) type HandlerResult<M> = Result<Behavior<M>, Failure>;

/// What a handler produced: a result now, or a future that will produce it.
pub(crate) enum Outcome<'a, M> {
    Ready(HandlerResult<M>),
    Pending(BoxFuture<'a, HandlerResult<M>>),
}

/// Runtime notifications that a handler may react to, besides messages.
pub(crate) enum Signal<'a> {
    /// A child of this actor has terminated, normally (`failure` is `None`) or by failing.
    ChildTerminated {
        path: &'a ActorPath,
        failure: Option<&'a Failure>,
    },
}

/// The object behind `receive`-style behaviors.
pub(crate) trait Handler<M>: Send + Sync + 'static {
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M>;

    fn signal(
        &mut self,
        _ctx: &mut ActorContext<M>,
        _signal: &Signal<'_>,
    ) -> Option<HandlerResult<M>> {
        None
    }

    /// Whether the handler lost its state to a panic, so that it cannot be resumed.
    fn is_poisoned(&mut self) -> bool {
        false
    }

    /// Whether the handler has asynchronous work to do when it is installed, before its first
    /// message (see [`Handler::start`]).
    fn has_start(&self) -> bool {
        false
    }

    /// The asynchronous start: runs once when the handler is installed, before any message. While
    /// it runs, messages wait in the mailbox, in order. An error is a failure for supervision.
    /// Persistence uses this for recovery.
    fn start<'a>(
        &'a mut self,
        _ctx: &'a mut ActorContext<M>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn clone_box(&self) -> Box<dyn Handler<M>>;

    /// A copy for a new behavior (see [`Handler::clone_box`]), kept inline where it fits. The
    /// default boxes it through `clone_box`; a handler overrides it to avoid that allocation.
    fn clone_handler(&self) -> HandlerBox<M>
    where
        M: 'static,
    {
        HandlerBox::from_box(self.clone_box())
    }
}

type SetupFn<M> = dyn Fn(&mut ActorContext<M>) -> HandlerResult<M> + Send + Sync;
type HookFn<M> = dyn Fn(&mut ActorContext<M>) + Send + Sync;
type RestartHookFn<M> = dyn Fn(&mut ActorContext<M>, &Failure) + Send + Sync;

pub(crate) enum Kind<M> {
    Same,
    Stopped,
    Unhandled,
    Restart,
    Empty,
    Ignore,
    Receive(HandlerBox<M>),
    Setup(Arc<SetupFn<M>>),
    Supervise(Box<Behavior<M>>, Arc<SupervisorStrategy>),
    Lifecycle(Box<Behavior<M>>, Hooks<M>),
    /// An opaque value for a wrapping handler to interpret (persistence effects). The cell itself
    /// treats it as a failure: it has no meaning outside its handler.
    Effect(EffectSlot),
    /// Runs when the actor is created, before any ref to it exists, and gives the behavior to
    /// start with: it installs what must be in place before the first message is queued (a
    /// sharded type's direct routes, see `Shared::intercept`). Spawning runs it; returned later
    /// from a handler, it runs then.
    Prepare(Arc<PrepareFn<M>>),
}

/// See [`Kind::Prepare`].
pub(crate) type PrepareFn<M> =
    dyn Fn(&Arc<crate::actor::cell::Shared<M>>) -> Behavior<M> + Send + Sync;

/// The payload of [`Kind::Effect`]. Cloning gives an empty slot: an effect is a one-shot result
/// of a handler, never part of an initial behavior.
pub(crate) struct EffectSlot(std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>);

impl EffectSlot {
    pub(crate) fn new(payload: Box<dyn std::any::Any + Send>) -> Self {
        EffectSlot(std::sync::Mutex::new(Some(payload)))
    }

    pub(crate) fn empty() -> Self {
        EffectSlot(std::sync::Mutex::new(None))
    }

    pub(crate) fn take(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// How an actor handles its next message. Build one with [`Behaviors`].
///
/// # Examples
///
/// ```
/// use casty::{Behavior, Behaviors};
///
/// fn counter(n: u64) -> Behavior<u64> {
///     Behaviors::receive(move |_ctx, add: u64| counter(n + add))
/// }
/// let _b = counter(0);
/// ```
pub struct Behavior<M> {
    pub(crate) kind: Kind<M>,
}

impl<M> Behavior<M> {
    pub(crate) fn from_kind(kind: Kind<M>) -> Self {
        Behavior { kind }
    }

    /// A behavior running the handler `h`, kept inline if it is small (no allocation).
    #[inline]
    pub(crate) fn handler(h: impl Handler<M>) -> Self
    where
        M: 'static,
    {
        Behavior {
            kind: Kind::Receive(HandlerBox::new(h)),
        }
    }

    /// Runs every [`Kind::Prepare`] of an actor being created (also under supervision and
    /// lifecycle wrappers) with its shared part, before any ref to it exists.
    pub(crate) fn prepare(self, shared: &Arc<crate::actor::cell::Shared<M>>) -> Behavior<M> {
        match self.kind {
            Kind::Prepare(f) => f(shared).prepare(shared),
            Kind::Supervise(b, s) => Behavior {
                kind: Kind::Supervise(Box::new(b.prepare(shared)), s),
            },
            Kind::Lifecycle(b, h) => Behavior {
                kind: Kind::Lifecycle(Box::new(b.prepare(shared)), h),
            },
            kind => Behavior { kind },
        }
    }

    /// Whether this is the `same` directive.
    pub fn is_same(&self) -> bool {
        matches!(self.kind, Kind::Same)
    }

    /// Whether this is the `stopped` directive.
    pub fn is_stopped(&self) -> bool {
        matches!(self.kind, Kind::Stopped)
    }

    /// Whether a supervision strategy is attached (through `Behaviors::supervise`, possibly under
    /// lifecycle hooks).
    pub fn is_supervised(&self) -> bool {
        match &self.kind {
            Kind::Supervise(..) => true,
            Kind::Lifecycle(inner, _) => inner.is_supervised(),
            _ => false,
        }
    }

    /// Whether this is the `unhandled` directive.
    pub fn is_unhandled(&self) -> bool {
        matches!(self.kind, Kind::Unhandled)
    }
}

impl<M: 'static> Clone for Behavior<M> {
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            Kind::Same => Kind::Same,
            Kind::Stopped => Kind::Stopped,
            Kind::Unhandled => Kind::Unhandled,
            Kind::Restart => Kind::Restart,
            Kind::Empty => Kind::Empty,
            Kind::Ignore => Kind::Ignore,
            Kind::Receive(h) => Kind::Receive(h.clone()),
            Kind::Setup(f) => Kind::Setup(f.clone()),
            Kind::Supervise(b, s) => Kind::Supervise(b.clone(), s.clone()),
            Kind::Lifecycle(b, h) => Kind::Lifecycle(b.clone(), h.clone()),
            Kind::Effect(_) => Kind::Effect(EffectSlot::empty()),
            Kind::Prepare(f) => Kind::Prepare(f.clone()),
        };
        Behavior { kind }
    }
}

impl<M> fmt::Debug for Behavior<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.kind {
            Kind::Same => "Same",
            Kind::Stopped => "Stopped",
            Kind::Unhandled => "Unhandled",
            Kind::Restart => "Restart",
            Kind::Empty => "Empty",
            Kind::Ignore => "Ignore",
            Kind::Receive(_) => "Receive",
            Kind::Setup(_) => "Setup",
            Kind::Supervise(..) => "Supervise",
            Kind::Lifecycle(..) => "Lifecycle",
            Kind::Effect(_) => "Effect",
            Kind::Prepare(_) => "Prepare",
        };
        write!(f, "Behavior::{name}")
    }
}

/// What a handler may return: a `Behavior<M>`, or a `Result<Behavior<M>, E>` whose error becomes a
/// [`Failure`] for supervision (L4).
///
/// # Examples
///
/// ```
/// use casty::{Behavior, Behaviors, IntoBehavior};
/// let ok: Result<Behavior<u8>, std::fmt::Error> = Ok(Behaviors::same());
/// assert!(ok.into_behavior().is_ok());
/// let err: Result<Behavior<u8>, std::fmt::Error> = Err(std::fmt::Error);
/// assert!(err.into_behavior().is_err());
/// ```
#[diagnostic::on_unimplemented(
    message = "a handler must return `Behavior<{M}>` or `Result<Behavior<{M}>, E>`, not `{Self}`",
    label = "this is the handler's return value",
    note = "return `Behaviors::same()`, another behavior, or `Err(e)` where `e` implements `std::error::Error`"
)]
pub trait IntoBehavior<M> {
    /// Converts to the runtime's form.
    ///
    /// # Errors
    ///
    /// Returns the handler's failure.
    fn into_behavior(self) -> Result<Behavior<M>, Failure>;
}

impl<M> IntoBehavior<M> for Behavior<M> {
    #[inline]
    fn into_behavior(self) -> Result<Behavior<M>, Failure> {
        Ok(self)
    }
}

impl<M, E: Into<Failure>> IntoBehavior<M> for Result<Behavior<M>, E> {
    #[inline]
    fn into_behavior(self) -> Result<Behavior<M>, Failure> {
        self.map_err(Into::into)
    }
}

impl<M> IntoBehavior<M> for Lifecycle<M> {
    fn into_behavior(self) -> Result<Behavior<M>, Failure> {
        Ok(self.into())
    }
}

struct SyncHandler<F>(SharedFn<F>);

impl<M, F, R> Handler<M> for SyncHandler<F>
where
    M: Send + 'static,
    F: Fn(&mut ActorContext<M>, M) -> R + Send + Sync + 'static,
    R: IntoBehavior<M>,
{
    // Always inline, into the handler box's `step`: the behavior the closure returns is then
    // built where `step` reads it, not returned through memory.
    #[inline(always)]
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M> {
        Outcome::Ready((self.0.get_mut())(ctx, msg).into_behavior())
    }

    fn clone_box(&self) -> Box<dyn Handler<M>> {
        Box::new(SyncHandler(self.0.share()))
    }

    fn clone_handler(&self) -> HandlerBox<M> {
        HandlerBox::new(SyncHandler(self.0.share()))
    }
}

struct MessageHandler<F>(SharedFn<F>);

impl<M, F, R> Handler<M> for MessageHandler<F>
where
    M: Send + 'static,
    F: Fn(M) -> R + Send + Sync + 'static,
    R: IntoBehavior<M>,
{
    #[inline(always)]
    fn receive<'a>(&'a mut self, _ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M> {
        Outcome::Ready((self.0.get_mut())(msg).into_behavior())
    }

    fn clone_box(&self) -> Box<dyn Handler<M>> {
        Box::new(MessageHandler(self.0.share()))
    }

    fn clone_handler(&self) -> HandlerBox<M> {
        HandlerBox::new(MessageHandler(self.0.share()))
    }
}

struct AsyncHandler<F>(SharedFn<F>);

impl<M, F, R> Handler<M> for AsyncHandler<F>
where
    M: Send + 'static,
    F: for<'a> Fn(&'a mut ActorContext<M>, M) -> BoxFuture<'a, R> + Send + Sync + 'static,
    R: IntoBehavior<M> + 'static,
{
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M> {
        let fut = (self.0.get_mut())(ctx, msg);
        Outcome::Pending(Box::pin(async move { fut.await.into_behavior() }))
    }

    fn clone_box(&self) -> Box<dyn Handler<M>> {
        Box::new(AsyncHandler(self.0.share()))
    }

    fn clone_handler(&self) -> HandlerBox<M> {
        HandlerBox::new(AsyncHandler(self.0.share()))
    }
}

/// One lifecycle hook attached by [`Behaviors::with_lifecycle`].
pub(crate) enum Hook<M> {
    PreStart(Box<HookFn<M>>),
    PostStop(Box<HookFn<M>>),
    PreRestart(Box<RestartHookFn<M>>),
    PostRestart(Box<HookFn<M>>),
}

/// The hooks of one [`Behaviors::with_lifecycle`] wrapper, shared by the clones of its behavior.
/// Only the hooks given take room: one hook costs one small allocation beside its closure.
pub(crate) type Hooks<M> = Arc<[Hook<M>]>;

/// Finds each kind of hook among the hooks of one wrapper.
pub(crate) trait HookSet<M> {
    fn pre_start(&self) -> Option<&HookFn<M>>;
    fn post_stop(&self) -> Option<&HookFn<M>>;
    fn pre_restart(&self) -> Option<&RestartHookFn<M>>;
    fn post_restart(&self) -> Option<&HookFn<M>>;
}

impl<M> HookSet<M> for [Hook<M>] {
    fn pre_start(&self) -> Option<&HookFn<M>> {
        self.iter().find_map(|h| match h {
            Hook::PreStart(f) => Some(&**f),
            _ => None,
        })
    }

    fn post_stop(&self) -> Option<&HookFn<M>> {
        self.iter().find_map(|h| match h {
            Hook::PostStop(f) => Some(&**f),
            _ => None,
        })
    }

    fn pre_restart(&self) -> Option<&RestartHookFn<M>> {
        self.iter().find_map(|h| match h {
            Hook::PreRestart(f) => Some(&**f),
            _ => None,
        })
    }

    fn post_restart(&self) -> Option<&HookFn<M>> {
        self.iter().find_map(|h| match h {
            Hook::PostRestart(f) => Some(&**f),
            _ => None,
        })
    }
}

/// A behavior with lifecycle hooks, built by [`Behaviors::with_lifecycle`]. Converts into a
/// `Behavior<M>` wherever one is expected.
///
/// Hooks run on the actor's task, between messages:
/// - `pre_start`: before the first message, and again at the start of every restarted incarnation;
/// - `pre_restart(ctx, &failure)`: on the failing incarnation, before the restart (L5);
/// - `post_restart`: on the new incarnation, after `pre_start`;
/// - `post_stop`: once, after the actor's children have stopped and before its watchers are told
///   (L7). It does not run on a restart.
///
/// # Examples
///
/// ```
/// use casty::{Behavior, Behaviors};
/// let b: Behavior<String> = Behaviors::with_lifecycle(Behaviors::ignore())
///     .pre_start(|ctx| println!("{} started", ctx.path()))
///     .post_stop(|ctx| println!("{} stopped", ctx.path()))
///     .into();
/// # let _ = b;
/// ```
pub struct Lifecycle<M> {
    inner: Behavior<M>,
    hooks: Vec<Hook<M>>,
}

impl<M> Lifecycle<M> {
    /// Sets `hook`, replacing a hook of the same kind given before.
    fn set(mut self, hook: Hook<M>) -> Self {
        self.hooks
            .retain(|h| std::mem::discriminant(h) != std::mem::discriminant(&hook));
        self.hooks.push(hook);
        self
    }

    /// Runs `f` before the first message of every incarnation.
    pub fn pre_start(self, f: impl Fn(&mut ActorContext<M>) + Send + Sync + 'static) -> Self {
        self.set(Hook::PreStart(Box::new(f)))
    }

    /// Runs `f` once the actor has stopped (not on a restart).
    pub fn post_stop(self, f: impl Fn(&mut ActorContext<M>) + Send + Sync + 'static) -> Self {
        self.set(Hook::PostStop(Box::new(f)))
    }

    /// Runs `f` on the failing incarnation, with the failure, before a restart.
    pub fn pre_restart(
        self,
        f: impl Fn(&mut ActorContext<M>, &Failure) + Send + Sync + 'static,
    ) -> Self {
        self.set(Hook::PreRestart(Box::new(f)))
    }

    /// Runs `f` on the new incarnation after a restart, before its first message.
    pub fn post_restart(self, f: impl Fn(&mut ActorContext<M>) + Send + Sync + 'static) -> Self {
        self.set(Hook::PostRestart(Box::new(f)))
    }
}

impl<M> From<Lifecycle<M>> for Behavior<M> {
    fn from(l: Lifecycle<M>) -> Self {
        Behavior {
            kind: Kind::Lifecycle(Box::new(l.inner), Arc::from(l.hooks)),
        }
    }
}

impl<M> fmt::Debug for Lifecycle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lifecycle")
            .field("inner", &self.inner)
            .field("pre_start", &self.hooks.pre_start().is_some())
            .field("post_stop", &self.hooks.post_stop().is_some())
            .field("pre_restart", &self.hooks.pre_restart().is_some())
            .field("post_restart", &self.hooks.post_restart().is_some())
            .finish()
    }
}

/// Factories for [`Behavior`] values.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors};
/// use std::time::Duration;
///
/// let system = ActorSystem::new("demo");
/// let echo = system
///     .spawn(
///         Behaviors::receive(|_ctx, (text, reply_to): (String, casty::ActorRef<String>)| {
///             reply_to.tell(text);
///             Behaviors::same()
///         }),
///         "echo",
///     )
///     .unwrap();
/// let back: String = system.ask(&echo, |r| ("hi".to_string(), r), Duration::from_secs(1)).await.unwrap();
/// assert_eq!(back, "hi");
/// # system.shutdown().await; }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Behaviors;

impl Behaviors {
    /// A behavior from a synchronous handler `(ctx, msg) -> next`. The fast path: no future is
    /// boxed. The handler may return `Behavior<M>` or `Result<Behavior<M>, E>`.
    ///
    /// A closure whose captures take at most four machine words (and no alignment beyond a word's)
    /// is kept inside the `Behavior` value: building one, as a functional handler does for each
    /// change of state (`counter(n + 1)`), allocates nothing. A larger closure is boxed. The
    /// closure need not be `Clone`: the first clone of the behavior moves it behind an `Arc` that
    /// the clones share.
    pub fn receive<M, F, R>(f: F) -> Behavior<M>
    where
        M: Send + 'static,
        F: Fn(&mut ActorContext<M>, M) -> R + Send + Sync + 'static,
        R: IntoBehavior<M>,
    {
        Behavior::handler(SyncHandler(SharedFn::new(f)))
    }

    /// A behavior from an asynchronous handler that returns a boxed future, which may `.await`
    /// while it holds the context. The actor handles nothing else until the future completes (L2).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Behavior, Behaviors};
    /// use std::time::Duration;
    ///
    /// fn slow_echo() -> Behavior<(u64, casty::ActorRef<u64>)> {
    ///     Behaviors::receive_async(|_ctx, (n, reply_to): (u64, casty::ActorRef<u64>)| {
    ///         Box::pin(async move {
    ///             tokio::time::sleep(Duration::from_millis(1)).await;
    ///             reply_to.tell(n);
    ///             Behaviors::same()
    ///         })
    ///     })
    /// }
    /// # let _ = slow_echo();
    /// ```
    pub fn receive_async<M, F, R>(f: F) -> Behavior<M>
    where
        M: Send + 'static,
        F: for<'a> Fn(&'a mut ActorContext<M>, M) -> BoxFuture<'a, R> + Send + Sync + 'static,
        R: IntoBehavior<M> + 'static,
    {
        Behavior::handler(AsyncHandler(SharedFn::new(f)))
    }

    /// A behavior from a handler that only needs the message.
    pub fn receive_message<M, F, R>(f: F) -> Behavior<M>
    where
        M: Send + 'static,
        F: Fn(M) -> R + Send + Sync + 'static,
        R: IntoBehavior<M>,
    {
        Behavior::handler(MessageHandler(SharedFn::new(f)))
    }

    /// A behavior computed when the actor starts, with access to its context (to spawn children,
    /// start timers, watch others). It runs again on every restart (L5).
    pub fn setup<M, F, R>(f: F) -> Behavior<M>
    where
        M: Send + 'static,
        F: Fn(&mut ActorContext<M>) -> R + Send + Sync + 'static,
        R: IntoBehavior<M>,
    {
        Behavior::from_kind(Kind::Setup(Arc::new(move |ctx: &mut ActorContext<M>| {
            f(ctx).into_behavior()
        })))
    }

    /// A behavior that owns a state value of type `S`, passed through its body by value: the body
    /// `(ctx, msg, state) -> Next<S, M>` gets the current state and returns, in a [`Next`], the
    /// state for the next message and what the actor does next.
    ///
    /// This changes state without allocating, whatever the state's size. Returning a new behavior
    /// per change (`counter(n + 1)` with [`Behaviors::receive`]) builds a new handler each time,
    /// which allocates nothing only while the closure's captures fit inline (four machine words);
    /// here the handler stays, and the state is moved out of it into the body and back (no clone,
    /// no allocation). The state is cloned only when an incarnation starts: at spawn, and on each
    /// restart, which starts again from the initial state. Hence `S: Clone`; the body is copied
    /// along with it (a closure is `Clone` when what it captures is), so that building the
    /// behavior allocates only its handler.
    ///
    /// If the body panics, the state it was given is lost with it, so the actor cannot be
    /// resumed: a supervisor's `Resume` restarts it instead (from the initial state), and says so
    /// in the log.
    ///
    /// `#[behavior]` fns expand to this (see the guide's Macros chapter for the same actor
    /// written both ways).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Next};
    /// use std::time::Duration;
    ///
    /// #[derive(Debug)]
    /// enum Counter {
    ///     Add(u64),
    ///     Get(ActorRef<u64>),
    ///     Stop,
    /// }
    /// # impl casty::Message for Counter {}
    ///
    /// fn counter(start: u64) -> Behavior<Counter> {
    ///     Behaviors::stateful(start, |_ctx, msg, count| match msg {
    ///         Counter::Add(n) => Next::state(count + n),
    ///         Counter::Get(reply_to) => {
    ///             reply_to.tell(count);
    ///             Next::state(count)
    ///         }
    ///         Counter::Stop => Next::stopped(),
    ///     })
    /// }
    ///
    /// let system = ActorSystem::new("demo");
    /// let c = system.spawn(counter(10), "counter").unwrap();
    /// c.tell(Counter::Add(5));
    /// let n = system.ask(&c, Counter::Get, Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(n, 15);
    /// c.tell(Counter::Stop);
    /// # system.shutdown().await; }
    /// ```
    #[inline]
    pub fn stateful<M, S, F>(initial: S, body: F) -> Behavior<M>
    where
        M: Send + 'static,
        S: Clone + Send + 'static,
        F: Fn(&mut ActorContext<M>, M, S) -> Next<S, M> + Clone + Send + Sync + 'static,
    {
        crate::actor::stateful::stateful(initial, body)
    }

    /// The `async` form of [`Behaviors::stateful`]: the body returns a boxed future that owns the
    /// state while it runs, may `.await`, and ends with the [`Next`]. The actor handles nothing
    /// else until the future completes (L2). A message costs two small allocations: the body's
    /// future, and the handler's around it that puts the state back.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{ActorRef, Behavior, Behaviors, Next};
    /// use std::time::Duration;
    ///
    /// // Replies with the running total, after a pause.
    /// fn slow_total() -> Behavior<(u64, ActorRef<u64>)> {
    ///     Behaviors::stateful_async(0u64, |_ctx, (n, reply_to): (u64, ActorRef<u64>), total| {
    ///         Box::pin(async move {
    ///             tokio::time::sleep(Duration::from_millis(1)).await;
    ///             reply_to.tell(total + n);
    ///             Next::state(total + n)
    ///         })
    ///     })
    /// }
    /// # let _ = slow_total();
    /// ```
    pub fn stateful_async<M, S, F>(initial: S, body: F) -> Behavior<M>
    where
        M: Send + 'static,
        S: Clone + Send + 'static,
        F: for<'a> Fn(&'a mut ActorContext<M>, M, S) -> BoxFuture<'a, Next<S, M>>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        crate::actor::stateful::stateful_async(initial, body)
    }

    /// Keep the current behavior and its state (returned from a handler).
    #[inline]
    pub fn same<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Same)
    }

    /// Stop the actor once the current message is done.
    pub fn stopped<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Stopped)
    }

    /// The message was not handled: publishes an `UnhandledMessage` event and keeps the behavior.
    pub fn unhandled<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Unhandled)
    }

    /// Restart the actor: back to its initial behavior, with `setup` run again.
    pub fn restart<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Restart)
    }

    /// A behavior that accepts and silently discards every message.
    pub fn ignore<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Ignore)
    }

    /// A behavior that treats every message as unhandled.
    pub fn empty<M>() -> Behavior<M> {
        Behavior::from_kind(Kind::Empty)
    }

    /// Wraps a behavior with a supervision strategy that decides what happens when it fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Behaviors, Directive, SupervisorStrategy};
    /// use std::time::Duration;
    ///
    /// let strategy = SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_f| Directive::Restart);
    /// let _b = Behaviors::supervise(Behaviors::ignore::<String>(), strategy);
    /// ```
    pub fn supervise<M>(
        behavior: impl Into<Behavior<M>>,
        strategy: SupervisorStrategy,
    ) -> Behavior<M> {
        Behavior::from_kind(Kind::Supervise(
            Box::new(behavior.into()),
            Arc::new(strategy),
        ))
    }

    /// Attaches lifecycle hooks; see [`Lifecycle`].
    pub fn with_lifecycle<M>(behavior: impl Into<Behavior<M>>) -> Lifecycle<M> {
        Lifecycle {
            inner: behavior.into(),
            hooks: Vec::new(),
        }
    }
}
