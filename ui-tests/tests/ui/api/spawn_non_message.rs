// Only types that implement casty::Message can be an actor's protocol.
use casty::{ActorSystem, Behaviors};

#[derive(Debug)]
struct Plain;

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("ui");
    let _ = system.spawn(Behaviors::ignore::<Plain>(), "plain");
}
