//! Ports the Casty (Python) example "Cluster Sharding": bank accounts as sharded entities on a
//! two-node cluster. Every node runs the same code; a deposit told on either node reaches the
//! account wherever it lives, and either node can ask for the balance. Then the same accounts,
//! event-sourced on a journal the nodes share, in one line. (Two nodes in one process here, on
//! fixed ports of 127.0.0.1, so that the output is the same at every run.)
// ANCHOR: all
use std::sync::Arc;
use std::time::Duration;

use casty::cluster::ClusteredActorSystem;
use casty::sharding::{ShardEnvelope, ShardedEntity};
use casty::{event_sourced, message, message_enum, ActorContext, ActorRef, Behavior, Behaviors};
use casty::{EventJournal, InMemoryJournal};

// ANCHOR: entity
#[message_enum]
enum AccountMsg {
    Deposit { amount: i64 },
    GetBalance { reply_to: ActorRef<i64> },
}

/// One account: its id is given by sharding, its state is the behavior's argument.
fn account_entity(_entity_id: &str) -> Behavior<AccountMsg> {
    fn active(balance: i64) -> Behavior<AccountMsg> {
        Behaviors::receive(move |_ctx, msg| match msg {
            AccountMsg::Deposit { amount } => active(balance + amount),
            AccountMsg::GetBalance { reply_to } => {
                reply_to.tell(balance);
                Behaviors::same()
            }
        })
    }
    active(0)
}
// ANCHOR_END: entity

// ANCHOR: node
/// Both nodes share one seed list; the first seed forms the cluster.
async fn node(port: u16) -> ClusteredActorSystem {
    ClusteredActorSystem::builder("bank")
        .host("127.0.0.1")
        .port(port)
        .seed_nodes([
            "casty://bank@127.0.0.1:25520",
            "casty://bank@127.0.0.1:25521",
        ])
        .required_quorum(2, Duration::from_secs(30))
        .gossip_interval(Duration::from_millis(200))
        .start()
        .await
        .expect("the cluster formed")
}
// ANCHOR_END: node

// ANCHOR: persistent
#[message_enum]
enum Deposited {
    Deposited { amount: i64 },
}

#[message]
#[derive(Clone, Default)]
struct Balance {
    total: i64,
}

#[event_sourced]
impl Balance {
    fn on_event(&self, event: &Deposited) -> Self {
        match event {
            Deposited::Deposited { amount } => Balance {
                total: self.total + amount,
            },
        }
    }

    async fn on_command(
        &self,
        _ctx: &mut ActorContext<AccountMsg>,
        cmd: AccountMsg,
    ) -> Behavior<AccountMsg> {
        match cmd {
            AccountMsg::Deposit { amount } => {
                Behaviors::persisted([Deposited::Deposited { amount }])
            }
            AccountMsg::GetBalance { reply_to } => {
                reply_to.tell(self.total);
                Behaviors::same()
            }
        }
    }
}
// ANCHOR_END: persistent

// ANCHOR: ask
/// Asks an account for its balance through a node's region.
async fn balance(
    node: &ClusteredActorSystem,
    accounts: &ActorRef<ShardEnvelope<AccountMsg>>,
    id: &'static str,
) -> i64 {
    node.ask(
        accounts,
        |r| ShardEnvelope::new(id, AccountMsg::GetBalance { reply_to: r }),
        Duration::from_secs(5),
    )
    .await
    .expect("the account answered")
}
// ANCHOR_END: ask

#[tokio::main]
async fn main() {
    // ANCHOR: main
    let (node1, node2) = tokio::join!(node(25520), node(25521));
    let accounts1 = node1
        .spawn(Behaviors::sharded(account_entity, 100), "accounts")
        .unwrap();
    let accounts2 = node2
        .spawn(Behaviors::sharded(account_entity, 100), "accounts")
        .unwrap();

    // Deposit via node 1
    accounts1.tell(ShardEnvelope::new(
        "alice",
        AccountMsg::Deposit { amount: 100 },
    ));
    accounts1.tell(ShardEnvelope::new(
        "bob",
        AccountMsg::Deposit { amount: 200 },
    ));
    // Node 1's deposits are in before node 2's: asking waits for them (messages from one
    // sender to one entity arrive in order; from two nodes, in either order).
    balance(&node1, &accounts1, "alice").await;

    // Deposit via node 2 — routes to the correct node transparently
    accounts2.tell(ShardEnvelope::new(
        "alice",
        AccountMsg::Deposit { amount: 50 },
    ));

    // Query from either node
    let alice = balance(&node2, &accounts2, "alice").await;
    println!("Alice's balance: {alice}"); // Alice's balance: 150
    let alice = balance(&node1, &accounts1, "alice").await;
    println!("Alice's balance, asked on node 1: {alice}");
    let bob = balance(&node2, &accounts2, "bob").await;
    println!("Bob's balance, asked on node 2: {bob}");
    // ANCHOR_END: main

    // ANCHOR: persistent_main
    // The same accounts, event-sourced on a journal both nodes share: one line per node.
    let journal: Arc<dyn EventJournal> = Arc::new(InMemoryJournal::new());
    let ledger1 = node1
        .spawn(Balance::sharded(journal.clone(), 100), "ledger")
        .unwrap();
    let ledger2 = node2
        .spawn(Balance::sharded(journal.clone(), 100), "ledger")
        .unwrap();
    ledger1.tell(ShardEnvelope::new(
        "carol",
        AccountMsg::Deposit { amount: 70 },
    ));
    let carol = ledger2.entity_ref("carol");
    let before = balance(&node1, &ledger1, "carol").await;
    carol.tell(AccountMsg::Deposit { amount: 5 });
    let after = carol
        .ask(
            |r| AccountMsg::GetBalance { reply_to: r },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    println!("Carol's persisted balance: {before}, then {after}");
    // ANCHOR_END: persistent_main

    node2.shutdown().await;
    node1.shutdown().await;
}
// ANCHOR_END: all
