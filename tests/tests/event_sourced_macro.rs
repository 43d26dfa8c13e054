//! `#[event_sourced]`: the bank account of the Casty (Python) example, written with the macro,
//! on both journals.

use std::sync::Arc;

use casty::testing::TestKit;
use casty::{
    event_sourced, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors,
    EventJournal, EventSourcedCommand, InMemoryJournal, SqliteJournal,
};
use casty_tests::T;

#[message_enum]
enum AccountEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

#[message_enum(local)]
enum AccountCmd {
    Deposit {
        amount: i64,
    },
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<(i64, u64)>,
    },
}

#[message]
#[derive(Clone, Default)]
struct Account {
    balance: i64,
    tx_count: u64,
}

#[event_sourced(snapshot_every = 2, keep_snapshots = 1, manifest = "bank.Account")]
impl Account {
    fn on_event(&self, event: &AccountEvent) -> Self {
        match event {
            AccountEvent::Deposited { amount } => Account {
                balance: self.balance + amount,
                tx_count: self.tx_count + 1,
            },
            AccountEvent::Withdrawn { amount } => Account {
                balance: self.balance - amount,
                tx_count: self.tx_count + 1,
            },
        }
    }

    async fn on_command(
        &self,
        _ctx: &mut ActorContext<AccountCmd>,
        cmd: AccountCmd,
    ) -> Behavior<AccountCmd> {
        match cmd {
            AccountCmd::Deposit { amount } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
            }
            AccountCmd::Withdraw { amount, reply_to } if self.balance >= amount => {
                Behaviors::persisted([AccountEvent::Withdrawn { amount }])
                    .then_reply(reply_to, |_: &Account| "ok".to_string())
            }
            AccountCmd::Withdraw { reply_to, .. } => {
                reply_to.tell(format!("insufficient funds (balance={})", self.balance));
                Behaviors::same()
            }
            AccountCmd::GetBalance { reply_to } => {
                reply_to.tell((self.balance, self.tx_count));
                Behaviors::same()
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_macro_entity_recovers_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    {
        let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
        let kit = TestKit::new();
        let a = kit.spawn(Account::behavior("acc-001", journal.clone()), "account");
        a.tell(AccountCmd::Deposit { amount: 1000 });
        a.tell(AccountCmd::Deposit { amount: 500 });
        let w: String = kit
            .system()
            .ask(&a, AccountCmd::withdraw(200), T)
            .await
            .unwrap();
        assert_eq!(w, "ok");
        let w: String = kit
            .system()
            .ask(&a, AccountCmd::withdraw(5000), T)
            .await
            .unwrap();
        assert_eq!(w, "insufficient funds (balance=1300)");
        let b = kit
            .system()
            .ask(&a, AccountCmd::get_balance, T)
            .await
            .unwrap();
        assert_eq!(b, (1300, 3));
        // snapshot_every = 2 and keep_snapshots = 1: one snapshot, at seq 2, under its manifest.
        let snap = journal.load_snapshot("acc-001").await.unwrap().unwrap();
        assert_eq!((snap.seq, &*snap.manifest), (2, "bank.Account"));
        kit.shutdown().await;
    }
    let journal: Arc<dyn EventJournal> = Arc::new(SqliteJournal::open(&path).unwrap());
    let kit = TestKit::new();
    let make = Account::entity(journal);
    let a = kit.spawn(make("acc-001"), "account");
    let b = kit
        .system()
        .ask(&a, AccountCmd::get_balance, T)
        .await
        .unwrap();
    assert_eq!(b, (1300, 3));
    let other = kit.spawn(make("acc-002"), "other");
    let b = kit
        .system()
        .ask(&other, AccountCmd::get_balance, T)
        .await
        .unwrap();
    assert_eq!(b, (0, 0));
    kit.shutdown().await;
}

#[test]
fn the_macro_names_the_event_and_state_types() {
    fn types<C: EventSourcedCommand<Event = AccountEvent, State = Account>>() {}
    types::<AccountCmd>();
    assert_eq!(AccountCmd::state_manifest(), "bank.Account");
}

// A synchronous on_command returning a Result, an `initial` fn, and `then` stopping the entity.
#[message_enum]
enum TallyEvent {
    Counted { n: u32 },
}

#[message_enum(local)]
enum TallyCmd {
    Count { n: u32 },
    Finish { reply_to: ActorRef<u32> },
    Get { reply_to: ActorRef<u32> },
}

#[message]
#[derive(Clone)]
struct Tally {
    total: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("too big: {0}")]
struct TooBig(u32);

#[event_sourced]
impl Tally {
    fn initial() -> Self {
        Tally { total: 100 }
    }

    fn on_event(&self, event: &TallyEvent) -> Tally {
        match event {
            TallyEvent::Counted { n } => Tally {
                total: self.total + n,
            },
        }
    }

    fn on_command(
        &self,
        _ctx: &mut ActorContext<TallyCmd>,
        cmd: TallyCmd,
    ) -> Result<Behavior<TallyCmd>, TooBig> {
        Ok(match cmd {
            TallyCmd::Count { n } if n > 1000 => return Err(TooBig(n)),
            TallyCmd::Count { n } => Behaviors::persisted([TallyEvent::Counted { n }]),
            TallyCmd::Finish { reply_to } => Behaviors::persisted([TallyEvent::Counted { n: 1 }])
                .then_reply(reply_to, |t: &Tally| t.total)
                .then(|_ctx, _t: &Tally| Behaviors::stopped()),
            TallyCmd::Get { reply_to } => {
                reply_to.tell(self.total);
                Behaviors::same()
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_handlers_initial_state_and_stop_after_persist() {
    let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
    let kit = TestKit::new();
    let mut watcher = kit.probe::<()>();
    let t = kit.spawn(Tally::behavior("t", journal.clone()), "t");
    watcher.watch(&t);
    t.tell(TallyCmd::Count { n: 5 });
    assert_eq!(kit.system().ask(&t, TallyCmd::get, T).await.unwrap(), 105);
    assert_eq!(
        kit.system().ask(&t, TallyCmd::finish, T).await.unwrap(),
        106
    );
    watcher.expect_terminated(&t, T).await;
    // An Err is a failure: without a supervisor the entity stops, and nothing was written.
    let t2 = kit.spawn(Tally::behavior("t", journal.clone()), "t2");
    watcher.watch(&t2);
    t2.tell(TallyCmd::Count { n: 5000 });
    watcher.expect_terminated(&t2, T).await;
    assert_eq!(journal.highest_seq("t").await, Ok(2));
    kit.shutdown().await;
}
