use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::actor::actor_ref::{ActorRef, RefCount, RefTarget, TellError};
use crate::actor::cell::Watcher;
use crate::actor::failure::Failure;
use crate::actor::path::{next_uid, ActorPath};
use crate::actor::system::SystemInner;
use crate::ActorSystem;

struct ProbeTarget<M> {
    path: ActorPath,
    tx: mpsc::UnboundedSender<M>,
    system: Arc<SystemInner>,
}

impl<M: Send> RefCount for ProbeTarget<M> {}

impl<M: Send + 'static> RefTarget<M> for ProbeTarget<M> {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn system(&self) -> &Arc<SystemInner> {
        &self.system
    }

    fn deliver(&self, msg: M) -> Result<(), TellError<M>> {
        self.tx.send(msg).map_err(|e| TellError::Closed(e.0))
    }
}

struct ProbeWatcher {
    uid: u64,
    tx: mpsc::UnboundedSender<ActorPath>,
}

impl Watcher for ProbeWatcher {
    fn watcher_uid(&self) -> u64 {
        self.uid
    }

    fn notify_death(&self, path: ActorPath, _failure: Option<Failure>) {
        let _ = self.tx.send(path);
    }
}

/// What [`TestProbe::fish_for_message`] should do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FishingOutcome {
    /// This is the message we were fishing for: stop and return everything kept so far.
    Complete,
    /// Keep the message and continue fishing.
    Continue,
    /// Drop the message and continue fishing.
    ContinueAndIgnore,
    /// Fail the test with this reason.
    Fail(String),
}

/// A ref that records what it receives, for assertions in tests.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::testing::TestKit;
/// use casty::Behaviors;
/// use std::time::Duration;
///
/// let kit = TestKit::new();
/// let mut probe = kit.probe::<String>();
/// let echo = kit.spawn(Behaviors::receive(|_ctx, (s, r): (String, casty::ActorRef<String>)| {
///     r.tell(s);
///     Behaviors::same()
/// }), "echo");
/// echo.tell(("ping".to_string(), probe.actor_ref()));
/// assert_eq!(probe.expect_message(Duration::from_secs(1)).await, "ping");
/// probe.expect_no_message(Duration::from_millis(20)).await;
/// kit.shutdown().await;
/// # }
/// ```
pub struct TestProbe<M> {
    actor_ref: ActorRef<M>,
    rx: mpsc::UnboundedReceiver<M>,
    watcher: Arc<ProbeWatcher>,
    terminated: mpsc::UnboundedReceiver<ActorPath>,
}

impl<M: 'static> fmt::Debug for TestProbe<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestProbe")
            .field("path", &self.actor_ref.path())
            .finish()
    }
}

impl<M: Send + 'static> TestProbe<M> {
    /// A probe in `system`. Its path is `/_probe-N`.
    pub fn new(system: &ActorSystem) -> Self {
        let uid = next_uid();
        let path = ActorPath::new(system.name().into(), format!("/_probe-{uid}"), uid);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ttx, trx) = mpsc::unbounded_channel();
        TestProbe {
            actor_ref: ActorRef::from_target(Arc::new(ProbeTarget {
                path,
                tx,
                system: system.inner().clone(),
            })),
            rx,
            watcher: Arc::new(ProbeWatcher { uid, tx: ttx }),
            terminated: trx,
        }
    }

    /// The probe's ref, to pass as a reply-to or subscriber.
    pub fn actor_ref(&self) -> ActorRef<M> {
        self.actor_ref.clone()
    }

    /// Waits up to `timeout` for the next message.
    pub async fn receive_message(&mut self, timeout: Duration) -> Option<M> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next message, or a panic if none arrives within `timeout`.
    ///
    /// # Panics
    ///
    /// If no message arrives in time.
    pub async fn expect_message(&mut self, timeout: Duration) -> M {
        match self.receive_message(timeout).await {
            Some(m) => m,
            None => panic!(
                "TestProbe {}: no message within {timeout:?}",
                self.actor_ref.path()
            ),
        }
    }

    /// Expects the next message to equal `expected`.
    ///
    /// # Panics
    ///
    /// If no message arrives in time or it differs.
    pub async fn expect_message_eq(&mut self, expected: M, timeout: Duration) -> M
    where
        M: PartialEq + fmt::Debug,
    {
        let m = self.expect_message(timeout).await;
        assert_eq!(
            m,
            expected,
            "TestProbe {}: unexpected message",
            self.actor_ref.path()
        );
        m
    }

    /// Asserts that no message arrives for `duration`.
    ///
    /// # Panics
    ///
    /// If a message arrives.
    pub async fn expect_no_message(&mut self, duration: Duration)
    where
        M: fmt::Debug,
    {
        if let Ok(Some(m)) = tokio::time::timeout(duration, self.rx.recv()).await {
            panic!(
                "TestProbe {}: expected no message for {duration:?}, got {m:?}",
                self.actor_ref.path()
            );
        }
    }

    /// Receives messages until `f` returns `Complete`, within `timeout` overall. Returns the messages
    /// kept (`Continue` and the final `Complete` one).
    ///
    /// # Panics
    ///
    /// On timeout or when `f` returns `Fail`.
    pub async fn fish_for_message(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&M) -> FishingOutcome,
    ) -> Vec<M> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut kept = Vec::new();
        loop {
            let m = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => m,
                _ => panic!(
                    "TestProbe {}: fishing timed out after {timeout:?}",
                    self.actor_ref.path()
                ),
            };
            match f(&m) {
                FishingOutcome::Complete => {
                    kept.push(m);
                    return kept;
                }
                FishingOutcome::Continue => kept.push(m),
                FishingOutcome::ContinueAndIgnore => {}
                FishingOutcome::Fail(reason) => {
                    panic!("TestProbe {}: {reason}", self.actor_ref.path())
                }
            }
        }
    }

    /// Watches `target`; its termination is then observed with [`TestProbe::expect_terminated`].
    pub fn watch<T: Send + 'static>(&self, target: &ActorRef<T>) {
        target.watch_by(self.watcher.clone());
    }

    /// Waits until `target` terminates (watching it first if needed).
    ///
    /// # Panics
    ///
    /// If it does not terminate within `timeout`.
    pub async fn expect_terminated<T: Send + 'static>(
        &mut self,
        target: &ActorRef<T>,
        timeout: Duration,
    ) {
        self.watch(target);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.terminated.recv()).await {
                Ok(Some(p)) if &p == target.path() => return,
                Ok(Some(_)) => continue,
                _ => panic!(
                    "TestProbe: {} did not terminate within {timeout:?}",
                    target.path()
                ),
            }
        }
    }
}
