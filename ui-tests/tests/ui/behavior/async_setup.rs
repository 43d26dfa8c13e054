use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior(setup)]
async fn start(_ctx: &mut ActorContext<u64>) -> Behavior<u64> {
    Behaviors::ignore()
}

fn main() {}
