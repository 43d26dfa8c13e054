//! Ports the Casty (Python) example "Event Sourcing", written with `#[event_sourced]`: the same
//! account, the same output.
// ANCHOR: all
use std::sync::Arc;
use std::time::Duration;

use casty::{
    event_sourced, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
    SqliteJournal,
};

// ANCHOR: types
#[message]
#[derive(Clone, Copy, Default)]
struct AccountState {
    balance: i64,
    tx_count: u64,
}

#[message_enum]
enum AccountEvent {
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

#[message_enum(local)]
enum AccountCommand {
    Deposit {
        amount: i64,
    },
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<AccountState>,
    },
}
// ANCHOR_END: types

// ANCHOR: entity
#[event_sourced(snapshot_every = 100)]
impl AccountState {
    fn on_event(&self, event: &AccountEvent) -> Self {
        match event {
            AccountEvent::Deposited { amount } => AccountState {
                balance: self.balance + amount,
                tx_count: self.tx_count + 1,
            },
            AccountEvent::Withdrawn { amount } => AccountState {
                balance: self.balance - amount,
                tx_count: self.tx_count + 1,
            },
        }
    }

    async fn on_command(
        &self,
        _ctx: &mut ActorContext<AccountCommand>,
        cmd: AccountCommand,
    ) -> Behavior<AccountCommand> {
        match cmd {
            AccountCommand::Deposit { amount } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
            }
            AccountCommand::Withdraw { amount, reply_to } if self.balance >= amount => {
                Behaviors::persisted([AccountEvent::Withdrawn { amount }])
                    .then_reply(reply_to, |_: &AccountState| "ok".to_string())
            }
            AccountCommand::Withdraw { reply_to, .. } => {
                reply_to.tell(format!("insufficient funds (balance={})", self.balance));
                Behaviors::same()
            }
            AccountCommand::GetBalance { reply_to } => {
                reply_to.tell(*self);
                Behaviors::same()
            }
        }
    }
}
// ANCHOR_END: entity

// ANCHOR: main
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
            .spawn(AccountState::behavior("acc-001", journal), "account")
            .expect("spawn");
        account.tell(AccountCommand::Deposit { amount: 1000 });
        account.tell(AccountCommand::Deposit { amount: 500 });
        let state = system
            .ask(&account, AccountCommand::get_balance, timeout)
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
            .spawn(AccountState::behavior("acc-001", journal), "account")
            .expect("spawn");
        let state = system
            .ask(&account, AccountCommand::get_balance, timeout)
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
