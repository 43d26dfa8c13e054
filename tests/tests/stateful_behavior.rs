//! `Behaviors::stateful` and `Behaviors::stateful_async`, the public API that `#[behavior]`
//! expands to: the same actor written with the macro and by hand behaves the same, and each kind
//! of `Next` does what its docs say. The guide's Macros chapter includes the two actors below.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casty::testing::TestKit;
use casty::{
    behavior, message_enum, ActorContext, ActorRef, ActorRestarted, Behavior, Behaviors, Directive,
    Next, SupervisorStrategy, UnhandledMessage,
};
use casty_tests::{Boom, T};

#[message_enum(local)]
enum Account {
    Deposit {
        amount: i64,
    },
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    Balance {
        reply_to: ActorRef<i64>,
    },
    Fail {
        why: String,
    },
    #[unit]
    Explode,
    #[unit]
    Close,
}

// ANCHOR: by_macro
#[behavior]
fn account(
    _ctx: &mut ActorContext<Account>,
    msg: Account,
    mut balance: i64,
) -> Result<Behavior<Account>, Boom> {
    match msg {
        Account::Deposit { amount } => balance += amount,
        Account::Withdraw { amount, reply_to } if amount > balance => {
            reply_to.tell(format!("insufficient funds: {balance}"));
        }
        Account::Withdraw { amount, reply_to } => {
            balance -= amount;
            reply_to.tell("ok".to_string());
        }
        Account::Balance { reply_to } => reply_to.tell(balance),
        Account::Fail { why } => return Err(Boom(why)),
        Account::Explode => panic!("exploded"),
        Account::Close => return Ok(Behaviors::stopped()),
    }
    Ok(Behaviors::same())
}
// ANCHOR_END: by_macro

// ANCHOR: by_hand
fn account_by_hand(balance: i64) -> Behavior<Account> {
    Behaviors::stateful(balance, |_ctx, msg, balance| match msg {
        Account::Deposit { amount } => Next::state(balance + amount),
        Account::Withdraw { amount, reply_to } if amount > balance => {
            reply_to.tell(format!("insufficient funds: {balance}"));
            Next::state(balance)
        }
        Account::Withdraw { amount, reply_to } => {
            reply_to.tell("ok".to_string());
            Next::state(balance - amount)
        }
        Account::Balance { reply_to } => {
            reply_to.tell(balance);
            Next::state(balance)
        }
        Account::Fail { why } => Next::failed(balance, Boom(why)),
        Account::Explode => panic!("exploded"),
        Account::Close => Next::stopped(),
    })
}
// ANCHOR_END: by_hand

/// Sends the same script to an account and writes down everything it can be seen to do.
async fn observe(kit: &TestKit, behavior: Behavior<Account>, name: &str) -> Vec<String> {
    let resume =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let a = kit.spawn(Behaviors::supervise(behavior, resume), name);
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let system = kit.system();
    let mut seen = Vec::new();
    let balance = || system.ask(&a, Account::balance, T);

    a.tell(Account::Deposit { amount: 100 });
    seen.push(system.ask(&a, Account::withdraw(30), T).await.unwrap());
    seen.push(system.ask(&a, Account::withdraw(500), T).await.unwrap());
    seen.push(format!("balance {}", balance().await.unwrap()));
    // An error, resumed: the state is kept.
    a.tell(Account::Fail { why: "bad".into() });
    seen.push(format!("after an error {}", balance().await.unwrap()));
    // A panic, resumed: the state went with the panic, so the actor restarts from its start.
    a.tell(Account::Explode);
    let restarted = restarts.expect_message(T).await;
    seen.push(format!("restarted {}", restarted.path == *a.path()));
    seen.push(format!("after a panic {}", balance().await.unwrap()));
    a.tell(Account::Deposit { amount: 7 });
    seen.push(format!("balance {}", balance().await.unwrap()));
    let mut probe = kit.probe::<()>();
    a.tell(Account::Close);
    probe.expect_terminated(&a, T).await;
    seen.push("stopped".to_string());
    seen
}

#[tokio::test]
async fn the_macro_and_the_hand_written_account_behave_the_same() {
    let kit = TestKit::new();
    let by_macro = observe(&kit, account(5), "by-macro").await;
    let by_hand = observe(&kit, account_by_hand(5), "by-hand").await;
    let expected = [
        "ok",
        "insufficient funds: 75",
        "balance 75",
        "after an error 75",
        "restarted true",
        "after a panic 5",
        "balance 12",
        "stopped",
    ];
    assert_eq!(by_macro, expected);
    assert_eq!(by_hand, expected);
    kit.shutdown().await;
}

/// A state that counts its clones.
struct Tracked {
    hits: u64,
    clones: Arc<AtomicUsize>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Tracked {
            hits: self.hits,
            clones: self.clones.clone(),
        }
    }
}

#[message_enum(local)]
enum Hits {
    #[unit]
    Hit,
    Get {
        reply_to: ActorRef<u64>,
    },
    #[unit]
    Ignored,
}

fn hits(start: Tracked) -> Behavior<Hits> {
    Behaviors::stateful(start, |_ctx, msg, mut state: Tracked| match msg {
        Hits::Hit => {
            state.hits += 1;
            Next::state(state)
        }
        Hits::Get { reply_to } => {
            reply_to.tell(state.hits);
            Next::state(state)
        }
        Hits::Ignored => Next::unhandled(state),
    })
}

#[tokio::test]
async fn the_state_moves_through_the_body_without_a_clone_per_message() {
    let kit = TestKit::new();
    let clones = Arc::new(AtomicUsize::new(0));
    let start = Tracked {
        hits: 0,
        clones: clones.clone(),
    };
    let h = kit.spawn(hits(start), "hits");
    for _ in 0..100 {
        h.tell(Hits::Hit);
    }
    assert_eq!(kit.system().ask(&h, Hits::get, T).await.unwrap(), 100);
    // One clone: the incarnation's copy of the initial state, made at spawn.
    assert_eq!(clones.load(Ordering::SeqCst), 1);
    kit.shutdown().await;
}

#[tokio::test]
async fn next_unhandled_publishes_the_message_and_keeps_the_state() {
    let kit = TestKit::new();
    let mut unhandled = kit.event_probe::<UnhandledMessage>();
    let clones = Arc::new(AtomicUsize::new(0));
    let start = Tracked { hits: 0, clones };
    let h = kit.spawn(hits(start), "hits");
    h.tell(Hits::Hit);
    h.tell(Hits::Ignored);
    assert_eq!(unhandled.expect_message(T).await.recipient, *h.path());
    h.tell(Hits::Hit);
    assert_eq!(kit.system().ask(&h, Hits::get, T).await.unwrap(), 2);
    kit.shutdown().await;
}

#[message_enum(local)]
enum Phase {
    #[unit]
    Advance,
    Get {
        reply_to: ActorRef<String>,
    },
    #[unit]
    SameWithoutState,
}

/// Counts `Advance` messages, then switches to a behavior with a state of another type.
fn counting(n: u32) -> Behavior<Phase> {
    Behaviors::stateful(n, |_ctx, msg, n| match msg {
        Phase::Advance if n == 2 => Next::behavior(naming("third".to_string())),
        Phase::Advance => Next::state(n + 1),
        Phase::Get { reply_to } => {
            reply_to.tell(format!("counting {n}"));
            Next::state(n)
        }
        Phase::SameWithoutState => Next::behavior(Behaviors::same()),
    })
}

fn naming(name: String) -> Behavior<Phase> {
    Behaviors::stateful(name, |_ctx, msg, name| match msg {
        Phase::Get { reply_to } => {
            reply_to.tell(format!("named {name}"));
            Next::state(name)
        }
        _ => Next::state(name),
    })
}

#[tokio::test]
async fn next_behavior_switches_to_another_stateful_behavior() {
    let kit = TestKit::new();
    let p = kit.spawn(counting(0), "phases");
    let get = || kit.system().ask(&p, Phase::get, T);
    p.tell(Phase::Advance);
    assert_eq!(get().await.unwrap(), "counting 1");
    p.tell(Phase::Advance);
    p.tell(Phase::Advance);
    assert_eq!(get().await.unwrap(), "named third");
    kit.shutdown().await;
}

#[tokio::test]
async fn next_behavior_given_same_is_a_failure_and_the_actor_restarts() {
    let kit = TestKit::new();
    let mut restarts = kit.event_probe::<ActorRestarted>();
    // Even under `Resume`: the state was given up, so there is nothing to resume with.
    let resume =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let p = kit.spawn(Behaviors::supervise(counting(0), resume), "phases");
    p.tell(Phase::Advance);
    p.tell(Phase::SameWithoutState);
    let e = restarts.expect_message(T).await;
    assert_eq!(e.path, *p.path());
    assert_eq!(
        kit.system().ask(&p, Phase::get, T).await.unwrap(),
        "counting 0"
    );
    kit.shutdown().await;
}

#[message_enum(local)]
enum Slow {
    Add {
        n: u64,
        reply_to: ActorRef<u64>,
    },
    #[unit]
    Explode,
}

fn slow_total(total: u64) -> Behavior<Slow> {
    Behaviors::stateful_async(total, |_ctx, msg, total| {
        Box::pin(async move {
            match msg {
                Slow::Add { n, reply_to } => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    reply_to.tell(total + n);
                    Next::state(total + n)
                }
                Slow::Explode => {
                    tokio::task::yield_now().await;
                    panic!("exploded while awaiting")
                }
            }
        })
    })
}

#[tokio::test]
async fn stateful_async_keeps_the_state_across_awaits() {
    let kit = TestKit::new();
    let s = kit.spawn(slow_total(10), "slow");
    let mut probe = kit.probe::<u64>();
    for n in 1..=4 {
        s.tell(Slow::Add {
            n,
            reply_to: probe.actor_ref(),
        });
    }
    for expected in [11, 13, 16, 20] {
        assert_eq!(probe.expect_message(T).await, expected);
    }
    kit.shutdown().await;
}

#[tokio::test]
async fn stateful_async_panic_under_resume_restarts_from_the_initial_state() {
    let kit = TestKit::new();
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let resume =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let s = kit.spawn(Behaviors::supervise(slow_total(10), resume), "slow");
    assert_eq!(kit.system().ask(&s, Slow::add(5), T).await.unwrap(), 15);
    s.tell(Slow::Explode);
    assert_eq!(restarts.expect_message(T).await.path, *s.path());
    assert_eq!(kit.system().ask(&s, Slow::add(1), T).await.unwrap(), 11);
    kit.shutdown().await;
}
