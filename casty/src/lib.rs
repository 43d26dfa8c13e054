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
//! The crate is layered (see ARCHITECTURE.md): the actor core is in `actor/`; later layers
//! (persistence, remoting, cluster) build on it without the core knowing them.

// Lets the macros' `::casty::` paths resolve inside this crate's own tests.
#[allow(unused_extern_crates)]
extern crate self as casty;

mod actor;
#[cfg(feature = "testing")]
pub mod testing;

pub use actor::actor_ref::{ActorRef, TellError};
pub use actor::ask::AskError;
pub use actor::behavior::{Behavior, Behaviors, BoxFuture, IntoBehavior, Lifecycle};
pub use actor::context::{ActorContext, Terminated};
pub use actor::event_stream::{
    ActorRestarted, ActorStarted, ActorStopped, DeadLetter, EventStream, Subscription,
    UnhandledMessage,
};
pub use actor::failure::Failure;
pub use actor::mailbox::{Mailbox, Overflow};
pub use actor::message::Message;
pub use actor::otp::{
    ChildBehavior, ChildInfo, ChildSpec, Restart, RestartStrategy, SupervisorMsg,
    SupervisorStrategy,
};
pub use actor::path::ActorPath;
pub use actor::scheduler::Scheduler;
pub use actor::supervision::{Backoff, Directive, OneForOneStrategy};
pub use actor::system::{ActorSystem, ActorSystemBuilder, SpawnError, SpawnOptions};

#[cfg(feature = "macros")]
pub use casty_macros::{behavior, message, message_enum};

/// Support for the code that `casty-macros` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::macro_support::*;
    pub use serde;
}

/// What a user writes every day.
pub mod prelude {
    #[cfg(feature = "macros")]
    pub use crate::{behavior, message, message_enum};
    pub use crate::{
        ActorContext, ActorRef, ActorSystem, Behavior, Behaviors, Directive, Failure, Message,
        OneForOneStrategy, Terminated,
    };
}
