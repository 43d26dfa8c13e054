use casty::{behavior, ActorContext};

#[behavior]
fn counter(_ctx: &mut ActorContext<u64>, _msg: u64) -> u64 {
    0
}

fn main() {}
