//! A cluster node running a sharded, event-sourced bank in its own process, for the
//! multi-process sharding test: binds `127.0.0.1:<port>` (0 for any) with test timings, joins
//! through `<seed>` (or forms a cluster when the seed is `self`), keeps its accounts in the
//! SQLite journal at `<journal>` (shared by every node), prints `READY <address>`, then answers
//! commands read from stdin, one per line, until killed:
//! - `UP <n>`: waits until `n` members are Up, prints `UP`;
//! - `DEPOSIT <account> <amount>`: tells the account;
//! - `BALANCE <account>`: asks it (again until it answers), prints `BALANCE <account> <n>`;
//! - `HOSTS`: prints `HOSTS` and the accounts running on this node.
//!
//! Usage: `sharded_node <port> <seed address | self> <journal path>`.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use casty::sharding::ShardEnvelope;
use casty::{Behaviors, EventJournal};
use casty_tests::cluster_kit::fast_node;
use casty_tests::sharding_kit::{Account, Balance};

fn print(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("flush");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let seed = args.next().unwrap_or_else(|| "self".into());
    let path = args.next().expect("a journal path");
    let journal: Arc<dyn EventJournal> =
        Arc::new(casty::SqliteJournal::open(&path).expect("open the journal"));
    let mut builder = fast_node().port(port);
    if seed != "self" {
        builder = builder.seed_nodes([seed.clone()]);
    }
    let node = builder.start().await.expect("start the node");
    if seed == "self" {
        node.cluster().join(node.address().clone());
    }
    let settings = casty::testing::fast_sharding(100);
    let accounts = node
        .spawn(
            Behaviors::sharded_with(Balance::entity(journal), settings),
            "accounts",
        )
        .expect("spawn the accounts");
    print(format!("READY {}", node.address()));

    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = commands.recv().await {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts[..] {
            ["UP", n] => {
                let n = n.parse().expect("a number");
                node.cluster()
                    .wait_for_up(n, Duration::from_secs(30))
                    .await
                    .expect("members Up");
                print("UP".into());
            }
            ["DEPOSIT", id, amount] => {
                let amount = amount.parse().expect("an amount");
                accounts.tell(ShardEnvelope::new(id, Account::Deposit { amount }));
            }
            ["BALANCE", id] => {
                // A message sent to a node that died before it was downed is lost with it:
                // ask again, as a caller would.
                let account = accounts.entity_ref(id);
                let balance = loop {
                    let asked = account
                        .ask(
                            |r| Account::GetBalance { reply_to: r },
                            Duration::from_millis(500),
                        )
                        .await;
                    if let Ok(b) = asked {
                        break b;
                    }
                };
                print(format!("BALANCE {id} {balance}"));
            }
            ["HOSTS"] => {
                let state = accounts.region_state().await.unwrap_or_default();
                let ids: Vec<String> = state.shards.into_values().flatten().collect();
                print(format!("HOSTS {}", ids.join(" ")));
            }
            _ => print(format!("ERROR {line}")),
        }
    }
}
