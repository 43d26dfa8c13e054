//! `FailingJournal`: a journal wrapper with gates and failure switches, for testing how
//! event-sourced entities behave while a write is in flight and when the journal fails.
//!
//! It wraps any [`EventJournal`] (an [`InMemoryJournal`] by default) and splits its operations in
//! two sides: **writes** (`persist`, `save_snapshot`, `delete_snapshots_before`) and **reads**
//! (`load`, `highest_seq`, `load_snapshot`). Each side has one [`JournalGate`]:
//! - a *gate*: while held, each call waits at it until the test releases it (one call per
//!   permit) or opens it, so a test can hold a write in flight, or hold a recovery, and look at
//!   what the entity does meanwhile. Every call counts as an *arrival* when it reaches the gate,
//!   so a test can wait until a call is being held instead of sleeping;
//! - a *failure switch*: while set, each call that passes the gate returns the chosen error
//!   without touching the wrapped journal, so nothing is written.
//!
//! Both start open and healthy, so a fresh `FailingJournal` behaves exactly like its inner
//! journal.

use std::fmt;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::actor::behavior::BoxFuture;
use crate::persistence::{
    EventJournal, InMemoryJournal, JournalError, StoredEvent, StoredSnapshot,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GateState {
    held: bool,
    permits: u64,
    arrivals: u64,
}

/// One side (writes or reads) of a [`FailingJournal`]: a gate that can hold calls, and a switch
/// that makes them fail. Get it with [`FailingJournal::writes`] or [`FailingJournal::reads`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::testing::FailingJournal;
/// use casty::{EventJournal, JournalError, StoredEvent};
///
/// let journal = FailingJournal::new();
/// journal.writes().fail_with(JournalError::Storage("disk full".into()));
/// let e = journal.persist("a", vec![StoredEvent::new(1, "E", vec![])], 0).await;
/// assert_eq!(e, Err(JournalError::Storage("disk full".into())));
/// journal.writes().heal();
/// assert_eq!(journal.persist("a", vec![StoredEvent::new(1, "E", vec![])], 0).await, Ok(1));
/// assert_eq!(journal.writes().arrivals(), 2);
/// # }
/// ```
pub struct JournalGate {
    state: watch::Sender<GateState>,
    failure: Mutex<Option<JournalError>>,
}

impl JournalGate {
    fn new() -> Self {
        JournalGate {
            state: watch::Sender::new(GateState {
                held: false,
                permits: 0,
                arrivals: 0,
            }),
            failure: Mutex::new(None),
        }
    }

    /// From now on, each call waits at the gate until [`JournalGate::release`] or
    /// [`JournalGate::open`]. Calls already past the gate are not affected.
    pub fn hold(&self) {
        self.state.send_modify(|s| s.held = true);
    }

    /// Lets `n` more calls pass a held gate: calls waiting at it, or later ones if fewer are
    /// waiting. Which of several waiting calls goes first is not specified.
    pub fn release(&self, n: u64) {
        self.state
            .send_modify(|s| s.permits = s.permits.saturating_add(n));
    }

    /// Opens the gate: every waiting and later call passes. Unused permits are dropped.
    pub fn open(&self) {
        self.state.send_modify(|s| {
            s.held = false;
            s.permits = 0;
        });
    }

    /// How many calls have reached the gate so far (held or not).
    pub fn arrivals(&self) -> u64 {
        self.state.borrow().arrivals
    }

    /// Waits until at least `n` calls have reached the gate since the journal was made. With a
    /// held gate, `wait_for_arrivals(1)` returns once the first call is being held.
    pub async fn wait_for_arrivals(&self, n: u64) {
        let mut rx = self.state.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|s| s.arrivals >= n).await;
    }

    /// From now on, each call that passes the gate fails with `error` and does not reach the
    /// wrapped journal (a failed write writes nothing).
    pub fn fail_with(&self, error: JournalError) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// Ends [`JournalGate::fail_with`]: calls reach the wrapped journal again.
    pub fn heal(&self) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Counts the call, waits for the gate, then returns the injected error if there is one.
    async fn pass(&self) -> Result<(), JournalError> {
        let mut rx = self.state.subscribe();
        self.state.send_modify(|s| s.arrivals += 1);
        loop {
            // Mark the current state as seen before deciding, so that a change made after the
            // decision wakes `changed()` below.
            rx.borrow_and_update();
            let mut passed = false;
            self.state.send_if_modified(|s| {
                if !s.held {
                    passed = true;
                    false
                } else if s.permits > 0 {
                    s.permits -= 1;
                    passed = true;
                    true
                } else {
                    false
                }
            });
            if passed {
                break;
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        match &*self.failure.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for JournalGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = *self.state.borrow();
        f.debug_struct("JournalGate")
            .field("held", &s.held)
            .field("permits", &s.permits)
            .field("arrivals", &s.arrivals)
            .field(
                "failing",
                &self
                    .failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some(),
            )
            .finish()
    }
}

/// An [`EventJournal`] wrapper for tests, with a gate and a failure switch on its writes and on
/// its reads (see the module notes).
///
/// # Examples
///
/// Hold a write in flight, then make it fail:
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
/// use casty::testing::FailingJournal;
/// use casty::{EventJournal, JournalError, StoredEvent};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let journal = Arc::new(FailingJournal::new());
/// journal.writes().hold();
/// let j = journal.clone();
/// let write = tokio::spawn(async move {
///     j.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![1])], 0).await
/// });
/// // The write is now waiting at the gate.
/// tokio::time::timeout(Duration::from_secs(1), journal.writes().wait_for_arrivals(1))
///     .await
///     .unwrap();
/// journal.writes().fail_with(JournalError::Storage("disk on fire".into()));
/// journal.writes().release(1);
/// assert_eq!(write.await.unwrap(), Err(JournalError::Storage("disk on fire".into())));
/// // Nothing was written.
/// assert_eq!(journal.inner().highest_seq("acc-1").await, Ok(0));
/// # }
/// ```
pub struct FailingJournal<J = InMemoryJournal> {
    inner: J,
    writes: JournalGate,
    reads: JournalGate,
}

impl FailingJournal<InMemoryJournal> {
    /// A `FailingJournal` over a new [`InMemoryJournal`], gates open, nothing failing.
    pub fn new() -> Self {
        Self::wrap(InMemoryJournal::new())
    }
}

impl Default for FailingJournal<InMemoryJournal> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J: EventJournal> FailingJournal<J> {
    /// Wraps `inner`, gates open, nothing failing.
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::testing::FailingJournal;
    /// use casty::{EventJournal, InMemoryJournal};
    /// use std::sync::Arc;
    ///
    /// // Any journal: an `InMemoryJournal` here, a `SqliteJournal` or your own just as well.
    /// let journal = Arc::new(FailingJournal::wrap(InMemoryJournal::new()));
    /// let for_entities: Arc<dyn EventJournal> = journal.clone();
    /// # let _ = for_entities;
    /// ```
    pub fn wrap(inner: J) -> Self {
        FailingJournal {
            inner,
            writes: JournalGate::new(),
            reads: JournalGate::new(),
        }
    }

    /// The wrapped journal, to set up or inspect its contents without passing the gates.
    pub fn inner(&self) -> &J {
        &self.inner
    }

    /// The gate and failure switch of `persist`, `save_snapshot` and `delete_snapshots_before`.
    pub fn writes(&self) -> &JournalGate {
        &self.writes
    }

    /// The gate and failure switch of `load`, `highest_seq` and `load_snapshot` (recovery).
    pub fn reads(&self) -> &JournalGate {
        &self.reads
    }
}

impl<J: fmt::Debug> fmt::Debug for FailingJournal<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailingJournal")
            .field("inner", &self.inner)
            .field("writes", &self.writes)
            .field("reads", &self.reads)
            .finish()
    }
}

impl<J: EventJournal> EventJournal for FailingJournal<J> {
    fn persist<'a>(
        &'a self,
        persistence_id: &'a str,
        events: Vec<StoredEvent>,
        expected_seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        Box::pin(async move {
            self.writes.pass().await?;
            self.inner
                .persist(persistence_id, events, expected_seq)
                .await
        })
    }

    fn load<'a>(
        &'a self,
        persistence_id: &'a str,
        from_seq: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, JournalError>> {
        Box::pin(async move {
            self.reads.pass().await?;
            self.inner.load(persistence_id, from_seq, max).await
        })
    }

    fn highest_seq<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        Box::pin(async move {
            self.reads.pass().await?;
            self.inner.highest_seq(persistence_id).await
        })
    }

    fn save_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
        snapshot: StoredSnapshot,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.writes.pass().await?;
            self.inner.save_snapshot(persistence_id, snapshot).await
        })
    }

    fn load_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, JournalError>> {
        Box::pin(async move {
            self.reads.pass().await?;
            self.inner.load_snapshot(persistence_id).await
        })
    }

    fn delete_snapshots_before<'a>(
        &'a self,
        persistence_id: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        Box::pin(async move {
            self.writes.pass().await?;
            self.inner
                .delete_snapshots_before(persistence_id, seq)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::testing::journal_suite;

    const T: Duration = Duration::from_secs(5);

    fn ev(seq: u64) -> Vec<StoredEvent> {
        vec![StoredEvent::new(seq, "E", vec![seq as u8])]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_healthy_failing_journal_passes_the_suite() {
        journal_suite::run_all(|| Arc::new(FailingJournal::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_gate_lets_through_one_call_per_permit() {
        let j = Arc::new(FailingJournal::new());
        j.writes().hold();
        let (j1, j2) = (j.clone(), j.clone());
        let first = tokio::spawn(async move { j1.persist("a", ev(1), 0).await });
        tokio::time::timeout(T, j.writes().wait_for_arrivals(1))
            .await
            .unwrap();
        let second = tokio::spawn(async move { j2.persist("b", ev(1), 0).await });
        tokio::time::timeout(T, j.writes().wait_for_arrivals(2))
            .await
            .unwrap();
        // Both are held: nothing is written yet.
        assert_eq!(j.inner().highest_seq("a").await, Ok(0));
        assert_eq!(j.inner().highest_seq("b").await, Ok(0));
        j.writes().release(1);
        // Exactly one passes; the other is still held.
        let mut first = first;
        let mut second = second;
        let (done, held) = tokio::time::timeout(T, async {
            tokio::select! {
                r = &mut first => (r.unwrap(), second),
                r = &mut second => (r.unwrap(), first),
            }
        })
        .await
        .unwrap();
        assert_eq!(done, Ok(1));
        let mut held = held;
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut held)
                .await
                .is_err(),
            "the second call waits for a second permit"
        );
        let written =
            j.inner().highest_seq("a").await.unwrap() + j.inner().highest_seq("b").await.unwrap();
        assert_eq!(written, 1);
        j.writes().open();
        assert_eq!(held.await.unwrap(), Ok(1));
        assert_eq!(j.inner().highest_seq("a").await, Ok(1));
        assert_eq!(j.inner().highest_seq("b").await, Ok(1));
        // An open gate holds nothing, and reads were never held.
        assert_eq!(j.persist("a", ev(2), 1).await, Ok(2));
        assert_eq!(j.writes().arrivals(), 3);
        assert_eq!(j.load("a", 1, 10).await.unwrap().len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failing_reads_and_writes_touch_nothing() {
        let j = FailingJournal::new();
        let boom = JournalError::Storage("boom".into());
        j.writes().fail_with(boom.clone());
        assert_eq!(j.persist("a", ev(1), 0).await, Err(boom.clone()));
        assert_eq!(
            j.save_snapshot("a", StoredSnapshot::new(1, "S", vec![]))
                .await,
            Err(boom.clone())
        );
        assert_eq!(j.delete_snapshots_before("a", 1).await, Err(boom.clone()));
        assert_eq!(j.inner().highest_seq("a").await, Ok(0));
        assert_eq!(j.inner().load_snapshot("a").await, Ok(None));
        // Reads still work while writes fail.
        assert_eq!(j.highest_seq("a").await, Ok(0));
        j.writes().heal();
        assert_eq!(j.persist("a", ev(1), 0).await, Ok(1));

        j.reads().fail_with(boom.clone());
        assert_eq!(j.load("a", 1, 10).await, Err(boom.clone()));
        assert_eq!(j.highest_seq("a").await, Err(boom.clone()));
        assert_eq!(j.load_snapshot("a").await, Err(boom.clone()));
        assert_eq!(j.persist("a", ev(2), 1).await, Ok(2));
        j.reads().heal();
        assert_eq!(j.highest_seq("a").await, Ok(2));
    }
}
