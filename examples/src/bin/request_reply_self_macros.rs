//! Ports the Casty (Python) example "Request-Reply" inside actors, with macros: pass
//! `ctx.self_ref()` as `reply_to`.
use std::time::Duration;

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
};

#[message]
struct Deposit {
    amount: i64,
}

#[message]
struct GetBalance {
    reply_to: ActorRef<i64>,
}

#[message_enum]
enum AccountMsg {
    Deposit,
    GetBalance,
}

#[behavior]
fn bank_account(
    _ctx: &mut ActorContext<AccountMsg>,
    msg: AccountMsg,
    balance: i64,
) -> Behavior<AccountMsg> {
    match msg {
        AccountMsg::Deposit(d) => bank_account(balance + d.amount),
        AccountMsg::GetBalance(g) => {
            g.reply_to.tell(balance);
            Behaviors::same()
        }
    }
}

// ANCHOR: monitor
#[message]
struct CheckBalance {
    account: ActorRef<AccountMsg>,
}

/// `type MonitorMsg = CheckBalance | int` in Casty (Python).
#[message_enum]
enum MonitorMsg {
    CheckBalance,
    Balance(i64),
}

#[behavior]
fn monitor(ctx: &mut ActorContext<MonitorMsg>, msg: MonitorMsg) -> Behavior<MonitorMsg> {
    match msg {
        MonitorMsg::CheckBalance(c) => c.account.tell(GetBalance {
            reply_to: ctx.self_ref().narrow::<i64>(),
        }),
        MonitorMsg::Balance(balance) => println!("Balance: {balance}"),
    }
    Behaviors::same()
}
// ANCHOR_END: monitor

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("bank");
    let acc = system.spawn(bank_account(0), "account").expect("spawn");
    acc.tell(Deposit { amount: 100 });

    let mon = system.spawn(monitor(), "monitor").expect("spawn");
    mon.tell(CheckBalance { account: acc }); // prints "Balance: 100"
    tokio::time::sleep(Duration::from_millis(100)).await;
    system.shutdown().await;
}
