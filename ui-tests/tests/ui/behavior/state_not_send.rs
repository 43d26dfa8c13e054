use std::rc::Rc;

use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn counter(_ctx: &mut ActorContext<u64>, _msg: u64, shared: Rc<u64>) -> Behavior<u64> {
    let _ = shared;
    Behaviors::same()
}

fn main() {}
