//! Ports the fauxtp supervisor example of Casty (Python): ChildSpecs, restart types, one-for-one
//! and one-for-all.
use std::time::Duration;

use casty::otp::{ChildRestart, ChildSpec, Strategy, SupervisorFlags, SupervisorMsg};
use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

// ANCHOR: worker
/// A GenServer-like worker: its state starts at 0; `Call` replies with it, `Add` changes it.
#[derive(Debug)]
enum WorkerMsg {
    Call { reply_to: ActorRef<i64> },
    Add(i64),
    Crash,
}
impl Message for WorkerMsg {}

#[derive(Debug, thiserror::Error)]
#[error("worker crashed")]
struct Crashed;

fn worker(state: i64) -> Behavior<WorkerMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        WorkerMsg::Call { reply_to } => {
            reply_to.tell(state);
            Ok(Behaviors::same())
        }
        WorkerMsg::Add(n) => Ok(worker(state + n)),
        WorkerMsg::Crash => Err(Crashed),
    })
}
// ANCHOR_END: worker

async fn state_of(system: &ActorSystem, path: &str) -> (ActorRef<WorkerMsg>, i64) {
    // Children restart asynchronously: wait until the name resolves again.
    for _ in 0..200 {
        if let Some(w) = system.lookup::<WorkerMsg>(path) {
            if let Ok(s) = system
                .ask(
                    &w,
                    |reply_to| WorkerMsg::Call { reply_to },
                    Duration::from_secs(1),
                )
                .await
            {
                return (w, s);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{path} did not come back");
}

async fn demo(system: &ActorSystem, name: &str, flags: SupervisorFlags) {
    // ANCHOR: supervisor
    let children = vec![
        ChildSpec::new("worker-1", worker(0), ChildRestart::Permanent),
        ChildSpec::new("worker-2", worker(0), ChildRestart::Permanent),
    ];
    let sup = system
        .spawn(Behaviors::supervisor(children, flags), name)
        .expect("spawn");
    // ANCHOR_END: supervisor

    let (w1, s1) = state_of(system, &format!("/{name}/worker-1")).await;
    let (w2, _) = state_of(system, &format!("/{name}/worker-2")).await;
    println!("{name}: worker-1 = {s1}");
    w1.tell(WorkerMsg::Add(10));
    w2.tell(WorkerMsg::Add(20));
    let (_, s1) = state_of(system, &format!("/{name}/worker-1")).await;
    let (_, s2) = state_of(system, &format!("/{name}/worker-2")).await;
    println!("{name}: worker-1 = {s1}, worker-2 = {s2}");

    w1.tell(WorkerMsg::Crash);
    // Wait for the restarted incarnation of worker-1 (a new uid under the same name).
    let mut restarted = None;
    for _ in 0..200 {
        match system.lookup::<WorkerMsg>(&format!("/{name}/worker-1")) {
            Some(r) if r != w1 => {
                restarted = Some(r);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(restarted.is_some(), "worker-1 was restarted");
    if flags.strategy() == Strategy::OneForAll {
        while system
            .lookup::<WorkerMsg>(&format!("/{name}/worker-2"))
            .as_ref()
            == Some(&w2)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (_, s1) = state_of(system, &format!("/{name}/worker-1")).await;
    let (_, s2) = state_of(system, &format!("/{name}/worker-2")).await;
    println!("{name}: after worker-1 crashed: worker-1 = {s1}, worker-2 = {s2}");
    let restarts = system
        .ask(&sup, SupervisorMsg::CountRestarts, Duration::from_secs(1))
        .await
        .expect("count");
    println!("{name}: restarts = {restarts}");
}

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("fauxtp");
    demo(&system, "one-for-one", SupervisorFlags::one_for_one()).await;
    demo(&system, "one-for-all", SupervisorFlags::one_for_all()).await;
    system.shutdown().await;
}
