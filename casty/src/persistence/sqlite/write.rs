//! The writer thread: group commit of queued write requests, each under its own savepoint, and
//! checkpoints between transactions.

use std::sync::mpsc;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use super::read::{head, head_crc};
use super::{checksum, storage, to_i64};
use crate::persistence::journal::{JournalError, StoredEvent, StoredSnapshot};

type Reply = oneshot::Sender<Result<u64, JournalError>>;

pub(super) enum WriteOp {
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

pub(super) struct Request {
    pub(super) op: WriteOp,
    pub(super) reply: Reply,
}

pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Request>, max_batch: usize) {
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
