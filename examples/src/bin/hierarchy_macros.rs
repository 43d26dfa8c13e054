//! Ports the Casty (Python) example "Actor Hierarchies", with macros: a manager spawns and watches
//! workers.
use std::collections::HashMap;
use std::time::Duration;

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
};

// ANCHOR: protocol
#[message]
struct Task {
    description: String,
}

/// `terminated` adds the `Terminated` variant that lets `ctx.watch` deliver to the manager.
#[message_enum(terminated)]
enum ManagerMsg {
    Hire { name: String },
    Assign { worker: String, task: String },
    Fire { name: String },
}
// ANCHOR_END: protocol

#[behavior]
fn worker(_ctx: &mut ActorContext<Task>, msg: Task, name: String) -> Behavior<Task> {
    println!("[{name}] working on: {}", msg.description);
    Behaviors::same()
}

// ANCHOR: manager
#[behavior(setup)]
fn manager(_ctx: &mut ActorContext<ManagerMsg>) -> Behavior<ManagerMsg> {
    managing(HashMap::new())
}

/// The worker map is `mut` state: changed in place, kept by `Behaviors::same()`.
#[behavior]
fn managing(
    ctx: &mut ActorContext<ManagerMsg>,
    msg: ManagerMsg,
    mut workers: HashMap<String, ActorRef<Task>>,
) -> Behavior<ManagerMsg> {
    match msg {
        ManagerMsg::Hire { name } => {
            let r = ctx
                .spawn(worker(name.clone()), &name)
                .expect("unique worker name");
            ctx.watch(&r);
            workers.insert(name, r);
        }
        ManagerMsg::Assign { worker, task } => {
            if let Some(w) = workers.get(&worker) {
                w.tell(Task { description: task });
            }
        }
        ManagerMsg::Fire { name } => {
            if let Some(w) = workers.get(&name) {
                ctx.stop(w);
            }
        }
        ManagerMsg::Terminated(t) => {
            println!("Worker stopped: {}", t.address());
            workers.retain(|_, r| r.path() != &t.path);
        }
    }
    Behaviors::same()
}
// ANCHOR_END: manager

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let system = ActorSystem::new("company");
    let mgr = system.spawn(manager(), "manager").expect("spawn");
    mgr.tell(ManagerMsg::Hire {
        name: "alice".into(),
    });
    mgr.tell(ManagerMsg::Hire { name: "bob".into() });
    tokio::time::sleep(Duration::from_millis(100)).await;

    mgr.tell(ManagerMsg::Assign {
        worker: "alice".into(),
        task: "implement login".into(),
    });
    mgr.tell(ManagerMsg::Assign {
        worker: "bob".into(),
        task: "write tests".into(),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    mgr.tell(ManagerMsg::Fire {
        name: "alice".into(),
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    system.shutdown().await;
}
