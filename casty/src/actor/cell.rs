//! The actor cell: the shared half of an actor and the run loop that drives it.
//!
//! Each actor is one tokio task running [`Cell::run`]. The task owns everything that is touched
//! only by the actor itself: its current behavior, its context (children, watches, timers) and its
//! supervision state. Nothing of that is shared, so there is no lock and the state is never touched
//! concurrently (L2).
//!
//! What other threads touch is [`Shared`]: the user mailbox (lock-free), the system queue (a small
//! mutex, used only for rare control messages: stop, watch, child terminated, timers) and the
//! wake-up flag. System messages are handled before user messages but are not ordered against them
//! (L1).
//!
//! The loop drains up to `BATCH` user messages per wake-up, checking a single atomic flag for
//! system messages in between, and yields to the scheduler after a full batch so one busy actor
//! cannot starve the others on its worker.
//!
//! Stopping (L7) runs in a fixed order: stop the children and wait for them (deepest first, since
//! each child does the same), run `post_stop`, close the mailbox and turn what is left into dead
//! letters, leave the registry, then tell the watchers and the parent, then publish `ActorStopped`.
//!
//! A request to stop once drained (`SysMsg::StopWhenDrained`) only sets a flag: the loop checks it
//! where it finds the mailbox empty, before parking, so handling a message costs nothing more, and
//! the actor stops there by the same sequence, having handled every message queued before.

use std::any::Any;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::time::Instant;

use crate::actor::actor_ref::ActorRef;
use crate::actor::behavior::{
    Behavior, HandlerResult, Hook, HookSet, Hooks, Kind, Outcome, Signal,
};
use crate::actor::context::ActorContext;
use crate::actor::event_stream::{
    ActorRestarted, ActorStarted, ActorStopped, DeadLetterReason, LifecycleHook,
    LifecycleHookFailed, UnhandledMessage,
};
use crate::actor::failure::{CatchUnwind, Failure};
use crate::actor::handler_box::{HandlerBox, Step};
use crate::actor::mailbox::{Batch, Mailbox, MailboxQueue, Push};
use crate::actor::message::Message;
use crate::actor::mpsc::{in_place, InPlace};
use crate::actor::path::ActorPath;
use crate::actor::supervision::{decide, Decision, RestartWindow, SupervisorStrategy};
use crate::actor::system::{ActorSystem, SystemInner};

/// User messages handled per wake-up before the actor yields its worker.
const BATCH: u32 = 128;

/// Gives the worker to the other ready tasks: the task wakes itself and returns `Pending` once,
/// which puts it at the back of its worker's queue, as tokio's own budget does when it runs out.
/// Not `tokio::task::yield_now`, which holds the task back until the worker has run out of ready
/// tasks and polled the I/O driver: for an actor busy with a long queue, that was a poll of the
/// driver (a system call) every `BATCH` messages. The driver is still polled every few dozen
/// tasks the worker runs.
fn requeue() -> impl std::future::Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
}

/// Control messages, handled before user messages.
pub(crate) enum SysMsg {
    Stop,
    /// Stop once every user message in the mailbox is handled: the actor goes on handling them,
    /// and stops as `Stop` does when it finds its mailbox empty.
    StopWhenDrained,
    Watch(Arc<dyn Watcher>),
    Unwatch(u64),
    /// A watched actor has terminated.
    Death(ActorPath, Option<Failure>),
    /// A child has terminated; `escalate` asks the parent to fail.
    ChildTerminated {
        path: ActorPath,
        failure: Option<Failure>,
        escalate: bool,
    },
    Timer {
        key: Arc<str>,
        gen: u64,
    },
}

/// Something that can be told that an actor it watches has terminated.
pub(crate) trait Watcher: Send + Sync + 'static {
    fn watcher_uid(&self) -> u64;
    fn notify_death(&self, path: ActorPath, failure: Option<Failure>);
}

/// The type-erased view of an actor used by the registry, parents and watchers.
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn path(&self) -> &ActorPath;
    fn send_sys(&self, msg: SysMsg);
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    /// Decodes a message from its wire bytes with the actor's own [`Message::wire_decoder`] and
    /// tells it. Err if the actor's type cannot be read from the wire or the bytes are not one.
    fn tell_wire(&self, payload: &[u8]) -> Result<(), WireError>;
    /// Whether the actor still takes messages.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    fn is_alive(&self) -> bool;
    /// Ends the actor without its stop sequence (a shutdown that ran out of time): its task is
    /// aborted, its queues close, what they hold becomes dead letters, and it leaves the registry.
    fn abort(&self);
}

/// Why wire bytes could not be delivered to a local actor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) enum WireError {
    /// The actor's message type has no wire decoder (it is local-only).
    NotRemotable(&'static str),
    /// The bytes are not a message of the actor's type.
    Decode(String),
    /// No live actor of that incarnation, and no exported ref.
    NoSuchActor,
}

/// The system messages waiting for an actor, in order. The first one is kept inline, so that the
/// usual case of a single control message (a stop, a watch) allocates nothing, and the rest are
/// boxed, so that an actor without any pays one word for them.
struct SysQueue {
    closed: bool,
    first: Option<SysMsg>,
    #[allow(clippy::box_collection)] // one word while empty, the usual case, not four
    rest: Option<Box<VecDeque<SysMsg>>>,
}

impl SysQueue {
    fn push(&mut self, msg: SysMsg) {
        if self.first.is_none() && self.rest.is_none() {
            self.first = Some(msg);
        } else {
            self.rest
                .get_or_insert_with(Default::default)
                .push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<SysMsg> {
        let m = self.first.take().or_else(|| {
            let rest = self.rest.as_mut()?;
            let m = rest.pop_front();
            if rest.is_empty() {
                // An emptied queue gives its memory back, so an idle actor holds none.
                self.rest = None;
            }
            m
        });
        m
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    /// Takes every queued message, in order.
    fn take_all(&mut self) -> VecDeque<SysMsg> {
        let mut all = self.rest.take().map(|b| *b).unwrap_or_default();
        if let Some(m) = self.first.take() {
            all.push_front(m);
        }
        all
    }
}

/// The part of an actor that other threads touch.
pub(crate) struct Shared<M> {
    pub(crate) path: ActorPath,
    pub(crate) mailbox: MailboxQueue<M>,
    sys: Mutex<SysQueue>,
    sys_pending: AtomicBool,
    /// The system, as handlers see it (`ctx.system()` lends this one).
    pub(crate) system: ActorSystem,
    /// The parent, told when this actor terminates; none for a top-level actor. Weak: a ref kept
    /// to a stopped actor must not keep its ancestors' shared parts allocated. A parent outlives
    /// its children's stop sequences, so it is there whenever it is needed.
    pub(crate) parent: Option<Weak<dyn AnyCell>>,
    describe: fn(&M) -> String,
    /// The actor's task, for [`AnyCell::abort`].
    task: std::sync::OnceLock<tokio::task::AbortHandle>,
    /// Sees every message told to this actor before it is queued, and may deliver it another way
    /// (a sharded type's region lets senders reach a running entity directly). Set at most once,
    /// when the actor is created and before any ref to it exists, so no message ever passes it by.
    /// Boxed so that the slot is one word: every actor carries it, few set it.
    #[allow(clippy::redundant_allocation)]
    pub(crate) intercept: std::sync::OnceLock<Box<Arc<dyn Intercept<M>>>>,
}

/// Uncounts, when dropped, the counted message that did not reach the mailbox, if any: see
/// [`Shared::push`] and [`Shared::push_wait`].
struct Uncount<'a, M> {
    intercept: &'a dyn Intercept<M>,
    armed: bool,
}

impl<'a, M> Uncount<'a, M> {
    fn new(intercept: &'a dyn Intercept<M>, msg: &M) -> Self {
        Uncount {
            intercept,
            armed: intercept.counted(msg),
        }
    }
}

impl<M> Uncount<'_, M> {
    /// After the push: the message that did not reach the mailbox is the one `push` hands
    /// back, which is not always the one pushed (a `DropOldest` mailbox queues the new message
    /// and hands back its oldest, which may be counted while the new one is not, or the other
    /// way round).
    fn settle(&mut self, push: &Push<M>) {
        self.armed = match push {
            Push::Queued => false,
            Push::Dropped(m) | Push::Full(m) | Push::Closed(m) => self.intercept.counted(m),
        };
    }
}

impl<M> Drop for Uncount<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            self.intercept.uncount();
        }
    }
}

/// See [`Shared::intercept`].
pub(crate) trait Intercept<M>: Send + Sync {
    /// Delivers `msg` another way and returns `true`, having moved it out; or returns `false`
    /// and leaves it to be queued, perhaps marked as counted. The message is lent in place, not
    /// moved in and handed back: an envelope moved through this call and back cost more than
    /// finding its route.
    ///
    /// # Safety
    ///
    /// When this returns `true`, `*msg` has been moved out: the caller must neither use nor
    /// drop it. If it unwinds, `*msg` may have been moved out too, so the caller must not drop
    /// it then either (`ManuallyDrop` does not).
    #[allow(unsafe_code)] // the contract above; implemented by `sharding::direct`
    unsafe fn intercept(&self, msg: &mut ManuallyDrop<M>) -> bool;
    /// Whether a message left by [`Intercept::intercept`] was counted, so that it must
    /// be [uncounted](Intercept::uncount) if it is not queued after all.
    fn counted(&self, msg: &M) -> bool;
    /// A counted message was not queued after all.
    fn uncount(&self);
    /// The interceptor as `Any`, for the layer that installed it to find its own type again.
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// Lends `msg` to the interceptor in place: `None` if it delivered it, or the message it left
/// to be queued.
#[inline]
#[allow(unsafe_code)] // the one call of `Intercept::intercept` (see its contract)
pub(crate) fn lend<M>(i: &dyn Intercept<M>, msg: M) -> Option<M> {
    let mut msg = ManuallyDrop::new(msg);
    // SAFETY: on `true` (or unwinding) `msg` is neither used nor dropped again.
    if unsafe { i.intercept(&mut msg) } {
        None
    } else {
        Some(ManuallyDrop::into_inner(msg))
    }
}

fn describe_debug<M: Message>(m: &M) -> String {
    format!("{m:?}")
}

impl<M: Send + 'static> Shared<M> {
    #[inline]
    pub(crate) fn tell(&self, msg: M) {
        match self.push(msg) {
            Push::Queued => self.after_queued(),
            Push::Dropped(m) | Push::Full(m) => self.dead_letter(m, DeadLetterReason::MailboxFull),
            Push::Closed(m) => self.dead_letter(m, DeadLetterReason::RecipientGone),
        }
    }

    /// Tells without publishing a dead letter on failure (used by the event stream itself).
    pub(crate) fn tell_quiet(&self, msg: M) {
        if let Push::Queued = self.push(msg) {
            self.after_queued();
        }
    }

    /// Queues a message, past the [`Shared::intercept`] if there is one (a message it delivers
    /// another way counts as queued).
    #[inline]
    pub(crate) fn push(&self, msg: M) -> Push<M> {
        match self.intercept.get() {
            None => self.mailbox.push(msg),
            Some(i) => self.push_intercepted(i.as_ref().as_ref(), msg),
        }
    }

    #[inline]
    fn push_intercepted(&self, i: &dyn Intercept<M>, msg: M) -> Push<M> {
        let Some(msg) = lend(i, msg) else {
            return Push::Queued;
        };
        let mut uncount = Uncount::new(i, &msg);
        let push = self.mailbox.push(msg);
        uncount.settle(&push);
        push
    }

    /// [`Shared::push`], waiting for room in a full `Reject` mailbox.
    pub(crate) async fn push_wait(&self, msg: M) -> Push<M> {
        let Some(i) = self.intercept.get() else {
            return self.mailbox.push_wait(msg).await;
        };
        let Some(msg) = lend(i.as_ref().as_ref(), msg) else {
            return Push::Queued;
        };
        // Uncounts unless the message is queued, also when the wait is given up (the future
        // dropped while the mailbox is full).
        let mut uncount = Uncount::new(i.as_ref().as_ref(), &msg);
        let push = self.mailbox.push_wait(msg).await;
        uncount.settle(&push);
        push
    }

    /// Closes the race between a push and a concurrent stop: whoever sees the mailbox closed
    /// after pushing drains it into dead letters.
    #[inline]
    pub(crate) fn after_queued(&self) {
        if self.mailbox.is_closed() {
            self.drain_dead();
        }
    }

    pub(crate) fn dead_letter(&self, msg: M, reason: DeadLetterReason) {
        self.dead_letter_ref(&msg, reason);
    }

    pub(crate) fn dead_letter_ref(&self, msg: &M, reason: DeadLetterReason) {
        self.system
            .inner()
            .dead_letter(&self.path, reason, || (self.describe)(msg));
    }

    fn drain_dead(&self) {
        self.mailbox
            .drain(|m| self.dead_letter(m, DeadLetterReason::RecipientGone));
    }

    /// Whoever lets go of the mailbox's consumer calls this: a push that found the consumer
    /// taken after the mailbox closed left its message for the holder to drain.
    #[inline]
    fn drain_if_closed(&self) {
        if self.mailbox.is_closed() {
            self.drain_dead();
        }
    }

    #[inline]
    fn sys_flag(&self) -> bool {
        self.sys_pending.load(Ordering::SeqCst)
    }

    fn take_sys(&self) -> VecDeque<SysMsg> {
        self.sys_pending.store(false, Ordering::SeqCst);
        self.sys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_all()
    }

    /// Takes the next system message, if any. The flag is cleared under the lock when the queue
    /// is found empty: a message pushed after that sets it again.
    fn pop_sys(&self) -> Option<SysMsg> {
        let mut g = self.sys.lock().unwrap_or_else(|e| e.into_inner());
        let m = g.pop();
        if g.is_empty() {
            self.sys_pending.store(false, Ordering::SeqCst);
        }
        m
    }

    fn has_work(&self) -> bool {
        self.sys_flag() || !self.mailbox.is_empty()
    }

    /// Closes both queues. Returns the system messages still queued.
    fn close(&self) -> VecDeque<SysMsg> {
        self.mailbox.close();
        let mut g = self.sys.lock().unwrap_or_else(|e| e.into_inner());
        g.closed = true;
        g.take_all()
    }
}

impl<M: Message> Shared<M> {
    pub(crate) fn new(
        path: ActorPath,
        mailbox: Mailbox,
        system: Arc<SystemInner>,
        parent: Option<Weak<dyn AnyCell>>,
    ) -> Self {
        Shared {
            path,
            mailbox: MailboxQueue::new(mailbox),
            sys: Mutex::new(SysQueue {
                closed: false,
                first: None,
                rest: None,
            }),
            sys_pending: AtomicBool::new(false),
            system: ActorSystem::from_inner(system),
            parent,
            describe: describe_debug::<M>,
            task: std::sync::OnceLock::new(),
            intercept: std::sync::OnceLock::new(),
        }
    }
}

impl<M: Send + 'static> Shared<M> {
    /// Queues a control message, or answers it at once if the actor is gone.
    pub(crate) fn send_sys(&self, msg: SysMsg) {
        {
            let mut g = self.sys.lock().unwrap_or_else(|e| e.into_inner());
            if !g.closed {
                g.push(msg);
                drop(g);
                self.sys_pending.store(true, Ordering::SeqCst);
                self.mailbox.wake();
                return;
            }
        }
        // The actor is gone: answer what needs an answer.
        if let SysMsg::Watch(w) = msg {
            w.notify_death(self.path.clone(), None);
        }
    }
}

impl<M: Message> AnyCell for Shared<M> {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn is_alive(&self) -> bool {
        !self.mailbox.is_closed()
    }

    fn tell_wire(&self, payload: &[u8]) -> Result<(), WireError> {
        let decode =
            M::wire_decoder().ok_or(WireError::NotRemotable(std::any::type_name::<M>()))?;
        let msg = decode(payload).map_err(WireError::Decode)?;
        self.tell(msg);
        Ok(())
    }

    fn send_sys(&self, msg: SysMsg) {
        Shared::send_sys(self, msg);
    }

    fn abort(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
        for m in self.close() {
            if let SysMsg::Watch(w) = m {
                w.notify_death(self.path.clone(), None);
            }
        }
        self.drain_dead();
        self.system.inner().unregister(&self.path);
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<M: Send + 'static> Watcher for Shared<M> {
    fn watcher_uid(&self) -> u64 {
        self.path.uid()
    }

    fn notify_death(&self, path: ActorPath, failure: Option<Failure>) {
        self.send_sys(SysMsg::Death(path, failure));
    }
}

/// The handler the actor is running now.
enum Current<M> {
    Receive(HandlerBox<M>),
    Empty,
    Ignore,
}

/// An async handler's future, if there is one, with a panic in it turned into a failure. Without
/// a future it is ready at once, with nothing.
struct AwaitHandler<'a, M>(
    Option<CatchUnwind<crate::actor::behavior::BoxFuture<'a, HandlerResult<M>>>>,
);

impl<M> std::future::Future for AwaitHandler<'_, M> {
    type Output = Option<HandlerResult<M>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<HandlerResult<M>>> {
        match &mut self.0 {
            None => std::task::Poll::Ready(None),
            Some(f) => std::pin::Pin::new(f)
                .poll(cx)
                .map(|r| Some(r.unwrap_or_else(|p| Err(Failure::from_panic(p))))),
        }
    }
}

/// A handler's outcome as its result now, or the future that will produce it.
#[allow(clippy::type_complexity)]
fn split<M>(
    o: Option<Outcome<'_, M>>,
) -> (
    Option<HandlerResult<M>>,
    Option<crate::actor::behavior::BoxFuture<'_, HandlerResult<M>>>,
) {
    match o {
        None => (None, None),
        Some(Outcome::Ready(r)) => (Some(r), None),
        Some(Outcome::Pending(f)) => (None, Some(f)),
    }
}

/// What must happen after a result was applied, off the fast path.
enum After {
    Fail(Failure),
    Restart,
    /// The new handler has asynchronous start work (see `Handler::start`).
    Start,
}

/// What a system message asks the run loop to do next.
enum Action<M> {
    Deliver(M),
    Apply(HandlerResult<M>),
    Fail(Failure),
}

/// Where an actor is in its life: small flags kept together beside the stop's failure, so that
/// they take one word of the task.
#[derive(Default)]
struct Status {
    /// Set by the first request to stop, with that request's failure and escalation.
    stopping: bool,
    escalate: bool,
    /// Asked to stop once its mailbox is empty (`SysMsg::StopWhenDrained`); kept across a
    /// restart.
    stop_when_drained: bool,
    /// The handler just installed has start work that has not run yet.
    pending_start: bool,
    /// Stopping its children to restart: their ends are not signalled to the handler, whose
    /// incarnation is over (what it would do next is not run either).
    restarting: bool,
    failure: Option<Failure>,
}

/// The mailbox's consumer as the run loop holds it. Letting go of it, when the loop ends or its
/// task is dropped (an abort), drains a closed mailbox: a push that found the consumer taken after
/// the close left its message for the holder.
struct Held<'a, M: Message> {
    batch: Option<Batch<'a, M>>,
    shared: &'a Shared<M>,
}

impl<M: Message> Drop for Held<'_, M> {
    fn drop(&mut self) {
        if self.batch.take().is_some() {
            self.shared.drain_if_closed();
        }
    }
}

/// What `Behaviors::supervise` and `Behaviors::with_lifecycle` wrappers leave in a cell.
struct Wrappers<M> {
    initial_strategy: Option<Arc<SupervisorStrategy>>,
    strategy: Option<Arc<SupervisorStrategy>>,
    /// The restart times the strategy's limit counts, once there has been a failure.
    window: Option<Box<RestartWindow>>,
    /// The lifecycle hooks in force, outermost first. The first `initial_hooks` are the spawned
    /// behavior's own; a behavior installed later may add more, and a restart drops those again.
    hooks: HookList<M>,
    initial_hooks: u32,
}

impl<M> Default for Wrappers<M> {
    fn default() -> Self {
        Wrappers {
            initial_strategy: None,
            strategy: None,
            window: None,
            hooks: HookList::default(),
            initial_hooks: 0,
        }
    }
}

/// A list of lifecycle hooks that keeps the usual single entry inline: one wrapper costs no
/// allocation beyond its own hooks.
struct HookList<M> {
    first: Option<Hooks<M>>,
    #[allow(clippy::box_collection)] // one word while empty, the usual case, not three
    rest: Option<Box<Vec<Hooks<M>>>>,
}

impl<M> Default for HookList<M> {
    fn default() -> Self {
        HookList {
            first: None,
            rest: None,
        }
    }
}

impl<M> HookList<M> {
    fn len(&self) -> usize {
        match &self.first {
            None => 0,
            Some(_) => 1 + self.rest.as_ref().map_or(0, |r| r.len()),
        }
    }

    fn get(&self, i: usize) -> Option<&Hooks<M>> {
        match i {
            0 => self.first.as_ref(),
            _ => self.rest.as_ref()?.get(i - 1),
        }
    }

    fn contains(&self, h: &Hooks<M>) -> bool {
        let rest = self.rest.iter().flat_map(|r| r.iter());
        self.first.iter().chain(rest).any(|x| Arc::ptr_eq(x, h))
    }

    fn push(&mut self, h: Hooks<M>) {
        if self.first.is_none() {
            self.first = Some(h);
        } else {
            self.rest.get_or_insert_with(Default::default).push(h);
        }
    }

    fn truncate(&mut self, n: usize) {
        match n {
            0 => *self = HookList::default(),
            _ => {
                if let Some(rest) = &mut self.rest {
                    rest.truncate(n - 1);
                    if rest.is_empty() {
                        self.rest = None;
                    }
                }
            }
        }
    }
}

/// The task-owned half of an actor.
pub(crate) struct Cell<M: Message> {
    ctx: ActorContext<M>,
    current: Current<M>,
    initial: Behavior<M>,
    /// The supervision and lifecycle wrappers, if the behavior has any: boxed, so that an actor
    /// without them does not carry their room in its task.
    wrappers: Option<Box<Wrappers<M>>>,
    status: Status,
    /// Counts the actor among the system's live ones until the cell is dropped. The last field,
    /// so that it is dropped last: after everything the actor held.
    _live: Live,
}

impl<M: Message> Cell<M> {
    pub(crate) fn new(ctx: ActorContext<M>, behavior: Behavior<M>, live: Live) -> Self {
        let mut strategy = None;
        let mut hooks = HookList::default();
        let mut b = behavior;
        loop {
            match b.kind {
                Kind::Supervise(inner, s) => {
                    strategy = Some(s);
                    b = *inner;
                }
                Kind::Lifecycle(inner, h) => {
                    hooks.push(h);
                    b = *inner;
                }
                kind => {
                    b = Behavior::from_kind(kind);
                    break;
                }
            }
        }
        let wrappers = (strategy.is_some() || hooks.len() > 0).then(|| {
            Box::new(Wrappers {
                initial_strategy: strategy.clone(),
                strategy,
                initial_hooks: u32::try_from(hooks.len()).unwrap_or(u32::MAX),
                hooks,
                window: None,
            })
        });
        Cell {
            ctx,
            current: Current::Empty,
            initial: b,
            wrappers,
            status: Status::default(),
            _live: live,
        }
    }

    fn wrappers_mut(&mut self) -> &mut Wrappers<M> {
        self.wrappers.get_or_insert_with(Default::default)
    }

    /// The `i`th lifecycle hook in force, outermost first.
    fn hook(&self, i: usize) -> Option<Hooks<M>> {
        self.wrappers.as_ref()?.hooks.get(i).cloned()
    }

    /// Runs the actor until it stops. The cell, and with it the count of live actors, is dropped
    /// at the end of its stop sequence.
    ///
    /// This future is the actor's task, so its size is what every live actor costs beyond its
    /// `Shared`: rare paths (failures, restarts, stopping children) are boxed where they are taken,
    /// so that their state does not grow it.
    ///
    /// A plain function returning an `async move` block, not an `async fn`: an `async fn` keeps
    /// a second copy of its by-value arguments, the whole cell here.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    pub(crate) fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        async move {
            let shared = &self.ctx.shared;
            shared.system.inner().events.publish_with(|| ActorStarted {
                path: shared.path.clone(),
            });
            if let Err(f) = self.start().await {
                Box::pin(self.handle_failure(f)).await;
            }
            self.main_loop().await;
            self.finish().await;
            // This task parks no more: the mailbox, which lives as long as any reference to the
            // actor, need not keep it allocated through its waker.
            self.ctx.shared.mailbox.forget_waker();
        }
    }

    /// The loop over messages. A plain function returning an `async move` block, as `run`: an
    /// `async fn` would keep its `&mut self` twice.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    fn main_loop(&mut self) -> impl std::future::Future<Output = ()> + Send + '_ {
        async move {
            // Only small values live across this loop's awaits (the mailbox's park future, a
            // counter, a boxed future): the loop's state is part of every idle actor's task. A
            // handler's result never does; the slow paths it may lead to are boxed.
            let shared = self.ctx.shared.clone();
            // The mailbox's consumer, held for as long as this loop runs, across awaits too: taking
            // and letting go of it per wake-up cost two fences per message to an actor that parks
            // between messages. A mailbox that does not allow holding it (`DropOldest`) gives none,
            // and each pop takes the consumer for itself.
            let mut held = Held {
                batch: shared.mailbox.batch(),
                shared: &shared,
            };
            'outer: loop {
                if self.status.stopping {
                    return;
                }
                if shared.sys_flag() {
                    Box::pin(self.run_system_messages()).await;
                    continue;
                }
                if held.batch.is_none() {
                    held.batch = shared.mailbox.batch();
                }
                let mut n = 0;
                loop {
                    // Handling a message that ends in `same()` or a new handler touches no
                    // large value here: anything else comes back through `other`, which this
                    // block consumes, so nothing borrowed from `self` outlives it, and only the
                    // awaited future lives across its await. The message goes from its slot to
                    // the handler directly.
                    let result = {
                        let (installed, ready, pending) = {
                            let mut other = None;
                            let done = match &mut held.batch {
                                Some(b) => b.pop_in_place(|msg| self.handle_fast(msg, &mut other)),
                                None => shared.mailbox.pop().map(|msg| {
                                    in_place(msg, |msg| self.handle_fast(msg, &mut other))
                                }),
                            };
                            match done {
                                None => break,
                                Some(true) => (true, None, None),
                                Some(false) => {
                                    let (ready, pending) = split(other);
                                    (false, ready, pending)
                                }
                            }
                        };
                        n += 1;
                        // `same()`, or a new handler installed: nothing is left to do unless the
                        // batch is over or a system message came. (Neither changes whether the
                        // actor is stopping: it was not, or this loop would have ended.) Going
                        // straight to the next message keeps the empty result from being copied
                        // through the tail below.
                        if installed && n < BATCH && !shared.sys_flag() {
                            continue;
                        }
                        // `other` was lent to the handler, and a lent local takes room in this
                        // future for as long as it is in scope: it ends before the await, and
                        // `ready` is moved away before it, so that only the boxed future lives
                        // across it.
                        match pending {
                            None => ready,
                            fut @ Some(_) => {
                                drop(ready);
                                Self::await_handler(fut).await
                            }
                        }
                    };
                    // Only the boxed future lives across this await, not the `After` it consumes.
                    let after = result.and_then(|r| self.apply(r));
                    if let Some(slow) = after.map(|a| Box::pin(self.after(a))) {
                        slow.await;
                    }
                    if self.status.stopping || shared.sys_flag() {
                        continue 'outer;
                    }
                    if n >= BATCH {
                        requeue().await;
                        continue 'outer;
                    }
                }
                if held.batch.is_none() {
                    // Each pop let go of the consumer: a drain that found it taken meanwhile left
                    // its messages to this.
                    shared.drain_if_closed();
                }
                // The mailbox was found empty just now: an actor asked to stop once drained stops
                // here instead of waiting for more. A message told after this is a dead letter.
                if self.status.stop_when_drained {
                    self.request_stop(None, false);
                    return;
                }
                shared.mailbox.park_until(|| shared.has_work()).await;
            }
        }
    }

    /// Handles the system messages queued so far, one at a time, so that no batch of them is
    /// held across an await.
    async fn run_system_messages(&mut self) {
        let shared = &self.ctx.shared.clone();
        while let Some(m) = shared.pop_sys() {
            let Some(a) = self.on_sys(m) else { continue };
            let result = {
                let mut other = None;
                if self.act(a, &mut other) {
                    None
                } else {
                    match other {
                        Some(Outcome::Ready(r)) => Some(r),
                        Some(Outcome::Pending(fut)) => Self::await_handler(Some(fut)).await,
                        None => None,
                    }
                }
            };
            if let Some(after) = result.and_then(|r| self.apply(r)) {
                Box::pin(self.after(after)).await;
            }
            if self.status.stopping {
                return;
            }
        }
    }

    /// Starts what a system message asks for, as far as it goes synchronously; see `handle_fast`.
    fn act<'a>(&'a mut self, action: Action<M>, other: &mut Option<Outcome<'a, M>>) -> bool {
        match action {
            Action::Deliver(m) => in_place(m, |m| self.handle_fast(m, other)),
            Action::Apply(r) => {
                *other = Some(Outcome::Ready(r));
                false
            }
            Action::Fail(f) => {
                *other = Some(Outcome::Ready(Err(f)));
                false
            }
        }
    }

    /// Runs the handler on one message, synchronously as far as it goes: a synchronous handler
    /// completes here without any future being built (the fast path). Returns `true` when that
    /// is all (the handler returned `same()`, or a new handler now installed); otherwise the
    /// result or the future to await is in `other`.
    #[inline(always)]
    fn handle_fast<'a>(
        &'a mut self,
        msg: InPlace<'_, M>,
        other: &mut Option<Outcome<'a, M>>,
    ) -> bool {
        if let Current::Empty = self.current {
            let text = (self.ctx.shared.describe)(msg.get());
            drop(msg);
            self.publish_unhandled(text);
            return true;
        }
        match &mut self.current {
            Current::Receive(h) => {
                let ctx = &mut self.ctx;
                match catch_unwind(AssertUnwindSafe(|| h.step(ctx, msg, other))) {
                    // `same()`, or the functional style's transition, done in place.
                    Ok(Step::Same | Step::Replaced) => true,
                    Ok(Step::Other) => false,
                    Err(p) => {
                        *other = Some(Outcome::Ready(Err(Failure::from_panic(p))));
                        false
                    }
                }
            }
            Current::Ignore | Current::Empty => true,
        }
    }

    /// Awaits an async handler's future; a panic in it is a failure. A future of its own type
    /// rather than an `async fn`, which would hold the boxed future twice.
    fn await_handler(
        fut: Option<crate::actor::behavior::BoxFuture<'_, HandlerResult<M>>>,
    ) -> AwaitHandler<'_, M> {
        AwaitHandler(fut.map(CatchUnwind))
    }

    fn publish_unhandled(&self, message: String) {
        let events = &self.ctx.shared.system.inner().events;
        events.publish(UnhandledMessage {
            recipient: self.ctx.shared.path.clone(),
            message,
        });
    }

    /// Interprets a handler's result. Transitions happen here, synchronously; failures and
    /// restarts are returned for the slow path.
    fn apply(&mut self, result: HandlerResult<M>) -> Option<After> {
        match result {
            Ok(b) => match b.kind {
                Kind::Same => None,
                Kind::Unhandled => {
                    self.publish_unhandled(std::any::type_name::<M>().to_string());
                    None
                }
                Kind::Restart => Some(After::Restart),
                kind => match self.become_(Behavior::from_kind(kind)) {
                    Err(f) => Some(After::Fail(f)),
                    Ok(()) if self.status.pending_start => Some(After::Start),
                    Ok(()) => None,
                },
            },
            Err(f) => Some(After::Fail(f)),
        }
    }

    /// The slow path after a failure or a `restart` directive.
    async fn after(&mut self, after: After) {
        match after {
            After::Fail(f) => self.handle_failure(f).await,
            After::Restart => {
                let f = Failure::explicit_restart();
                if let Some(next) = self.restart_with(&f, None).await {
                    self.handle_failure(next).await;
                }
            }
            After::Start => {
                if let Err(f) = self.run_pending_start().await {
                    self.handle_failure(f).await;
                }
            }
        }
    }

    /// Runs the start work of the handler just installed, if it has any. Messages wait in the
    /// mailbox meanwhile; a panic is a failure like any other.
    async fn run_pending_start(&mut self) -> Result<(), Failure> {
        if !std::mem::take(&mut self.status.pending_start) {
            return Ok(());
        }
        let Current::Receive(h) = &mut self.current else {
            return Ok(());
        };
        let ctx = &mut self.ctx;
        let fut = match catch_unwind(AssertUnwindSafe(move || {
            let (h, ctx) = (h, ctx);
            h.get_mut().start(ctx)
        })) {
            Ok(fut) => fut,
            Err(p) => return Err(Failure::from_panic(p)),
        };
        match CatchUnwind(fut).await {
            Ok(r) => r,
            Err(p) => Err(Failure::from_panic(p)),
        }
    }

    /// Installs a new behavior: absorbs wrappers and runs setups.
    fn become_(&mut self, behavior: Behavior<M>) -> Result<(), Failure> {
        let mut b = behavior;
        loop {
            match b.kind {
                Kind::Same | Kind::Unhandled => return Ok(()),
                Kind::Stopped => {
                    self.request_stop(None, false);
                    return Ok(());
                }
                Kind::Restart => return Err(Failure::explicit_restart()),
                Kind::Empty => {
                    self.current = Current::Empty;
                    return Ok(());
                }
                Kind::Ignore => {
                    self.current = Current::Ignore;
                    return Ok(());
                }
                Kind::Receive(h) => {
                    self.status.pending_start = h.has_start();
                    self.current = Current::Receive(h);
                    return Ok(());
                }
                Kind::Effect(_) => {
                    return Err(Failure::supervisor(
                        "a persistence effect (`Behaviors::persisted`) was returned outside \
                         `Behaviors::event_sourced`"
                            .into(),
                    ))
                }
                Kind::Prepare(f) => b = f(&self.ctx.shared),
                Kind::Setup(f) => {
                    let ctx = &mut self.ctx;
                    b = match catch_unwind(AssertUnwindSafe(|| f(ctx))) {
                        Ok(r) => r?,
                        Err(p) => return Err(Failure::from_panic(p)),
                    };
                }
                Kind::Supervise(inner, s) => {
                    self.wrappers_mut().strategy = Some(s);
                    b = *inner;
                }
                Kind::Lifecycle(inner, h) => {
                    let w = self.wrappers_mut();
                    if !w.hooks.contains(&h) {
                        w.hooks.push(h);
                    }
                    b = *inner;
                }
            }
        }
    }

    /// Starts an incarnation: `pre_start` hooks, then the initial behavior (running its setup),
    /// then the handler's asynchronous start work, if any.
    /// A panic in `pre_start` is a failure of the start, handled by supervision like any other.
    async fn start(&mut self) -> Result<(), Failure> {
        self.current = Current::Empty;
        self.status.pending_start = false;
        self.try_hooks(|h, ctx| h.pre_start().map(|f| f(ctx)).is_some())?;
        self.become_(self.initial.clone())?;
        self.run_pending_start().await
    }

    /// Runs one kind of hook on every lifecycle wrapper, outermost first. The first panic stops
    /// the run and is returned as the failure.
    fn try_hooks(
        &mut self,
        run: impl Fn(&[Hook<M>], &mut ActorContext<M>) -> bool,
    ) -> Result<(), Failure> {
        let mut i = 0;
        while let Some(h) = self.hook(i) {
            i += 1;
            let ctx = &mut self.ctx;
            catch_unwind(AssertUnwindSafe(|| run(&h, ctx))).map_err(Failure::from_panic)?;
        }
        Ok(())
    }

    /// Runs a hook whose panic cannot undo what is under way (`pre_restart`, `post_stop`): the
    /// panic is logged and published as [`LifecycleHookFailed`], and the restart or stop goes on.
    fn run_hooks(
        &mut self,
        hook: LifecycleHook,
        run: impl Fn(&[Hook<M>], &mut ActorContext<M>) -> bool,
    ) {
        let mut i = 0;
        while let Some(h) = self.hook(i) {
            i += 1;
            let ctx = &mut self.ctx;
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(&h, ctx))) {
                let failure = Failure::from_panic(p);
                let path = &self.ctx.shared.path;
                tracing::error!(actor = %path, ?hook, error = %failure, "a lifecycle hook panicked");
                self.ctx
                    .shared
                    .system
                    .inner()
                    .events
                    .publish(LifecycleHookFailed {
                        path: path.clone(),
                        hook,
                        failure,
                    });
            }
        }
    }

    fn request_stop(&mut self, failure: Option<Failure>, escalate: bool) {
        let s = &mut self.status;
        if !s.stopping {
            s.stopping = true;
            s.failure = failure;
            s.escalate = escalate;
        }
    }

    /// Applies the supervision strategy to a failure (L4–L6): [`decide`] says what to do, and
    /// this logs it and does it.
    async fn handle_failure(&mut self, failure: Failure) {
        let mut failure = failure;
        loop {
            let path = self.ctx.shared.path.clone();
            let poisoned = match &mut self.current {
                Current::Receive(h) => h.get_mut().is_poisoned(),
                _ => false,
            };
            // Without a strategy the decision is to stop, and there is no window to count in.
            let decision = match self.wrappers.as_deref_mut() {
                Some(Wrappers {
                    strategy: Some(strategy),
                    window,
                    ..
                }) => {
                    let window = window.get_or_insert_with(Default::default);
                    decide(Some(strategy), &failure, poisoned, window, Instant::now())
                }
                _ => decide(
                    None,
                    &failure,
                    poisoned,
                    &mut RestartWindow::default(),
                    Instant::now(),
                ),
            };
            if let Decision::Restart {
                instead_of_resume: true,
                ..
            }
            | Decision::LimitExceeded {
                instead_of_resume: true,
            } = decision
            {
                tracing::warn!(actor = %path, "the behavior's state was lost to a panic; restarting instead of resuming");
            }
            match decision {
                Decision::Resume => {
                    tracing::warn!(actor = %path, error = %failure, "actor failed; resuming");
                    return;
                }
                Decision::Stop => {
                    tracing::error!(actor = %path, error = %failure, "actor failed; stopping");
                    self.request_stop(Some(failure), false);
                    return;
                }
                Decision::Escalate => {
                    tracing::error!(actor = %path, error = %failure, "actor failed; escalating to its parent");
                    self.request_stop(Some(failure), true);
                    return;
                }
                Decision::LimitExceeded { .. } => {
                    tracing::error!(actor = %path, error = %failure, "actor exceeded its restart limit; stopping");
                    self.request_stop(Some(failure), false);
                    return;
                }
                Decision::Restart { delay, .. } => {
                    tracing::warn!(actor = %path, error = %failure, "actor failed; restarting");
                    match self.restart_with(&failure, delay).await {
                        None => return,
                        Some(next) => failure = next,
                    }
                }
            }
        }
    }

    /// Restarts: `pre_restart`, stop the children, wait out the backoff, start again, then
    /// `post_restart`. Returns the failure of the new incarnation's start, if it failed.
    async fn restart_with(
        &mut self,
        failure: &Failure,
        delay: Option<std::time::Duration>,
    ) -> Option<Failure> {
        self.run_hooks(LifecycleHook::PreRestart, |h, ctx| {
            h.pre_restart().map(|f| f(ctx, failure)).is_some()
        });
        self.ctx.reset_for_restart();
        self.status.restarting = true;
        self.stop_children().await;
        self.status.restarting = false;
        if self.status.stopping {
            return None;
        }
        let shared = self.ctx.shared.clone();
        shared.system.inner().events.publish(ActorRestarted {
            path: shared.path.clone(),
            failure: failure.clone(),
        });
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            let deadline = Instant::now() + d;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = shared.mailbox.park_until(|| shared.sys_flag()) => {
                        for m in shared.take_sys() {
                            let _ = self.on_sys(m);
                        }
                        if self.status.stopping {
                            return None;
                        }
                    }
                }
            }
        }
        if let Some(w) = &mut self.wrappers {
            w.strategy = w.initial_strategy.clone();
            w.hooks.truncate(w.initial_hooks as usize);
        }
        // A panic in `post_restart` fails the new incarnation, like one in `pre_start`.
        let started = self
            .start()
            .await
            .and_then(|()| self.try_hooks(|h, ctx| h.post_restart().map(|f| f(ctx)).is_some()));
        started.err()
    }

    /// Stops every child and waits until all have terminated.
    async fn stop_children(&mut self) {
        let shared = self.ctx.shared.clone();
        for c in self.ctx.children_cells() {
            c.send_sys(SysMsg::Stop);
        }
        while self.ctx.has_children() {
            shared.mailbox.park_until(|| shared.sys_flag()).await;
            for m in shared.take_sys() {
                let _ = self.on_sys(m);
            }
        }
    }

    /// Handles one system message. Returns what the main loop should do next, if anything.
    fn on_sys(&mut self, msg: SysMsg) -> Option<Action<M>> {
        match msg {
            SysMsg::Stop => {
                self.request_stop(None, false);
                None
            }
            SysMsg::StopWhenDrained => {
                self.status.stop_when_drained = true;
                None
            }
            SysMsg::Watch(w) => {
                self.ctx.add_watcher(w);
                None
            }
            SysMsg::Unwatch(uid) => {
                self.ctx.remove_watcher(uid);
                None
            }
            SysMsg::Death(path, _failure) => {
                // A watched child is dead by now (watchers are told after its `post_stop`): it
                // leaves `children()` and frees its name before `Terminated` is handled, so the
                // handler may start a replacement under the same name. Its `ChildTerminated`,
                // which follows, then finds nothing left to remove.
                self.ctx.remove_child(&path);
                if self.status.stopping {
                    return None;
                }
                self.ctx.take_watch_message(&path).map(Action::Deliver)
            }
            SysMsg::ChildTerminated {
                path,
                failure,
                escalate,
            } => {
                self.ctx.remove_child(&path);
                if self.status.stopping || self.status.restarting {
                    return None;
                }
                if escalate {
                    let cause =
                        failure.unwrap_or_else(|| Failure::supervisor("child escalated".into()));
                    return Some(Action::Fail(Failure::child_failed(path, cause)));
                }
                if let Current::Receive(h) = &mut self.current {
                    let sig = Signal::ChildTerminated {
                        path: &path,
                        failure: failure.as_ref(),
                    };
                    let ctx = &mut self.ctx;
                    return match catch_unwind(AssertUnwindSafe(|| h.get_mut().signal(ctx, &sig))) {
                        Ok(r) => r.map(Action::Apply),
                        Err(p) => Some(Action::Fail(Failure::from_panic(p))),
                    };
                }
                None
            }
            SysMsg::Timer { key, gen } => {
                if self.status.stopping {
                    return None;
                }
                self.ctx.take_timer_message(&key, gen).map(Action::Deliver)
            }
        }
    }

    /// The stop sequence (L7).
    async fn finish(&mut self) {
        let shared = &self.ctx.shared.clone();
        self.status.stopping = true;
        let (failure, escalate) = (self.status.failure.clone(), self.status.escalate);
        self.ctx.cancel_all_timers();
        if self.ctx.has_children() {
            Box::pin(self.stop_children()).await;
        }
        self.run_hooks(LifecycleHook::PostStop, |h, ctx| {
            h.post_stop().map(|f| f(ctx)).is_some()
        });
        self.current = Current::Empty;
        let leftover = shared.close();
        for m in leftover {
            if let SysMsg::Watch(w) = m {
                self.ctx.add_watcher(w);
            }
        }
        shared.drain_dead();
        let system = shared.system.inner().clone();
        system.unregister(&shared.path);
        self.ctx.unwatch_all();
        for w in self.ctx.take_watchers() {
            w.notify_death(shared.path.clone(), failure.clone());
        }
        match self.ctx.parent().as_ref() {
            Some(p) => p.send_sys(SysMsg::ChildTerminated {
                path: shared.path.clone(),
                failure,
                escalate,
            }),
            None => system.top_level_terminated(&shared.path, failure.as_ref(), escalate),
        }
        system.events.publish_with(|| ActorStopped {
            path: shared.path.clone(),
        });
    }
}

/// Counts an actor's task as finished when it is dropped: at the end of its stop sequence, or
/// when a shutdown that ran out of time aborts it.
pub(crate) struct Live(Arc<SystemInner>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.actor_finished();
    }
}

/// Spawns the task for a new actor whose `Shared` is already registered.
pub(crate) fn start_actor<M: Message>(
    shared: Arc<Shared<M>>,
    behavior: Behavior<M>,
) -> ActorRef<M> {
    let system = shared.system.inner().clone();
    let r = ActorRef::local(shared.clone());
    let ctx = ActorContext::new(shared.clone());
    let cell = Cell::new(ctx, behavior, Live(system.clone()));
    // The cell's own future is the task: wrapping it in another async block would hold the cell
    // twice (once captured, once inside the future it is moved into).
    let task = system.spawn_task(cell.run());
    let _ = shared.task.set(task);
    r
}

/// A context for an actor that is not running, for unit tests of what handlers do with it.
#[cfg(test)]
pub(crate) fn test_context<M: Message>() -> (crate::ActorSystem, ActorContext<M>) {
    let system = crate::ActorSystem::new("test");
    let inner = system.inner().clone();
    let path = ActorPath::new(
        inner.name.clone(),
        "/test".into(),
        crate::actor::path::next_uid(),
    );
    let shared = Arc::new(Shared::<M>::new(path, Mailbox::default(), inner, None));
    (system, ActorContext::new(shared))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::path::next_uid;
    use crate::actor::system::ActorSystem;
    use crate::{Behaviors, Directive};
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// A registered actor of `u64` at `path` whose handler answers `same()`, not yet started.
    fn unstarted(system: &ActorSystem, path: &str) -> (Arc<Shared<u64>>, Cell<u64>) {
        let inner = system.inner().clone();
        let path = ActorPath::new(inner.name.clone(), path.into(), next_uid());
        let shared = Arc::new(Shared::<u64>::new(
            path,
            Mailbox::default(),
            inner.clone(),
            None,
        ));
        inner.register(shared.clone()).unwrap();
        let cell = Cell::new(
            ActorContext::new(shared.clone()),
            Behaviors::receive(|_ctx, _n: u64| Behaviors::same()),
            Live(inner),
        );
        (shared, cell)
    }

    // What every live actor costs beyond its queued messages: its `Shared` (one allocation, with
    // the queue's five words inline and no cache-line padding) and its task's future, which holds
    // the cell once, without a nested future per system message or a second copy of the cell.
    #[tokio::test]
    async fn an_idle_actor_s_shared_part_and_task_stay_small() {
        let system = ActorSystem::new("sizes");
        let inner = system.inner().clone();
        let (shared, cell) = unstarted(&system, "/sized");
        let cell_size = std::mem::size_of_val(&cell);
        let task = cell.run();
        let task_size = std::mem::size_of_val(&task);
        assert!(std::mem::align_of::<Shared<u64>>() <= 16);
        // 216 bytes, and one word of `intercept` with its `Once`: 232 bytes, which with the
        // `Arc`'s counts is still one 256-byte allocation.
        assert!(
            std::mem::size_of::<Shared<u64>>() <= 232,
            "Shared is {} bytes",
            std::mem::size_of::<Shared<u64>>()
        );
        // The cell once, plus the state of the loop, not the cell twice. The loop keeps no
        // handler result, and no value it lent to a handler, across its awaits (80 bytes beyond
        // the cell today). tokio adds 104 bytes of header, trailer and stage to the future and
        // rounds the task up to 128 bytes: at most 280 bytes make a 384-byte task, 281 a
        // 512-byte one. Keep it at 384.
        assert!(
            task_size <= 280,
            "the task's future is {task_size} bytes for a cell of {cell_size}"
        );
        drop(task);
        inner.unregister(&shared.path);
        system.shutdown().await;
    }

    fn unwatched_uid(m: &SysMsg) -> Option<u64> {
        match m {
            SysMsg::Unwatch(uid) => Some(*uid),
            _ => None,
        }
    }

    // The mailbox lives as long as any reference to the actor, so the waker of the actor's task
    // must not stay in it once the task has finished: it would keep the whole task allocated.
    #[tokio::test]
    async fn a_finished_actor_s_mailbox_lets_go_of_its_task_s_waker() {
        let system = ActorSystem::new("waker");
        let (shared, cell) = unstarted(&system, "/parks");
        let task = tokio::spawn(cell.run());
        shared.tell(1);
        // Idle, the actor parks with its waker in the mailbox.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !(shared.mailbox.is_empty() && shared.mailbox.holds_waker() == Some(true)) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the actor parks");
        shared.send_sys(SysMsg::Stop);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the actor stops")
            .unwrap();
        assert_eq!(shared.mailbox.holds_waker(), Some(false));
        assert!(shared.mailbox.is_closed());
        system.shutdown().await;
    }

    // The first queued control message is kept inline and the rest behind it: either way they
    // come out in the order they went in, and an emptied queue holds no memory.
    #[test]
    fn control_messages_keep_their_order_and_an_empty_queue_holds_nothing() {
        let mut q = SysQueue {
            closed: false,
            first: None,
            rest: None,
        };
        for uid in 1..=3 {
            q.push(SysMsg::Unwatch(uid));
        }
        assert_eq!(q.pop().as_ref().and_then(unwatched_uid), Some(1));
        // Pushed while the inline slot is free but others wait: still behind them.
        q.push(SysMsg::Unwatch(4));
        let order: Vec<_> = std::iter::from_fn(|| q.pop())
            .map(|m| unwatched_uid(&m).unwrap())
            .collect();
        assert_eq!(order, vec![2, 3, 4]);
        assert!(q.is_empty());
        assert!(q.rest.is_none());

        q.push(SysMsg::Unwatch(5));
        assert!(q.rest.is_none(), "one message needs no allocation");
        q.push(SysMsg::Unwatch(6));
        let all: Vec<_> = q
            .take_all()
            .iter()
            .map(|m| unwatched_uid(m).unwrap())
            .collect();
        assert_eq!(all, vec![5, 6]);
        assert!(q.is_empty());
    }

    /// Everything sent on the channel, once `tx`, the test's own sender, is dropped too.
    async fn all_sent(
        tx: mpsc::UnboundedSender<&'static str>,
        mut rx: mpsc::UnboundedReceiver<&'static str>,
    ) -> Vec<&'static str> {
        drop(tx);
        let mut seen = Vec::new();
        while let Some(s) = rx.recv().await {
            seen.push(s);
        }
        seen
    }

    /// A handler whose `Wrap` returns itself wrapped in one more lifecycle, whose `post_stop`
    /// reports `"later"`; `Fail` panics; `Ping` answers.
    fn wrapping(tx: mpsc::UnboundedSender<&'static str>) -> Behavior<Cmd> {
        Behaviors::receive(move |_ctx, cmd: Cmd| match cmd {
            Cmd::Wrap => {
                let t = tx.clone();
                Behaviors::with_lifecycle(wrapping(tx.clone()))
                    .post_stop(move |_| {
                        let _ = t.send("later");
                    })
                    .into()
            }
            Cmd::Fail => panic!("asked to fail"),
            Cmd::Ping(r) => {
                r.tell(());
                Behaviors::same()
            }
        })
    }

    #[derive(Debug)]
    enum Cmd {
        Wrap,
        Fail,
        Ping(ActorRef<()>),
    }
    impl Message for Cmd {}

    // An actor with a long queue gives its worker back every batch of messages: on a runtime of
    // one thread, another actor's message and a timer are both handled long before the queue is.
    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_actor_lets_other_actors_and_timers_run_before_its_queue_is_done() {
        use std::sync::atomic::{AtomicU64, Ordering};
        const QUEUED: u64 = 200_000;
        let system = ActorSystem::new("fair");
        let handled = Arc::new(AtomicU64::new(0));
        let h = handled.clone();
        let busy = system
            .spawn(
                Behaviors::receive(move |_ctx, _n: u64| {
                    h.fetch_add(1, Ordering::Relaxed);
                    Behaviors::same()
                }),
                "busy",
            )
            .unwrap();
        for n in 0..QUEUED {
            busy.tell(n);
        }
        let h = handled.clone();
        let other = system
            .spawn(
                Behaviors::receive(move |_ctx, reply_to: ActorRef<u64>| {
                    reply_to.tell(h.load(Ordering::Relaxed));
                    Behaviors::same()
                }),
                "other",
            )
            .unwrap();
        let h = handled.clone();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            h.load(Ordering::Relaxed)
        });
        let seen_by_other = system
            .ask(&other, |r| r, Duration::from_secs(30))
            .await
            .unwrap();
        let seen_by_timer = timer.await.unwrap();
        assert!(
            seen_by_other < QUEUED,
            "the other actor waited for the whole queue"
        );
        assert!(
            seen_by_timer < QUEUED,
            "the timer waited for the whole queue"
        );
        system.shutdown().await;
    }

    // A ref kept to a stopped child does not keep its parent's shared part allocated: the child
    // knows its parent only weakly.
    #[tokio::test]
    async fn a_ref_to_a_stopped_child_does_not_keep_its_parent_allocated() {
        let system = ActorSystem::new("retain");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let parent = system
            .spawn(
                Behaviors::setup(move |ctx| {
                    let child = ctx.spawn(Behaviors::ignore::<u8>(), "child").unwrap();
                    let _ = tx.send(child);
                    Behaviors::ignore::<u8>()
                }),
                "parent",
            )
            .unwrap();
        let child = rx.recv().await.expect("the child's ref");
        let weak = match &parent.inner {
            crate::actor::actor_ref::RefInner::Local(s) => Arc::downgrade(s),
            crate::actor::actor_ref::RefInner::Target(_) => panic!("a local actor"),
        };
        system.stop(&parent);
        drop(parent);
        tokio::time::timeout(Duration::from_secs(5), async {
            while weak.upgrade().is_some() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the parent's shared part is freed while its child's ref is kept");
        drop(child);
        system.shutdown().await;
    }

    // Every lifecycle wrapper's `post_stop` runs once at the stop: the spawned behavior's own,
    // outermost first, then those of a behavior installed later. Giving a wrapper a second hook of
    // one kind replaces the first.
    #[tokio::test]
    async fn every_wrapper_s_post_stop_runs_once_and_a_second_hook_of_a_kind_replaces_the_first() {
        let system = ActorSystem::new("hooks");
        let (tx, rx) = mpsc::unbounded_channel();
        let (t1, t2, t3) = (tx.clone(), tx.clone(), tx.clone());
        let inner = Behaviors::with_lifecycle(wrapping(tx.clone())).post_stop(move |_| {
            let _ = t1.send("inner");
        });
        let outer = Behaviors::with_lifecycle(inner)
            .post_stop(move |_| {
                let _ = t2.send("replaced");
            })
            .pre_start(|_| {})
            .post_stop(move |_| {
                let _ = t3.send("outer");
            });
        let a = system.spawn(outer, "a").unwrap();
        a.tell(Cmd::Wrap);
        system
            .ask(&a, Cmd::Ping, Duration::from_secs(5))
            .await
            .unwrap();
        system.stop(&a);
        system.shutdown().await;
        let seen = all_sent(tx, rx).await;
        assert_eq!(seen, vec!["outer", "inner", "later"]);
    }

    // Hooks added by a behavior installed after the start belong to that incarnation: a restart
    // goes back to the spawned behavior's own hooks, so only its `post_stop` runs at the stop.
    #[tokio::test]
    async fn a_restart_drops_the_hooks_a_later_behavior_added() {
        let system = ActorSystem::new("hooks");
        let (tx, rx) = mpsc::unbounded_channel();
        let t = tx.clone();
        let behavior = Behaviors::supervise(
            Behaviors::with_lifecycle(wrapping(tx.clone())).post_stop(move |_| {
                let _ = t.send("initial");
            }),
            crate::SupervisorStrategy::new(10, Duration::from_secs(60))
                .decider(|_f| Directive::Restart),
        );
        let a = system.spawn(behavior, "a").unwrap();
        let ping = |a: ActorRef<Cmd>| {
            let system = system.clone();
            async move { system.ask(&a, Cmd::Ping, Duration::from_secs(5)).await }
        };
        a.tell(Cmd::Wrap);
        a.tell(Cmd::Wrap);
        ping(a.clone()).await.unwrap();
        a.tell(Cmd::Fail);
        ping(a.clone()).await.unwrap();
        system.stop(&a);
        system.shutdown().await;
        let seen = all_sent(tx, rx).await;
        assert_eq!(seen, vec!["initial"]);
    }

    /// What the stop-once-drained tests observe, in the order it happened.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Handled(u64),
        PostStop,
        Terminated(ActorPath),
        /// A parent saw its child terminate, with this many children left.
        ParentSaw(ActorPath, usize),
    }

    /// Holds an actor inside a message until the test lets it go, so that the test can queue
    /// messages and requests behind that message.
    struct Gate {
        entered: std::sync::Barrier,
        leave: std::sync::Barrier,
    }

    impl Gate {
        fn new() -> Arc<Self> {
            Arc::new(Gate {
                entered: std::sync::Barrier::new(2),
                leave: std::sync::Barrier::new(2),
            })
        }

        /// In the actor: says it is inside the message, then waits to be let go.
        fn pass(&self) {
            self.entered.wait();
            self.leave.wait();
        }

        /// In the test: returns once the actor is inside the message.
        fn until_entered(&self) {
            self.entered.wait();
        }

        /// In the test: lets the actor go on.
        fn open(&self) {
            self.leave.wait();
        }
    }

    /// An actor that records each message it handles and its `post_stop`. On message 0 it first
    /// passes `gate` (when given).
    fn recording(tx: mpsc::UnboundedSender<Seen>, gate: Option<Arc<Gate>>) -> Behavior<u64> {
        let t = tx.clone();
        Behaviors::with_lifecycle(Behaviors::receive(move |_ctx, n: u64| {
            if let (0, Some(g)) = (n, &gate) {
                g.pass();
            }
            let _ = t.send(Seen::Handled(n));
            Behaviors::same()
        }))
        .post_stop(move |_| {
            let _ = tx.send(Seen::PostStop);
        })
        .into()
    }

    /// Spawns an actor that watches `target` and reports its `Terminated`.
    fn watch_for_termination(
        system: &ActorSystem,
        target: &ActorRef<u64>,
        tx: mpsc::UnboundedSender<Seen>,
    ) {
        let target = target.clone();
        let name = format!("watcher-{}", target.path().uid());
        system
            .spawn(
                Behaviors::setup(move |ctx| {
                    ctx.watch(&target);
                    let tx = tx.clone();
                    Behaviors::receive(move |_ctx, t: crate::Terminated| {
                        let _ = tx.send(Seen::Terminated(t.path));
                        Behaviors::same()
                    })
                }),
                &name,
            )
            .unwrap();
    }

    /// What `rx` receives up to and including the first `Terminated` or `ParentSaw`.
    async fn seen_until_terminated(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
        let mut seen = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(s) = rx.recv().await {
                let last = matches!(s, Seen::Terminated(_) | Seen::ParentSaw(..));
                seen.push(s);
                if last {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no termination; saw {} events", seen.len()));
        seen
    }

    /// Every dead letter published from now on.
    fn dead_letters(system: &ActorSystem) -> mpsc::UnboundedReceiver<crate::DeadLetter> {
        let (tx, rx) = mpsc::unbounded_channel();
        system
            .event_stream()
            .subscribe(move |d: &crate::DeadLetter| {
                let _ = tx.send(d.clone());
            })
            .detach();
        rx
    }

    async fn next_dead_letter(
        rx: &mut mpsc::UnboundedReceiver<crate::DeadLetter>,
    ) -> crate::DeadLetter {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a dead letter")
            .expect("the subscription is open")
    }

    // Asked to stop once drained while 999 messages wait behind the one it is handling, the actor
    // handles all 1000 in order, then runs `post_stop`, then its watcher sees it terminated; none
    // of them is a dead letter. The first dead letter is the message told after it stopped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_actor_stopped_once_drained_handles_every_queued_message_in_order_then_stops() {
        let system = ActorSystem::new("drain");
        let mut dead = dead_letters(&system);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::new();
        let a = system
            .spawn(recording(tx.clone(), Some(gate.clone())), "drained")
            .unwrap();
        watch_for_termination(&system, &a, tx);
        for n in 0..1000u64 {
            a.tell(n);
        }
        gate.until_entered();
        assert!(a.stop_when_drained());
        gate.open();
        let seen = seen_until_terminated(&mut rx).await;
        let mut expected: Vec<Seen> = (0..1000).map(Seen::Handled).collect();
        expected.push(Seen::PostStop);
        expected.push(Seen::Terminated(a.path().clone()));
        assert_eq!(seen, expected);
        a.tell(1000u64);
        let d = next_dead_letter(&mut dead).await;
        assert_eq!(
            (&d.recipient, d.message.as_str(), &d.reason),
            (a.path(), "1000", &DeadLetterReason::RecipientGone)
        );
        system.shutdown().await;
    }

    // An actor with nothing to do when the request comes stops at once, and a message told to it
    // afterwards is a dead letter.
    #[tokio::test]
    async fn an_idle_actor_stops_at_once_and_a_message_told_after_is_a_dead_letter() {
        let system = ActorSystem::new("drain");
        let mut dead = dead_letters(&system);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a = system.spawn(recording(tx.clone(), None), "idle").unwrap();
        watch_for_termination(&system, &a, tx);
        a.tell(7u64);
        assert_eq!(rx.recv().await, Some(Seen::Handled(7)));
        assert!(a.stop_when_drained());
        let seen = seen_until_terminated(&mut rx).await;
        assert_eq!(
            seen,
            vec![Seen::PostStop, Seen::Terminated(a.path().clone())]
        );
        a.tell(8u64);
        let d = next_dead_letter(&mut dead).await;
        assert_eq!((&d.recipient, d.message.as_str()), (a.path(), "8"));
        system.shutdown().await;
    }

    // A periodic timer does not keep an actor asked to stop once drained alive: a tick is a
    // control message, not a queued user message, so the actor stops at its next empty mailbox.
    #[tokio::test]
    async fn a_periodic_timer_does_not_keep_a_drained_actor_alive() {
        let system = ActorSystem::new("drain");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = tx.clone();
        let a = system
            .spawn(
                Behaviors::setup(move |ctx| {
                    ctx.start_timer_at_fixed_rate("tick", 1u64, Duration::from_millis(1));
                    let t = t.clone();
                    Behaviors::receive(move |_ctx, n: u64| {
                        let _ = t.send(Seen::Handled(n));
                        Behaviors::same()
                    })
                }),
                "ticking",
            )
            .unwrap();
        watch_for_termination(&system, &a, tx);
        assert_eq!(rx.recv().await, Some(Seen::Handled(1)));
        assert!(a.stop_when_drained());
        let seen = seen_until_terminated(&mut rx).await;
        assert_eq!(seen.last(), Some(&Seen::Terminated(a.path().clone())));
        assert!(seen[..seen.len() - 1]
            .iter()
            .all(|s| *s == Seen::Handled(1)));
        system.shutdown().await;
    }

    // A child stopped once drained terminates as a child stopped any other way: its parent, which
    // watches it, is told, and no longer counts it among its children.
    #[tokio::test]
    async fn a_parent_sees_its_child_terminate_once_the_child_is_drained() {
        let system = ActorSystem::new("drain");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (child_tx, mut child_rx) = mpsc::unbounded_channel();
        let t = tx.clone();
        system
            .spawn(
                Behaviors::setup(move |ctx| {
                    let child = ctx.spawn(recording(t.clone(), None), "child").unwrap();
                    ctx.watch(&child);
                    let _ = child_tx.send(child);
                    let t = t.clone();
                    Behaviors::receive(move |ctx, gone: crate::Terminated| {
                        let _ = t.send(Seen::ParentSaw(gone.path, ctx.children().len()));
                        Behaviors::same()
                    })
                }),
                "parent",
            )
            .unwrap();
        let child = child_rx.recv().await.expect("the child's ref");
        for n in 0..10u64 {
            child.tell(n);
        }
        assert!(child.stop_when_drained());
        let seen = seen_until_terminated(&mut rx).await;
        let mut expected: Vec<Seen> = (0..10).map(Seen::Handled).collect();
        expected.push(Seen::PostStop);
        expected.push(Seen::ParentSaw(child.path().clone(), 0));
        assert_eq!(seen, expected);
        system.shutdown().await;
    }

    // A stop that comes after the request to stop once drained wins: the actor stops after the
    // message it is handling, and the messages behind it become dead letters.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_stop_after_a_drained_stop_request_wins() {
        let system = ActorSystem::new("drain");
        let mut dead = dead_letters(&system);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::new();
        let a = system
            .spawn(recording(tx.clone(), Some(gate.clone())), "stopped")
            .unwrap();
        watch_for_termination(&system, &a, tx);
        for n in 0..5u64 {
            a.tell(n);
        }
        gate.until_entered();
        assert!(a.stop_when_drained());
        system.stop(&a);
        gate.open();
        let seen = seen_until_terminated(&mut rx).await;
        let expected = vec![
            Seen::Handled(0),
            Seen::PostStop,
            Seen::Terminated(a.path().clone()),
        ];
        assert_eq!(seen, expected);
        for n in 1..5 {
            let d = next_dead_letter(&mut dead).await;
            assert_eq!(d.message, n.to_string());
        }
        system.shutdown().await;
    }

    // A failure handled by a restart keeps the request: the restarted actor goes on with the
    // messages behind the one that failed, and stops once they are handled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_keeps_the_request_to_stop_once_drained() {
        let system = ActorSystem::new("drain");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let gate = Gate::new();
        let (t, g) = (tx.clone(), gate.clone());
        let behavior = Behaviors::supervise(
            Behaviors::receive(move |_ctx, n: u64| {
                match n {
                    0 => g.pass(),
                    5 => panic!("fails on 5"),
                    _ => {}
                }
                let _ = t.send(Seen::Handled(n));
                Behaviors::same()
            }),
            crate::SupervisorStrategy::new(10, Duration::from_secs(60))
                .decider(|_f| Directive::Restart),
        );
        let a = system.spawn(behavior, "restarted").unwrap();
        watch_for_termination(&system, &a, tx);
        for n in 0..10u64 {
            a.tell(n);
        }
        gate.until_entered();
        assert!(a.stop_when_drained());
        gate.open();
        let seen = seen_until_terminated(&mut rx).await;
        let mut expected: Vec<Seen> = (0..10).filter(|n| *n != 5).map(Seen::Handled).collect();
        expected.push(Seen::Terminated(a.path().clone()));
        assert_eq!(seen, expected);
        system.shutdown().await;
    }
}
