// ctx.watch needs the watcher's protocol to accept Terminated.
use casty::{Behavior, Behaviors};

fn watcher(target: casty::ActorRef<u8>) -> Behavior<String> {
    Behaviors::setup(move |ctx| {
        ctx.watch(&target);
        Behaviors::ignore()
    })
}

fn main() {}
