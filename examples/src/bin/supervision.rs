//! Ports the supervision guide of Casty (Python): strategies, lifecycle hooks and supervision
//! trees. Prints the guide's output block line for line.
use std::time::Duration;

use casty::{
    ActorRef, ActorSystem, Behavior, Behaviors, Directive, Failure, Message, SupervisorStrategy,
};

// ANCHOR: messages
#[derive(Debug)]
enum WorkerMsg {
    Process { task: String },
    GetProcessed { reply_to: ActorRef<Vec<String>> },
    CrashOnPurpose,
}
impl Message for WorkerMsg {}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ValueError(String);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RuntimeError(String);
// ANCHOR_END: messages

// ANCHOR: worker
fn worker(processed: Vec<String>) -> Behavior<WorkerMsg> {
    Behaviors::receive(move |ctx, msg| match msg {
        WorkerMsg::Process { task } if task == "bad" => {
            Err(Failure::from(ValueError(format!("Cannot process: {task}"))))
        }
        WorkerMsg::Process { task } => {
            println!(" [{}] Processed: {task}", ctx.path());
            let mut processed = processed.clone();
            processed.push(task);
            Ok(worker(processed))
        }
        WorkerMsg::GetProcessed { reply_to } => {
            reply_to.tell(processed.clone());
            Ok(Behaviors::same())
        }
        WorkerMsg::CrashOnPurpose => Err(RuntimeError("Intentional crash!".into()).into()),
    })
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
#[derive(Debug)]
enum SupervisorMsg {
    DelegateWork { task: String, worker_index: usize },
    GetReport { reply_to: ActorRef<String> },
}
impl Message for SupervisorMsg {}

fn team_supervisor(num_workers: usize) -> Behavior<SupervisorMsg> {
    Behaviors::setup(move |ctx| {
        let workers: Vec<ActorRef<WorkerMsg>> = (0..num_workers)
            .map(|i| {
                ctx.spawn(
                    Behaviors::supervise(worker(Vec::new()), always_restart()),
                    &format!("worker-{i}"),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok::<_, casty::SpawnError>(supervising(workers))
    })
}

fn supervising(workers: Vec<ActorRef<WorkerMsg>>) -> Behavior<SupervisorMsg> {
    Behaviors::receive(move |_ctx, msg| {
        match msg {
            SupervisorMsg::DelegateWork { task, worker_index } => {
                workers[worker_index % workers.len()].tell(WorkerMsg::Process { task });
            }
            SupervisorMsg::GetReport { reply_to } => {
                reply_to.tell(format!("Team has {} workers", workers.len()))
            }
        }
        Behaviors::same()
    })
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
        .ask(
            &r,
            |reply_to| WorkerMsg::GetProcessed { reply_to },
            Duration::from_secs(5),
        )
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
        .ask(
            &sup,
            |reply_to| SupervisorMsg::GetReport { reply_to },
            Duration::from_secs(5),
        )
        .await
        .expect("report");
    println!(" {report}");
    system.shutdown().await;
}
// ANCHOR_END: main
