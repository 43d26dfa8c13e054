//! Ports the Casty (Python) example "Functional State": a bank account whose balance lives in the
//! behavior.
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

// ANCHOR: protocol
#[derive(Debug)]
struct Deposit {
    amount: i64,
}

#[derive(Debug)]
struct GetBalance {
    reply_to: ActorRef<i64>,
}

#[derive(Debug)]
enum AccountMsg {
    Deposit(Deposit),
    GetBalance(GetBalance),
}
impl Message for AccountMsg {}

impl From<Deposit> for AccountMsg {
    fn from(m: Deposit) -> Self {
        AccountMsg::Deposit(m)
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
        // The state transition: a new behavior over the new balance.
        AccountMsg::Deposit(Deposit { amount }) => bank_account(balance + amount),
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
    account.tell(Deposit { amount: 50 });
    let balance = system
        .ask(
            &account,
            |reply_to| GetBalance { reply_to },
            Duration::from_secs(5),
        )
        .await
        .expect("balance");
    println!("Balance: {balance}");
    system.shutdown().await;
}
