//! # casty
//!
//! A type-safe actor framework modelled on Akka Typed: behaviors are values, state transitions are
//! the behaviors a handler returns, and actors talk only through typed [`ActorRef<M>`]s.
//!
//! ```
//! use casty::{ActorSystem, Behavior, Behaviors, Message};
//!
//! #[derive(Debug)]
//! struct Greet {
//!     name: String,
//! }
//! impl Message for Greet {}
//!
//! fn greeter() -> Behavior<Greet> {
//!     Behaviors::receive(|_ctx, msg: Greet| {
//!         println!("Hello, {}!", msg.name);
//!         Behaviors::same()
//!     })
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let system = ActorSystem::new("demo");
//! let greeter = system.spawn(greeter(), "greeter").unwrap();
//! greeter.tell(Greet { name: "Alice".into() });
//! system.shutdown().await;
//! # }
//! ```
//!
//! The crate is layered: the actor core is in `actor/`; persistence and remoting build on it
//! without the core knowing them.

// Lets the macros' `::casty::` paths resolve inside this crate's own tests.
#[allow(unused_extern_crates)]
extern crate self as casty;

mod actor;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
mod persistence;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(feature = "cluster")]
pub mod sharding;
#[cfg(feature = "testing")]
pub mod testing;

/// Erlang/OTP-style group supervisors: [`Behaviors::supervisor`] starts a fixed list of children
/// and restarts them by their [`ChildSpec`](otp::ChildSpec)s and
/// [`SupervisorFlags`](otp::SupervisorFlags).
///
/// The names follow Erlang's: a supervisor's flags (`sup_flags`) hold a
/// [`Strategy`](otp::Strategy) (`one_for_one`, `one_for_all`, `rest_for_one`) and a restart
/// intensity; each child spec has a [`ChildRestart`](otp::ChildRestart) (`permanent`,
/// `transient`, `temporary`). They live in this module so that the crate root's
/// [`SupervisorStrategy`] and [`Directive::Restart`] (how one actor is supervised through
/// `Behaviors::supervise`) keep a single meaning.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::otp::{ChildRestart, ChildSpec, SupervisorFlags, SupervisorMsg};
/// use casty::{ActorSystem, Behaviors};
/// use std::time::Duration;
///
/// let system = ActorSystem::new("demo");
/// let children = vec![
///     ChildSpec::new("db", Behaviors::ignore::<u32>(), ChildRestart::Permanent),
///     ChildSpec::new("cache", Behaviors::ignore::<u32>(), ChildRestart::Transient),
/// ];
/// let flags = SupervisorFlags::rest_for_one().intensity(5, Duration::from_secs(10));
/// let sup = system.spawn(Behaviors::supervisor(children, flags), "sup").unwrap();
/// let infos = system.ask(&sup, SupervisorMsg::WhichChildren, Duration::from_secs(1)).await.unwrap();
/// assert_eq!(infos[1].restart, ChildRestart::Transient);
/// # system.shutdown().await; }
/// ```
pub mod otp {
    pub use crate::actor::otp::{
        ChildBehavior, ChildInfo, ChildRestart, ChildSpec, Strategy, SupervisorFlags, SupervisorMsg,
    };
}

pub use actor::actor_ref::{ActorRef, TellError};
pub use actor::ask::AskError;
pub use actor::behavior::{Behavior, Behaviors, IntoBehavior, Lifecycle};
pub use actor::context::{ActorContext, Terminated};
pub use actor::event_stream::{
    ActorRestarted, ActorStarted, ActorStopped, DeadLetter, DeadLetterReason, EventStream,
    LifecycleHook, LifecycleHookFailed, Subscription, UnhandledMessage,
};
pub use actor::failure::Failure;
pub use actor::mailbox::{Mailbox, Overflow};
pub use actor::message::Message;
pub use actor::path::ActorPath;
pub use actor::scheduler::Scheduler;
pub use actor::stateful::Next;
pub use actor::supervision::{Backoff, Directive, SupervisorStrategy};
pub use actor::system::{
    ActorDefaults, ActorSystem, ActorSystemBuilder, ShutdownOutcome, ShutdownTimedOut,
    SpawnDefaults, SpawnError, SpawnOptions, DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use persistence::{
    Event, EventJournal, EventSourced, EventSourcedCommand, EventSourcedEntity, InMemoryJournal,
    JournalError, PersistenceFailed, PersistencePhase, RecoveryCompleted, SnapshotPolicy,
    StoredEvent, StoredSnapshot, ThenResult,
};
#[cfg(feature = "sqlite")]
pub use persistence::{SqliteJournal, SqliteOptions, Synchronous};

/// Makes an enum an actor protocol (see the guide's "Macros" chapter).
///
/// Generates `Message` with a stable manifest, `Debug` (unless derived already), serde (unless
/// `local`), `From` for each newtype variant, and a typed ask constructor for each variant with a
/// `reply_to: ActorRef<R>` field. A bare variant is a shorthand for a newtype variant of the type
/// with the same name; mark a real unit variant `#[unit]`. Keys: `local`, `terminated` (adds a
/// `Terminated` variant for `ctx.watch`), `manifest = "..."`.
///
/// # Examples
///
/// ```
/// use casty::{message, message_enum, ActorRef, Message};
///
/// #[message]
/// struct Deposit {
///     amount: i64,
/// }
///
/// #[message_enum]
/// enum AccountMsg {
///     Deposit,
///     Withdraw { amount: i64, reply_to: ActorRef<String> },
///     GetBalance { reply_to: ActorRef<i64> },
///     #[unit]
///     Close,
/// }
///
/// let m: AccountMsg = Deposit { amount: 5 }.into();
/// assert!(matches!(m, AccountMsg::Deposit(Deposit { amount: 5 })));
/// let _ask = AccountMsg::withdraw(200); // impl FnOnce(ActorRef<String>) -> AccountMsg
/// let _ask: fn(ActorRef<i64>) -> AccountMsg = AccountMsg::get_balance;
/// assert!(AccountMsg::manifest().ends_with("::AccountMsg"));
/// ```
#[cfg(feature = "macros")]
pub use casty_macros::message_enum;

/// Makes a struct a message: `Message` with a stable manifest, `Debug` and serde (keys `local`
/// and `manifest`, as for [`message_enum`]).
///
/// # Examples
///
/// ```
/// use casty::{message, Message};
///
/// #[message(manifest = "shop.Greet")]
/// struct Greet {
///     name: String,
/// }
/// assert_eq!(Greet::manifest(), "shop.Greet");
/// # let _ = Greet { name: String::new() }.name;
/// ```
#[cfg(feature = "macros")]
pub use casty_macros::message;

/// Turns `fn name(ctx, msg, state..) -> Behavior<M>` into `fn name(state..) -> Behavior<M>`.
///
/// The handler owns the state between messages: it is moved into the body for each message and
/// back afterwards, never cloned per message, so a `mut` parameter changed in place is kept by
/// `Behaviors::same()`. The body may return `Result<Behavior<M>, E>` and may be `async`.
/// `#[behavior(setup)]` marks a fn of the context and arguments that runs at each start.
///
/// The generated code calls only public API: [`Behaviors::stateful`] (or
/// [`Behaviors::stateful_async`]) with the state parameters as its state and the fn's result
/// paired with them through [`Next::with`], and [`Behaviors::setup`] for `#[behavior(setup)]`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{behavior, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors};
/// use std::time::Duration;
///
/// #[behavior]
/// fn counter(
///     _ctx: &mut ActorContext<ActorRef<u64>>,
///     reply_to: ActorRef<u64>,
///     mut count: u64,
/// ) -> Behavior<ActorRef<u64>> {
///     count += 1;
///     reply_to.tell(count);
///     Behaviors::same()
/// }
///
/// let system = ActorSystem::new("demo");
/// let c = system.spawn(counter(0), "counter").unwrap();
/// let t = Duration::from_secs(1);
/// assert_eq!(system.ask(&c, |r| r, t).await.unwrap(), 1);
/// assert_eq!(system.ask(&c, |r| r, t).await.unwrap(), 2);
/// # system.shutdown().await; }
/// ```
#[cfg(feature = "macros")]
pub use casty_macros::behavior;

/// Makes the impl block of a state an event-sourced entity (see the guide's "Event sourcing").
///
/// The block has `fn on_event(&self, event: &E) -> Self` (pure) and
/// `[async] fn on_command(&self, ctx: &mut ActorContext<C>, cmd: C) -> Behavior<C>`, and may have
/// `fn initial() -> Self` (else `Default` gives the first state). The macro implements
/// [`EventSourcedCommand`] for `C` and generates `State::behavior(entity_id, journal)` and the
/// factory `State::entity(journal)`. Keys: `snapshot_every = N`, `keep_snapshots = K` and
/// `manifest = "..."` (the state's name in snapshots).
///
/// # Examples
///
/// ```
/// use casty::{event_sourced, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors};
///
/// #[message_enum]
/// enum CounterEvent { Added { n: u64 } }
///
/// #[message_enum(local)]
/// enum CounterCmd { Add { n: u64 }, Get { reply_to: ActorRef<u64> } }
///
/// #[message]
/// #[derive(Clone, Default)]
/// struct Counter { total: u64 }
///
/// #[event_sourced(snapshot_every = 100)]
/// impl Counter {
///     fn on_event(&self, event: &CounterEvent) -> Self {
///         match event {
///             CounterEvent::Added { n } => Counter { total: self.total + n },
///         }
///     }
///
///     async fn on_command(&self, _ctx: &mut ActorContext<CounterCmd>, cmd: CounterCmd) -> Behavior<CounterCmd> {
///         match cmd {
///             CounterCmd::Add { n } => Behaviors::persisted([CounterEvent::Added { n }]),
///             CounterCmd::Get { reply_to } => {
///                 reply_to.tell(self.total);
///                 Behaviors::same()
///             }
///         }
///     }
/// }
///
/// let journal = std::sync::Arc::new(casty::InMemoryJournal::new());
/// let _b: Behavior<CounterCmd> = Counter::behavior("counter-1", journal.clone());
/// let make = Counter::entity(journal);
/// let _c: Behavior<CounterCmd> = make("counter-2");
/// ```
#[cfg(feature = "macros")]
pub use casty_macros::event_sourced;

/// How a message type is read from the wire: what [`Message::wire_decoder`] returns.
///
/// `#[message_enum]` and `#[message]` fill `wire_decoder` in; by hand, a serde type returns
/// [`cbor_decoder`](wire::cbor_decoder).
///
/// # Examples
///
/// ```
/// use casty::wire::{cbor_decoder, WireDecoder};
/// use casty::Message;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Ping(u32);
/// impl Message for Ping {
///     fn wire_decoder() -> Option<WireDecoder<Self>> {
///         Some(cbor_decoder::<Self>)
///     }
/// }
/// assert!(Ping::wire_decoder().is_some());
/// ```
pub mod wire {
    pub use crate::actor::message::{cbor_decoder, WireDecoder};
}

/// The future type in casty's signatures: what an async handler
/// ([`Behaviors::receive_async`]), an [`EventJournal`]
/// and a remoting transport return.
///
/// # Examples
///
/// ```
/// use casty::future::BoxFuture;
/// use casty::{ActorContext, Behavior, Behaviors};
///
/// fn handle<'a>(_ctx: &'a mut ActorContext<u32>, n: u32) -> BoxFuture<'a, Behavior<u32>> {
///     Box::pin(async move {
///         if n == 0 { Behaviors::stopped() } else { Behaviors::same() }
///     })
/// }
/// let _b: Behavior<u32> = Behaviors::receive_async(handle);
/// ```
pub mod future {
    pub use crate::actor::behavior::BoxFuture;
}

/// What the code that `casty-macros` generates needs besides the public API: checks whose
/// trait bounds carry `on_unimplemented` messages (so a mistake is reported at the user's tokens),
/// and the `serde` re-export. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::macro_support::*;
    pub use crate::persistence::macro_support::*;
    pub use serde;
}

/// What a user writes every day.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{behavior, message, message_enum};
    pub use crate::{
        ActorContext, ActorRef, ActorSystem, Behavior, Behaviors, Directive, Failure, Message,
        SupervisorStrategy, Terminated,
    };
}

/// The README's Rust code blocks, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
