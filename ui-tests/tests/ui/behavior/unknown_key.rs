use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior(stup)]
fn counter(_ctx: &mut ActorContext<u64>, _msg: u64, _n: u64) -> Behavior<u64> {
    Behaviors::same()
}

fn main() {}
