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
//! On open the file is checked: it must be a SQLite database, pass `PRAGMA quick_check`, and be a
//! casty journal (its `application_id`) of a known schema version. Otherwise `open` fails with a
//! clear error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags};
use tokio::sync::{oneshot, Semaphore};

use crate::actor::behavior::BoxFuture;
use crate::persistence::journal::{
    check_batch, EventJournal, JournalError, StoredEvent, StoredSnapshot,
};

/// `PRAGMA application_id` of a casty journal ("CSTY").
const APPLICATION_ID: i64 = 0x4353_5459;
/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    persistence_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (persistence_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    persistence_id TEXT NOT NULL PRIMARY KEY,
    seq INTEGER NOT NULL,
    crc INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    persistence_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    payload BLOB NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (persistence_id, seq)
) WITHOUT ROWID;
";

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

type Reply = oneshot::Sender<Result<u64, JournalError>>;

enum WriteOp {
    Persist {
        id: String,
        events: Vec<StoredEvent>,
        expected: u64,
    },
    SaveSnapshot {
        id: String,
        snapshot: StoredSnapshot,
    },
    DeleteSnapshots {
        id: String,
        before: u64,
    },
}

struct Request {
    op: WriteOp,
    reply: Reply,
}

struct ReaderPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
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
}

impl fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("path", &self.path)
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
    /// Opens (or creates) the journal at `path` with the default options.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`] if the file is damaged or not a database, and
    /// [`JournalError::Open`] if it cannot be opened or is not a casty journal.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the journal at `path`.
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
        let shown = path.display().to_string();
        let open_err = |e: rusqlite::Error| {
            if is_corruption(&e) {
                JournalError::Corrupt {
                    persistence_id: None,
                    seq: None,
                    reason: format!("{shown}: {e}"),
                }
            } else {
                JournalError::Open {
                    path: shown.clone(),
                    reason: e.to_string(),
                }
            }
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Open {
                path: shown,
                reason: format!("cannot switch to WAL mode (journal_mode is {mode})"),
            });
        }
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
            .map_err(open_err)?;
        if options.check_on_open {
            let mut stmt = conn.prepare("PRAGMA quick_check").map_err(open_err)?;
            let problems: Vec<String> = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(open_err)?
                .collect::<Result<_, _>>()
                .map_err(open_err)?;
            if problems.iter().any(|p| p != "ok") {
                return Err(JournalError::Corrupt {
                    persistence_id: None,
                    seq: None,
                    reason: format!(
                        "{shown} failed its integrity check: {}",
                        problems.join("; ")
                    ),
                });
            }
        }
        Self::init_schema(&conn, &shown).map_err(|e| match e {
            Ok(e) => open_err(e),
            Err(j) => j,
        })?;

        let (tx, rx) = mpsc::channel::<Request>();
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("casty-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch))
            .map_err(|e| JournalError::Open {
                path: path.display().to_string(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteJournal {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                busy_timeout: options.busy_timeout,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(options.readers.max(1)),
            }),
            path,
            writer: Some(tx),
            thread: Some(thread),
        })
    }

    /// The file this journal writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the schema in a new file, or checks that an existing file is a casty journal.
    fn init_schema(
        conn: &Connection,
        shown: &str,
    ) -> Result<(), Result<rusqlite::Error, JournalError>> {
        let app: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(Ok)?;
        let objects: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(Ok)?;
        if app == 0 && objects == 0 {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; PRAGMA application_id = {APPLICATION_ID}; \
                 PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
            ))
            .map_err(Ok)?;
            return Ok(());
        }
        if app != APPLICATION_ID {
            return Err(Err(JournalError::Open {
                path: shown.to_string(),
                reason: "the file is a SQLite database but not a casty journal".into(),
            }));
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(Ok)?;
        if version != SCHEMA_VERSION {
            return Err(Err(JournalError::Open {
                path: shown.to_string(),
                reason: format!(
                    "journal schema version {version}; this casty reads version {SCHEMA_VERSION}"
                ),
            }));
        }
        Ok(())
    }

    async fn write(&self, op: WriteOp) -> Result<u64, JournalError> {
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

impl ReaderPool {
    fn take(&self) -> Result<Connection, JournalError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage)?;
        conn.busy_timeout(self.busy_timeout).map_err(storage)?;
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(storage)?;
        Ok(conn)
    }

    fn give(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
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

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Request>, max_batch: usize) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch);
    }
}

/// Runs a batch of write requests in one transaction and answers them after the commit.
fn run_batch(conn: &mut Connection, batch: Vec<Request>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = storage(e);
        for r in batch {
            let _ = r.reply.send(Err(err.clone()));
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    for Request { op, reply } in batch {
        let r = in_savepoint(conn, |c| apply(c, op));
        answers.push((reply, r));
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        let err = storage(e);
        for (reply, r) in answers {
            let _ = reply.send(r.and(Err(err.clone())));
        }
        return;
    }
    for (reply, r) in answers {
        let _ = reply.send(r);
    }
}

fn in_savepoint(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<u64, JournalError>,
) -> Result<u64, JournalError> {
    let run = |sql: &str| -> Result<(), JournalError> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(storage)
    };
    run("SAVEPOINT op")?;
    match f(conn) {
        Ok(v) => {
            run("RELEASE op")?;
            Ok(v)
        }
        Err(e) => {
            run("ROLLBACK TO op")?;
            run("RELEASE op")?;
            Err(e)
        }
    }
}

fn apply(conn: &Connection, op: WriteOp) -> Result<u64, JournalError> {
    match op {
        WriteOp::Persist {
            id,
            events,
            expected,
        } => {
            let actual = head(conn, &id)?;
            if actual != expected {
                return Err(JournalError::SequenceConflict {
                    persistence_id: id,
                    expected,
                    actual,
                });
            }
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO events (persistence_id, seq, manifest, payload, crc) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(storage)?;
            let mut last = expected;
            for e in &events {
                let crc = checksum(&id, e.seq, &e.manifest, &e.payload);
                insert
                    .execute(params![id, to_i64(e.seq)?, &*e.manifest, e.payload, crc])
                    .map_err(storage)?;
                last = e.seq;
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO heads (persistence_id, seq, crc) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    to_i64(last).unwrap_or(i64::MAX),
                    head_crc(&id, last)
                ])
            })
            .map_err(storage)?;
            Ok(last)
        }
        WriteOp::SaveSnapshot { id, snapshot } => {
            let crc = checksum(&id, snapshot.seq, &snapshot.manifest, &snapshot.payload);
            conn.prepare_cached(
                "INSERT OR REPLACE INTO snapshots (persistence_id, seq, manifest, payload, crc) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    to_i64(snapshot.seq).unwrap_or(i64::MAX),
                    &*snapshot.manifest,
                    snapshot.payload,
                    crc
                ])
            })
            .map_err(storage)?;
            Ok(snapshot.seq)
        }
        WriteOp::DeleteSnapshots { id, before } => {
            let n = conn
                .prepare_cached("DELETE FROM snapshots WHERE persistence_id = ?1 AND seq < ?2")
                .and_then(|mut s| s.execute(params![id, to_i64(before).unwrap_or(i64::MAX)]))
                .map_err(storage)?;
            Ok(n as u64)
        }
    }
}

fn head_crc(id: &str, seq: u64) -> i64 {
    checksum(id, seq, "head", &[])
}

/// The highest seq of `id` from its head row (0 without one), checked against its CRC.
fn head(conn: &Connection, id: &str) -> Result<u64, JournalError> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT seq, crc FROM heads WHERE persistence_id = ?1")
        .and_then(|mut s| {
            let mut rows = s.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.next().transpose()
        })
        .map_err(storage)?;
    let Some((seq, crc)) = row else {
        return Ok(0);
    };
    match u64::try_from(seq) {
        Ok(seq) if head_crc(id, seq) == crc => Ok(seq),
        _ => Err(JournalError::Corrupt {
            persistence_id: Some(id.to_string()),
            seq: None,
            reason: "the head row (highest seq) was damaged".into(),
        }),
    }
}

fn lost(id: &str, seq: u64, what: String) -> JournalError {
    JournalError::Corrupt {
        persistence_id: Some(id.to_string()),
        seq: Some(seq),
        reason: format!("events are missing or misplaced: {what}"),
    }
}

fn verified(
    id: &str,
    seq: i64,
    manifest: String,
    payload: Vec<u8>,
    crc: i64,
) -> Result<(u64, String, Vec<u8>), JournalError> {
    let corrupt = |reason: String| JournalError::Corrupt {
        persistence_id: Some(id.to_string()),
        seq: u64::try_from(seq).ok(),
        reason,
    };
    let seq = u64::try_from(seq).map_err(|_| corrupt("negative sequence number".into()))?;
    if checksum(id, seq, &manifest, &payload) != crc {
        return Err(corrupt(
            "checksum mismatch: the stored row was damaged".into(),
        ));
    }
    Ok((seq, manifest, payload))
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
        Box::pin(self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, manifest, payload, crc FROM events \
                     WHERE persistence_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(storage)?;
            let limit = i64::try_from(max).unwrap_or(i64::MAX);
            let rows = stmt
                .query_map(params![id, to_i64(from_seq)?, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .map_err(storage)?;
            let mut out: Vec<StoredEvent> = Vec::with_capacity(max.min(4096));
            let mut next = from_seq.max(1);
            for row in rows {
                let (seq, manifest, payload, crc) = row.map_err(storage)?;
                let (seq, manifest, payload) = verified(&id, seq, manifest, payload, crc)?;
                if seq != next {
                    return Err(lost(
                        &id,
                        next,
                        format!("found seq {seq} where {next} belongs"),
                    ));
                }
                next += 1;
                out.push(StoredEvent::new(seq, manifest, payload));
            }
            drop(stmt);
            let head = head(conn, &id)?;
            let last = next - 1;
            if out.len() < max && last < head && next <= head {
                return Err(lost(
                    &id,
                    next,
                    format!("the log ends at {last} but its head is {head}"),
                ));
            }
            if last > head && !out.is_empty() {
                return Err(lost(&id, last, format!("events past the head ({head})")));
            }
            Ok(out)
        }))
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
        Box::pin(self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, manifest, payload, crc FROM snapshots \
                     WHERE persistence_id = ?1 ORDER BY seq DESC LIMIT 1",
                )
                .map_err(storage)?;
            let mut rows = stmt
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(storage)?;
            match rows.next() {
                None => Ok(None),
                Some(row) => {
                    let (seq, manifest, payload, crc) = row.map_err(storage)?;
                    let (seq, manifest, payload) = verified(&id, seq, manifest, payload, crc)?;
                    Ok(Some(StoredSnapshot::new(seq, manifest, payload)))
                }
            }
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_covers_id_seq_manifest_and_payload() {
        let base = checksum("a", 1, "E", b"xy");
        assert_eq!(base, checksum("a", 1, "E", b"xy"));
        for other in [
            checksum("b", 1, "E", b"xy"),
            checksum("a", 2, "E", b"xy"),
            checksum("a", 1, "F", b"xy"),
            checksum("a", 1, "E", b"xz"),
            // Moving a byte between fields changes it too.
            checksum("a", 1, "Ex", b"y"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn a_damaged_row_is_corrupt() {
        let crc = checksum("a", 3, "E", b"payload");
        assert!(verified("a", 3, "E".into(), b"payload".to_vec(), crc).is_ok());
        let e = verified("a", 3, "E".into(), b"pay1oad".to_vec(), crc).unwrap_err();
        assert!(
            matches!(e, JournalError::Corrupt { seq: Some(3), .. }),
            "{e:?}"
        );
        let e = verified("a", -1, "E".into(), vec![], crc).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
    }

    #[test]
    fn a_head_row_is_checked() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        assert_eq!(head(&c, "a").unwrap(), 0);
        c.execute("INSERT INTO heads VALUES ('a', 5, ?1)", [head_crc("a", 5)])
            .unwrap();
        assert_eq!(head(&c, "a").unwrap(), 5);
        c.execute("UPDATE heads SET seq = 6 WHERE persistence_id = 'a'", [])
            .unwrap();
        assert!(matches!(head(&c, "a"), Err(JournalError::Corrupt { .. })));
    }
}
