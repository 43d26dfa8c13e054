//! Ports the Casty (Python) example "Event Sourcing": a bank account that recovers its balance from
//! a SQLite journal.
// ANCHOR: all
use std::sync::Arc;
use std::time::Duration;

use casty::future::BoxFuture;
use casty::{
    ActorContext, ActorRef, ActorSystem, Behavior, Behaviors, EventJournal, EventSourcedCommand,
    Message, SnapshotPolicy, SqliteJournal,
};
use serde::{Deserialize, Serialize};

// ANCHOR: types
// --- State ---
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct AccountState {
    balance: i64,
    tx_count: u64,
}

// --- Events (persisted to the journal) ---
#[derive(Debug, Serialize, Deserialize)]
enum AccountEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}
impl Message for AccountEvent {}

// --- Commands (sent by the outside world) ---
#[derive(Debug)]
enum AccountCommand {
    Deposit {
        amount: i64,
    },
    #[allow(dead_code)] // defined by the Casty (Python) example, not sent by its demo
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<AccountState>,
    },
}
impl Message for AccountCommand {}

// The command type names what the entity persists and what that folds into.
impl EventSourcedCommand for AccountCommand {
    type Event = AccountEvent;
    type State = AccountState;
}
// ANCHOR_END: types

// ANCHOR: on_event
// --- Event handler (pure — used for replay and live updates) ---
fn on_event(state: &AccountState, event: &AccountEvent) -> AccountState {
    match event {
        AccountEvent::Deposited { amount } => AccountState {
            balance: state.balance + amount,
            tx_count: state.tx_count + 1,
        },
        AccountEvent::Withdrawn { amount } => AccountState {
            balance: state.balance - amount,
            tx_count: state.tx_count + 1,
        },
    }
}
// ANCHOR_END: on_event

// ANCHOR: on_command
// --- Command handler (async — decides what events to persist) ---
fn on_command<'a>(
    _ctx: &'a mut ActorContext<AccountCommand>,
    state: &'a AccountState,
    cmd: AccountCommand,
) -> BoxFuture<'a, Behavior<AccountCommand>> {
    Box::pin(async move {
        match cmd {
            AccountCommand::Deposit { amount } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
            }
            AccountCommand::Withdraw { amount, reply_to } if state.balance >= amount => {
                // The reply waits until the event is durable.
                Behaviors::persisted([AccountEvent::Withdrawn { amount }])
                    .then_reply(reply_to, |_: &AccountState| "ok".to_string())
            }
            AccountCommand::Withdraw { reply_to, .. } => {
                reply_to.tell(format!("insufficient funds (balance={})", state.balance));
                Behaviors::same()
            }
            AccountCommand::GetBalance { reply_to } => {
                reply_to.tell(*state);
                Behaviors::same()
            }
        }
    })
}
// ANCHOR_END: on_command

// ANCHOR: entity
// --- Entity factory ---
fn bank_account(entity_id: &str, journal: Arc<dyn EventJournal>) -> Behavior<AccountCommand> {
    Behaviors::event_sourced(
        entity_id,
        journal,
        AccountState::default(),
        on_event,
        on_command,
    )
    .snapshot_policy(SnapshotPolicy::every(100))
    .into()
}
// ANCHOR_END: entity

// ANCHOR: main
// --- Recovery demonstration ---
#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("bank.db");
    let timeout = Duration::from_secs(2);

    // Phase 1: normal operations
    {
        let journal = Arc::new(SqliteJournal::open(&path).expect("open the journal"));
        let system = ActorSystem::new("bank");
        let account = system
            .spawn(bank_account("acc-001", journal), "account")
            .expect("spawn");

        account.tell(AccountCommand::Deposit { amount: 1000 });
        account.tell(AccountCommand::Deposit { amount: 500 });

        let state = system
            .ask(
                &account,
                |r| AccountCommand::GetBalance { reply_to: r },
                timeout,
            )
            .await
            .expect("balance");
        println!(
            "Balance: {}, transactions: {}",
            state.balance, state.tx_count
        );
        system.shutdown().await;
    }

    // Phase 2: recovery — new system, new actor, same journal file
    {
        let journal = Arc::new(SqliteJournal::open(&path).expect("reopen the journal"));
        let system = ActorSystem::new("bank");
        let account = system
            .spawn(bank_account("acc-001", journal), "account")
            .expect("spawn");

        let state = system
            .ask(
                &account,
                |r| AccountCommand::GetBalance { reply_to: r },
                timeout,
            )
            .await
            .expect("balance");
        println!(
            "Recovered balance: {}, transactions: {}",
            state.balance, state.tx_count
        );
        system.shutdown().await;
    }
}
// ANCHOR_END: main
// ANCHOR_END: all
