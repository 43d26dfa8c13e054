//! What `#[event_sourced]` generates calls to. Public only through `casty::__private`; the marker
//! traits exist for their `on_unimplemented` messages, asserted at the user's own tokens.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::actor::behavior::Behavior;
use crate::actor::context::ActorContext;
use crate::actor::failure::Failure;
use crate::persistence::effect::Event;

/// The state of an event-sourced entity: cloned for each incarnation, serialized in snapshots.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the state of an event-sourced entity",
    label = "the state must be `Clone + Serialize + Deserialize + Send + Sync + 'static`",
    note = "a restart starts from a copy of the initial state (Clone) and snapshots store it (serde): add `#[derive(Clone, serde::Serialize, serde::Deserialize)]`, or put `#[casty::message]` and `#[derive(Clone)]` on the type"
)]
pub trait PersistentState: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> PersistentState for T {}

/// Asserts `S: PersistentState` at the span the macro gives the call.
#[inline(always)]
pub fn assert_persistent_state<S: PersistentState>() {}

/// Asserts `E: Event` at the span the macro gives the call.
#[inline(always)]
pub fn assert_event<E: Event>() {}

/// Where an entity's first state comes from when its impl block has no `fn initial() -> Self`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no initial state",
    label = "`#[event_sourced]` starts this state from `Default::default()`",
    note = "derive or implement `Default`, or add `fn initial() -> Self` to the `#[event_sourced]` impl block"
)]
pub trait DefaultState: Default {}
impl<T: Default> DefaultState for T {}

/// The initial state from `Default`.
#[inline(always)]
pub fn default_state<S: DefaultState>() -> S {
    S::default()
}

/// The context of `on_command` must be the entity's command type.
#[diagnostic::on_unimplemented(
    message = "mismatched command types: the context is `{Self}`, but `on_command` takes `{C}`",
    label = "expected `ActorContext<{C}>` here",
    note = "an entity's context, command parameter and `Behavior` all use its one command type"
)]
pub trait CommandContext<C> {
    /// The identity.
    fn from_context(ctx: &mut ActorContext<C>) -> &mut Self;
}
impl<C> CommandContext<C> for ActorContext<C> {
    #[inline(always)]
    fn from_context(ctx: &mut ActorContext<C>) -> &mut Self {
        ctx
    }
}

/// Hands the entity's context to `on_command` as the type its signature names, so a mismatch is
/// one error at that type.
#[inline(always)]
pub fn command_context<X: CommandContext<C> + ?Sized, C>(ctx: &mut ActorContext<C>) -> &mut X {
    X::from_context(ctx)
}

/// `on_command` must return a behavior of the entity's command type.
#[diagnostic::on_unimplemented(
    message = "mismatched command types: `on_command` returns `{Self}`, but takes `{C}`",
    label = "expected `Behavior<{C}>` (or a `Result` of it) here",
    note = "return `Behaviors::persisted(..)`, `Behaviors::same()`, `Behaviors::unhandled()` or `Behaviors::stopped()` as a `Behavior<{C}>`"
)]
pub trait CommandResult<C> {
    /// The runtime's form.
    fn into_result(self) -> Result<Behavior<C>, Failure>;
}
impl<C> CommandResult<C> for Behavior<C> {
    #[inline(always)]
    fn into_result(self) -> Result<Behavior<C>, Failure> {
        Ok(self)
    }
}
impl<C, E: Into<Failure>> CommandResult<C> for Result<Behavior<C>, E> {
    #[inline(always)]
    fn into_result(self) -> Result<Behavior<C>, Failure> {
        self.map_err(Into::into)
    }
}

/// Converts what `on_command` returned, checking its type at the user's return type.
#[inline(always)]
pub fn command_result<R: CommandResult<C>, C>(r: R) -> Result<Behavior<C>, Failure> {
    r.into_result()
}
