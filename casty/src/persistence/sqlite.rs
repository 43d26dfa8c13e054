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
    /// Not run in a batch: a checkpoint cannot run inside a transaction.
    Checkpoint,
}

struct Request {
    op: WriteOp,
    reply: Reply,
}

struct ReaderPool {
    path: PathBuf,
    /// `SQLITE_OPEN_READ_WRITE` (with `query_only`) or `SQLITE_OPEN_READ_ONLY`.
    flags: OpenFlags,
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

/// What [`inspect`] found at a journal's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No file: a new journal may be created.
    Missing,
    /// A file whose header is a casty journal's (its contents are checked once open).
    Journal,
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The size of a SQLite database header.
const HEADER_LEN: usize = 100;

fn open_error(path: &Path, reason: impl Into<String>) -> JournalError {
    JournalError::Open {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn corrupt_file(path: &Path, reason: impl fmt::Display) -> JournalError {
    JournalError::Corrupt {
        persistence_id: None,
        seq: None,
        reason: format!("{}: {reason}", path.display()),
    }
}

fn sqlite_open_error(path: &Path, e: rusqlite::Error) -> JournalError {
    if is_corruption(&e) {
        corrupt_file(path, e)
    } else {
        open_error(path, e.to_string())
    }
}

/// The file next to a database that SQLite names `<path><suffix>` (`-wal`, `-shm`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Looks at the file at `path` without letting SQLite touch it: nothing there, or a file whose
/// 100-byte header is a SQLite database's with casty's `application_id`. Anything else is
/// [`JournalError::Corrupt`], and the file is left as it is.
fn inspect(path: &Path) -> Result<Found, JournalError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A WAL without its database would be replayed into the new file: refuse it.
            let wal = side_file(path, "-wal");
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                return Err(corrupt_file(
                    path,
                    format!(
                        "the database file is missing but its WAL file {} is there; restore \
                         the database file, or remove the WAL file to start a new journal",
                        wal.display()
                    ),
                ));
            }
            return Ok(Found::Missing);
        }
        Err(e) => return Err(open_error(path, e.to_string())),
    };
    let meta = file
        .metadata()
        .map_err(|e| open_error(path, e.to_string()))?;
    if meta.is_dir() {
        return Err(open_error(path, "it is a directory"));
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, HEADER_LEN as u64),
        &mut header,
    )
    .map_err(|e| open_error(path, e.to_string()))?;
    if header.len() < HEADER_LEN {
        return Err(corrupt_file(
            path,
            format!(
                "not a casty journal: the file has {} bytes, fewer than a SQLite header \
                 (a casty journal is never empty); it was left untouched",
                meta.len()
            ),
        ));
    }
    if &header[..16] != SQLITE_MAGIC {
        return Err(corrupt_file(
            path,
            "not a casty journal: the file is not a database (no SQLite header); it was left \
             untouched",
        ));
    }
    let app = u32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    if i64::from(app) != APPLICATION_ID {
        return Err(corrupt_file(
            path,
            format!(
                "the file is a SQLite database but not a casty journal (application_id \
                 {app:#010x}); it was left untouched"
            ),
        ));
    }
    Ok(Found::Journal)
}

/// Creates a complete, empty journal at `path`, which must not exist: the schema is written in
/// a temporary file in the same directory, synced, and then hard-linked to `path` (which fails
/// rather than replace a file created meanwhile). A crash leaves at most a stray temporary file,
/// never a half-made journal at `path`.
fn create(path: &Path) -> Result<(), JournalError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| open_error(path, "the path has no file name"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".creating-{}-{nanos}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let cleanup = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(side_file(tmp, suffix));
        }
    };
    let made = (|| -> Result<(), String> {
        let fail = |e: rusqlite::Error| e.to_string();
        let conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; BEGIN IMMEDIATE; \
             PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; {SCHEMA} COMMIT;"
        ))
        .map_err(fail)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!(
                "cannot switch to WAL mode (journal_mode is {mode})"
            ));
        }
        conn.close().map_err(|(_, e)| fail(e))
    })();
    if let Err(e) = made {
        cleanup(&tmp);
        return Err(open_error(
            path,
            format!("cannot create a new journal: {e}"),
        ));
    }
    let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
    if let Err(e) = synced {
        cleanup(&tmp);
        return Err(open_error(
            path,
            format!("cannot create a new journal: {e}"),
        ));
    }
    let linked = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        // Someone created the file meanwhile: the caller checks what it is.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: rename, unless a file appeared meanwhile.
        Err(_) if !path.exists() => std::fs::rename(&tmp, path),
        Err(e) => Err(e),
    };
    cleanup(&tmp);
    linked.map_err(|e| open_error(path, format!("cannot create a new journal: {e}")))?;
    // Make the new directory entry durable too.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Refuses a journal that is marked read-only, by its permission bits rather than by trying to
/// write (which root would get away with): the file, its `-wal` and `-shm` files, or its
/// directory, where SQLite must create the `-wal` and `-shm` files.
fn check_writable(path: &Path) -> Result<(), JournalError> {
    let read_only = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().readonly());
    let hint = "use SqliteJournal::open_read_only to recover from it without writing";
    for suffix in ["", "-wal", "-shm"] {
        let file = side_file(path, suffix);
        if read_only(&file) {
            return Err(open_error(
                path,
                format!("{} is read-only; {hint}", file.display()),
            ));
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if read_only(dir) {
        return Err(open_error(
            path,
            format!(
                "its directory {} is read-only, and a journal in WAL mode creates its -wal and \
                 -shm files there; {hint}",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Checks an open connection: a casty journal of this schema version (checked before anything
/// could write), in WAL mode if `writable`, and (with `check_on_open`) structurally sound.
fn prepare(
    conn: &Connection,
    path: &Path,
    options: &SqliteOptions,
    writable: bool,
) -> Result<(), JournalError> {
    let err = |e| sqlite_open_error(path, e);
    conn.busy_timeout(options.busy_timeout).map_err(err)?;
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    if app != APPLICATION_ID {
        return Err(corrupt_file(
            path,
            format!("the file is a SQLite database but not a casty journal (application_id {app:#010x})"),
        ));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if version != SCHEMA_VERSION {
        return Err(open_error(
            path,
            format!("journal schema version {version}; this casty reads version {SCHEMA_VERSION}"),
        ));
    }
    if writable {
        // A journal copied by SQLite's backup may be in rollback mode: it is a casty journal
        // (checked above), so switching it back to WAL is ours to do.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(open_error(
                path,
                format!("cannot switch to WAL mode (journal_mode is {mode})"),
            ));
        }
    }
    if options.check_on_open {
        let mut stmt = conn.prepare("PRAGMA quick_check").map_err(err)?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        if problems.iter().any(|p| p != "ok") {
            return Err(corrupt_file(
                path,
                format!("failed its integrity check: {}", problems.join("; ")),
            ));
        }
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('events', 'heads', 'snapshots')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if tables != 3 {
        return Err(corrupt_file(
            path,
            format!("a casty journal with {tables} of its 3 tables"),
        ));
    }
    Ok(())
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

impl ReaderPool {
    fn take(&self) -> Result<Connection, JournalError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            self.flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
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
    let mut next: Option<Request> = None;
    loop {
        let first = match next.take() {
            Some(r) => r,
            None => match rx.recv() {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        if matches!(first.op, WriteOp::Checkpoint) {
            let _ = first.reply.send(checkpoint(&conn));
            continue;
        }
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                // A checkpoint runs after the writes queued before it, outside their transaction.
                Ok(r) if matches!(r.op, WriteOp::Checkpoint) => {
                    next = Some(r);
                    break;
                }
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch);
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on the writing connection, between transactions.
fn checkpoint(conn: &Connection) -> Result<u64, JournalError> {
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(storage)?;
    if busy != 0 {
        return Err(JournalError::Storage(format!(
            "the checkpoint could not finish ({done} of {log} WAL frames copied): another \
             connection is using the file; try again"
        )));
    }
    Ok(u64::try_from(done).unwrap_or(0))
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
        WriteOp::Checkpoint => checkpoint(conn),
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
