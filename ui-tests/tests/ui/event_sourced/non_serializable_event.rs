use casty::{event_sourced, message, message_enum, ActorContext, Behavior, Behaviors, Message};

#[derive(Debug)]
struct Added {
    n: u64,
}
impl Message for Added {}

#[message_enum(local)]
enum Cmd {
    Add { n: u64 },
}

#[message]
#[derive(Clone, Default)]
struct Counter {
    total: u64,
}

#[event_sourced]
impl Counter {
    fn on_event(&self, event: &Added) -> Self {
        Counter { total: self.total + event.n }
    }

    async fn on_command(&self, _ctx: &mut ActorContext<Cmd>, cmd: Cmd) -> Behavior<Cmd> {
        match cmd {
            Cmd::Add { n } => Behaviors::persisted([Added { n }]),
        }
    }
}

fn main() {}
