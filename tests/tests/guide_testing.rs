//! The code of the guide's "Testing actors" chapter, compiled and run: a probe as the `reply_to`
//! of a request, waiting with a deadline instead of sleeping, and an event probe.

use std::time::Duration;

use casty::testing::{FishingOutcome, TestKit};
use casty::{ActorRef, Behavior, Behaviors, DeadLetter, Message};

#[derive(Debug)]
enum AccountMsg {
    Deposit { amount: i64 },
    GetBalance { reply_to: ActorRef<i64> },
}
impl Message for AccountMsg {}

fn bank_account(balance: i64) -> Behavior<AccountMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        AccountMsg::Deposit { amount } => bank_account(balance + amount),
        AccountMsg::GetBalance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
    })
}

// ANCHOR: probe
// A probe stands in for the actor that would get the reply; the test waits for it with a deadline.
#[tokio::test]
async fn a_deposit_shows_in_the_balance() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<i64>();
    let account = kit.spawn(bank_account(0), "account");
    account.tell(AccountMsg::Deposit { amount: 5 });
    account.tell(AccountMsg::GetBalance {
        reply_to: probe.actor_ref(),
    });
    assert_eq!(probe.expect_message(Duration::from_secs(1)).await, 5);
    probe
        .expect_no_message(Duration::from_millis(50)) // and nothing more
        .await;
    kit.shutdown().await;
}
// ANCHOR_END: probe

// ANCHOR: events
// An event probe receives what the event stream publishes; a probe can watch an actor.
#[tokio::test]
async fn a_message_to_a_stopped_account_is_a_dead_letter() {
    let kit = TestKit::new();
    let mut dead = kit.event_probe::<DeadLetter>();
    let account = kit.spawn(bank_account(0), "account");
    let mut watcher = kit.probe::<i64>();
    watcher.watch(&account);
    kit.system().stop(&account);
    watcher
        .expect_terminated(&account, Duration::from_secs(1))
        .await;
    account.tell(AccountMsg::Deposit { amount: 5 });
    let letter = dead.expect_message(Duration::from_secs(1)).await;
    assert_eq!(letter.recipient.to_string(), "/account");
    assert_eq!(letter.message, "Deposit { amount: 5 }");
    kit.shutdown().await;
}
// ANCHOR_END: events

// ANCHOR: fish
// `fish_for_message` reads messages up to the one the test waits for, here skipping the others.
#[tokio::test]
async fn the_balance_reaches_ten() {
    let kit = TestKit::new();
    let mut probe = kit.probe::<i64>();
    let account = kit.spawn(bank_account(0), "account");
    for _ in 0..4 {
        account.tell(AccountMsg::Deposit { amount: 5 });
        account.tell(AccountMsg::GetBalance {
            reply_to: probe.actor_ref(),
        });
    }
    let kept = probe
        .fish_for_message(Duration::from_secs(1), |balance| match *balance {
            10 => FishingOutcome::Complete,
            b if b < 10 => FishingOutcome::ContinueAndIgnore,
            _ => FishingOutcome::Fail(format!("went past 10: {balance}")),
        })
        .await;
    assert_eq!(kept, [10]); // what was kept: only the message fished for
    kit.shutdown().await;
}
// ANCHOR_END: fish
