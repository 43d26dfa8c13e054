use casty::event_sourced;

#[event_sourced]
struct Counter {
    total: u64,
}

fn main() {}
