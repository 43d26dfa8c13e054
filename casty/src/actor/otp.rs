//! An OTP-style supervisor: a parent that starts a fixed list of children and restarts them by
//! their [`ChildSpec`], as in Erlang/OTP and the fauxtp supervisor of Casty (Python). Its public
//! names live under `casty::otp` and follow Erlang's words, so that "one for one" and "restart"
//! never mean the per-actor `SupervisorStrategy` and `Directive::Restart` of `Behaviors::supervise`.
//!
//! Each child has a [`ChildRestart`] type (Erlang's child spec `restart`): `Permanent` children are
//! always restarted, `Transient` ones only after a failure, `Temporary` ones never. The
//! [`SupervisorFlags`] (Erlang's `sup_flags`) carry the [`Strategy`], which picks the children
//! that restart together: only the failed one (`OneForOne`), all of them (`OneForAll`), or the
//! failed one and those started after it (`RestForOne`). Group restarts stop the others first and
//! wait for them, then start the group again in spec order.
//!
//! Restart intensity works as in Erlang: more than `max_restarts` restarts within `within` makes the
//! supervisor itself fail, which stops all its children; its own supervision (a `supervise`
//! wrapper or its parent) then decides.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::actor::actor_ref::ActorRef;
use crate::actor::behavior::{Behavior, Behaviors, Handler, HandlerResult, Outcome, Signal};
use crate::actor::context::ActorContext;
use crate::actor::failure::Failure;
use crate::actor::message::Message;
use crate::actor::path::ActorPath;
use crate::actor::supervision::RestartWindow;
use crate::actor::system::SpawnError;

/// When a child is restarted after it terminates: the `restart` of an Erlang child spec.
///
/// # Examples
///
/// ```
/// use casty::otp::{ChildRestart, ChildSpec};
/// use casty::Behaviors;
/// let spec = ChildSpec::new("cache", Behaviors::ignore::<u32>(), ChildRestart::Transient);
/// assert_eq!(spec.restart, ChildRestart::Transient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildRestart {
    /// Always restarted, whether it failed or stopped normally (Erlang's `permanent`).
    Permanent,
    /// Restarted only if it failed (Erlang's `transient`).
    Transient,
    /// Never restarted (Erlang's `temporary`).
    Temporary,
}

/// Which children restart together when one terminates and must be restarted: the `strategy` of
/// Erlang's supervisor flags.
///
/// # Examples
///
/// ```
/// use casty::otp::{Strategy, SupervisorFlags};
/// assert_eq!(SupervisorFlags::rest_for_one().strategy(), Strategy::RestForOne);
/// assert_eq!(SupervisorFlags::new(Strategy::OneForOne), SupervisorFlags::one_for_one());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the terminated child (Erlang's `one_for_one`).
    OneForOne,
    /// Every child: the others are stopped, then all start again in spec order (Erlang's
    /// `one_for_all`).
    OneForAll,
    /// The terminated child and every child started after it (Erlang's `rest_for_one`).
    RestForOne,
}

/// An OTP supervisor's flags, as Erlang's `sup_flags`: its [`Strategy`] and its restart intensity
/// (at most `max_restarts` restarts within `within`, Erlang's `intensity` and `period`).
///
/// # Examples
///
/// ```
/// use casty::otp::{Strategy, SupervisorFlags};
/// use std::time::Duration;
/// let flags = SupervisorFlags::one_for_all().intensity(5, Duration::from_secs(10));
/// assert_eq!(flags.strategy(), Strategy::OneForAll);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorFlags {
    strategy: Strategy,
    max_restarts: u32,
    within: Duration,
}

impl SupervisorFlags {
    /// Flags with the given strategy and the default intensity (3 restarts within 5 seconds).
    pub fn new(strategy: Strategy) -> Self {
        SupervisorFlags {
            strategy,
            max_restarts: 3,
            within: Duration::from_secs(5),
        }
    }

    /// [`Strategy::OneForOne`]: restart only the failed child.
    pub fn one_for_one() -> Self {
        Self::new(Strategy::OneForOne)
    }

    /// [`Strategy::OneForAll`]: restart every child when one must be restarted.
    pub fn one_for_all() -> Self {
        Self::new(Strategy::OneForAll)
    }

    /// [`Strategy::RestForOne`]: restart the failed child and those started after it.
    pub fn rest_for_one() -> Self {
        Self::new(Strategy::RestForOne)
    }

    /// At most `max_restarts` restarts within `within`; one more makes the supervisor fail.
    pub fn intensity(mut self, max_restarts: u32, within: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.within = within;
        self
    }

    /// Which children restart together.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }
}

type StartFn =
    dyn Fn(&mut ActorContext<SupervisorMsg>, &str) -> Result<ActorPath, SpawnError> + Send + Sync;

/// A child's behavior with its message type erased, so children of different types fit in one
/// list. Made with `.into()` from any `Behavior<C>`.
#[derive(Clone)]
pub struct ChildBehavior(Arc<StartFn>);

impl<C: Message> From<Behavior<C>> for ChildBehavior {
    fn from(b: Behavior<C>) -> Self {
        ChildBehavior(Arc::new(move |ctx, name| {
            ctx.spawn(b.clone(), name).map(|r| r.path().clone())
        }))
    }
}

impl fmt::Debug for ChildBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChildBehavior")
    }
}

/// How an OTP supervisor starts and restarts one child.
///
/// # Examples
///
/// ```
/// use casty::otp::{ChildRestart, ChildSpec};
/// use casty::Behaviors;
/// let spec = ChildSpec { name: "worker-1".into(), behavior: Behaviors::ignore::<u32>().into(), restart: ChildRestart::Permanent };
/// let same = ChildSpec::new("worker-1", Behaviors::ignore::<u32>(), ChildRestart::Permanent);
/// assert_eq!(spec.name, same.name);
/// ```
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// The child's name under the supervisor.
    pub name: String,
    /// The child's behavior.
    pub behavior: ChildBehavior,
    /// When it is restarted.
    pub restart: ChildRestart,
}

impl ChildSpec {
    /// A spec from a typed behavior.
    pub fn new<C: Message>(
        name: impl Into<String>,
        behavior: impl Into<Behavior<C>>,
        restart: ChildRestart,
    ) -> Self {
        ChildSpec {
            name: name.into(),
            behavior: ChildBehavior::from(behavior.into()),
            restart,
        }
    }
}

/// A child as reported by [`SupervisorMsg::WhichChildren`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The spec's name.
    pub name: String,
    /// The running incarnation, or `None` if the child is not running.
    pub path: Option<ActorPath>,
    /// The spec's restart type.
    pub restart: ChildRestart,
}

/// Messages an OTP supervisor understands.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Replies with every child in spec order.
    WhichChildren(ActorRef<Vec<ChildInfo>>),
    /// Replies with how many restarts the supervisor has performed.
    CountRestarts(ActorRef<u64>),
}

impl Message for SupervisorMsg {}

#[derive(Clone)]
struct Otp {
    specs: Arc<[ChildSpec]>,
    flags: SupervisorFlags,
    running: Vec<Option<ActorPath>>,
    /// Children being stopped for a group restart, and the group to start once they are gone.
    stopping: HashSet<ActorPath>,
    group: Vec<usize>,
    restarts: u64,
    window: Arc<std::sync::Mutex<RestartWindow>>,
}

impl Otp {
    fn start(&mut self, ctx: &mut ActorContext<SupervisorMsg>, i: usize) -> Result<(), Failure> {
        let spec = &self.specs[i];
        let path = (spec.behavior.0)(ctx, &spec.name)?;
        self.running[i] = Some(path);
        Ok(())
    }

    fn on_child_terminated(
        &mut self,
        ctx: &mut ActorContext<SupervisorMsg>,
        path: &ActorPath,
        failure: Option<&Failure>,
    ) -> Result<(), Failure> {
        if self.stopping.remove(path) {
            return self.maybe_start_group(ctx);
        }
        let Some(i) = self.running.iter().position(|p| p.as_ref() == Some(path)) else {
            return Ok(());
        };
        self.running[i] = None;
        let restart = match self.specs[i].restart {
            ChildRestart::Permanent => true,
            ChildRestart::Transient => failure.is_some(),
            ChildRestart::Temporary => false,
        };
        if !restart {
            return Ok(());
        }
        let allowed = self.window.lock().unwrap_or_else(|e| e.into_inner()).allow(
            Instant::now(),
            self.flags.max_restarts,
            self.flags.within,
        );
        if !allowed {
            return Err(Failure::supervisor(format!(
                "supervisor {} exceeded its restart intensity ({} within {:?}); last child failure: {}",
                ctx.path(),
                self.flags.max_restarts,
                self.flags.within,
                failure.map(|f| f.to_string()).unwrap_or_else(|| "normal exit".into())
            )));
        }
        self.restarts += 1;
        let group: Vec<usize> = match self.flags.strategy {
            Strategy::OneForOne => vec![i],
            Strategy::OneForAll => (0..self.specs.len()).collect(),
            Strategy::RestForOne => (i..self.specs.len()).collect(),
        };
        for &j in &group {
            if let Some(p) = self.running[j].take() {
                ctx.stop_child_path(&p);
                self.stopping.insert(p);
            }
        }
        self.group = group;
        self.maybe_start_group(ctx)
    }

    fn maybe_start_group(&mut self, ctx: &mut ActorContext<SupervisorMsg>) -> Result<(), Failure> {
        if !self.stopping.is_empty() {
            return Ok(());
        }
        for i in std::mem::take(&mut self.group) {
            self.start(ctx, i)?;
        }
        Ok(())
    }
}

impl Handler<SupervisorMsg> for Otp {
    fn receive<'a>(
        &'a mut self,
        _ctx: &'a mut ActorContext<SupervisorMsg>,
        msg: SupervisorMsg,
    ) -> Outcome<'a, SupervisorMsg> {
        match msg {
            SupervisorMsg::WhichChildren(reply_to) => {
                let infos: Vec<ChildInfo> = self
                    .specs
                    .iter()
                    .zip(&self.running)
                    .map(|(s, p)| ChildInfo {
                        name: s.name.clone(),
                        path: p.clone(),
                        restart: s.restart,
                    })
                    .collect();
                reply_to.tell(infos);
            }
            SupervisorMsg::CountRestarts(reply_to) => reply_to.tell(self.restarts),
        }
        Outcome::Ready(Ok(Behaviors::same()))
    }

    fn signal(
        &mut self,
        ctx: &mut ActorContext<SupervisorMsg>,
        signal: &Signal<'_>,
    ) -> Option<HandlerResult<SupervisorMsg>> {
        match signal {
            Signal::ChildTerminated { path, failure } => {
                match self.on_child_terminated(ctx, path, *failure) {
                    Ok(()) => None,
                    Err(f) => Some(Err(f)),
                }
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Handler<SupervisorMsg>> {
        Box::new(self.clone())
    }
}

impl Behaviors {
    /// An OTP-style supervisor that starts `children` in order and restarts them by their specs and
    /// `flags` (Erlang's `supervisor:start_link` with a child list and `sup_flags`). The types it
    /// takes are in [`casty::otp`](crate::otp).
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
    /// let sup = system
    ///     .spawn(
    ///         Behaviors::supervisor(
    ///             vec![
    ///                 ChildSpec::new("worker-1", Behaviors::ignore::<u32>(), ChildRestart::Permanent),
    ///                 ChildSpec::new("worker-2", Behaviors::ignore::<u32>(), ChildRestart::Permanent),
    ///             ],
    ///             SupervisorFlags::one_for_one(),
    ///         ),
    ///         "sup",
    ///     )
    ///     .unwrap();
    /// let children = system.ask(&sup, SupervisorMsg::WhichChildren, Duration::from_secs(1)).await.unwrap();
    /// assert_eq!(children.len(), 2);
    /// assert!(system.lookup::<u32>("/sup/worker-1").is_some());
    /// # system.shutdown().await; }
    /// ```
    pub fn supervisor(children: Vec<ChildSpec>, flags: SupervisorFlags) -> Behavior<SupervisorMsg> {
        let specs: Arc<[ChildSpec]> = children.into();
        let window = Arc::new(std::sync::Mutex::new(RestartWindow::default()));
        Behaviors::setup(move |ctx| -> Result<Behavior<SupervisorMsg>, Failure> {
            let mut otp = Otp {
                specs: specs.clone(),
                flags,
                running: vec![None; specs.len()],
                stopping: HashSet::new(),
                group: Vec::new(),
                restarts: 0,
                window: window.clone(),
            };
            for i in 0..specs.len() {
                otp.start(ctx, i)?;
            }
            Ok(Behavior::handler(otp))
        })
    }
}
