//! The SQLite journal on disk: SIGKILL mid-stream loses nothing acknowledged (durability, P6), damaged and foreign files, read-only
//! files, and the WAL file.
//!
//! The SIGKILL test prints its steps (`step 2: SIGKILL the journal writer (pid 1234) ...`), so a
//! failing run's output shows how far it got.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use casty::testing::TestKit;
use casty::{
    EventJournal, JournalError, PersistenceFailed, PersistencePhase, SnapshotPolicy, SqliteJournal,
    StoredEvent,
};
use casty_tests::bank::{account, AccountCmd, AccountEvent, AccountState};
use casty_tests::{step, Steps, T};

/// Every event of `id`, checked: seqs are 1..=n with no gap or duplicate, and each event is the
/// deposit of its own seq (so a torn or misplaced row cannot pass).
async fn check_log(journal: &dyn EventJournal, id: &str) -> u64 {
    let mut next = 1u64;
    loop {
        let page = journal.load(id, next, 500).await.expect("load");
        let n = page.len();
        for e in page {
            assert_eq!(e.seq, next, "{id}: gap or duplicate");
            let ev: AccountEvent = ciborium::from_reader(e.payload.as_slice()).expect("decodes");
            assert_eq!(
                ev,
                AccountEvent::Deposited {
                    amount: next as i64
                },
                "{id} seq {next}"
            );
            next += 1;
        }
        if n < 500 {
            return next - 1;
        }
    }
}

/// Runs the `journal_writer` binary on `path` until it has acknowledged `kill_after` deposits,
/// SIGKILLs it, and returns the last acknowledged seq of each entity (printing its steps).
fn run_and_kill(
    steps: &Steps,
    path: &Path,
    entities: usize,
    kill_after: usize,
) -> HashMap<String, u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal_writer"))
        .arg(path)
        .arg(entities.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the writer");
    step!(
        steps,
        "start the journal writer as a process with {entities} entities (pid {}); wait for \
         {kill_after} acknowledged deposits",
        child.id()
    );
    let stdout = child.stdout.take().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = 0;
    while seen < kill_after {
        let line = lines.next().expect("the writer died early").unwrap();
        record(&mut acked, &line);
        seen += 1;
    }
    step!(
        steps,
        "SIGKILL the journal writer (pid {}) after {kill_after} acknowledgements",
        child.id()
    );
    child.kill().expect("SIGKILL");
    // Lines already in the pipe were acknowledged before the kill.
    for line in lines {
        match line {
            Ok(l) => record(&mut acked, &l),
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
    step!(
        steps,
        "the writer is gone ({status}); acknowledged before the kill: {:?}",
        {
            let mut last: Vec<_> = acked.iter().collect();
            last.sort();
            last
        }
    );
    assert!(!status.success(), "the writer was killed");
    acked
}

fn record(acked: &mut HashMap<String, u64>, line: &str) {
    let (id, seq) = line.split_once(' ').expect("`id seq`");
    let seq: u64 = seq.parse().expect("seq");
    if let Some(prev) = acked.insert(id.to_string(), seq) {
        assert_eq!(seq, prev + 1, "acks of {id} are printed in order");
    }
}

// Everything acknowledged before SIGKILL is in the file, nothing is torn or duplicated, and
// recovery succeeds (P6). Several kill points, and each run continues the previous file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let entities = 4;
    let steps = Steps::new();
    for kill_after in [1, 40, 250, 600] {
        let acked = run_and_kill(&steps, &path, entities, kill_after);
        step!(
            steps,
            "reopen the journal: expect every acknowledged deposit of each entity stored, with no \
             gap or duplicate, and each entity to recover the sum of its deposits"
        );
        let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).expect("reopen"));
        let kit = TestKit::new();
        for i in 0..entities {
            let id = format!("acc-{i}");
            let n = check_log(&*journal, &id).await;
            let printed = acked.get(&id).copied().unwrap_or(0);
            assert!(
                n >= printed,
                "{id}: {printed} acknowledged but only {n} stored"
            );
            let a = kit.spawn(
                account(&id, journal.clone(), SnapshotPolicy::every(50)),
                &format!("{id}-{kill_after}"),
            );
            let s: AccountState = kit
                .system()
                .ask(&a, AccountCmd::get_balance, T)
                .await
                .unwrap();
            let n = n as i64;
            assert_eq!(
                s,
                AccountState {
                    balance: n * (n + 1) / 2,
                    tx_count: n as u64
                }
            );
        }
        kit.shutdown().await;
    }
}

/// A journal file with many events, closed cleanly (so the WAL is folded into the file).
async fn populated(path: &Path) -> Vec<(String, Vec<StoredEvent>)> {
    let journal = SqliteJournal::open(path).unwrap();
    let mut all = Vec::new();
    for i in 0..8 {
        let id = format!("acc-{i}");
        let events: Vec<_> = (1..=300u64)
            .map(|s| {
                let mut p = Vec::new();
                ciborium::into_writer(&AccountEvent::Deposited { amount: s as i64 }, &mut p)
                    .unwrap();
                p.extend_from_slice(&[s as u8; 48]);
                StoredEvent::new(s, <AccountEvent as casty::Message>::manifest(), p)
            })
            .collect();
        journal.persist(&id, events.clone(), 0).await.unwrap();
        all.push((id, events));
    }
    drop(journal);
    assert!(
        !path.with_extension("db-wal").exists(),
        "a clean close folds the WAL in"
    );
    all
}

/// Opens a damaged copy: it must fail to open or to read, or read back exactly what was
/// written. Returns whether the damage was reported.
async fn open_damaged(path: &Path, expected: &[(String, Vec<StoredEvent>)]) -> bool {
    let journal = match SqliteJournal::open(path) {
        Err(e) => {
            assert!(
                matches!(e, JournalError::Corrupt { .. } | JournalError::Open { .. }),
                "{e:?}"
            );
            return true;
        }
        Ok(j) => j,
    };
    for (id, events) in expected {
        match journal.load(id, 1, 10_000).await {
            Err(e) => {
                assert!(matches!(e, JournalError::Corrupt { .. }), "{e:?}");
                return true;
            }
            Ok(back) => assert_eq!(&back, events, "{id}: a damaged file read back a wrong log"),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_an_error_never_a_wrong_state() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("orig.db");
    let expected = populated(&original).await;
    let len = std::fs::metadata(&original).unwrap().len();
    for keep in [len / 2, len * 9 / 10, 4096 + 10] {
        let path = dir.path().join(format!("t{keep}.db"));
        std::fs::copy(&original, &path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(keep)
            .unwrap();
        assert!(
            open_damaged(&path, &expected).await,
            "truncation to {keep} went unnoticed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_file_is_an_error_never_a_wrong_state() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("orig.db");
    let expected = populated(&original).await;
    let bytes = std::fs::read(&original).unwrap();
    let mut reported = 0;
    let offsets: Vec<usize> = (1..60)
        .map(|k| bytes.len() * k / 60)
        .chain([0, 50])
        .collect();
    for (n, at) in offsets.iter().enumerate() {
        let mut damaged = bytes.clone();
        for b in damaged.iter_mut().skip(*at).take(16) {
            *b ^= 0x5a;
        }
        let path = dir.path().join(format!("g{n}.db"));
        std::fs::write(&path, &damaged).unwrap();
        if open_damaged(&path, &expected).await {
            reported += 1;
        }
    }
    // Most of the file is event rows, so most damage must be reported (the rest hit free space).
    assert!(
        reported >= offsets.len() / 2,
        "only {reported} of {} reported",
        offsets.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_journals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 10_000]).unwrap();
    let e = SqliteJournal::open(&garbage).unwrap_err();
    assert!(matches!(e, JournalError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("not a database"), "{e}");

    let other = dir.path().join("other.db");
    foreign_sqlite(&other);
    let e = SqliteJournal::open(&other).unwrap_err();
    assert!(e.to_string().contains("not a casty journal"), "{e}");
}

/// A valid SQLite database that belongs to another application: a journal file whose header's
/// application id (offset 68) is rewritten, and which is put back in rollback-journal mode
/// (bytes 18 and 19), as most SQLite files are, so that switching it to WAL would change it.
fn foreign_sqlite(path: &Path) {
    let journal = SqliteJournal::open(path).unwrap();
    drop(journal);
    let mut bytes = std::fs::read(path).unwrap();
    bytes[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    bytes[18] = 1;
    bytes[19] = 1;
    std::fs::write(path, bytes).unwrap();
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn event(seq: u64) -> StoredEvent {
    let mut p = Vec::new();
    ciborium::into_writer(&AccountEvent::Deposited { amount: seq as i64 }, &mut p).unwrap();
    StoredEvent::new(seq, <AccountEvent as casty::Message>::manifest(), p)
}

// Only a missing file starts a new journal. A file that is there and is not a casty journal
// (empty, one byte, a cut-off header, garbage, another application's SQLite database, a journal
// cut short) is `Corrupt`, names the path, and is left byte for byte as it was, with no -wal or
// -shm file made next to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_journal_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one-byte", vec![0x53]),
        ("short-header", b"SQLite format 3\0".to_vec()),
        ("garbage", vec![0x42; 10_000]),
    ];
    let foreign = dir.path().join("foreign.src");
    foreign_sqlite(&foreign);
    cases.push(("foreign-sqlite", std::fs::read(&foreign).unwrap()));
    let journal = dir.path().join("journal.src");
    drop(SqliteJournal::open(&journal).unwrap());
    let full = std::fs::read(&journal).unwrap();
    cases.push(("journal-header-only", full[..100].to_vec()));
    for (name, bytes) in cases {
        let case = dir.path().join(name);
        std::fs::create_dir(&case).unwrap();
        let path = case.join("j.db");
        std::fs::write(&path, &bytes).unwrap();
        let e = SqliteJournal::open(&path).unwrap_err();
        assert!(matches!(e, JournalError::Corrupt { .. }), "{name}: {e:?}");
        assert!(
            e.to_string().contains(&path.display().to_string()),
            "{name}: {e}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: the file changed"
        );
        assert_eq!(names(&case), ["j.db"], "{name}: files were made next to it");
        // Read-only opening refuses it the same way.
        let e = SqliteJournal::open_read_only(&path).unwrap_err();
        assert!(matches!(e, JournalError::Corrupt { .. }), "{name}: {e:?}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: the file changed"
        );
    }
}

// A new journal is made whole before it appears at its path: after `open` on a missing file
// there is a complete journal and no temporary file; reopening it finds the same journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_becomes_a_complete_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let journal = SqliteJournal::open(&path).unwrap();
    journal.persist("a", vec![event(1)], 0).await.unwrap();
    drop(journal);
    assert_eq!(names(dir.path()), ["new.db"]);
    let journal = SqliteJournal::open(&path).unwrap();
    assert_eq!(journal.highest_seq("a").await, Ok(1));
}

// A WAL file without its database holds the newest events: a new journal must not start over
// it (SQLite would replay it into the new file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_file_without_its_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let wal = dir.path().join("j.db-wal");
    std::fs::write(&wal, [7u8; 64]).unwrap();
    let e = SqliteJournal::open(&path).unwrap_err();
    assert!(matches!(e, JournalError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("j.db-wal"), "{e}");
    assert_eq!(names(dir.path()), ["j.db-wal"]);
}

/// Sets or clears the read-only mark of `path` (the write bits, on Unix).
fn set_read_only(path: &Path, read_only: bool) {
    let mut p = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    p.set_readonly(read_only);
    std::fs::set_permissions(path, p).unwrap();
}

// A journal file marked read-only is refused at open, naming the path, whoever runs the test
// (root could write it, but the mark says it must not be written). The file is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_journal_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let journal = SqliteJournal::open(&path).unwrap();
    journal.persist("a", vec![event(1)], 0).await.unwrap();
    drop(journal);
    let before = std::fs::read(&path).unwrap();
    set_read_only(&path, true);
    let e = SqliteJournal::open(&path).unwrap_err();
    match &e {
        JournalError::Open { path: p, reason } => {
            assert_eq!(p, &path.display().to_string());
            assert!(reason.contains("read-only"), "{reason}");
            assert!(reason.contains("open_read_only"), "{reason}");
        }
        other => panic!("expected Open, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    set_read_only(&path, false);
    assert!(SqliteJournal::open(&path).is_ok());
}

// The same for a read-only directory, where SQLite would have to create the -wal and -shm files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_in_a_read_only_directory_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("j.db");
    drop(SqliteJournal::open(&path).unwrap());
    set_read_only(&sub, true);
    let existing = SqliteJournal::open(&path);
    let new = SqliteJournal::open(sub.join("new.db"));
    set_read_only(&sub, false);
    for e in [existing.unwrap_err(), new.unwrap_err()] {
        assert!(matches!(e, JournalError::Open { .. }), "{e:?}");
        assert!(e.to_string().contains(&sub.display().to_string()), "{e}");
    }
    assert_eq!(names(&sub), ["j.db"]);
}

// `open_read_only` recovers from a read-only file; entities read their state, and every write
// fails with the typed `ReadOnly` error, so an entity that tries one stops with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_journal_recovers_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let journal = SqliteJournal::open(&path).unwrap();
    journal
        .persist("acc", (1..=3).map(event).collect(), 0)
        .await
        .unwrap();
    drop(journal);
    let before = std::fs::read(&path).unwrap();
    set_read_only(&path, true);

    let journal = SqliteJournal::open_read_only(&path).unwrap();
    assert!(journal.is_read_only());
    let read_only = JournalError::ReadOnly {
        path: path.display().to_string(),
    };
    assert_eq!(
        journal.persist("acc", vec![event(4)], 3).await,
        Err(read_only.clone())
    );
    assert_eq!(
        journal
            .save_snapshot("acc", casty::StoredSnapshot::new(3, "S", vec![]))
            .await,
        Err(read_only.clone())
    );
    assert_eq!(journal.checkpoint().await, Err(read_only.clone()));

    let journal: Arc<dyn EventJournal> = Arc::new(journal);
    let kit = TestKit::new();
    let mut failures = kit.event_probe::<PersistenceFailed>();
    let a = kit.spawn(
        account("acc", journal.clone(), SnapshotPolicy::never()),
        "acc",
    );
    let s: AccountState = kit
        .system()
        .ask(&a, AccountCmd::get_balance, T)
        .await
        .unwrap();
    assert_eq!(
        s,
        AccountState {
            balance: 6,
            tx_count: 3
        }
    );
    a.tell(AccountCmd::Deposit { amount: 1 });
    let f = failures.expect_message(T).await;
    assert_eq!((f.phase, f.error), (PersistencePhase::Write, read_only));
    kit.shutdown().await;
    drop(journal);
    set_read_only(&path, false);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let missing = dir.path().join("missing.db");
    let e = SqliteJournal::open_read_only(&missing).unwrap_err();
    assert!(matches!(e, JournalError::Open { .. }), "{e:?}");
    assert!(!missing.exists());
}

// The -wal file is part of the database: until a checkpoint, the newest events are only there,
// and a copy of the main file alone is an older journal that opens without any error.
// `checkpoint()` moves them into the main file, so a copy of it alone is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_makes_the_main_file_a_complete_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let wal = dir.path().join("live.db-wal");
    let journal = SqliteJournal::open(&path).unwrap();
    journal
        .persist("acc", (1..=5).map(event).collect(), 0)
        .await
        .unwrap();
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);

    let without_wal = dir.path().join("without-wal.db");
    std::fs::copy(&path, &without_wal).unwrap();
    let copy = SqliteJournal::open(&without_wal).unwrap();
    assert_eq!(
        copy.highest_seq("acc").await,
        Ok(0),
        "the events were only in the WAL"
    );
    drop(copy);

    // ANCHOR: checkpoint
    journal.checkpoint().await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "the WAL is emptied"
    );
    // Until the next write, the main file alone is a complete journal.
    let backup = dir.path().join("backup.db");
    std::fs::copy(&path, &backup).unwrap();
    // ANCHOR_END: checkpoint
    let copy = SqliteJournal::open(&backup).unwrap();
    assert_eq!(
        copy.load("acc", 1, 100).await.unwrap(),
        (1..=5).map(event).collect::<Vec<_>>()
    );
    // The live journal goes on writing after a checkpoint.
    journal.persist("acc", vec![event(6)], 5).await.unwrap();
    assert_eq!(journal.highest_seq("acc").await, Ok(6));
}

// A copy made by SQLite's own backup (`sqlite3 live.db ".backup copy.db"`) may be in rollback-journal
// mode; it is still a casty journal, so it opens, with its events, and goes back to WAL mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_copy_in_rollback_mode_opens_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.db");
    let journal = SqliteJournal::open(&path).unwrap();
    journal.persist("acc", vec![event(1)], 0).await.unwrap();
    drop(journal);
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2), "a journal is in WAL mode");
    bytes[18] = 1;
    bytes[19] = 1;
    std::fs::write(&path, &bytes).unwrap();
    let journal = SqliteJournal::open(&path).unwrap();
    assert_eq!(journal.highest_seq("acc").await, Ok(1));
    drop(journal);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2));
}
