//! The three small programs of the guide's "Coming from ractor, kameo or actix" chapter: a counter
//! told and asked, a parent whose failing child is restarted, and one actor asking another.
use std::time::Duration;

use casty::{
    ActorRef, ActorSystem, AskError, Behavior, Behaviors, Directive, Message, SupervisorStrategy,
};

// ANCHOR: counter
#[derive(Debug)]
enum CounterMsg {
    Add(i64),
    Get(ActorRef<i64>),
}
impl Message for CounterMsg {}

/// The state is the argument: each `Add` returns the behavior for the new total.
fn counter(total: i64) -> Behavior<CounterMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        CounterMsg::Add(n) => counter(total + n),
        CounterMsg::Get(reply_to) => {
            reply_to.tell(total);
            Behaviors::same()
        }
    })
}
// ANCHOR_END: counter

// ANCHOR: supervision
#[derive(Debug)]
enum WorkerMsg {
    Job(&'static str),
    Done(ActorRef<usize>),
}
impl Message for WorkerMsg {}

#[derive(Debug, thiserror::Error)]
#[error("cannot do job {0:?}")]
struct BadJob(&'static str);

/// Counts the jobs it has done; a job named "bad" fails it.
fn worker(done: usize) -> Behavior<WorkerMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        WorkerMsg::Job("bad") => Err(BadJob("bad")),
        WorkerMsg::Job(_) => Ok(worker(done + 1)),
        WorkerMsg::Done(reply_to) => {
            reply_to.tell(done);
            Ok(Behaviors::same())
        }
    })
}

/// Spawns the worker as its child, under a strategy that restarts it (at most 3 times a minute),
/// and forwards every message to it.
fn parent() -> Behavior<WorkerMsg> {
    Behaviors::setup(|ctx| {
        let strategy = SupervisorStrategy::new(3, Duration::from_secs(60))
            .decider(|_failure| Directive::Restart);
        let child = ctx
            .spawn(Behaviors::supervise(worker(0), strategy), "worker")
            .expect("spawn the worker");
        Behaviors::receive(move |_ctx, msg| {
            child.tell(msg);
            Behaviors::same()
        })
    })
}
// ANCHOR_END: supervision

// ANCHOR: request_reply
#[derive(Debug)]
struct Greet {
    name: String,
    reply_to: ActorRef<String>,
}
impl Message for Greet {}

fn greeter() -> Behavior<Greet> {
    Behaviors::receive(|_ctx, msg: Greet| {
        msg.reply_to.tell(format!("Hello, {}!", msg.name));
        Behaviors::same()
    })
}

#[derive(Debug)]
enum ClientMsg {
    /// Greet `name`, and tell `done` what the greeter said.
    Start {
        name: String,
        done: ActorRef<String>,
    },
    /// The greeter's answer (or why there is none), sent back to the client as a message.
    Greeted {
        answer: Result<String, AskError>,
        done: ActorRef<String>,
    },
}
impl Message for ClientMsg {}

fn client(greeter: ActorRef<Greet>) -> Behavior<ClientMsg> {
    Behaviors::receive(move |ctx, msg| {
        match msg {
            // The client does not wait: it goes on with its mailbox, and the reply comes back
            // later as a `Greeted` message.
            ClientMsg::Start { name, done } => ctx.ask(
                &greeter,
                |reply_to| Greet { name, reply_to },
                Duration::from_secs(5),
                |answer| ClientMsg::Greeted { answer, done },
            ),
            ClientMsg::Greeted { answer, done } => match answer {
                Ok(text) => done.tell(format!("the greeter said {text:?}")),
                Err(e) => done.tell(format!("no greeting: {e}")),
            },
        }
        Behaviors::same()
    })
}
// ANCHOR_END: request_reply

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("coming-from");
    let timeout = Duration::from_secs(5);

    // ANCHOR: counter_main
    let counter = system.spawn(counter(0), "counter").expect("spawn");
    counter.tell(CounterMsg::Add(1)); // fire and forget
    counter.tell(CounterMsg::Add(2));
    let total = counter
        .ask(CounterMsg::Get, timeout) // the variant gets the reply ref
        .await
        .expect("the counter answers");
    println!("counter: {total}");
    // ANCHOR_END: counter_main

    // ANCHOR: supervision_main
    let parent = system.spawn(parent(), "parent").expect("spawn");
    parent.tell(WorkerMsg::Job("a"));
    parent.tell(WorkerMsg::Job("b"));
    let done = system.ask(&parent, WorkerMsg::Done, timeout).await;
    println!("worker done before the failure: {}", done.expect("done"));
    parent.tell(WorkerMsg::Job("bad")); // the worker fails and is restarted with its initial state
    parent.tell(WorkerMsg::Job("c"));
    let done = system.ask(&parent, WorkerMsg::Done, timeout).await;
    println!("worker done after the restart: {}", done.expect("done"));
    // ANCHOR_END: supervision_main

    // ANCHOR: request_reply_main
    let greeter = system.spawn(greeter(), "greeter").expect("spawn");
    let client = system.spawn(client(greeter), "client").expect("spawn");
    let said = system
        .ask(
            &client,
            |done| ClientMsg::Start {
                name: "Alice".into(),
                done,
            },
            timeout,
        )
        .await
        .expect("the client answers");
    println!("{said}");
    // ANCHOR_END: request_reply_main

    system.shutdown().await;
}
