//! The user's side of sharding: [`Behaviors::sharded`], [`EntityRef`] and
//! [`Passivate::passivate`].

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::direct::{Direct, Lease};
use super::envelope::{entity_id_of, EntityId, LocalSignal, ShardEnvelope};
use super::region_actor::RegionActor;
use super::settings::ShardingSettings;
use crate::actor::ask::AskError;
use crate::{ActorContext, ActorRef, Behavior, Behaviors, Message};

impl Behaviors {
    /// A sharded entity type: spawned under a name on every node of a cluster, it is the
    /// type's *region* there, and the ref it returns takes a [`ShardEnvelope`] for any entity,
    /// wherever that entity lives. `entity_factory` makes an entity's behavior from its id, on
    /// whichever node hosts it. Entities are spread over `num_shards` shards (see
    /// [`shard_id`](super::shard_id)), and shards over the nodes.
    ///
    /// On a plain [`ActorSystem`](crate::ActorSystem) (no cluster) it is a one-node sharding:
    /// every shard lives on this node, and the same code runs unchanged on a cluster later.
    ///
    /// It must be spawned at the top level (`system.spawn`), under the same name on every node.
    /// Settings other than the number of shards come from `casty.toml` (`[defaults.sharding]`
    /// and `[actors."name"] sharding = { .. }`); [`Behaviors::sharded_with`] takes them in code.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::sharding::ShardEnvelope;
    /// use casty::{ActorRef, ActorSystem, Behavior, Behaviors};
    /// use std::time::Duration;
    ///
    /// #[casty::message_enum]
    /// enum Account {
    ///     Deposit { amount: i64 },
    ///     GetBalance { reply_to: ActorRef<i64> },
    /// }
    ///
    /// fn account(balance: i64) -> Behavior<Account> {
    ///     Behaviors::receive(move |_ctx, msg| match msg {
    ///         Account::Deposit { amount } => account(balance + amount),
    ///         Account::GetBalance { reply_to } => {
    ///             reply_to.tell(balance);
    ///             Behaviors::same()
    ///         }
    ///     })
    /// }
    ///
    /// let system = ActorSystem::new("bank");
    /// let accounts = system
    ///     .spawn(Behaviors::sharded(|_id: &str| account(0), 100), "accounts")
    ///     .unwrap();
    /// accounts.tell(ShardEnvelope::new("alice", Account::Deposit { amount: 100 }));
    /// accounts.tell(ShardEnvelope::new("alice", Account::Deposit { amount: 50 }));
    /// let balance = system
    ///     .ask(
    ///         &accounts,
    ///         |r| ShardEnvelope::new("alice", Account::GetBalance { reply_to: r }),
    ///         Duration::from_secs(2),
    ///     )
    ///     .await
    ///     .unwrap();
    /// assert_eq!(balance, 150);
    /// # system.shutdown().await; }
    /// ```
    pub fn sharded<M, F, B>(entity_factory: F, num_shards: u32) -> Behavior<ShardEnvelope<M>>
    where
        M: Message + Serialize + DeserializeOwned,
        F: Fn(&str) -> B + Send + Sync + 'static,
        B: Into<Behavior<M>>,
    {
        let factory: super::region_actor::Factory<M> =
            Arc::new(move |id| entity_factory(id).into());
        RegionActor::behavior(factory, None, Some(num_shards))
    }

    /// [`Behaviors::sharded`] with every setting given in code (the configuration file is not
    /// read for this type).
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::{ShardEnvelope, ShardingSettings};
    /// use casty::{Behavior, Behaviors};
    /// use std::time::Duration;
    /// let settings = ShardingSettings::default()
    ///     .num_shards(64)
    ///     .passivate_idle(Some(Duration::from_secs(30)));
    /// let b: Behavior<ShardEnvelope<u64>> =
    ///     Behaviors::sharded_with(|_id: &str| Behaviors::ignore::<u64>(), settings);
    /// # let _ = b;
    /// ```
    pub fn sharded_with<M, F, B>(
        entity_factory: F,
        settings: ShardingSettings,
    ) -> Behavior<ShardEnvelope<M>>
    where
        M: Message + Serialize + DeserializeOwned,
        F: Fn(&str) -> B + Send + Sync + 'static,
        B: Into<Behavior<M>>,
    {
        let factory: super::region_actor::Factory<M> =
            Arc::new(move |id| entity_factory(id).into());
        RegionActor::behavior(factory, Some(settings), None)
    }
}

/// A handle on one entity of a sharded type, for code that talks to it many times: it keeps the
/// id, so each message costs no new id.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorRef, ActorSystem, Behaviors};
/// use std::time::Duration;
/// let system = ActorSystem::new("demo");
/// // Each entity answers with its own id's length plus the number asked.
/// let lengths = system
///     .spawn(
///         Behaviors::sharded(
///             |id: &str| {
///                 let n = id.len() as u64;
///                 Behaviors::receive_message(move |(k, reply_to): (u64, ActorRef<u64>)| {
///                     reply_to.tell(n + k);
///                     Behaviors::same()
///                 })
///             },
///             16,
///         ),
///         "lengths",
///     )
///     .unwrap();
/// let hello = lengths.entity_ref("hello");
/// let n = hello.ask(|r| (10, r), Duration::from_secs(1)).await.unwrap();
/// assert_eq!(n, 15);
/// # system.shutdown().await; }
/// ```
pub struct EntityRef<M: Send + 'static> {
    region: ActorRef<ShardEnvelope<M>>,
    id: EntityId,
    /// The region's direct routes, when the region is on this node: a tell tries them first,
    /// without making an envelope.
    direct: Option<Arc<Direct<M>>>,
    /// The first direct route to a running entity this handle used: tried before the region's
    /// table, with no lookup, for as long as the region has not revoked it.
    cached: std::sync::OnceLock<Arc<Lease<ActorRef<M>>>>,
}

impl<M: Send + 'static> Clone for EntityRef<M> {
    fn clone(&self) -> Self {
        EntityRef {
            region: self.region.clone(),
            id: self.id.clone(),
            direct: self.direct.clone(),
            cached: std::sync::OnceLock::new(),
        }
    }
}

impl<M: Send + 'static> std::fmt::Debug for EntityRef<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityRef")
            .field("region", self.region.path())
            .field("entity_id", &self.id)
            .finish()
    }
}

/// What one node's region of a sharded type hosts, as [`region_state`] reports it.
///
/// [`region_state`]: ActorRef::region_state
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionState {
    /// Each shard hosted here, with the ids of its entities running now.
    pub shards: std::collections::BTreeMap<super::ShardId, std::collections::BTreeSet<String>>,
}

impl<M: Send + 'static> ActorRef<ShardEnvelope<M>> {
    /// What this node's region of the type hosts now: its shards and their running entities.
    /// `None` if this is not a live region on this node.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use casty::sharding::shard_id;
    /// use casty::{ActorRef, ActorSystem, Behaviors};
    /// use std::time::Duration;
    /// let system = ActorSystem::new("demo");
    /// let echo = |_id: &str| {
    ///     Behaviors::receive_message(|(n, reply_to): (u64, ActorRef<u64>)| {
    ///         reply_to.tell(n);
    ///         Behaviors::same()
    ///     })
    /// };
    /// let r = system.spawn(Behaviors::sharded(echo, 100), "echoes").unwrap();
    /// let alice = r.entity_ref("alice");
    /// assert_eq!(alice.ask(|reply_to| (7, reply_to), Duration::from_secs(1)).await, Ok(7));
    /// let state = r.region_state().await.unwrap();
    /// let shard = shard_id("alice", 100);
    /// assert_eq!(state.shards[&shard].iter().collect::<Vec<_>>(), ["alice"]);
    /// # system.shutdown().await; }
    /// ```
    pub async fn region_state(&self) -> Option<RegionState> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.try_tell(ShardEnvelope::local(LocalSignal::State(tx)))
            .ok()?;
        rx.await.ok()
    }

    /// A handle on the entity `entity_id` of this sharded type.
    pub fn entity_ref(&self, entity_id: impl Into<EntityId>) -> EntityRef<M> {
        EntityRef {
            region: self.clone(),
            id: entity_id.into(),
            direct: Direct::of(self),
            cached: std::sync::OnceLock::new(),
        }
    }
}

impl<M: Send + 'static> EntityRef<M> {
    /// The entity's id.
    pub fn entity_id(&self) -> &str {
        &self.id
    }

    /// Sends the entity a message, wherever it lives.
    pub fn tell(&self, msg: impl Into<M>) {
        let mut msg = msg.into();
        if let Some(direct) = &self.direct {
            match direct.try_route_cached(&self.id, &self.cached, msg) {
                Ok(()) => return,
                Err(m) => msg = m,
            }
        }
        self.region.tell(ShardEnvelope::new(self.id.clone(), msg));
    }

    /// Asks the entity: `make` builds the message from the ref to reply to.
    ///
    /// # Errors
    ///
    /// [`AskError`] if no reply came within `timeout` (or the reply could not arrive).
    pub async fn ask<R: Send + 'static>(
        &self,
        make: impl FnOnce(ActorRef<R>) -> M,
        timeout: Duration,
    ) -> Result<R, AskError> {
        let id = self.id.clone();
        crate::actor::ask::ask(
            self.region.system_inner(),
            &self.region,
            move |r| ShardEnvelope::new(id, make(r)),
            timeout,
        )
        .await
    }
}

/// What an entity of a sharded type can ask of its region.
pub trait Passivate {
    /// Asks the region to stop this entity once it has handled the messages already in its
    /// mailbox. Messages that arrive meanwhile wait, and start a new incarnation afterwards.
    /// Does nothing for an actor that is not a sharded entity.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::sharding::Passivate;
    /// use casty::{Behavior, Behaviors};
    /// // An entity that stops itself after each message; the next one starts it again.
    /// fn one_shot() -> Behavior<u64> {
    ///     Behaviors::receive(|ctx, _n: u64| {
    ///         ctx.passivate();
    ///         Behaviors::same()
    ///     })
    /// }
    /// # let _ = one_shot();
    /// ```
    fn passivate(&mut self);
}

impl<M> Passivate for ActorContext<M>
where
    M: Message + Serialize + DeserializeOwned,
{
    fn passivate(&mut self) {
        let path = self.path().clone();
        let (Some(parent), Some(id)) = (path.parent_str(), entity_id_of(path.name())) else {
            return;
        };
        if let Some(region) = self.system().lookup::<ShardEnvelope<M>>(parent) {
            region.tell(ShardEnvelope::local(LocalSignal::Passivate(id.into())));
        }
    }
}

/// The sharded form of an event-sourced entity type: `State::sharded(journal, num_shards)`
/// for any state that `#[event_sourced]` (or a hand-written [`EventSourcedEntity`](crate::EventSourcedEntity)) describes.
/// Every node spawns it under the same name, on a journal they share, and an entity recovers
/// its state wherever its shard lands.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use casty::sharding::{ShardEnvelope, ShardedEntity};
/// use casty::{event_sourced, message, message_enum, ActorContext, ActorRef, ActorSystem};
/// use casty::{Behavior, Behaviors, EventJournal, InMemoryJournal};
///
/// #[message_enum]
/// enum Deposited { Deposited { amount: i64 } }
///
/// #[message_enum]
/// enum Account { Deposit { amount: i64 }, GetBalance { reply_to: ActorRef<i64> } }
///
/// #[message]
/// #[derive(Clone, Default)]
/// struct Balance { total: i64 }
///
/// #[event_sourced]
/// impl Balance {
///     fn on_event(&self, event: &Deposited) -> Self {
///         match event {
///             Deposited::Deposited { amount } => Balance { total: self.total + amount },
///         }
///     }
///
///     async fn on_command(&self, _ctx: &mut ActorContext<Account>, cmd: Account) -> Behavior<Account> {
///         match cmd {
///             Account::Deposit { amount } => Behaviors::persisted([Deposited::Deposited { amount }]),
///             Account::GetBalance { reply_to } => {
///                 reply_to.tell(self.total);
///                 Behaviors::same()
///             }
///         }
///     }
/// }
///
/// let system = ActorSystem::new("bank");
/// let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
/// let accounts = system.spawn(Balance::sharded(journal, 100), "accounts").unwrap();
/// accounts.tell(ShardEnvelope::new("alice", Account::Deposit { amount: 150 }));
/// let balance = system
///     .ask(&accounts, |r| ShardEnvelope::new("alice", Account::GetBalance { reply_to: r }), Duration::from_secs(2))
///     .await
///     .unwrap();
/// assert_eq!(balance, 150);
/// # system.shutdown().await; }
/// ```
pub trait ShardedEntity: crate::EventSourcedEntity {
    /// The sharded behavior of this entity type over `num_shards` shards, its entities on
    /// `journal`.
    fn sharded(
        journal: Arc<dyn crate::EventJournal>,
        num_shards: u32,
    ) -> Behavior<ShardEnvelope<Self::Command>>
    where
        Self::Command: Serialize + DeserializeOwned;
}

impl<T: crate::EventSourcedEntity> ShardedEntity for T {
    fn sharded(
        journal: Arc<dyn crate::EventJournal>,
        num_shards: u32,
    ) -> Behavior<ShardEnvelope<Self::Command>>
    where
        Self::Command: Serialize + DeserializeOwned,
    {
        Behaviors::sharded(
            move |id: &str| T::entity_behavior(id, journal.clone()),
            num_shards,
        )
    }
}
