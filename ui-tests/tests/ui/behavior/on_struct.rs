use casty::behavior;

#[behavior]
struct Counter {
    n: u64,
}

fn main() {}
