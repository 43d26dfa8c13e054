//! `ActorContext<M>`: what a handler can do besides returning its next behavior.
//!
//! The context is owned by the actor's task and handed to handlers as `&mut`. It spawns and stops
//! children, watches other actors (L8), runs keyed timers (L11), pipes futures back to the actor, and
//! asks other actors without blocking the mailbox.
//!
//! Everything an idle actor rarely uses (children, watches, timers, its tracing span) lives in one
//! lazily boxed `Ext`, so an actor that never uses them costs only a pointer here.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::actor::actor_ref::ActorRef;
use crate::actor::ask::AskError;
use crate::actor::behavior::Behavior;
use crate::actor::cell::{start_actor, AnyCell, Shared, SysMsg, Watcher};
use crate::actor::message::Message;
use crate::actor::path::{next_uid, validate_name, ActorPath};
use crate::actor::system::{ActorSystem, SpawnError, SpawnOptions};

/// Delivered to a watcher when an actor it watches has terminated (L8).
///
/// # Examples
///
/// ```
/// use casty::{Message, Terminated};
///
/// #[derive(Debug)]
/// enum ManagerMsg {
///     Hire(String),
///     Terminated(Terminated),
/// }
/// impl Message for ManagerMsg {}
/// impl From<Terminated> for ManagerMsg {
///     fn from(t: Terminated) -> Self {
///         ManagerMsg::Terminated(t)
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Terminated {
    /// The actor that terminated.
    pub path: ActorPath,
}

impl Terminated {
    /// The full address of the actor that terminated.
    pub fn address(&self) -> String {
        self.path.address()
    }
}

impl Message for Terminated {}

enum WatchEntry<M> {
    Terminated(fn(Terminated) -> M),
    Custom(M),
}

enum TimerMsg<M> {
    Once(M),
    Periodic(M, fn(&M) -> M, Arc<AtomicBool>),
}

struct TimerEntry<M> {
    gen: u64,
    msg: TimerMsg<M>,
    abort: AbortHandle,
}

/// Tells a watched actor that the watcher (by uid) no longer watches it.
type Unwatch = Box<dyn Fn(u64) + Send>;

struct Child {
    cell: Arc<dyn AnyCell>,
}

struct Ext<M> {
    children: HashMap<Box<str>, Child>,
    watching: HashMap<u64, (WatchEntry<M>, Unwatch)>,
    /// Who watches this actor, by watcher uid: one registration each, added and removed in O(1)
    /// however many there are (remote watches can number in the hundreds of thousands).
    watchers: HashMap<u64, Arc<dyn Watcher>>,
    timers: HashMap<Arc<str>, TimerEntry<M>>,
    span: Option<tracing::Span>,
    anon: u64,
    timer_gen: u64,
}

impl<M> Default for Ext<M> {
    fn default() -> Self {
        Ext {
            children: HashMap::new(),
            watching: HashMap::new(),
            watchers: HashMap::new(),
            timers: HashMap::new(),
            span: None,
            anon: 0,
            timer_gen: 0,
        }
    }
}

/// The context of a running actor, handed to its handlers.
///
/// # Examples
///
/// ```
/// use casty::{Behavior, Behaviors};
///
/// fn parent() -> Behavior<String> {
///     Behaviors::setup(|ctx| {
///         let child = ctx.spawn(Behaviors::ignore::<String>(), "child").unwrap();
///         assert_eq!(child.path().to_string(), format!("{}/child", ctx.path()));
///         Behaviors::receive(move |_ctx, msg: String| {
///             child.tell(msg);
///             Behaviors::same()
///         })
///     })
/// }
/// # let _ = parent();
/// ```
pub struct ActorContext<M> {
    pub(crate) shared: Arc<Shared<M>>,
    self_ref: ActorRef<M>,
    ext: Option<Box<Ext<M>>>,
}

impl<M> fmt::Debug for ActorContext<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorContext")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl<M: Message> ActorContext<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Self {
        let self_ref = ActorRef::local(shared.clone());
        ActorContext {
            shared,
            self_ref,
            ext: None,
        }
    }

    fn ext(&mut self) -> &mut Ext<M> {
        self.ext.get_or_insert_with(Default::default)
    }

    /// This actor's own ref, e.g. to pass as a `reply_to`.
    pub fn self_ref(&self) -> &ActorRef<M> {
        &self.self_ref
    }

    /// This actor's path.
    pub fn path(&self) -> &ActorPath {
        &self.shared.path
    }

    /// The actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.shared.system
    }

    /// A tracing span carrying the actor's path, for structured logs:
    /// `ctx.log().in_scope(|| tracing::info!("started"))`.
    pub fn log(&mut self) -> &tracing::Span {
        let path = self.shared.path.clone();
        self.ext()
            .span
            .get_or_insert_with(|| tracing::info_span!("actor", path = %path))
    }

    /// Spawns a child with the default options.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the name is invalid or already taken by a live child.
    pub fn spawn<C: Message>(
        &mut self,
        behavior: impl Into<Behavior<C>>,
        name: &str,
    ) -> Result<ActorRef<C>, SpawnError> {
        self.spawn_with(behavior, name, SpawnOptions::default())
    }

    /// Spawns a child with explicit options (mailbox).
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the name is invalid or already taken by a live child.
    pub fn spawn_with<C: Message>(
        &mut self,
        behavior: impl Into<Behavior<C>>,
        name: &str,
        options: SpawnOptions,
    ) -> Result<ActorRef<C>, SpawnError> {
        validate_name(name, self.shared.path.name().starts_with('_')).map_err(|reason| {
            SpawnError::InvalidName {
                name: name.to_string(),
                reason,
            }
        })?;
        self.spawn_named(behavior.into(), name, options)
    }

    /// Spawns a child under a generated name (`$1`, `$2`, …).
    pub fn spawn_anonymous<C: Message>(&mut self, behavior: impl Into<Behavior<C>>) -> ActorRef<C> {
        let ext = self.ext();
        ext.anon += 1;
        let name = format!("${}", ext.anon);
        self.spawn_named(behavior.into(), &name, SpawnOptions::default())
            .expect("generated child names are unique")
    }

    fn spawn_named<C: Message>(
        &mut self,
        behavior: Behavior<C>,
        name: &str,
        options: SpawnOptions,
    ) -> Result<ActorRef<C>, SpawnError> {
        if self
            .ext
            .as_ref()
            .is_some_and(|e| e.children.contains_key(name))
        {
            return Err(SpawnError::DuplicateName(format!(
                "{}/{name}",
                self.path_prefix()
            )));
        }
        let system = self.shared.system.inner().clone();
        let (behavior, mailbox) = system.configure(name, behavior, options.mailbox);
        let path = self.shared.path.child(name, next_uid());
        let parent: Arc<dyn AnyCell> = self.shared.clone();
        let parent = Arc::downgrade(&parent);
        let shared = Arc::new(Shared::<C>::new(
            path,
            mailbox,
            system.clone(),
            Some(parent),
        ));
        let behavior = behavior.prepare(&shared);
        system.register(shared.clone())?;
        self.ext().children.insert(
            name.into(),
            Child {
                cell: shared.clone(),
            },
        );
        Ok(start_actor(shared, behavior))
    }

    fn path_prefix(&self) -> &str {
        let p = self.shared.path.as_str();
        if p == "/" {
            ""
        } else {
            p
        }
    }

    /// Stops a child of this actor. Returns `false` if `child` is not a live child.
    pub fn stop<C: Send + 'static>(&mut self, child: &ActorRef<C>) -> bool {
        self.stop_child_path(child.path())
    }

    pub(crate) fn stop_child_path(&mut self, path: &ActorPath) -> bool {
        let Some(ext) = self.ext.as_ref() else {
            return false;
        };
        match ext.children.get(path.name()) {
            Some(c) if c.cell.path() == path => {
                c.cell.send_sys(SysMsg::Stop);
                true
            }
            _ => false,
        }
    }

    /// The paths of this actor's live children, in no particular order.
    pub fn children(&self) -> Vec<ActorPath> {
        self.ext
            .as_ref()
            .map(|e| e.children.values().map(|c| c.cell.path().clone()).collect())
            .unwrap_or_default()
    }

    /// A typed ref to the child called `name`, or `None` if there is none or its type differs.
    pub fn child<C: Send + 'static>(&self, name: &str) -> Option<ActorRef<C>> {
        let cell = self.ext.as_ref()?.children.get(name)?.cell.clone();
        cell.into_any()
            .downcast::<Shared<C>>()
            .ok()
            .map(ActorRef::local)
    }

    /// Watches an actor: when it terminates, this actor receives `Terminated` (converted into `M`)
    /// exactly once, even if it was already dead (L8).
    pub fn watch<T: Send + 'static>(&mut self, target: &ActorRef<T>)
    where
        M: From<Terminated>,
    {
        self.watch_entry(
            target,
            WatchEntry::Terminated(<M as From<Terminated>>::from),
        );
    }

    /// Watches an actor and delivers `msg` instead of `Terminated` when it terminates.
    pub fn watch_with<T: Send + 'static>(&mut self, target: &ActorRef<T>, msg: M) {
        self.watch_entry(target, WatchEntry::Custom(msg));
    }

    fn watch_entry<T: Send + 'static>(&mut self, target: &ActorRef<T>, entry: WatchEntry<M>) {
        let uid = target.path().uid();
        let t = target.clone();
        let unwatch: Unwatch = Box::new(move |me| t.unwatch_by(me));
        let fresh = self.ext().watching.insert(uid, (entry, unwatch)).is_none();
        if fresh {
            let me: Arc<dyn Watcher> = self.shared.clone();
            target.watch_by(me);
        }
    }

    /// Stops watching an actor. A `Terminated` already queued for it is not delivered (L8).
    pub fn unwatch<T: Send + 'static>(&mut self, target: &ActorRef<T>) {
        let uid = target.path().uid();
        if let Some(ext) = self.ext.as_mut() {
            if ext.watching.remove(&uid).is_some() {
                target.unwatch_by(self.shared.path.uid());
            }
        }
    }

    /// Sends `msg` to this actor once, after `delay`. Replaces any timer under the same key, and a
    /// message from the replaced timer is never delivered, even if already queued (L11).
    pub fn start_single_timer(&mut self, key: impl Into<String>, msg: M, delay: Duration) {
        let key: Arc<str> = key.into().into();
        let gen = self.next_timer_gen();
        let weak = Arc::downgrade(&self.shared);
        let k = key.clone();
        let abort = self.shared.system.spawn_task(async move {
            tokio::time::sleep(delay).await;
            if let Some(s) = weak.upgrade() {
                s.send_sys(SysMsg::Timer { key: k, gen });
            }
        });
        self.insert_timer(
            key,
            TimerEntry {
                gen,
                msg: TimerMsg::Once(msg),
                abort,
            },
        );
    }

    /// Sends a copy of `msg` to this actor every `interval`. Replaces any timer under the same
    /// key. Missed ticks are skipped, never caught up, and at most one tick is pending at a time.
    pub fn start_timer_at_fixed_rate(&mut self, key: impl Into<String>, msg: M, interval: Duration)
    where
        M: Clone,
    {
        let key: Arc<str> = key.into().into();
        let gen = self.next_timer_gen();
        let weak: Weak<Shared<M>> = Arc::downgrade(&self.shared);
        let pending = Arc::new(AtomicBool::new(false));
        let p = pending.clone();
        let k = key.clone();
        let interval = interval.max(Duration::from_millis(1));
        let abort = self.shared.system.spawn_task(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(s) = weak.upgrade() else { return };
                if !p.swap(true, Ordering::AcqRel) {
                    s.send_sys(SysMsg::Timer {
                        key: k.clone(),
                        gen,
                    });
                }
            }
        });
        self.insert_timer(
            key,
            TimerEntry {
                gen,
                msg: TimerMsg::Periodic(msg, <M as Clone>::clone, pending),
                abort,
            },
        );
    }

    /// Cancels the timer under `key`, if any. Its message is not delivered even if already queued.
    pub fn cancel_timer(&mut self, key: &str) {
        if let Some(ext) = self.ext.as_mut() {
            if let Some(t) = ext.timers.remove(key) {
                t.abort.abort();
            }
        }
    }

    /// Whether a timer is active under `key`.
    pub fn is_timer_active(&self, key: &str) -> bool {
        self.ext
            .as_ref()
            .is_some_and(|e| e.timers.contains_key(key))
    }

    fn next_timer_gen(&mut self) -> u64 {
        let ext = self.ext();
        ext.timer_gen += 1;
        ext.timer_gen
    }

    fn insert_timer(&mut self, key: Arc<str>, entry: TimerEntry<M>) {
        if let Some(old) = self.ext().timers.insert(key, entry) {
            old.abort.abort();
        }
    }

    /// Runs a future and sends its mapped output to this actor as a message.
    pub fn pipe_to_self<F, T>(&self, fut: F, map: impl FnOnce(T) -> M + Send + 'static)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.self_ref.clone();
        self.shared.system.spawn_task(async move {
            let v = fut.await;
            me.tell(map(v));
        });
    }

    /// Asks another actor without blocking this one: the reply (or the error) arrives later as a
    /// message built by `map`.
    pub fn ask<T, R, Q>(
        &self,
        target: &ActorRef<T>,
        make: impl FnOnce(ActorRef<R>) -> Q + Send + 'static,
        timeout: Duration,
        map: impl FnOnce(Result<R, AskError>) -> M + Send + 'static,
    ) where
        T: Send + 'static,
        R: Send + 'static,
        Q: Into<T>,
    {
        let system = self.shared.system.clone();
        let target = target.clone();
        self.pipe_to_self(async move { system.ask(&target, make, timeout).await }, map);
    }
}

/// Bookkeeping used by the cell.
impl<M: Message> ActorContext<M> {
    pub(crate) fn parent(&self) -> Option<Arc<dyn AnyCell>> {
        self.shared.parent.as_ref()?.upgrade()
    }

    pub(crate) fn children_cells(&self) -> Vec<Arc<dyn AnyCell>> {
        self.ext
            .as_ref()
            .map(|e| e.children.values().map(|c| c.cell.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn has_children(&self) -> bool {
        self.ext.as_ref().is_some_and(|e| !e.children.is_empty())
    }

    pub(crate) fn remove_child(&mut self, path: &ActorPath) {
        if let Some(ext) = self.ext.as_mut() {
            let name = path.name();
            if ext
                .children
                .get(name)
                .is_some_and(|c| c.cell.path() == path)
            {
                ext.children.remove(name);
            }
        }
    }

    pub(crate) fn add_watcher(&mut self, w: Arc<dyn Watcher>) {
        // A watcher already registered keeps its first registration.
        self.ext().watchers.entry(w.watcher_uid()).or_insert(w);
    }

    pub(crate) fn remove_watcher(&mut self, uid: u64) {
        if let Some(ext) = self.ext.as_mut() {
            ext.watchers.remove(&uid);
        }
    }

    pub(crate) fn take_watchers(&mut self) -> Vec<Arc<dyn Watcher>> {
        self.ext
            .as_mut()
            .map(|e| std::mem::take(&mut e.watchers).into_values().collect())
            .unwrap_or_default()
    }

    pub(crate) fn take_watch_message(&mut self, path: &ActorPath) -> Option<M> {
        let (entry, _) = self.ext.as_mut()?.watching.remove(&path.uid())?;
        Some(match entry {
            WatchEntry::Terminated(f) => f(Terminated { path: path.clone() }),
            WatchEntry::Custom(m) => m,
        })
    }

    pub(crate) fn take_timer_message(&mut self, key: &str, gen: u64) -> Option<M> {
        let ext = self.ext.as_mut()?;
        let entry = ext.timers.get(key)?;
        if entry.gen != gen {
            return None;
        }
        match &entry.msg {
            TimerMsg::Periodic(m, clone, pending) => {
                pending.store(false, Ordering::Release);
                Some(clone(m))
            }
            TimerMsg::Once(_) => match ext.timers.remove(key)?.msg {
                TimerMsg::Once(m) => Some(m),
                TimerMsg::Periodic(..) => None,
            },
        }
    }

    pub(crate) fn cancel_all_timers(&mut self) {
        if let Some(ext) = self.ext.as_mut() {
            for (_, t) in ext.timers.drain() {
                t.abort.abort();
            }
        }
    }

    /// Stops watching everything this actor watches.
    pub(crate) fn unwatch_all(&mut self) {
        let me = self.shared.path.uid();
        if let Some(ext) = self.ext.as_mut() {
            for (_, (_, unwatch)) in ext.watching.drain() {
                unwatch(me);
            }
        }
    }

    /// Clears what belongs to one incarnation: timers and watches (L5, L11).
    pub(crate) fn reset_for_restart(&mut self) {
        self.cancel_all_timers();
        self.unwatch_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::behavior::Behaviors;
    use std::sync::Mutex;

    /// A watcher with its own uid that records every death notice it gets, and counts how often
    /// anyone asked it for its uid: a registry that scans the other watchers asks every one of
    /// them at each registration.
    struct Recorder {
        uid: u64,
        deaths: Arc<Mutex<HashMap<u64, u32>>>,
        asked: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Watcher for Recorder {
        fn watcher_uid(&self) -> u64 {
            self.asked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.uid
        }

        fn notify_death(&self, _path: ActorPath, _failure: Option<crate::Failure>) {
            *self.deaths.lock().unwrap().entry(self.uid).or_default() += 1;
        }
    }

    #[derive(Debug)]
    struct Ping(ActorRef<u64>);
    impl Message for Ping {}

    // Many watchers on one actor (what many remote watches become): registering one looks at it
    // alone, not at the others (counted, not timed), and every watcher still left when the actor
    // stops is told exactly once, however often it registered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_thousand_watchers_on_one_actor_are_cheap_and_told_once() {
        const N: u64 = 100_000;
        let system = ActorSystem::new("watchers");
        let target = system
            .spawn(
                Behaviors::receive(|_ctx, Ping(reply_to): Ping| {
                    reply_to.tell(7u64);
                    Behaviors::same()
                }),
                "target",
            )
            .unwrap();
        let cell = system.inner().lookup_cell("/target").unwrap();
        let deaths = Arc::new(Mutex::new(HashMap::new()));
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let recorder = |uid| {
            Arc::new(Recorder {
                uid,
                deaths: deaths.clone(),
                asked: asked.clone(),
            })
        };
        for uid in 1..=N {
            cell.send_sys(SysMsg::Watch(recorder(uid)));
        }
        // Again for every tenth: still one registration each.
        for uid in (1..=N).step_by(10) {
            cell.send_sys(SysMsg::Watch(recorder(uid)));
        }
        // Every other watcher leaves.
        for uid in (2..=N).step_by(2) {
            cell.send_sys(SysMsg::Unwatch(uid));
        }
        // System messages come first: once this is answered, all of the above was handled.
        let answer = system
            .ask(&target, Ping, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(answer, 7);
        // One look per registration (110,000), where a scan would make billions.
        let registrations = N as usize + (N as usize).div_ceil(10);
        let looks = asked.load(std::sync::atomic::Ordering::Relaxed);
        assert!(looks <= registrations, "{looks} uid lookups");

        system.stop(&target);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while deaths.lock().unwrap().len() < (N / 2) as usize {
            assert!(
                std::time::Instant::now() < deadline,
                "not everyone was told"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deaths = deaths.lock().unwrap().clone();
        assert_eq!(deaths.len(), (N / 2) as usize);
        assert!(deaths.iter().all(|(uid, n)| uid % 2 == 1 && *n == 1));
        system.shutdown().await;
    }
}
