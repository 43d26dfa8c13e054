use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn counter(_ctx: &mut ActorContext<u64>, msg: String, n: u64) -> Behavior<u64> {
    let _ = (msg, n);
    Behaviors::same()
}

fn main() {}
