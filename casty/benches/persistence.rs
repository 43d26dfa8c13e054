//! Event-sourcing benchmarks, each beside a baseline measured in the same run:
//!
//! - E1 in-memory journal: one entity, sequential commands, each persisting one event; compared
//!   with W1 (plain tell to one actor) of the same run, target >= W1 / 10.
//! - E2 SQLite, 1 entity in sequence: every command waits for its own durable commit; baseline:
//!   raw rusqlite, one transaction per row, same pragmas.
//! - E3 SQLite, 1,000 entities in parallel: group commit; target >= 50,000 events/s; baseline: raw
//!   rusqlite inserting the same rows 1,000 per transaction.
//! - E4/E5 recovery of 100,000 events, without a snapshot and with one every 1,000; baseline: raw
//!   rusqlite reading and CBOR-decoding the same rows.
//!
//! Run: `cargo bench -p casty --bench persistence` (filter with e.g. `E3`).

#[allow(dead_code)] // the W3 programs are for the other benches
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use casty::future::BoxFuture;
use casty::{
    ActorContext, ActorRef, ActorSystem, Behavior, Behaviors, EventJournal, EventSourcedCommand,
    InMemoryJournal, Message, SnapshotPolicy, SqliteJournal, StoredEvent, StoredSnapshot,
};
use common::{env_usize, hand_sink, median, runtime, w1_casty, w1_tokio, wanted};
use serde::{Deserialize, Serialize};

#[derive(Debug)]
enum Cmd {
    Add(u64),
    Get(ActorRef<Total>),
}
impl Message for Cmd {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Added(u64);
impl Message for Added {}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Total {
    sum: u64,
    count: u64,
}

impl EventSourcedCommand for Cmd {
    type Event = Added;
    type State = Total;
}

fn on_event(s: &Total, e: &Added) -> Total {
    Total {
        sum: s.sum + e.0,
        count: s.count + 1,
    }
}

fn on_command<'a>(
    _ctx: &'a mut ActorContext<Cmd>,
    s: &'a Total,
    cmd: Cmd,
) -> BoxFuture<'a, Behavior<Cmd>> {
    Box::pin(async move {
        match cmd {
            Cmd::Add(n) => Behaviors::persisted([Added(n)]),
            Cmd::Get(r) => {
                r.tell(*s);
                Behaviors::same()
            }
        }
    })
}

fn entity(
    id: &str,
    journal: Arc<dyn EventJournal>,
    policy: SnapshotPolicy<Total, Added>,
) -> Behavior<Cmd> {
    Behaviors::event_sourced(id, journal, Total::default(), on_event, on_command)
        .snapshot_policy(policy)
        .into()
}

const T: Duration = Duration::from_secs(600);

fn report(name: &str, unit: &str, casty: f64, base: f64, base_name: &str, target: &str) {
    println!(
        "{name:<40} casty {casty:>10.3} {unit:<10} | {base_name} {base:>10.3} {unit:<10} | ratio {:.2} (target {target})",
        casty / base
    );
}

fn runs(f: impl FnMut() -> f64) -> f64 {
    median(
        (0..env_usize("CASTY_BENCH_RUNS", 3))
            .map({
                let mut f = f;
                move |_| f()
            })
            .collect(),
    )
}

// ---------------------------------------------------------------- E1

const E1_N: u64 = 500_000;

fn e1_memory(rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
        let a = system
            .spawn(entity("e1", journal, SnapshotPolicy::never()), "e1")
            .unwrap();
        let t = Instant::now();
        for i in 0..E1_N {
            a.tell(Cmd::Add(i));
        }
        let total: Total = system.ask(&a, Cmd::Get, T).await.unwrap();
        assert_eq!(total.count, E1_N);
        let r = E1_N as f64 / t.elapsed().as_secs_f64() / 1e6;
        system.shutdown().await;
        r
    })
}

// ---------------------------------------------------------------- E2 / E3

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).unwrap();
    b
}

fn raw_db(path: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    c.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE events (persistence_id TEXT NOT NULL, seq INTEGER NOT NULL, manifest TEXT NOT NULL,
           payload BLOB NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY (persistence_id, seq)) WITHOUT ROWID;",
    )
    .unwrap();
    c
}

/// Raw rusqlite: `n` rows for `ids` ids, `per_tx` rows per transaction. Rows per second.
fn raw_inserts(ids: usize, n: usize, per_tx: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = raw_db(&dir.path().join("raw.db"));
    let payload = cbor(&Added(7));
    let t = Instant::now();
    let mut written = 0usize;
    let mut seq = 0i64;
    while written < n {
        seq += 1;
        let tx = c.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO events VALUES (?1, ?2, 'Added', ?3, 0)")
                .unwrap();
            for _ in 0..per_tx.min(n - written) {
                let id = format!("e-{}", written % ids);
                let s = seq + (written / ids) as i64;
                stmt.execute(rusqlite::params![id, s, payload]).unwrap();
                written += 1;
            }
        }
        tx.commit().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// `entities` entities each persist `each` events on a fresh SQLite journal. Events per second.
fn sqlite_writes(rt: &tokio::runtime::Runtime, entities: usize, each: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn EventJournal> =
        Arc::new(SqliteJournal::open(dir.path().join("e.db")).unwrap());
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let refs: Vec<_> = (0..entities)
            .map(|i| {
                let id = format!("e-{i}");
                system
                    .spawn(entity(&id, journal.clone(), SnapshotPolicy::never()), &id)
                    .unwrap()
            })
            .collect();
        // Recovery first, so that only writes are timed.
        for a in &refs {
            let _: Total = system.ask(a, Cmd::Get, T).await.unwrap();
        }
        let t = Instant::now();
        for i in 0..each {
            for a in &refs {
                a.tell(Cmd::Add(i));
            }
        }
        for a in &refs {
            let total: Total = system.ask(a, Cmd::Get, T).await.unwrap();
            assert_eq!(total.count, each);
        }
        let r = (entities as u64 * each) as f64 / t.elapsed().as_secs_f64();
        system.shutdown().await;
        r
    })
}

// ---------------------------------------------------------------- E4 / E5

const E4_N: u64 = 100_000;

/// A journal file with `E4_N` events of one id, and with a snapshot every 1,000 if `snapshots`.
fn recovery_file(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    snapshots: bool,
) -> std::path::PathBuf {
    let path = dir.join(if snapshots { "snap.db" } else { "plain.db" });
    let journal = SqliteJournal::open(&path).unwrap();
    rt.block_on(async {
        let mut state = Total::default();
        for chunk in 0..E4_N / 1000 {
            let events: Vec<_> = (1..=1000)
                .map(|i| {
                    let seq = chunk * 1000 + i;
                    state = on_event(&state, &Added(seq));
                    StoredEvent::new(seq, Added::manifest(), cbor(&Added(seq)))
                })
                .collect();
            journal.persist("r", events, chunk * 1000).await.unwrap();
            if snapshots {
                let seq = (chunk + 1) * 1000;
                journal
                    .save_snapshot(
                        "r",
                        StoredSnapshot::new(seq, Cmd::state_manifest(), cbor(&state)),
                    )
                    .await
                    .unwrap();
            }
        }
    });
    path
}

/// Spawn → first reply on a reopened journal, in milliseconds.
fn recover(rt: &tokio::runtime::Runtime, path: &std::path::Path) -> f64 {
    let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(path).unwrap());
    rt.block_on(async {
        let system = ActorSystem::new("bench");
        let t = Instant::now();
        let a = system
            .spawn(entity("r", journal, SnapshotPolicy::never()), "r")
            .unwrap();
        let total: Total = system.ask(&a, Cmd::Get, T).await.unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(total.count, E4_N);
        system.shutdown().await;
        ms
    })
}

/// Raw rusqlite: read every row of the id in seq order, decode and fold. Milliseconds.
fn raw_replay(path: &std::path::Path) -> f64 {
    let c = rusqlite::Connection::open(path).unwrap();
    let t = Instant::now();
    let mut stmt = c
        .prepare("SELECT payload FROM events WHERE persistence_id = 'r' ORDER BY seq")
        .unwrap();
    let mut state = Total::default();
    let mut rows = stmt.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let bytes: Vec<u8> = row.get(0).unwrap();
        let e: Added = ciborium::from_reader(bytes.as_slice()).unwrap();
        state = on_event(&state, &e);
    }
    assert_eq!(state.count, E4_N);
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let want = wanted();
    let workers = env_usize("CASTY_BENCH_WORKERS", 2);
    let rt = runtime(workers);
    println!(
        "casty persistence benchmarks: {workers} worker threads, median of {} runs, SQLite synchronous=FULL",
        env_usize("CASTY_BENCH_RUNS", 3)
    );
    if want("E1") {
        let tokio = runs(|| w1_tokio(&rt));
        let w1 = runs(|| w1_casty(&rt, hand_sink));
        let e1 = runs(|| e1_memory(&rt));
        println!("  (W1 this run: casty {w1:.2} M msg/s, raw tokio {tokio:.2} M msg/s)");
        report(
            "E1 in-memory, 1 entity, 500k events",
            "M ev/s",
            e1,
            w1 / 10.0,
            "W1/10",
            ">= 1.0",
        );
    }
    if want("E2") {
        let n = env_usize("CASTY_BENCH_E2_N", 2000);
        let raw = runs(|| raw_inserts(1, n, 1));
        let c = runs(|| sqlite_writes(&rt, 1, n as u64));
        report(
            "E2 SQLite, 1 entity sequential",
            "ev/s",
            c,
            raw,
            "raw 1/tx",
            "-",
        );
    }
    if want("E3") {
        let raw = runs(|| raw_inserts(1000, 100_000, 1000));
        let c = runs(|| sqlite_writes(&rt, 1000, 100));
        report(
            "E3 SQLite, 1000 entities parallel",
            "ev/s",
            c,
            raw,
            "raw 1000/tx",
            "casty >= 50000",
        );
    }
    if want("E4") || want("E5") {
        let dir = tempfile::tempdir().unwrap();
        let plain = recovery_file(&rt, dir.path(), false);
        let snap = recovery_file(&rt, dir.path(), true);
        let raw = runs(|| raw_replay(&plain));
        let c = runs(|| recover(&rt, &plain));
        report(
            "E4 recovery 100k events, no snapshot",
            "ms",
            c,
            raw,
            "raw read",
            "-",
        );
        let s = runs(|| recover(&rt, &snap));
        report(
            "E5 recovery 100k events, snap/1000",
            "ms",
            s,
            raw,
            "raw read",
            "-",
        );
    }
}
