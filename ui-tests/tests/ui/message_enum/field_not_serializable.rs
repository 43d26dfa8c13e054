use casty::message_enum;

struct Handle;

#[derive(Debug)]
struct NotSerde(u8);

#[message_enum]
enum Work {
    Run(NotSerde),
}

fn main() {
    let _ = Handle;
}
