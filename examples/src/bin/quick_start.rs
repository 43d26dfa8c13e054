//! Ports the Casty (Python) example "Quick Start": a greeter actor.
// ANCHOR: all
use std::time::Duration;

use casty::{ActorSystem, Behavior, Behaviors, Message};

// ANCHOR: message
#[derive(Debug)]
struct Greet {
    name: String,
}
impl Message for Greet {}
// ANCHOR_END: message

// ANCHOR: behavior
fn greeter() -> Behavior<Greet> {
    Behaviors::receive(|_ctx, msg: Greet| {
        println!("Hello, {}!", msg.name);
        Behaviors::same()
    })
}
// ANCHOR_END: behavior

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("quick-start");
    let greeter = system.spawn(greeter(), "greeter").expect("spawn");
    greeter.tell(Greet {
        name: "Alice".into(),
    });
    greeter.tell(Greet { name: "Bob".into() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    system.shutdown().await;
}
// ANCHOR_END: all
