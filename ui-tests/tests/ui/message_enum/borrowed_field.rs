use casty::message_enum;

#[message_enum]
enum Greeting {
    Hello { name: &str },
}

fn main() {}
