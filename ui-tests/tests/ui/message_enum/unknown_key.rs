use casty::message_enum;

#[message_enum(locl)]
enum Ping {
    #[unit]
    Ping,
}

fn main() {}
