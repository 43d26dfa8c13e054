use std::time::Duration;

use crate::testing::TestProbe;
use crate::{ActorRef, ActorSystem, Behavior, Message, SpawnOptions};

/// A system for tests, with helpers to spawn actors and make probes.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::testing::TestKit;
/// use casty::{ActorStarted, Behaviors};
/// use std::time::Duration;
///
/// let kit = TestKit::new();
/// let mut started = kit.event_probe::<ActorStarted>();
/// let a = kit.spawn(Behaviors::ignore::<u8>(), "a");
/// assert_eq!(started.expect_message(Duration::from_secs(1)).await.path, *a.path());
/// kit.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TestKit {
    system: ActorSystem,
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKit {
    /// A kit with a fresh system named `test`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new() -> Self {
        TestKit {
            system: ActorSystem::new("test"),
        }
    }

    /// A kit around an existing system.
    pub fn with_system(system: ActorSystem) -> Self {
        TestKit { system }
    }

    /// The system under test.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// A new probe.
    pub fn probe<M: Send + 'static>(&self) -> TestProbe<M> {
        TestProbe::new(&self.system)
    }

    /// A probe subscribed to the event stream for events of type `E`, until the system shuts
    /// down.
    pub fn event_probe<E: Clone + Send + 'static>(&self) -> TestProbe<E> {
        let p = TestProbe::new(&self.system);
        self.system
            .event_stream()
            .subscribe_actor(p.actor_ref())
            .detach();
        p
    }

    /// Spawns a top-level actor.
    ///
    /// # Panics
    ///
    /// If the spawn fails (a test setup error).
    pub fn spawn<M: Message>(&self, behavior: impl Into<Behavior<M>>, name: &str) -> ActorRef<M> {
        self.system
            .spawn(behavior, name)
            .unwrap_or_else(|e| panic!("TestKit: cannot spawn {name}: {e}"))
    }

    /// Spawns a top-level actor with options.
    ///
    /// # Panics
    ///
    /// If the spawn fails (a test setup error).
    pub fn spawn_with<M: Message>(
        &self,
        behavior: impl Into<Behavior<M>>,
        name: &str,
        options: SpawnOptions,
    ) -> ActorRef<M> {
        self.system
            .spawn_with(behavior, name, options)
            .unwrap_or_else(|e| panic!("TestKit: cannot spawn {name}: {e}"))
    }

    /// Shuts the system down, failing the test if that takes longer than 10 seconds.
    ///
    /// # Panics
    ///
    /// If shutdown hangs.
    pub async fn shutdown(&self) {
        if tokio::time::timeout(Duration::from_secs(10), self.system.shutdown())
            .await
            .is_err()
        {
            panic!(
                "TestKit: shutdown did not finish within 10s ({} actors alive)",
                self.system.live_actors()
            );
        }
    }
}
