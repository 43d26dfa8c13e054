//! The protocol shared by the remoting tests and their child-process node
//! (`src/bin/remote_node.rs`).
#![allow(missing_docs)]

use casty::{message_enum, ActorRef, Behavior, Behaviors};

#[message_enum]
pub enum Account {
    Deposit {
        amount: i64,
    },
    Balance {
        reply_to: ActorRef<i64>,
    },
    /// Replies with the account's own ref (with its incarnation uid).
    Identify {
        reply_to: ActorRef<ActorRef<Account>>,
    },
    /// Replies with a greeting naming the reply ref's address (proves node → caller messaging).
    Hello {
        reply_to: ActorRef<String>,
    },
    /// Never replies.
    Ignore {
        reply_to: ActorRef<i64>,
    },
}

/// An account with `balance`.
pub fn account(balance: i64) -> Behavior<Account> {
    Behaviors::receive(move |ctx, msg| match msg {
        Account::Deposit { amount } => account(balance + amount),
        Account::Balance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
        Account::Identify { reply_to } => {
            reply_to.tell(ctx.self_ref().clone());
            Behaviors::same()
        }
        Account::Hello { reply_to } => {
            reply_to.tell(format!("hello {} from {}", reply_to.address(), ctx.path()));
            Behaviors::same()
        }
        Account::Ignore { .. } => Behaviors::same(),
    })
}
