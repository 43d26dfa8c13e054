//! Ports the Casty (Python) example "Request-Reply", with macros: typed ask constructors, no
//! closures.
use std::time::Duration;

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
};

// ANCHOR: protocol
#[message]
struct Deposit {
    amount: i64,
}

#[message_enum]
enum AccountMsg {
    Deposit,
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<i64>,
    },
}
// ANCHOR_END: protocol

// ANCHOR: behavior
#[behavior]
fn bank_account(
    _ctx: &mut ActorContext<AccountMsg>,
    msg: AccountMsg,
    balance: i64,
) -> Behavior<AccountMsg> {
    match msg {
        AccountMsg::Deposit(d) => bank_account(balance + d.amount),
        AccountMsg::Withdraw { amount, reply_to } if balance >= amount => {
            reply_to.tell("ok");
            bank_account(balance - amount)
        }
        AccountMsg::Withdraw { reply_to, .. } => {
            reply_to.tell(format!("insufficient funds (balance={balance})"));
            Behaviors::same()
        }
        AccountMsg::GetBalance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    }
}
// ANCHOR_END: behavior

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("bank");
    let account = system.spawn(bank_account(0), "account").expect("spawn");
    account.tell(Deposit { amount: 100 });

    // ANCHOR: ask
    let timeout = Duration::from_secs(5);
    let balance = system
        .ask(&account, AccountMsg::get_balance, timeout)
        .await
        .expect("balance");
    println!("Balance: {balance}");

    let result = system
        .ask(&account, AccountMsg::withdraw(200), timeout)
        .await
        .expect("withdraw");
    println!("Withdraw: {result}");
    // ANCHOR_END: ask

    // ANCHOR: ask_from_ref
    // The same ask, made through the target's ref.
    let balance = account
        .ask(AccountMsg::get_balance, timeout)
        .await
        .expect("balance");
    println!("Balance, asked through the ref: {balance}");
    // ANCHOR_END: ask_from_ref
    system.shutdown().await;
}
