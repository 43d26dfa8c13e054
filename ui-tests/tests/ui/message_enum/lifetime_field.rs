use std::borrow::Cow;

use casty::message_enum;

#[message_enum]
enum Greeting<'a> {
    Hello { name: Cow<'a, str> },
}

fn main() {}
