// The typed API accepts what the guide shows.
use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message, Terminated};

#[derive(Debug)]
enum Msg {
    Add(u64),
    Terminated(Terminated),
}
impl Message for Msg {}
impl From<u64> for Msg {
    fn from(n: u64) -> Self {
        Msg::Add(n)
    }
}
impl From<Terminated> for Msg {
    fn from(t: Terminated) -> Self {
        Msg::Terminated(t)
    }
}

fn counter(n: u64, other: ActorRef<u8>) -> Behavior<Msg> {
    Behaviors::setup(move |ctx| {
        ctx.watch(&other);
        let other = other.clone();
        Behaviors::receive(move |_ctx, msg| match msg {
            Msg::Add(k) => counter(n + k, other.clone()),
            Msg::Terminated(_) => Behaviors::stopped(),
        })
    })
}

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("ui");
    let other = system.spawn(Behaviors::ignore::<u8>(), "other").unwrap();
    let c = system.spawn(counter(0, other), "counter").unwrap();
    c.tell(5u64);
    system.shutdown().await;
}
