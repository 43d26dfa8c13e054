use casty::message_enum;

#[message_enum]
enum AccountMsg {
    GetBalance { reply_to: std::sync::mpsc::Sender<i64> },
}

fn main() {}
