//! Ports the Casty (Python) example "Functional State", with macros: the recursion is the state
//! transition.
use std::time::Duration;

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
};

// ANCHOR: protocol
#[message]
struct Deposit {
    amount: i64,
}

#[message]
struct GetBalance {
    reply_to: ActorRef<i64>,
}

/// Casty (Python)'s `type AccountMsg = Deposit | GetBalance`: bare variants name the structs above.
#[message_enum]
enum AccountMsg {
    Deposit,
    GetBalance,
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
        // The state transition: a new behavior over the new balance.
        AccountMsg::Deposit(d) => bank_account(balance + d.amount),
        AccountMsg::GetBalance(g) => {
            g.reply_to.tell(balance);
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
