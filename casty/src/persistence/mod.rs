//! Persistence: event-sourced entities over a durable journal.
//!
//! - [`journal`] defines the storage contract ([`EventJournal`]), implemented by
//!   [`InMemoryJournal`] and, with the `sqlite` feature, `SqliteJournal`.
//! - [`effect`] is what a command handler returns (`Behaviors::persisted(..).then(..)`).
//! - [`entity`] is the behavior that recovers, handles commands and writes events.
//! - [`recovery`] checks what recovery reads (sequence continuity, manifests).
//! - [`snapshot`] decides when snapshots are taken and how many are kept.
//!
//! This layer sits on the actor core and uses it only through its public shapes plus two small
//! hooks in the handler trait (an asynchronous start, and an opaque effect kind).

pub(crate) mod codec;
pub(crate) mod effect;
pub(crate) mod entity;
pub(crate) mod journal;
pub(crate) mod macro_support;
pub(crate) mod memory;
pub(crate) mod recovery;
pub(crate) mod snapshot;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

pub use effect::{Event, EventSourcedCommand, EventSourcedEntity, ThenResult};
pub use entity::{EventSourced, PersistenceFailed, PersistencePhase, RecoveryCompleted};
pub use journal::{EventJournal, JournalError, StoredEvent, StoredSnapshot};
pub use memory::InMemoryJournal;
pub use snapshot::SnapshotPolicy;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteJournal, SqliteOptions, Synchronous};
