use casty::message_enum;

#[message_enum]
enum Envelope<T> {
    Item(T),
}

fn main() {}
