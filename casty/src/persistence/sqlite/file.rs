//! Opening a journal file: the schema, what is at the path before SQLite touches it, building a
//! new journal whole, the read-only checks, and the checks on an open connection.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{is_corruption, SqliteOptions};
use crate::persistence::journal::JournalError;

/// `PRAGMA application_id` of a casty journal ("CSTY").
const APPLICATION_ID: i64 = 0x4353_5459;
/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 1;

pub(super) const SCHEMA: &str = "
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

/// What [`inspect`] found at a journal's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// No file: a new journal may be created.
    Missing,
    /// A file whose header is a casty journal's (its contents are checked once open).
    Journal,
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The size of a SQLite database header.
const HEADER_LEN: usize = 100;

pub(super) fn open_error(path: &Path, reason: impl Into<String>) -> JournalError {
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

pub(super) fn sqlite_open_error(path: &Path, e: rusqlite::Error) -> JournalError {
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
pub(super) fn inspect(path: &Path) -> Result<Found, JournalError> {
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
pub(super) fn create(path: &Path) -> Result<(), JournalError> {
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
pub(super) fn check_writable(path: &Path) -> Result<(), JournalError> {
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
pub(super) fn prepare(
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
