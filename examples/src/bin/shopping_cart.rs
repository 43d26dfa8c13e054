//! Ports the Casty (Python) example "State Machines": a shopping cart whose states are behaviors.
use std::collections::BTreeMap;
use std::time::Duration;

use casty::{ActorRef, ActorSystem, Behavior, Behaviors, Message};

// ANCHOR: protocol
#[derive(Debug, Clone, PartialEq)]
struct Item {
    name: String,
    price: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Receipt {
    items: Vec<Item>,
    total: f64,
}

#[derive(Debug)]
enum CartMsg {
    AddItem(Item),
    Checkout { reply_to: ActorRef<Receipt> },
    GetTotal { reply_to: ActorRef<f64> },
}
impl Message for CartMsg {}
// ANCHOR_END: protocol

// ANCHOR: states
fn empty_cart() -> Behavior<CartMsg> {
    Behaviors::receive(|_ctx, msg| match msg {
        CartMsg::AddItem(item) => active_cart(BTreeMap::from([(item.name.clone(), item)])),
        CartMsg::Checkout { .. } => Behaviors::same(), // cannot check out an empty cart
        CartMsg::GetTotal { reply_to } => {
            reply_to.tell(0.0);
            Behaviors::same()
        }
    })
}

fn active_cart(items: BTreeMap<String, Item>) -> Behavior<CartMsg> {
    Behaviors::receive(move |_ctx, msg| match msg {
        CartMsg::AddItem(item) => {
            let mut items = items.clone();
            items.insert(item.name.clone(), item);
            active_cart(items)
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
    })
}

fn checked_out() -> Behavior<CartMsg> {
    Behaviors::receive(|_ctx, msg| match msg {
        CartMsg::GetTotal { reply_to } => {
            reply_to.tell(0.0);
            Behaviors::same()
        }
        _ => Behaviors::same(), // terminal state: ignore modifications
    })
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
        .ask(&cart, |reply_to| CartMsg::GetTotal { reply_to }, t)
        .await
        .expect("total");
    println!("Total: ${total:.2}");

    let receipt = system
        .ask(&cart, |reply_to| CartMsg::Checkout { reply_to }, t)
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
        .ask(&cart, |reply_to| CartMsg::GetTotal { reply_to }, t)
        .await
        .expect("total");
    println!("After checkout: ${after:.2}");
    system.shutdown().await;
}
