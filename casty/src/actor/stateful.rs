//! Behaviors whose handler owns a state value: [`Behaviors::stateful`] and
//! [`Behaviors::stateful_async`], with [`Next`], what their body returns.
//!
//! The functional way to keep state is to return a new behavior that captures it
//! (`counter(n + 1)`): every change of state builds a new handler, kept inline in the behavior
//! (no allocation) while its captures fit in a few words, and boxed (one allocation per message
//! that changes the state) when they do not. A stateful behavior keeps the handler and passes the
//! state through it instead, whatever the state's size. The handler holds the state in a slot; for each message the state is *moved* out
//! of the slot into the body (no clone), and the body hands back the state to keep inside the
//! [`Next`] it returns, which the handler moves back into the slot. Changing the state therefore
//! costs a move of its bytes and no allocation. The state is cloned only when an incarnation
//! starts: spawn and restart start from a copy of the pristine initial state (L5), which is why it
//! must be `Clone`.
//!
//! The body owns the state while it runs. If it panics, the state goes down with it and the slot
//! stays empty: the handler is *poisoned*, and the cell turns a `Resume` decision into a restart,
//! since there is no state left to resume with.
//!
//! `#[behavior]` expands to these functions: its fn body becomes the body here, its state
//! parameters become the state (as a tuple), and whatever the fn returns is paired with the state
//! through [`Next::with`].

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::actor::behavior::{BoxFuture, Handler, HandlerResult, IntoBehavior, Outcome};
use crate::actor::context::ActorContext;
use crate::actor::failure::Failure;
use crate::actor::handler_box::HandlerBox;
use crate::{Behavior, Behaviors};

/// What the body of a [`Behaviors::stateful`] (or [`Behaviors::stateful_async`]) behavior returns
/// for a message: the state to keep, if the behavior stays, and what the actor does next.
///
/// | Constructor | The actor then | The state |
/// |---|---|---|
/// | [`Next::state(s)`](Next::state) | keeps this behavior | becomes `s` (changed or not) |
/// | [`Next::unhandled(s)`](Next::unhandled) | keeps this behavior; the message is published as unhandled | becomes `s` |
/// | [`Next::failed(s, e)`](Next::failed) | fails with `e`, for its supervisor | becomes `s`, kept if the supervisor resumes |
/// | [`Next::stopped()`](Next::stopped) | stops | is dropped |
/// | [`Next::behavior(b)`](Next::behavior) | switches to the behavior `b` | is dropped |
/// | [`Next::with(s, r)`](Next::with) | does what `r` (a `Behavior<M>` or `Result<Behavior<M>, E>`) says | becomes `s` |
///
/// # Examples
///
/// ```
/// use casty::{Behavior, Behaviors, Next};
///
/// // Counts messages, and stops at the third.
/// fn three() -> Behavior<&'static str> {
///     Behaviors::stateful(0u32, |_ctx, _msg: &'static str, seen| {
///         if seen + 1 == 3 {
///             Next::stopped()
///         } else {
///             Next::state(seen + 1)
///         }
///     })
/// }
/// # let _ = three();
/// ```
#[must_use = "a `Next` does nothing unless the body returns it"]
pub struct Next<S, M> {
    state: Option<S>,
    result: HandlerResult<M>,
}

impl<S, M> Next<S, M> {
    /// Keep this behavior, with `state` as its state for the next message.
    #[inline]
    pub fn state(state: S) -> Self {
        Next::with(state, Behaviors::same())
    }

    /// The message was not handled: it is published as an `UnhandledMessage` event, and the
    /// behavior stays, with `state`.
    #[inline]
    pub fn unhandled(state: S) -> Self {
        Next::with(state, Behaviors::unhandled())
    }

    /// Fail with `error`, for the supervisor to decide. The behavior keeps `state`, which is what
    /// it continues with if the supervisor resumes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Behavior, Behaviors, Next};
    ///
    /// fn parser() -> Behavior<String> {
    ///     Behaviors::stateful(0u64, |_ctx, text: String, total| match text.parse::<u64>() {
    ///         Ok(n) => Next::state(total + n),
    ///         Err(e) => Next::failed(total, e),
    ///     })
    /// }
    /// # let _ = parser();
    /// ```
    pub fn failed(state: S, error: impl Into<Failure>) -> Self {
        Next {
            state: Some(state),
            result: Err(error.into()),
        }
    }

    /// Stop the actor once this message is done. The state is dropped.
    pub fn stopped() -> Self {
        Next {
            state: None,
            result: Ok(Behaviors::stopped()),
        }
    }

    /// Switch to another behavior (for instance another `stateful` one, with a state of another
    /// type). The state is dropped.
    ///
    /// `Behaviors::same()` and `Behaviors::unhandled()` keep the current behavior, which has no
    /// state once it is dropped: given either of them, this is a failure that says so. Use
    /// [`Next::state`] and [`Next::unhandled`] for those.
    pub fn behavior(next: impl Into<Behavior<M>>) -> Self {
        let next = next.into();
        let result = if next.is_same() || next.is_unhandled() {
            Err(Failure::from(SameWithoutState))
        } else {
            Ok(next)
        };
        Next {
            state: None,
            result,
        }
    }

    /// Keep `state`, and do what `next` says: `Behaviors::same()` continues with `state`, another
    /// behavior replaces this one, and an `Err(e)` is a failure. Whatever `next` is, the state is
    /// put back into the behavior (it matters when the behavior stays: `same`, `unhandled`, a
    /// resumed failure). This is what `#[behavior]` generates: the fn's result, paired with its
    /// state parameters.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{Behavior, Behaviors, Next};
    ///
    /// fn log() -> Behavior<String> {
    ///     Behaviors::stateful(Vec::new(), |_ctx, line: String, mut lines: Vec<String>| {
    ///         let next = if line == "stop" { Behaviors::stopped() } else { Behaviors::same() };
    ///         lines.push(line);
    ///         Next::with(lines, next)
    ///     })
    /// }
    /// # let _ = log();
    /// ```
    #[inline]
    pub fn with(state: S, next: impl IntoBehavior<M>) -> Self {
        Next {
            state: Some(state),
            result: next.into_behavior(),
        }
    }
}

impl<S, M> fmt::Debug for Next<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("keeps_state", &self.state.is_some())
            .field("result", &self.result)
            .finish()
    }
}

/// The failure of `Next::behavior(Behaviors::same())`.
#[derive(Debug, thiserror::Error)]
#[error(
    "`Next::behavior` was given `same` or `unhandled`, which keep the current behavior without its \
     state; return `Next::state(..)` or `Next::unhandled(..)` instead"
)]
struct SameWithoutState;

/// The failure of a handler asked to run without its state. A safeguard: the cell restarts a
/// handler without state instead of resuming it (see `Handler::is_poisoned`).
#[derive(Debug, thiserror::Error)]
#[error("the behavior's state was lost when an earlier message panicked; it cannot be resumed")]
struct StateLost;

/// The state slot and the body, shared by the synchronous and asynchronous handlers.
struct Stateful<S, F> {
    /// `None` while the body runs, and after a body panicked or gave the state up. The `Mutex` is
    /// only for `Sync` (state need not be `Sync`); a handler reaches it through `get_mut`, which
    /// takes no lock.
    state: Mutex<Option<S>>,
    /// Held by value (a `#[behavior]` body is a zero-sized fn item) and cloned with the state for
    /// a new incarnation, so that building a stateful behavior allocates only its handler.
    body: F,
}

impl<S: Clone, F: Clone> Stateful<S, F> {
    fn new(state: S, body: F) -> Self {
        Stateful {
            state: Mutex::new(Some(state)),
            body,
        }
    }

    /// The state slot and the body, borrowed apart.
    #[inline]
    fn parts(&mut self) -> (&mut Option<S>, &F) {
        let slot = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        (slot, &self.body)
    }

    /// A new incarnation's handler, with a copy of the current state (the pristine initial one:
    /// the runtime copies only the behavior it keeps for restarts).
    fn copy(&self) -> Self {
        let state = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Stateful {
            state: Mutex::new(state),
            body: self.body.clone(),
        }
    }
}

impl<M, S, F> Handler<M> for Stateful<S, F>
where
    M: Send + 'static,
    S: Clone + Send + 'static,
    F: Fn(&mut ActorContext<M>, M, S) -> Next<S, M> + Clone + Send + Sync + 'static,
{
    #[inline]
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M> {
        let (slot, body) = self.parts();
        let Some(state) = slot.take() else {
            return Outcome::Ready(Err(Failure::from(StateLost)));
        };
        let next = body(ctx, msg, state);
        *slot = next.state;
        Outcome::Ready(next.result)
    }

    fn is_poisoned(&mut self) -> bool {
        self.parts().0.is_none()
    }

    fn clone_box(&self) -> Box<dyn Handler<M>> {
        Box::new(self.copy())
    }

    fn clone_handler(&self) -> HandlerBox<M> {
        HandlerBox::new(self.copy())
    }
}

/// The asynchronous handler: the body's future owns the state while it runs, and the handler
/// moves the state it returns back into the slot when it completes.
struct StatefulAsync<S, F>(Stateful<S, F>);

impl<M, S, F> Handler<M> for StatefulAsync<S, F>
where
    M: Send + 'static,
    S: Clone + Send + 'static,
    F: for<'a> Fn(&'a mut ActorContext<M>, M, S) -> BoxFuture<'a, Next<S, M>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    #[inline]
    fn receive<'a>(&'a mut self, ctx: &'a mut ActorContext<M>, msg: M) -> Outcome<'a, M> {
        let (slot, body) = self.0.parts();
        let Some(state) = slot.take() else {
            return Outcome::Ready(Err(Failure::from(StateLost)));
        };
        let running = body(ctx, msg, state);
        Outcome::Pending(Box::pin(async move {
            let next = running.await;
            *slot = next.state;
            next.result
        }))
    }

    fn is_poisoned(&mut self) -> bool {
        self.0.parts().0.is_none()
    }

    fn clone_box(&self) -> Box<dyn Handler<M>> {
        Box::new(StatefulAsync(self.0.copy()))
    }

    fn clone_handler(&self) -> HandlerBox<M> {
        HandlerBox::new(StatefulAsync(self.0.copy()))
    }
}

/// The handler behind [`Behaviors::stateful`].
#[inline]
pub(crate) fn stateful<M, S, F>(initial: S, body: F) -> Behavior<M>
where
    M: Send + 'static,
    S: Clone + Send + 'static,
    F: Fn(&mut ActorContext<M>, M, S) -> Next<S, M> + Clone + Send + Sync + 'static,
{
    Behavior::handler(Stateful::new(initial, body))
}

/// The handler behind [`Behaviors::stateful_async`].
pub(crate) fn stateful_async<M, S, F>(initial: S, body: F) -> Behavior<M>
where
    M: Send + 'static,
    S: Clone + Send + 'static,
    F: for<'a> Fn(&'a mut ActorContext<M>, M, S) -> BoxFuture<'a, Next<S, M>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    Behavior::handler(StatefulAsync(Stateful::new(initial, body)))
}
