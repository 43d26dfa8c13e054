use casty::{behavior, Behavior, Behaviors};

#[behavior]
fn counter(msg: u64, n: u64) -> Behavior<u64> {
    let _ = (msg, n);
    Behaviors::same()
}

fn main() {}
