//! Ports the supervision guide of Casty (Python), with macros: strategies, lifecycle hooks and
//! supervision trees. Prints the guide's output block line for line, exactly as `supervision` does.
use std::time::Duration;

use casty::{
    behavior, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors, Directive,
    Failure, SupervisorStrategy,
};

// ANCHOR: messages
#[message_enum]
enum WorkerMsg {
    Process {
        task: String,
    },
    GetProcessed {
        reply_to: ActorRef<Vec<String>>,
    },
    #[unit]
    CrashOnPurpose,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ValueError(String);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RuntimeError(String);
// ANCHOR_END: messages

// ANCHOR: worker
/// `processed` is `mut` state: appended in place, and reset by a restart to the initial empty list.
#[behavior]
fn worker(
    ctx: &mut ActorContext<WorkerMsg>,
    msg: WorkerMsg,
    mut processed: Vec<String>,
) -> Result<Behavior<WorkerMsg>, Failure> {
    match msg {
        WorkerMsg::Process { task } if task == "bad" => {
            return Err(ValueError(format!("Cannot process: {task}")).into());
        }
        WorkerMsg::Process { task } => {
            println!(" [{}] Processed: {task}", ctx.path());
            processed.push(task);
        }
        WorkerMsg::GetProcessed { reply_to } => reply_to.tell(processed.clone()),
        WorkerMsg::CrashOnPurpose => return Err(RuntimeError("Intentional crash!".into()).into()),
    }
    Ok(Behaviors::same())
}
// ANCHOR_END: worker

// ANCHOR: strategies
fn always_restart() -> SupervisorStrategy {
    SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_| Directive::Restart)
}

fn selective_strategy() -> SupervisorStrategy {
    SupervisorStrategy::new(5, Duration::from_secs(60)).decider(|failure| {
        if let Some(e) = failure.downcast_ref::<ValueError>() {
            println!(" ValueError — restarting: {e}");
            Directive::Restart
        } else if let Some(e) = failure.downcast_ref::<RuntimeError>() {
            println!(" RuntimeError — stopping: {e}");
            Directive::Stop
        } else {
            Directive::Escalate
        }
    })
}
// ANCHOR_END: strategies

// ANCHOR: lifecycle
fn resilient_worker() -> Behavior<WorkerMsg> {
    Behaviors::with_lifecycle(Behaviors::supervise(
        worker(Vec::new()),
        selective_strategy(),
    ))
    .pre_start(|ctx| println!(" [{}] Started", ctx.path()))
    .post_stop(|ctx| println!(" [{}] Stopped", ctx.path()))
    .pre_restart(|ctx, failure| println!(" [{}] Restarting after: {failure}", ctx.path()))
    .into()
}
// ANCHOR_END: lifecycle

// ANCHOR: tree
#[message_enum]
enum SupervisorMsg {
    DelegateWork { task: String, worker_index: usize },
    GetReport { reply_to: ActorRef<String> },
}

#[behavior(setup)]
fn team_supervisor(
    ctx: &mut ActorContext<SupervisorMsg>,
    num_workers: usize,
) -> Result<Behavior<SupervisorMsg>, casty::SpawnError> {
    let workers = (0..num_workers)
        .map(|i| {
            ctx.spawn(
                Behaviors::supervise(worker(Vec::new()), always_restart()),
                &format!("worker-{i}"),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(supervising(workers))
}

#[behavior]
fn supervising(
    _ctx: &mut ActorContext<SupervisorMsg>,
    msg: SupervisorMsg,
    workers: Vec<ActorRef<WorkerMsg>>,
) -> Behavior<SupervisorMsg> {
    match msg {
        SupervisorMsg::DelegateWork { task, worker_index } => {
            workers[worker_index % workers.len()].tell(WorkerMsg::Process { task });
        }
        SupervisorMsg::GetReport { reply_to } => {
            reply_to.tell(format!("Team has {} workers", workers.len()))
        }
    }
    Behaviors::same()
}
// ANCHOR_END: tree

// ANCHOR: main
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let system = ActorSystem::new("supervision");
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));

    // 1. Basic supervision: restart on failure
    println!("── Basic supervision ──");
    let r = system
        .spawn(
            Behaviors::supervise(worker(Vec::new()), always_restart()),
            "basic-worker",
        )
        .expect("spawn");
    r.tell(WorkerMsg::Process {
        task: "hello".into(),
    });
    r.tell(WorkerMsg::Process { task: "bad".into() }); // crashes → restarts
    r.tell(WorkerMsg::Process {
        task: "world".into(),
    }); // continues after restart
    pause(200).await;
    // The restart reset the state: only the task after the crash is remembered.
    let processed = system
        .ask(&r, WorkerMsg::get_processed, Duration::from_secs(5))
        .await
        .expect("processed");
    assert_eq!(processed, ["world"]);

    // 2. Selective strategy + lifecycle hooks
    println!("\n── Selective strategy + lifecycle hooks ──");
    let r2 = system
        .spawn(resilient_worker(), "selective-worker")
        .expect("spawn");
    r2.tell(WorkerMsg::Process {
        task: "good".into(),
    });
    pause(100).await;
    r2.tell(WorkerMsg::Process { task: "bad".into() }); // ValueError → restart
    pause(100).await;
    r2.tell(WorkerMsg::CrashOnPurpose); // RuntimeError → stop
    pause(200).await;

    // 3. Supervision tree: parent manages children
    println!("\n── Supervision tree ──");
    let sup = system.spawn(team_supervisor(3), "team").expect("spawn");
    sup.tell(SupervisorMsg::DelegateWork {
        task: "task-a".into(),
        worker_index: 0,
    });
    sup.tell(SupervisorMsg::DelegateWork {
        task: "task-b".into(),
        worker_index: 1,
    });
    sup.tell(SupervisorMsg::DelegateWork {
        task: "bad".into(),
        worker_index: 2,
    }); // worker-2 crashes, restarts
    sup.tell(SupervisorMsg::DelegateWork {
        task: "task-c".into(),
        worker_index: 2,
    }); // handled after restart
    pause(300).await;

    let report = system
        .ask(&sup, SupervisorMsg::get_report, Duration::from_secs(5))
        .await
        .expect("report");
    println!(" {report}");
    system.shutdown().await;
}
// ANCHOR_END: main
