use casty::message_enum;

#[message_enum]
struct Deposit {
    amount: i64,
}

fn main() {}
