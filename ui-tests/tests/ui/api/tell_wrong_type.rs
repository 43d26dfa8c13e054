// An ActorRef<M> accepts only messages convertible into M.
use casty::{ActorSystem, Behaviors};

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("ui");
    let counter = system.spawn(Behaviors::ignore::<u64>(), "counter").unwrap();
    counter.tell("not a number");
}
