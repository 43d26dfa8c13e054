//! Every mistake is reported at once, each at its own tokens.
use casty::{message_enum, ActorRef};

#[message_enum(local, wire_name = "x")]
enum Order<T> {
    Place { item: &str, reply_to: u64 },
    Status { reply_to: ActorRef<String> },
    Item(T),
}

fn main() {}
