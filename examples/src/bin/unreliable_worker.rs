//! Ports the Casty (Python) example "Supervision": a worker that crashes and is restarted.
use std::time::Duration;

use casty::{ActorSystem, Behavior, Behaviors, Directive, SupervisorStrategy};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RuntimeError(String);

// ANCHOR: worker
fn unreliable_worker() -> Behavior<String> {
    Behaviors::receive(|_ctx, msg: String| {
        if msg == "crash" {
            return Err(RuntimeError("something went wrong".into()));
        }
        println!("Processed: {msg}");
        Ok(Behaviors::same())
    })
}
// ANCHOR_END: worker

#[tokio::main]
async fn main() {
    // ANCHOR: strategy
    let strategy =
        SupervisorStrategy::new(3, Duration::from_secs(60)).decider(|_failure| Directive::Restart);
    // ANCHOR_END: strategy

    let system = ActorSystem::new("supervision");
    let worker = system
        .spawn(
            Behaviors::supervise(unreliable_worker(), strategy),
            "worker",
        )
        .expect("spawn");

    worker.tell("crash"); // fails, the supervisor restarts it
    tokio::time::sleep(Duration::from_millis(200)).await;

    worker.tell("hello"); // succeeds: the actor recovered
    tokio::time::sleep(Duration::from_millis(100)).await;
    system.shutdown().await;
}
