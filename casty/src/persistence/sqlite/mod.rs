//! `SqliteJournal`: the embedded, durable journal.
//!
//! One SQLite file in WAL mode with two tables, `events` keyed by (persistence_id, seq) and
//! `snapshots` keyed the same way, plus `heads`, the highest seq of each id, written in the same
//! transaction as the events. Every row carries a CRC-32 of its id, seq, manifest and payload,
//! checked on every read, so damage that SQLite's own structure checks miss (a flipped byte inside
//! a payload) is reported as [`JournalError::Corrupt`] instead of being replayed as a wrong state
//! (P6). Reads also check the log against its head: a page of events must be dense from
//! `from_seq`, and a short page must end at the head, so rows lost to a damaged b-tree page are
//! reported rather than silently missing.
//!
//! **Writes** go to one writer thread that owns the only writing connection. It takes the first
//! queued request, drains whatever else is queued (up to `max_batch`), and runs them all in one
//! transaction, each under its own savepoint so that one refused request (a sequence conflict)
//! does not undo the others. Only after `COMMIT` returns, which with `synchronous = FULL` means the
//! WAL is on disk, are the callers answered. This is group commit: one fsync is shared by every
//! entity that wrote meanwhile, so throughput grows with the number of writers.
//!
//! **Reads** (recovery) run on tokio's blocking pool with connections from a small pool, bounded
//! by a semaphore, so no async worker ever blocks on SQLite.
//!
//! **Opening** never overwrites a file the journal did not write. Only a missing file starts a new
//! journal, and a new journal is built whole (schema, `application_id`, WAL mode) in a temporary
//! file in the same directory, synced, then hard-linked into place, so no crash leaves a half-made
//! journal, or an empty file, at the path. So any file found at the path must already be a casty
//! journal: its 100-byte header is read before SQLite touches the file, and an empty or 1-byte
//! file, a file that is not a SQLite database, or another application's SQLite database is
//! [`JournalError::Corrupt`] and left untouched. A `-wal` file without its database is refused
//! too, since SQLite would replay it into a new file. A casty journal must then pass
//! `PRAGMA quick_check` and be of a known schema version.
//!
//! A journal marked read-only (the file, its `-wal` or `-shm` file, or its directory) is refused
//! at open by its permission bits, rather than failing at the first write (and root, which ignores
//! the bits, still honours the mark). [`SqliteJournal::open_read_only`] opens one for recovery:
//! reads work and every write is [`JournalError::ReadOnly`].
//!
//! The `-wal` file is part of the database: committed events stay there until a checkpoint copies
//! them into the main file. [`SqliteJournal::checkpoint`] forces one, e.g. before a backup.
//!
//! The code is split by concern: `file` opens and checks the file (and creates a new journal),
//! `write` runs the writer thread, `read` reads and checks rows, and this module holds the journal
//! type, its options and the [`EventJournal`] implementation.

mod file;
mod read;
mod write;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{oneshot, Semaphore};

use crate::actor::behavior::BoxFuture;
use crate::persistence::journal::{
    check_batch, EventJournal, JournalError, StoredEvent, StoredSnapshot,
};
use file::{check_writable, create, inspect, open_error, prepare, sqlite_open_error, Found};
use read::{head, ReaderPool};
use write::{writer_loop, Request, WriteOp};

/// How hard SQLite syncs a commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous = FULL`: a commit is fsynced before it returns. Acknowledged events survive a
    /// crash of the process and of the machine. The default.
    Full,
    /// `synchronous = NORMAL`: acknowledged events survive a crash of the process (the WAL is in
    /// the OS cache), but the last commits may be lost if the machine loses power.
    Normal,
}

/// Options for [`SqliteJournal::open_with`].
///
/// # Examples
///
/// ```
/// use casty::{SqliteOptions, Synchronous};
/// let opts = SqliteOptions { synchronous: Synchronous::Full, ..SqliteOptions::default() };
/// assert!(opts.check_on_open);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of a commit (default [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// Run `PRAGMA quick_check` on open (default true). It reads the whole file once.
    pub check_on_open: bool,
    /// Most write requests in one transaction (default 4096).
    pub max_batch: usize,
    /// Most concurrent reads (default 4).
    pub readers: usize,
    /// How long a statement waits for a lock held by another process (default 5 s).
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            check_on_open: true,
            max_batch: 4096,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The durable [`EventJournal`] on one SQLite file (see the module notes for its design).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
/// use casty::{EventJournal, SqliteJournal, StoredEvent};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("journal.db");
/// let journal = Arc::new(SqliteJournal::open(&path).unwrap());
/// journal.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![1, 2])], 0).await.unwrap();
/// drop(journal);
///
/// // Reopened, the event is still there.
/// let journal = SqliteJournal::open(&path).unwrap();
/// assert_eq!(journal.highest_seq("acc-1").await.unwrap(), 1);
/// # }
/// ```
pub struct SqliteJournal {
    path: PathBuf,
    writer: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    readers: Arc<ReaderPool>,
    read_only: bool,
}

impl fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

fn storage(e: rusqlite::Error) -> JournalError {
    if is_corruption(&e) {
        JournalError::Corrupt {
            persistence_id: None,
            seq: None,
            reason: e.to_string(),
        }
    } else {
        JournalError::Storage(e.to_string())
    }
}

fn to_i64(v: u64) -> Result<i64, JournalError> {
    i64::try_from(v).map_err(|_| JournalError::Storage(format!("{v} is out of range")))
}

fn checksum(id: &str, seq: u64, manifest: &str, payload: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    h.update(&seq.to_le_bytes());
    h.update(&(manifest.len() as u64).to_le_bytes());
    h.update(manifest.as_bytes());
    h.update(payload);
    i64::from(h.finalize())
}

impl SqliteJournal {
    /// Opens the journal at `path`, or creates it if no file is there, with the default options.
    ///
    /// A new journal is built complete in a temporary file next to `path` and then linked into
    /// place, so a crash while creating never leaves a half-made journal at `path`. Any file
    /// already at `path` must be a casty journal: an empty file, a 1-byte file, a file that is
    /// not a SQLite database, or a SQLite database of another application is refused with
    /// [`JournalError::Corrupt`] and left untouched (the journal never overwrites what it did
    /// not write).
    ///
    /// # Errors
    ///
    /// - [`JournalError::Corrupt`] if the file is not a casty journal, or is damaged;
    /// - [`JournalError::Open`] if it cannot be opened for writing: the file, its `-wal` or
    ///   `-shm` file, or its directory is read-only (whoever runs the process, even root; use
    ///   [`SqliteJournal::open_read_only`] to recover from such a journal), the file system is
    ///   read-only, or the journal has another schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the journal at `path`, as [`SqliteJournal::open`] does.
    ///
    /// # Errors
    ///
    /// As [`SqliteJournal::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use casty::{SqliteJournal, SqliteOptions, Synchronous};
    /// let dir = tempfile::tempdir().unwrap();
    /// let opts = SqliteOptions { synchronous: Synchronous::Normal, ..Default::default() };
    /// let _j = SqliteJournal::open_with(dir.path().join("j.db"), opts).unwrap();
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        if inspect(&path)? == Found::Missing {
            check_writable(&path)?;
            create(&path)?;
            // Another process may have created it meanwhile: check what is there now.
            if inspect(&path)? == Found::Missing {
                return Err(open_error(&path, "the new journal file disappeared"));
            }
        }
        check_writable(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| sqlite_open_error(&path, e))?;
        if conn.is_readonly("main").unwrap_or(true) {
            return Err(open_error(
                &path,
                "the file cannot be written (a read-only file or file system); use \
                 SqliteJournal::open_read_only to recover from it without writing",
            ));
        }
        prepare(&conn, &path, &options, true)?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
            .map_err(|e| sqlite_open_error(&path, e))?;

        let (tx, rx) = mpsc::channel::<Request>();
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("casty-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch))
            .map_err(|e| open_error(&path, format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteJournal {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                flags: OpenFlags::SQLITE_OPEN_READ_WRITE,
                busy_timeout: options.busy_timeout,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(options.readers.max(1)),
            }),
            path,
            writer: Some(tx),
            thread: Some(thread),
            read_only: false,
        })
    }

    /// Opens an existing journal for reading only, for recovery from a journal that must not or
    /// cannot be written: a read-only file, directory or file system, or a copy under
    /// inspection. Entities recover from it as usual; every write fails with
    /// [`JournalError::ReadOnly`]. Nothing is created: a missing file is an error.
    ///
    /// # Errors
    ///
    /// [`JournalError::Open`] if there is no file at `path` or it cannot be read;
    /// [`JournalError::Corrupt`] if it is not a casty journal or is damaged (with
    /// `options.check_on_open`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// use casty::{EventJournal, JournalError, SqliteJournal, StoredEvent};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("journal.db");
    /// let journal = SqliteJournal::open(&path).unwrap();
    /// journal.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![1])], 0).await.unwrap();
    /// drop(journal);
    ///
    /// let journal = SqliteJournal::open_read_only(&path).unwrap();
    /// assert_eq!(journal.highest_seq("acc-1").await, Ok(1));
    /// let e = journal.persist("acc-1", vec![StoredEvent::new(2, "Deposited", vec![2])], 1).await;
    /// assert!(matches!(e, Err(JournalError::ReadOnly { .. })));
    /// # }
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_read_only_with(path, SqliteOptions::default())
    }

    /// [`SqliteJournal::open_read_only`] with options (`synchronous` and `max_batch` do not
    /// apply).
    ///
    /// # Errors
    ///
    /// As [`SqliteJournal::open_read_only`].
    pub fn open_read_only_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, JournalError> {
        let path = path.as_ref().to_path_buf();
        if inspect(&path)? == Found::Missing {
            return Err(open_error(&path, "there is no journal file"));
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| sqlite_open_error(&path, e))?;
        prepare(&conn, &path, &options, false)?;
        let readers = ReaderPool {
            path: path.clone(),
            flags: OpenFlags::SQLITE_OPEN_READ_ONLY,
            busy_timeout: options.busy_timeout,
            idle: Mutex::new(vec![conn]),
            permits: Semaphore::new(options.readers.max(1)),
        };
        Ok(SqliteJournal {
            readers: Arc::new(readers),
            path,
            writer: None,
            thread: None,
            read_only: true,
        })
    }

    /// The file this journal writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this journal was opened with [`SqliteJournal::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Moves every committed write from the `-wal` file into the main file and empties the
    /// `-wal` file (`PRAGMA wal_checkpoint(TRUNCATE)`), after the writes queued before it.
    ///
    /// Until a checkpoint, the newest events live only in the `-wal` file, which is part of the
    /// database: a backup must copy both files, or checkpoint first. After `checkpoint` returns,
    /// the main file alone holds every write acknowledged before the call, so a copy of it taken
    /// before the next write is a complete journal.
    ///
    /// # Errors
    ///
    /// [`JournalError::Storage`] if another connection (another process reading the file)
    /// kept the checkpoint from finishing within the busy timeout, or on an I/O error;
    /// [`JournalError::ReadOnly`] on a read-only journal.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
    /// use casty::{EventJournal, SqliteJournal, StoredEvent};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("journal.db");
    /// let journal = SqliteJournal::open(&path).unwrap();
    /// journal.persist("acc-1", vec![StoredEvent::new(1, "Deposited", vec![1])], 0).await.unwrap();
    /// journal.checkpoint().await.unwrap();
    /// // The main file alone is now a complete journal.
    /// std::fs::copy(&path, dir.path().join("backup.db")).unwrap();
    /// let backup = SqliteJournal::open(dir.path().join("backup.db")).unwrap();
    /// assert_eq!(backup.highest_seq("acc-1").await, Ok(1));
    /// # }
    /// ```
    pub async fn checkpoint(&self) -> Result<(), JournalError> {
        self.write(WriteOp::Checkpoint).await.map(drop)
    }

    async fn write(&self, op: WriteOp) -> Result<u64, JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly {
                path: self.path.display().to_string(),
            });
        }
        let (reply, rx) = oneshot::channel();
        let writer = self.writer.as_ref().ok_or(JournalError::Closed)?;
        writer
            .send(Request { op, reply })
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| JournalError::Closed)?;
        let pool2 = pool.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool2.take()?;
            let r = f(&conn);
            pool2.give(conn);
            r
        })
        .await
        .map_err(|e| JournalError::Storage(format!("a journal read failed: {e}")))?
    }
}

impl Drop for SqliteJournal {
    fn drop(&mut self) {
        // Closing the channel ends the writer after it has answered everything queued.
        drop(self.writer.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl EventJournal for SqliteJournal {
    fn persist<'a>(
        &'a self,
        persistence_id: &'a str,
        events: Vec<StoredEvent>,
        expected_seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        Box::pin(async move {
            check_batch(persistence_id, &events, expected_seq)?;
            if events.is_empty() {
                return self.highest_seq(persistence_id).await.and_then(|actual| {
                    if actual == expected_seq {
                        Ok(actual)
                    } else {
                        Err(JournalError::SequenceConflict {
                            persistence_id: persistence_id.to_string(),
                            expected: expected_seq,
                            actual,
                        })
                    }
                });
            }
            self.write(WriteOp::Persist {
                id: persistence_id.to_string(),
                events,
                expected: expected_seq,
            })
            .await
        })
    }

    fn load<'a>(
        &'a self,
        persistence_id: &'a str,
        from_seq: u64,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, JournalError>> {
        let id = persistence_id.to_string();
        Box::pin(self.read(move |conn| read::events(conn, &id, from_seq, max)))
    }

    fn highest_seq<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        let id = persistence_id.to_string();
        Box::pin(self.read(move |conn| head(conn, &id)))
    }

    fn save_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
        snapshot: StoredSnapshot,
    ) -> BoxFuture<'a, Result<(), JournalError>> {
        Box::pin(async move {
            self.write(WriteOp::SaveSnapshot {
                id: persistence_id.to_string(),
                snapshot,
            })
            .await
            .map(drop)
        })
    }

    fn load_snapshot<'a>(
        &'a self,
        persistence_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSnapshot>, JournalError>> {
        let id = persistence_id.to_string();
        Box::pin(self.read(move |conn| read::latest_snapshot(conn, &id)))
    }

    fn delete_snapshots_before<'a>(
        &'a self,
        persistence_id: &'a str,
        seq: u64,
    ) -> BoxFuture<'a, Result<u64, JournalError>> {
        Box::pin(self.write(WriteOp::DeleteSnapshots {
            id: persistence_id.to_string(),
            before: seq,
        }))
    }
}
