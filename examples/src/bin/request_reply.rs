//! Ports the Casty (Python) example "Request-Reply": `ask` from outside the actor system.
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

// ANCHOR: protocol
#[derive(Debug)]
struct Deposit {
    amount: i64,
}

#[derive(Debug)]
struct Withdraw {
    amount: i64,
    reply_to: ActorRef<String>,
}

#[derive(Debug)]
struct GetBalance {
    reply_to: ActorRef<i64>,
}

#[derive(Debug)]
enum AccountMsg {
    Deposit(Deposit),
    Withdraw(Withdraw),
    GetBalance(GetBalance),
}
impl Message for AccountMsg {}

impl From<Deposit> for AccountMsg {
    fn from(m: Deposit) -> Self {
        AccountMsg::Deposit(m)
    }
}
impl From<Withdraw> for AccountMsg {
    fn from(m: Withdraw) -> Self {
        AccountMsg::Withdraw(m)
    }
}
impl From<GetBalance> for AccountMsg {
    fn from(m: GetBalance) -> Self {
        AccountMsg::GetBalance(m)
    }
}
// ANCHOR_END: protocol

// ANCHOR: behavior
fn bank_account(balance: i64) -> Behavior<AccountMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        AccountMsg::Deposit(Deposit { amount }) => bank_account(balance + amount),
        AccountMsg::Withdraw(Withdraw { amount, reply_to }) if balance >= amount => {
            reply_to.tell("ok");
            bank_account(balance - amount)
        }
        AccountMsg::Withdraw(Withdraw { reply_to, .. }) => {
            reply_to.tell(format!("insufficient funds (balance={balance})"));
            Behaviors::same()
        }
        AccountMsg::GetBalance(GetBalance { reply_to }) => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
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
        .ask(&account, |reply_to| GetBalance { reply_to }, timeout)
        .await
        .expect("balance");
    println!("Balance: {balance}");

    let result = system
        .ask(
            &account,
            |reply_to| Withdraw {
                amount: 200,
                reply_to,
            },
            timeout,
        )
        .await
        .expect("withdraw");
    println!("Withdraw: {result}");
    // ANCHOR_END: ask

    // ANCHOR: ask_from_ref
    // The same ask, made through the target's ref.
    let balance = account
        .ask(|reply_to| GetBalance { reply_to }, timeout)
        .await
        .expect("balance");
    println!("Balance, asked through the ref: {balance}");
    // ANCHOR_END: ask_from_ref
    system.shutdown().await;
}
