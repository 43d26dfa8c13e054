//! The system scheduler: keyed, timed messages to any actor.
//!
//! `tick` sends a copy of a message every interval, `schedule` sends one after a delay, and `cancel`
//! stops either. Keys are unique: scheduling under a key that is in use replaces the earlier
//! schedule. Each schedule is one task on the system's runtime; the map of keys is touched only when
//! schedules change, never on the tick path.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::actor::actor_ref::ActorRef;

type Entries = Arc<Mutex<HashMap<String, (u64, AbortHandle)>>>;

/// Sends timed messages to actors. Get it with `ActorSystem::scheduler()`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{ActorSystem, Behaviors};
/// use std::time::Duration;
/// let system = ActorSystem::new("demo");
/// let r = system.spawn(Behaviors::ignore::<&'static str>(), "target").unwrap();
/// system.scheduler().tick("report", &r, "report", Duration::from_secs(30));
/// system.scheduler().schedule("timeout", &r, "timeout", Duration::from_secs(5));
/// assert!(system.scheduler().cancel("report"));
/// assert!(!system.scheduler().cancel("report"));
/// # system.shutdown().await; }
/// ```
pub struct Scheduler {
    handle: Handle,
    entries: Entries,
    gen: AtomicU64,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("Scheduler").field("active", &n).finish()
    }
}

impl Scheduler {
    pub(crate) fn new(handle: Handle) -> Self {
        Scheduler {
            handle,
            entries: Arc::new(Mutex::new(HashMap::new())),
            gen: AtomicU64::new(1),
        }
    }

    /// Sends a copy of `msg` to `target` every `interval`, first after one interval. Missed ticks
    /// are skipped, not caught up.
    pub fn tick<M>(
        &self,
        key: impl Into<String>,
        target: &ActorRef<M>,
        msg: impl Into<M>,
        interval: Duration,
    ) where
        M: Clone + Send + 'static,
    {
        let msg: M = msg.into();
        let target = target.clone();
        let interval = interval.max(Duration::from_millis(1));
        self.insert(key.into(), |_, _| async move {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                t.tick().await;
                target.tell(msg.clone());
            }
        });
    }

    /// Sends `msg` to `target` once, after `delay`.
    pub fn schedule<M>(
        &self,
        key: impl Into<String>,
        target: &ActorRef<M>,
        msg: impl Into<M>,
        delay: Duration,
    ) where
        M: Send + 'static,
    {
        let msg: M = msg.into();
        let target = target.clone();
        self.insert(key.into(), move |key, (entries, gen)| async move {
            tokio::time::sleep(delay).await;
            let mut e = entries.lock().unwrap_or_else(|e| e.into_inner());
            if e.get(&key).is_some_and(|(g, _)| *g == gen) {
                e.remove(&key);
                drop(e);
                target.tell(msg);
            }
        });
    }

    fn insert<F, Fut>(&self, key: String, make: F)
    where
        F: FnOnce(String, (Entries, u64)) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let gen = self.gen.fetch_add(1, Ordering::Relaxed);
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let abort = self
            .handle
            .spawn(make(key.clone(), (self.entries.clone(), gen)))
            .abort_handle();
        if let Some((_, old)) = e.insert(key, (gen, abort)) {
            old.abort();
        }
    }

    /// Cancels the schedule under `key`. Returns whether one was active.
    pub fn cancel(&self, key: &str) -> bool {
        match self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
        {
            Some((_, a)) => {
                a.abort();
                true
            }
            None => false,
        }
    }

    /// Whether a schedule is active under `key`.
    pub fn is_active(&self, key: &str) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    pub(crate) fn cancel_all(&self) {
        for (_, (_, a)) in self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            a.abort();
        }
    }
}
