use casty::message_enum;

#[message_enum]
fn protocol() {}

fn main() {}
