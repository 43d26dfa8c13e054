//! Ports the Casty (Python) example "Quick Start", with macros: a greeter actor.
// ANCHOR: all
use std::time::Duration;

use casty::{behavior, message, ActorContext, ActorSystem, Behavior, Behaviors};

// ANCHOR: message
#[message]
struct Greet {
    name: String,
}
// ANCHOR_END: message

// ANCHOR: behavior
#[behavior]
fn greeter(_ctx: &mut ActorContext<Greet>, msg: Greet) -> Behavior<Greet> {
    println!("Hello, {}!", msg.name);
    Behaviors::same()
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
