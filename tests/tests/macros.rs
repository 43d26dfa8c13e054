//! `#[message_enum]`, `#[message]` and `#[behavior]`: what the generated code does at run time.
//! (Compile errors are checked by the trybuild cases in `ui-tests/`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use casty::testing::TestKit;
use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorRestarted, Behavior, Behaviors,
    Directive, Message, SupervisorStrategy, Terminated,
};
use casty_tests::{Boom, T};

// ---------------------------------------------------------------- protocol

/// A payload struct, used through the shorthand variant `Deposit`.
#[message]
struct Deposit {
    amount: i64,
}

#[message_enum]
enum AccountMsg {
    Deposit,
    Withdraw {
        amount: i64,
        reply_to: ActorRef<String>,
    },
    GetBalance {
        reply_to: ActorRef<i64>,
    },
    Fail(String),
    Explode,
    #[unit]
    Close,
}

#[message]
struct Explode;

#[behavior]
fn bank_account(
    _ctx: &mut ActorContext<AccountMsg>,
    msg: AccountMsg,
    balance: i64,
) -> Result<Behavior<AccountMsg>, Boom> {
    Ok(match msg {
        AccountMsg::Deposit(d) => bank_account(balance + d.amount),
        AccountMsg::Withdraw { amount, reply_to } => {
            if amount > balance {
                reply_to.tell(format!("insufficient funds: {balance}"));
                Behaviors::same()
            } else {
                reply_to.tell("ok".to_string());
                bank_account(balance - amount)
            }
        }
        AccountMsg::GetBalance { reply_to } => {
            reply_to.tell(balance);
            Behaviors::same()
        }
        AccountMsg::Fail(why) => return Err(Boom(why)),
        AccountMsg::Explode(_) => panic!("explode"),
        AccountMsg::Close => Behaviors::stopped(),
    })
}

#[tokio::test]
async fn shorthand_from_and_typed_ask_constructors() {
    let kit = TestKit::new();
    let acc = kit.spawn(bank_account(100), "acc");
    acc.tell(Deposit { amount: 50 }); // From<Deposit> for AccountMsg
    let s = kit.system();
    assert_eq!(s.ask(&acc, AccountMsg::get_balance, T).await.unwrap(), 150);
    let r: String = s.ask(&acc, AccountMsg::withdraw(200), T).await.unwrap();
    assert_eq!(r, "insufficient funds: 150");
    let r: String = s.ask(&acc, AccountMsg::withdraw(120), T).await.unwrap();
    assert_eq!(r, "ok");
    assert_eq!(s.ask(&acc, AccountMsg::get_balance, T).await.unwrap(), 30);
    let mut probe = kit.probe::<()>();
    probe.watch(&acc);
    acc.tell(AccountMsg::Close);
    probe.expect_terminated(&acc, T).await;
    kit.shutdown().await;
}

#[test]
fn manifests_are_stable_names() {
    assert_eq!(
        AccountMsg::manifest(),
        format!("{}::AccountMsg", module_path!())
    );
    assert_eq!(Deposit::manifest(), format!("{}::Deposit", module_path!()));

    #[message_enum(manifest = "bank.Command")]
    enum Renamed {
        #[unit]
        Ping,
    }
    assert_eq!(Renamed::manifest(), "bank.Command");
    let _ = Renamed::Ping;

    #[message_enum]
    enum Envelope<T: Message> {
        Item(T),
    }
    assert_eq!(
        Envelope::<u64>::manifest(),
        format!("{}::Envelope<u64>", module_path!())
    );
    let _ = Envelope::Item(1u64);
}

#[tokio::test]
async fn messages_round_trip_through_cbor_with_their_refs() {
    let kit = TestKit::new();
    let acc = kit.spawn(bank_account(7), "acc");
    let mut probe = kit.probe::<i64>();
    let msg = AccountMsg::GetBalance {
        reply_to: probe.actor_ref(),
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&msg, &mut bytes).unwrap();
    // Without a system to resolve refs against, the ref cannot be read back.
    assert!(ciborium::from_reader::<AccountMsg, _>(bytes.as_slice()).is_err());
    let back: AccountMsg = kit
        .system()
        .resolving_refs(|| ciborium::from_reader(bytes.as_slice()))
        .unwrap();
    acc.tell(back);
    // The probe's ref is not an actor in the registry, so the decoded ref is a dead one: the
    // reply becomes a dead letter instead of reaching some other actor.
    probe.expect_no_message(casty_tests::QUIET).await;

    // A ref to a live actor comes back as a working ref.
    let mut bytes = Vec::new();
    ciborium::into_writer(&acc, &mut bytes).unwrap();
    let acc2: ActorRef<AccountMsg> = kit
        .system()
        .resolving_refs(|| ciborium::from_reader(bytes.as_slice()))
        .unwrap();
    assert_eq!(acc2, acc);
    acc2.tell(Deposit { amount: 1 });
    assert_eq!(
        kit.system()
            .ask(&acc, AccountMsg::get_balance, T)
            .await
            .unwrap(),
        8
    );
    kit.shutdown().await;
}

// ---------------------------------------------------------------- state kept in place

/// A state value that counts its clones.
#[derive(Debug)]
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
enum CounterMsg {
    Hit,
    Get {
        reply_to: ActorRef<u64>,
    },
    EarlyReturn {
        reply_to: ActorRef<u64>,
    },
    #[unit]
    Fail,
    #[unit]
    Panic,
}

#[message]
struct Hit;

#[behavior]
fn counter(
    _ctx: &mut ActorContext<CounterMsg>,
    msg: CounterMsg,
    mut state: Tracked,
) -> Result<Behavior<CounterMsg>, Boom> {
    match msg {
        CounterMsg::Hit(_) => state.hits += 1,
        CounterMsg::Get { reply_to } => reply_to.tell(state.hits),
        CounterMsg::EarlyReturn { reply_to } => {
            state.hits += 1000;
            reply_to.tell(state.hits);
            return Ok(Behaviors::same());
        }
        CounterMsg::Fail => {
            state.hits += 1;
            return Err(Boom::new("fail"));
        }
        CounterMsg::Panic => panic!("boom"),
    }
    Ok(Behaviors::same())
}

fn tracked(clones: &Arc<AtomicUsize>) -> Tracked {
    Tracked {
        hits: 0,
        clones: clones.clone(),
    }
}

#[tokio::test]
async fn mut_state_is_kept_in_place_and_never_cloned_per_message() {
    let kit = TestKit::new();
    let clones = Arc::new(AtomicUsize::new(0));
    let c = kit.spawn(counter(tracked(&clones)), "counter");
    for _ in 0..100 {
        c.tell(Hit);
    }
    assert_eq!(kit.system().ask(&c, CounterMsg::get, T).await.unwrap(), 100);
    // `return` inside the body still keeps the state.
    assert_eq!(
        kit.system()
            .ask(&c, CounterMsg::early_return, T)
            .await
            .unwrap(),
        1100
    );
    assert_eq!(
        kit.system().ask(&c, CounterMsg::get, T).await.unwrap(),
        1100
    );
    // One clone: the incarnation's copy of the initial state, made at spawn.
    assert_eq!(clones.load(Ordering::SeqCst), 1);
    kit.shutdown().await;
}

#[tokio::test]
async fn an_error_resumed_keeps_the_state_and_a_restart_resets_it() {
    let kit = TestKit::new();
    let clones = Arc::new(AtomicUsize::new(0));
    let resume =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let c = kit.spawn(
        Behaviors::supervise(counter(tracked(&clones)), resume),
        "resumed",
    );
    c.tell(Hit);
    c.tell(CounterMsg::Fail); // the `?`-style error path still puts the state back
    assert_eq!(kit.system().ask(&c, CounterMsg::get, T).await.unwrap(), 2);

    let restart = SupervisorStrategy::new(10, Duration::from_secs(60));
    let r = kit.spawn(
        Behaviors::supervise(counter(tracked(&clones)), restart),
        "restarted",
    );
    r.tell(Hit);
    r.tell(CounterMsg::Fail);
    assert_eq!(kit.system().ask(&r, CounterMsg::get, T).await.unwrap(), 0);
    // Spawn and restart each copy the initial state once; messages copy nothing.
    assert_eq!(clones.load(Ordering::SeqCst), 3);
    kit.shutdown().await;
}

#[tokio::test]
async fn a_panic_under_resume_restarts_because_the_state_is_gone() {
    let kit = TestKit::new();
    let clones = Arc::new(AtomicUsize::new(0));
    let mut restarts = kit.event_probe::<ActorRestarted>();
    let resume =
        SupervisorStrategy::new(10, Duration::from_secs(60)).decider(|_| Directive::Resume);
    let c = kit.spawn(
        Behaviors::supervise(counter(tracked(&clones)), resume),
        "poisoned",
    );
    c.tell(Hit);
    c.tell(CounterMsg::Panic);
    let e = restarts.expect_message(T).await;
    assert_eq!(e.path, *c.path());
    assert_eq!(kit.system().ask(&c, CounterMsg::get, T).await.unwrap(), 0);
    kit.shutdown().await;
}

// ---------------------------------------------------------------- async, setup, generics

#[message_enum(local)]
enum SlowMsg {
    Add { n: u64, reply_to: ActorRef<u64> },
}

#[behavior]
async fn slow_adder(
    _ctx: &mut ActorContext<SlowMsg>,
    msg: SlowMsg,
    mut total: u64,
) -> Behavior<SlowMsg> {
    let SlowMsg::Add { n, reply_to } = msg;
    tokio::time::sleep(Duration::from_millis(1)).await;
    total += n;
    reply_to.tell(total);
    Behaviors::same()
}

#[tokio::test]
async fn async_behaviors_await_and_keep_mut_state() {
    let kit = TestKit::new();
    let a = kit.spawn(slow_adder(10), "adder");
    let mut probe = kit.probe::<u64>();
    for n in 1..=5 {
        a.tell(SlowMsg::Add {
            n,
            reply_to: probe.actor_ref(),
        });
    }
    for expected in [11, 13, 16, 20, 25] {
        assert_eq!(probe.expect_message(T).await, expected);
    }
    assert_eq!(
        kit.system().ask(&a, SlowMsg::add(100), T).await.unwrap(),
        125
    );
    kit.shutdown().await;
}

#[message_enum(terminated)]
enum WatcherMsg {
    Watch(ActorRef<AccountMsg>),
}

#[behavior(setup)]
fn watcher(
    ctx: &mut ActorContext<WatcherMsg>,
    starts: Arc<AtomicUsize>,
    report: ActorRef<String>,
) -> Behavior<WatcherMsg> {
    starts.fetch_add(1, Ordering::SeqCst);
    report.tell(format!("started at {}", ctx.path()));
    watching(report)
}

#[behavior]
fn watching(
    ctx: &mut ActorContext<WatcherMsg>,
    msg: WatcherMsg,
    report: ActorRef<String>,
) -> Behavior<WatcherMsg> {
    match msg {
        WatcherMsg::Watch(target) => ctx.watch(&target),
        WatcherMsg::Terminated(t) => report.tell(format!("{} terminated", t.path)),
    }
    Behaviors::same()
}

#[tokio::test]
async fn setup_runs_at_each_start_and_terminated_variant_enables_watch() {
    let kit = TestKit::new();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut probe = kit.probe::<String>();
    let w = kit.spawn(watcher(starts.clone(), probe.actor_ref()), "watcher");
    assert_eq!(probe.expect_message(T).await, "started at /watcher");
    let acc = kit.spawn(bank_account(0), "acc");
    w.tell(WatcherMsg::Watch(acc.clone()));
    acc.tell(AccountMsg::Close);
    assert_eq!(probe.expect_message(T).await, "/acc terminated");
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    let _: fn(Terminated) -> WatcherMsg = WatcherMsg::from;
    kit.shutdown().await;
}

#[behavior]
fn echo<T: Message + Clone>(
    _ctx: &mut ActorContext<(T, ActorRef<T>)>,
    msg: (T, ActorRef<T>),
    times: usize,
) -> Behavior<(T, ActorRef<T>)> {
    for _ in 0..times {
        msg.1.tell(msg.0.clone());
    }
    Behaviors::same()
}

#[tokio::test]
async fn generic_behaviors() {
    let kit = TestKit::new();
    let e = kit.spawn(echo::<String>(2), "echo");
    let mut probe = kit.probe::<String>();
    e.tell(("hi".to_string(), probe.actor_ref()));
    assert_eq!(probe.expect_message(T).await, "hi");
    assert_eq!(probe.expect_message(T).await, "hi");
    kit.shutdown().await;
}
