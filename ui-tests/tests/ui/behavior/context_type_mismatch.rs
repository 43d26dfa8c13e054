use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn counter(_ctx: &mut ActorContext<String>, msg: u64, n: u64) -> Behavior<u64> {
    let _ = (msg, n);
    Behaviors::same()
}

fn main() {}
