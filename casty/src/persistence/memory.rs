//! `InMemoryJournal`: the journal for tests and development.
//!
//! One mutex over a map from persistence id to its log and snapshots. Every operation completes
//! without awaiting, so the returned futures are ready at once. Payloads are kept as the bytes the
//! entity serialized, so a test through this journal exercises the same encoding as a durable one.
//! Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use crate::actor::behavior::BoxFuture;
use crate::persistence::journal::{
    check_batch, EventJournal, JournalError, StoredEvent, StoredSnapshot,
};

#[derive(Default)]
struct Log {
    events: Vec<StoredEvent>,
    snapshots: BTreeMap<u64, StoredSnapshot>,
}

/// An [`EventJournal`] in memory, for tests and development.
///
/// # Examples
///
/// ```
/// use casty::{EventJournal, InMemoryJournal};
/// use std::sync::Arc;
///
/// let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
/// # let _ = journal;
/// ```
#[derive(Default)]
pub struct InMemoryJournal {
    logs: Mutex<HashMap<String, Log>>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Log>) -> R) -> R {
        f(&mut self.logs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl fmt::Debug for InMemoryJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.with(|m| m.len());
        f.debug_struct("InMemoryJournal")
            .field("persistence_ids", &ids)
            .finish()
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl EventJournal for InMemoryJournal {
    fn persist<'a>(
        &'a self,
        persistence_id: &'a str,
        events: Vec<StoredEvent>,
        expected_seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        let r = check_batch(persistence_id, &events, expected_seq).and_then(|()| {
            self.with(|m| {
                let log = match m.get_mut(persistence_id) {
                    Some(log) => log,
                    None => m.entry(persistence_id.to_string()).or_default(),
                };
                let actual = log.events.last().map_or(0, |e| e.seq);
                if actual != expected_seq {
                    return Err(JournalError::SequenceConflict {
                        persistence_id: persistence_id.to_string(),
                        expected: expected_seq,
                        actual,
                    });
                }
                log.events.extend(events);
                Ok(log.events.last().map_or(0, |e| e.seq))
            })
        });
        ready(r)
    }

    fn load<'a>(
        &'a self,
        persistence_id: &'a str,
        from_seq: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, JournalError>> {
        let events = self.with(|m| match m.get(persistence_id) {
            None => Vec::new(),
            Some(log) => {
                // Sequence numbers are dense from 1, so the index is `seq - 1`.
                let start = usize::try_from(from_seq.max(1) - 1).unwrap_or(usize::MAX);
                log.events.iter().skip(start).take(max).cloned().collect()
            }
        });
        ready(Ok(events))
    }

    fn highest_seq<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        let seq = self.with(|m| {
            m.get(persistence_id)
                .and_then(|l| l.events.last())
                .map_or(0, |e| e.seq)
        });
        ready(Ok(seq))
    }

    fn save_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
        snapshot: StoredSnapshot,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        self.with(|m| {
            m.entry(persistence_id.to_string())
                .or_default()
                .snapshots
                .insert(snapshot.seq, snapshot);
        });
        ready(Ok(()))
    }

    fn load_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, JournalError>> {
        let s = self.with(|m| {
            m.get(persistence_id)
                .and_then(|l| l.snapshots.last_key_value())
                .map(|(_, s)| s.clone())
        });
        ready(Ok(s))
    }

    fn delete_snapshots_before<'a>(
        &'a self,
        persistence_id: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        let n = self.with(|m| match m.get_mut(persistence_id) {
            None => 0,
            Some(log) => {
                let keep = log.snapshots.split_off(&seq);
                let n = log.snapshots.len() as u64;
                log.snapshots = keep;
                n
            }
        });
        ready(Ok(n))
    }
}
