//! Persistence effects: what an event-sourced command handler asks for.
//!
//! `Behaviors::persisted(events)` is a `Behavior<C>`, like `Behaviors::same()`, so the arms of a
//! command handler's `match` have one type, as in Casty (Python). Inside it is an opaque effect
//! that only the event-sourced handler interprets: the events to write, then the callbacks to run
//! once the write succeeded (P2), then the directive to follow. The command type names its event
//! and state types through [`EventSourcedCommand`], so persisting an event of the wrong type, or a
//! callback that expects the wrong state, is a compile error.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::actor::actor_ref::ActorRef;
use crate::actor::behavior::{Behavior, Behaviors, EffectSlot, Kind};
use crate::actor::context::ActorContext;
use crate::actor::message::Message;

/// The command protocol of an event-sourced entity: names the events its handler persists and the
/// state those events fold into. `#[event_sourced]` implements it; by hand it is three lines.
///
/// # Examples
///
/// ```
/// use casty::{EventSourcedCommand, Message};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug)]
/// enum Cmd { Add(u64) }
/// impl Message for Cmd {}
///
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Added(u64);
/// impl Message for Added {}
///
/// impl EventSourcedCommand for Cmd {
///     type Event = Added;
///     type State = u64;
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the command type of an event-sourced entity",
    label = "this command type does not name its events and state",
    note = "add `impl casty::EventSourcedCommand for {Self} {{ type Event = ...; type State = ...; }}`, or use `#[event_sourced]` on the state's impl block"
)]
pub trait EventSourcedCommand: Message + Sized {
    /// What the entity persists.
    type Event: Event;
    /// What the events fold into; also what snapshots store.
    type State: Clone + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The stable name of the state type in snapshots. Defaults to the Rust type name.
    fn state_manifest() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(std::any::type_name::<Self::State>())
    }
}

/// An event-sourced entity type, named by its state: it makes the behavior of any one of its
/// entities. `#[event_sourced]` implements it on the state type; cluster sharding uses it to
/// start an entity wherever its shard lives (`State::sharded(journal, num_shards)`).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use casty::{Behavior, EventJournal, EventSourcedEntity, InMemoryJournal};
/// fn start<E: EventSourcedEntity>(id: &str, journal: Arc<dyn EventJournal>) -> Behavior<E::Command> {
///     E::entity_behavior(id, journal)
/// }
/// # let _ = start::<Never>;
/// # struct Never;
/// # #[derive(Debug)] enum NeverCmd {}
/// # impl casty::Message for NeverCmd {}
/// # impl casty::EventSourcedCommand for NeverCmd { type Event = u64; type State = u64; }
/// # impl EventSourcedEntity for Never {
/// #     type Command = NeverCmd;
/// #     fn entity_behavior(_: &str, _: Arc<dyn EventJournal>) -> Behavior<NeverCmd> { casty::Behaviors::empty() }
/// # }
/// # let _ = InMemoryJournal::new();
/// ```
pub trait EventSourcedEntity: 'static {
    /// The entity's command type.
    type Command: EventSourcedCommand;
    /// The behavior of the entity `entity_id`, recovering from and writing to `journal`.
    fn entity_behavior(
        entity_id: &str,
        journal: std::sync::Arc<dyn crate::persistence::journal::EventJournal>,
    ) -> Behavior<Self::Command>;
}

/// A type that can be persisted as an event: a [`Message`] (for its manifest) that serde can write
/// and read. Implemented for every such type; `#[message_enum]` and `#[message]` give both.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be persisted as an event",
    label = "events must be serializable messages",
    note = "derive serde's `Serialize` and `Deserialize` and implement `casty::Message`, or put `#[message_enum]` / `#[message]` on the type"
)]
pub trait Event: Message + Serialize + DeserializeOwned {}

impl<T: Message + Serialize + DeserializeOwned> Event for T {}

type ThenFn<C> =
    Box<dyn FnOnce(&mut ActorContext<C>, &<C as EventSourcedCommand>::State) -> Behavior<C> + Send>;

/// The payload of a persistence effect.
pub(crate) struct PersistEffect<C: EventSourcedCommand> {
    pub(crate) events: Vec<C::Event>,
    pub(crate) thens: Vec<ThenFn<C>>,
    /// The directive to follow after the callbacks, unless one of them returns another.
    pub(crate) next: Behavior<C>,
}

/// What a `then` callback may return: nothing (keep going), or a directive such as
/// `Behaviors::stopped()`.
pub trait ThenResult<C> {
    /// The directive.
    fn into_directive(self) -> Behavior<C>;
}

impl<C> ThenResult<C> for () {
    fn into_directive(self) -> Behavior<C> {
        Behaviors::same()
    }
}

impl<C> ThenResult<C> for Behavior<C> {
    fn into_directive(self) -> Behavior<C> {
        self
    }
}

impl Behaviors {
    /// Persists `events` atomically, then applies them to the state with `on_event`. Returned from
    /// an event-sourced command handler (see [`Behaviors::event_sourced`]). Chain
    /// [`Behavior::then`] and [`Behavior::then_reply`] for effects that must wait for the write.
    ///
    /// While the write is in flight the entity takes no other command; they wait in order (P3).
    /// If the write fails the entity stops and nothing chained runs (P4).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Behavior, Behaviors, EventSourcedCommand, Message};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug)] enum Cmd { Add(u64, casty::ActorRef<u64>) }
    /// # impl Message for Cmd {}
    /// # #[derive(Debug, Serialize, Deserialize)] struct Added(u64);
    /// # impl Message for Added {}
    /// # impl EventSourcedCommand for Cmd { type Event = Added; type State = u64; }
    ///
    /// fn handle(cmd: Cmd) -> Behavior<Cmd> {
    ///     match cmd {
    ///         Cmd::Add(0, _) => Behaviors::same(),
    ///         Cmd::Add(n, reply_to) => {
    ///             Behaviors::persisted([Added(n)]).then_reply(reply_to, |total: &u64| *total)
    ///         }
    ///     }
    /// }
    /// # let _ = handle;
    /// ```
    pub fn persisted<C: EventSourcedCommand>(
        events: impl IntoIterator<Item = C::Event>,
    ) -> Behavior<C> {
        effect(PersistEffect {
            events: events.into_iter().collect(),
            thens: Vec::new(),
            next: Behaviors::same(),
        })
    }
}

fn effect<C: EventSourcedCommand>(e: PersistEffect<C>) -> Behavior<C> {
    Behavior::from_kind(Kind::Effect(EffectSlot::new(Box::new(e))))
}

impl<C: EventSourcedCommand> Behavior<C> {
    /// Runs `f` with the new state once the events of this `persisted` effect are written and
    /// applied. Never run during recovery. `f` may return `()` or a directive such as
    /// `Behaviors::stopped()`. On `Behaviors::same()` or `stopped()` (no events) it runs at once,
    /// with the current state.
    ///
    /// # Examples
    ///
    /// ```
    /// # use casty::{Behavior, Behaviors, EventSourcedCommand, Message};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug)] enum Cmd { Close }
    /// # impl Message for Cmd {}
    /// # #[derive(Debug, Serialize, Deserialize)] struct Closed;
    /// # impl Message for Closed {}
    /// # impl EventSourcedCommand for Cmd { type Event = Closed; type State = bool; }
    /// let b: Behavior<Cmd> = Behaviors::persisted([Closed]).then(|_ctx, _closed: &bool| Behaviors::stopped());
    /// # let _ = b;
    /// ```
    pub fn then<F, R>(self, f: F) -> Behavior<C>
    where
        F: FnOnce(&mut ActorContext<C>, &C::State) -> R + Send + 'static,
        R: ThenResult<C>,
    {
        let mut e = self.into_effect();
        e.thens
            .push(Box::new(move |ctx, state| f(ctx, state).into_directive()));
        effect(e)
    }

    /// Tells `reply_to` what `f` computes from the new state, once the events of this `persisted`
    /// effect are written and applied. No reply is sent if the write fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use casty::{ActorRef, Behavior, Behaviors, EventSourcedCommand, Message};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug)] enum Cmd { Add(u64, ActorRef<u64>) }
    /// # impl Message for Cmd {}
    /// # #[derive(Debug, Serialize, Deserialize)] struct Added(u64);
    /// # impl Message for Added {}
    /// # impl EventSourcedCommand for Cmd { type Event = Added; type State = u64; }
    /// fn add(n: u64, reply_to: ActorRef<u64>) -> Behavior<Cmd> {
    ///     Behaviors::persisted([Added(n)]).then_reply(reply_to, |total: &u64| *total)
    /// }
    /// # let _ = add;
    /// ```
    pub fn then_reply<T, F>(self, reply_to: ActorRef<T>, f: F) -> Behavior<C>
    where
        T: Send + 'static,
        F: FnOnce(&C::State) -> T + Send + 'static,
    {
        self.then(move |_ctx, state| reply_to.tell(f(state)))
    }

    /// This behavior as an effect: a `persisted` effect as it is, a directive as an effect with no
    /// events that follows that directive.
    fn into_effect(self) -> PersistEffect<C> {
        match self.kind {
            Kind::Effect(mut slot) => match slot.take().map(|b| b.downcast::<PersistEffect<C>>()) {
                Some(Ok(e)) => *e,
                // An emptied (cloned) slot or a foreign payload: keep it, so the handler reports it.
                other => PersistEffect {
                    events: Vec::new(),
                    thens: Vec::new(),
                    next: Behavior::from_kind(Kind::Effect(match other {
                        Some(Err(b)) => EffectSlot::new(b),
                        _ => EffectSlot::empty(),
                    })),
                },
            },
            kind => PersistEffect {
                events: Vec::new(),
                thens: Vec::new(),
                next: Behavior::from_kind(kind),
            },
        }
    }
}

/// Takes the effect out of a behavior returned by a command handler, or hands a plain directive
/// (`same`, `stopped`, ..) back as `Err`.
pub(crate) fn take_effect<C: EventSourcedCommand>(
    b: Behavior<C>,
) -> Result<PersistEffect<C>, Behavior<C>> {
    match b.kind {
        Kind::Effect(_) => Ok(b.into_effect()),
        kind => Err(Behavior::from_kind(kind)),
    }
}
