use casty::{behavior, ActorContext, Behavior, Behaviors};

#[behavior]
fn collecting(_ctx: &mut ActorContext<String>, msg: String, items: Vec<String>) -> Behavior<String> {
    if msg == "done" {
        return done(items);
    }
    Behaviors::same()
}

#[behavior]
fn done(_ctx: &mut ActorContext<String>, _msg: String, items: Vec<String>) -> Behavior<String> {
    let _ = items.len();
    Behaviors::same()
}

fn main() {}
