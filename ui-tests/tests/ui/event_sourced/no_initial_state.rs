use casty::{event_sourced, message, message_enum, ActorContext, Behavior, Behaviors};

#[message_enum]
enum Ev {
    Added { n: u64 },
}

#[message_enum(local)]
enum Cmd {
    Add { n: u64 },
}

#[message]
#[derive(Clone)]
struct Counter {
    total: u64,
}

#[event_sourced]
impl Counter {
    fn on_event(&self, event: &Ev) -> Self {
        match event {
            Ev::Added { n } => Counter { total: self.total + n },
        }
    }

    async fn on_command(&self, _ctx: &mut ActorContext<Cmd>, cmd: Cmd) -> Behavior<Cmd> {
        match cmd {
            Cmd::Add { n } => Behaviors::persisted([Ev::Added { n }]),
        }
    }
}

fn main() {}
