//! The conformance suite for [`EventJournal`] implementations.
//!
//! Every journal casty ships runs it, and so should yours:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
//! use casty::testing::journal_suite;
//! use casty::InMemoryJournal;
//! use std::sync::Arc;
//!
//! journal_suite::run_all(|| Arc::new(InMemoryJournal::new())).await;
//! # }
//! ```
//!
//! Each case takes a fresh journal from the factory and panics with a message naming the case and
//! the rule it checks. The cases are public, so a failing one can be run alone.

use std::sync::Arc;

use crate::persistence::{EventJournal, JournalError, StoredEvent, StoredSnapshot};

fn ev(seq: u64, body: &str) -> StoredEvent {
    StoredEvent::new(seq, "suite.Event", body.as_bytes().to_vec())
}

fn bodies(events: &[StoredEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|e| (e.seq, String::from_utf8_lossy(&e.payload).into_owned()))
        .collect()
}

/// Runs every case, each on a fresh journal from `make`.
pub async fn run_all<F>(make: F)
where
    F: Fn() -> Arc<dyn EventJournal>,
{
    persist_then_load(&*make()).await;
    unknown_id_is_empty(&*make()).await;
    sequence_conflict_refuses_the_whole_batch(&*make()).await;
    misnumbered_batch_is_refused(&*make()).await;
    load_pages(&*make()).await;
    ids_are_independent(&*make()).await;
    snapshots_newest_wins(&*make()).await;
    delete_snapshots_before(&*make()).await;
    concurrent_writers_one_wins(make()).await;
    many_ids_in_parallel(make()).await;
    binary_payloads_round_trip(&*make()).await;
}

/// Events persisted are loaded back in order, with manifest and payload intact.
pub async fn persist_then_load(j: &dyn EventJournal) {
    let n = j.persist("a", vec![ev(1, "one"), ev(2, "two")], 0).await;
    assert_eq!(n, Ok(2), "persist_then_load: first batch");
    let n = j.persist("a", vec![ev(3, "three")], 2).await;
    assert_eq!(n, Ok(3), "persist_then_load: second batch");
    assert_eq!(
        j.highest_seq("a").await,
        Ok(3),
        "persist_then_load: highest_seq"
    );
    let all = j.load("a", 1, 100).await.expect("persist_then_load: load");
    assert_eq!(
        bodies(&all),
        vec![(1, "one".into()), (2, "two".into()), (3, "three".into())],
        "persist_then_load: events in order"
    );
    assert!(
        all.iter().all(|e| e.manifest == "suite.Event"),
        "persist_then_load: manifests kept"
    );
}

/// An id never written has no events, no snapshot and highest seq 0.
pub async fn unknown_id_is_empty(j: &dyn EventJournal) {
    assert_eq!(
        j.highest_seq("nobody").await,
        Ok(0),
        "unknown_id_is_empty: highest_seq"
    );
    assert_eq!(
        j.load("nobody", 1, 10).await,
        Ok(vec![]),
        "unknown_id_is_empty: load"
    );
    assert_eq!(
        j.load_snapshot("nobody").await,
        Ok(None),
        "unknown_id_is_empty: snapshot"
    );
}

/// A writer with a stale expected seq is refused, and none of its batch is written (single
/// writer and atomic batch, P1 and P2).
pub async fn sequence_conflict_refuses_the_whole_batch(j: &dyn EventJournal) {
    j.persist("a", vec![ev(1, "first")], 0)
        .await
        .expect("setup");
    let r = j.persist("a", vec![ev(1, "x"), ev(2, "y")], 0).await;
    assert!(
        matches!(
            r,
            Err(JournalError::SequenceConflict {
                expected: 0,
                actual: 1,
                ..
            })
        ),
        "sequence_conflict: a stale writer must get SequenceConflict, got {r:?}"
    );
    let r = j.persist("a", vec![ev(3, "z")], 2).await;
    assert!(
        matches!(
            r,
            Err(JournalError::SequenceConflict {
                expected: 2,
                actual: 1,
                ..
            })
        ),
        "sequence_conflict: a writer ahead of the log must be refused too, got {r:?}"
    );
    let all = j.load("a", 1, 100).await.expect("load");
    assert_eq!(
        bodies(&all),
        vec![(1, "first".into())],
        "sequence_conflict: nothing of a refused batch may be written"
    );
}

/// A batch must be numbered `expected_seq + 1, …`.
pub async fn misnumbered_batch_is_refused(j: &dyn EventJournal) {
    let r = j.persist("a", vec![ev(1, "x"), ev(3, "y")], 0).await;
    assert!(
        matches!(r, Err(JournalError::InvalidBatch { .. })),
        "misnumbered_batch: got {r:?}"
    );
    assert_eq!(
        j.highest_seq("a").await,
        Ok(0),
        "misnumbered_batch: nothing written"
    );
}

/// `load` honours `from_seq` and `max`, so recovery can page (P5).
pub async fn load_pages(j: &dyn EventJournal) {
    let batch: Vec<_> = (1..=25).map(|i| ev(i, &i.to_string())).collect();
    j.persist("a", batch, 0).await.expect("setup");
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let page = j.load("a", from, 10).await.expect("load_pages: load");
        assert!(page.len() <= 10, "load_pages: a page may not exceed max");
        let n = page.len();
        seen.extend(page.iter().map(|e| e.seq));
        if n < 10 {
            break;
        }
        from = seen.last().copied().unwrap_or(0) + 1;
    }
    assert_eq!(
        seen,
        (1..=25).collect::<Vec<_>>(),
        "load_pages: every event once, in order"
    );
    assert_eq!(
        j.load("a", 24, 100).await.map(|v| bodies(&v)),
        Ok(vec![(24, "24".into()), (25, "25".into())]),
        "load_pages: from_seq"
    );
    assert_eq!(
        j.load("a", 26, 100).await,
        Ok(vec![]),
        "load_pages: past the end"
    );
}

/// Persistence ids do not see each other's events or snapshots.
pub async fn ids_are_independent(j: &dyn EventJournal) {
    j.persist("a", vec![ev(1, "a1")], 0).await.expect("setup a");
    j.persist("b", vec![ev(1, "b1"), ev(2, "b2")], 0)
        .await
        .expect("setup b");
    j.save_snapshot("b", StoredSnapshot::new(2, "suite.State", b"b".to_vec()))
        .await
        .expect("snapshot b");
    assert_eq!(j.highest_seq("a").await, Ok(1), "ids_are_independent: a");
    assert_eq!(j.highest_seq("b").await, Ok(2), "ids_are_independent: b");
    assert_eq!(
        j.load("a", 1, 10).await.map(|v| bodies(&v)),
        Ok(vec![(1, "a1".into())]),
        "ids_are_independent: a's events"
    );
    assert_eq!(
        j.load_snapshot("a").await,
        Ok(None),
        "ids_are_independent: a's snapshot"
    );
}

/// `load_snapshot` returns the snapshot with the highest seq; saving at the same seq replaces.
pub async fn snapshots_newest_wins(j: &dyn EventJournal) {
    for (seq, body) in [(3, "s3"), (9, "s9"), (6, "s6"), (9, "s9-again")] {
        j.save_snapshot(
            "a",
            StoredSnapshot::new(seq, "suite.State", body.as_bytes().to_vec()),
        )
        .await
        .expect("save_snapshot");
    }
    let s = j
        .load_snapshot("a")
        .await
        .expect("load_snapshot")
        .expect("a snapshot");
    assert_eq!(
        (s.seq, &*s.manifest, s.payload.as_slice()),
        (9, "suite.State", b"s9-again".as_slice()),
        "snapshots_newest_wins"
    );
}

/// `delete_snapshots_before(seq)` deletes exactly the older ones.
pub async fn delete_snapshots_before(j: &dyn EventJournal) {
    for seq in [10, 20, 30] {
        j.save_snapshot(
            "a",
            StoredSnapshot::new(seq, "suite.State", vec![seq as u8]),
        )
        .await
        .expect("save_snapshot");
    }
    assert_eq!(
        j.delete_snapshots_before("a", 30).await,
        Ok(2),
        "delete_snapshots_before: count"
    );
    let s = j
        .load_snapshot("a")
        .await
        .expect("load")
        .expect("the newest is kept");
    assert_eq!(s.seq, 30, "delete_snapshots_before: the newest is kept");
    assert_eq!(
        j.delete_snapshots_before("a", 30).await,
        Ok(0),
        "delete_snapshots_before: idempotent"
    );
    assert_eq!(
        j.delete_snapshots_before("a", 31).await,
        Ok(1),
        "delete_snapshots_before: all"
    );
    assert_eq!(
        j.load_snapshot("a").await,
        Ok(None),
        "delete_snapshots_before: none left"
    );
}

/// Of many writers racing from the same expected seq, exactly one wins (single writer under
/// concurrency, P1).
pub async fn concurrent_writers_one_wins(j: Arc<dyn EventJournal>) {
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let j = j.clone();
            tokio::spawn(async move {
                j.persist(
                    "a",
                    vec![ev(1, &format!("w{w}")), ev(2, &format!("w{w}"))],
                    0,
                )
                .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("writer task") {
            Ok(2) => wins += 1,
            Err(JournalError::SequenceConflict { .. }) => {}
            other => panic!("concurrent_writers: unexpected result {other:?}"),
        }
    }
    assert_eq!(wins, 1, "concurrent_writers: exactly one writer may win");
    let all = j.load("a", 1, 10).await.expect("load");
    assert_eq!(
        all.len(),
        2,
        "concurrent_writers: one batch, not interleaved"
    );
    assert_eq!(
        all[0].payload, all[1].payload,
        "concurrent_writers: both events from the winner"
    );
}

/// Many ids written in parallel all end up complete.
pub async fn many_ids_in_parallel(j: Arc<dyn EventJournal>) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let j = j.clone();
            tokio::spawn(async move {
                let id = format!("p{i}");
                for seq in 1..=10 {
                    j.persist(&id, vec![ev(seq, &format!("{i}-{seq}"))], seq - 1)
                        .await?;
                }
                Ok::<_, JournalError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("many_ids_in_parallel: every write succeeds");
    }
    for i in 0..50 {
        let all = j.load(&format!("p{i}"), 1, 100).await.expect("load");
        let want: Vec<_> = (1..=10).map(|s| (s, format!("{i}-{s}"))).collect();
        assert_eq!(bodies(&all), want, "many_ids_in_parallel: p{i}");
    }
}

/// Payloads are bytes, not text: every byte value survives.
pub async fn binary_payloads_round_trip(j: &dyn EventJournal) {
    let payload: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    j.persist(
        "bin",
        vec![StoredEvent::new(1, "suite.Bin", payload.clone())],
        0,
    )
    .await
    .expect("persist");
    let back = j.load("bin", 1, 1).await.expect("load");
    assert_eq!(back[0].payload, payload, "binary_payloads_round_trip");
}
