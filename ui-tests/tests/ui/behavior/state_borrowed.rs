use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn greeter(_ctx: &mut ActorContext<u64>, _msg: u64, name: &str) -> Behavior<u64> {
    let _ = name;
    Behaviors::same()
}

fn main() {}
