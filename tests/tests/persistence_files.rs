//! The SQLite journal on disk: SIGKILL mid-stream (P6), and damaged files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use casty::testing::TestKit;
use casty::{EventJournal, JournalError, SnapshotPolicy, SqliteJournal, StoredEvent};
use casty_tests::bank::{account, AccountCmd, AccountEvent, AccountState};
use casty_tests::T;

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

fn run_and_kill(path: &Path, entities: usize, kill_after: usize) -> HashMap<String, u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal_writer"))
        .arg(path)
        .arg(entities.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the writer");
    let stdout = child.stdout.take().unwrap();
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = 0;
    while seen < kill_after {
        let line = lines.next().expect("the writer died early").unwrap();
        record(&mut acked, &line);
        seen += 1;
    }
    child.kill().expect("SIGKILL");
    // Lines already in the pipe were acknowledged before the kill.
    for line in lines {
        match line {
            Ok(l) => record(&mut acked, &l),
            Err(_) => break,
        }
    }
    let status = child.wait().unwrap();
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

// P6: everything acknowledged before SIGKILL is in the file; nothing torn or duplicated;
// recovery succeeds. Several kill points, and each run continues the previous file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let entities = 4;
    for kill_after in [1, 40, 250, 600] {
        let acked = run_and_kill(&path, entities, kill_after);
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
/// application id (offset 68) is rewritten.
fn foreign_sqlite(path: &Path) {
    let journal = SqliteJournal::open(path).unwrap();
    drop(journal);
    let mut bytes = std::fs::read(path).unwrap();
    bytes[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}
