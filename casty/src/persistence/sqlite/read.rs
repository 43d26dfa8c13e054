//! Reads: the pool of reading connections, and reading rows back with every check (the row's
//! checksum, the head row, and a log dense from `from_seq` up to its head).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{checksum, storage, to_i64};
use crate::persistence::journal::{JournalError, StoredEvent, StoredSnapshot};

pub(super) struct ReaderPool {
    pub(super) path: PathBuf,
    /// `SQLITE_OPEN_READ_WRITE` (with `query_only`) or `SQLITE_OPEN_READ_ONLY`.
    pub(super) flags: OpenFlags,
    pub(super) busy_timeout: Duration,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) permits: Semaphore,
}

impl ReaderPool {
    pub(super) fn take(&self) -> Result<Connection, JournalError> {
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

    pub(super) fn give(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }
}

pub(super) fn head_crc(id: &str, seq: u64) -> i64 {
    checksum(id, seq, "head", &[])
}

/// The highest seq of `id` from its head row (0 without one), checked against its CRC.
pub(super) fn head(conn: &Connection, id: &str) -> Result<u64, JournalError> {
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

pub(super) fn verified(
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

/// Up to `max` events of `id` from `from_seq`, each checked, and checked against the head: dense
/// from `from_seq`, and a short page ends at the head.
pub(super) fn events(
    conn: &Connection,
    id: &str,
    from_seq: u64,
    max: usize,
) -> Result<Vec<StoredEvent>, JournalError> {
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
        let (seq, manifest, payload) = verified(id, seq, manifest, payload, crc)?;
        if seq != next {
            return Err(lost(
                id,
                next,
                format!("found seq {seq} where {next} belongs"),
            ));
        }
        next += 1;
        out.push(StoredEvent::new(seq, manifest, payload));
    }
    drop(stmt);
    let head = head(conn, id)?;
    let last = next - 1;
    if out.len() < max && last < head && next <= head {
        return Err(lost(
            id,
            next,
            format!("the log ends at {last} but its head is {head}"),
        ));
    }
    if last > head && !out.is_empty() {
        return Err(lost(id, last, format!("events past the head ({head})")));
    }
    Ok(out)
}

/// The latest snapshot of `id`, checked.
pub(super) fn latest_snapshot(
    conn: &Connection,
    id: &str,
) -> Result<Option<StoredSnapshot>, JournalError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, manifest, payload, crc FROM snapshots \
             WHERE persistence_id = ?1 ORDER BY seq DESC LIMIT 1",
        )
        .map_err(storage)?;
    let mut rows = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(storage)?;
    match rows.next() {
        None => Ok(None),
        Some(row) => {
            let (seq, manifest, payload, crc) = row.map_err(storage)?;
            let (seq, manifest, payload) = verified(id, seq, manifest, payload, crc)?;
            Ok(Some(StoredSnapshot::new(seq, manifest, payload)))
        }
    }
}
