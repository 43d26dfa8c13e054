//! Ports the Casty (Python) example "Actor Hierarchies": a manager spawns and watches workers.
use std::collections::HashMap;
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message, Terminated};

// ANCHOR: protocol
#[derive(Debug)]
struct Task {
    description: String,
}
impl Message for Task {}

#[derive(Debug)]
enum ManagerMsg {
    Hire { name: String },
    Assign { worker: String, task: String },
    Fire { name: String },
    Terminated(Terminated),
}
impl Message for ManagerMsg {}

/// Lets `ctx.watch` deliver `Terminated` to the manager.
impl From<Terminated> for ManagerMsg {
    fn from(t: Terminated) -> Self {
        ManagerMsg::Terminated(t)
    }
}
// ANCHOR_END: protocol

fn worker(name: String) -> Behavior<Task> {
    Behaviors::receive(move |_ctx, msg: Task| {
        println!("[{name}] working on: {}", msg.description);
        Behaviors::same()
    })
}

// ANCHOR: manager
fn manager() -> Behavior<ManagerMsg> {
    Behaviors::setup(|_ctx| managing(HashMap::new()))
}

fn managing(workers: HashMap<String, ActorRef<Task>>) -> Behavior<ManagerMsg> {
    Behaviors::receive(move |ctx, msg| match msg {
        ManagerMsg::Hire { name } => {
            let r = ctx
                .spawn(worker(name.clone()), &name)
                .expect("unique worker name");
            ctx.watch(&r);
            let mut workers = workers.clone();
            workers.insert(name, r);
            managing(workers)
        }
        ManagerMsg::Assign { worker, task } => {
            if let Some(w) = workers.get(&worker) {
                w.tell(Task { description: task });
            }
            Behaviors::same()
        }
        ManagerMsg::Fire { name } => {
            if let Some(w) = workers.get(&name) {
                ctx.stop(w);
            }
            Behaviors::same()
        }
        ManagerMsg::Terminated(t) => {
            println!("Worker stopped: {}", t.address());
            let mut workers = workers.clone();
            workers.retain(|_, r| r.path() != &t.path);
            managing(workers)
        }
    })
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
