//! Event sourcing on both journals: recovery, snapshots, the stash, journal failures and the single
//! writer (rules P1–P6 in the guide's "Semantics and performance" chapter).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casty::testing::{journal_suite, FailingJournal, TestKit};
use casty::{
    ActorRestarted, ActorSystem, Behaviors, Directive, EventJournal, InMemoryJournal, JournalError,
    PersistenceFailed, PersistencePhase, RecoveryCompleted, SnapshotPolicy, SqliteJournal,
    StoredEvent, SupervisorStrategy,
};
use casty_tests::bank::{account, counted_account, AccountCmd, AccountEvent, AccountState};
use casty_tests::{QUIET, T};

fn state(balance: i64, tx_count: u64) -> AccountState {
    AccountState { balance, tx_count }
}

fn memory() -> Arc<dyn EventJournal> {
    Arc::new(InMemoryJournal::new())
}

async fn balance(kit: &TestKit, a: &casty::ActorRef<AccountCmd>) -> AccountState {
    kit.system()
        .ask(a, AccountCmd::get_balance, T)
        .await
        .expect("the account answers")
}

// ---------------------------------------------------------------- conformance

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_suite_in_memory() {
    journal_suite::run_all(memory).await;
}

// ANCHOR: suite
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_suite_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    journal_suite::run_all(|| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Arc::new(SqliteJournal::open(dir.path().join(format!("j{i}.db"))).unwrap())
    })
    .await;
}
// ANCHOR_END: suite

// ---------------------------------------------------------------- recovery

// The two phases of the Casty (Python) example: 1500 and 2 transactions, then the same from a new
// system on the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phase_recovery_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    {
        let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
        let kit = TestKit::new();
        let a = kit.spawn(
            account("acc-001", journal, SnapshotPolicy::every(100)),
            "account",
        );
        a.tell(AccountCmd::Deposit { amount: 1000 });
        a.tell(AccountCmd::Deposit { amount: 500 });
        assert_eq!(balance(&kit, &a).await, state(1500, 2));
        kit.shutdown().await;
    }
    let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
    assert_eq!(journal.highest_seq("acc-001").await, Ok(2));
    let kit = TestKit::new();
    let a = kit.spawn(
        account("acc-001", journal, SnapshotPolicy::every(100)),
        "account",
    );
    assert_eq!(balance(&kit, &a).await, state(1500, 2));
    kit.shutdown().await;
}

// With a snapshot every 3 events, recovery starts from the newest snapshot and replays only the
// newer events (P5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_replay_only_newer_events() {
    let journal = memory();
    let kit = TestKit::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let a = kit.spawn(counted_account("c", journal.clone(), calls.clone()), "c1");
    for _ in 0..3 {
        let s: AccountState = kit
            .system()
            .ask(
                &a,
                |r| AccountCmd::DepositAck {
                    amount: 1,
                    reply_to: r,
                },
                T,
            )
            .await
            .unwrap();
        assert!(s.tx_count <= 3);
    }
    let snap = journal
        .load_snapshot("c")
        .await
        .unwrap()
        .expect("a snapshot at seq 3");
    assert_eq!(snap.seq, 3);
    let snap_state: AccountState = ciborium::from_reader(snap.payload.as_slice()).unwrap();
    assert_eq!(snap_state, state(3, 3));
    a.tell(AccountCmd::Deposit { amount: 1 });
    a.tell(AccountCmd::Deposit { amount: 1 });
    assert_eq!(balance(&kit, &a).await, state(5, 5));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "one on_event call per live event"
    );
    kit.system().stop(&a);
    let mut recovered = kit.event_probe::<RecoveryCompleted>();

    let calls2 = Arc::new(AtomicUsize::new(0));
    let b = kit.spawn(counted_account("c", journal.clone(), calls2.clone()), "c2");
    let done = recovered.expect_message(T).await;
    assert_eq!(
        (done.seq, done.snapshot_seq, done.replayed),
        (5, Some(3), 2)
    );
    assert_eq!(balance(&kit, &b).await, state(5, 5));
    assert_eq!(
        calls2.load(Ordering::SeqCst),
        2,
        "recovery replays only seq 4 and 5"
    );
    kit.shutdown().await;
}

// keep_last(2): older snapshots are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_last_deletes_older_snapshots() {
    let journal = memory();
    let kit = TestKit::new();
    let a = kit.spawn(
        account("k", journal.clone(), SnapshotPolicy::every(2).keep_last(2)),
        "k",
    );
    for _ in 0..10 {
        a.tell(AccountCmd::Deposit { amount: 1 });
    }
    assert_eq!(balance(&kit, &a).await, state(10, 10));
    assert_eq!(
        journal.load_snapshot("k").await.unwrap().map(|s| s.seq),
        Some(10)
    );
    // Only 8 and 10 are left: one snapshot below 9, none below 8.
    assert_eq!(journal.delete_snapshots_before("k", 8).await, Ok(0));
    assert_eq!(journal.delete_snapshots_before("k", 9).await, Ok(1));
    kit.shutdown().await;
}

// A predicate policy: snapshot whenever a withdrawal is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicate_policy_snapshots_on_matching_events() {
    let journal = memory();
    let kit = TestKit::new();
    let policy = SnapshotPolicy::predicate(|_s: &AccountState, e: &AccountEvent, _seq| {
        matches!(e, AccountEvent::Withdrawn { .. })
    });
    let a = kit.spawn(account("p", journal.clone(), policy), "p");
    a.tell(AccountCmd::Deposit { amount: 10 });
    a.tell(AccountCmd::Deposit { amount: 10 });
    assert_eq!(balance(&kit, &a).await, state(20, 2));
    assert_eq!(journal.load_snapshot("p").await, Ok(None));
    let ok: String = kit
        .system()
        .ask(
            &a,
            |r| AccountCmd::Withdraw {
                amount: 5,
                reply_to: r,
            },
            T,
        )
        .await
        .unwrap();
    assert_eq!(ok, "ok");
    assert_eq!(
        journal.load_snapshot("p").await.unwrap().map(|s| s.seq),
        Some(3)
    );
    kit.shutdown().await;
}

// ---------------------------------------------------------------- stash (P3)

// Commands that arrive during a write wait, and are then handled in arrival order (P3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_during_a_write_are_handled_afterwards_in_order() {
    let journal = Arc::new(FailingJournal::new());
    journal.writes().hold();
    let kit = TestKit::new();
    let mut states = kit.probe::<AccountState>();
    let mut words = kit.probe::<String>();
    let a = kit.spawn(account("s", journal.clone(), SnapshotPolicy::never()), "s");
    a.tell(AccountCmd::DepositAck {
        amount: 100,
        reply_to: states.actor_ref(),
    });
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    a.tell(AccountCmd::Withdraw {
        amount: 30,
        reply_to: words.actor_ref(),
    });
    a.tell(AccountCmd::Withdraw {
        amount: 500,
        reply_to: words.actor_ref(),
    });
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    // The first write is held: nothing after it may be handled, not even a read.
    states.expect_no_message(QUIET).await;
    words.expect_no_message(Duration::ZERO).await;
    journal.writes().release(1);
    assert_eq!(
        states.expect_message(T).await,
        state(100, 1),
        "the ack of the write"
    );
    assert_eq!(
        states.expect_message(T).await,
        state(100, 1),
        "then the stashed read"
    );
    // The withdrawal's write is held in turn.
    words.expect_no_message(QUIET).await;
    journal.writes().release(1);
    assert_eq!(words.expect_message(T).await, "ok");
    assert_eq!(
        words.expect_message(T).await,
        "insufficient funds (balance=70)"
    );
    assert_eq!(states.expect_message(T).await, state(70, 2));
    kit.shutdown().await;
}

// The stash is the mailbox, so it is bounded by the mailbox; overflow is a dead letter (P3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stash_is_bounded_and_overflow_is_a_dead_letter() {
    let journal = Arc::new(FailingJournal::new());
    journal.writes().hold();
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<casty::DeadLetter>();
    let mut states = kit.probe::<AccountState>();
    let a = kit.spawn_with(
        account("b", journal.clone(), SnapshotPolicy::never()),
        "b",
        casty::SpawnOptions::default()
            .mailbox(casty::Mailbox::bounded(2, casty::Overflow::DropNew)),
    );
    a.tell(AccountCmd::DepositAck {
        amount: 1,
        reply_to: states.actor_ref(),
    });
    // Once the first command is in its write, the mailbox holds only what follows.
    tokio::time::timeout(T, journal.writes().wait_for_arrivals(1))
        .await
        .unwrap();
    for amount in 2..=5 {
        a.tell(AccountCmd::DepositAck {
            amount,
            reply_to: states.actor_ref(),
        });
    }
    let d1 = dead.expect_message(T).await;
    let d2 = dead.expect_message(T).await;
    assert_eq!(&d1.recipient, a.path());
    assert!(
        d1.message.contains("amount: 4") && d2.message.contains("amount: 5"),
        "{d1:?} {d2:?}"
    );
    journal.writes().open();
    assert_eq!(states.expect_message(T).await.balance, 1);
    assert_eq!(states.expect_message(T).await.balance, 3);
    assert_eq!(states.expect_message(T).await.balance, 6);
    states.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// Commands that arrive during recovery are handled after it, against the recovered state (P3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_during_recovery_are_handled_afterwards_in_order() {
    let journal = Arc::new(FailingJournal::new());
    journal.reads().hold();
    journal
        .inner()
        .persist(
            "r",
            vec![StoredEvent::new(
                1,
                <AccountEvent as casty::Message>::manifest(),
                cbor(&AccountEvent::Deposited { amount: 40 }),
            )],
            0,
        )
        .await
        .unwrap();
    let kit = TestKit::new();
    let mut states = kit.probe::<AccountState>();
    let a = kit.spawn(account("r", journal.clone(), SnapshotPolicy::never()), "r");
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    a.tell(AccountCmd::DepositAck {
        amount: 2,
        reply_to: states.actor_ref(),
    });
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    states.expect_no_message(QUIET).await;
    journal.reads().open();
    assert_eq!(states.expect_message(T).await, state(40, 1));
    assert_eq!(states.expect_message(T).await, state(42, 2));
    assert_eq!(states.expect_message(T).await, state(42, 2));
    kit.shutdown().await;
}

fn cbor<T: casty::__private::serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).unwrap();
    b
}

// ---------------------------------------------------------------- failures (P4, P1)

// A failed write stops the entity, publishes why, and sends no reply (P4).
// ANCHOR: failing_write
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_stops_the_entity_without_reply() {
    let journal = Arc::new(FailingJournal::new());
    let kit = TestKit::new();
    let mut failures = kit.event_probe::<PersistenceFailed>();
    let mut states = kit.probe::<AccountState>();
    let mut watcher = kit.probe::<()>();
    let a = kit.spawn(account("f", journal.clone(), SnapshotPolicy::never()), "f");
    a.tell(AccountCmd::DepositAck {
        amount: 5,
        reply_to: states.actor_ref(),
    });
    assert_eq!(states.expect_message(T).await, state(5, 1));
    watcher.watch(&a);
    journal
        .writes()
        .fail_with(JournalError::Storage("disk on fire".into()));
    a.tell(AccountCmd::DepositAck {
        amount: 7,
        reply_to: states.actor_ref(),
    });
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    let f = failures.expect_message(T).await;
    assert_eq!(
        (f.persistence_id.as_str(), f.phase),
        ("f", PersistencePhase::Write)
    );
    assert_eq!(f.error, JournalError::Storage("disk on fire".into()));
    assert_eq!(&f.path, a.path());
    watcher.expect_terminated(&a, T).await;
    states.expect_no_message(QUIET).await;
    assert_eq!(journal.inner().highest_seq("f").await, Ok(1));
    kit.shutdown().await;
}
// ANCHOR_END: failing_write

// A failed recovery stops the entity and an event says why (P4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_recovery_stops_the_entity_with_an_event() {
    let journal = Arc::new(FailingJournal::new());
    journal
        .reads()
        .fail_with(JournalError::Storage("cannot read".into()));
    let kit = TestKit::new();
    let mut failures = kit.event_probe::<PersistenceFailed>();
    let mut states = kit.probe::<AccountState>();
    let mut watcher = kit.probe::<()>();
    let a = kit.spawn(
        account("rf", journal.clone(), SnapshotPolicy::never()),
        "rf",
    );
    watcher.watch(&a);
    a.tell(AccountCmd::GetBalance {
        reply_to: states.actor_ref(),
    });
    let f = failures.expect_message(T).await;
    assert_eq!(f.phase, PersistencePhase::Recovery);
    assert!(f.error.to_string().contains("cannot read"), "{}", f.error);
    watcher.expect_terminated(&a, T).await;
    states.expect_no_message(QUIET).await;
    kit.shutdown().await;
}

// Recovery refuses an event whose manifest it does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_manifest_fails_recovery_clearly() {
    let journal = memory();
    journal
        .persist(
            "m",
            vec![StoredEvent::new(1, "shop.ItemAdded", cbor(&1u8))],
            0,
        )
        .await
        .unwrap();
    let kit = TestKit::new();
    let mut failures = kit.event_probe::<PersistenceFailed>();
    let _a = kit.spawn(account("m", journal, SnapshotPolicy::never()), "m");
    let f = failures.expect_message(T).await;
    match &f.error {
        JournalError::UnknownManifest {
            found,
            expected,
            seq,
            ..
        } => {
            assert_eq!((found.as_str(), *seq), ("shop.ItemAdded", 1));
            assert!(expected.ends_with("AccountEvent"), "{expected}");
        }
        other => panic!("expected UnknownManifest, got {other:?}"),
    }
    assert!(f
        .error
        .to_string()
        .contains("unknown manifest `shop.ItemAdded`"));
    kit.shutdown().await;
}

// Two live entities on one persistence id: the one that writes second is refused and stops
// (single writer, P1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_refused() {
    let journal = memory();
    let kit = TestKit::new();
    let mut recovered = kit.event_probe::<RecoveryCompleted>();
    let mut failures = kit.event_probe::<PersistenceFailed>();
    let mut states = kit.probe::<AccountState>();
    let first = kit.spawn(
        account("dup", journal.clone(), SnapshotPolicy::never()),
        "first",
    );
    let second = kit.spawn(
        account("dup", journal.clone(), SnapshotPolicy::never()),
        "second",
    );
    recovered.expect_message(T).await;
    recovered.expect_message(T).await;
    first.tell(AccountCmd::DepositAck {
        amount: 1,
        reply_to: states.actor_ref(),
    });
    assert_eq!(states.expect_message(T).await, state(1, 1));
    let mut watcher = kit.probe::<()>();
    watcher.watch(&second);
    second.tell(AccountCmd::DepositAck {
        amount: 1000,
        reply_to: states.actor_ref(),
    });
    let f = failures.expect_message(T).await;
    assert_eq!(&f.path, second.path());
    assert!(
        matches!(
            f.error,
            JournalError::SequenceConflict {
                expected: 0,
                actual: 1,
                ..
            }
        ),
        "{:?}",
        f.error
    );
    watcher.expect_terminated(&second, T).await;
    states.expect_no_message(QUIET).await;
    let events = journal.load("dup", 1, 10).await.unwrap();
    assert_eq!(
        events.len(),
        1,
        "only the first writer's event is in the log"
    );
    kit.shutdown().await;
}

// ---------------------------------------------------------------- supervision

// Supervision provides the restart; event sourcing provides the memory.
// ANCHOR: supervise
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervised_restart_recovers_the_state() {
    let journal = memory();
    let kit = TestKit::new();
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let mut words = kit.probe::<String>();
    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Restart);
    let a = kit.spawn(
        Behaviors::supervise(
            account("sv", journal.clone(), SnapshotPolicy::never()),
            strategy,
        ),
        "sv",
    );
    a.tell(AccountCmd::Deposit { amount: 700 });
    a.tell(AccountCmd::Deposit { amount: 50 });
    a.tell(AccountCmd::Crash {
        reply_to: words.actor_ref(),
    });
    assert_eq!(words.expect_message(T).await, "crashing");
    restarts.expect_message(T).await;
    assert_eq!(balance(&kit, &a).await, state(750, 2));
    kit.shutdown().await;
}
// ANCHOR_END: supervise

// Under a supervisor that resumes, a failed write is never resumed: the entity restarts and
// recovers from the journal (P4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_under_resume_restarts_and_recovers() {
    let journal = Arc::new(FailingJournal::new());
    let kit = TestKit::new();
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let mut recovered = kit.event_probe::<RecoveryCompleted>();
    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let a = kit.spawn(
        Behaviors::supervise(
            account("rs", journal.clone(), SnapshotPolicy::never()),
            strategy,
        ),
        "rs",
    );
    a.tell(AccountCmd::Deposit { amount: 10 });
    assert_eq!(balance(&kit, &a).await, state(10, 1));
    assert_eq!(recovered.expect_message(T).await.seq, 0);
    journal
        .writes()
        .fail_with(JournalError::Storage("disk on fire".into()));
    a.tell(AccountCmd::Deposit { amount: 99 });
    restarts.expect_message(T).await;
    assert_eq!(
        recovered.expect_message(T).await.seq,
        1,
        "the new incarnation recovered"
    );
    journal.writes().heal();
    a.tell(AccountCmd::Deposit { amount: 1 });
    assert_eq!(balance(&kit, &a).await, state(11, 2));
    kit.shutdown().await;
}

// `then` may stop the entity after the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_after_persist() {
    let journal = memory();
    let kit = TestKit::new();
    let mut watcher = kit.probe::<()>();
    let a = kit.spawn(
        account("st", journal.clone(), SnapshotPolicy::never()),
        "st",
    );
    watcher.watch(&a);
    a.tell(AccountCmd::DepositAndClose { amount: 3 });
    watcher.expect_terminated(&a, T).await;
    assert_eq!(journal.highest_seq("st").await, Ok(1));
}

// `then_reply` on `same()` writes nothing and replies at once with the current state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn then_on_same_runs_without_a_write() {
    let journal = memory();
    let kit = TestKit::new();
    let a = kit.spawn(
        account("au", journal.clone(), SnapshotPolicy::never()),
        "au",
    );
    a.tell(AccountCmd::Deposit { amount: 3 });
    let n: u64 = kit.system().ask(&a, AccountCmd::audit, T).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(journal.highest_seq("au").await, Ok(1));
    kit.shutdown().await;
}

// `Behaviors::persisted` in a plain actor is a failure, not a silent no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_outside_event_sourced_is_a_failure() {
    let kit = TestKit::new();
    let mut watcher = kit.probe::<()>();
    let a = kit.spawn(
        Behaviors::receive(|_ctx, _m: AccountCmd| {
            Behaviors::persisted([AccountEvent::Deposited { amount: 1 }])
        }),
        "plain",
    );
    watcher.watch(&a);
    a.tell(AccountCmd::Deposit { amount: 1 });
    watcher.expect_terminated(&a, T).await;
}

// Many entities share one SQLite journal: every acknowledged write is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_entities_on_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    {
        let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
        let system = ActorSystem::new("many");
        let accounts: Vec<_> = (0..50)
            .map(|i| {
                system
                    .spawn(
                        account(
                            &format!("acc-{i}"),
                            journal.clone(),
                            SnapshotPolicy::every(4),
                        ),
                        &format!("a{i}"),
                    )
                    .unwrap()
            })
            .collect();
        for round in 1..=10 {
            for a in &accounts {
                a.tell(AccountCmd::Deposit { amount: round });
            }
        }
        for a in &accounts {
            let s: AccountState = system.ask(a, AccountCmd::get_balance, T).await.unwrap();
            assert_eq!(s, state(55, 10));
        }
        system.shutdown().await;
    }
    let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
    let kit = TestKit::new();
    for i in [0, 17, 49] {
        let a = kit.spawn(
            account(
                &format!("acc-{i}"),
                journal.clone(),
                SnapshotPolicy::every(4),
            ),
            &format!("again{i}"),
        );
        assert_eq!(balance(&kit, &a).await, state(55, 10));
        assert_eq!(
            journal
                .load_snapshot(&format!("acc-{i}"))
                .await
                .unwrap()
                .map(|s| s.seq),
            Some(8)
        );
    }
    kit.shutdown().await;
}
