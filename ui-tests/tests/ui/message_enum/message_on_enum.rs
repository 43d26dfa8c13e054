use casty::message;

#[message]
enum Cmd {
    Stop,
}

fn main() {}
