//! Ports the Casty (Python) example "Request-Reply" inside actors: pass `ctx.self_ref()` as
//! `reply_to`.
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

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

fn bank_account(balance: i64) -> Behavior<AccountMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        AccountMsg::Deposit(Deposit { amount }) => bank_account(balance + amount),
        AccountMsg::GetBalance(GetBalance { reply_to }) => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
}

// ANCHOR: monitor
#[derive(Debug)]
struct CheckBalance {
    account: ActorRef<AccountMsg>,
}

/// `type MonitorMsg = CheckBalance | int` in Casty (Python).
#[derive(Debug)]
enum MonitorMsg {
    CheckBalance(CheckBalance),
    Balance(i64),
}
impl Message for MonitorMsg {}

impl From<CheckBalance> for MonitorMsg {
    fn from(m: CheckBalance) -> Self {
        MonitorMsg::CheckBalance(m)
    }
}
impl From<i64> for MonitorMsg {
    fn from(b: i64) -> Self {
        MonitorMsg::Balance(b)
    }
}

fn monitor() -> Behavior<MonitorMsg> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            MonitorMsg::CheckBalance(CheckBalance { account }) => {
                // Non-blocking: the reply arrives later as a message. The balance reply is an
                // `i64`, so the monitor's ref is adapted to `ActorRef<i64>` with `narrow`.
                account.tell(GetBalance {
                    reply_to: ctx.self_ref().narrow::<i64>(),
                });
            }
            MonitorMsg::Balance(balance) => {
                println!("Balance: {balance}");
            }
        }
        Behaviors::same()
    })
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
