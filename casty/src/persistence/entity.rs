//! `Behaviors::event_sourced`: an entity whose state is the fold of its persisted events.
//!
//! The entity is one handler in the actor core. Its asynchronous start (`Handler::start`) is the
//! recovery: newest snapshot, then the newer events in pages (P5), checking each sequence number
//! and manifest (the checks are in `recovery`). Each command runs `on_command`; a `persisted`
//! effect is written to the journal with the entity's sequence number as the expected one (P1),
//! and only after the write succeeded are the events applied and the `then` callbacks run (P2);
//! when to snapshot and which old snapshots to delete is decided in `snapshot`. While recovery or
//! a write is in flight the handler has not returned, so later commands wait in the mailbox in
//! arrival order: the mailbox is the stash (P3), bounded by the mailbox's capacity, and overflow
//! becomes dead letters. A failed write stops the entity, or restarts it under a supervisor, which
//! recovers from the journal; it never resumes with state the journal may not match (P4).
//! Failures are published as [`PersistenceFailed`], and each finished recovery as
//! [`RecoveryCompleted`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::actor::behavior::{
    Behavior, Behaviors, BoxFuture, Handler, HandlerResult, IntoBehavior, Kind, Outcome,
};
use crate::actor::context::ActorContext;
use crate::actor::failure::Failure;
use crate::actor::message::Message;
use crate::actor::path::ActorPath;
use crate::persistence::codec;
use crate::persistence::effect::{take_effect, EventSourcedCommand, PersistEffect};
use crate::persistence::journal::{EventJournal, JournalError, StoredEvent, StoredSnapshot};
use crate::persistence::recovery;
use crate::persistence::snapshot::{KnownSnapshots, SnapshotPolicy};

/// Events replayed per journal read during recovery.
const DEFAULT_PAGE: usize = 1024;

/// Which step of an entity's life a journal failure hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistencePhase {
    /// Loading the snapshot or replaying events.
    Recovery,
    /// Writing events.
    Write,
}

/// Published on the event stream when an event-sourced entity's recovery or write fails. The
/// entity then stops (or restarts, under a supervisor).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, PersistenceFailed};
/// let system = ActorSystem::new("demo");
/// let _sub = system.event_stream().subscribe(|e: &PersistenceFailed| {
///     eprintln!("{} ({:?}): {}", e.persistence_id, e.phase, e.error);
/// });
/// # system.shutdown().await; }
/// ```
#[derive(Debug, Clone)]
pub struct PersistenceFailed {
    /// The entity's actor.
    pub path: ActorPath,
    /// Its persistence id.
    pub persistence_id: String,
    /// Recovery or write.
    pub phase: PersistencePhase,
    /// What went wrong.
    pub error: JournalError,
}

impl Message for PersistenceFailed {}

/// Published on the event stream when an event-sourced entity has recovered and is about to take
/// its first command.
///
/// # Examples
///
/// ```
/// use casty::RecoveryCompleted;
/// fn log(e: &RecoveryCompleted) {
///     println!("{} at seq {} ({} events replayed)", e.persistence_id, e.seq, e.replayed);
/// }
/// # let _ = log;
/// ```
#[derive(Debug, Clone)]
pub struct RecoveryCompleted {
    /// The entity's actor.
    pub path: ActorPath,
    /// Its persistence id.
    pub persistence_id: String,
    /// The highest sequence number recovered.
    pub seq: u64,
    /// The sequence number of the snapshot recovery started from, if any.
    pub snapshot_seq: Option<u64>,
    /// How many events were replayed after the snapshot.
    pub replayed: u64,
}

impl Message for RecoveryCompleted {}

/// Everything that defines one entity; shared by all its incarnations.
struct Spec<C: EventSourcedCommand, FE, FC> {
    persistence_id: Arc<str>,
    journal: Arc<dyn EventJournal>,
    initial: C::State,
    on_event: FE,
    on_command: FC,
    policy: SnapshotPolicy<C::State, C::Event>,
    page: usize,
}

/// An event-sourced behavior being configured; converts into a `Behavior<C>` wherever one is
/// expected (spawn, `Behaviors::supervise`). Built by [`Behaviors::event_sourced`].
pub struct EventSourced<C: EventSourcedCommand, FE, FC, R> {
    spec: Spec<C, FE, FC>,
    _r: PhantomData<fn() -> R>,
}

impl<C: EventSourcedCommand, FE, FC, R> EventSourced<C, FE, FC, R> {
    /// Sets when snapshots are taken (default: never).
    pub fn snapshot_policy(mut self, policy: SnapshotPolicy<C::State, C::Event>) -> Self {
        self.spec.policy = policy;
        self
    }

    /// Sets how many events recovery reads per journal call (default 1024).
    pub fn replay_page_size(mut self, events: usize) -> Self {
        self.spec.page = events.max(1);
        self
    }
}

impl<C: EventSourcedCommand, FE, FC, R> fmt::Debug for EventSourced<C, FE, FC, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSourced")
            .field("persistence_id", &self.spec.persistence_id)
            .field("snapshot_policy", &self.spec.policy)
            .finish()
    }
}

impl Behaviors {
    /// An event-sourced entity (see the guide's "Event sourcing" chapter).
    ///
    /// - `entity_id` is the persistence id: the key of the entity's log in `journal`.
    /// - `on_event(&state, &event) -> state` is pure and synchronous; it runs for every event
    ///   written and for every event replayed.
    /// - `on_command(ctx, &state, command)` is asynchronous and returns `Behaviors::persisted(..)`,
    ///   `same`, `unhandled` or `stopped` (or a `Result` of one).
    ///
    /// The returned builder takes a [`SnapshotPolicy`] and converts into a `Behavior<C>`. Combine
    /// it with `Behaviors::supervise` to restart, and so recover, after a failure.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::{ActorRef, ActorSystem, Behaviors, EventSourcedCommand, InMemoryJournal, Message};
    /// use serde::{Deserialize, Serialize};
    /// use std::{sync::Arc, time::Duration};
    ///
    /// #[derive(Debug)]
    /// enum Cmd { Add(u64), Get(ActorRef<u64>) }
    /// impl Message for Cmd {}
    /// #[derive(Debug, Serialize, Deserialize)]
    /// struct Added(u64);
    /// impl Message for Added {}
    /// impl EventSourcedCommand for Cmd { type Event = Added; type State = u64; }
    ///
    /// let journal = Arc::new(InMemoryJournal::new());
    /// let counter = |journal| {
    ///     Behaviors::event_sourced(
    ///         "counter-1",
    ///         journal,
    ///         0u64,
    ///         |total: &u64, e: &Added| total + e.0,
    ///         |_ctx, total, cmd: Cmd| {
    ///             let total = *total;
    ///             Box::pin(async move {
    ///                 match cmd {
    ///                     Cmd::Add(n) => Behaviors::persisted([Added(n)]),
    ///                     Cmd::Get(reply_to) => {
    ///                         reply_to.tell(total);
    ///                         Behaviors::same()
    ///                     }
    ///                 }
    ///             })
    ///         },
    ///     )
    /// };
    /// let system = ActorSystem::new("demo");
    /// let c = system.spawn(counter(journal.clone()), "counter").unwrap();
    /// c.tell(Cmd::Add(2));
    /// c.tell(Cmd::Add(3));
    /// let t = Duration::from_secs(2);
    /// assert_eq!(system.ask(&c, Cmd::Get, t).await.unwrap(), 5);
    /// system.stop(&c);
    /// # tokio::time::sleep(Duration::from_millis(50)).await;
    /// // A new incarnation recovers 5 from the journal.
    /// let c = system.spawn(counter(journal), "counter-again").unwrap();
    /// assert_eq!(system.ask(&c, Cmd::Get, t).await.unwrap(), 5);
    /// # system.shutdown().await; }
    /// ```
    pub fn event_sourced<C, FE, FC, R>(
        entity_id: impl Into<String>,
        journal: Arc<dyn EventJournal>,
        initial_state: C::State,
        on_event: FE,
        on_command: FC,
    ) -> EventSourced<C, FE, FC, R>
    where
        C: EventSourcedCommand,
        FE: Fn(&C::State, &C::Event) -> C::State + Send + Sync + 'static,
        FC: for<'a> Fn(&'a mut ActorContext<C>, &'a C::State, C) -> BoxFuture<'a, R>
            + Send
            + Sync
            + 'static,
        R: IntoBehavior<C> + 'static,
    {
        EventSourced {
            spec: Spec {
                persistence_id: Arc::from(entity_id.into()),
                journal,
                initial: initial_state,
                on_event,
                on_command,
                policy: SnapshotPolicy::never(),
                page: DEFAULT_PAGE,
            },
            _r: PhantomData,
        }
    }
}

impl<C, FE, FC, R> From<EventSourced<C, FE, FC, R>> for Behavior<C>
where
    C: EventSourcedCommand,
    FE: Fn(&C::State, &C::Event) -> C::State + Send + Sync + 'static,
    FC: for<'a> Fn(&'a mut ActorContext<C>, &'a C::State, C) -> BoxFuture<'a, R>
        + Send
        + Sync
        + 'static,
    R: IntoBehavior<C> + 'static,
{
    fn from(es: EventSourced<C, FE, FC, R>) -> Self {
        Behavior::handler(EntityHandler::<C, FE, FC, R>::new(Arc::new(es.spec)))
    }
}

/// One incarnation of an entity: its state and where its log ends.
struct EntityHandler<C: EventSourcedCommand, FE, FC, R> {
    spec: Arc<Spec<C, FE, FC>>,
    state: C::State,
    seq: u64,
    /// Snapshots this entity knows of, oldest first (for `keep_last`).
    snapshots: KnownSnapshots,
    /// Set while the state may not match the journal (a failed write, a panic while applying):
    /// such an incarnation must not be resumed.
    poisoned: bool,
    _r: PhantomData<fn() -> R>,
}

impl<C: EventSourcedCommand, FE, FC, R> EntityHandler<C, FE, FC, R> {
    fn new(spec: Arc<Spec<C, FE, FC>>) -> Self {
        EntityHandler {
            state: spec.initial.clone(),
            spec,
            seq: 0,
            snapshots: KnownSnapshots::default(),
            poisoned: false,
            _r: PhantomData,
        }
    }
}

impl<C, FE, FC, R> EntityHandler<C, FE, FC, R>
where
    C: EventSourcedCommand,
    FE: Fn(&C::State, &C::Event) -> C::State + Send + Sync + 'static,
    FC: for<'a> Fn(&'a mut ActorContext<C>, &'a C::State, C) -> BoxFuture<'a, R>
        + Send
        + Sync
        + 'static,
    R: IntoBehavior<C> + 'static,
{
    fn fail(&self, ctx: &ActorContext<C>, phase: PersistencePhase, error: JournalError) -> Failure {
        tracing::error!(actor = %ctx.path(), persistence_id = %self.spec.persistence_id, ?phase, %error, "persistence failed");
        ctx.system().event_stream().publish(PersistenceFailed {
            path: ctx.path().clone(),
            persistence_id: self.spec.persistence_id.to_string(),
            phase,
            error: error.clone(),
        });
        Failure::from_error(error)
    }

    /// Recovery: the newest snapshot, then the newer events, page by page (P5).
    async fn recover(&mut self, ctx: &mut ActorContext<C>) -> Result<(), Failure> {
        let spec = self.spec.clone();
        let id = &*spec.persistence_id;
        self.poisoned = true;
        let (snapshot_seq, replayed) = match self.replay(id).await {
            Ok(r) => r,
            Err(e) => return Err(self.fail(ctx, PersistencePhase::Recovery, e)),
        };
        self.poisoned = false;
        tracing::debug!(actor = %ctx.path(), persistence_id = id, seq = self.seq, replayed, "recovered");
        ctx.system().event_stream().publish(RecoveryCompleted {
            path: ctx.path().clone(),
            persistence_id: id.to_string(),
            seq: self.seq,
            snapshot_seq,
            replayed,
        });
        Ok(())
    }

    async fn replay(&mut self, id: &str) -> Result<(Option<u64>, u64), JournalError> {
        let spec = &*self.spec;
        self.state = spec.initial.clone();
        self.seq = 0;
        self.snapshots.clear();
        let mut snapshot_seq = None;
        if let Some(s) = spec.journal.load_snapshot(id).await? {
            recovery::check_snapshot(id, &s, &C::state_manifest())?;
            self.state = codec::decode(&s.payload, id, "snapshot", s.seq)?;
            self.seq = s.seq;
            self.snapshots.recovered(s.seq);
            snapshot_seq = Some(s.seq);
        }
        let manifest = <C::Event as Message>::manifest();
        let mut replayed = 0u64;
        loop {
            let page = spec.journal.load(id, self.seq + 1, spec.page).await?;
            let n = page.len();
            for stored in page {
                recovery::check_event(id, self.seq, &stored, &manifest)?;
                let event: C::Event = codec::decode(&stored.payload, id, "event", stored.seq)?;
                self.state = (spec.on_event)(&self.state, &event);
                self.seq = stored.seq;
                replayed += 1;
            }
            if recovery::is_last_page(n, spec.page) {
                return Ok((snapshot_seq, replayed));
            }
        }
    }

    async fn handle(&mut self, ctx: &mut ActorContext<C>, cmd: C) -> HandlerResult<C> {
        let spec = self.spec.clone();
        let b = (spec.on_command)(ctx, &self.state, cmd)
            .await
            .into_behavior()?;
        let effect = match take_effect(b) {
            Ok(e) => e,
            Err(directive) => return Ok(directive),
        };
        self.apply_effect(ctx, effect).await
    }

    async fn apply_effect(
        &mut self,
        ctx: &mut ActorContext<C>,
        effect: PersistEffect<C>,
    ) -> HandlerResult<C> {
        let PersistEffect {
            events,
            thens,
            next,
        } = effect;
        if let Kind::Effect(_) = next.kind {
            return Err(Failure::supervisor(
                "a persistence effect was cloned or mixed up; return `Behaviors::persisted(..)` \
                 from the command handler directly"
                    .into(),
            ));
        }
        if !events.is_empty() {
            self.write(ctx, events).await?;
        }
        let mut next = next;
        for then in thens {
            let b = then(ctx, &self.state);
            if !b.is_same() {
                next = b;
            }
        }
        Ok(next)
    }

    /// Writes a batch, then applies it and snapshots if the policy says so.
    async fn write(
        &mut self,
        ctx: &mut ActorContext<C>,
        events: Vec<C::Event>,
    ) -> Result<(), Failure> {
        let spec = self.spec.clone();
        let id = &*spec.persistence_id;
        let manifest = <C::Event as Message>::manifest();
        let mut stored = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let payload = codec::encode(e, id, "event").map_err(Failure::from_error)?;
            stored.push(StoredEvent {
                seq: self.seq + 1 + i as u64,
                manifest: manifest.clone(),
                payload,
            });
        }
        if let Err(e) = spec.journal.persist(id, stored, self.seq).await {
            // The journal may or may not hold the batch (a lost connection): never resume.
            self.poisoned = true;
            return Err(self.fail(ctx, PersistencePhase::Write, e));
        }
        self.poisoned = true; // until every event is applied (on_event may panic)
        let snapshot_at =
            spec.policy
                .apply_batch(&mut self.state, &mut self.seq, &events, &spec.on_event);
        self.poisoned = false;
        if snapshot_at.is_some() {
            self.snapshot(ctx).await;
        }
        Ok(())
    }

    /// Saves a snapshot at the current seq. A failure is logged: the events are safe, so the
    /// entity goes on and recovery simply replays more.
    async fn snapshot(&mut self, ctx: &mut ActorContext<C>) {
        let spec = self.spec.clone();
        let id = &*spec.persistence_id;
        let saved = async {
            let payload = codec::encode(&self.state, id, "snapshot")?;
            let snap = StoredSnapshot::new(self.seq, C::state_manifest(), payload);
            spec.journal.save_snapshot(id, snap).await
        };
        if let Err(error) = saved.await {
            tracing::warn!(actor = %ctx.path(), persistence_id = id, %error, "snapshot failed");
            return;
        }
        if let Some(oldest_kept) = self.snapshots.saved(self.seq, spec.policy.kept()) {
            if let Err(error) = spec.journal.delete_snapshots_before(id, oldest_kept).await {
                tracing::warn!(actor = %ctx.path(), persistence_id = id, %error, "deleting old snapshots failed");
            }
        }
    }
}

impl<C, FE, FC, R> Handler<C> for EntityHandler<C, FE, FC, R>
where
    C: EventSourcedCommand,
    FE: Fn(&C::State, &C::Event) -> C::State + Send + Sync + 'static,
    FC: for<'a> Fn(&'a mut ActorContext<C>, &'a C::State, C) -> BoxFuture<'a, R>
        + Send
        + Sync
        + 'static,
    R: IntoBehavior<C> + 'static,
{
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<C>, msg: C) -> Outcome<'a, C> {
        Outcome::Pending(Box::pin(self.handle(ctx, msg)))
    }

    fn is_poisoned(&mut self) -> bool {
        self.poisoned
    }

    fn has_start(&self) -> bool {
        true
    }

    fn start<'a>(&'a mut self, ctx: &'a mut ActorContext<C>) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(self.recover(ctx))
    }

    fn clone_box(&self) -> Box<dyn Handler<C>> {
        Box::new(EntityHandler::<C, FE, FC, R>::new(self.spec.clone()))
    }
}
