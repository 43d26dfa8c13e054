use casty::message_enum;

#[message_enum]
enum Cmd {
    #[unit]
    Stop(u8),
}

fn main() {}
