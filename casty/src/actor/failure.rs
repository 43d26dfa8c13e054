//! `Failure`: why an actor failed.
//!
//! A handler fails by returning `Err(e)` or by panicking (L4). Both become a `Failure`, which
//! supervision deciders inspect: `downcast_ref::<E>()` for a typed error, `panic_message()` for a
//! panic. An escalated child failure becomes `ChildFailed`, carrying the child's path and cause (L6).
//! Failures are shared (`Arc`) because one failure is seen by the decider, the lifecycle hooks, the
//! event stream and the parent.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use crate::actor::path::ActorPath;

#[derive(Debug)]
enum Kind {
    Error(Box<dyn Error + Send + Sync>),
    Panic(String),
    ChildFailed { child: ActorPath, cause: Failure },
    ExplicitRestart,
    Supervisor(String),
}

/// Why an actor failed: an error it returned, a panic, or an escalated child failure.
///
/// # Examples
///
/// ```
/// use casty::Failure;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot process: {0}")]
/// struct ValueError(String);
///
/// let f = Failure::from(ValueError("bad".into()));
/// assert_eq!(f.to_string(), "cannot process: bad");
/// assert!(f.downcast_ref::<ValueError>().is_some());
/// assert!(f.panic_message().is_none());
/// ```
#[derive(Clone)]
pub struct Failure(Arc<Kind>);

impl Failure {
    /// A failure from any error value.
    pub fn from_error<E: Error + Send + Sync + 'static>(e: E) -> Self {
        Failure(Arc::new(Kind::Error(Box::new(e))))
    }

    /// A failure from a boxed error.
    pub fn from_boxed(e: Box<dyn Error + Send + Sync>) -> Self {
        Failure(Arc::new(Kind::Error(e)))
    }

    /// A failure from a panic payload, as caught by the runtime.
    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        Failure(Arc::new(Kind::Panic(msg)))
    }

    pub(crate) fn child_failed(child: ActorPath, cause: Failure) -> Self {
        Failure(Arc::new(Kind::ChildFailed { child, cause }))
    }

    pub(crate) fn explicit_restart() -> Self {
        Failure(Arc::new(Kind::ExplicitRestart))
    }

    pub(crate) fn supervisor(msg: String) -> Self {
        Failure(Arc::new(Kind::Supervisor(msg)))
    }

    /// The error, if this failure is an error of type `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        match &*self.0 {
            Kind::Error(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// Whether the failure is an error of type `E`.
    pub fn is<E: Error + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }

    /// The panic message, if the handler panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match &*self.0 {
            Kind::Panic(m) => Some(m),
            _ => None,
        }
    }

    /// For an escalated child failure: the child's path and its failure.
    pub fn as_child_failed(&self) -> Option<(&ActorPath, &Failure)> {
        match &*self.0 {
            Kind::ChildFailed { child, cause } => Some((child, cause)),
            _ => None,
        }
    }

    /// Whether this failure was a `Behaviors::restart()` request rather than an error.
    pub fn is_explicit_restart(&self) -> bool {
        matches!(&*self.0, Kind::ExplicitRestart)
    }
}

impl<E: Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::from_error(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Kind::Error(e) => fmt::Display::fmt(e, f),
            Kind::Panic(m) => write!(f, "panic: {m}"),
            Kind::ChildFailed { child, cause } => write!(f, "child {child} failed: {cause}"),
            Kind::ExplicitRestart => f.write_str("restart requested by the behavior"),
            Kind::Supervisor(m) => f.write_str(m),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Catches a panic in a handler's future.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}
