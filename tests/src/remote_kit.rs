//! What the in-process remoting tests share: nodes on 127.0.0.1 with a free port, a bank
//! protocol, and a watcher that reports the `Terminated` it gets.

use casty::remote::RemoteSettings;
use casty::{message_enum, ActorRef, ActorSystem, Behavior, Behaviors};

/// A bank account's protocol.
#[message_enum]
pub enum Bank {
    /// Adds `amount` to the balance.
    Deposit {
        /// How much.
        amount: i64,
    },
    /// Replies with the balance.
    Balance {
        /// Where the balance goes.
        reply_to: ActorRef<i64>,
    },
}

/// An account holding `balance`.
pub fn bank(balance: i64) -> Behavior<Bank> {
    Behaviors::receive(move |_ctx, msg| match msg {
        Bank::Deposit { amount } => bank(balance + amount),
        Bank::Balance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
}

/// A remote-enabled system named `name` on 127.0.0.1, any free port.
pub async fn node(name: &str) -> ActorSystem {
    node_with(name, RemoteSettings::new("127.0.0.1", 0)).await
}

/// A remote-enabled system named `name` with `settings`.
pub async fn node_with(name: &str, settings: RemoteSettings) -> ActorSystem {
    let system = ActorSystem::new(name);
    system.start_remote(settings).await.expect("bind");
    system
}

/// The address of the actor at `path` on `system`.
pub fn address(system: &ActorSystem, path: &str) -> String {
    format!("{}{path}", system.remote_address().unwrap())
}

/// What the watcher is told to do.
#[message_enum(terminated)]
pub enum Watching {
    /// Watch `target`.
    Watch {
        /// The actor to watch.
        target: ActorRef<Bank>,
    },
}

/// Watches what it is told to, and reports `terminated <path>` for each `Terminated`.
pub fn watcher(report: ActorRef<String>) -> Behavior<Watching> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            Watching::Watch { target } => ctx.watch(&target),
            Watching::Terminated(t) => report.tell(format!("terminated {}", t.path.as_str())),
        }
        Behaviors::same()
    })
}
