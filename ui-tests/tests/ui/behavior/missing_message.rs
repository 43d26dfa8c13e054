use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn counter(_ctx: &mut ActorContext<u64>) -> Behavior<u64> {
    Behaviors::same()
}

fn main() {}
