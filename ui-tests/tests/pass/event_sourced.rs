//! Every accepted form of `#[event_sourced]`.

use casty::{event_sourced, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors, InMemoryJournal};
use std::sync::Arc;

#[message_enum]
enum Ev {
    Added { n: u64 },
}

#[message_enum(local)]
enum Cmd {
    Add { n: u64 },
    Get { reply_to: ActorRef<u64> },
}

#[message]
#[derive(Clone, Default)]
struct Counter {
    total: u64,
}

// Async on_command, Default initial state, every key.
#[event_sourced(snapshot_every = 10, keep_snapshots = 2, manifest = "ui.Counter")]
impl Counter {
    fn on_event(&self, event: &Ev) -> Self {
        match event {
            Ev::Added { n } => Counter { total: self.total + n },
        }
    }

    async fn on_command(&self, _ctx: &mut ActorContext<Cmd>, cmd: Cmd) -> Behavior<Cmd> {
        match cmd {
            Cmd::Add { n } => Behaviors::persisted([Ev::Added { n }]),
            Cmd::Get { reply_to } => {
                reply_to.tell(self.total);
                Behaviors::same()
            }
        }
    }

    // Other methods are kept as they are.
    fn doubled(&self) -> u64 {
        self.total * 2
    }
}

#[message_enum(local)]
enum Cmd2 {
    Add { n: u64 },
}

#[message]
#[derive(Clone)]
struct Named {
    total: u64,
}

// Sync on_command returning a Result, an explicit initial state, the state named by its type.
#[event_sourced]
impl Named {
    fn initial() -> Self {
        Named { total: 1 }
    }

    fn on_event(&self, event: &Ev) -> Named {
        match event {
            Ev::Added { n } => Named { total: self.total + n },
        }
    }

    fn on_command(&self, _ctx: &mut ActorContext<Cmd2>, cmd: Cmd2) -> Result<Behavior<Cmd2>, std::fmt::Error> {
        match cmd {
            Cmd2::Add { n } if n > 0 => Ok(Behaviors::persisted([Ev::Added { n }])),
            Cmd2::Add { .. } => Err(std::fmt::Error),
        }
    }
}

fn main() {
    let journal = Arc::new(InMemoryJournal::new());
    let _a: Behavior<Cmd> = Counter::behavior("a", journal.clone());
    let _b: Behavior<Cmd2> = Named::behavior(String::from("b"), journal.clone());
    let make = Named::entity(journal);
    let _c = make("c");
    let _ = Counter::default().doubled();
}
