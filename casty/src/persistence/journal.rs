//! The `EventJournal` trait: where event-sourced entities keep their events and snapshots.
//!
//! A journal stores, per *persistence id*, an append-only sequence of events numbered 1, 2, 3, …
//! and any number of snapshots, each taken at some sequence number. Payloads are opaque bytes
//! (CBOR, written by the entity) tagged with a *manifest*, the stable name of their type, so that
//! recovery can refuse what it does not know.
//!
//! The trait is object-safe (`Arc<dyn EventJournal>`): every method returns a boxed future. The
//! contract, which [`crate::testing::journal_suite`] checks for every implementation:
//! - `persist` is atomic (all events or none, P2) and optimistic: it succeeds only if the id's
//!   highest sequence number is still `expected_seq`, so a second writer gets
//!   [`JournalError::SequenceConflict`] instead of interleaving its events (P1). The batch must be
//!   numbered `expected_seq + 1, expected_seq + 2, …`.
//! - Once `persist` has returned `Ok`, a `load` by anyone sees the events (read-your-writes), and a
//!   durable journal keeps them across a crash of the process (P6).
//! - `load` returns at most `max` events from `from_seq` on, in order, so recovery can page (P5).
//! - `load_snapshot` returns the snapshot with the highest sequence number.

use std::borrow::Cow;
use std::fmt;

use crate::actor::behavior::BoxFuture;

/// One stored event: its sequence number, its type's manifest and its serialized form.
///
/// # Examples
///
/// ```
/// use casty::StoredEvent;
/// let e = StoredEvent::new(1, "bank.Deposited", vec![0xa0]);
/// assert_eq!((e.seq, &*e.manifest), (1, "bank.Deposited"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The position of the event in its persistence id's log, from 1.
    pub seq: u64,
    /// The stable name of the event's type.
    pub manifest: Cow<'static, str>,
    /// The serialized event (CBOR when written by `Behaviors::event_sourced`).
    pub payload: Vec<u8>,
}

impl StoredEvent {
    /// A stored event.
    pub fn new(seq: u64, manifest: impl Into<Cow<'static, str>>, payload: Vec<u8>) -> Self {
        StoredEvent {
            seq,
            manifest: manifest.into(),
            payload,
        }
    }
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEvent")
            .field("seq", &self.seq)
            .field("manifest", &self.manifest)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// A stored snapshot: the state as of sequence number `seq`.
///
/// # Examples
///
/// ```
/// use casty::StoredSnapshot;
/// let s = StoredSnapshot::new(100, "bank.Account", vec![0xa0]);
/// assert_eq!(s.seq, 100);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The sequence number of the last event folded into this state.
    pub seq: u64,
    /// The stable name of the state's type.
    pub manifest: Cow<'static, str>,
    /// The serialized state.
    pub payload: Vec<u8>,
}

impl StoredSnapshot {
    /// A stored snapshot.
    pub fn new(seq: u64, manifest: impl Into<Cow<'static, str>>, payload: Vec<u8>) -> Self {
        StoredSnapshot {
            seq,
            manifest: manifest.into(),
            payload,
        }
    }
}

impl fmt::Debug for StoredSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSnapshot")
            .field("seq", &self.seq)
            .field("manifest", &self.manifest)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// What can go wrong in a journal, or while reading one back.
///
/// # Examples
///
/// ```
/// use casty::JournalError;
/// let e = JournalError::SequenceConflict { persistence_id: "acc-1".into(), expected: 3, actual: 4 };
/// assert!(e.to_string().contains("another writer"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The id's highest sequence number was not the one the writer expected (P1).
    #[error(
        "sequence conflict on `{persistence_id}`: the writer expected the log to end at {expected}, \
         but it ends at {actual} (another writer for the same persistence id?)"
    )]
    SequenceConflict {
        /// The persistence id.
        persistence_id: String,
        /// The highest sequence number the writer had seen.
        expected: u64,
        /// The highest sequence number in the journal.
        actual: u64,
    },
    /// A `persist` batch was not numbered `expected_seq + 1, expected_seq + 2, …`.
    #[error("invalid batch for `{persistence_id}`: {reason}")]
    InvalidBatch {
        /// The persistence id.
        persistence_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Stored data failed a check: a bad checksum, a gap or a duplicate in the sequence, a
    /// damaged file, or a file that is not a journal at all (the reason names the file).
    #[error("corrupt journal{}: {reason}", at(persistence_id, seq))]
    Corrupt {
        /// The persistence id, if the damage is in one id's data.
        persistence_id: Option<String>,
        /// The sequence number, if the damage is in one event or snapshot.
        seq: Option<u64>,
        /// What was found.
        reason: String,
    },
    /// A stored event or snapshot names a type this entity does not know.
    #[error(
        "unknown manifest `{found}` for `{persistence_id}` at seq {seq}: this entity reads `{expected}`"
    )]
    UnknownManifest {
        /// The persistence id.
        persistence_id: String,
        /// The sequence number of the event or snapshot.
        seq: u64,
        /// The manifest in the journal.
        found: String,
        /// The manifest the entity expected.
        expected: String,
    },
    /// A value could not be serialized.
    #[error("cannot serialize {what} for `{persistence_id}`: {reason}")]
    Encode {
        /// The persistence id.
        persistence_id: String,
        /// What was being serialized.
        what: &'static str,
        /// The serializer's message.
        reason: String,
    },
    /// A stored payload could not be deserialized as its manifest's type.
    #[error("cannot deserialize {what} of `{persistence_id}` at seq {seq}: {reason}")]
    Decode {
        /// The persistence id.
        persistence_id: String,
        /// What was being deserialized.
        what: &'static str,
        /// Its sequence number.
        seq: u64,
        /// The deserializer's message.
        reason: String,
    },
    /// The journal file could not be opened for use: unreadable, read-only, or of another schema
    /// version. (A file that is not a casty journal at all is [`JournalError::Corrupt`].)
    #[error("cannot open the journal at {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A write was asked of a journal opened for reading only (for example
    /// `SqliteJournal::open_read_only`, for recovery from a read-only file).
    #[error("the journal at {path} is open read-only (recovery only): it cannot be written")]
    ReadOnly {
        /// The file.
        path: String,
    },
    /// The storage failed (I/O, a full disk, a lock held too long).
    #[error("journal storage error: {0}")]
    Storage(String),
    /// The journal was closed or its writer is gone.
    #[error("the journal is closed")]
    Closed,
}

fn at(id: &Option<String>, seq: &Option<u64>) -> String {
    match (id, seq) {
        (Some(id), Some(seq)) => format!(" at `{id}` seq {seq}"),
        (Some(id), None) => format!(" at `{id}`"),
        (None, Some(seq)) => format!(" at seq {seq}"),
        (None, None) => String::new(),
    }
}

/// Checks that a `persist` batch is numbered `expected_seq + 1, …`. Journals call this first.
pub(crate) fn check_batch(
    persistence_id: &str,
    events: &[StoredEvent],
    expected_seq: u64,
) -> Result<(), JournalError> {
    for (i, e) in events.iter().enumerate() {
        let want = expected_seq + 1 + i as u64;
        if e.seq != want {
            return Err(JournalError::InvalidBatch {
                persistence_id: persistence_id.to_string(),
                reason: format!("event {i} has seq {}, expected {want}", e.seq),
            });
        }
    }
    Ok(())
}

/// Storage for event-sourced entities: an append-only event log and snapshots per persistence id.
///
/// Implementations must pass [`crate::testing::journal_suite`]. See the module notes for the
/// contract; `casty` ships [`crate::InMemoryJournal`] and, with the `sqlite` feature,
/// `SqliteJournal`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use casty::{EventJournal, InMemoryJournal, StoredEvent};
/// use std::sync::Arc;
///
/// let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
/// journal.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![1])], 0).await.unwrap();
/// assert_eq!(journal.highest_seq("acc-1").await.unwrap(), 1);
/// // A writer that has not seen seq 1 is refused.
/// assert!(journal.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![2])], 0).await.is_err());
/// let events = journal.load("acc-1", 1, 100).await.unwrap();
/// assert_eq!(events[0].payload, vec![1]);
/// # }
/// ```
pub trait EventJournal: Send + Sync + 'static {
    /// Appends `events` (numbered `expected_seq + 1, …`) atomically, if the log of
    /// `persistence_id` still ends at `expected_seq`. Returns the new highest sequence number.
    ///
    /// # Errors
    ///
    /// [`JournalError::SequenceConflict`] if the log ends elsewhere, [`JournalError::InvalidBatch`]
    /// if the batch is misnumbered, or a storage error. On error nothing was written.
    fn persist<'a>(
        &'a self,
        persistence_id: &'a str,
        events: Vec<StoredEvent>,
        expected_seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>>;

    /// Reads at most `max` events of `persistence_id` with `seq >= from_seq`, in order.
    ///
    /// # Errors
    ///
    /// A storage error, or [`JournalError::Corrupt`] if stored data fails its checks.
    fn load<'a>(
        &'a self,
        persistence_id: &'a str,
        from_seq: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, JournalError>>;

    /// The highest sequence number of `persistence_id`, or 0 if it has no events.
    ///
    /// # Errors
    ///
    /// A storage error.
    fn highest_seq<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, JournalError>>;

    /// Stores a snapshot. A snapshot at the same sequence number is replaced.
    ///
    /// # Errors
    ///
    /// A storage error.
    fn save_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
        snapshot: StoredSnapshot,
    ) -> BoxFuture<'a, Result<(), JournalError>>;

    /// The snapshot of `persistence_id` with the highest sequence number, if any.
    ///
    /// # Errors
    ///
    /// A storage error, or [`JournalError::Corrupt`].
    fn load_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, JournalError>>;

    /// Deletes the snapshots of `persistence_id` taken before `seq` (exclusive). Returns how many
    /// were deleted.
    ///
    /// # Errors
    ///
    /// A storage error.
    fn delete_snapshots_before<'a>(
        &'a self,
        persistence_id: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_must_continue_the_log() {
        let ok = [
            StoredEvent::new(4, "E", vec![]),
            StoredEvent::new(5, "E", vec![]),
        ];
        assert_eq!(check_batch("a", &ok, 3), Ok(()));
        assert!(matches!(
            check_batch("a", &ok, 2),
            Err(JournalError::InvalidBatch { .. })
        ));
        let gap = [
            StoredEvent::new(1, "E", vec![]),
            StoredEvent::new(3, "E", vec![]),
        ];
        let e = check_batch("a", &gap, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid batch for `a`: event 1 has seq 3, expected 2"
        );
        assert_eq!(check_batch("a", &[], 9), Ok(()));
    }

    #[test]
    fn corrupt_errors_say_where() {
        let e = JournalError::Corrupt {
            persistence_id: Some("acc-1".into()),
            seq: Some(7),
            reason: "checksum mismatch".into(),
        };
        assert_eq!(
            e.to_string(),
            "corrupt journal at `acc-1` seq 7: checksum mismatch"
        );
        let e = JournalError::Corrupt {
            persistence_id: None,
            seq: None,
            reason: "file is not a database".into(),
        };
        assert_eq!(e.to_string(), "corrupt journal: file is not a database");
    }
}
