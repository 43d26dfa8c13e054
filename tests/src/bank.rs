//! The event-sourced bank account of the Casty (Python) example, written by hand (no
//! `#[event_sourced]`), shared by the persistence tests and the crash-test writer.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use casty::future::BoxFuture;
use casty::{
    message_enum, ActorContext, ActorRef, Behavior, Behaviors, EventJournal, EventSourcedCommand,
    SnapshotPolicy,
};

/// The account: balance and number of transactions.
#[casty::message]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountState {
    /// The balance.
    pub balance: i64,
    /// How many events were applied.
    pub tx_count: u64,
}

/// What the account persists.
#[message_enum]
#[derive(Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// Money came in.
    Deposited { amount: i64 },
    /// Money went out.
    Withdrawn { amount: i64 },
}

/// What the account is asked.
#[message_enum(local)]
pub enum AccountCmd {
    /// Deposit; no reply.
    Deposit { amount: i64 },
    /// Deposit, replying with the new state once it is persisted.
    DepositAck {
        amount: i64,
        reply_to: ActorRef<AccountState>,
    },
    /// Withdraw, replying "ok" once persisted or why not.
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    /// Reply with the state.
    GetBalance { reply_to: ActorRef<AccountState> },
    /// Fail the handler (returns an error).
    Crash { reply_to: ActorRef<String> },
    /// Persist a deposit, then stop.
    DepositAndClose { amount: i64 },
    /// Reply with the transaction count through `then_reply` on `same()` (no events).
    Audit { reply_to: ActorRef<u64> },
}

impl EventSourcedCommand for AccountCmd {
    type Event = AccountEvent;
    type State = AccountState;
}

/// The pure event handler.
pub fn on_event(state: &AccountState, event: &AccountEvent) -> AccountState {
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

/// A failure of the `Crash` command.
#[derive(Debug, thiserror::Error)]
#[error("crash requested")]
pub struct Crashed;

/// The command handler.
pub fn on_command<'a>(
    _ctx: &'a mut ActorContext<AccountCmd>,
    state: &'a AccountState,
    cmd: AccountCmd,
) -> BoxFuture<'a, Result<Behavior<AccountCmd>, Crashed>> {
    Box::pin(async move {
        Ok(match cmd {
            AccountCmd::Deposit { amount } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
            }
            AccountCmd::DepositAck { amount, reply_to } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
                    .then_reply(reply_to, |s: &AccountState| *s)
            }
            AccountCmd::Withdraw { amount, reply_to } if state.balance >= amount => {
                Behaviors::persisted([AccountEvent::Withdrawn { amount }])
                    .then_reply(reply_to, |_: &AccountState| "ok".to_string())
            }
            AccountCmd::Withdraw { reply_to, .. } => {
                reply_to.tell(format!("insufficient funds (balance={})", state.balance));
                Behaviors::same()
            }
            AccountCmd::GetBalance { reply_to } => {
                reply_to.tell(*state);
                Behaviors::same()
            }
            AccountCmd::Crash { reply_to } => {
                reply_to.tell("crashing".to_string());
                return Err(Crashed);
            }
            AccountCmd::Audit { reply_to } => {
                Behaviors::same().then_reply(reply_to, |s: &AccountState| s.tx_count)
            }
            AccountCmd::DepositAndClose { amount } => {
                Behaviors::persisted([AccountEvent::Deposited { amount }])
                    .then(|_ctx, _s: &AccountState| Behaviors::stopped())
            }
        })
    })
}

/// The account entity on `journal`.
pub fn account(
    entity_id: &str,
    journal: Arc<dyn EventJournal>,
    policy: SnapshotPolicy<AccountState, AccountEvent>,
) -> Behavior<AccountCmd> {
    Behaviors::event_sourced(
        entity_id,
        journal,
        AccountState::default(),
        on_event,
        on_command,
    )
    .snapshot_policy(policy)
    .into()
}

/// The account with an `on_event` that counts its calls.
pub fn counted_account(
    entity_id: &str,
    journal: Arc<dyn EventJournal>,
    calls: Arc<AtomicUsize>,
) -> Behavior<AccountCmd> {
    Behaviors::event_sourced(
        entity_id,
        journal,
        AccountState::default(),
        move |s: &AccountState, e: &AccountEvent| {
            calls.fetch_add(1, Ordering::SeqCst);
            on_event(s, e)
        },
        on_command,
    )
    .snapshot_policy(SnapshotPolicy::every(3))
    .into()
}
