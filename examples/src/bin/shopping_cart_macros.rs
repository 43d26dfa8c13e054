//! Ports the Casty (Python) example "State Machines", with macros: a shopping cart whose states are
//! behaviors.
use std::collections::BTreeMap;
use std::time::Duration;

use casty::{
    behavior, message, message_enum, ActorContext, ActorRef, ActorSystem, Behavior, Behaviors,
};

// ANCHOR: protocol
#[message]
#[derive(Clone, PartialEq)]
struct Item {
    name: String,
    price: f64,
}

#[message]
#[derive(Clone, PartialEq)]
struct Receipt {
    items: Vec<Item>,
    total: f64,
}

#[message_enum]
enum CartMsg {
    AddItem(Item),
    Checkout { reply_to: ActorRef<Receipt> },
    GetTotal { reply_to: ActorRef<f64> },
}
// ANCHOR_END: protocol

// ANCHOR: states
#[behavior]
fn empty_cart(_ctx: &mut ActorContext<CartMsg>, msg: CartMsg) -> Behavior<CartMsg> {
    match msg {
        CartMsg::AddItem(item) => active_cart(BTreeMap::from([(item.name.clone(), item)])),
        CartMsg::Checkout { .. } => Behaviors::same(), // cannot check out an empty cart
        CartMsg::GetTotal { reply_to } => {
            reply_to.tell(0.0);
            Behaviors::same()
        }
    }
}

/// `items` is `mut` state: an added item goes into the map in place, with no copy of the cart.
#[behavior]
fn active_cart(
    _ctx: &mut ActorContext<CartMsg>,
    msg: CartMsg,
    mut items: BTreeMap<String, Item>,
) -> Behavior<CartMsg> {
    match msg {
        CartMsg::AddItem(item) => {
            items.insert(item.name.clone(), item);
            Behaviors::same()
        }
        CartMsg::Checkout { reply_to } => {
            let all: Vec<Item> = items.values().cloned().collect();
            let total = all.iter().map(|i| i.price).sum();
            reply_to.tell(Receipt { items: all, total });
            checked_out()
        }
        CartMsg::GetTotal { reply_to } => {
            reply_to.tell(items.values().map(|i| i.price).sum::<f64>());
            Behaviors::same()
        }
    }
}

#[behavior]
fn checked_out(_ctx: &mut ActorContext<CartMsg>, msg: CartMsg) -> Behavior<CartMsg> {
    if let CartMsg::GetTotal { reply_to } = msg {
        reply_to.tell(0.0);
    }
    Behaviors::same() // terminal state: ignore modifications
}
// ANCHOR_END: states

#[tokio::main]
async fn main() {
    let system = ActorSystem::new("shop");
    let cart = system.spawn(empty_cart(), "cart").expect("spawn");
    let t = Duration::from_secs(5);

    cart.tell(CartMsg::AddItem(Item {
        name: "keyboard".into(),
        price: 75.0,
    }));
    cart.tell(CartMsg::AddItem(Item {
        name: "mouse".into(),
        price: 25.0,
    }));

    let total = system
        .ask(&cart, CartMsg::get_total, t)
        .await
        .expect("total");
    println!("Total: ${total:.2}");

    let receipt = system
        .ask(&cart, CartMsg::checkout, t)
        .await
        .expect("receipt");
    println!(
        "Receipt: {} items, ${:.2}",
        receipt.items.len(),
        receipt.total
    );

    // Further modifications are ignored: checked_out is a terminal state.
    cart.tell(CartMsg::AddItem(Item {
        name: "monitor".into(),
        price: 300.0,
    }));
    let after = system
        .ask(&cart, CartMsg::get_total, t)
        .await
        .expect("total");
    println!("After checkout: ${after:.2}");
    system.shutdown().await;
}
