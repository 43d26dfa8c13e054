//! Every form the macros accept.
use std::sync::{Arc, Mutex};

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors, Message,
};

// ANCHOR: protocol
#[message]
struct Deposit {
    amount: i64,
}

#[message]
struct Ping;

#[message(manifest = "bank.Audit")]
struct Audit(String);

#[message_enum(terminated, manifest = "bank.AccountMsg")]
pub enum AccountMsg {
    /// A shorthand variant: `Deposit(Deposit)`.
    Deposit,
    Ping(Ping),
    Audit(Audit),
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<i64>,
    },
    Pair(u8, u8),
    #[unit]
    Close,
}

// ANCHOR_END: protocol

/// A variant with an explicit discriminant is a unit variant (all must be unit, as in plain Rust).
#[message_enum]
enum Level {
    Low = 1,
    High = 2,
}

// ANCHOR: local
/// A process-local protocol may carry anything `Send + 'static`.
#[message_enum(local)]
enum LocalMsg {
    Shared(Arc<Mutex<u8>>),
    Callback(Callback),
    Name(&'static str),
}

struct Callback(Box<dyn Fn() + Send>);

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<callback>")
    }
}

// ANCHOR_END: local

// ANCHOR: generic
#[message_enum]
enum Envelope<T: Message + Clone>
where
    T: Send,
{
    Item(T),
}

// ANCHOR_END: generic

// ANCHOR: behavior
#[behavior]
fn account(
    ctx: &mut ActorContext<AccountMsg>,
    msg: AccountMsg,
    balance: i64,
    mut log: Vec<String>,
) -> Behavior<AccountMsg> {
    let _ = ctx.self_ref();
    match msg {
        // A state parameter stays with the actor: hand it on with `take` (or a clone).
        AccountMsg::Deposit(d) => return account(balance + d.amount, std::mem::take(&mut log)),
        AccountMsg::Audit(a) => log.push(a.0),
        AccountMsg::Close => return Behaviors::stopped(),
        _ => {}
    }
    Behaviors::same()
}

// ANCHOR_END: behavior

// ANCHOR: async
#[behavior]
async fn slow(
    _ctx: &mut ActorContext<LocalMsg>,
    msg: LocalMsg,
) -> Result<Behavior<LocalMsg>, std::io::Error> {
    if let LocalMsg::Callback(f) = msg {
        (f.0)();
    }
    tokio::task::yield_now().await;
    Ok(Behaviors::same())
}

// ANCHOR_END: async

// ANCHOR: setup
#[behavior(setup)]
pub fn start(ctx: &mut ActorContext<AccountMsg>, opening: i64) -> Behavior<AccountMsg> {
    let _ = ctx.path();
    account(opening, Vec::new())
}

#[behavior(setup)]
fn no_args(_ctx: &mut ActorContext<u64>) -> Behavior<u64> {
    Behaviors::ignore()
}

// ANCHOR_END: setup

fn main() {
    let _: Behavior<AccountMsg> = start(5);
    let _: Behavior<LocalMsg> = slow();
    let _: Behavior<u64> = no_args();
    let _: AccountMsg = Deposit { amount: 1 }.into();
    let _: AccountMsg = Ping.into();
    let _: fn(ActorRef<i64>) -> AccountMsg = AccountMsg::get_balance;
    let _ = AccountMsg::withdraw(5);
    let _ = (AccountMsg::Pair(1, 2), Level::Low, Level::High, LocalMsg::Name("x"));
    let _ = LocalMsg::Shared(Arc::new(Mutex::new(0)));
    assert_eq!(AccountMsg::manifest(), "bank.AccountMsg");
    assert_eq!(Audit::manifest(), "bank.Audit");
    let _ = Envelope::Item(1u8);
    fn serializable<T: casty::__private::serde::Serialize>() {}
    serializable::<AccountMsg>();
    serializable::<Envelope<u8>>();
}
